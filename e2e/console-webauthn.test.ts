// Browser tests of passkeys and security keys in the console, in Debian's headless Chromium
// with a virtual authenticator of the DevTools protocol (WebAuthn.addVirtualAuthenticator:
// CTAP2, internal, resident keys, user verification): add a security key in My account, sign
// in with it as the second factor (its recovery codes shown once, as the first factor), add a
// passkey, sign in with the passkey alone, rename and remove them; step up with a security
// key. Screenshots go to e2e/artifacts/console-webauthn/.
//
// WebAuthn needs a domain, not an IP address, as the relying party id: the server is told
// to be localhost (--webauthn-rp-id, --webauthn-origins) and the browser opens it there.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { CDPSession, Page } from "playwright-core";

import { newClient, type AuthAPIClient } from "../gen/ts/client.js";
import { createUser, rootPassword, rootUsername, startServer, type RunningServer } from "./authapi.js";
import { askNewRecoveryCodes, axe, ConsoleBrowser, heading, signIn, signOut, skipBrowser } from "./chromium.js";

const password = "correct horse battery staple";

describe("passkeys and security keys in Chromium", { skip: skipBrowser }, () => {
  let server: RunningServer;
  let origin: string;
  let chrome: ConsoleBrowser;
  let api: AuthAPIClient;

  before(async () => {
    server = await startServer({
      AUTHAPI_REFRESHES_PER_IP_PER_MINUTE: "-1",
      AUTHAPI_WEBAUTHN_RP_ID: "localhost",
      AUTHAPI_WEBAUTHN_ORIGINS: "http://localhost:{port}",
    });
    origin = server.baseUrl.replace("127.0.0.1", "localhost");
    api = newClient({ baseUrl: server.baseUrl });
    chrome = await ConsoleBrowser.launch(origin, "console-webauthn");
  });

  after(async () => {
    await chrome?.close();
    await server?.stop();
  });

  async function createStaff(username: string): Promise<number> {
    const login = await api.POST("/api/v1/auth/token/", { body: { username: rootUsername, password: rootPassword } });
    assert.ok(login.data, JSON.stringify(login.error));
    return createUser(api, login.data.access, username, { password, is_staff: true });
  }

  /** virtualAuthenticator gives the page a platform authenticator with resident keys and UV. */
  async function virtualAuthenticator(page: Page): Promise<{ cdp: CDPSession; id: string }> {
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("WebAuthn.enable", { enableUI: false });
    const { authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: {
        protocol: "ctap2",
        transport: "internal",
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    });
    return { cdp, id: authenticatorId };
  }

  const signInWithPassword = (page: Page, username: string): Promise<void> => signIn(page, origin, username, password);

  async function myAccount(page: Page) {
    await page.getByRole("link", { name: "My account" }).click();
    await heading(page, "My account");
    return page.getByRole("region", { name: "Passkeys and security keys" });
  }

  it("adds a security key, signs in with it, adds a passkey, signs in with it alone, renames and removes them", async () => {
    const graceId = await createStaff("grace");
    const page = await chrome.newPage();
    const key = await virtualAuthenticator(page);

    // A security key (not a passkey) as the first factor of the account.
    await signInWithPassword(page, "grace");
    await heading(page, "Users");
    const factorReads: string[] = [];
    page.on("request", (r) => {
      if (new URL(r.url()).pathname === "/api/v1/account/mfa/") factorReads.push(r.method());
    });
    let keys = await myAccount(page);
    // Both cards show the factors of one read.
    await page.getByRole("region", { name: "Security" }).getByText("Two-step sign-in off").waitFor();
    await keys.getByLabel("Name", { exact: true }).waitFor();
    assert.deepEqual(factorReads, ["GET"], "My account reads the factors once");
    await keys.getByLabel("Name", { exact: true }).fill("  Desk key ");
    await keys.getByLabel(/Passkey: sign in with it alone/).uncheck();
    // The box ticked again while the key is asked changes nothing: the message tells what the
    // server stored (a security key, its name trimmed).
    let release = (): void => {};
    const held = new Promise<void>((resolve) => (release = resolve));
    await page.route("**/api/v1/account/mfa/webauthn/register/begin/", async (route) => {
      await held;
      await route.continue();
    }, { times: 1 });
    await keys.getByRole("button", { name: "Add" }).click();
    await keys.getByLabel(/Passkey: sign in with it alone/).check();
    release();
    await keys.getByText("“Desk key” is added. Signing in now needs it after your password.").waitFor();
    // The account's first factor: its recovery codes, shown once.
    const codes = keys.getByRole("list", { name: "Recovery codes" });
    await codes.waitFor();
    assert.equal(await codes.getByRole("listitem").count(), 10, "ten recovery codes");
    await chrome.shot(page, "account-first-key-recovery-codes");
    await keys.getByRole("button", { name: "I have stored the codes" }).click();
    await codes.waitFor({ state: "hidden" });
    const list = keys.getByRole("list", { name: "Passkeys and security keys" });
    await list.getByRole("heading", { name: "Desk key" }).waitFor();
    assert.match(await list.innerText(), /Security key/);
    await axe(page, "my account with a security key");
    await chrome.shot(page, "account-security-key");

    // The password alone no longer signs in: the second factor step offers the key.
    await signOut(page);
    await signInWithPassword(page, "grace");
    await heading(page, "Second factor");
    await page.getByText("Security key or passkey", { exact: true }).waitFor();
    await axe(page, "the second factor step with a security key");
    await chrome.shot(page, "signin-second-factor-key");
    await page.getByRole("button", { name: "Use security key" }).click();
    await heading(page, "Users");

    // A passkey on another authenticator (one authenticator is registered once: the API
    // excludes the credentials it knows), added in the session the key raised.
    await key.cdp.send("WebAuthn.removeVirtualAuthenticator", { authenticatorId: key.id });
    const { cdp, id } = await virtualAuthenticator(page);
    keys = await myAccount(page);
    await keys.getByLabel("Name", { exact: true }).fill("Laptop passkey");
    await keys.getByRole("button", { name: "Add" }).click();
    await keys.getByText("“Laptop passkey” is added.").waitFor();
    await list.getByRole("heading", { name: "Laptop passkey" }).waitFor();
    assert.equal(await keys.getByRole("list", { name: "Recovery codes" }).count(), 0, "no new recovery codes for a second key");
    const { credentials } = await cdp.send("WebAuthn.getCredentials", { authenticatorId: id });
    assert.equal(credentials.length, 1, "one credential on the authenticator");
    assert.ok(credentials[0]?.isResidentCredential, "the passkey is discoverable");
    await chrome.shot(page, "account-passkey");

    // Her user page names each key by its kind, not by the API's word for the method.
    await page.goto(`${origin}/admin/users/${graceId}`);
    const factors = page.getByRole("region", { name: "Second factors" });
    await factors.getByText("Laptop passkey").waitFor();
    const shown = await factors.innerText();
    assert.match(shown, /Security key\s+Desk key/);
    assert.match(shown, /Passkey\s+Laptop passkey/);
    assert.doesNotMatch(shown, /webauthn/);
    await chrome.shot(page, "user-factors-keys");
    await myAccount(page);

    // The passkey alone signs in: no username, no password.
    await signOut(page);
    await chrome.shot(page, "signin-passkey-button");
    await page.getByRole("button", { name: "Sign in with a passkey" }).click();
    await heading(page, "My account"); // where the previous session was

    // Rename the passkey; remove the security key, then the passkey.
    keys = page.getByRole("region", { name: "Passkeys and security keys" });
    await keys.getByRole("button", { name: "Rename Laptop passkey" }).click();
    await keys.getByLabel("New name of Laptop passkey").fill("Work laptop");
    await keys.getByRole("button", { name: "Save" }).click();
    await list.getByRole("heading", { name: "Work laptop" }).waitFor();
    await keys.getByRole("button", { name: "Remove Desk key" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Remove" }).click();
    await keys.getByText("“Desk key” is removed.").waitFor();
    await chrome.shot(page, "account-after-removal");
    await keys.getByRole("button", { name: "Remove Work laptop" }).click();
    await page.getByRole("dialog").getByRole("button", { name: "Remove" }).click();
    await keys.getByText("“Work laptop” is removed.").waitFor();
    assert.equal(await list.count(), 0, "no credentials listed");

    // The password alone signs in again; the passkey is refused by the server.
    await signOut(page);
    await page.getByRole("button", { name: "Sign in with a passkey" }).click();
    await page.getByRole("alert").filter({ hasText: "The security key or passkey was not accepted." }).waitFor();
    await signInWithPassword(page, "grace");
    await heading(page, "Users");
    chrome.assertClean();
  });

  it("sends a refused ceremony once: a 401 that is not about the access token refreshes nothing", async () => {
    await createStaff("ida");
    const page = await chrome.newPage();
    await virtualAuthenticator(page);
    await signInWithPassword(page, "ida");
    await heading(page, "Users");
    const keys = await myAccount(page);

    const sent: string[] = [];
    page.on("request", (r) => {
      const path = new URL(r.url()).pathname;
      if (path === "/api/v1/auth/token/refresh/" || path.endsWith("/register/finish/")) sent.push(path);
    });
    // The browser answers a ceremony the server does not know (as it does not know one used or
    // expired): 401 token_not_valid, without WWW-Authenticate error="invalid_token".
    await page.route("**/api/v1/account/mfa/webauthn/register/begin/", async (route) => {
      const response = await route.fetch();
      const begun = (await response.json()) as Record<string, unknown>;
      await route.fulfill({ response, json: { ...begun, ceremony: "not-the-servers-ceremony" } });
    });
    await keys.getByLabel("Name", { exact: true }).fill("Desk key");
    await keys.getByRole("button", { name: "Add" }).click();
    await keys.getByRole("alert").filter({ hasText: "The ceremony is invalid, used or expired: begin again." }).waitFor();
    assert.deepEqual(sent, ["/api/v1/account/mfa/webauthn/register/finish/"], "the finish sent once, no refresh");
    chrome.assertClean();
  });

  it("steps up with a security key when the API wants a recent second factor", async () => {
    await createStaff("hopper");
    const page = await chrome.newPage();
    await virtualAuthenticator(page);

    // A password session (aal1) adds the account's first factor, a security key.
    await signInWithPassword(page, "hopper");
    await heading(page, "Users");
    const keys = await myAccount(page);
    await keys.getByLabel("Name", { exact: true }).fill("Desk key");
    await keys.getByLabel(/Passkey: sign in with it alone/).uncheck();
    await keys.getByRole("button", { name: "Add" }).click();
    await keys.getByRole("button", { name: "I have stored the codes" }).click();
    const security = page.getByRole("region", { name: "Security" });
    await security.getByText("Two-step sign-in on").waitFor();

    // New recovery codes need a recent second factor: the prompt offers the key first.
    const { calls, prompt } = await askNewRecoveryCodes(page);
    await prompt.getByText("Security key or passkey", { exact: true }).waitFor();
    await axe(page, "the step-up prompt with a security key");
    await chrome.shot(page, "step-up-security-key");
    await prompt.getByRole("button", { name: "Use security key" }).click();
    await prompt.waitFor({ state: "hidden" });
    const codes = security.getByRole("list", { name: "Recovery codes" });
    await codes.waitFor();
    assert.equal(await codes.getByRole("listitem").count(), 10, "ten new recovery codes");
    await chrome.shot(page, "step-up-security-key-done");
    assert.deepEqual(calls, [
      "/api/v1/account/mfa/recovery-codes/ 401",
      "/api/v1/auth/reauthenticate/webauthn/ 200",
      "/api/v1/auth/reauthenticate/ 200",
      "/api/v1/account/mfa/recovery-codes/ 200",
    ]);
    chrome.assertClean();
  });
});

// Browser tests of the console's second factors, in Debian's headless Chromium against the
// built binary: setting up an authenticator app in My account (QR code, key, activation with a
// code from npm otplib, an independent TOTP implementation), the recovery codes shown once
// (copy, download), the sign-in page's second-factor step (a code, a recovery code, a wrong
// one, a challenge that is gone), new recovery codes, and removal with the password.
// Screenshots, at a desktop's and a phone's width, go to e2e/artifacts/console-mfa/.
//
// A TOTP code works once: each account here uses the code of the current time step, then the
// next one's (one step of skew is accepted), and recovery codes after that. Each code is made
// when it is typed, never from a time read earlier. No test waits.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, it } from "node:test";
import { generateSync } from "otplib";
import type { Page } from "playwright-core";

import { newClient, type AuthAPIClient } from "../gen/ts/client.js";
import { bearer, createUser, rootPassword, rootUsername, startServer, type RunningServer } from "./authapi.js";
import { askNewRecoveryCodes, axe, ConsoleBrowser, heading, signIn, signOut, skipBrowser } from "./chromium.js";

const password = "correct horse battery staple";

describe("the console's second factors in Chromium", { skip: skipBrowser }, () => {
  let server: RunningServer;
  let chrome: ConsoleBrowser;
  let api: AuthAPIClient;
  let rootAccess: string;
  let policyServer: RunningServer | undefined;

  before(async () => {
    server = await startServer({ AUTHAPI_REFRESHES_PER_IP_PER_MINUTE: "-1" });
    api = newClient({ baseUrl: server.baseUrl });
    const login = await api.POST("/api/v1/auth/token/", { body: { username: rootUsername, password: rootPassword } });
    assert.ok(login.data, JSON.stringify(login.error));
    rootAccess = login.data.access;
    chrome = await ConsoleBrowser.launch(server.baseUrl, "console-mfa");
  });

  after(async () => {
    await chrome?.close();
    await server?.stop();
    await policyServer?.stop();
  });

  const createStaff = (username: string): Promise<number> => createUser(api, rootAccess, username, { password, is_staff: true });

  /** TOTPCodes makes one account's codes, each at the time it is used. */
  interface TOTPCodes {
    /** next is the current step's code, or the next step's when a code of this step was already sent. */
    next(): Promise<string>;
    /** wrong is a well-formed code that no step near now has. */
    wrong(): string;
  }

  /**
   * codes makes an account's TOTP codes as its authenticator app would, from the clock at the
   * moment each is used: a code made from a time read earlier is refused once a minute has
   * passed since then (one step of skew), and a test on a loaded machine can take that long.
   * A code works once, so next never repeats a step: after the next step's code it waits for
   * the clock to reach that step (no test here sends three codes that fast).
   */
  function codes(secret: string): TOTPCodes {
    const step = (): number => Math.floor(Date.now() / 30_000);
    const at = (s: number): string => generateSync({ secret, epoch: s * 30 });
    let sent = -Infinity; // the latest step a code was made for
    return {
      async next() {
        while (sent > step()) {
          await sleep(100);
        }
        sent = Math.max(step(), sent + 1);
        return at(sent);
      },
      wrong() {
        const near = new Set([-2, -1, 0, 1, 2].map((d) => at(step() + d)));
        let c = at(step() - 100);
        while (near.has(c)) {
          c = String((Number(c) + 1) % 1_000_000).padStart(6, "0");
        }
        return c;
      },
    };
  }

  /** passwordStep opens the console and submits the password. */
  const passwordStep = (page: Page, username: string): Promise<void> => signIn(page, server.baseUrl, username, password);

  /** shownCodes reads the recovery codes the page shows once. */
  async function shownCodes(page: Page): Promise<string[]> {
    const list = page.getByRole("list", { name: "Recovery codes" });
    await list.waitFor();
    return list.locator("li").allInnerTexts();
  }

  it("sets up an authenticator app, signs in with a code and with a recovery code, makes new codes and removes it", async () => {
    await createStaff("ada");
    const page = await chrome.newPage();
    await passwordStep(page, "ada");
    await heading(page, "Users");
    await page.getByRole("link", { name: "My account" }).click();
    await heading(page, "My account");
    const security = page.getByRole("region", { name: "Security" });
    await security.getByText("Two-step sign-in off").waitFor();
    await axe(page, "my account without a second factor");
    await chrome.shot(page, "security-off");

    // Set up: the QR code is drawn by the console (no markup of the answer's inserted), with
    // the key to type by hand.
    await security.getByRole("button", { name: "Set up" }).click();
    const qr = security.getByRole("img", { name: "QR code to scan with your authenticator app" });
    await qr.waitFor();
    assert.equal(await qr.locator("path").count(), 1, "one path of dark modules");
    const secret = await security.getByRole("textbox", { name: "Setup key" }).inputValue();
    assert.match(secret, /^[A-Z2-7]{16,}$/);
    const code = codes(secret);
    await axe(page, "the authenticator app's setup");
    await chrome.shot(page, "security-setup");

    // A wrong code is refused with the API's message; the right one turns it on and shows
    // the recovery codes once.
    await security.getByLabel("Code from the app").fill(code.wrong());
    await security.getByRole("button", { name: "Turn on" }).click();
    await security.getByRole("alert").filter({ hasText: "Invalid or already used code." }).waitFor();
    await security.getByLabel("Code from the app").fill((await code.next()).replace(/^(...)/, "$1 "));
    await security.getByRole("button", { name: "Turn on" }).click();
    const recovery = await shownCodes(page);
    assert.equal(recovery.length, 10);
    assert.ok(recovery.every((c) => /^[A-Z2-7]{8}-[A-Z2-7]{8}$/.test(c)), recovery.join(" "));
    await axe(page, "the recovery codes");
    await chrome.shot(page, "security-codes");

    const [file] = await Promise.all([page.waitForEvent("download"), security.getByRole("button", { name: "Download" }).click()]);
    assert.equal(file.suggestedFilename(), "authapi-recovery-codes-ada.txt");
    const text = await readFile(await file.path(), "utf8");
    assert.ok(recovery.every((c) => text.includes(c)), "the file holds every code");
    await page.context().grantPermissions(["clipboard-read", "clipboard-write"]);
    await security.getByRole("button", { name: "Copy" }).click();
    await security.getByText("Recovery codes copied.").waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), recovery.join("\n") + "\n");

    await security.getByRole("button", { name: "I have stored the codes" }).click();
    await security.getByText("Two-step sign-in on").waitFor();
    await security.getByText("10 of 10 left").waitFor();
    assert.equal(await page.getByRole("list", { name: "Recovery codes" }).count(), 0, "the codes are not shown again");
    await chrome.shot(page, "security-on");

    // Sign in again: the password, then the second factor. A wrong code is refused and
    // the field is emptied; a code of a step not used yet signs in.
    await signOut(page);
    await passwordStep(page, "ada");
    await heading(page, "Second factor");
    await axe(page, "the second-factor step");
    await chrome.shot(page, "sign-in-factor");
    await page.getByLabel("Code from your authenticator app").fill(code.wrong());
    await page.getByRole("button", { name: "Verify" }).click();
    await page.getByRole("alert").filter({ hasText: "Invalid or already used code." }).waitFor();
    assert.equal(await page.getByLabel("Code from your authenticator app").inputValue(), "");
    await chrome.shot(page, "sign-in-factor-wrong");
    await page.getByLabel("Code from your authenticator app").fill(await code.next());
    await page.getByRole("button", { name: "Verify" }).click();
    await heading(page, "Users");

    // And with a recovery code, which then is spent.
    await signOut(page);
    await passwordStep(page, "ada");
    await heading(page, "Second factor");
    await page.getByRole("button", { name: "Use a recovery code instead" }).click();
    await page.getByLabel("Recovery code").fill(recovery[0]!.toLowerCase());
    await chrome.shot(page, "sign-in-recovery");
    await page.getByRole("button", { name: "Verify" }).click();
    await heading(page, "Users");
    await page.getByRole("link", { name: "My account" }).click();
    await security.getByText("9 of 10 left").waitFor();

    // New recovery codes, after a confirmation: the old ones stop working.
    await security.getByRole("button", { name: "New codes" }).click();
    const confirm = page.getByRole("dialog", { name: "Make new recovery codes?" });
    await confirm.getByRole("button", { name: "Make new codes" }).click();
    const renewed = await shownCodes(page);
    assert.equal(renewed.length, 10);
    assert.ok(renewed.every((c) => !recovery.includes(c)), "all new codes");
    await security.getByRole("button", { name: "I have stored the codes" }).click();
    await security.getByText("10 of 10 left").waitFor();
    const old = await answerWithRecoveryCode("ada", recovery[1]!);
    assert.equal(old, 401, "an old recovery code stopped working");

    // Remove, with the password: a wrong one is refused beside the field.
    await security.getByRole("button", { name: "Remove" }).click();
    const remove = page.getByRole("dialog", { name: "Remove the authenticator app?" });
    await remove.getByLabel("Password").fill("not my password");
    await remove.getByRole("button", { name: "Remove" }).click();
    await remove.getByText("Your password was entered incorrectly.").waitFor();
    await axe(page, "the removal dialog");
    await chrome.shot(page, "security-remove");
    await remove.getByLabel("Password").fill(password);
    await remove.getByRole("button", { name: "Remove" }).click();
    await security.getByText("Two-step sign-in off").waitFor();
    await security.getByText("The authenticator app is removed").waitFor();

    await signOut(page);
    await passwordStep(page, "ada");
    await heading(page, "Users"); // the password alone again
  });

  /** answerWithRecoveryCode logs in through the API and answers with code; the answer's status. */
  async function answerWithRecoveryCode(username: string, code: string): Promise<number> {
    const login = await api.POST("/api/v1/auth/token/", { body: { username, password } });
    const challenge = login.error?.mfa?.challenge;
    assert.ok(challenge, `no challenge: ${JSON.stringify(login.error)}`);
    const answer = await api.POST("/api/v1/auth/mfa/challenge/", { body: { challenge, method: "recovery_code", code } });
    return answer.response.status;
  }

  /** enrol turns on TOTP for username through the API, returning its code maker and recovery codes. */
  async function enrol(username: string): Promise<{ code: TOTPCodes; recovery: string[] }> {
    const login = await api.POST("/api/v1/auth/token/", { body: { username, password } });
    assert.ok(login.data, JSON.stringify(login.error));
    const auth = bearer(login.data.access);
    const enrolled = await api.POST("/api/v1/account/mfa/totp/", { headers: auth });
    assert.ok(enrolled.data, JSON.stringify(enrolled.error));
    const code = codes(enrolled.data.secret);
    const activated = await api.POST("/api/v1/account/mfa/totp/activate/", { headers: auth, body: { code: await code.next() } });
    assert.ok(activated.data, JSON.stringify(activated.error));
    return { code, recovery: activated.data.codes };
  }

  it("goes back to the password when the challenge is gone: used elsewhere, or expired", async () => {
    await createStaff("cy");
    const { code, recovery } = await enrol("cy");
    const page = await chrome.newPage();
    await page.clock.install();

    // The challenge is answered elsewhere first (it works once): the page's answer is refused
    // and the page asks for the password again, saying why.
    const challenged = page.waitForResponse((r) => r.url().endsWith("/api/v1/auth/token/") && r.status() === 401);
    await passwordStep(page, "cy");
    const { mfa } = (await (await challenged).json()) as { mfa?: { challenge: string } };
    assert.ok(mfa);
    const elsewhere = await api.POST("/api/v1/auth/mfa/challenge/", { body: { challenge: mfa.challenge, method: "recovery_code", code: recovery[0]! } });
    assert.equal(elsewhere.response.status, 200, JSON.stringify(elsewhere.error));
    await page.getByLabel("Code from your authenticator app").fill(await code.next());
    await page.getByRole("button", { name: "Verify" }).click();
    await heading(page, "Sign in");
    await page.getByText("The challenge is invalid, used or expired: log in again.").waitFor();
    assert.equal(await page.getByLabel("Username").inputValue(), "cy", "the username stays");
    assert.equal(await page.evaluate(() => document.activeElement?.id), "signin-password", "the password has the focus");

    // A challenge left unanswered past its lifetime (5 minutes) sends the page back too.
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await heading(page, "Second factor");
    await page.clock.fastForward("05:01");
    await heading(page, "Sign in");
    await page.getByText("The sign-in took too long. Enter your password again.").waitFor();
    await chrome.shot(page, "sign-in-expired");

    // Back goes to the password step by choice.
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await heading(page, "Second factor");
    await page.getByRole("button", { name: "Back" }).click();
    await heading(page, "Sign in");
  });

  it("asks to step up when the API wants a recent second factor, and sends the call again once", async () => {
    const id = await createStaff("bo");
    const page = await chrome.newPage();
    await passwordStep(page, "bo"); // no factor yet: a password session (aal1)
    await heading(page, "Users");
    const { code } = await enrol("bo"); // turned on elsewhere: this session is still aal1
    await page.getByRole("link", { name: "My account" }).click();
    const security = page.getByRole("region", { name: "Security" });
    await security.getByText("Two-step sign-in on").waitFor();

    // New recovery codes need a recent second factor: the prompt asks for it. Cancel: the
    // refusal is shown where the call was made.
    const { calls, confirm, prompt } = await askNewRecoveryCodes(page);
    await prompt.getByLabel("Code from your authenticator app").waitFor();
    await axe(page, "the step-up prompt");
    await chrome.shot(page, "step-up");
    await prompt.getByRole("button", { name: "Cancel" }).click();
    await prompt.waitFor({ state: "hidden" });
    await confirm.getByRole("alert").filter({ hasText: "second factor" }).waitFor();

    // Again: a wrong code is refused in the prompt (and not sent twice); the right one raises
    // the session, and the refused call goes through.
    calls.length = 0;
    await confirm.getByRole("button", { name: "Make new codes" }).click();
    await prompt.getByLabel("Code from your authenticator app").fill(code.wrong());
    await prompt.getByRole("button", { name: "Confirm" }).click();
    await prompt.getByRole("alert").filter({ hasText: "Invalid or already used code." }).waitFor();
    await chrome.shot(page, "step-up-wrong");
    await prompt.getByLabel("Code from your authenticator app").fill(await code.next());
    await prompt.getByRole("button", { name: "Confirm" }).click();
    const renewed = await shownCodes(page);
    assert.equal(renewed.length, 10);
    await prompt.waitFor({ state: "hidden" });
    assert.deepEqual(calls, [
      "/api/v1/account/mfa/recovery-codes/ 401",
      "/api/v1/auth/reauthenticate/ 401",
      "/api/v1/auth/reauthenticate/ 200",
      "/api/v1/account/mfa/recovery-codes/ 200",
    ]);
    await security.getByRole("button", { name: "I have stored the codes" }).click();

    // Raised: the next sensitive call needs no prompt.
    calls.length = 0;
    await security.getByRole("button", { name: "New codes" }).click();
    await confirm.getByRole("button", { name: "Make new codes" }).click();
    await shownCodes(page);
    assert.deepEqual(calls, ["/api/v1/account/mfa/recovery-codes/ 200"]);
    await security.getByRole("button", { name: "I have stored the codes" }).click();

    // A superuser sees bo's factors on bo's page and resets them: bo is signed out.
    const root = await chrome.newPage();
    await signIn(root, server.baseUrl, rootUsername, rootPassword, `/users/${id}`);
    await heading(root, "bo");
    const factors = root.getByRole("region", { name: "Second factors" });
    await factors.getByText("Authenticator app").waitFor();
    await factors.getByText("10 left").waitFor();
    await axe(root, "a user's factors");
    await chrome.shot(root, "user-factors");
    await factors.getByRole("button", { name: "Reset second factors" }).click();
    const reset = root.getByRole("dialog", { name: "Reset the second factors of bo?" });
    await chrome.shot(root, "user-factors-reset");
    await reset.getByRole("button", { name: "Reset second factors" }).click();
    await factors.getByText("The second factors of bo are reset").waitFor();
    await factors.getByText("None").waitFor();
    assert.equal(await factors.getByRole("button", { name: "Reset second factors" }).count(), 0);

    await page.reload();
    await heading(page, "Sign in");
    await passwordStep(page, "bo");
    await heading(page, "Users"); // the password alone again
  });

  it("shows staff a user's factors without the reset", async () => {
    const id = await createStaff("dee");
    await enrol("dee");
    const page = await chrome.newPage();
    await passwordStep(page, "ada");
    await heading(page, "Users");
    await page.goto(`${server.baseUrl}/admin/users/${id}`);
    await heading(page, "dee");
    const factors = page.getByRole("region", { name: "Second factors" });
    await factors.getByText("Authenticator app").waitFor();
    await factors.getByText("On", { exact: true }).waitFor();
    assert.equal(await factors.getByRole("button").count(), 0, "no reset for staff");
  });

  it("holds a superuser without a factor to enrolment under --require-mfa, until one is on", async () => {
    policyServer = await startServer({ AUTHAPI_REFRESHES_PER_IP_PER_MINUTE: "-1", AUTHAPI_REQUIRE_MFA: "superusers" });
    const policyChrome = await ConsoleBrowser.launch(policyServer.baseUrl, "console-mfa");
    try {
      const page = await policyChrome.newPage();
      await signIn(page, policyServer.baseUrl, rootUsername, rootPassword);
      await heading(page, "My account");
      assert.match(page.url(), /\/admin\/account$/);
      await page.getByText("Set up a second factor to use the console.").waitFor();
      const nav = page.getByRole("navigation", { name: "Console" });
      assert.deepEqual(await nav.getByRole("link").allInnerTexts(), ["My account"]);
      assert.equal(await page.getByRole("heading", { name: "My sessions" }).count(), 0);
      await axe(page, "the enrolment-only console");
      await policyChrome.shot(page, "enrol-only");

      // A page that is not open to them goes back to My account.
      await page.goto(`${policyServer.baseUrl}/admin/keys`);
      await heading(page, "My account");

      const security = page.getByRole("region", { name: "Security" });
      await security.getByRole("button", { name: "Set up" }).click();
      const code = codes(await security.getByRole("textbox", { name: "Setup key" }).inputValue());
      await security.getByLabel("Code from the app").fill(await code.next());
      await security.getByRole("button", { name: "Turn on" }).click();
      await shownCodes(page);
      await security.getByRole("button", { name: "I have stored the codes" }).click();
      await nav.getByRole("link", { name: "Signing keys" }).waitFor();
      assert.equal(await page.getByText("Set up a second factor to use the console.").count(), 0);
      await page.getByRole("heading", { name: "My sessions" }).waitFor();
      await nav.getByRole("link", { name: "Users" }).click();
      await heading(page, "Users");
      policyChrome.assertClean();
    } finally {
      await policyChrome.close();
    }
  });

  it("ran under its strict CSP, with no script error and nothing loaded from elsewhere", () => {
    chrome.assertClean();
  });
});

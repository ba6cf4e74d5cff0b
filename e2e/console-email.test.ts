// Email addresses in the console, through a real mail server (mailpit, built by the Makefile:
// AUTHAPI_MAILPIT_BIN) in Chromium: a user created by a superuser gets a verification link,
// which the console's verify-email page confirms, and the user page then says verified; the
// user changes their address in My account, confirms it from the new address, and the old one
// is told. With --signup: "Create an account" on the sign-in page, the link, then sign-in (to
// the console's "no access" page: the account is not staff). Screenshots, at a desktop's and
// a phone's width, go to e2e/artifacts/email/.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Page } from "playwright-core";

import { newClient, type AuthAPIClient } from "../gen/ts/client.js";
import { bearer, rootPassword, rootUsername, startServer, type RunningServer } from "./authapi.js";
import { ConsoleBrowser, axe, heading, signIn as signInAt, skipBrowser, timeout } from "./chromium.js";
import { Mailpit, skipMailpit } from "./mailpit.js";

const password = "correct horse battery staple";

describe("email addresses in the console, by mail, in Chromium", { skip: skipBrowser || skipMailpit }, () => {
  let mailpit: Mailpit;
  let server: RunningServer;
  let api: AuthAPIClient;
  let rootAccess: string;
  let browser: ConsoleBrowser;

  before(async () => {
    mailpit = await Mailpit.start(timeout);
    server = await startServer({
      ...mailpit.settings(),
      AUTHAPI_SIGNUP: "true",
      AUTHAPI_ADDRESS_MAILS_PER_ACCOUNT: "3",
      AUTHAPI_REFRESHES_PER_IP_PER_MINUTE: "-1",
    });
    api = newClient({ baseUrl: server.baseUrl });
    const login = await api.POST("/api/v1/auth/token/", { body: { username: rootUsername, password: rootPassword } });
    assert.ok(login.data, JSON.stringify(login.error));
    rootAccess = login.data.access;
    browser = await ConsoleBrowser.launch(server.baseUrl, "email");
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    mailpit?.stop();
  });

  /** mailTo waits for a message to address whose subject matches and returns its text. */
  async function mailTo(address: string, subject: RegExp): Promise<string> {
    const found = await mailpit.mailTo(address, subject, () => `--- authapi ---\n${server.output()}`);
    return (await mailpit.message(found.ID)).Text;
  }

  /** verifyLink is the console link in a message's text, checked to carry its token in the fragment. */
  function verifyLink(text: string): string {
    const link = /(http\S+\/admin\/verify-email#token=[A-Za-z0-9_-]+)/.exec(text)?.[1];
    assert.ok(link, `no verify-email link in:\n${text}`);
    assert.ok(link.startsWith(`${server.baseUrl}/admin/verify-email#token=`), link);
    return link;
  }

  /** confirm opens a verify-email link and confirms it, expecting the address it confirms. */
  async function confirm(page: Page, link: string, address: string, shot: string): Promise<void> {
    await page.goto(link);
    await heading(page, "Confirm your email address");
    assert.equal(new URL(page.url()).hash, "", "the token is taken out of the address bar");
    await page.getByRole("button", { name: "Confirm my address" }).click();
    await page.getByText(address).waitFor();
    await axe(page, "the verify-email page");
    await browser.shot(page, shot);
  }

  const signIn = (page: Page, username: string, pw: string): Promise<void> => signInAt(page, server.baseUrl, username, pw, "/");

  it("a new user's address is verified by the link, then changed from My account", async () => {
    const created = await api.POST("/api/v1/account/management/create/", {
      headers: bearer(rootAccess),
      body: { username: "vera", first_name: "Vera", last_name: "Verify", email: "vera@example.com", password, is_staff: true },
    });
    assert.ok(created.data, JSON.stringify(created.error));
    const id = created.data.id;

    // The superuser sees the address not verified, on the list and on the user's page.
    const admin = await browser.newPage();
    await signIn(admin, rootUsername, rootPassword);
    await heading(admin, "Users");
    await admin.getByRole("row", { name: /vera/ }).getByText("Not verified").waitFor();
    await browser.shot(admin, "1-users-list");
    await admin.goto(`${server.baseUrl}/admin/users/${id}`);
    await heading(admin, "vera");
    await admin.getByText("Email not verified").waitFor();
    await browser.shot(admin, "2-user-not-verified");

    // The link mailed at creation, opened in another browser.
    const link = verifyLink(await mailTo("vera@example.com", /^Confirm your email address/));
    const visitor = await browser.newPage();
    await confirm(visitor, link, "vera@example.com", "3-verified");

    await admin.reload();
    await heading(admin, "vera");
    await admin.getByText("Email verified").waitFor();
    const details = admin.getByRole("region", { name: "Details" });
    await details.locator(".badge.ok", { hasText: "Verified" }).waitFor();
    await axe(admin, "the user page");
    await browser.shot(admin, "4-user-verified");

    // Vera changes her address: it waits for the new address's confirmation.
    const vera = await browser.newPage();
    await signIn(vera, "vera", password);
    await heading(vera, "Users");
    await vera.goto(`${server.baseUrl}/admin/account`);
    await heading(vera, "My account");
    const card = vera.getByRole("region", { name: "Email address" });
    await card.locator(".badge.ok", { hasText: "Verified" }).waitFor();
    await card.getByRole("button", { name: "Change my address" }).click();
    await card.getByLabel("New email address").fill("vera@example.org");
    await card.getByLabel("Current password").fill("not my password");
    await card.getByRole("button", { name: "Send the link" }).click();
    await card.getByText("Your password was entered incorrectly").waitFor();
    await browser.shot(vera, "5-change-wrong-password");
    await card.getByLabel("Current password").fill(password);
    await card.getByRole("button", { name: "Send the link" }).click();
    await card.getByText("A link is on its way to vera@example.org").waitFor();
    await card.getByText("Waiting for confirmation").waitFor();
    await axe(vera, "My account with a change waiting");
    await browser.shot(vera, "6-change-pending");

    const changeLink = verifyLink(await mailTo("vera@example.org", /^Confirm your new email address/));
    const visitor2 = await browser.newPage(); // a fresh tab, as a mail client opens one
    await confirm(visitor2, changeLink, "vera@example.org", "7-change-confirmed");
    await visitor2.getByText("Your email address is now").waitFor();

    // The old address is told; the account has the new one, verified.
    const told = await mailTo("vera@example.com", /email address of your .* account changed/);
    assert.match(told, /vera@example\.org/);
    await vera.reload();
    await heading(vera, "My account");
    await card.getByText("vera@example.org").waitFor();
    assert.equal(await card.getByText("Waiting for confirmation").count(), 0);
    await card.locator(".badge.ok", { hasText: "Verified" }).waitFor();
    await browser.shot(vera, "8-account-changed");
    const account = await api.GET("/api/v1/account/management/{id}/", { headers: bearer(rootAccess), params: { path: { id } } });
    assert.equal(account.data?.email, "vera@example.org");
    assert.equal(account.data?.email_verified, true);

    browser.assertClean();
  });

  it("Send the link again, until the per-account limit says how long to wait", async () => {
    const created = await api.POST("/api/v1/account/management/create/", {
      headers: bearer(rootAccess),
      body: { username: "una", first_name: "Una", last_name: "Unverified", email: "una@example.com", password, is_staff: true },
    });
    assert.ok(created.data, JSON.stringify(created.error));
    const page = await browser.newPage();
    await signIn(page, "una", password);
    await heading(page, "Users");
    await page.goto(`${server.baseUrl}/admin/account`);
    await heading(page, "My account");
    const card = page.getByRole("region", { name: "Email address" });
    await card.getByText("Not verified").waitFor();
    const resend = card.getByRole("button", { name: "Send the link again" });
    await resend.click();
    await card.getByText("A new link is on its way to una@example.com").waitFor();
    await browser.shot(page, "14-resent");
    const limited = card.getByText(/^Too many links were asked for by this account\. Try again in (about )?\d+ (seconds?|minutes?|hours?)\.$/);
    for (let i = 0; i < 5 && (await limited.count()) === 0; i++) {
      await resend.click();
      await card.getByRole("button", { name: "Send the link again" }).waitFor(); // not "Sending…"
    }
    await limited.waitFor();
    await axe(page, "My account, mail limited");
    await browser.shot(page, "15-mail-limited");
    browser.assertClean();
  });

  it("sign-up: Create an account -> the link -> sign in, to the console's no-access page", async () => {
    const page = await browser.newPage();
    await page.goto(`${server.baseUrl}/admin/`);
    await page.getByRole("link", { name: "Create an account" }).click();
    await heading(page, "Create an account");
    await page.getByLabel("Username").fill("nora");
    await page.getByLabel("Email address").fill("nora@example.net");
    await page.getByLabel("Password").fill(password);
    await browser.shot(page, "9-signup");
    await page.getByRole("button", { name: "Create my account" }).click();
    await page.getByText("a link to confirm your address is on its way").waitFor();
    await axe(page, "the sign-up page, sent");
    await browser.shot(page, "10-signup-sent");

    // Before the link: the login is refused, saying why.
    await signIn(page, "nora", password);
    await page.getByText("Confirm your email address first").waitFor();
    await browser.shot(page, "11-signin-unverified");

    const link = verifyLink(await mailTo("nora@example.net", /^Confirm your email address/));
    await confirm(page, link, "nora@example.net", "12-signup-verified");
    await page.getByRole("link", { name: "Go to sign-in" }).click();
    await page.getByLabel("Username").fill("nora");
    await page.getByLabel("Password").fill(password);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await heading(page, "No access to the console");
    await page.getByText("nora", { exact: true }).waitFor();
    await axe(page, "the no-access page");
    await browser.shot(page, "13-no-access");
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Username").waitFor();

    browser.assertClean();
  });
});

// Password reset through a real mail server, in Chromium: mailpit (axllent/mailpit, built by
// the Makefile from the version pinned in go.mod, AUTHAPI_MAILPIT_BIN) runs on loopback as the
// SMTP server; "Forgot password?" on the console's sign-in page sends the link, which is read
// through mailpit's HTTP API, opened, and used to set a new password, with which the user
// signs in. Screenshots go to e2e/artifacts/mail/.
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { chromium, type Browser, type Page } from "playwright-core";

import { newClient } from "../gen/ts/client.js";
import { bearer, repoRoot, rootPassword, rootUsername, startServer, type RunningServer } from "./authapi.js";
import { Mailpit, skipMailpit, type MailpitSummary } from "./mailpit.js";

const chromiumPath = process.env.AUTHAPI_E2E_CHROMIUM || "/usr/bin/chromium";
const artifacts = join(repoRoot, "e2e", "artifacts", "mail");
const timeout = 15_000;
const firstPassword = "correct horse battery staple";
const newPassword = "a fresh passphrase for mia 42";

let skip: string | false = skipMailpit;
if (!existsSync(chromiumPath)) {
  const why = `${chromiumPath} is needed`;
  if (process.env.CI) {
    throw new Error(why);
  }
  skip = why;
}

describe("password reset by mail in Chromium", { skip }, () => {
  let mailpit: Mailpit;
  let server: RunningServer;
  let browser: Browser;
  const cspViolations: string[] = [];
  const pageErrors: string[] = [];

  before(async () => {
    mailpit = await Mailpit.start(timeout);
    server = await startServer({
      ...mailpit.settings(),
      AUTHAPI_REFRESHES_PER_IP_PER_MINUTE: "-1",
    });
    const api = newClient({ baseUrl: server.baseUrl });
    const login = await api.POST("/api/v1/auth/token/", { body: { username: rootUsername, password: rootPassword } });
    assert.ok(login.data, JSON.stringify(login.error));
    const created = await api.POST("/api/v1/account/management/create/", {
      headers: bearer(login.data.access),
      body: { username: "mia", first_name: "Mia", last_name: "Mail", email: "mia@example.com", password: firstPassword, is_staff: true },
    });
    assert.ok(created.data, JSON.stringify(created.error));
    browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ["--no-sandbox", "--disable-gpu", "--no-first-run"] });
    mkdirSync(artifacts, { recursive: true });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    mailpit?.stop();
  });

  /**
   * mailTo waits for a message to address whose subject matches and returns it (the account's
   * verification link and new-device notices go to the same address).
   */
  async function mailTo(address: string, subject: RegExp): Promise<MailpitSummary | undefined> {
    const found = await mailpit.mailsTo(address, (ms) => ms.some((m) => subject.test(m.Subject)), () => `--- authapi ---\n${server?.output() ?? ""}`);
    return found.find((m) => subject.test(m.Subject));
  }

  async function newPage(): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    context.setDefaultTimeout(timeout);
    const page = await context.newPage();
    page.on("console", (msg) => {
      if (msg.text().includes("Content Security Policy")) {
        cspViolations.push(`${page.url()}: ${msg.text()}`);
      }
    });
    page.on("pageerror", (err) => pageErrors.push(`${page.url()}: ${err.message}`));
    return page;
  }

  it("Forgot password? -> the link by mail -> a new password -> signed in", async () => {
    const page = await newPage();
    await page.goto(`${server.baseUrl}/admin/users`);
    await page.getByRole("button", { name: "Forgot password?" }).click();
    await page.getByLabel("Username or email address").fill("mia@example.com");
    await page.screenshot({ path: join(artifacts, "1-forgot.png") });
    await page.getByRole("button", { name: "Send the link" }).click();
    await page.getByText("a link to reset its password is on its way").waitFor();
    await page.screenshot({ path: join(artifacts, "2-sent.png") });

    const summary = await mailTo("mia@example.com", /Reset your .* password/);
    assert.ok(summary);
    assert.match(summary.Subject, /Reset your .* password/);
    const message = await mailpit.message(summary.ID);
    const link = /(http\S+\/admin\/reset-password#token=[A-Za-z0-9_-]+)/.exec(message.Text)?.[1];
    assert.ok(link, `no link in:\n${message.Text}`);
    assert.ok(link.startsWith(`${server.baseUrl}/admin/reset-password#token=`), link);
    assert.ok(message.HTML.includes(link.split("#")[1]!), "the HTML part carries the same link");

    await page.goto(link);
    await page.getByLabel("New password", { exact: true }).waitFor();
    assert.equal(new URL(page.url()).hash, "", "the token is taken out of the address bar");
    await page.getByLabel("New password", { exact: true }).fill(newPassword);
    await page.getByLabel("New password, again").fill(newPassword);
    await page.screenshot({ path: join(artifacts, "3-reset.png") });
    await page.getByRole("button", { name: "Set the password" }).click();
    await page.getByText("Your password is set").waitFor();
    await page.screenshot({ path: join(artifacts, "4-done.png") });

    await page.getByRole("link", { name: "Sign in" }).click();
    await page.getByLabel("Username").fill("mia");
    await page.getByLabel("Password").fill(newPassword);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.getByRole("heading", { name: "Users" }).waitFor();
    await page.screenshot({ path: join(artifacts, "5-signed-in.png") });

    // The notice of the change arrives too; the link works once.
    assert.ok(await mailTo("mia@example.com", /password was changed/));
    const again = await newPage();
    await again.goto(link);
    await again.getByLabel("New password", { exact: true }).fill("yet another passphrase 99");
    await again.getByLabel("New password, again").fill("yet another passphrase 99");
    await again.getByRole("button", { name: "Set the password" }).click();
    await again.getByText("This link is invalid, used or expired").waitFor();
    await again.screenshot({ path: join(artifacts, "6-used-link.png") });

    assert.deepEqual(cspViolations, []);
    assert.deepEqual(pageErrors, []);
  });
});

// Password reset through a real mail server, in Chromium: mailpit (axllent/mailpit, built by
// the Makefile from the version pinned in go.mod, AUTHAPI_MAILPIT_BIN) runs on loopback as the
// SMTP server; "Forgot password?" on the console's sign-in page sends the link, which is read
// through mailpit's HTTP API, opened, and used to set a new password, with which the user
// signs in. Screenshots go to e2e/artifacts/mail/.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { newClient } from "../gen/ts/client.js";
import { createUser, rootPassword, rootUsername, startServer, type RunningServer } from "./authapi.js";
import { ConsoleBrowser, signIn, skipBrowser, timeout } from "./chromium.js";
import { Mailpit, skipMailpit } from "./mailpit.js";

const firstPassword = "correct horse battery staple";
const newPassword = "a fresh passphrase for mia 42";

describe("password reset by mail in Chromium", { skip: skipBrowser || skipMailpit }, () => {
  let mailpit: Mailpit;
  let server: RunningServer;
  let browser: ConsoleBrowser;

  before(async () => {
    mailpit = await Mailpit.start(timeout);
    server = await startServer({
      ...mailpit.settings(),
      AUTHAPI_REFRESHES_PER_IP_PER_MINUTE: "-1",
    });
    const api = newClient({ baseUrl: server.baseUrl });
    const login = await api.POST("/api/v1/auth/token/", { body: { username: rootUsername, password: rootPassword } });
    assert.ok(login.data, JSON.stringify(login.error));
    await createUser(api, login.data.access, "mia", { password: firstPassword, last_name: "Mail", is_staff: true });
    browser = await ConsoleBrowser.launch(server.baseUrl, "mail");
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
    mailpit?.stop();
  });

  const mailTo = (address: string, subject: RegExp) => mailpit.mailTo(address, subject, () => `--- authapi ---\n${server.output()}`);

  it("Forgot password? -> the link by mail -> a new password -> signed in", async () => {
    const page = await browser.newPage();
    await page.goto(`${server.baseUrl}/admin/users`);
    await page.getByRole("button", { name: "Forgot password?" }).click();
    await page.getByLabel("Username or email address").fill("mia@example.com");
    await browser.shot(page, "1-forgot");
    await page.getByRole("button", { name: "Send the link" }).click();
    await page.getByText("a link to reset its password is on its way").waitFor();
    await browser.shot(page, "2-sent");

    const summary = await mailTo("mia@example.com", /Reset your .* password/);
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
    await browser.shot(page, "3-reset");
    await page.getByRole("button", { name: "Set the password" }).click();
    await page.getByText("Your password is set").waitFor();
    await browser.shot(page, "4-done");

    await page.getByRole("link", { name: "Sign in" }).click();
    await page.getByLabel("Username").waitFor();
    await signIn(page, server.baseUrl, "mia", newPassword);
    await page.getByRole("heading", { name: "Users" }).waitFor();
    await browser.shot(page, "5-signed-in");

    // The notice of the change arrives too; the link works once.
    assert.ok(await mailTo("mia@example.com", /password was changed/));
    const again = await browser.newPage();
    await again.goto(link);
    await again.getByLabel("New password", { exact: true }).fill("yet another passphrase 99");
    await again.getByLabel("New password, again").fill("yet another passphrase 99");
    await again.getByRole("button", { name: "Set the password" }).click();
    await again.getByText("This link is invalid, used or expired").waitFor();
    await browser.shot(again, "6-used-link");
    browser.assertClean();
  });
});

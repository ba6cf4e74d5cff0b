// Password reset through a real mail server, in Chromium: mailpit (axllent/mailpit, built by
// the Makefile from the version pinned in go.mod, AUTHAPI_MAILPIT_BIN) runs on loopback as the
// SMTP server; "Forgot password?" on the console's sign-in page sends the link, which is read
// through mailpit's HTTP API, opened, and used to set a new password, with which the user
// signs in. Screenshots go to e2e/artifacts/mail/.
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { chromium, type Browser, type Page } from "playwright-core";

import { newClient } from "../gen/ts/client.js";
import { bearer, freePort, repoRoot, rootPassword, rootUsername, startServer, type RunningServer } from "./authapi.js";

const chromiumPath = process.env.AUTHAPI_E2E_CHROMIUM || "/usr/bin/chromium";
const mailpitPath = process.env.AUTHAPI_MAILPIT_BIN || "";
const artifacts = join(repoRoot, "e2e", "artifacts", "mail");
const timeout = 15_000;
const firstPassword = "correct horse battery staple";
const newPassword = "a fresh passphrase for mia 42";

let skip: string | false = false;
if (!existsSync(chromiumPath) || mailpitPath === "" || !existsSync(mailpitPath)) {
  const why = `${chromiumPath} and AUTHAPI_MAILPIT_BIN (${mailpitPath || "unset"}) are needed: make e2e builds mailpit`;
  if (process.env.CI) {
    throw new Error(why);
  }
  skip = why;
}

interface MailpitSummary {
  ID: string;
  MessageID: string;
  Subject: string;
  To: { Address: string }[];
}

describe("password reset by mail in Chromium", { skip }, () => {
  let mailpit: ChildProcess;
  let mailpitURL: string;
  let mailpitOutput = "";
  let server: RunningServer;
  let browser: Browser;
  const cspViolations: string[] = [];
  const pageErrors: string[] = [];

  before(async () => {
    const [httpPort, smtpPort] = [await freePort(), await freePort()];
    mailpitURL = `http://127.0.0.1:${httpPort}`;
    mailpit = spawn(mailpitPath, ["--listen", `127.0.0.1:${httpPort}`, "--smtp", `127.0.0.1:${smtpPort}`, "--disable-version-check"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    mailpit.stdout?.on("data", (c: Buffer) => (mailpitOutput += c.toString()));
    mailpit.stderr?.on("data", (c: Buffer) => (mailpitOutput += c.toString()));
    await waitFor(async () => (await fetch(`${mailpitURL}/api/v1/messages`)).ok, "mailpit's API");
    server = await startServer({
      AUTHAPI_SMTP_HOST: "127.0.0.1",
      AUTHAPI_SMTP_PORT: String(smtpPort),
      AUTHAPI_SMTP_TLS: "none",
      AUTHAPI_MAIL_FROM: "authapi <auth@example.com>",
      AUTHAPI_MAIL_REQUIRED: "true",
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
    mailpit?.kill("SIGTERM");
  });

  async function waitFor(ok: () => Promise<boolean>, what: string): Promise<void> {
    const deadline = Date.now() + timeout;
    let last = "";
    while (Date.now() < deadline) {
      try {
        if (await ok()) {
          return;
        }
      } catch (err) {
        last = String(err);
      }
      await sleep(100);
    }
    throw new Error(`${what}: not within ${timeout} ms (${last})\n--- mailpit ---\n${mailpitOutput}\n--- authapi ---\n${server?.output() ?? ""}`);
  }

  /** mailsTo waits for n messages to address and returns them, oldest first. */
  async function mailsTo(address: string, n: number): Promise<MailpitSummary[]> {
    let found: MailpitSummary[] = [];
    await waitFor(async () => {
      const res = await fetch(`${mailpitURL}/api/v1/search?query=${encodeURIComponent(`to:${address}`)}`);
      const body = (await res.json()) as { messages: MailpitSummary[] };
      found = body.messages.reverse();
      return found.length >= n;
    }, `${n} message(s) to ${address}`);
    return found;
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

    const [summary] = await mailsTo("mia@example.com", 1);
    assert.ok(summary);
    assert.match(summary.Subject, /Reset your .* password/);
    const message = (await (await fetch(`${mailpitURL}/api/v1/message/${summary.ID}`)).json()) as { Text: string; HTML: string };
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
    const both = await mailsTo("mia@example.com", 2);
    assert.match(both[1]!.Subject, /password was changed/);
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

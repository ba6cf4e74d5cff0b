// The mail server of the browser tests that read mail: mailpit (axllent/mailpit, built by the
// Makefile from the version pinned in go.mod: AUTHAPI_MAILPIT_BIN) on loopback, its SMTP port
// for authapi and its HTTP API for the tests.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";

import { freePort } from "./authapi.js";

const mailpitPath = process.env.AUTHAPI_MAILPIT_BIN || "";

/** skipMailpit is why the mail tests cannot run here, or false; in CI a missing mailpit is an error. */
export const skipMailpit: string | false = (() => {
  if (mailpitPath !== "" && existsSync(mailpitPath)) return false;
  const why = `AUTHAPI_MAILPIT_BIN (${mailpitPath || "unset"}) is needed: make e2e builds mailpit`;
  if (process.env.CI) {
    throw new Error(why);
  }
  return why;
})();

/** MailpitSummary is what mailpit's search tells of a message. */
export interface MailpitSummary {
  ID: string;
  MessageID: string;
  Subject: string;
  To: { Address: string }[];
}

/** waitFor polls ok every 100 ms until it holds, failing after timeout ms with what and more(). */
export async function waitFor(ok: () => Promise<boolean>, what: string, timeout: number, more: () => string = () => ""): Promise<void> {
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
  throw new Error(`${what}: not within ${timeout} ms (${last})\n${more()}`);
}

/** Mailpit is one running mailpit. */
export class Mailpit {
  private outputText = "";

  private constructor(
    private readonly process: ChildProcess,
    readonly url: string,
    readonly smtpPort: number,
    private readonly timeout: number,
  ) {
    process.stdout?.on("data", (c: Buffer) => (this.outputText += c.toString()));
    process.stderr?.on("data", (c: Buffer) => (this.outputText += c.toString()));
  }

  /** start runs mailpit on free loopback ports and resolves once its API answers. */
  static async start(timeout: number): Promise<Mailpit> {
    // Each port is free when asked, so the second may be the first again (freed by then).
    const httpPort = await freePort();
    let smtpPort = await freePort();
    while (smtpPort === httpPort) {
      smtpPort = await freePort();
    }
    const child = spawn(mailpitPath, ["--listen", `127.0.0.1:${httpPort}`, "--smtp", `127.0.0.1:${smtpPort}`, "--disable-version-check"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const m = new Mailpit(child, `http://127.0.0.1:${httpPort}`, smtpPort, timeout);
    await m.waitFor(async () => (await fetch(`${m.url}/api/v1/messages`)).ok, "mailpit's API");
    return m;
  }

  /** settings are authapi's settings to send its mail here (and to refuse to start without it). */
  settings(): Record<string, string> {
    return {
      AUTHAPI_SMTP_HOST: "127.0.0.1",
      AUTHAPI_SMTP_PORT: String(this.smtpPort),
      AUTHAPI_SMTP_TLS: "none",
      AUTHAPI_MAIL_FROM: "authapi <auth@example.com>",
      AUTHAPI_MAIL_REQUIRED: "true",
    };
  }

  /** output is what mailpit wrote. */
  output(): string {
    return this.outputText;
  }

  stop(): void {
    this.process.kill("SIGTERM");
  }

  /** waitFor is waitFor with mailpit's output (and extra, e.g. authapi's) on failure. */
  waitFor(ok: () => Promise<boolean>, what: string, extra: () => string = () => ""): Promise<void> {
    return waitFor(ok, what, this.timeout, () => `--- mailpit ---\n${this.outputText}\n${extra()}`);
  }

  /** mailsTo waits until ok holds of the messages to address (oldest first) and returns them. */
  async mailsTo(address: string, ok: (found: MailpitSummary[]) => boolean, extra?: () => string): Promise<MailpitSummary[]> {
    let found: MailpitSummary[] = [];
    await this.waitFor(
      async () => {
        const res = await fetch(`${this.url}/api/v1/search?query=${encodeURIComponent(`to:${address}`)}`);
        const body = (await res.json()) as { messages: MailpitSummary[] };
        found = body.messages.reverse();
        return ok(found);
      },
      `messages to ${address}`,
      extra,
    );
    return found;
  }

  /**
   * mailTo waits for a message to address whose subject matches and returns it (an account's
   * verification link, notices and reset links go to the same address).
   */
  async mailTo(address: string, subject: RegExp, extra?: () => string): Promise<MailpitSummary> {
    const found = await this.mailsTo(address, (ms) => ms.some((m) => subject.test(m.Subject)), extra);
    return found.find((m) => subject.test(m.Subject))!;
  }

  /** message reads one message's text and HTML parts. */
  async message(id: string): Promise<{ Text: string; HTML: string }> {
    return (await (await fetch(`${this.url}/api/v1/message/${id}`)).json()) as { Text: string; HTML: string };
  }
}

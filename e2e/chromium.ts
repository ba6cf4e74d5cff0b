// Shared by the browser tests: Debian's headless Chromium through playwright-core (the package:
// apt-get install chromium; AUTHAPI_E2E_CHROMIUM names another build); for the console's,
// pages that record what its CSP blocked, uncaught errors and requests to other origins,
// axe-core's check, and screenshots at a desktop's and a phone's width.
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { AxeBuilder } from "@axe-core/playwright";
import { chromium, type Browser, type BrowserContext, type Locator, type Page } from "playwright-core";

import { repoRoot } from "./authapi.js";

const chromiumPath = process.env.AUTHAPI_E2E_CHROMIUM || "/usr/bin/chromium";
const chromiumArgs = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];
export const timeout = 15_000;
export const desktop = { width: 1400, height: 900 };
export const phone = { width: 390, height: 844 };

/**
 * skipBrowser is why the browser tests cannot run here (Chromium missing), or false. In CI a
 * missing Chromium is an error, not a skip.
 */
export const skipBrowser: string | false = (() => {
  if (existsSync(chromiumPath)) return false;
  if (process.env.CI) {
    throw new Error(`${chromiumPath} is missing; CI must run the browser test: apt-get install -y chromium`);
  }
  return `${chromiumPath} is missing: apt-get install -y chromium to run the browser tests`;
})();

/** launchChromium starts a headless Chromium. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath, headless: true, args: chromiumArgs });
}

/**
 * ConsoleBrowser is one Chromium for a suite: fresh pages on the server's origin, watched,
 * and screenshots into artifacts/<dir>.
 */
export class ConsoleBrowser {
  readonly cspViolations: string[] = [];
  readonly pageErrors: string[] = [];
  readonly outside: string[] = [];
  private readonly contexts: BrowserContext[] = [];

  private constructor(
    readonly browser: Browser,
    private readonly origin: string,
    private readonly artifacts: string,
  ) {}

  /** launch starts Chromium for the server at origin; screenshots go to e2e/artifacts/<dir>/. */
  static async launch(origin: string, dir: string): Promise<ConsoleBrowser> {
    const browser = await launchChromium();
    const artifacts = join(repoRoot, "e2e", "artifacts", dir);
    mkdirSync(artifacts, { recursive: true });
    return new ConsoleBrowser(browser, origin, artifacts);
  }

  async close(): Promise<void> {
    for (const c of this.contexts) {
      await c.close().catch(() => {});
    }
    await this.browser.close();
  }

  /** newPage opens a fresh browser context (its own sessionStorage) and watches it. */
  async newPage(viewport = desktop): Promise<Page> {
    const context = await this.browser.newContext({ viewport });
    context.setDefaultTimeout(timeout);
    this.contexts.push(context);
    const page = await context.newPage();
    page.on("console", (msg) => {
      if (msg.text().includes("Content Security Policy")) {
        this.cspViolations.push(`${page.url()}: ${msg.text()}`);
      }
    });
    page.on("pageerror", (err) => this.pageErrors.push(`${page.url()}: ${err.message}`));
    page.on("request", (request) => {
      const url = new URL(request.url());
      if (!["data:", "blob:"].includes(url.protocol) && url.origin !== this.origin) {
        this.outside.push(request.url());
      }
    });
    return page;
  }

  /** shot saves the page as it is, and again at a phone's width (`-phone`), then restores the size. */
  async shot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: join(this.artifacts, `${name}.png`), fullPage: true });
    const size = page.viewportSize();
    if (size === null || size.width <= phone.width) return;
    await page.setViewportSize(phone);
    await page.screenshot({ path: join(this.artifacts, `${name}-phone.png`), fullPage: true });
    await page.setViewportSize(size);
  }

  /** assertClean fails on anything the watched pages recorded. */
  assertClean(): void {
    assert.deepEqual(this.cspViolations, [], "what the console's CSP blocked");
    assert.deepEqual(this.pageErrors, [], "uncaught errors in the console");
    assert.deepEqual(this.outside, [], "requests to other origins");
  }
}

/** heading waits for the page's h1 to read text. */
export async function heading(page: Page, text: string | RegExp): Promise<void> {
  await page.getByRole("heading", { level: 1, name: text }).waitFor();
}

/**
 * signIn opens path (below /admin) at origin and signs in with a password on the page it
 * shows first; what comes next (a page, the second factor step) is the caller's to wait for.
 */
export async function signIn(page: Page, origin: string, username: string, password: string, path = "/users"): Promise<void> {
  await page.goto(`${origin}/admin${path}`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in", exact: true }).click();
}

/** signOut signs out with the console's button and waits for the sign-in page. */
export async function signOut(page: Page): Promise<void> {
  await page.getByRole("button", { name: "Sign out" }).click();
  await heading(page, "Sign in");
}

/**
 * askNewRecoveryCodes records the page's re-authentication and recovery-code calls ("path
 * status", in order) from now on, asks the Security card for new codes and confirms: the API
 * answers with a step-up, so the "Confirm it's you" prompt comes up. It returns the calls, the
 * confirmation dialog and the prompt.
 */
export async function askNewRecoveryCodes(page: Page): Promise<{ calls: string[]; confirm: Locator; prompt: Locator }> {
  const calls: string[] = [];
  page.on("response", (r) => {
    const path = new URL(r.url()).pathname;
    if (path.startsWith("/api/v1/auth/reauthenticate/") || path.startsWith("/api/v1/account/mfa/recovery-codes/")) {
      calls.push(`${path} ${r.status()}`);
    }
  });
  await page.getByRole("region", { name: "Security" }).getByRole("button", { name: "New codes" }).click();
  const confirm = page.getByRole("dialog", { name: "Make new recovery codes?" });
  await confirm.getByRole("button", { name: "Make new codes" }).click();
  return { calls, confirm, prompt: page.getByRole("dialog", { name: "Confirm it's you" }) };
}

/** axe runs axe-core on the page as it is and fails on serious or critical violations. */
export async function axe(page: Page, what: string): Promise<void> {
  const result = await new AxeBuilder({ page }).analyze();
  const bad = result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help}: ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  assert.deepEqual(bad, [], `axe on ${what}`);
}

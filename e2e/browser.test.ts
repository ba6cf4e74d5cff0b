// Browser test of the Swagger UI the binary serves, in Debian's headless Chromium driven by
// playwright-core: every operation of the served spec is listed; logging in with "Try it
// out", pasting the access token into Authorize and calling GET /api/v1/ answers Welcome!;
// and no request leaves the machine (the UI's assets are embedded in the binary).
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Browser, Locator, Page } from "playwright-core";

import { repoRoot, rootPassword, rootUsername, specOperations, startServer, type RunningServer } from "./authapi.js";
import { launchChromium, skipBrowser, timeout } from "./chromium.js";

const artifacts = join(repoRoot, "e2e", "artifacts");
const screenshot = join(artifacts, "swagger-ui.png");

describe("Swagger UI in Chromium", { skip: skipBrowser }, () => {
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  const requested: string[] = [];
  const cspViolations: string[] = [];

  before(async () => {
    server = await startServer();
    browser = await launchChromium();
    const context = await browser.newContext({ viewport: { width: 1280, height: 1000 } });
    context.setDefaultTimeout(timeout);
    page = await context.newPage();
    page.on("request", (request) => requested.push(request.url()));
    // Chromium reports every resource or inline code that the page's CSP blocked on the console.
    page.on("console", (msg) => {
      if (msg.text().includes("Content Security Policy")) {
        cspViolations.push(msg.text());
      }
    });
  });

  after(async () => {
    await browser?.close();
    await server?.stop();
  });

  /** operation is the block Swagger UI renders for one operation (id operations-TAG-OPERATIONID). */
  function operation(tag: string, operationId: string): Locator {
    return page.locator(`[id="operations-${tag}-${operationId}"]`);
  }

  async function tryItOut(op: Locator): Promise<void> {
    if (!(await op.locator(".opblock-body").isVisible())) {
      await op.locator(".opblock-summary").first().click();
    }
    await op.getByRole("button", { name: "Try it out" }).click();
  }

  /** execute presses Execute and returns the status and body of the live response shown. */
  async function execute(op: Locator): Promise<{ status: string; body: string }> {
    await op.getByRole("button", { name: "Execute" }).click();
    const live = op.locator(".live-responses-table .response").first();
    await live.waitFor();
    const status = (await live.locator(".response-col_status").innerText()).trim();
    const body = await live.locator(".response-col_description pre").first().innerText();
    return { status, body };
  }

  it("lists every operation of the served spec", async () => {
    const res = await fetch(`${server.baseUrl}/api/v1/openapi.json`);
    assert.equal(res.status, 200);
    const spec: unknown = await res.json();
    const ops = specOperations(spec);
    assert.ok(ops.length >= 20, "the served spec lists the operations");

    await page.goto(`${server.baseUrl}/api/v1/swagger/ui/`);
    await page.locator(".opblock").first().waitFor();
    assert.match(await page.locator(".info .title").innerText(), /authapi/);

    const paths = (spec as { paths: Record<string, Record<string, { tags?: string[] }>> }).paths;
    const missing: string[] = [];
    for (const { method, path, operationId } of ops) {
      const tag = paths[path]?.[method.toLowerCase()]?.tags?.[0] ?? "default";
      const op = operation(tag, operationId);
      if ((await op.count()) !== 1 || !(await op.isVisible())) {
        missing.push(`${operationId} (${method} ${path}): no block`);
        continue;
      }
      const shownMethod = (await op.locator(".opblock-summary-method").innerText()).trim();
      const shownPath = await op.locator(".opblock-summary-path").getAttribute("data-path");
      if (shownMethod !== method || shownPath !== path) {
        missing.push(`${operationId} (${method} ${path}): shown as ${shownMethod} ${shownPath}`);
      }
    }
    assert.deepEqual(missing, [], "operations Swagger UI does not list as the spec says");
    assert.equal(await page.locator(".opblock").count(), ops.length, "no operation the spec lacks");
  });

  it("logs in with Try it out, authorizes with the token and is welcomed", async () => {
    // POST /api/v1/auth/token/: Try it out with the superuser's credentials.
    const obtain = operation("auth", await operationID("POST", "/api/v1/auth/token/"));
    await tryItOut(obtain);
    const body = obtain.locator("textarea.body-param__text");
    await body.fill(JSON.stringify({ username: rootUsername, password: rootPassword }));
    const login = await execute(obtain);
    assert.equal(login.status, "200", login.body);
    const access: unknown = JSON.parse(login.body).access;
    assert.ok(typeof access === "string" && access.split(".").length === 3, `access token in ${login.body}`);

    // Authorize: paste the access token into bearerAuth.
    await page.locator(".auth-wrapper .authorize").click();
    const dialog = page.locator(".dialog-ux .modal-ux");
    const scheme = dialog.locator(".auth-container").filter({ hasText: "bearerAuth" });
    await scheme.locator("input").fill(access);
    await scheme.locator("button.authorize").click(); // "Authorize", labelled "Apply credentials"
    await scheme.locator("button", { hasText: "Logout" }).waitFor(); // shown once authorized
    await scheme.locator("button.btn-done").click(); // "Close"
    await dialog.waitFor({ state: "detached" });
    // The token is kept by the page only, never in storage that outlives the browser.
    const stored = await page.evaluate(() => JSON.stringify({ ...localStorage }));
    assert.ok(!stored.includes(access), `the token in localStorage: ${stored.slice(0, 200)}`);

    // GET /api/v1/: Try it out, Execute, Welcome!
    const welcome = operation("api", await operationID("GET", "/api/v1/"));
    await tryItOut(welcome);
    const answer = await execute(welcome);
    assert.equal(answer.status, "200", answer.body);
    assert.equal(JSON.parse(answer.body).message, "Welcome!");
    assert.match(await welcome.locator(".curl").innerText(), /Authorization: Bearer /, "the request carried the token");

    await welcome.locator(".live-responses-table").scrollIntoViewIfNeeded();
    mkdirSync(artifacts, { recursive: true });
    await welcome.screenshot({ path: screenshot });
  });

  it("works within its strict Content Security Policy", () => {
    assert.deepEqual(cspViolations, [], "what the page's CSP blocked");
  });

  it("made no request that left the machine", () => {
    assert.ok(requested.length > 0, "the page made requests");
    const outside = requested.filter((raw) => {
      const url = new URL(raw);
      if (url.protocol === "data:" || url.protocol === "blob:") {
        return false;
      }
      return !(["http:", "https:"].includes(url.protocol) && ["127.0.0.1", "localhost"].includes(url.hostname));
    });
    assert.deepEqual(outside, [], "requests to hosts other than 127.0.0.1/localhost");
  });

  /** operationID reads the operationId of METHOD path from the spec the page shows. */
  async function operationID(method: string, path: string): Promise<string> {
    const res = await fetch(`${server.baseUrl}/api/v1/openapi.json`);
    const spec: unknown = await res.json();
    const op = specOperations(spec).find((o) => o.method === method && o.path === path);
    assert.ok(op, `${method} ${path} is in the spec`);
    return op.operationId;
  }
});

// Browser tests of the admin console at /admin/, in Debian's headless Chromium driven by
// playwright-core, against the built binary: what a superuser, a staff member and a plain user
// can do and see; that the URL holds the users list's state; that the tokens are kept as
// designed (access in memory, refresh in sessionStorage, rotated; a 401 refreshes once, then
// signs out); that every page runs under the console's CSP with nothing loaded from elsewhere;
// and that axe-core finds no serious or critical accessibility violation on any page.
// Screenshots of every page, at 1400x900 and at a phone's width, go to e2e/artifacts/console/.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Page } from "playwright-core";

import { newClient, type AuthAPIClient } from "../gen/ts/client.js";
import { bearer, createUser, rootPassword, rootUsername, startServer, type NewUser, type RunningServer } from "./authapi.js";
import { axe, ConsoleBrowser, desktop, heading, phone, signIn, skipBrowser } from "./chromium.js";

const userPassword = "correct horse battery staple";
const refreshKey = "authapi.console.refresh";
const lastSuperuserMessage = "The last active superuser cannot be deleted, deactivated or demoted.";

describe("admin console in Chromium", { skip: skipBrowser }, () => {
  let server: RunningServer;
  let chrome: ConsoleBrowser;
  let api: AuthAPIClient;
  let rootAccess: string;

  before(async () => {
    // Every page load resumes the session with a refresh: the per-IP refresh limit (one IP
    // here) is off so that the suite's many loads are not throttled.
    server = await startServer({ AUTHAPI_REFRESHES_PER_IP_PER_MINUTE: "-1" });
    api = newClient({ baseUrl: server.baseUrl });
    const login = await api.POST("/api/v1/auth/token/", { body: { username: rootUsername, password: rootPassword } });
    assert.ok(login.data, JSON.stringify(login.error));
    rootAccess = login.data.access;
    await addUser("sam", { is_staff: true, first_name: "Sam", last_name: "Staff" });
    await addUser("pat", { first_name: "Pat", last_name: "Plain" });
    chrome = await ConsoleBrowser.launch(server.baseUrl, "console");
  });

  after(async () => {
    await chrome?.close();
    await server?.stop();
  });

  const addUser = (username: string, extra: Omit<NewUser, "password"> = {}): Promise<number> =>
    createUser(api, rootAccess, username, { password: userPassword, ...extra });

  async function getUser(id: number) {
    return api.GET("/api/v1/account/management/{id}/", { headers: bearer(rootAccess), params: { path: { id } } });
  }

  const newPage = (viewport = desktop): Promise<Page> => chrome.newPage(viewport);
  const shot = (page: Page, name: string): Promise<void> => chrome.shot(page, name);

  async function signInAsRoot(path = "/users"): Promise<Page> {
    const page = await newPage();
    await signIn(page, server.baseUrl, rootUsername, rootPassword, path);
    await page.getByRole("navigation", { name: "Console" }).waitFor();
    return page;
  }

  /** usersShown lists the usernames in the users table, in order. */
  async function usersShown(page: Page): Promise<string[]> {
    await page.locator("table[aria-busy=false]").waitFor();
    return page.locator("table.data tbody tr td:nth-child(2) a").allInnerTexts();
  }

  it("signs in, refuses a wrong password with the API's message, and keeps tokens as designed", async () => {
    const page = await newPage();
    await page.goto(`${server.baseUrl}/admin/`);
    await heading(page, "Sign in");
    await axe(page, "the sign-in page");
    await shot(page, "sign-in");

    await page.getByLabel("Username").fill(rootUsername);
    await page.getByLabel("Password").fill("wrong password");
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.getByRole("alert").filter({ hasText: "No active account found with the given credentials" }).waitFor();

    await page.getByLabel("Password").fill(rootPassword);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await heading(page, "Users");
    assert.match(page.url(), /\/admin\/users$/, "the root path opens the users");

    // The access token is in memory only; the refresh token in sessionStorage, nothing else.
    const storage = await page.evaluate(() => ({
      session: Object.keys(sessionStorage),
      local: Object.keys(localStorage),
      cookies: document.cookie,
    }));
    assert.deepEqual(storage, { session: [refreshKey], local: [], cookies: "" });

    // A reload resumes with the refresh token, which rotates.
    const before = await page.evaluate((k) => sessionStorage.getItem(k), refreshKey);
    await page.reload();
    await heading(page, "Users");
    const after = await page.evaluate((k) => sessionStorage.getItem(k), refreshKey);
    assert.ok(before && after && before !== after, "the refresh token rotated on resume");
  });

  it("tells a user who is not staff that they have no access, and signs them out", async () => {
    const page = await newPage();
    await signIn(page, server.baseUrl, "pat", userPassword);
    await heading(page, "No access to the console");
    await page.getByText("You are signed in as pat").waitFor();
    assert.equal(await page.getByRole("navigation", { name: "Console" }).count(), 0, "no console for pat");
    await axe(page, "the no-access page");
    await shot(page, "no-access");
    await page.getByRole("button", { name: "Sign out" }).click();
    await heading(page, "Sign in");
  });

  it("pages through the users with the state in the URL", async () => {
    for (let i = 1; i <= 24; i++) {
      await addUser(`page${String(i).padStart(2, "0")}`);
    }
    const page = await signInAsRoot("/users?limit=20");
    const total = Number((await api.GET("/api/v1/account/management/", { headers: bearer(rootAccess), params: { query: { limit: 1 } } })).response.headers.get("X-Total-Count"));
    await page.getByText(`1–20 of ${total} users`).waitFor();
    const first = await usersShown(page);
    assert.equal(first.length, 20);

    await page.getByRole("button", { name: "Next" }).click();
    await page.waitForURL(/offset=20/);
    await page.getByText(`21–${Math.min(40, total)} of ${total} users`).waitFor();
    const second = await usersShown(page);
    assert.equal(second.length, Math.min(20, total - 20));
    assert.equal(second.filter((u) => first.includes(u)).length, 0, "the second page repeats none of the first");

    // A shared link opens the same page; Back returns to the first.
    const link = page.url();
    const other = await signInAsRoot(new URL(link).pathname.replace(/^\/admin/, "") + new URL(link).search);
    assert.deepEqual(await usersShown(other), second, "a copied link shows the same page");
    await page.goBack();
    await page.getByText(`1–20 of ${total} users`).waitFor();
    assert.deepEqual(await usersShown(page), first);

    // The page size is in the URL too.
    await page.getByLabel("Rows per page").selectOption("50");
    await page.waitForURL(/limit=50/);
    assert.equal((await usersShown(page)).length, Math.min(50, total));
    await axe(page, "the users page");
    await shot(page, "users");
  });

  it("searches, filters and sorts with the state in the URL, by keyboard too", async () => {
    await addUser("zed", { first_name: "Zed", last_name: "Zebra", email: "zed@zoo.example" });
    const inactive = await addUser("zoe", { first_name: "Zoe", last_name: "Zebra", email: "zoe@zoo.example" });
    await api.PATCH("/api/v1/account/management/{id}/update/", { headers: bearer(rootAccess), params: { path: { id: inactive } }, body: { is_active: false } });

    const page = await signInAsRoot();
    await heading(page, "Users");
    await page.getByLabel("Search users").fill("zebra");
    await page.waitForURL(/search=zebra/);
    assert.deepEqual(await usersShown(page), ["zed", "zoe"]);
    await page.getByText("1–2 of 2 users").waitFor();

    await page.getByLabel("Active").selectOption("false");
    await page.waitForURL(/is_active=false/);
    assert.deepEqual(await usersShown(page), ["zoe"]);
    await page.getByLabel("Active").selectOption("");
    await page.waitForURL((url) => !url.search.includes("is_active"));

    // Sorting by a column, by keyboard: Enter on the header's button; again for descending.
    const byUsername = page.getByRole("button", { name: /^User: sort/ });
    await byUsername.focus();
    await page.keyboard.press("Enter");
    await page.waitForURL(/ordering=username/);
    assert.deepEqual(await usersShown(page), ["zed", "zoe"]);
    assert.equal(await page.locator("th[aria-sort=ascending]").innerText(), "USER");
    await page.keyboard.press("Enter");
    await page.waitForURL(/ordering=-username/);
    assert.deepEqual(await usersShown(page), ["zoe", "zed"]);

    // Staff and superuser filters.
    await page.getByLabel("Search users").fill("");
    await page.waitForURL((url) => !url.search.includes("search="));
    await page.getByLabel("Superuser").selectOption("true");
    await page.waitForURL(/is_superuser=true/);
    assert.deepEqual(await usersShown(page), [rootUsername]);
    await page.getByLabel("Superuser").selectOption("");
    await page.getByLabel("Staff").selectOption("true");
    await page.waitForURL(/is_staff=true/);
    assert.ok((await usersShown(page)).includes("sam"));
    assert.ok(!(await usersShown(page)).includes("pat"));

    // A shared link restores search, filter and sort, in the controls too.
    const link = new URL(`${server.baseUrl}/admin/users?search=zebra&is_active=true&ordering=-username`);
    const other = await signInAsRoot(link.pathname.replace(/^\/admin/, "") + link.search);
    assert.deepEqual(await usersShown(other), ["zed"]);
    assert.equal(await other.getByLabel("Search users").inputValue(), "zebra");
    assert.equal(await other.getByLabel("Active").inputValue(), "true");
    assert.equal(await other.locator("th[aria-sort=descending]").innerText(), "USER");
    await axe(other, "the users page, filtered");
    await shot(other, "users-filtered");

    // No match: the empty state offers to clear the filters.
    await other.getByLabel("Search users").fill("nobody-by-this-name");
    await other.getByText("No users match.").waitFor();
    await other.locator(".empty").getByRole("button", { name: "Clear filters" }).click();
    await other.waitForURL((url) => !url.search.includes("search="));
  });

  it("creates a user, showing the API's field errors next to each field", async () => {
    const page = await signInAsRoot();
    await page.getByRole("link", { name: "New user" }).click();
    await heading(page, "New user");
    await page.getByLabel("Username").fill("pat"); // taken
    await page.getByLabel("Email").fill("not-an-email");
    await page.getByLabel("First name").fill("Nina");
    await page.getByLabel("Last name").fill("New");
    await page.getByLabel("Password").fill("12345678"); // all digits, common
    await page.getByRole("button", { name: "Create user" }).click();

    // Each field's messages sit below it, and the input says it is invalid.
    const email = page.getByLabel("Email");
    await page.locator("[data-field=email]").waitFor();
    assert.equal(await email.getAttribute("aria-invalid"), "true");
    assert.match(await page.locator("[data-field=email]").innerText(), /Enter a valid email address/);
    assert.match(await page.locator("[data-field=password]").innerText(), /entirely numeric/);
    const described = await page.getByLabel("Password").getAttribute("aria-describedby");
    assert.ok(described?.split(" ").some((id) => id.endsWith("-err")), "the password's errors describe it");
    await axe(page, "the new-user form with errors");
    await shot(page, "user-new-errors");

    await page.getByLabel("Username").fill("nina");
    await email.fill("nina@example.com");
    await page.getByLabel("Password").fill(userPassword);
    await page.getByRole("button", { name: "Create user" }).click();
    await heading(page, "nina");
    await page.getByText("User nina was created.").waitFor();
    const id = Number(/\/users\/(\d+)$/.exec(page.url())?.[1]);
    const { data } = await getUser(id);
    assert.equal(data?.email, "nina@example.com");
  });

  it("edits a user, sets a new password, deactivates and activates them", async () => {
    const id = await addUser("olga", { first_name: "Olga", last_name: "Old" });
    const page = await signInAsRoot(`/users/${id}`);
    await heading(page, "olga");
    await axe(page, "a user's page");
    await shot(page, "user");

    // Edit.
    await page.getByLabel("Last name").fill("Newname");
    await page.getByLabel("Staff").check();
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.getByText("Changes saved.").waitFor();
    let { data } = await getUser(id);
    assert.equal(data?.last_name, "Newname");
    assert.equal(data?.is_staff, true);

    // A field error from the API, next to its field.
    await page.getByLabel("Username").fill("pat");
    await page.getByRole("button", { name: "Save changes" }).click();
    await page.locator("[data-field=username]").filter({ hasText: /already exists|taken/ }).waitFor();
    await page.getByRole("button", { name: "Reset" }).click();
    assert.equal(await page.getByLabel("Username").inputValue(), "olga");

    // Set a new password: it works for a login at once.
    await page.getByLabel("New password", { exact: true }).fill("short");
    await page.getByRole("button", { name: "Set password" }).click();
    await page.locator("[data-field=password]").filter({ hasText: /too short/ }).waitFor();
    await page.getByLabel("New password", { exact: true }).fill("a brand new passphrase");
    await page.getByRole("button", { name: "Set password" }).click();
    await page.getByText("Password set.").waitFor();
    const login = await api.POST("/api/v1/auth/token/", { body: { username: "olga", password: "a brand new passphrase" } });
    assert.ok(login.data, "olga logs in with the new password");

    // Deactivate, confirmed in a dialog that names the user.
    await page.getByRole("button", { name: "Deactivate" }).click();
    const dialog = page.getByRole("dialog", { name: "Deactivate olga?" });
    await dialog.waitFor();
    await axe(page, "the deactivate dialog");
    await dialog.getByRole("button", { name: "Deactivate olga" }).click();
    await page.getByText("olga is deactivated and signed out everywhere.").waitFor();
    ({ data } = await getUser(id));
    assert.equal(data?.is_active, false);
    const refused = await api.GET("/api/v1/account/", { headers: bearer(login.data.access) });
    assert.equal(refused.response.status, 401, "the deactivated user's token stops working");

    await page.getByRole("button", { name: "Activate", exact: true }).click();
    await page.getByRole("dialog", { name: "Activate olga?" }).getByRole("button", { name: "Activate olga" }).click();
    await page.getByText("olga is active again.").waitFor();
    ({ data } = await getUser(id));
    assert.equal(data?.is_active, true);
  });

  it("deletes a user only after a confirmation that names them", async () => {
    const id = await addUser("carl");
    const page = await signInAsRoot(`/users/${id}`);
    await heading(page, "carl");
    await page.getByRole("button", { name: "Delete" }).click();
    const dialog = page.getByRole("dialog", { name: "Delete carl?" });
    await dialog.waitFor();
    assert.match(await dialog.innerText(), /carl \(carl@example\.com\)/);
    await shot(page, "user-delete-dialog");
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await dialog.waitFor({ state: "hidden" });
    assert.ok((await getUser(id)).data, "Cancel deletes nothing");

    await page.getByRole("button", { name: "Delete" }).click();
    await dialog.getByRole("button", { name: "Delete carl" }).click();
    await heading(page, "Users");
    await page.getByText("User carl was deleted.").waitFor();
    assert.equal((await getUser(id)).response.status, 404);
  });

  it("shows the last-superuser guard's message as the API sends it; one's own page sends to My account for the password", async () => {
    const me = await api.GET("/api/v1/account/", { headers: bearer(rootAccess) });
    const page = await signInAsRoot(`/users/${me.data!.id}`);
    await heading(page, rootUsername);

    // Superusers neither deactivate themselves nor set their own password here: the API
    // refuses both, and the password is changed on My account, with the current one.
    assert.equal(await page.getByRole("button", { name: "Deactivate" }).count(), 0, "no Deactivate on one's own page");
    assert.equal(await page.getByRole("button", { name: "Set password" }).count(), 0, "no Set password on one's own page");
    await page.getByRole("region", { name: "Your password" }).getByRole("link", { name: "My account" }).waitFor();

    await page.getByRole("button", { name: "Delete" }).click();
    const del = page.getByRole("dialog", { name: `Delete ${rootUsername}?` });
    await del.getByRole("button", { name: `Delete ${rootUsername}` }).click();
    await del.getByRole("alert").filter({ hasText: lastSuperuserMessage }).waitFor();
    await shot(page, "last-superuser");
    assert.equal((await getUser(me.data!.id)).data?.is_active, true);
  });

  it("shows staff everything read-only, with no write controls", async () => {
    const page = await newPage();
    await signIn(page, server.baseUrl, "sam", userPassword);
    await heading(page, "Users");
    await page.getByText("Staff, read-only").waitFor();
    await usersShown(page);
    assert.equal(await page.getByRole("link", { name: "New user" }).count(), 0);
    const nav = await page.getByRole("navigation", { name: "Console" }).getByRole("link").allInnerTexts();
    assert.deepEqual(nav.map((s) => s.trim()), ["Users", "My account"]);

    await page.getByRole("link", { name: "pat", exact: true }).click();
    await heading(page, "pat");
    await page.getByText("Read-only: only superusers change users.").waitFor();
    for (const name of ["Deactivate", "Delete", "Save changes", "Set password"]) {
      assert.equal(await page.getByRole("button", { name }).count(), 0, `staff see no ${name} button`);
    }
    assert.equal(await page.getByRole("textbox").count(), 0, "staff get no form fields");
    await axe(page, "a user's page, read-only");
    await shot(page, "user-staff");
  });

  it("lists a user's sessions, revokes one, and logs them out everywhere", async () => {
    const id = await addUser("vera");
    const logins: string[] = [];
    for (const ua of ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1", "curl/8.5.0"]) {
      const { data } = await api.POST("/api/v1/auth/token/", { headers: { "User-Agent": ua }, body: { username: "vera", password: userPassword } });
      assert.ok(data);
      logins.push(data.access);
    }
    const page = await signInAsRoot(`/users/${id}`);
    await heading(page, "vera");
    const table = page.getByRole("table", { name: "Sessions of vera" });
    await table.getByText("Chrome on Windows").waitFor();
    assert.equal(await table.locator("tbody tr").count(), 3);
    assert.match(await table.innerText(), /127\.0\.0\.1/);
    await page.getByRole("table", { name: "Audit events of vera" }).getByText("Signed in").first().waitFor();
    await axe(page, "a user's page with sessions and events");
    await shot(page, "user-sessions");

    // Revoke the curl session: its token stops working, the others go on.
    await table.locator("tbody tr").filter({ hasText: "curl/8.5.0" }).getByRole("button", { name: /^Revoke/ }).click();
    await page.getByText("Session revoked.").waitFor();
    assert.equal(await table.locator("tbody tr").count(), 2);
    assert.equal((await api.GET("/api/v1/account/", { headers: bearer(logins[2]!) })).response.status, 401);
    assert.equal((await api.GET("/api/v1/account/", { headers: bearer(logins[0]!) })).response.status, 200);
    await page.getByRole("table", { name: "Audit events of vera" }).getByText("Session revoked").first().waitFor();

    await page.getByRole("button", { name: "Log out everywhere" }).click();
    const dialog = page.getByRole("dialog", { name: "Log vera out everywhere?" });
    await dialog.getByRole("button", { name: "Log out everywhere" }).click();
    await page.getByText("vera is signed out everywhere.").waitFor();
    await page.getByText("No live sessions.").waitFor();
    for (const access of logins) {
      assert.equal((await api.GET("/api/v1/account/", { headers: bearer(access) })).response.status, 401);
    }

    // Staff see the sessions, without Revoke or Log out everywhere.
    await api.POST("/api/v1/auth/token/", { body: { username: "vera", password: userPassword } });
    const staff = await newPage();
    await signIn(staff, server.baseUrl, "sam", userPassword, `/users/${id}`);
    await heading(staff, "vera");
    await staff.getByRole("table", { name: "Sessions of vera" }).locator("tbody tr").first().waitFor();
    assert.equal(await staff.getByRole("button", { name: /Revoke|Log out everywhere/ }).count(), 0);
    assert.equal(await staff.getByRole("table", { name: "Audit events of vera" }).count(), 0, "the audit log is for superusers");
  });

  it("rotates the signing key, and rotates now after a warning", async () => {
    const page = await signInAsRoot("/keys");
    await heading(page, "Signing keys");
    const rows = page.getByRole("table", { name: "Keys" }).locator("tbody tr");
    await rows.first().waitFor();
    const before = await rows.count();
    assert.match(await rows.first().innerText(), /Signing/);
    await axe(page, "the keys page");

    await page.getByRole("button", { name: "Rotate", exact: true }).click();
    const rotate = page.getByRole("dialog", { name: "Rotate the signing key?" });
    await rotate.getByLabel("Algorithm").selectOption("ES256");
    await rotate.getByRole("button", { name: "Rotate", exact: true }).click();
    await page.getByText(/Created key \S+ \(ES256\); it signs from/).waitFor();
    await rows.nth(before).waitFor();
    assert.match(await rows.nth(before).innerText(), /ES256[\s\S]*Pending/);

    await page.getByRole("button", { name: "Rotate now" }).click();
    const now = page.getByRole("dialog", { name: "Rotate now?" });
    assert.match(await now.innerText(), /unknown key/, "the warning explains what rotating now costs");
    await axe(page, "the rotate-now dialog");
    await shot(page, "keys-rotate-now");
    await now.getByRole("button", { name: "Rotate now" }).click();
    await page.getByText(/it signs now on this server/).waitFor();
    await rows.nth(before + 1).waitFor();
    assert.match(await rows.nth(before + 1).innerText(), /Signing/);
    const keys = await api.GET("/api/v1/keys/", { headers: bearer(rootAccess) });
    assert.equal(keys.data?.filter((k) => k.state === "signing").length, 1, "one key signs");
    await shot(page, "keys");
  });

  /** clientToken asks /oauth/token for a client credentials token, authenticating with Basic. */
  async function clientToken(clientId: string, secret: string): Promise<{ status: number; scope: string }> {
    const basic = Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString("base64");
    const res = await fetch(`${server.baseUrl}/oauth/token`, {
      method: "POST",
      headers: { Authorization: `Basic ${basic}`, "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "client_credentials" }).toString(),
    });
    const body = (await res.json()) as { access_token?: string; scope?: string };
    if (res.status === 200) assert.ok(body.access_token, "a token was issued");
    return { status: res.status, scope: body.scope ?? "" };
  }

  /** shownSecret reads the once-shown secret box: its client id and secret. */
  async function shownSecret(page: Page, title: RegExp): Promise<{ id: string; secret: string }> {
    const box = page.getByRole("region", { name: title });
    await box.waitFor();
    assert.match(await box.innerText(), /This secret is shown once/);
    const id = await box.getByRole("textbox", { name: "Client ID", exact: true }).inputValue();
    const secret = await box.getByRole("textbox", { name: "Client secret", exact: true }).inputValue();
    assert.match(secret, /^[A-Za-z0-9_-]{43}$/, "256 bits, base64url");
    return { id, secret };
  }

  it("registers an API client whose secret is shown once and works, edits, rotates, disables and deletes it", async () => {
    const page = await signInAsRoot("/clients");
    await page.context().grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.baseUrl });
    await heading(page, "API clients");
    await page.getByText("No API clients yet.").waitFor();

    // A blank name is refused with the API's message beside the field.
    await page.getByRole("button", { name: "New client" }).click();
    const form = page.getByRole("form", { name: "New API client" });
    assert.equal(await page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.name), "name", "the form opens on its first field");
    await form.getByRole("button", { name: "Create client" }).click();
    await form.locator(".field-errors[data-field=name]").waitFor();
    await axe(page, "the new client form with an error");
    await shot(page, "clients-new");

    await form.getByLabel("Name").fill("orders-api");
    await form.getByRole("checkbox", { name: /^introspect/ }).check();
    await form.getByRole("checkbox", { name: /^revoke/ }).check();
    await form.getByRole("button", { name: "Create client" }).click();
    const created = await shownSecret(page, /orders-api is registered/);
    assert.match(created.id, /^ac_/);
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "orders-api is registered: copy its secret now", "focus moves to the secret");
    await page.getByRole("button", { name: "Copy the client secret" }).click();
    await page.getByText("Client secret copied.").waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), created.secret, "Copy puts the secret on the clipboard");
    await axe(page, "the clients page showing a new secret");
    await shot(page, "clients-secret");

    // The secret is real: the client credentials grant accepts it, with the scopes chosen.
    const granted = await clientToken(created.id, created.secret);
    assert.deepEqual(granted, { status: 200, scope: "introspect revoke" });

    // Shown once: gone when dismissed, and nowhere after a reload or in the API's list.
    await page.getByRole("button", { name: "I have stored the secret" }).click();
    await page.getByRole("region", { name: /is registered/ }).waitFor({ state: "detached" });
    assert.ok(!(await page.content()).includes(created.secret), "the dismissed secret is not in the page");
    await page.reload();
    await heading(page, "API clients");
    const row = page.getByRole("table", { name: "Clients" }).locator("tbody tr").filter({ hasText: created.id });
    await row.waitFor();
    assert.ok(!(await page.content()).includes(created.secret), "a reload does not show the secret");
    const listed = await api.GET("/api/v1/clients/", { headers: bearer(rootAccess) });
    assert.ok(!JSON.stringify(listed.data).includes(created.secret), "the API never sends it again");
    const text = await row.innerText();
    assert.match(text, /orders-api[\s\S]*introspect[\s\S]*revoke/);
    assert.doesNotMatch(text, /Disabled/);
    assert.doesNotMatch(text, /Never/, "the grant counts as a use");
    await axe(page, "the clients page");

    // Edit: a new name, a scope taken away.
    await page.getByRole("button", { name: "Edit orders-api" }).click();
    const edit = page.getByRole("dialog", { name: "Edit orders-api" });
    await edit.getByLabel("Name").fill("orders-api-v2");
    await edit.getByRole("checkbox", { name: /^revoke/ }).uncheck();
    await axe(page, "the edit client dialog");
    await edit.getByRole("button", { name: "Save changes" }).click();
    await page.getByText("orders-api-v2 was saved.").waitFor();
    const edited = await api.GET("/api/v1/clients/{client_id}/", { headers: bearer(rootAccess), params: { path: { client_id: created.id } } });
    assert.equal(edited.data?.name, "orders-api-v2");
    assert.deepEqual(edited.data?.scopes, ["introspect"]);
    assert.equal((await clientToken(created.id, created.secret)).scope, "introspect");

    // Rotate with an hour's overlap: the new secret is shown once; both work meanwhile.
    await page.getByRole("button", { name: "Rotate the secret of orders-api-v2" }).click();
    const rotate = page.getByRole("dialog", { name: "Rotate the secret of orders-api-v2?" });
    await rotate.getByLabel("Old secret keeps working for").selectOption({ label: "1 hour" });
    await axe(page, "the rotate secret dialog");
    await shot(page, "clients-rotate");
    await rotate.getByRole("button", { name: "Rotate secret" }).click();
    const rotated = await shownSecret(page, /New secret for orders-api-v2/);
    assert.equal(rotated.id, created.id);
    assert.notEqual(rotated.secret, created.secret);
    assert.equal((await clientToken(created.id, rotated.secret)).status, 200, "the new secret works");
    assert.equal((await clientToken(created.id, created.secret)).status, 200, "the old one too, during the overlap");
    await row.getByText(/Old secret works until/).waitFor();
    await shot(page, "clients-rotated");
    await page.getByRole("button", { name: "I have stored the secret" }).click();
    await page.getByRole("region", { name: /New secret for/ }).waitFor({ state: "detached" });

    // Rotate with no overlap: only the newest secret works.
    await page.getByRole("button", { name: "Rotate the secret of orders-api-v2" }).click();
    assert.match(await rotate.innerText(), /stops working at once/, "the dialog says the older secret ends now");
    await rotate.getByLabel("Old secret keeps working for").selectOption({ label: "None: the old secret stops at once" });
    await rotate.getByRole("button", { name: "Rotate secret" }).click();
    const third = await shownSecret(page, /New secret for orders-api-v2: copy it now$/);
    await page.getByRole("button", { name: "I have stored the secret" }).click();
    assert.equal((await clientToken(created.id, third.secret)).status, 200);
    assert.equal((await clientToken(created.id, rotated.secret)).status, 401, "no overlap: the replaced secret stops");
    assert.equal((await clientToken(created.id, created.secret)).status, 401, "an earlier secret stops");
    await row.getByText(/Old secret works until/).waitFor({ state: "detached" });

    // Disable (after a confirmation), then enable.
    await page.getByRole("button", { name: "Disable orders-api-v2" }).click();
    await page.getByRole("dialog", { name: "Disable orders-api-v2?" }).getByRole("button", { name: "Disable" }).click();
    await page.getByText("orders-api-v2 is disabled").waitFor();
    await row.getByText("Disabled", { exact: true }).waitFor();
    await shot(page, "clients-disabled");
    assert.equal((await clientToken(created.id, third.secret)).status, 401, "a disabled client gets no token");
    await page.getByRole("button", { name: "Enable orders-api-v2" }).click();
    await page.getByText("orders-api-v2 is enabled again.").waitFor();
    await row.getByText("Disabled", { exact: true }).waitFor({ state: "detached" });
    assert.equal((await clientToken(created.id, third.secret)).status, 200);

    // Delete, after a confirmation that names it.
    await page.getByRole("button", { name: "Delete orders-api-v2" }).click();
    const del = page.getByRole("dialog", { name: "Delete orders-api-v2?" });
    assert.match(await del.innerText(), new RegExp(created.id));
    await axe(page, "the delete client dialog");
    await del.getByRole("button", { name: "Delete client" }).click();
    await page.getByText("orders-api-v2 was deleted").waitFor();
    await page.getByText("No API clients yet.").waitFor();
    assert.equal((await clientToken(created.id, third.secret)).status, 401, "a deleted client gets no token");
    const gone = await api.GET("/api/v1/clients/{client_id}/", { headers: bearer(rootAccess), params: { path: { client_id: created.id } } });
    assert.equal(gone.response.status, 404);
  });

  it("sorts and pages the API clients, and fits a phone's width", async () => {
    for (const c of (await api.GET("/api/v1/clients/", { headers: bearer(rootAccess) })).data ?? []) {
      await api.DELETE("/api/v1/clients/{client_id}/", { headers: bearer(rootAccess), params: { path: { client_id: c.client_id } } });
    }
    for (const name of ["charlie", "alpha", "bravo"]) {
      const { data, error } = await api.POST("/api/v1/clients/", { headers: bearer(rootAccess), body: { name, scopes: ["introspect"] } });
      assert.ok(data, JSON.stringify(error));
    }
    const page = await signInAsRoot("/clients?limit=2");
    await heading(page, "API clients");
    const names = () => page.getByRole("table", { name: "Clients" }).locator("tbody tr td:first-child strong").allInnerTexts();
    await page.getByText("1–2 of 3 clients").waitFor();
    assert.deepEqual(await names(), ["charlie", "alpha"], "oldest first by default");
    await page.getByRole("button", { name: "Client: sort ascending" }).click();
    await page.waitForURL(/ordering=name/);
    assert.deepEqual(await names(), ["alpha", "bravo"]);
    await page.getByRole("button", { name: "Next" }).click();
    await page.waitForURL(/offset=2/);
    assert.deepEqual(await names(), ["charlie"]);
    await shot(page, "clients");

    const phonePage = await newPage(phone);
    await signIn(phonePage, server.baseUrl, rootUsername, rootPassword, "/clients");
    await heading(phonePage, "API clients");
    await phonePage.getByRole("table", { name: "Clients" }).locator("tbody tr").first().waitFor();
    const width = await phonePage.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= phone.width, `the page is ${width}px wide on a ${phone.width}px screen`);
    await axe(phonePage, "the clients page on a phone");
  });

  it("keeps the API clients page from staff", async () => {
    const page = await newPage();
    await signIn(page, server.baseUrl, "sam", userPassword, "/clients");
    await heading(page, "API clients");
    await page.getByText("Only superusers can see and manage the API clients.").waitFor();
    const nav = await page.getByRole("navigation", { name: "Console" }).getByRole("link").allInnerTexts();
    assert.ok(!nav.some((s) => s.includes("API clients")), "no API clients link for staff");
    assert.equal(await page.getByRole("table").count(), 0, "no list");
    assert.equal(await page.getByRole("button", { name: "New client" }).count(), 0, "no New client button");
    await axe(page, "the clients page for staff");
    await shot(page, "clients-staff");
  });

  it("filters and pages the audit log", async () => {
    await api.POST("/api/v1/auth/token/", { body: { username: "pat", password: "not the password" } });
    const page = await signInAsRoot("/audit?limit=50");
    await heading(page, "Audit log");
    const table = page.getByRole("table", { name: "Audit events" });
    await table.locator("tbody tr").first().waitFor();
    await axe(page, "the audit log");
    await shot(page, "audit");

    await page.getByLabel("Event", { exact: true }).selectOption("login.failed");
    await page.waitForURL(/action=login\.failed/);
    await table.locator("tbody tr").filter({ hasNotText: "login.failed" }).first().waitFor({ state: "detached" });
    await table.getByText("Sign-in failed").first().waitFor();
    const events = await table.locator("tbody tr").allInnerTexts();
    assert.ok(events.length > 0 && events.every((e) => e.includes("login.failed")), events.join("\n"));

    await page.getByLabel("User", { exact: true }).fill("pat");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.waitForURL(/user_id=\d+/);
    await table.locator("tbody tr").filter({ hasNotText: "pat" }).first().waitFor({ state: "detached" });
    await table.getByRole("link", { name: "pat", exact: true }).first().waitFor();
    assert.ok((await table.locator("tbody tr").allInnerTexts()).every((e) => e.includes("pat")));

    await page.getByLabel("User", { exact: true }).fill("nobody-at-all");
    await page.getByRole("button", { name: "Apply" }).click();
    await page.getByText("No user is named nobody-at-all.").waitFor();

    // A flood of attempts on a locked account is one row that counts them: one row per window
    // of the throttle (its 15 minutes, aligned to the clock), so the attempts start well before
    // a window ends, or the refusals would be split between two rows.
    await addUser("tess");
    const window = 15 * 60_000;
    const left = window - (Date.now() % window);
    if (left < 30_000) {
      await sleep(left + 1_000);
    }
    for (let i = 0; i < 8; i++) {
      await api.POST("/api/v1/auth/token/", { body: { username: "tess", password: "not the password" } });
    }
    await page.getByRole("button", { name: "Clear filters" }).click();
    await page.getByLabel("Event", { exact: true }).selectOption("login.throttled");
    await page.waitForURL(/action=login\.throttled/);
    // The filtered page has replaced the unfiltered one once no other event is shown.
    await table.locator("tbody tr").filter({ hasNotText: "login.throttled" }).first().waitFor({ state: "detached" });
    const counted = table.locator("tbody tr").filter({ hasText: "tess" });
    await counted.first().waitFor();
    assert.equal(await counted.count(), 1, "one row for the three refusals");
    const details = await counted.locator("td").last().innerText();
    assert.match(details, /^3 throttled sign-in attempts from 127\.0\.0\.1 between .+ and .+$/s);
    await shot(page, "audit-throttled");

    // A time range in the future selects nothing.
    await page.getByRole("button", { name: "Clear filters" }).click();
    await page.getByLabel("From", { exact: true }).fill("2099-01-01T00:00");
    await page.waitForURL(/since=2099/);
    await page.getByText("No events match.").waitFor();

    // Paging: a page of 50 of all events, then the next. Events may still be written meanwhile
    // (the outbox audits each mail when it delivers it, later), so the page's total only has to cover the API's earlier one.
    const total = Number((await api.GET("/api/v1/audit/", { headers: bearer(rootAccess), params: { query: { limit: 1 } } })).response.headers.get("X-Total-Count"));
    await page.getByRole("button", { name: "Clear filters" }).click();
    const shown = async (first: number) => {
      const range = page.getByText(new RegExp(`^${first}–\\d+ of \\d+ events$`));
      await range.waitFor();
      const counted = Number((await range.innerText()).match(/of (\d+) events$/)![1]);
      assert.ok(counted >= total, `the page counts ${counted} events, the API counted ${total} before`);
    };
    await shown(1);
    assert.ok(total > 50, `${total} events: too few to page`);
    await page.getByRole("button", { name: "Next" }).click();
    await page.waitForURL(/offset=50/);
    await shown(51);
  });

  it("changes my own password: other sessions end, this tab goes on in a new one", async () => {
    await addUser("mona", { is_staff: true });
    const elsewhere = await api.POST("/api/v1/auth/token/", { body: { username: "mona", password: userPassword } });
    assert.ok(elsewhere.data);
    const page = await newPage();
    await signIn(page, server.baseUrl, "mona", userPassword, "/account");
    await heading(page, "My account");

    await page.getByLabel("Current password").fill("wrong password");
    await page.getByLabel("New password", { exact: true }).fill("123");
    await page.getByLabel("Confirm new password").fill("123");
    await page.getByRole("button", { name: "Change password" }).click();
    await page.locator("[data-field=new_password]").waitFor();
    await shot(page, "account-password-errors");
    await axe(page, "my account with errors");

    await page.getByLabel("Current password").fill(userPassword);
    await page.getByLabel("New password", { exact: true }).fill("mona's new passphrase");
    await page.getByLabel("Confirm new password").fill("mona's other passphrase");
    await page.getByRole("button", { name: "Change password" }).click();
    await page.locator("[data-field=confirm]").getByText("This is not the new password typed above.").waitFor();

    await page.getByLabel("Confirm new password").fill("mona's new passphrase");
    await page.getByRole("button", { name: "Change password" }).click();
    await page.getByText("Password changed.").waitFor();
    assert.equal((await api.GET("/api/v1/account/", { headers: bearer(elsewhere.data.access) })).response.status, 401, "the other session ended");
    await page.reload();
    await heading(page, "My account"); // this tab kept the new pair, and resumes with it
    const login = await api.POST("/api/v1/auth/token/", { body: { username: "mona", password: "mona's new passphrase" } });
    assert.ok(login.data, "the new password works");
  });

  it("refreshes the access token once on a 401, then signs out when the refresh fails", async () => {
    const page = await signInAsRoot("/account");
    await heading(page, "My account");
    const before = await page.evaluate((k) => sessionStorage.getItem(k), refreshKey);

    // The next API call carries a token the server refuses (as an expired one is): the console
    // refreshes the pair, retries once with the new access token and shows the answer.
    let spoiled = false;
    const refreshes: number[] = [];
    page.on("response", (r) => {
      if (r.url().endsWith("/api/v1/auth/token/refresh/")) refreshes.push(r.status());
    });
    await page.route("**/api/v1/account/management/**", async (route) => {
      if (spoiled) return route.continue();
      spoiled = true;
      await route.continue({ headers: { ...route.request().headers(), authorization: "Bearer not.a.token" } });
    });
    await page.getByRole("link", { name: "Users" }).click();
    await heading(page, "Users");
    assert.ok((await usersShown(page)).length > 0, "the retried request's users are shown");
    assert.deepEqual(refreshes, [200], "one refresh");
    const after = await page.evaluate((k) => sessionStorage.getItem(k), refreshKey);
    assert.ok(after && after !== before, "the refresh token rotated");

    // When the session is gone on the server, the refresh fails and the console signs out.
    const sessions = await api.GET("/api/v1/auth/sessions/", { headers: bearer(rootAccess) });
    for (const s of sessions.data ?? []) {
      if (!s.current) await api.DELETE("/api/v1/auth/sessions/{id}/", { headers: bearer(rootAccess), params: { path: { id: s.id } } });
    }
    await page.getByRole("link", { name: "My account" }).click();
    await heading(page, "Sign in");
    await page.getByText("Your session has ended. Sign in again.").waitFor();
    assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), refreshKey), null, "the dead refresh token is dropped");
  });

  it("signs out through the API: the refresh token stops working", async () => {
    const page = await signInAsRoot();
    const token = await page.evaluate((k) => sessionStorage.getItem(k), refreshKey);
    assert.ok(token);
    await page.getByRole("button", { name: "Sign out" }).click();
    await heading(page, "Sign in");
    await page.getByText("You are signed out.").waitFor();
    assert.equal(await page.evaluate((k) => sessionStorage.getItem(k), refreshKey), null);
    const refreshed = await api.POST("/api/v1/auth/token/refresh/", { body: { refresh: token } });
    assert.equal(refreshed.response.status, 401, "the session was revoked on the server");
    await page.reload();
    await heading(page, "Sign in");
  });

  it("lists and revokes my own sessions on My account", async () => {
    const other = await api.POST("/api/v1/auth/token/", { body: { username: rootUsername, password: rootPassword } });
    assert.ok(other.data);
    const page = await signInAsRoot("/account");
    await heading(page, "My account");
    const table = page.getByRole("table", { name: "My sessions" });
    await table.getByText("This browser").waitFor();
    const rows = await table.locator("tbody tr").count();
    assert.ok(rows >= 2, `my sessions: ${rows}`);
    await axe(page, "my account");
    await shot(page, "account");
    await table.locator("tbody tr").filter({ hasNotText: "This browser" }).first().getByRole("button", { name: /^Revoke/ }).click();
    await page.getByText("Session revoked.").waitFor();
    assert.equal(await table.locator("tbody tr").count(), rows - 1);
  });

  it("works by keyboard alone, with a visible focus", async () => {
    const page = await newPage();
    await page.goto(`${server.baseUrl}/admin/users`);
    await heading(page, "Sign in");
    // The username field has focus; type, Tab to the password, Enter submits.
    await page.keyboard.type(rootUsername);
    await page.keyboard.press("Tab");
    await page.keyboard.type(rootPassword);
    await page.keyboard.press("Enter");
    await heading(page, "Users");

    // Tab from the top reaches the skip link first, then the navigation; focus is drawn.
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement?.textContent?.trim()), "Skip to content");
    await page.keyboard.press("Tab");
    const outline = await page.evaluate(() => {
      const el = document.activeElement as HTMLElement;
      const style = getComputedStyle(el);
      return { text: el.textContent?.trim(), outline: style.outlineStyle, width: style.outlineWidth };
    });
    assert.equal(outline.text, "Users");
    assert.notEqual(outline.outline, "none", "the focused link shows an outline");

    // Open a user with Enter on their link, then the delete dialog, and Escape closes it.
    const link = page.getByRole("link", { name: "pat", exact: true });
    await link.focus();
    await page.keyboard.press("Enter");
    await heading(page, "pat");
    const del = page.getByRole("button", { name: "Delete" });
    await del.focus();
    await page.keyboard.press("Enter");
    const dialog = page.getByRole("dialog", { name: "Delete pat?" });
    await dialog.waitFor();
    assert.equal(await page.evaluate(() => document.activeElement?.textContent?.trim()), "Cancel", "focus starts on the safe choice");
    await page.keyboard.press("Escape");
    await dialog.waitFor({ state: "hidden" });
    assert.ok((await api.GET("/api/v1/account/management/", { headers: bearer(rootAccess), params: { query: { limit: 1000 } } })).data?.some((u) => u.username === "pat"));
  });

  it("looks right at a phone's width", async () => {
    const page = await newPage(phone);
    await signIn(page, server.baseUrl, rootUsername, rootPassword);
    await heading(page, "Users");
    await usersShown(page);
    await shot(page, "phone-users");
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= phone.width, `the page is ${width}px wide on a ${phone.width}px screen`);
    await page.getByRole("link", { name: "pat", exact: true }).click();
    await heading(page, "pat");
    await shot(page, "phone-user");
    await axe(page, "a user's page on a phone");
  });

  it("ran under its strict CSP, with no script error and nothing loaded from elsewhere", () => {
    chrome.assertClean();
  });
});

// End-to-end test of the real authapi binary through the generated TypeScript client
// (gen/ts: openapi-typescript types + openapi-fetch): every operation of the spec, called as
// the role it is meant for, the error bodies a client relies on, and token verification as a
// resource server does it, with jose and the published JWKS.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createRemoteJWKSet, decodeJwt, jwtVerify } from "jose";
import { generateSync } from "otplib";

import { newClient, type AuthAPIClient, type Schemas } from "../gen/ts/client.js";
import {
  assertErrorBody,
  bearer,
  rootPassword,
  rootUsername,
  specOperations,
  startServer,
  type RunningServer,
} from "./authapi.js";

type TokenPair = Schemas["TokenPair"];
type UserPreview = Schemas["UserPreview"];

const staffPassword = "stella-keeps-the-ledger-42";
const regularPassword = "reggie-rides-a-red-bike-7";

describe("authapi through the typed client", () => {
  let server: RunningServer;
  let client: AuthAPIClient;
  /** called holds "METHOD /path" of every request the client made, as the spec names it. */
  const called = new Set<string>();

  const tokens: Record<"root" | "staff" | "regular", TokenPair> = {} as never;
  const users: Record<"staff" | "regular", UserPreview> = {} as never;
  let spec: unknown;

  async function login(username: string, password: string): Promise<TokenPair> {
    const { data, error, response } = await client.POST("/api/v1/auth/token/", { body: { username, password } });
    assert.equal(response.status, 200, `log in as ${username}: ${JSON.stringify(error)}`);
    assert.ok(data);
    return data;
  }

  before(async () => {
    server = await startServer();
    client = newClient({ baseUrl: server.baseUrl });
    client.use({
      onRequest({ request, schemaPath }) {
        called.add(`${request.method} ${schemaPath}`);
      },
    });
  });

  after(async () => {
    await server?.stop();
  });

  it("serves liveness, readiness, the keys and the documents without credentials", async () => {
    const health = await client.GET("/healthz");
    assert.equal(health.response.status, 200);
    assert.deepEqual(health.data, { status: "ok" });

    const ready = await client.GET("/readyz");
    assert.equal(ready.response.status, 200);
    assert.deepEqual(ready.data, { status: "ok" });

    const json = await client.GET("/api/v1/openapi.json");
    assert.equal(json.response.status, 200);
    assert.match(json.response.headers.get("Content-Type") ?? "", /^application\/json/);
    spec = json.data;
    assert.equal((spec as { info?: { title?: string } }).info?.title, "authapi");
    assert.ok(specOperations(spec).length >= 20, "the served spec lists the operations");

    const yaml = await client.GET("/api/v1/openapi.yaml", { parseAs: "text" });
    assert.equal(yaml.response.status, 200);
    assert.match(yaml.response.headers.get("Content-Type") ?? "", /^application\/yaml/);
    assert.match(String(yaml.data), /^openapi: 3\.0\.3$/m);
    assert.equal(
      String(yaml.data).match(/^ +operationId: /gm)?.length,
      specOperations(spec).length,
      "the YAML document has the operations of the JSON one",
    );

    const ui = await client.GET("/api/v1/swagger/ui/", { parseAs: "text" });
    assert.equal(ui.response.status, 200);
    assert.match(ui.response.headers.get("Content-Type") ?? "", /^text\/html/);
    assert.match(String(ui.data), /<div id="swagger-ui">/);
    assert.match(String(ui.data), /\/api\/v1\/openapi\.json/);

    const jwks = await client.GET("/.well-known/jwks.json");
    assert.equal(jwks.response.status, 200);
    assert.match(jwks.response.headers.get("Cache-Control") ?? "", /max-age=\d+/);
    assert.ok(jwks.data && jwks.data.keys.length > 0, "at least one key");
    for (const key of jwks.data.keys) {
      assert.equal(key.use, "sig");
      assert.ok(key.kid);
      for (const secret of ["d", "p", "q", "dp", "dq", "qi", "k"]) {
        assert.equal(secret in key, false, `the JWKS publishes private member ${secret}`);
      }
    }

    const oauth = await client.GET("/.well-known/oauth-authorization-server");
    const oidc = await client.GET("/.well-known/openid-configuration");
    for (const meta of [oauth, oidc]) {
      assert.equal(meta.response.status, 200);
      assert.match(meta.response.headers.get("Cache-Control") ?? "", /max-age=\d+/);
      assert.equal(meta.data?.issuer, server.baseUrl, "the issuer defaults to the public URL, http://<addr>");
      assert.equal(meta.data?.jwks_uri, `${server.baseUrl}/.well-known/jwks.json`);
    }
    assert.deepEqual(oidc.data, oauth.data, "one document at both paths");
  });

  it("refuses a protected operation without a token: 401 not_authenticated", async () => {
    const { error, response } = await client.GET("/api/v1/");
    assert.equal(response.status, 401);
    assertErrorBody(error, "not_authenticated");
    assert.match(response.headers.get("WWW-Authenticate") ?? "", /^Bearer realm="api"$/);

    // A token sent and refused says so: the one 401 a client answers by refreshing.
    const refused = await client.GET("/api/v1/", { headers: bearer("not.a.token") });
    assert.equal(refused.response.status, 401);
    assertErrorBody(refused.error, "token_not_valid");
    assert.equal(refused.response.headers.get("WWW-Authenticate"), 'Bearer realm="api", error="invalid_token"');
  });

  it("logs the superuser in and refuses a wrong password", async () => {
    tokens.root = await login(rootUsername, rootPassword);

    const { error, response } = await client.POST("/api/v1/auth/token/", {
      body: { username: rootUsername, password: "not-the-password" },
    });
    assert.equal(response.status, 401);
    assertErrorBody(error, "authentication_failed");
    assert.ok(response.headers.get("WWW-Authenticate"));
  });

  it("creates a staff user and a regular user as the superuser", async () => {
    const staff = await client.POST("/api/v1/account/management/create/", {
      headers: bearer(tokens.root.access),
      body: {
        username: "stella",
        first_name: "Stella",
        last_name: "Staff",
        email: "stella@example.com",
        password: staffPassword,
        is_staff: true,
      },
    });
    assert.equal(staff.response.status, 201, JSON.stringify(staff.error));
    assert.ok(staff.data);
    assert.equal(staff.data.username, "stella");
    assert.equal(staff.data.is_staff, true);
    assert.equal(staff.data.is_active, true);
    assert.equal(staff.data.last_login, null);
    assert.equal("password" in staff.data, false, "the password (hash) is never sent");
    users.staff = staff.data;

    const regular = await client.POST("/api/v1/account/management/create/", {
      headers: bearer(tokens.root.access),
      body: {
        username: "reggie",
        first_name: "Reggie",
        last_name: "Regular",
        email: "reggie@example.com",
        password: regularPassword,
      },
    });
    assert.equal(regular.response.status, 201, JSON.stringify(regular.error));
    assert.ok(regular.data);
    assert.equal(regular.data.is_staff, false);
    users.regular = regular.data;
    assert.ok(users.regular.id > users.staff.id);
  });

  it("logs each user in, as JSON and as a form", async () => {
    tokens.staff = await login("stella", staffPassword);

    const form = await client.POST("/api/v1/auth/token/", {
      body: { username: "reggie", password: regularPassword },
      bodySerializer: (body) => new URLSearchParams(body),
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
    assert.equal(form.response.status, 200, JSON.stringify(form.error));
    assert.ok(form.data);
    tokens.regular = form.data;
  });

  it("welcomes every role", async () => {
    for (const role of ["root", "staff", "regular"] as const) {
      const { data, response } = await client.GET("/api/v1/", { headers: bearer(tokens[role].access) });
      assert.equal(response.status, 200, role);
      assert.equal(data?.message, "Welcome!");
      assert.equal(data?.api_version, "v1");
      assert.ok(data?.name);
    }
  });

  it("shows callers their own account", async () => {
    const { data, response } = await client.GET("/api/v1/account/", { headers: bearer(tokens.regular.access) });
    assert.equal(response.status, 200);
    assert.ok(data);
    assert.equal(data.id, users.regular.id);
    assert.equal(data.username, "reggie");
    assert.equal(data.email, "reggie@example.com");
    assert.notEqual(data.last_login, null, "logging in sets last_login");
    assert.equal("is_staff" in data, false, "an account is not a user preview");
  });

  it("lists users to staff a page at a time, with X-Total-Count and Link", async () => {
    const first = await client.GET("/api/v1/account/management/", {
      headers: bearer(tokens.staff.access),
      params: { query: { limit: 2, offset: 0 } },
    });
    assert.equal(first.response.status, 200, JSON.stringify(first.error));
    assert.deepEqual(
      first.data?.map((u) => u.username),
      [rootUsername, "stella"],
    );
    assert.equal(first.response.headers.get("X-Total-Count"), "3");
    const link = first.response.headers.get("Link") ?? "";
    const next = /^<([^>]+)>; rel="next"$/.exec(link);
    assert.ok(next?.[1], `Link of the first page: ${JSON.stringify(link)}`);
    const nextURL = new URL(next[1], server.baseUrl);
    assert.equal(nextURL.pathname, "/api/v1/account/management/");
    assert.equal(nextURL.searchParams.get("limit"), "2");
    assert.equal(nextURL.searchParams.get("offset"), "2");

    const last = await client.GET("/api/v1/account/management/", {
      headers: bearer(tokens.staff.access),
      params: {
        query: { limit: Number(nextURL.searchParams.get("limit")), offset: Number(nextURL.searchParams.get("offset")) },
      },
    });
    assert.equal(last.response.status, 200);
    assert.deepEqual(
      last.data?.map((u) => u.username),
      ["reggie"],
    );
    assert.equal(last.response.headers.get("X-Total-Count"), "3");
    assert.equal(last.response.headers.get("Link") ?? "", "", "no next link on the last page");

    const bad = await client.GET("/api/v1/account/management/", {
      headers: bearer(tokens.staff.access),
      params: { query: { limit: 0 } },
    });
    assert.equal(bad.response.status, 400);
    assert.equal(bad.error?.code, "invalid");
  });

  it("reads one user to staff, and answers 404 not_found for an unknown id", async () => {
    const { data, response } = await client.GET("/api/v1/account/management/{id}/", {
      headers: bearer(tokens.staff.access),
      params: { path: { id: users.regular.id } },
    });
    assert.equal(response.status, 200);
    assert.ok(data);
    assert.notEqual(data.last_login, null, "reggie has logged in since being created");
    assert.deepEqual({ ...data, last_login: null }, users.regular);

    const missing = await client.GET("/api/v1/account/management/{id}/", {
      headers: bearer(tokens.staff.access),
      params: { path: { id: 999_999 } },
    });
    assert.equal(missing.response.status, 404);
    assertErrorBody(missing.error, "not_found");
  });

  it("refuses management to a regular user and user changes to staff: 403 permission_denied", async () => {
    const list = await client.GET("/api/v1/account/management/", { headers: bearer(tokens.regular.access) });
    assert.equal(list.response.status, 403);
    assertErrorBody(list.error, "permission_denied");

    const read = await client.GET("/api/v1/account/management/{id}/", {
      headers: bearer(tokens.regular.access),
      params: { path: { id: users.staff.id } },
    });
    assert.equal(read.response.status, 403);
    assertErrorBody(read.error, "permission_denied");

    const create = await client.POST("/api/v1/account/management/create/", {
      headers: bearer(tokens.staff.access),
      body: { username: "sneaky", first_name: "S", last_name: "S", email: "s@example.com", password: staffPassword },
    });
    assert.equal(create.response.status, 403);
    assertErrorBody(create.error, "permission_denied");
  });

  it("rejects a weak password (invalid_password) and a taken username (invalid)", async () => {
    const weak = await client.POST("/api/v1/account/management/create/", {
      headers: bearer(tokens.root.access),
      body: { username: "weakling", first_name: "Weak", last_name: "Ling", email: "weak@example.com", password: "1234" },
    });
    assert.equal(weak.response.status, 400);
    assertErrorBody(weak.error, "invalid_password", ["password"]);

    const taken = await client.POST("/api/v1/account/management/create/", {
      headers: bearer(tokens.root.access),
      body: { username: "Reggie", first_name: "Other", last_name: "Reggie", email: "other@example.com", password: regularPassword },
    });
    assert.equal(taken.response.status, 400);
    assertErrorBody(taken.error, "invalid", ["username"]);
  });

  it("replaces a user's details with PUT and changes some with PATCH", async () => {
    const put = await client.PUT("/api/v1/account/management/{id}/update/", {
      headers: bearer(tokens.root.access),
      params: { path: { id: users.regular.id } },
      body: { username: "reggie", first_name: "Reginald", last_name: "Regular", email: "reginald@example.com" },
    });
    assert.equal(put.response.status, 200, JSON.stringify(put.error));
    assert.equal(put.data?.first_name, "Reginald");
    assert.equal(put.data?.email, "reginald@example.com");
    assert.equal(put.data?.is_staff, false);

    const patch = await client.PATCH("/api/v1/account/management/{id}/update/", {
      headers: bearer(tokens.root.access),
      params: { path: { id: users.regular.id } },
      body: { last_name: "Patched" },
    });
    assert.equal(patch.response.status, 200, JSON.stringify(patch.error));
    assert.equal(patch.data?.first_name, "Reginald", "PATCH keeps what it is not given");
    assert.equal(patch.data?.last_name, "Patched");

    const missing = await client.PATCH("/api/v1/account/management/{id}/update/", {
      headers: bearer(tokens.root.access),
      params: { path: { id: 999_999 } },
      body: { last_name: "Nobody" },
    });
    assert.equal(missing.response.status, 404);
    assertErrorBody(missing.error, "not_found");

    const account = await client.GET("/api/v1/account/", { headers: bearer(tokens.regular.access) });
    assert.equal(account.data?.last_name, "Patched", "the user sees the change; their session lives on");
  });

  it("refreshes an access token and verifies tokens", async () => {
    const refreshed = await client.POST("/api/v1/auth/token/refresh/", { body: { refresh: tokens.regular.refresh } });
    assert.equal(refreshed.response.status, 200, JSON.stringify(refreshed.error));
    assert.ok(refreshed.data?.access);
    assert.notEqual(refreshed.data.access, tokens.regular.access);
    tokens.regular = { access: refreshed.data.access, refresh: refreshed.data.refresh ?? tokens.regular.refresh };

    for (const token of [tokens.regular.access, tokens.regular.refresh]) {
      const ok = await client.POST("/api/v1/auth/token/verify/", { headers: bearer(tokens.regular.access), body: { token } });
      assert.equal(ok.response.status, 200, JSON.stringify(ok.error));
      assert.deepEqual(ok.data, {});
    }

    const bad = await client.POST("/api/v1/auth/token/verify/", {
      headers: bearer(tokens.regular.access),
      body: { token: "not.a.token" },
    });
    assert.equal(bad.response.status, 401);
    assertErrorBody(bad.error, "token_not_valid");
  });

  it("issues access tokens a resource server verifies with the JWKS (jose)", async () => {
    const jwks = createRemoteJWKSet(new URL("/.well-known/jwks.json", server.baseUrl));
    const want = { root: 1, staff: users.staff.id, regular: users.regular.id };
    for (const role of ["root", "staff", "regular"] as const) {
      const { payload, protectedHeader } = await jwtVerify(tokens[role].access, jwks, {
        issuer: server.baseUrl, // the default issuer: the public URL, http://<addr>
        audience: server.baseUrl,
        typ: "at+jwt",
      });
      assert.equal(payload.token_type, "access", role);
      assert.equal(payload.user_id, want[role], role);
      assert.equal(payload.sub, String(want[role]), role);
      assert.ok(protectedHeader.kid, "tokens name their key");
    }
    const { payload, protectedHeader } = await jwtVerify(tokens.regular.refresh, jwks, { issuer: server.baseUrl });
    assert.equal(payload.token_type, "refresh", "a refresh token says so: resource servers must check token_type");
    assert.equal(protectedHeader.typ, "JWT", "and typ: RFC 9068 verifiers refuse it");
    assert.equal(payload.aud, undefined, "and it has no audience");
  });

  it("revokes a session on logout: the signature still verifies, the API says 401", async () => {
    const revoked = tokens.regular;
    const out = await client.POST("/api/v1/auth/logout/", { headers: bearer(revoked.access), body: { refresh: revoked.refresh } });
    assert.equal(out.response.status, 200, JSON.stringify(out.error));
    assert.deepEqual(out.data, {});

    // A resource server that only checks signatures cannot see the revocation...
    const jwks = createRemoteJWKSet(new URL("/.well-known/jwks.json", server.baseUrl));
    const { payload } = await jwtVerify(revoked.access, jwks, { issuer: server.baseUrl });
    assert.equal(payload.user_id, users.regular.id);

    // ...the API can: verify (asked by another, live user) and every protected call refuse it.
    const verify = await client.POST("/api/v1/auth/token/verify/", {
      headers: bearer(tokens.root.access),
      body: { token: revoked.access },
    });
    assert.equal(verify.response.status, 401);
    assertErrorBody(verify.error, "token_not_valid");

    const welcome = await client.GET("/api/v1/", { headers: bearer(revoked.access) });
    assert.equal(welcome.response.status, 401);
    assertErrorBody(welcome.error, "token_not_valid");
    assert.ok(welcome.response.headers.get("WWW-Authenticate"));

    const refresh = await client.POST("/api/v1/auth/token/refresh/", { body: { refresh: revoked.refresh } });
    assert.equal(refresh.response.status, 401);
    assertErrorBody(refresh.error, "token_not_valid");
  });

  it("lists the caller's sessions and revokes one of them", async () => {
    const other = await login("stella", staffPassword);
    const list = await client.GET("/api/v1/auth/sessions/", { headers: bearer(tokens.staff.access) });
    assert.equal(list.response.status, 200, JSON.stringify(list.error));
    assert.ok(list.data);
    const otherID = decodeJwt(other.access).sid;
    const currentID = decodeJwt(tokens.staff.access).sid;
    assert.deepEqual(
      list.data.map((s) => [s.id, s.current]).sort(),
      [
        [currentID, true],
        [otherID, false],
      ].sort(),
      "stella's two logins, the one asking marked current",
    );

    const revoke = await client.DELETE("/api/v1/auth/sessions/{id}/", {
      headers: bearer(tokens.staff.access),
      params: { path: { id: String(otherID) } },
    });
    assert.equal(revoke.response.status, 204, JSON.stringify(revoke.error));
    const revoked = await client.GET("/api/v1/", { headers: bearer(other.access) });
    assert.equal(revoked.response.status, 401, "the revoked session's access token stops working");
    assertErrorBody(revoked.error, "token_not_valid");

    const again = await client.DELETE("/api/v1/auth/sessions/{id}/", {
      headers: bearer(tokens.staff.access),
      params: { path: { id: String(otherID) } },
    });
    assert.equal(again.response.status, 404, "a session no longer live is not found");
    assertErrorBody(again.error, "not_found");

    const rootsSession = decodeJwt(tokens.root.access).sid;
    const foreign = await client.DELETE("/api/v1/auth/sessions/{id}/", {
      headers: bearer(tokens.staff.access),
      params: { path: { id: String(rootsSession) } },
    });
    assert.equal(foreign.response.status, 404, "another user's session is not found");
    assertErrorBody(foreign.error, "not_found");
  });

  it("logs out every device with GET and with POST (205)", async () => {
    const second = await login("stella", staffPassword);

    const viaGet = await client.GET("/api/v1/auth/logout_all/", { headers: bearer(tokens.staff.access) });
    assert.equal(viaGet.response.status, 205);
    for (const pair of [tokens.staff, second]) {
      const { response, error } = await client.GET("/api/v1/", { headers: bearer(pair.access) });
      assert.equal(response.status, 401, "every session of the caller is revoked");
      assertErrorBody(error, "token_not_valid");
    }

    const third = await login("stella", staffPassword);
    const viaPost = await client.POST("/api/v1/auth/logout_all/", { headers: bearer(third.access) });
    assert.equal(viaPost.response.status, 205);
    const after = await client.GET("/api/v1/", { headers: bearer(third.access) });
    assert.equal(after.response.status, 401);

    const root = await client.GET("/api/v1/", { headers: bearer(tokens.root.access) });
    assert.equal(root.response.status, 200, "other users' sessions live on");
  });

  /** auditOf reads the audit log as the superuser: the events of the actions about userID. */
  async function auditOf(userID: number, action: Schemas["AuditAction"][]) {
    const { data, error, response } = await client.GET("/api/v1/audit/", {
      headers: bearer(tokens.root.access),
      params: { query: { user_id: userID, action } },
    });
    assert.equal(response.status, 200, JSON.stringify(error));
    assert.ok(data);
    return data;
  }

  it("shows staff a user's sessions, and lets the superuser revoke one or all, as the actor", async () => {
    const reggie = users.regular.id;
    const laptop = await login("reggie", regularPassword);
    const phone = await login("reggie", regularPassword);
    const staff = await login("stella", staffPassword);
    const list = await client.GET("/api/v1/account/management/{id}/sessions/", {
      headers: bearer(staff.access),
      params: { path: { id: reggie } },
    });
    assert.equal(list.response.status, 200, JSON.stringify(list.error));
    const [phoneID, laptopID] = [decodeJwt(phone.access).sid, decodeJwt(laptop.access).sid];
    assert.deepEqual(
      list.data?.filter((s) => s.id === phoneID || s.id === laptopID).map((s) => [s.id, s.current]),
      [
        [phoneID, false],
        [laptopID, false],
      ],
      "reggie's two new sessions, newest first, neither the caller's",
    );
    const own = await client.GET("/api/v1/account/management/{id}/sessions/", {
      headers: bearer(laptop.access),
      params: { path: { id: reggie } },
    });
    assert.equal(own.response.status, 403, "a regular user may not list sessions, even their own here");
    assertErrorBody(own.error, "permission_denied");

    const byStaff = await client.DELETE("/api/v1/account/management/{id}/sessions/{sid}/", {
      headers: bearer(staff.access),
      params: { path: { id: reggie, sid: String(phoneID) } },
    });
    assert.equal(byStaff.response.status, 403, "staff read, superusers revoke");
    assertErrorBody(byStaff.error, "permission_denied");
    const revoke = await client.DELETE("/api/v1/account/management/{id}/sessions/{sid}/", {
      headers: bearer(tokens.root.access),
      params: { path: { id: reggie, sid: String(phoneID) } },
    });
    assert.equal(revoke.response.status, 204, JSON.stringify(revoke.error));
    const dead = await client.GET("/api/v1/", { headers: bearer(phone.access) });
    assert.equal(dead.response.status, 401, "the revoked session's token stops working");
    const again = await client.DELETE("/api/v1/account/management/{id}/sessions/{sid}/", {
      headers: bearer(tokens.root.access),
      params: { path: { id: reggie, sid: String(phoneID) } },
    });
    assert.equal(again.response.status, 404);
    assertErrorBody(again.error, "not_found");

    const all = await client.POST("/api/v1/account/management/{id}/logout_all/", {
      headers: bearer(tokens.root.access),
      params: { path: { id: reggie } },
    });
    assert.equal(all.response.status, 204, JSON.stringify(all.error));
    const rest = await client.GET("/api/v1/", { headers: bearer(laptop.access) });
    assert.equal(rest.response.status, 401, "every session of the user is revoked");

    const events = await auditOf(reggie, ["session.revoked", "logout_all"]);
    const root = decodeJwt(tokens.root.access);
    assert.deepEqual(
      events.map((e) => [e.action, e.actor_id, e.target_id, e.session_id]),
      [
        ["logout_all", root.user_id, reggie, root.sid],
        ["session.revoked", root.user_id, reggie, phoneID],
      ],
      "newest first, the superuser as the actor",
    );
  });

  it("changes one's own password: a wrong old one is refused and logged, every session dies, a new one goes on", async () => {
    const reggie = users.regular.id;
    const current = await login("reggie", regularPassword);
    const other = await login("reggie", regularPassword);
    const newPassword = "reggie-repaints-the-bike-blue-8";
    const wrong = await client.POST("/api/v1/account/password/", {
      headers: bearer(current.access),
      body: { old_password: "not-the-old-password", new_password: newPassword },
    });
    assert.equal(wrong.response.status, 400);
    assertErrorBody(wrong.error, "invalid", ["old_password"]);

    const change = await client.POST("/api/v1/account/password/", {
      headers: bearer(current.access),
      body: { old_password: regularPassword, new_password: newPassword },
    });
    assert.equal(change.response.status, 200, JSON.stringify(change.error));
    assert.ok(change.data, "a new token pair");
    for (const [name, pair] of [["the changing session", current], ["another session", other]] as const) {
      const revoked = await client.GET("/api/v1/", { headers: bearer(pair.access) });
      assert.equal(revoked.response.status, 401, `${name} ends`);
    }
    const next = await client.GET("/api/v1/", { headers: bearer(change.data.access) });
    assert.equal(next.response.status, 200, "the new pair works");
    assert.notEqual(decodeJwt(change.data.access).sid, decodeJwt(current.access).sid, "in a new session");
    tokens.regular = await login("reggie", newPassword);

    const events = await auditOf(reggie, ["password.changed", "password.change_failed"]);
    const caller = decodeJwt(current.access);
    assert.deepEqual(
      events.map((e) => [e.action, e.outcome, e.actor_id, e.target_id, e.session_id, e.fields]),
      [
        ["password.changed", "success", reggie, reggie, caller.sid, ["password"]],
        ["password.change_failed", "failure", reggie, reggie, caller.sid, []],
      ],
    );
    const text = JSON.stringify(events);
    for (const secret of [regularPassword, newPassword, "not-the-old-password"]) {
      assert.ok(!text.includes(secret), "no password in the log");
    }
  });

  it("lists and rotates the signing keys as the superuser, and logs the rotation", async () => {
    const before = await client.GET("/api/v1/keys/", { headers: bearer(tokens.root.access) });
    assert.equal(before.response.status, 200, JSON.stringify(before.error));
    assert.deepEqual(
      before.data?.map((k) => k.state),
      ["signing"],
      "the first key signs",
    );
    const regular = await client.GET("/api/v1/keys/", { headers: bearer(tokens.regular.access) });
    assert.equal(regular.response.status, 403);
    assertErrorBody(regular.error, "permission_denied");

    const bad = await client.POST("/api/v1/keys/rotate/", {
      headers: bearer(tokens.root.access),
      body: { alg: "HS256" as never },
    });
    assert.equal(bad.response.status, 400);
    assertErrorBody(bad.error, "invalid", ["alg"]);

    const rotated = await client.POST("/api/v1/keys/rotate/", { headers: bearer(tokens.root.access), body: {} });
    assert.equal(rotated.response.status, 201, JSON.stringify(rotated.error));
    assert.ok(rotated.data);
    assert.equal(rotated.data.key.state, "pending", "a rotated key is published before it signs");
    assert.ok(!("d" in rotated.data.key), "no private key material");
    const after = await client.GET("/api/v1/keys/", { headers: bearer(tokens.root.access) });
    assert.deepEqual(
      after.data?.map((k) => [k.kid, k.state]),
      [
        [before.data?.[0]?.kid, "signing"],
        [rotated.data.key.kid, "pending"],
      ],
    );

    const root = decodeJwt(tokens.root.access);
    const { data: events } = await client.GET("/api/v1/audit/", {
      headers: bearer(tokens.root.access),
      params: { query: { action: ["key.rotated"] } },
    });
    assert.deepEqual(
      events?.map((e) => [e.key_id, e.actor_id, e.session_id]),
      [[rotated.data.key.kid, root.user_id, root.sid]],
      "the rotation, by the superuser",
    );
  });

  it("deletes a user as the superuser", async () => {
    const del = await client.DELETE("/api/v1/account/management/{id}/delete/", {
      headers: bearer(tokens.root.access),
      params: { path: { id: users.regular.id } },
    });
    assert.equal(del.response.status, 204, JSON.stringify(del.error));

    const gone = await client.GET("/api/v1/account/management/{id}/", {
      headers: bearer(tokens.root.access),
      params: { path: { id: users.regular.id } },
    });
    assert.equal(gone.response.status, 404);
    assertErrorBody(gone.error, "not_found");

    const again = await client.DELETE("/api/v1/account/management/{id}/delete/", {
      headers: bearer(tokens.root.access),
      params: { path: { id: users.regular.id } },
    });
    assert.equal(again.response.status, 404);
    assertErrorBody(again.error, "not_found");

    const list = await client.GET("/api/v1/account/management/", { headers: bearer(tokens.root.access) });
    assert.equal(list.response.headers.get("X-Total-Count"), "2");
  });

  it("shows the superuser the audit log, filtered and paged, and refuses it to staff", async () => {
    const root = tokens.root.access;
    const deleted = await client.GET("/api/v1/audit/", {
      headers: bearer(root),
      params: { query: { user_id: users.regular.id, action: ["user.deleted", "user.updated"] } },
    });
    assert.equal(deleted.response.status, 200, JSON.stringify(deleted.error));
    assert.equal(deleted.response.headers.get("X-Total-Count"), "3", "a deletion and two updates");
    const [event] = deleted.data ?? [];
    assert.equal(event?.action, "user.deleted", "newest first");
    assert.equal(event?.target_id, users.regular.id);
    assert.equal(event?.actor_id, decodeJwt(root).user_id);
    assert.equal(event?.session_id, decodeJwt(root).sid);
    assert.deepEqual(deleted.data?.[1]?.fields, ["last_name"], "the PATCH changed only the last name");

    const failed = await client.GET("/api/v1/audit/", {
      headers: bearer(root),
      params: { query: { action: ["login.failed"] } },
    });
    assert.equal(failed.response.status, 200, JSON.stringify(failed.error));
    assert.ok(failed.data && failed.data.length > 0);
    assert.equal(failed.data[0]?.outcome, "failure");
    assert.ok(!JSON.stringify(failed.data).includes("not-the-password"), "no password in the log");

    const page = await client.GET("/api/v1/audit/", { headers: bearer(root), params: { query: { limit: 2 } } });
    assert.equal(page.data?.length, 2);
    assert.equal(page.response.headers.get("Link"), '</api/v1/audit/?limit=2&offset=2>; rel="next"');

    const staff = await login("stella", staffPassword);
    const refused = await client.GET("/api/v1/audit/", { headers: bearer(staff.access) });
    assert.equal(refused.response.status, 403);
    assertErrorBody(refused.error, "permission_denied");

    const bad = await client.GET("/api/v1/audit/", {
      headers: bearer(root),
      params: { query: { since: "2026-01-02T00:00:00Z", until: "2026-01-01T00:00:00Z" } },
    });
    assert.equal(bad.response.status, 400);
    assertErrorBody(bad.error, "invalid", ["until"]);
  });

  it("manages API clients as the superuser, and serves them the OAuth endpoints", async () => {
    const root = bearer(tokens.root.access);
    const created = await client.POST("/api/v1/clients/", { headers: root, body: { name: "e2e", scopes: ["introspect", "revoke"] } });
    assert.equal(created.response.status, 201, JSON.stringify(created.error));
    assert.ok(created.data);
    const id = created.data.client.client_id;
    let secret = created.data.client_secret;
    const path = { params: { path: { client_id: id } } };

    const list = await client.GET("/api/v1/clients/", { headers: root });
    assert.deepEqual(list.data?.map((c) => [c.client_id, c.last_used, c.disabled]), [[id, null, false]]);
    const updated = await client.PATCH("/api/v1/clients/{client_id}/", { headers: root, ...path, body: { name: "e2e-rs" } });
    assert.equal(updated.data?.name, "e2e-rs");
    const rotated = await client.POST("/api/v1/clients/{client_id}/rotate/", { headers: root, ...path, body: { overlap_seconds: 0 } });
    assert.equal(rotated.response.status, 200, JSON.stringify(rotated.error));
    secret = rotated.data?.client_secret ?? "";

    const form = (fields: Record<string, string>) => ({
      body: fields,
      bodySerializer: (b: Record<string, string>) => new URLSearchParams(b).toString(),
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
    const tok = await client.POST("/oauth/token", {
      ...form({ grant_type: "client_credentials", client_id: id, client_secret: secret }),
    });
    assert.equal(tok.response.status, 200, JSON.stringify(tok.error));
    assert.equal(tok.response.headers.get("Cache-Control"), "no-store");
    const clientToken = tok.data?.access_token ?? "";
    const seen = await client.POST("/oauth/introspect", {
      ...form({ token: tokens.root.access }),
      headers: { "Content-Type": "application/x-www-form-urlencoded", ...bearer(clientToken) },
    });
    assert.equal(seen.data?.active, true, JSON.stringify(seen.error));
    assert.equal(seen.data?.username, rootUsername);
    const bad = await client.POST("/oauth/token", { ...form({ grant_type: "password", client_id: id, client_secret: secret }) });
    assert.equal(bad.response.status, 400);
    assert.deepEqual(bad.error, { error: "unsupported_grant_type", error_description: "Only client_credentials is supported." });

    const victim = await login("stella", staffPassword);
    const revoked = await client.POST("/oauth/revoke", { ...form({ token: victim.refresh, client_id: "authapi" }) });
    assert.equal(revoked.response.status, 200, JSON.stringify(revoked.error));
    const gone = await client.POST("/oauth/introspect", {
      ...form({ token: victim.access }),
      headers: { "Content-Type": "application/x-www-form-urlencoded", ...bearer(clientToken) },
    });
    assert.deepEqual(gone.data, { active: false });

    const one = await client.GET("/api/v1/clients/{client_id}/", { headers: root, ...path });
    assert.ok(one.data?.last_used, "the grant is recorded as a use");
    const del = await client.DELETE("/api/v1/clients/{client_id}/", { headers: root, ...path });
    assert.equal(del.response.status, 204);
  });

  it("serves an API client a Shared Signals stream of the revocations it asked for", async () => {
    const root = bearer(tokens.root.access);
    const created = await client.POST("/api/v1/clients/", { headers: root, body: { name: "e2e-ssf", scopes: ["ssf.read", "ssf.manage"] } });
    assert.equal(created.response.status, 201, JSON.stringify(created.error));
    const id = created.data?.client.client_id ?? "";
    const tok = await client.POST("/oauth/token", {
      body: { grant_type: "client_credentials", client_id: id, client_secret: created.data?.client_secret ?? "" },
      bodySerializer: (b: Record<string, string>) => new URLSearchParams(b).toString(),
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    });
    assert.equal(tok.response.status, 200, JSON.stringify(tok.error));
    const auth = bearer(tok.data?.access_token ?? "");

    const conf = await client.GET("/.well-known/ssf-configuration");
    assert.equal(conf.data?.configuration_endpoint, server.baseUrl + "/ssf/streams");
    const sessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
    const stream = await client.POST("/ssf/streams", {
      headers: auth,
      body: { delivery: { method: "urn:ietf:rfc:8936" }, events_requested: [sessionRevoked], format: "complex" },
    });
    assert.equal(stream.response.status, 201, JSON.stringify(stream.error));
    const sid = stream.data?.stream_id ?? "";
    assert.deepEqual(stream.data?.events_delivered, [sessionRevoked]);
    const listed = await client.GET("/ssf/streams", { headers: auth });
    assert.equal(listed.response.status, 200, JSON.stringify(listed.error));
    const patched = await client.PATCH("/ssf/streams", { headers: auth, body: { stream_id: sid, description: "e2e receiver" } });
    assert.equal(patched.data?.description, "e2e receiver", JSON.stringify(patched.error));
    const replaced = await client.PUT("/ssf/streams", {
      headers: auth,
      body: { stream_id: sid, delivery: { method: "urn:ietf:rfc:8936" }, events_requested: [sessionRevoked], format: "complex", description: "e2e" },
    });
    assert.equal(replaced.response.status, 200, JSON.stringify(replaced.error));
    const status = await client.GET("/ssf/status", { headers: auth, params: { query: { stream_id: sid } } });
    assert.equal(status.data?.status, "enabled", JSON.stringify(status.error));
    const paused = await client.POST("/ssf/status", { headers: auth, body: { stream_id: sid, status: "enabled" } });
    assert.equal(paused.response.status, 200, JSON.stringify(paused.error));
    const verify = await client.POST("/ssf/verify", { headers: auth, body: { stream_id: sid, state: "e2e" } });
    assert.equal(verify.response.status, 204, JSON.stringify(verify.error));

    // A logout becomes a session-revoked SET naming the session, signed with a published key.
    const victim = await login("stella", staffPassword);
    const out = await client.POST("/api/v1/auth/logout/", { headers: bearer(victim.access), body: { refresh: victim.refresh } });
    assert.ok(out.response.ok, JSON.stringify(out.error));
    const victimSid = decodeJwt(victim.access).sid;
    const jwks = createRemoteJWKSet(new URL(server.baseUrl + "/.well-known/jwks.json"));
    const seen: string[] = [];
    let found = false;
    for (let i = 0; i < 5 && !found; i++) {
      const polled = await client.POST("/ssf/poll/{stream_id}", {
        headers: auth, params: { path: { stream_id: sid } }, body: { ack: seen.splice(0), maxEvents: 10, returnImmediately: true },
      });
      assert.equal(polled.response.status, 200, JSON.stringify(polled.error));
      for (const [jti, set] of Object.entries(polled.data?.sets ?? {})) {
        const { payload, protectedHeader } = await jwtVerify(set, jwks, { issuer: server.baseUrl, audience: id, typ: "secevent+jwt" });
        assert.equal(protectedHeader.alg, "RS256");
        // SSF 1.0 names the subject at the SET's top level (sub_id), here user + session.
        const subject = payload.sub_id as { session?: { id?: string } } | undefined;
        const events = payload.events as Record<string, unknown> | undefined;
        if (events?.[sessionRevoked] && subject?.session?.id === victimSid) found = true;
        seen.push(jti);
      }
    }
    assert.ok(found, "the logout's session-revoked SET was delivered");
    const deleted = await client.DELETE("/ssf/streams", { headers: auth, params: { query: { stream_id: sid } } });
    assert.equal(deleted.response.status, 204, JSON.stringify(deleted.error));
  });

  it("TOTP codes from otplib (an independent implementation) complete a login once", async () => {
    const root = await login(rootUsername, rootPassword);
    const created = await client.POST("/api/v1/account/management/create/", {
      headers: bearer(root.access),
      body: { username: "otto", first_name: "Otto", last_name: "Tp", email: "otto@example.com", password: regularPassword },
    });
    assert.equal(created.response.status, 201, JSON.stringify(created.error));
    const pair = await login("otto", regularPassword);
    const auth = bearer(pair.access);
    const enrol = await client.POST("/api/v1/account/mfa/totp/", { headers: auth });
    assert.equal(enrol.response.status, 201, JSON.stringify(enrol.error));
    assert.ok(enrol.data);
    const { secret, otpauth_uri: uri, qr_svg: svg } = enrol.data;
    assert.match(uri, /^otpauth:\/\/totp\/.*secret=/);
    assert.match(svg, /^<svg /);
    const now = Math.floor(Date.now() / 1000);
    const code = (epoch: number) => generateSync({ secret, epoch });

    const activated = await client.POST("/api/v1/account/mfa/totp/activate/", { headers: auth, body: { code: code(now) } });
    assert.equal(activated.response.status, 200, JSON.stringify(activated.error));
    assert.equal(activated.data?.codes.length, 10);

    const refused = await client.POST("/api/v1/auth/token/", { body: { username: "otto", password: regularPassword } });
    assert.equal(refused.response.status, 401);
    assert.equal(refused.error?.code, "mfa_required");
    const challenge = refused.error?.mfa?.challenge;
    assert.ok(challenge);
    // The next step's code: the activation used this one (a code works once), and one step of
    // skew is accepted.
    const next = code(now + 30);
    const answer = () =>
      client.POST("/api/v1/auth/mfa/challenge/", { body: { challenge, method: "totp", code: next } });
    const [a, b] = await Promise.all([answer(), answer()]);
    assert.deepEqual([a.response.status, b.response.status].sort(), [200, 401], "one of two parallel answers wins");
    const tokens = (a.data ?? b.data)!;
    const claims = decodeJwt(tokens.access);
    assert.deepEqual(claims.amr, ["pwd", "otp", "mfa"]);
    assert.equal(claims.acr, "aal2");

    const mfaAuth = bearer(tokens.access);
    const factors = await client.GET("/api/v1/account/mfa/", { headers: mfaAuth });
    assert.equal(factors.response.status, 200);
    assert.equal(factors.data?.factors[0]?.active, true);
    const regenerated = await client.POST("/api/v1/account/mfa/recovery-codes/", { headers: mfaAuth });
    assert.equal(regenerated.data?.codes.length, 10);
    // Step-up: re-authenticating with a recovery code raises the same session.
    const raised = await client.POST("/api/v1/auth/reauthenticate/", {
      headers: mfaAuth, body: { method: "recovery_code", code: regenerated.data?.codes[0] ?? "" },
    });
    assert.equal(raised.response.status, 200, JSON.stringify(raised.error));
    const raisedClaims = decodeJwt(raised.data?.access ?? "");
    assert.equal(raisedClaims.sid, claims.sid);
    // The session's methods are kept: a recovery code adds none of its own.
    assert.deepEqual(raisedClaims.amr, ["pwd", "otp", "mfa"]);
    const removed = await client.POST("/api/v1/account/mfa/totp/remove/", { headers: mfaAuth, body: { password: regularPassword } });
    assert.equal(removed.response.status, 204, JSON.stringify(removed.error));
    await login("otto", regularPassword); // a password login again

    // A superuser sees a user's factors and resets them (the user's sessions end).
    const id = created.data?.id ?? 0;
    const seen = await client.GET("/api/v1/users/{id}/mfa/", { headers: bearer(root.access), params: { path: { id } } });
    assert.equal(seen.response.status, 200, JSON.stringify(seen.error));
    assert.equal(seen.data?.enrolment_required, false);
    const reset = await client.POST("/api/v1/users/{id}/mfa/reset/", { headers: bearer(root.access), params: { path: { id } } });
    assert.equal(reset.response.status, 204, JSON.stringify(reset.error));
  });

  it("reaches the keys, the mail flows and sign-up as the spec describes them", async () => {
    // The answers without an authenticator or a mailbox; the e2e suites of the console and
    // mail go through them in Chromium, and the Go tests in full.
    const staff = bearer((await login("stella", staffPassword)).access);
    const begun = await client.POST("/api/v1/account/mfa/webauthn/register/begin/", { headers: staff, body: {} });
    assert.equal(begun.response.status, 200, JSON.stringify(begun.error));
    assert.ok(begun.data?.ceremony);
    const finished = await client.POST("/api/v1/account/mfa/webauthn/register/finish/", {
      headers: staff, body: { ceremony: begun.data?.ceremony ?? "", name: "Key", credential: { id: "not-a-credential" } },
    });
    assert.equal(finished.response.status, 400, JSON.stringify(finished.error));
    const renamed = await client.PATCH("/api/v1/account/mfa/webauthn/{id}/", { headers: staff, params: { path: { id: 999999 } }, body: { name: "Other" } });
    assert.equal(renamed.response.status, 404);
    const removed = await client.DELETE("/api/v1/account/mfa/webauthn/{id}/", { headers: staff, params: { path: { id: 999999 } } });
    assert.equal(removed.response.status, 404);
    const reauthKey = await client.POST("/api/v1/auth/reauthenticate/webauthn/", { headers: staff });
    assert.equal(reauthKey.response.status, 400, "no key to re-authenticate with");
    const passkey = await client.POST("/api/v1/auth/passkey/begin/", {});
    assert.equal(passkey.response.status, 200, JSON.stringify(passkey.error));
    const passkeyLogin = await client.POST("/api/v1/auth/passkey/finish/", {
      body: { ceremony: passkey.data?.ceremony ?? "", credential: { id: "not-a-credential" } },
    });
    // The ceremony is good; the assertion names no credential of any account: refused as a
    // wrong answer (a failure of the IP), not as malformed input, and not about a token.
    assert.equal(passkeyLogin.response.status, 401, JSON.stringify(passkeyLogin.error));
    assertErrorBody(passkeyLogin.error, "invalid_mfa_code");
    assert.equal(passkeyLogin.response.headers.get("WWW-Authenticate"), 'Bearer realm="api"');

    const asked = await client.POST("/api/v1/auth/password/reset/", { body: { login: "nobody-at-all" } });
    assert.equal(asked.response.status, 202, JSON.stringify(asked.error));
    const badReset = await client.POST("/api/v1/auth/password/reset/confirm/", { body: { token: "not-a-token", password: "a-new-password-77" } });
    assert.equal(badReset.error?.code, "email_token_invalid");
    const badConfirm = await client.POST("/api/v1/auth/email/confirm/", { body: { token: "not-a-token" } });
    assert.equal(badConfirm.error?.code, "email_token_invalid");
    const moved = await client.POST("/api/v1/account/email/", { headers: staff, body: { email: "stella.new@example.com", password: staffPassword } });
    assert.equal(moved.response.status, 202, JSON.stringify(moved.error));
    assert.equal(moved.data?.pending_email, "stella.new@example.com");
    const resent = await client.POST("/api/v1/account/email/verify/", { headers: staff });
    // Her current address is not verified (nobody followed its link), and this is her third
    // address mail, under the default five per account: a new link goes out.
    assert.equal(resent.response.status, 202, JSON.stringify(resent.error));

    const settings = await client.GET("/api/v1/auth/signup/", {});
    assert.equal(settings.data?.enabled, false);
    const signUp = await client.POST("/api/v1/auth/signup/", { body: { username: "newcomer", email: "newcomer@example.com", password: "a-new-password-77" } });
    assert.equal(signUp.error?.code, "signup_disabled");
  });

  it("called every operation of the served spec", () => {
    assert.ok(spec, "the spec was fetched");
    const missing = specOperations(spec)
      .filter(({ method, path }) => !called.has(`${method} ${path}`))
      .map(({ method, path, operationId }) => `${operationId} (${method} ${path})`);
    assert.deepEqual(missing, [], "operations this test never called");
  });

  it("shuts down cleanly on SIGTERM", async () => {
    const exit = await server.stop();
    assert.deepEqual(exit, { code: 0, signal: null }, server.output());
  });
});

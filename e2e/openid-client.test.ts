// openid-client (a certified OpenID/OAuth client, no authapi code) against the real authapi
// binary: the client credentials grant, introspection (RFC 7662) and revocation (RFC 7009),
// with client_secret_basic and client_secret_post. The client is registered through the
// superuser API. The configuration comes from discovery at the issuer when authapi serves
// it, else it is given by hand (the endpoints' URLs); the test logs which.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import * as oidc from "openid-client";

import { rootPassword, rootUsername, startServer, type RunningServer } from "./authapi.js";

interface TokenPair {
  access: string;
  refresh: string;
}

describe("openid-client against authapi", () => {
  let server: RunningServer;
  let rootAccess: string;
  let basic: oidc.Configuration;
  let post: oidc.Configuration;
  let publicClient: oidc.Configuration;
  let clientId: string;

  async function postJSON(path: string, body: unknown, token?: string): Promise<Response> {
    return fetch(server.baseUrl + path, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...(token ? { Authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
  }

  async function login(username: string, password: string): Promise<TokenPair> {
    const res = await postJSON("/api/v1/auth/token/", { username, password });
    assert.equal(res.status, 200);
    return (await res.json()) as TokenPair;
  }

  /** configure builds a Configuration: by discovery when the issuer serves it, else by hand. */
  async function configure(id: string, auth: oidc.ClientAuth): Promise<oidc.Configuration> {
    const probe = await fetch(`${server.baseUrl}/.well-known/openid-configuration`);
    if (probe.status === 200) {
      return oidc.discovery(new URL(server.baseUrl), id, undefined, auth, { execute: [oidc.allowInsecureRequests] });
    }
    const config = new oidc.Configuration(
      {
        issuer: server.baseUrl,
        token_endpoint: `${server.baseUrl}/oauth/token`,
        introspection_endpoint: `${server.baseUrl}/oauth/introspect`,
        revocation_endpoint: `${server.baseUrl}/oauth/revoke`,
      },
      id,
      undefined,
      auth,
    );
    oidc.allowInsecureRequests(config);
    return config;
  }

  before(async () => {
    // The issuer is the server's URL, as discovery needs.
    server = await startServer();
    rootAccess = (await login(rootUsername, rootPassword)).access;
    const created = await postJSON("/api/v1/clients/", { name: "openid-client", scopes: ["introspect", "revoke"] }, rootAccess);
    assert.equal(created.status, 201);
    const { client, client_secret } = (await created.json()) as { client: { client_id: string }; client_secret: string };
    clientId = client.client_id;
    basic = await configure(clientId, oidc.ClientSecretBasic(client_secret));
    post = await configure(clientId, oidc.ClientSecretPost(client_secret));
    publicClient = await configure("authapi", oidc.None());
    const discovered = (await fetch(`${server.baseUrl}/.well-known/openid-configuration`)).status === 200;
    console.log(`openid-client configured ${discovered ? "by discovery" : "by hand (no discovery served)"}`);
  });

  after(async () => {
    await server?.stop();
  });

  it("gets a client token with client_secret_basic and client_secret_post", async () => {
    for (const config of [basic, post]) {
      const tok = await oidc.clientCredentialsGrant(config, { scope: "introspect" });
      assert.equal(tok.token_type.toLowerCase(), "bearer");
      assert.equal(tok.scope, "introspect");
      assert.ok((tok.expires_in ?? 0) > 0);
      const seen = await oidc.tokenIntrospection(basic, tok.access_token);
      assert.equal(seen.active, true);
      assert.equal(seen.client_id, clientId);
    }
    await assert.rejects(oidc.clientCredentialsGrant(basic, { scope: "ssf.manage" }), (err: Error & { error?: string }) => {
      assert.equal(err.error, "invalid_scope");
      return true;
    });
  });

  it("introspects a user's tokens, and revokes them (as a client and as the public client)", async () => {
    const regular = await postJSON(
      "/api/v1/account/management/create/",
      { username: "olivia", password: "olivia-opens-oauth-9", email: "o@example.com", first_name: "O", last_name: "C" },
      rootAccess,
    );
    assert.equal(regular.status, 201);

    const a = await login("olivia", "olivia-opens-oauth-9");
    const active = await oidc.tokenIntrospection(basic, a.access, { token_type_hint: "access_token" });
    assert.equal(active.active, true);
    assert.equal(active.username, "olivia");
    assert.equal(active.token_type, "Bearer");
    assert.equal((await oidc.tokenIntrospection(post, a.refresh)).active, true);

    await oidc.tokenRevocation(basic, a.access, { token_type_hint: "access_token" });
    assert.deepEqual(await oidc.tokenIntrospection(basic, a.access), { active: false });
    assert.deepEqual(await oidc.tokenIntrospection(basic, a.refresh), { active: false });

    const b = await login("olivia", "olivia-opens-oauth-9");
    await oidc.tokenRevocation(publicClient, b.refresh);
    assert.deepEqual(await oidc.tokenIntrospection(post, b.access), { active: false });

    await oidc.tokenRevocation(basic, "not-a-token"); // 200 for anything unknown
    assert.deepEqual(await oidc.tokenIntrospection(basic, "not-a-token"), { active: false });
  });

  it("is refused with a wrong secret", async () => {
    const wrong = await configure(clientId, oidc.ClientSecretBasic("wrong"));
    // A 401 with the Basic challenge (RFC 6749 5.2), which openid-client reports as such.
    await assert.rejects(oidc.clientCredentialsGrant(wrong), (err: Error & { code?: string; status?: number; cause?: unknown }) => {
      assert.equal(err.code, "OAUTH_WWW_AUTHENTICATE_CHALLENGE");
      assert.equal(err.status, 401);
      assert.equal((err.cause as { scheme: string }[])[0]?.scheme, "basic");
      return true;
    });
  });
});

// @authapi/verifier against the real binary: configured with the issuer URL alone, it accepts
// authapi's access token and refuses its refresh token and a token for another audience; with
// an API client it follows authapi's stream, refuses a logged-out session's token, and fails
// closed when authapi stops.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";

import { SessionRevoked, TokenError, createVerifier, type SecurityEvent, type Verifier } from "@authapi/verifier";

import { rootPassword, rootUsername, startServer, type RunningServer } from "./authapi.js";

describe("@authapi/verifier against authapi", () => {
  let server: RunningServer;
  let pair: { access: string; refresh: string };
  const verifiers: Verifier[] = [];
  before(async () => {
    server = await startServer();
    const r = await fetch(`${server.baseUrl}/api/v1/auth/token/`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: rootUsername, password: rootPassword }),
    });
    assert.equal(r.status, 200);
    pair = (await r.json()) as { access: string; refresh: string };
  });
  after(async () => {
    for (const v of verifiers) await v.close();
    await server?.stop();
  });
  const login = async () => {
    const r = await fetch(`${server.baseUrl}/api/v1/auth/token/`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: rootUsername, password: rootPassword }),
    });
    assert.equal(r.status, 200);
    return (await r.json()) as { access: string; refresh: string };
  };
  const verifier = async (audience: string) => {
    const v = await createVerifier({ issuer: server.baseUrl, audience });
    verifiers.push(v);
    return v;
  };

  it("accepts an access token and refuses a refresh token and another audience", async () => {
    const v = await verifier(server.baseUrl);
    const c = await v.verify(pair.access);
    assert.equal(c.client_id, "authapi");
    assert.deepEqual(c.amr, ["pwd"]);
    assert.ok(c.sid && c.sub && c.auth_time);
    await assert.rejects(v.verify(pair.refresh), (e) => e instanceof TokenError && e.code === "invalid_token");
    const other = await verifier("https://another-api.example.com");
    await assert.rejects(other.verify(pair.access), (e) => e instanceof TokenError && e.code === "invalid_token");
  });

  it("follows the stream: a logged-out session's token is refused; stopped, authapi is failed closed on", async () => {
    const admin = await login();
    const created = await fetch(`${server.baseUrl}/api/v1/clients/`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${admin.access}` },
      body: JSON.stringify({ name: "node-rs", scopes: ["introspect", "ssf.read", "ssf.manage"] }),
    });
    assert.equal(created.status, 201);
    const { client, client_secret } = (await created.json()) as { client: { client_id: string }; client_secret: string };
    let offset = 0; // the verifier's clock runs ahead when told
    const events: SecurityEvent[] = [];
    const waiters = new Set<() => void>();
    const nextPoll = () => new Promise<void>((resolve) => waiters.add(resolve));
    const v = await createVerifier({
      issuer: server.baseUrl,
      audience: server.baseUrl,
      clientId: client.client_id,
      clientSecret: client_secret,
      streamName: "e2e-node",
      now: () => Date.now() + offset,
      onEvent: (e) => events.push(e),
      onPoll: () => {
        for (const w of waiters) w();
        waiters.clear();
      },
      warn: () => {},
    });
    verifiers.push(v);
    while (v.health().stale) await nextPoll();
    const pair = await login();
    const claims = await v.verify(pair.access); // issued as the stream began: introspected once
    const loggedOut = Date.now();
    const r = await fetch(`${server.baseUrl}/api/v1/auth/logout/`, {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${pair.access}` },
      body: JSON.stringify({ refresh: pair.refresh }),
    });
    assert.ok(r.status < 300, `logout: ${r.status}`);
    while (!events.some((e) => e.type === SessionRevoked && e.sessionId === claims.sid)) await nextPoll();
    console.log(`revocation to refusal: ${Date.now() - loggedOut} ms`);
    await assert.rejects(v.verify(pair.access), (e) => e instanceof TokenError && e.code === "revoked");
    const other = await login();
    await v.verify(other.access);

    await server.stop();
    offset += 2001; // past staleAfterMs since the last poll
    await assert.rejects(v.verify(other.access), (e) => e instanceof TokenError && e.code === "unavailable");
  });
});

// Third-party resource servers, configured with nothing but the running authapi binary's issuer
// URL (and the audience): express-oauth2-jwt-bearer (which reads discovery itself) and jose (the
// jwks_uri read from discovery, then createRemoteJWKSet + jwtVerify with typ "at+jwt"). Each
// accepts a fresh access token and refuses an expired, tampered, wrong-audience or refresh one.
//
// Expired: the binary has no test clock, and waiting for a real expiry would make the test
// slow and depend on express-oauth2-jwt-bearer's 5 s clock tolerance. Instead the resource
// servers' clock moves: node:test's mock timers fake Date (only Date: no timer is faked) an
// hour ahead while the expired case is verified, in this process where both libraries run.
// The token is the same fresh one; nothing waits on real time.
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { after, before, describe, it, mock } from "node:test";
import express, { type NextFunction, type Request, type Response } from "express";
import { auth } from "express-oauth2-jwt-bearer";
import { createRemoteJWKSet, jwtVerify } from "jose";

import { newClient } from "../gen/ts/client.js";
import { rootPassword, rootUsername, startServer, type RunningServer } from "./authapi.js";

const otherAudience = "https://other-api.example";

/** startResourceServer serves GET /me behind express-oauth2-jwt-bearer for audience. */
async function startResourceServer(issuer: string, audience: string): Promise<{ url: string; close(): Promise<void> }> {
  const app = express();
  app.get("/me", auth({ issuerBaseURL: issuer, audience }), (req: Request, res: Response) => {
    res.json({ sub: req.auth?.payload.sub, client_id: req.auth?.payload.client_id });
  });
  app.use((err: { status?: number; message?: string }, _req: Request, res: Response, _next: NextFunction) => {
    res.status(err.status ?? 500).json({ error: err.message });
  });
  const listener = app.listen(0, "127.0.0.1");
  await new Promise<void>((ok, fail) => listener.once("listening", ok).once("error", fail));
  const { port } = listener.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((ok) => listener.close(() => ok())),
  };
}

/** joseVerifier reads discovery for jwks_uri, as a resource server given the issuer does. */
async function joseVerifier(issuer: string) {
  const meta = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as { issuer: string; jwks_uri: string };
  assert.equal(meta.issuer, issuer);
  const jwks = createRemoteJWKSet(new URL(meta.jwks_uri));
  return (token: string, audience: string) => jwtVerify(token, jwks, { issuer, audience, typ: "at+jwt" });
}

/** tamper changes the payload's sub and user_id, keeping header and signature. */
function tamper(token: string): string {
  const [header, payload, signature] = token.split(".") as [string, string, string];
  const claims = JSON.parse(Buffer.from(payload, "base64url").toString());
  const changed = Buffer.from(JSON.stringify({ ...claims, sub: "2", user_id: 2 })).toString("base64url");
  return `${header}.${changed}.${signature}`;
}

describe("third-party resource servers, configured with the issuer URL", () => {
  let server: RunningServer;
  let access: string;
  let refresh: string;
  const rs: Record<"ours" | "other", { url: string; close(): Promise<void> }> = {} as never;
  let verify: Awaited<ReturnType<typeof joseVerifier>>;

  before(async () => {
    server = await startServer();
    const client = newClient({ baseUrl: server.baseUrl });
    const { data, response } = await client.POST("/api/v1/auth/token/", { body: { username: rootUsername, password: rootPassword } });
    assert.equal(response.status, 200);
    assert.ok(data?.refresh);
    ({ access, refresh } = data as { access: string; refresh: string });
    // The issuer and audience default to the public URL, which defaults to http://<addr>.
    rs.ours = await startResourceServer(server.baseUrl, server.baseUrl);
    rs.other = await startResourceServer(server.baseUrl, otherAudience);
    verify = await joseVerifier(server.baseUrl);
  });

  after(async () => {
    await rs.ours?.close();
    await rs.other?.close();
    await server?.stop();
  });

  /** expressStatus asks the express resource server at url for /me with token. */
  async function expressStatus(url: string, token: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(`${url}/me`, { headers: { Authorization: `Bearer ${token}` } });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  /** hourLater runs fn with Date an hour ahead: the fresh tokens (15 minutes) have expired. */
  async function hourLater<T>(fn: () => Promise<T>): Promise<T> {
    mock.timers.enable({ apis: ["Date"], now: Date.now() + 3600_000 });
    try {
      return await fn();
    } finally {
      mock.timers.reset();
    }
  }

  it("accept a fresh access token", async () => {
    const got = await expressStatus(rs.ours.url, access);
    assert.equal(got.status, 200, JSON.stringify(got.body));
    assert.equal(got.body.sub, "1");
    assert.equal(got.body.client_id, "authapi");
    const { payload, protectedHeader } = await verify(access, server.baseUrl);
    assert.equal(protectedHeader.typ, "at+jwt");
    assert.deepEqual(payload.amr, ["pwd"]);
  });

  it("refuse an expired access token", async () => {
    const got = await hourLater(() => expressStatus(rs.ours.url, access));
    assert.equal(got.status, 401, JSON.stringify(got.body));
    assert.match(String(got.body.error), /exp/);
    await assert.rejects(hourLater(() => verify(access, server.baseUrl)), { code: "ERR_JWT_EXPIRED" });
  });

  it("refuse a tampered access token", async () => {
    const got = await expressStatus(rs.ours.url, tamper(access));
    assert.equal(got.status, 401, JSON.stringify(got.body));
    await assert.rejects(verify(tamper(access), server.baseUrl), { code: "ERR_JWS_SIGNATURE_VERIFICATION_FAILED" });
  });

  it("refuse an access token for another audience", async () => {
    const got = await expressStatus(rs.other.url, access);
    assert.equal(got.status, 401, JSON.stringify(got.body));
    assert.match(String(got.body.error), /aud/);
    await assert.rejects(verify(access, otherAudience), { code: "ERR_JWT_CLAIM_VALIDATION_FAILED", claim: "aud" });
  });

  it("refuse a refresh token", async () => {
    // express-oauth2-jwt-bearer (not strict by default, so typ is not checked) refuses it for
    // its missing aud; jose, told typ at+jwt, for its typ JWT.
    const got = await expressStatus(rs.ours.url, refresh);
    assert.equal(got.status, 401, JSON.stringify(got.body));
    assert.match(String(got.body.error), /aud/);
    await assert.rejects(verify(refresh, server.baseUrl), { code: "ERR_JWT_CLAIM_VALIDATION_FAILED", claim: "typ" });
  });
});

// The verifier against a fake issuer, on a test clock: no sleeps as synchronisation, each
// wait is for the stream's next poll (onPoll), with a safety timeout.
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { createServer } from "node:http";
import { afterEach, describe, it } from "node:test";

import { AccountDisabled, CredentialChange, SessionRevoked, TokenError, createVerifier, requireAccessToken } from "../dist/index.js";
import { audience, clientId, clientSecret, newKey, sign, startFakeIssuer } from "./fake-issuer.js";

const start = 1_800_000_000_000;
const cleanups = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()();
});

async function newEnv({ stream = true, ...opts } = {}) {
  const clock = { ms: start, now() { return this.ms; }, add(ms) { this.ms += ms; } };
  const iss = await startFakeIssuer(clock);
  const polled = new Set();
  const env = { clock, iss, polled };
  const options = { issuer: iss.url, audience, now: () => clock.now(), leewaySec: 1, streamName: "test", warn: () => {},
    onPoll: () => { for (const w of polled) w(); polled.clear(); }, ...opts };
  if (stream) Object.assign(options, { clientId, clientSecret });
  env.options = options;
  env.v = await createVerifier(options);
  cleanups.push(() => iss.close(), () => env.v.close());
  // nextPoll resolves after the stream's next poll attempt.
  env.nextPoll = () => new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no poll: ${JSON.stringify(env.v.health())}`)), 10_000);
    polled.add(() => { clearTimeout(t); resolve(); });
    iss.kick();
  });
  env.until = async (cond) => { while (!cond()) await env.nextPoll(); };
  // heard: a poll sent at the clock's time has been answered and applied.
  env.heard = () => env.until(() => { const h = env.v.health(); return !h.stale && h.lastPoll >= clock.now(); });
  env.applied = (n) => env.until(() => env.v.health().events >= n);
  // live: a token issued after the stream began, checked locally.
  // fresh: the stream is heard from up to the clock's time (a status check and a poll since).
  env.fresh = () => env.until(() => { const h = env.v.health(); return !h.stale && h.lastHeard >= clock.now(); });
  env.live = async (sub, sid) => {
    await env.heard();
    clock.add(2000); // past staleAfterMs / 2: a status check is due
    await env.fresh();
    return iss.accessToken(sub, sid, Math.floor(clock.now() / 1000));
  };
  return env;
}

const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
const hs256 = (secret, header, claims) => {
  const input = `${b64(header)}.${b64(claims)}`;
  return `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
};

const refusedWith = (code) => (err) => err instanceof TokenError && err.code === code;

describe("verifier", () => {
  it("verifies locally without credentials and refuses what is not an access token", async () => {
    const { v, iss } = await newEnv({ stream: false });
    const iat = start / 1000;
    const c = await v.verify(await iss.accessToken("42", "s1", iat));
    assert.equal(c.sub, "42");
    assert.equal(c.sid, "s1");
    assert.deepEqual(c.amr, ["pwd"]);
    assert.equal(v.health().enabled, false);
    const base = { iss: iss.url, sub: "42", aud: audience, client_id: "authapi", jti: "j", iat, exp: iat + 60 };
    const other = await newKey("k1", "EdDSA");
    const good = await iss.accessToken("42", "s1", iat);
    const [h, p, s] = good.split(".");
    const refused = {
      "refresh token (typ JWT, no aud)": await sign(iss.access, "JWT", { ...base, aud: undefined, token_type: "refresh" }),
      "typ JWT": await sign(iss.access, "JWT", base),
      "wrong aud": await sign(iss.access, "at+jwt", { ...base, aud: "https://other" }),
      "wrong iss": await sign(iss.access, "at+jwt", { ...base, iss: "https://evil" }),
      expired: await sign(iss.access, "at+jwt", { ...base, iat: iat - 100, exp: iat - 10 }),
      "another key under a known kid": await sign(other, "at+jwt", base),
      "alg confusion (HS256 keyed with the public key)": hs256(JSON.stringify(iss.access.jwk), { alg: "HS256", kid: "k1", typ: "at+jwt" }, base),
      "alg none": `${b64({ alg: "none", kid: "k1", typ: "at+jwt" })}.${b64(base)}.`,
      tampered: `${h}.${Buffer.from(JSON.stringify({ ...base, sub: "1" })).toString("base64url")}.${s}`,
      "no client_id": await sign(iss.access, "at+jwt", { ...base, client_id: undefined }),
      "lifetime above maxTokenLifetimeSec": await sign(iss.access, "at+jwt", { ...base, exp: iat + 7200 }),
      "SET": await sign(iss.access, "secevent+jwt", base),
    };
    for (const [name, token] of Object.entries(refused)) {
      await assert.rejects(v.verify(token), refusedWith("invalid_token"), name);
    }
  });

  it("refuses a revoked session's token once the stream delivers the event, and acknowledges it", async () => {
    const events = [];
    const env = await newEnv({ onEvent: (e) => events.push(e) });
    const tok = await env.live("42", "s1");
    const other = await env.iss.accessToken("42", "s2", Math.floor(env.clock.now() / 1000));
    await env.v.verify(tok);
    const jti = await env.iss.emit(SessionRevoked, "42", "s1");
    await env.applied(1);
    await assert.rejects(env.v.verify(tok), refusedWith("revoked"));
    await env.v.verify(other);
    assert.equal(env.iss.introspects, 0);
    assert.equal(events.length, 1);
    assert.equal(events[0].sessionId, "s1");
    assert.equal(events[0].subject, "42");
    env.clock.add(1);
    await env.heard();
    assert.deepEqual(env.iss.acked, [jti]);
  });

  it("refuses a user's older tokens after credential-change and account-disabled", async () => {
    for (const [type, sameSecondKept] of [[CredentialChange, true], [AccountDisabled, false]]) {
      const env = await newEnv();
      const older = await env.live("7", "a");
      env.clock.add(1000);
      await env.heard();
      const same = await env.iss.accessToken("7", "b", Math.floor(env.clock.now() / 1000));
      await env.iss.emit(type, "7");
      await env.applied(1);
      await assert.rejects(env.v.verify(older), refusedWith("revoked"), type);
      const kept = await env.v.verify(same).then(() => true, () => false);
      assert.equal(kept, sameSecondKept, `${type}: token of the event's second`);
      env.clock.add(1000);
      await env.heard();
      await env.v.verify(await env.iss.accessToken("7", "c", Math.floor(env.clock.now() / 1000)));
    }
  });

  it("forgets revocations when every token they refuse has expired", async () => {
    const env = await newEnv({ maxTokenLifetimeSec: 900 });
    await env.live("1", "s");
    await env.iss.emit(SessionRevoked, "1", "s");
    await env.applied(1);
    assert.equal(env.v.health().revoked, 1);
    env.clock.add((900 + 1) * 1000);
    await env.heard();
    assert.equal(env.v.health().revoked, 0);
  });

  for (const onStale of ["introspect", "refuse"]) {
    it(`fails closed after staleAfterMs (${onStale})`, async () => {
      const env = await newEnv({ onStale });
      const tok = await env.live("42", "s1");
      env.iss.setDown(true);
      env.clock.add(2000);
      await env.v.verify(tok);
      assert.equal(env.iss.introspects, 0);
      env.clock.add(1);
      assert.equal(env.v.health().stale, true);
      if (onStale === "refuse") {
        await assert.rejects(env.v.verify(tok), refusedWith("unavailable"));
        assert.equal(env.iss.introspects, 0);
        return;
      }
      await assert.rejects(env.v.verify(tok), refusedWith("unavailable"));
      assert.equal(env.iss.introspects, 1);
      env.iss.introspectDown = false; // introspection answers again; polls still fail
      env.iss.active = (t) => t === tok;
      await env.v.verify(tok);
      await assert.rejects(env.v.verify(await env.iss.accessToken("42", "s9", Math.floor(env.clock.now() / 1000))), refusedWith("revoked"));
      await env.v.verify(tok); // stale answers are not cached: each request asks
      assert.equal(env.iss.introspects, 4);
    });
  }

  it("confirms a token issued before the stream began by introspection, once", async () => {
    const env = await newEnv();
    await env.heard();
    const iat = start / 1000 - 60;
    const old = await env.iss.accessToken("42", "s1", iat);
    const revoked = await env.iss.accessToken("42", "s2", iat);
    env.iss.active = (t) => t === old;
    for (let i = 0; i < 3; i++) await env.v.verify(old);
    await assert.rejects(env.v.verify(revoked), refusedWith("revoked"));
    assert.equal(env.iss.introspects, 2);
    await env.iss.emit(SessionRevoked, "42", "s1");
    await env.applied(1);
    await assert.rejects(env.v.verify(old), refusedWith("revoked"));
  });

  it("fetches the keys again for an unknown kid, at most once per cooldown", async () => {
    const { v, iss } = await newEnv({ stream: false });
    const iat = start / 1000;
    await v.verify(await iss.accessToken("1", "s", iat));
    const fetchesBefore = iss.jwksFetches;
    const claims = { iss: iss.url, sub: "1", aud: audience, client_id: "c", jti: "j", iat, exp: iat + 60 };
    for (let i = 0; i < 20; i++) {
      await assert.rejects(v.verify(await sign(await newKey(`made-up-${i}`, "EdDSA"), "at+jwt", claims)), refusedWith("invalid_token"));
    }
    // jose's cooldown runs on the real clock; 20 refusals take far less than its second.
    assert.ok(iss.jwksFetches - fetchesBefore <= 1, `${iss.jwksFetches - fetchesBefore} JWKS fetches for 20 unknown kids`);
  });

  it("reports a SET it cannot verify in setErrs and does not apply it", async () => {
    const env = await newEnv();
    const tok = await env.live("42", "s1");
    const forged = await newKey("set1", "RS256");
    env.iss.queue.set("forged", await sign(forged, "secevent+jwt", { iss: env.iss.url, aud: clientId, jti: "forged", iat: Math.floor(env.clock.now() / 1000),
      sub_id: { format: "complex", session: { format: "opaque", id: "s1" } }, events: { [SessionRevoked]: {} } }));
    await env.iss.emit(SessionRevoked, "1", "other");
    await env.applied(1);
    env.clock.add(1);
    await env.heard();
    await env.v.verify(tok);
    assert.ok(env.iss.setErrs.forged, "forged SET not reported");
  });

  it("resumes its stream by name after a restart", async () => {
    const env = await newEnv();
    await env.heard();
    const first = env.v.health().streamId;
    await env.v.close();
    env.v = await createVerifier(env.options);
    cleanups.push(() => env.v.close());
    await env.heard();
    assert.equal(env.v.health().streamId, first);
    assert.equal(env.iss.streams.length, 1);
    assert.equal(env.iss.streams[0].format, "complex");
  });
});

describe("a paused stream", () => {
  it("is enabled again at the next status check, and coverage starts again", async () => {
    const env = await newEnv();
    const tok = await env.live("42", "s1");
    const since = env.v.health().since;
    env.iss.status = "paused";
    await env.iss.emit(SessionRevoked, "42", "s1"); // held while paused
    env.clock.add(1000);
    await env.applied(1);
    await assert.rejects(env.v.verify(tok), refusedWith("revoked"));
    assert.equal(env.iss.enables, 1);
    assert.ok(env.v.health().since > since);
  });

  it("counts polls as heard only as far as the last status check found it enabled", async () => {
    const env = await newEnv();
    await env.live("42", "s1"); // the status was checked now
    const checked = env.clock.now();
    env.iss.status = "paused";
    env.iss.refuseEnable = true;
    env.clock.add(999); // no status check due yet
    await env.heard();
    assert.equal(env.v.health().lastHeard, checked);
    env.clock.add(1002);
    assert.equal(env.v.health().stale, true);
  });
});

describe("requireAccessToken", () => {
  it("answers 401 and 503 as RFC 6750 says and hands the claims on", async () => {
    const env = await newEnv({ onStale: "refuse" });
    const tok = await env.live("42", "s1");
    const mw = requireAccessToken(env.v);
    const server = createServer((req, res) => mw(req, res, () => res.end(`${req.auth.sub}/${req.auth.sid}`)));
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    const url = `http://127.0.0.1:${server.address().port}/`;
    const get = (auth) => fetch(url, { headers: auth ? { Authorization: auth } : {} });
    let r = await get(`Bearer ${tok}`);
    assert.equal(r.status, 200);
    assert.equal(await r.text(), "42/s1");
    r = await get();
    assert.equal(r.status, 401);
    assert.match(r.headers.get("www-authenticate"), /^Bearer realm="api"$/);
    assert.equal((await r.json()).error, "invalid_request");
    r = await get("Bearer x.y.z");
    assert.equal(r.status, 401);
    assert.match(r.headers.get("www-authenticate"), /error="invalid_token"/);
    await env.iss.emit(SessionRevoked, "42", "s1");
    await env.applied(1);
    r = await get(`Bearer ${tok}`);
    assert.equal(r.status, 401);
    assert.equal((await r.json()).error_description, "token revoked");
    env.iss.setDown(true);
    env.clock.add(2001);
    r = await get(`Bearer ${await env.iss.accessToken("42", "s2", Math.floor(env.clock.now() / 1000))}`);
    assert.equal(r.status, 503);
    assert.equal(r.headers.get("retry-after"), "1");
  });
});

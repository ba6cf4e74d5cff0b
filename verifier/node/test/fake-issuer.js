// A fake authapi for the verifier's tests, by the standards it follows: RFC 8414 discovery, a
// JWKS, the client credentials grant, RFC 7662 introspection and an SSF stream with RFC 8936
// poll delivery. The clock is the test's.
import { createServer } from "node:http";
import { SignJWT, exportJWK, generateKeyPair } from "jose";

export const clientId = "ac_test";
export const clientSecret = "s3cret/+";
export const audience = "https://api.example.com";
export const PollDelivery = "urn:ietf:rfc:8936";

export async function newKey(kid, alg) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { kid, alg, jwk, privateKey };
}

export async function sign(key, typ, claims, header = {}) {
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, typ, ...header }).sign(key.privateKey);
}

export async function startFakeIssuer(clock) {
  const f = {
    clock,
    access: await newKey("k1", "EdDSA"),
    setKey: await newKey("set1", "RS256"),
    jwksFetches: 0,
    introspects: 0,
    active: () => true,
    streams: [],
    queue: new Map(),
    acked: [],
    setErrs: {},
    down: false, // polls answer 503
    introspectDown: false, // introspection answers 503
    kicked: false,
    status: "enabled", // of the (one) stream
    enables: 0,
    refuseEnable: false,
    waiters: new Set(),
    nextEvent: 0,
  };
  // As authapi does, the SET key is made (and published) when the first stream is created.
  f.keys = [f.access];
  f.kick = () => {
    f.kicked = true;
    for (const w of f.waiters) w();
    f.waiters.clear();
  };
  f.setDown = (down) => {
    f.down = down;
    f.introspectDown = down;
    f.kick();
  };
  const basicOK = (req) => {
    const want = "Basic " + Buffer.from(`${clientId}:${encodeURIComponent(clientSecret)}`).toString("base64");
    return req.headers.authorization === want;
  };
  const json = (res, status, body) => {
    res.writeHead(status, { "Content-Type": "application/json" });
    res.end(JSON.stringify(body));
  };
  const readBody = async (req) => {
    let s = "";
    for await (const chunk of req) s += chunk;
    return s;
  };
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, f.url);
    const body = await readBody(req);
    const route = `${req.method} ${url.pathname}`;
    if (route === "GET /.well-known/oauth-authorization-server") {
      return json(res, 200, { issuer: f.url, jwks_uri: `${f.url}/.well-known/jwks.json`, token_endpoint: `${f.url}/oauth/token`, introspection_endpoint: `${f.url}/oauth/introspect` });
    }
    if (route === "GET /.well-known/jwks.json") {
      f.jwksFetches++;
      return json(res, 200, { keys: f.keys.map((k) => k.jwk) });
    }
    if (route === "POST /oauth/token") {
      const form = new URLSearchParams(body);
      if (!basicOK(req) || form.get("grant_type") !== "client_credentials") return json(res, 401, { error: "invalid_client" });
      return json(res, 200, { access_token: "client-token", token_type: "Bearer", expires_in: 3600 });
    }
    if (route === "POST /oauth/introspect") {
      f.introspects++;
      if (f.introspectDown) return json(res, 503, {});
      if (!basicOK(req)) return json(res, 401, { error: "invalid_client" });
      return json(res, 200, { active: f.active(new URLSearchParams(body).get("token")) });
    }
    if (route === "GET /.well-known/ssf-configuration") {
      return json(res, 200, { issuer: f.url, delivery_methods_supported: [PollDelivery], configuration_endpoint: `${f.url}/ssf/streams`, status_endpoint: `${f.url}/ssf/status` });
    }
    if (req.headers.authorization !== "Bearer client-token") return json(res, 401, { error: "invalid_token" });
    if (route === "GET /ssf/streams") return json(res, 200, f.streams);
    if (route === "GET /ssf/status") return json(res, 200, { stream_id: url.searchParams.get("stream_id"), status: f.status });
    if (route === "POST /ssf/status") {
      if (f.refuseEnable) return json(res, 403, { error: "insufficient_scope" });
      const want = JSON.parse(body);
      f.status = want.status;
      if (want.status === "enabled") f.enables++;
      return json(res, 200, { stream_id: want.stream_id, status: f.status });
    }
    if (route === "POST /ssf/streams") {
      const want = JSON.parse(body);
      const id = `st${f.streams.length + 1}`;
      const s = { stream_id: id, iss: f.url, aud: clientId, description: want.description, format: want.format, events_requested: want.events_requested,
        delivery: { method: PollDelivery, endpoint_url: `${f.url}/ssf/poll/${id}` } };
      f.streams.push(s);
      if (f.streams.length === 1) f.keys.push(f.setKey);
      return json(res, 201, s);
    }
    if (req.method === "POST" && url.pathname.startsWith("/ssf/poll/")) {
      const p = JSON.parse(body);
      for (const jti of p.ack ?? []) {
        f.queue.delete(jti);
        f.acked.push(jti);
      }
      for (const [jti, e] of Object.entries(p.setErrs ?? {})) {
        f.queue.delete(jti);
        f.setErrs[jti] = e;
      }
      if ((f.queue.size === 0 || f.status !== "enabled") && !p.returnImmediately && !f.down && !f.kicked) {
        await new Promise((resolve) => {
          const t = setTimeout(resolve, 500); // the transmitter's own hold
          f.waiters.add(() => { clearTimeout(t); resolve(); });
          req.on("close", resolve);
        });
      }
      f.kicked = false;
      if (f.down) return json(res, 503, {});
      const sets = {};
      if (f.status === "enabled") for (const [jti, set] of f.queue) if (Object.keys(sets).length < p.maxEvents) sets[jti] = set;
      return json(res, 200, { sets, moreAvailable: Object.keys(sets).length < f.queue.size });
    }
    json(res, 404, {});
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  f.url = `http://127.0.0.1:${server.address().port}`;
  f.close = () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); });

  /** accessToken signs a user's access token issued at iat (seconds). */
  f.accessToken = (sub, sid, iat, extra = {}) =>
    sign(f.access, "at+jwt", { iss: f.url, sub, aud: audience, client_id: "authapi", sid, jti: `${sub}-${sid}-${iat}-${Math.random()}`,
      iat, exp: iat + 900, auth_time: iat, amr: ["pwd"], token_type: "access", user_id: 1, ...extra });

  /** emit queues a SET about the user sub (and session sid, if any) at the clock's now. */
  f.emit = async (type, sub, sid) => {
    const jti = `ev${++f.nextEvent}`;
    const now = Math.floor(f.clock.now() / 1000);
    const user = { format: "iss_sub", iss: f.url, sub };
    // As authapi writes them on a complex stream: the user, and the session when there is one.
    const subject = sid ? { format: "complex", user, session: { format: "opaque", id: sid } } : { format: "complex", user };
    f.queue.set(jti, await sign(f.setKey, "secevent+jwt", { iss: f.url, aud: clientId, jti, iat: now, sub_id: subject, events: { [type]: { event_timestamp: now } } }));
    f.kick();
    return jti;
  };
  return f;
}

// The framework-free core: verify authapi's access tokens locally (RFC 9068, keys from the
// issuer's discovery document), follow the issuer's Shared Signals poll stream (RFC 8936) for
// revocations, and fail closed through introspection (RFC 7662) when the stream is stale.
// It mirrors the Go package github.com/authapi/authapi/verifier.
import { createRemoteJWKSet, customFetch, errors as joseErrors, jwtVerify, type JWTPayload } from "jose";

export const PollDelivery = "urn:ietf:rfc:8936";
export const SessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
export const CredentialChange = "https://schemas.openid.net/secevent/caep/event-type/credential-change";
export const TokenClaimsChange = "https://schemas.openid.net/secevent/caep/event-type/token-claims-change";
export const AccountDisabled = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
export const AccountPurged = "https://schemas.openid.net/secevent/risc/event-type/account-purged";
export const StreamUpdated = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated";
const eventsRequested = [SessionRevoked, CredentialChange, TokenClaimsChange, AccountDisabled, AccountPurged];

export interface VerifierOptions {
  /** The issuer URL, e.g. https://auth.example.com; discovery is <issuer>/.well-known/oauth-authorization-server. */
  issuer: string;
  /** aud must hold one of these. */
  audience: string | string[];
  /** An API client's credentials (scopes ssf.manage, ssf.read, introspect). Without a secret
   * there is no stream and no introspection: tokens stay valid until they expire. */
  clientId?: string;
  clientSecret?: string;
  /** How long the stream may be silent before verification fails closed. Default 2000. */
  staleAfterMs?: number;
  /** While stale: confirm each token by introspection (default) or refuse it. */
  onStale?: "introspect" | "refuse";
  /** Bounds exp - iat of accepted tokens and how long a revocation is remembered. Default 3600. */
  maxTokenLifetimeSec?: number;
  /** Clock skew allowed. Default 5. */
  leewaySec?: number;
  /** Names this process's stream so that a restart resumes it from its last ack; each process needs its own. Default "authapi-verifier-node@<hostname>". */
  streamName?: string;
  /** The clock, in milliseconds. Default Date.now. */
  now?: () => number;
  fetch?: typeof fetch;
  /** Called after each security event has been applied. */
  onEvent?: (event: SecurityEvent) => void;
  /** Called after each poll attempt (for tests and metrics). */
  onPoll?: (error?: unknown) => void;
  /** Where stream failures are reported. Default console.warn. */
  warn?: (message: string) => void;
}

export interface AccessTokenClaims {
  iss: string;
  sub: string;
  aud: string[];
  client_id: string;
  /** Empty for a client credentials token. */
  sid?: string;
  scope?: string;
  auth_time?: number;
  amr?: string[];
  acr?: string;
  jti: string;
  iat: number;
  exp: number;
  /** Every claim; shared, do not change. */
  payload: JWTPayload;
}

export interface SecurityEvent {
  id: string;
  type: string;
  sessionId?: string;
  subject?: string;
  /** Seconds. */
  eventTime: number;
  /** Milliseconds, by the verifier's clock. */
  appliedAt: number;
}

export interface Health {
  enabled: boolean;
  streamId?: string;
  /** Revocations after this (ms) are known through the stream. */
  since?: number;
  /** Until when (ms) revocations are known: the newest answered poll's sending, or the last status check that found the stream enabled, if earlier. */
  lastHeard?: number;
  /** When the newest answered poll was sent (ms). */
  lastPoll?: number;
  stale: boolean;
  lastError?: string;
  events: number;
  revoked: number;
}

export type TokenErrorCode = "invalid_token" | "revoked" | "unconfirmed" | "unavailable";

/** Why a token was refused. status is what an HTTP API should answer. */
export class TokenError extends Error {
  readonly code: TokenErrorCode;
  readonly status: 401 | 503;
  constructor(code: TokenErrorCode, message: string) {
    super(message);
    this.name = "TokenError";
    this.code = code;
    this.status = code === "unavailable" ? 503 : 401;
  }
}

export interface Verifier {
  verify(token: string): Promise<AccessTokenClaims>;
  health(): Health;
  close(): Promise<void>;
}

interface Metadata {
  issuer: string;
  jwks_uri: string;
  token_endpoint?: string;
  introspection_endpoint?: string;
}

const algorithms = ["EdDSA", "ES256", "RS256"];
const jwksCooldownMs = 1000;
const pollBatch = 100;

/** createVerifier discovers the issuer and, given client credentials, starts following its stream. */
export async function createVerifier(options: VerifierOptions): Promise<Verifier> {
  const v = new StreamVerifier(options);
  await v.start();
  return v;
}

class StreamVerifier implements Verifier {
  private readonly issuer: string;
  private readonly audience: string[];
  private readonly staleAfterMs: number;
  private readonly maxLifetimeSec: number;
  private readonly leewaySec: number;
  private readonly now: () => number;
  private readonly fetch: typeof fetch;
  private readonly warn: (message: string) => void;
  private readonly streaming: boolean;
  private meta!: Metadata;
  private jwks!: ReturnType<typeof createRemoteJWKSet>;

  private readonly sessions = new Map<string, number>(); // sid -> forget at (ms)
  private readonly users = new Map<string, { notBefore: number; forget: number }>(); // sub -> tokens with iat < notBefore (s) refused
  private readonly confirmed = new Map<string, number>(); // jti -> exp (s), introspected before the stream began
  private readonly verified = new Map<string, AccessTokenClaims>(); // token -> its checked claims, until exp
  private coverage = 0; // counts the restarts of coverage (since), which forget confirmed
  private streamId?: string;
  private pollUrl?: string;
  private statusUrl?: string; // undefined when the transmitter has no status endpoint
  private statusOK = 0; // when the newest status check that found the stream enabled was sent (ms)
  private streamAud: string[] = [];
  private since?: number;
  private lastHeard?: number;
  private lastPoll?: number;
  private lastError?: string;
  private events = 0;
  private clientToken?: { value: string; expires: number };
  private readonly abort = new AbortController();
  private loop?: Promise<void>;

  constructor(private readonly opts: VerifierOptions) {
    if (!opts.issuer) throw new Error("verifier: empty issuer");
    this.issuer = opts.issuer.replace(/\/$/, "");
    this.audience = Array.isArray(opts.audience) ? opts.audience : [opts.audience];
    if (this.audience.length === 0 || !this.audience[0]) throw new Error("verifier: empty audience");
    this.staleAfterMs = opts.staleAfterMs ?? 2000;
    this.maxLifetimeSec = opts.maxTokenLifetimeSec ?? 3600;
    this.leewaySec = opts.leewaySec ?? 5;
    this.now = opts.now ?? Date.now;
    this.fetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.warn = opts.warn ?? ((m) => console.warn(m));
    this.streaming = !!opts.clientSecret;
  }

  async start(): Promise<void> {
    this.meta = (await this.getJSON(`${this.issuer}/.well-known/oauth-authorization-server`)) as Metadata;
    if (this.meta.issuer !== this.issuer) {
      throw new Error(`verifier: discovery: issuer ${this.meta.issuer}, want ${this.issuer}`); // RFC 8414 3.3
    }
    if (!this.meta.jwks_uri) throw new Error("verifier: discovery: no jwks_uri");
    // An unknown kid fetches the keys again at most once a second.
    this.jwks = createRemoteJWKSet(new URL(this.meta.jwks_uri), {
      cooldownDuration: jwksCooldownMs,
      [customFetch]: (url, init) => this.fetch(url, init),
    });
    if (this.streaming) this.loop = this.run();
  }

  async close(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  health(): Health {
    const h: Health = { enabled: this.streaming, stale: this.streaming && this.isStale(), events: this.events, revoked: this.sessions.size + this.users.size };
    if (this.streamId !== undefined) h.streamId = this.streamId;
    if (this.since !== undefined) h.since = this.since;
    if (this.lastHeard !== undefined) h.lastHeard = this.lastHeard;
    if (this.lastPoll !== undefined) h.lastPoll = this.lastPoll;
    if (this.lastError !== undefined) h.lastError = this.lastError;
    return h;
  }

  private isStale(): boolean {
    return this.lastHeard === undefined || this.now() - this.lastHeard > this.staleAfterMs;
  }

  async verify(token: string): Promise<AccessTokenClaims> {
    const nowMs = this.now();
    const claims = await this.verifySignature(token, nowMs);
    if (!this.streaming) return { ...claims };
    if (this.refuses(claims, nowMs)) throw new TokenError("revoked", "token revoked");
    const stale = this.isStale();
    if (!stale && this.since !== undefined && claims.iat * 1000 > this.since) return { ...claims };
    if (!stale && (this.confirmed.get(claims.jti) ?? 0) * 1000 > nowMs) return { ...claims };
    // Stale, or issued before the stream began: only the issuer can tell.
    if (this.opts.onStale === "refuse") {
      throw stale ? new TokenError("unavailable", "revocation status unavailable") : new TokenError("unconfirmed", "token issued before the revocation stream began");
    }
    const coverage = this.coverage;
    let active: boolean;
    try {
      active = await this.introspect(token);
    } catch (e) {
      this.warn(`verifier: introspection failed: ${String(e)}`);
      throw new TokenError("unavailable", "revocation status unavailable");
    }
    if (!active) throw new TokenError("revoked", "token revoked");
    // Not when coverage started again during the introspection: its answer may predate it.
    if (!stale && coverage === this.coverage) {
      if (this.confirmed.size >= 100_000) this.confirmed.clear();
      this.confirmed.set(claims.jti, claims.exp);
    }
    return { ...claims };
  }

  // verifySignature checks the token's signature and claims, or finds it checked before: a
  // token used again costs a map lookup, not a signature check. Revocation is checked on each
  // use all the same. The claims returned are shared: verify hands out copies.
  private async verifySignature(token: string, nowMs: number): Promise<AccessTokenClaims> {
    const cached = this.verified.get(token);
    if (cached && nowMs < (cached.exp + this.leewaySec) * 1000) return cached;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.jwks, {
        issuer: this.issuer,
        audience: this.audience,
        typ: "at+jwt",
        algorithms,
        clockTolerance: this.leewaySec,
        currentDate: new Date(nowMs),
        requiredClaims: ["exp", "iat", "sub", "client_id", "jti"],
      }));
    } catch (e) {
      throw new TokenError("invalid_token", `invalid token: ${e instanceof Error ? e.message : String(e)}`);
    }
    const claims = toClaims(payload);
    if (claims.iat > nowMs / 1000 + this.leewaySec) throw new TokenError("invalid_token", "invalid token: issued in the future");
    if (claims.exp - claims.iat > this.maxLifetimeSec) throw new TokenError("invalid_token", "invalid token: lifetime exceeds maxTokenLifetimeSec");
    if (this.verified.size >= 50_000) this.verified.clear(); // cheaper than an LRU; valid tokens are expensive to make
    this.verified.set(token, claims);
    return claims;
  }

  private restartCoverage(): void {
    this.confirmed.clear();
    this.coverage++;
  }

  private refuses(c: AccessTokenClaims, nowMs: number): boolean {
    if (c.sid) {
      const forget = this.sessions.get(c.sid);
      if (forget !== undefined && nowMs < forget) return true;
    }
    const u = this.users.get(c.sub);
    return u !== undefined && nowMs < u.forget && c.iat < u.notBefore;
  }

  private prune(nowMs: number): void {
    for (const [sid, forget] of this.sessions) if (nowMs >= forget) this.sessions.delete(sid);
    for (const [sub, u] of this.users) if (nowMs >= u.forget) this.users.delete(sub);
  }

  private revokeUser(sub: string, notBefore: number, forget: number): void {
    const old = this.users.get(sub);
    this.users.set(sub, { notBefore: Math.max(notBefore, old?.notBefore ?? 0), forget: Math.max(forget, old?.forget ?? 0) });
  }

  private async introspect(token: string): Promise<boolean> {
    const { status, body } = await this.postForm(this.meta.introspection_endpoint, { token, token_type_hint: "access_token" }, AbortSignal.timeout(5000));
    if (status !== 200) throw new Error(`introspect: status ${status}`);
    return (body as { active?: unknown }).active === true;
  }

  private async postForm(endpoint: string | undefined, form: Record<string, string>, signal: AbortSignal): Promise<{ status: number; body: unknown }> {
    if (!endpoint) throw new Error("endpoint not in the issuer's metadata");
    // RFC 6749 2.3.1: the id and secret are form-encoded before Basic encoding.
    const basic = btoa(`${formEncode(this.opts.clientId ?? "")}:${formEncode(this.opts.clientSecret ?? "")}`);
    const resp = await this.fetch(endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json", Authorization: `Basic ${basic}` },
      body: new URLSearchParams(form).toString(),
      signal,
    });
    const text = await resp.text();
    return { status: resp.status, body: resp.status === 200 ? JSON.parse(text) : undefined };
  }

  private async getJSON(url: string, token?: string): Promise<unknown> {
    const headers: Record<string, string> = { Accept: "application/json" };
    if (token) headers.Authorization = `Bearer ${token}`;
    const resp = await this.fetch(url, { headers, signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(10_000)]) });
    if (resp.status !== 200) throw new Error(`GET ${url}: status ${resp.status}`);
    return resp.json();
  }

  // The stream: ensure it, long-poll it, apply each SET, acknowledge what was applied in the
  // next poll. An unacknowledged SET comes again, so a crash loses nothing.
  private async run(): Promise<void> {
    let ack: string[] = [];
    let setErrs: Record<string, { err: string; description: string }> = {};
    let immediate = false;
    let backoff = 50;
    while (!this.abort.signal.aborted) {
      let error: unknown;
      try {
        await this.ensure();
        await this.checkStatus();
        const r = await this.poll(ack, setErrs, immediate);
        ack = r.ack;
        setErrs = r.setErrs;
        immediate = r.immediate;
        backoff = 50;
      } catch (e) {
        error = e;
      }
      this.prune(this.now());
      this.opts.onPoll?.(error);
      if (error === undefined || this.abort.signal.aborted) continue;
      this.lastError = String(error);
      this.warn(`verifier: revocation stream: ${String(error)}`);
      await sleep(backoff, this.abort.signal);
      backoff = Math.min(2 * backoff, 1000);
    }
  }

  private async token(): Promise<string> {
    const now = this.now();
    if (this.clientToken && now < this.clientToken.expires) return this.clientToken.value;
    const { status, body } = await this.postForm(this.meta.token_endpoint, { grant_type: "client_credentials", scope: "ssf.manage ssf.read" }, this.abort.signal);
    const b = body as { access_token?: string; expires_in?: number } | undefined;
    if (status !== 200 || !b?.access_token) throw new Error(`client token: status ${status}`);
    this.clientToken = { value: b.access_token, expires: now + (b.expires_in ?? 60) * 900 };
    return b.access_token;
  }

  private async ensure(): Promise<void> {
    if (this.pollUrl) return;
    const began = this.now();
    const token = await this.token();
    const ssf = (await this.getJSON(`${this.issuer}/.well-known/ssf-configuration`)) as { configuration_endpoint?: string; status_endpoint?: string };
    if (!ssf.configuration_endpoint) throw new Error("SSF discovery: no configuration_endpoint");
    const name = this.opts.streamName ?? `authapi-verifier-node@${await hostname()}`;
    // format is authapi's extension: the sub_id format of the stream's SETs; complex names the
    // session as well as the user. A transmitter without the extension omits it.
    type StreamConfig = { stream_id: string; aud?: string | string[]; description?: string; format?: string; delivery?: { method?: string; endpoint_url?: string } };
    let found: StreamConfig | undefined;
    const listed = await this.getJSON(ssf.configuration_endpoint, token).catch(() => undefined);
    const list = Array.isArray(listed) ? (listed as StreamConfig[]) : listed && typeof listed === "object" ? [listed as StreamConfig] : [];
    found = list.find((s) => s.description === name && s.delivery?.method === PollDelivery && (s.format === undefined || s.format === "complex"));
    if (!found) {
      const resp = await this.fetch(ssf.configuration_endpoint, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify({ delivery: { method: PollDelivery }, events_requested: eventsRequested, description: name, format: "complex" }),
        signal: this.abort.signal,
      });
      if (resp.status !== 200 && resp.status !== 201) throw new Error(`create stream: status ${resp.status}`);
      found = (await resp.json()) as StreamConfig;
      // The issuer may have made its SET signing key for this first stream: fetch the keys now
      // (jose's reload ignores the cooldown) rather than wait it out on the first SET.
      await this.jwks.reload().catch((e: unknown) => this.warn(`verifier: JWKS after creating the stream: ${String(e)}`));
    }
    if (!found.delivery?.endpoint_url) throw new Error(`stream ${found.stream_id}: no poll endpoint_url`);
    this.streamId = found.stream_id;
    this.pollUrl = found.delivery.endpoint_url;
    this.statusUrl = ssf.status_endpoint;
    this.statusOK = 0;
    this.streamAud = found.aud === undefined ? [] : Array.isArray(found.aud) ? found.aud : [found.aud];
    // Revocations before this are not in the stream's queue: tokens issued until then (plus
    // clock skew) are confirmed by introspection once.
    this.since = began + this.leewaySec * 1000;
    this.restartCoverage();
  }

  // checkStatus makes sure, at least every half staleAfterMs, that the stream is enabled: a
  // paused or disabled one answers polls with nothing. One that is not is enabled again (it is
  // this client's), and since events may have been dropped meanwhile, coverage starts again.
  private async checkStatus(): Promise<void> {
    const now = this.now();
    if (this.statusUrl === undefined || now - this.statusOK < this.staleAfterMs / 2) return;
    const token = await this.token();
    const url = `${this.statusUrl}?stream_id=${encodeURIComponent(this.streamId!)}`;
    let status: string | undefined;
    try {
      status = ((await this.getJSON(url, token)) as { status?: string }).status;
    } catch (e) {
      if (String(e).includes("status 404")) this.pollUrl = undefined; // gone: ensure it again
      throw e;
    }
    if (status !== "enabled") {
      const resp = await this.fetch(this.statusUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify({ stream_id: this.streamId, status: "enabled", reason: "enabled again by its receiver" }),
        signal: AbortSignal.any([this.abort.signal, AbortSignal.timeout(10_000)]),
      });
      const answer = resp.status === 200 ? ((await resp.json()) as { status?: string }) : undefined;
      if (answer?.status !== "enabled") throw new Error(`enable stream ${this.streamId}: status ${resp.status}`);
      this.warn(`verifier: the stream ${this.streamId} was not enabled; enabled it again`);
      this.since = now + this.leewaySec * 1000;
      this.restartCoverage();
    }
    this.statusOK = now;
  }

  private async poll(ack: string[], setErrs: Record<string, { err: string; description: string }>, immediate: boolean) {
    const token = await this.token();
    const body: Record<string, unknown> = { maxEvents: pollBatch, returnImmediately: immediate, ack };
    if (Object.keys(setErrs).length > 0) body.setErrs = setErrs;
    // A long poll held for more than half of staleAfterMs is given up and followed by one that
    // returns at once, so that a live issuer is heard from within the bound. (An event that
    // arrives as a poll is given up stays queued and comes in the next one.)
    const timeout = AbortSignal.timeout(immediate ? this.staleAfterMs : this.staleAfterMs / 2);
    const sent = this.now();
    let resp: Response;
    try {
      resp = await this.fetch(this.pollUrl!, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
        signal: AbortSignal.any([this.abort.signal, timeout]),
      });
    } catch (e) {
      if (!immediate && timeout.aborted && !this.abort.signal.aborted) return { ack, setErrs, immediate: true };
      throw e;
    }
    const text = await resp.text();
    if (resp.status === 401) this.clientToken = undefined;
    if (resp.status === 404 || resp.status === 403) this.pollUrl = undefined; // gone: ensure it again
    if (resp.status !== 200) throw new Error(`poll: status ${resp.status}`);
    const answer = JSON.parse(text) as { sets?: Record<string, string>; moreAvailable?: boolean };
    const next: string[] = [];
    const errs: Record<string, { err: string; description: string }> = {};
    for (const [jti, set] of Object.entries(answer.sets ?? {})) {
      const bad = await this.apply(set); // throws when it cannot be judged now: not acknowledged
      if (bad) errs[jti] = { err: "invalid_request", description: bad };
      else next.push(jti);
    }
    // A poll of a paused or disabled stream answers, but with nothing: it counts only as far
    // as the stream was last seen enabled.
    this.lastHeard = this.statusUrl !== undefined ? Math.min(sent, this.statusOK) : sent;
    this.lastPoll = sent;
    this.lastError = undefined;
    return { ack: next, setErrs: errs, immediate: answer.moreAvailable === true };
  }

  /** apply verifies and applies a SET; it returns why the SET is bad, or undefined when applied. */
  private async apply(set: string): Promise<string | undefined> {
    const nowMs = this.now();
    let payload: JWTPayload;
    try {
      const opts: Parameters<typeof jwtVerify>[2] = { issuer: this.issuer, typ: "secevent+jwt", algorithms, clockTolerance: this.leewaySec, currentDate: new Date(nowMs), requiredClaims: ["iat", "jti"] };
      if (this.streamAud.length > 0) opts.audience = this.streamAud;
      ({ payload } = await jwtVerify(set, this.jwks, opts));
    } catch (e) {
      if (e instanceof joseErrors.JWKSNoMatchingKey || e instanceof joseErrors.JWKSTimeout) throw e; // the key may come: try again later
      return e instanceof Error ? e.message : String(e);
    }
    const events = payload.events as Record<string, unknown> | undefined;
    const types = events && typeof events === "object" ? Object.keys(events) : [];
    if (types.length !== 1) return `${types.length} events, want 1`;
    const type = types[0]!;
    const event = (events![type] ?? {}) as Record<string, unknown>;
    const subjectId = (payload.sub_id ?? event.subject) as Record<string, unknown> | undefined;
    const { sub, sid } = subjectOf(subjectId);
    const eventTime = typeof event.event_timestamp === "number" ? Math.floor(event.event_timestamp) : (payload.iat as number);
    const forget = (eventTime + this.maxLifetimeSec + this.leewaySec) * 1000;
    switch (type) {
      case SessionRevoked:
        if (sid) {
          this.sessions.set(sid, Math.max(forget, this.sessions.get(sid) ?? 0));
        } else if (sub) {
          this.revokeUser(sub, eventTime + 1, forget);
        }
        break;
      case CredentialChange:
      case TokenClaimsChange:
        // Tokens of the event's second stay: a password change's new session is issued in it.
        if (sub) this.revokeUser(sub, eventTime, forget);
        break;
      case AccountDisabled:
      case AccountPurged:
        if (sub) this.revokeUser(sub, eventTime + 1, forget);
        break;
      case StreamUpdated:
        if (event.status !== "enabled") this.statusOK = 0; // check (and enable) it before the next poll
        break;
    }
    const applied: SecurityEvent = { id: payload.jti!, type, eventTime, appliedAt: nowMs };
    if (sid) applied.sessionId = sid;
    if (sub) applied.subject = sub;
    this.opts.onEvent?.(applied);
    this.events++;
    return undefined;
  }
}

/** subjectOf reads an RFC 9493 subject: iss_sub (alone or as a complex subject's user) and a complex subject's session. */
function subjectOf(id: Record<string, unknown> | undefined): { sub?: string; sid?: string } {
  if (!id || typeof id !== "object") return {};
  let user: Record<string, unknown> | undefined = id;
  let sid: string | undefined;
  if (id.format === "complex") {
    user = id.user as Record<string, unknown> | undefined;
    const session = id.session as Record<string, unknown> | undefined;
    if (session && typeof session.id === "string") sid = session.id;
  }
  const sub = user && user.format === "iss_sub" && typeof user.sub === "string" ? user.sub : undefined;
  const out: { sub?: string; sid?: string } = {};
  if (sub) out.sub = sub;
  if (sid) out.sid = sid;
  return out;
}

function toClaims(p: JWTPayload): AccessTokenClaims {
  const str = (v: unknown): string | undefined => (typeof v === "string" ? v : undefined);
  if (typeof p.client_id !== "string" || typeof p.jti !== "string" || typeof p.sub !== "string") {
    throw new TokenError("invalid_token", "invalid token: sub, client_id and jti must be strings");
  }
  if (p.amr !== undefined && !(Array.isArray(p.amr) && p.amr.every((a) => typeof a === "string"))) {
    throw new TokenError("invalid_token", "invalid token: amr not an array of strings");
  }
  const c: AccessTokenClaims = {
    iss: p.iss!,
    sub: p.sub,
    aud: typeof p.aud === "string" ? [p.aud] : (p.aud ?? []),
    client_id: p.client_id,
    jti: p.jti,
    iat: p.iat!,
    exp: p.exp!,
    payload: p,
  };
  const sid = str(p.sid);
  if (sid) c.sid = sid;
  const scope = str(p.scope);
  if (scope !== undefined) c.scope = scope;
  const acr = str(p.acr);
  if (acr !== undefined) c.acr = acr;
  if (typeof p.auth_time === "number") c.auth_time = p.auth_time;
  if (p.amr !== undefined) c.amr = p.amr as string[];
  return c;
}

/** hostname names the machine where the runtime can tell (node:os), for the default stream name. */
async function hostname(): Promise<string> {
  try {
    const os = (await import("node:os" as string)) as { hostname(): string };
    return os.hostname();
  } catch {
    return "localhost";
  }
}

function formEncode(s: string): string {
  return encodeURIComponent(s).replace(/%20/g, "+");
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      resolve();
    }, { once: true });
  });
}

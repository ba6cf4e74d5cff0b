// Step-up (RFC 9470, OAuth 2.0 Step Up Authentication Challenge): what an operation demands of
// how the caller authenticated, checked on the verified claims, and the refusal a client
// understands. authapi's levels are "aal1" (a password) and "aal2" (a second factor); its
// clients answer the refusal with POST /api/v1/auth/reauthenticate/ and retry.
import type { AccessTokenClaims } from "./verifier.js";
import type { RequestLike, ResponseLike } from "./express.js";

export interface Assurance {
  /** The least level, e.g. "aal2"; undefined asks for none. */
  acr?: string;
  /** The longest time in seconds since the user authenticated (auth_time); undefined asks for none. */
  maxAgeSec?: number;
  /** The clock, in milliseconds; default Date.now. */
  now?: () => number;
}

/** aal2 is the assurance of a second factor used within maxAgeSec seconds (undefined: at any time). */
export function aal2(maxAgeSec?: number): Assurance {
  return maxAgeSec === undefined ? { acr: "aal2" } : { acr: "aal2", maxAgeSec };
}

function aalLevel(acr: string | undefined): number | undefined {
  const m = acr === undefined ? null : /^aal(\d+)$/.exec(acr);
  return m ? Number(m[1]) : undefined;
}

/** meetsAcr reports whether the token's acr is level or above ("aal2" meets "aal1"); other levels meet only themselves. */
export function meetsAcr(claims: AccessTokenClaims, level: string | undefined): boolean {
  if (level === undefined || claims.acr === level) return true;
  const have = aalLevel(claims.acr);
  const want = aalLevel(level);
  return have !== undefined && want !== undefined && have >= want;
}

/** authenticatedWithin reports whether auth_time is at most maxAgeSec seconds before nowMs. */
export function authenticatedWithin(claims: AccessTokenClaims, maxAgeSec: number, nowMs: number = Date.now()): boolean {
  return claims.auth_time !== undefined && nowMs / 1000 - claims.auth_time <= maxAgeSec;
}

/** satisfies reports whether the claims meet a. */
export function satisfies(claims: AccessTokenClaims, a: Assurance): boolean {
  if (!meetsAcr(claims, a.acr)) return false;
  if (a.maxAgeSec !== undefined) return authenticatedWithin(claims, a.maxAgeSec, (a.now ?? Date.now)());
  return true;
}

function description(a: Assurance): string {
  if (a.acr !== undefined && a.maxAgeSec !== undefined) return `a more recent authentication at ${a.acr} is required`;
  if (a.acr !== undefined) return `authentication at ${a.acr} is required`;
  return "a more recent authentication is required";
}

/** stepUpChallenge is the WWW-Authenticate value of a refusal for a (RFC 9470 section 3). */
export function stepUpChallenge(a: Assurance): string {
  let h = `Bearer realm="api", error="insufficient_user_authentication", error_description="${description(a)}"`;
  if (a.acr !== undefined) h += `, acr_values="${a.acr}"`;
  if (a.maxAgeSec !== undefined) h += `, max_age=${Math.floor(a.maxAgeSec)}`;
  return h;
}

/**
 * requireAssurance lets through requests whose claims (req.auth, set by requireAccessToken,
 * which must run first) meet a; it answers others 401 with RFC 9470's challenge.
 */
export function requireAssurance(a: Assurance) {
  return (req: RequestLike, res: ResponseLike, next: (err?: unknown) => void): void => {
    if (!req.auth) {
      res.setHeader("WWW-Authenticate", 'Bearer realm="api"');
      send(res, "invalid_request", "bearer token required");
      return;
    }
    if (!satisfies(req.auth, a)) {
      res.setHeader("WWW-Authenticate", stepUpChallenge(a));
      send(res, "insufficient_user_authentication", description(a));
      return;
    }
    next();
  };
}

function send(res: ResponseLike, error: string, errorDescription: string): void {
  res.statusCode = 401;
  res.setHeader("Content-Type", "application/json");
  res.setHeader("Cache-Control", "no-store");
  res.end(JSON.stringify({ error, error_description: errorDescription }));
}

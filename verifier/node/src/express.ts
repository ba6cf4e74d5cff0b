// Express (and Connect, and plain node:http) middleware over the core. It needs only what
// node:http's request and response have, so it depends on no framework.
import { TokenError, type AccessTokenClaims, type Verifier } from "./verifier.js";

export interface RequestLike {
  headers: Record<string, string | string[] | undefined>;
  auth?: AccessTokenClaims;
}

export interface ResponseLike {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
}

/** bearerToken returns the token of an "Authorization: Bearer <token>" header (RFC 6750 2.1). */
export function bearerToken(authorization: string | string[] | undefined): string | undefined {
  if (typeof authorization !== "string") return undefined;
  const m = /^Bearer +(\S+) *$/i.exec(authorization);
  return m?.[1];
}

/**
 * requireAccessToken lets through only requests with a valid access token, its claims in
 * req.auth. It answers 401 with an RFC 6750 challenge for a missing or refused token, and 503
 * with Retry-After when the token's status cannot be confirmed now.
 */
export function requireAccessToken(verifier: Verifier) {
  return (req: RequestLike, res: ResponseLike, next: (err?: unknown) => void): void => {
    const token = bearerToken(req.headers.authorization);
    if (!token) {
      res.setHeader("WWW-Authenticate", 'Bearer realm="api"');
      send(res, 401, "invalid_request", "bearer token required");
      return;
    }
    verifier.verify(token).then(
      (claims) => {
        req.auth = claims;
        next();
      },
      (err: unknown) => {
        if (!(err instanceof TokenError)) {
          next(err);
          return;
        }
        if (err.status === 401) {
          res.setHeader("WWW-Authenticate", 'Bearer realm="api", error="invalid_token"');
          send(res, 401, "invalid_token", err.code === "revoked" ? "token revoked" : "token invalid or expired");
        } else {
          res.setHeader("Retry-After", "1");
          send(res, 503, "temporarily_unavailable", "token status cannot be confirmed now");
        }
      },
    );
  };
}

function send(res: ResponseLike, status: number, error: string, description: string): void {
  res.statusCode = status;
  res.setHeader("Content-Type", "application/json");
  res.setHeader("Cache-Control", "no-store");
  res.end(JSON.stringify({ error, error_description: description }));
}

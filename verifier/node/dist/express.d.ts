import { type AccessTokenClaims, type Verifier } from "./verifier.js";
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
export declare function bearerToken(authorization: string | string[] | undefined): string | undefined;
/**
 * requireAccessToken lets through only requests with a valid access token, its claims in
 * req.auth. It answers 401 with an RFC 6750 challenge for a missing or refused token, and 503
 * with Retry-After when the token's status cannot be confirmed now.
 */
export declare function requireAccessToken(verifier: Verifier): (req: RequestLike, res: ResponseLike, next: (err?: unknown) => void) => void;

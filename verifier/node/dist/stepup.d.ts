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
export declare function aal2(maxAgeSec?: number): Assurance;
/** meetsAcr reports whether the token's acr is level or above ("aal2" meets "aal1"); other levels meet only themselves. */
export declare function meetsAcr(claims: AccessTokenClaims, level: string | undefined): boolean;
/** authenticatedWithin reports whether auth_time is at most maxAgeSec seconds before nowMs. */
export declare function authenticatedWithin(claims: AccessTokenClaims, maxAgeSec: number, nowMs?: number): boolean;
/** satisfies reports whether the claims meet a. */
export declare function satisfies(claims: AccessTokenClaims, a: Assurance): boolean;
/** stepUpChallenge is the WWW-Authenticate value of a refusal for a (RFC 9470 section 3). */
export declare function stepUpChallenge(a: Assurance): string;
/**
 * requireAssurance lets through requests whose claims (req.auth, set by requireAccessToken,
 * which must run first) meet a; it answers others 401 with RFC 9470's challenge.
 */
export declare function requireAssurance(a: Assurance): (req: RequestLike, res: ResponseLike, next: (err?: unknown) => void) => void;

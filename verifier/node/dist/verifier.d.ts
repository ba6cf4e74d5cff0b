import { type JWTPayload } from "jose";
export declare const PollDelivery = "urn:ietf:rfc:8936";
export declare const SessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";
export declare const CredentialChange = "https://schemas.openid.net/secevent/caep/event-type/credential-change";
export declare const TokenClaimsChange = "https://schemas.openid.net/secevent/caep/event-type/token-claims-change";
export declare const AccountDisabled = "https://schemas.openid.net/secevent/risc/event-type/account-disabled";
export declare const AccountPurged = "https://schemas.openid.net/secevent/risc/event-type/account-purged";
export declare const StreamUpdated = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated";
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
export declare class TokenError extends Error {
    readonly code: TokenErrorCode;
    readonly status: 401 | 503;
    constructor(code: TokenErrorCode, message: string);
}
export interface Verifier {
    verify(token: string): Promise<AccessTokenClaims>;
    health(): Health;
    close(): Promise<void>;
}
/** createVerifier discovers the issuer and, given client credentials, starts following its stream. */
export declare function createVerifier(options: VerifierOptions): Promise<Verifier>;

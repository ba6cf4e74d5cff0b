// The console's only way to the API: the generated client (the workspace package
// @authapi/client, gen/ts) over a fetch that adds the access token, and on a 401 for that
// token refreshes the token pair once and retries. The access token lives in memory only; the
// refresh token in sessionStorage (this tab, until it closes), replaced by the rotated one on
// every refresh.
import { newClient, type Schemas } from "@authapi/client";
import { inWords } from "./format.ts";

export type { Schemas };
export type User = Schemas["UserPreview"];
export type Account = Schemas["Account"];
export type APIError = Schemas["Error"];
export type MfaChallenge = Schemas["MfaChallenge"];

const refreshKey = "authapi.console.refresh";

let access: string | undefined;
let refreshing: Promise<boolean> | undefined;
let onSignedOut: (reason: string) => void = () => {};

/** whenSignedOut registers what to do once the session is gone (a refresh failed). */
export function whenSignedOut(fn: (reason: string) => void): void {
  onSignedOut = fn;
}

function storedRefresh(): string | undefined {
  return sessionStorage.getItem(refreshKey) ?? undefined;
}

/** keep makes pair this tab's tokens: after a login, a refresh or a password change. */
export function keep(pair: { access: string; refresh?: string }): void {
  access = pair.access;
  if (pair.refresh !== undefined) {
    sessionStorage.setItem(refreshKey, pair.refresh);
  }
}

/** forget drops both tokens, without telling the server. */
export function forget(): void {
  access = undefined;
  sessionStorage.removeItem(refreshKey);
}

/** hasSession reports whether this tab holds a refresh token to resume with. */
export function hasSession(): boolean {
  return storedRefresh() !== undefined;
}

// Requests to these paths carry no bearer token and are never retried after a refresh.
const unauthenticated = ["/api/v1/auth/token/", "/api/v1/auth/token/refresh/", "/api/v1/auth/mfa/challenge/"];

/**
 * tokenRefused reports whether a 401 is about the access token: none was sent (this tab
 * resumed with its refresh token alone), or the server refused the one sent (WWW-Authenticate
 * error="invalid_token", RFC 6750). Any other 401 refuses what the request carried (a wrong
 * code, a used or expired ceremony, also token_not_valid): a refresh would not change it, and
 * sending it again would spend a single-use ceremony or count one more failed attempt.
 */
function tokenRefused(res: Response, code: string | undefined): boolean {
  return code === "not_authenticated" || /\berror="invalid_token"/.test(res.headers.get("WWW-Authenticate") ?? "");
}

/**
 * authFetch sends a request with the access token. A 401 for the token (tokenRefused) refreshes
 * the pair and sends it again, once; a 401 insufficient_user_authentication (step-up, RFC 9470)
 * asks the user to prove it is them again (whenStepUpNeeded) and, once they have, sends it
 * again, once. A 403 mfa_enrolment_required tells whenEnrolmentRequired.
 */
async function authFetch(request: Request): Promise<Response> {
  const path = new URL(request.url).pathname;
  if (unauthenticated.includes(path)) {
    return fetch(request);
  }
  let refreshed = false;
  let steppedUp = false;
  for (let next = request; ; ) {
    const retry = next.clone(); // a body can be sent once
    const res = await fetch(withBearer(next));
    if (res.status === 403 && (await errorCode(res)) === "mfa_enrolment_required") {
      onEnrolmentRequired();
      return res;
    }
    if (res.status !== 401) {
      return res;
    }
    const code = await errorCode(res);
    if (code === "insufficient_user_authentication") {
      if (steppedUp || !(await stepUpOnce())) return res;
      steppedUp = true;
    } else {
      if (refreshed || !tokenRefused(res, code) || !(await refresh())) return res;
      refreshed = true;
    }
    next = retry;
  }
}

/** errorCode reads the code of an error answer without using up its body. */
async function errorCode(res: Response): Promise<string | undefined> {
  try {
    const body = (await res.clone().json()) as { code?: unknown };
    return typeof body.code === "string" ? body.code : undefined;
  } catch {
    return undefined;
  }
}

let onStepUp: () => Promise<boolean> = async () => false;
let steppingUp: Promise<boolean> | undefined;
let onEnrolmentRequired: () => void = () => {};

/**
 * whenStepUpNeeded registers how to step up: ask the user and reauthenticate, resolving to
 * whether it worked. Requests refused at the same time share one prompt.
 */
export function whenStepUpNeeded(fn: () => Promise<boolean>): void {
  onStepUp = fn;
}

/** whenEnrolmentRequired registers what to do when the API holds the caller to enrolment. */
export function whenEnrolmentRequired(fn: () => void): void {
  onEnrolmentRequired = fn;
}

function stepUpOnce(): Promise<boolean> {
  steppingUp ??= onStepUp().finally(() => {
    steppingUp = undefined;
  });
  return steppingUp;
}

/**
 * ReauthAnswer is what proves it is the user again: a second factor's code, the password, or
 * a security key's assertion answering a ceremony begun for this session.
 */
export type ReauthAnswer =
  | { method: Exclude<Schemas["ReauthenticationMethod"], "webauthn">; code: string }
  | { method: "webauthn"; ceremony: string; credential: Record<string, unknown> };

/**
 * reauthenticate raises this session (step-up) and keeps its new access token; it returns the
 * failure to show, if any.
 */
export async function reauthenticate(answer: ReauthAnswer): Promise<string | undefined> {
  const body: Schemas["Reauthentication"] =
    answer.method === "webauthn"
      ? { method: answer.method, ceremony: answer.ceremony, credential: answer.credential }
      : answer.method === "password"
        ? { method: answer.method, password: answer.code }
        : { method: answer.method, code: answer.code };
  const done = await attempt(api.POST("/api/v1/auth/reauthenticate/", { body }));
  if (!done.ok) {
    return done.message;
  }
  keep(done.data);
  return undefined;
}

function withBearer(request: Request): Request {
  if (access !== undefined) {
    request.headers.set("Authorization", `Bearer ${access}`);
  }
  return request;
}

export const api = newClient({ baseUrl: location.origin, fetch: authFetch });

/**
 * refresh exchanges the stored refresh token for a new pair. Concurrent callers share one
 * exchange: a rotated refresh token is good once. When the server refuses the token (401) the
 * session is over: the tokens are dropped and whenSignedOut's callback runs. Other failures
 * (throttled, server unreachable) keep the token for a later try.
 */
export function refresh(): Promise<boolean> {
  refreshing ??= (async () => {
    const token = storedRefresh();
    if (token === undefined) {
      // A request answered after a parallel one's refresh failed finds the tokens dropped:
      // that refresh already said why, and saying "" now would wipe its reason.
      if (access !== undefined) {
        access = undefined;
        onSignedOut("");
      }
      return false;
    }
    try {
      const answer = await attempt(api.POST("/api/v1/auth/token/refresh/", { body: { refresh: token } }));
      if (answer.ok) {
        keep(answer.data);
        return true;
      }
      if (answer.response === undefined) {
        onSignedOut(answer.message);
      } else if (answer.response.status === 401) {
        forget();
        onSignedOut("Your session has ended. Sign in again.");
      } else {
        access = undefined;
        onSignedOut(errorText(answer.error, `The server answered ${answer.response.status}.`));
      }
      return false;
    } finally {
      refreshing = undefined;
    }
  })();
  return refreshing;
}

/**
 * SignInResult is what a login attempt came to: signed in (the pair is kept), a second factor
 * to answer (the challenge of a 401 mfa_required), or the message to show.
 */
export type SignInResult = { done: true } | { done: false; challenge: MfaChallenge; expiresIn: number } | { done: false; message: string };

/** signIn logs in with a password and keeps the pair, unless a second factor is needed. */
export async function signIn(username: string, password: string): Promise<SignInResult> {
  const answer = await attempt(api.POST("/api/v1/auth/token/", { body: { username, password } }));
  if (answer.ok) {
    keep(answer.data);
    return { done: true };
  }
  const challenge = answer.error?.code === "mfa_required" ? answer.error.mfa : undefined;
  if (challenge !== undefined) {
    return { done: false, challenge, expiresIn: expiresIn(challenge.expires_at, answer.response) };
  }
  return { done: false, message: answer.message };
}

/**
 * expiresIn is how many milliseconds are left until at, by the server's clock (its Date
 * header) rather than this machine's, which may be off.
 */
function expiresIn(at: string, response: Response | undefined): number {
  const date = response?.headers.get("Date");
  const now = date ? Date.parse(date) : NaN;
  return Date.parse(at) - (Number.isNaN(now) ? Date.now() : now);
}

/**
 * FactorAnswer is a second factor's answer: the method and what it takes (a code, or for
 * webauthn the assertion as JSON).
 */
export type FactorAnswer = { method: Schemas["MfaMethod"]; code?: string; credential?: Record<string, unknown> };

/**
 * answerChallenge completes a login with a second factor and keeps the pair. It returns the
 * answer's failure: expired means the challenge is gone (used, expired) and the login must
 * start again with the password.
 */
export async function answerChallenge(challenge: MfaChallenge, factor: FactorAnswer): Promise<{ message: string; expired: boolean } | undefined> {
  const answer = await attempt(api.POST("/api/v1/auth/mfa/challenge/", { body: { challenge: challenge.challenge, ...factor } }));
  if (answer.ok) {
    keep(answer.data);
    return undefined;
  }
  return { message: answer.message, expired: answer.error?.code === "token_not_valid" };
}

/**
 * passkeySignIn logs in with a passkey: the API's options, the browser's assertion (sign
 * with), the pair kept. It returns the message to show when it fails.
 */
export async function passkeySignIn(sign: (options: Record<string, unknown>) => Promise<Record<string, unknown>>): Promise<string | undefined> {
  const begun = await attempt(api.POST("/api/v1/auth/passkey/begin/"));
  if (!begun.ok) return begun.message;
  const credential = await sign(begun.data.options);
  const done = await attempt(api.POST("/api/v1/auth/passkey/finish/", { body: { ceremony: begun.data.ceremony, credential } }));
  if (!done.ok) return done.message;
  keep(done.data);
  return undefined;
}

/** signOut revokes this session on the server (best effort) and forgets the tokens. */
export async function signOut(): Promise<void> {
  const token = storedRefresh();
  try {
    if (token !== undefined) {
      await api.POST("/api/v1/auth/logout/", { body: { refresh: token } });
    }
  } finally {
    forget();
  }
}

/** errorText is what to show for an error body, or for a failed request without one. */
export function errorText(error: APIError | undefined, fallback = "Something went wrong."): string {
  return error?.detail || fallback;
}

/** unreachable is what to show when a request got no answer at all. */
export const unreachable = "The server could not be reached.";

/**
 * Answer is what attempt makes of a request: the data of a 2xx answer; or the message to show,
 * with the error body and the answer it came from (both undefined when no answer came).
 */
export type Answer<T> =
  | { ok: true; data: T; response: Response }
  | { ok: false; message: string; error: APIError | undefined; response: Response | undefined };

/**
 * attempt awaits one API request and never throws, so that every page shows a failed request
 * the same way: the error body's detail, or that the server could not be reached.
 */
export async function attempt<T>(request: Promise<{ data?: T; error?: APIError; response: Response }>): Promise<Answer<T>> {
  try {
    const { data, error, response } = await request;
    if (response.ok) {
      return { ok: true, data: data as T, response };
    }
    return { ok: false, message: errorText(error), error, response };
  } catch {
    return { ok: false, message: unreachable, error: undefined, response: undefined };
  }
}

const mailLimits: Record<NonNullable<APIError["reason"]>, string> = {
  ip: "Too many messages were asked for from your network.",
  recipient_domain: "Too many messages were asked for to addresses at that domain.",
  account: "Too many links were asked for by this account.",
};

/**
 * mailLimitText is what to show for a failed request that asked for mail: for a 429
 * mail_rate_limited, which limit was reached (the answer's reason) and, from Retry-After, how
 * long to wait, in words; else the answer's message.
 */
export function mailLimitText(answer: Answer<unknown>): string {
  if (answer.ok) return "";
  if (answer.error?.code !== "mail_rate_limited") return answer.message;
  const why = (answer.error.reason && mailLimits[answer.error.reason]) || "Too many messages were asked for.";
  const wait = Number(answer.response?.headers.get("Retry-After"));
  return Number.isFinite(wait) && wait > 0 ? `${why} Try again in ${inWords(wait)}.` : `${why} Try again later.`;
}

/** requestPasswordReset asks for a reset link for a username or email address. */
export function requestPasswordReset(login: string): Promise<Answer<Schemas["PasswordResetAccepted"]>> {
  return attempt(api.POST("/api/v1/auth/password/reset/", { body: { login } }));
}

/** confirmPasswordReset sets a new password with a reset link's token. */
export function confirmPasswordReset(token: string, password: string): Promise<Answer<unknown>> {
  return attempt(api.POST("/api/v1/auth/password/reset/confirm/", { body: { token, password } }));
}

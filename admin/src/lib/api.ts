// The console's only way to the API: the generated client (the workspace package
// @authapi/client, gen/ts) over a fetch that adds the access token, and on a 401 refreshes the
// token pair once and retries. The access token lives in memory only; the refresh token in
// sessionStorage (this tab, until it closes), replaced by the rotated one on every refresh.
import { newClient, type Schemas } from "@authapi/client";

export type { Schemas };
export type User = Schemas["UserPreview"];
export type Account = Schemas["Account"];
export type APIError = Schemas["Error"];

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
const unauthenticated = ["/api/v1/auth/token/", "/api/v1/auth/token/refresh/"];

async function authFetch(request: Request): Promise<Response> {
  const path = new URL(request.url).pathname;
  if (unauthenticated.includes(path)) {
    return fetch(request);
  }
  const retry = request.clone(); // a body can be sent once
  const res = await fetch(withBearer(request));
  if (res.status !== 401 || !(await refresh())) {
    return res;
  }
  return fetch(withBearer(retry));
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
      onSignedOut("");
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

/** signIn logs in and keeps the pair; it returns what to show when that failed. */
export async function signIn(username: string, password: string): Promise<string | undefined> {
  const answer = await attempt(api.POST("/api/v1/auth/token/", { body: { username, password } }));
  if (!answer.ok) {
    return answer.message;
  }
  keep(answer.data);
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

/** requestPasswordReset asks for a reset link for a username or email address. */
export function requestPasswordReset(login: string): Promise<Answer<Schemas["PasswordResetAccepted"]>> {
  return attempt(api.POST("/api/v1/auth/password/reset/", { body: { login } }));
}

/** confirmPasswordReset sets a new password with a reset link's token. */
export function confirmPasswordReset(token: string, password: string): Promise<Answer<unknown>> {
  return attempt(api.POST("/api/v1/auth/password/reset/confirm/", { body: { token, password } }));
}

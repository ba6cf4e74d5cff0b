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
      const { data, error, response } = await api.POST("/api/v1/auth/token/refresh/", { body: { refresh: token } });
      if (data !== undefined) {
        keep(data);
        return true;
      }
      if (response.status === 401) {
        forget();
        onSignedOut("Your session has ended. Sign in again.");
      } else {
        access = undefined;
        onSignedOut(errorText(error, `The server answered ${response.status}.`));
      }
      return false;
    } catch {
      onSignedOut("The server could not be reached.");
      return false;
    } finally {
      refreshing = undefined;
    }
  })();
  return refreshing;
}

/** signIn logs in and keeps the pair; it returns the API's error, if any. */
export async function signIn(username: string, password: string): Promise<APIError | undefined> {
  const { data, error } = await api.POST("/api/v1/auth/token/", { body: { username, password } });
  if (data !== undefined) {
    keep(data);
    return undefined;
  }
  return error;
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

// Who is signed in, and what the console may show them. Roles are read from the API (the
// caller's own user record), never from the token, and again at every sign-in or reload.
import {
  answerChallenge,
  api,
  attempt,
  forget,
  hasSession,
  passkeySignIn,
  refresh,
  signIn,
  signOut,
  unreachable,
  whenEnrolmentRequired,
  whenSignedOut,
  type FactorAnswer,
  type MfaChallenge,
  type SignInResult,
  type User,
} from "./api.ts";

/**
 * Phase: "enrol" is a staff member or superuser whom the second-factor policy holds to
 * enrolment (403 mfa_enrolment_required): the console shows them only My account's Security
 * section until a factor is active.
 */
export type Phase = "loading" | "signed-out" | "no-access" | "enrol" | "ready";

export const session = $state<{
  phase: Phase;
  me: User | undefined;
  /** notice is shown on the sign-in page: why the previous session ended. */
  notice: string;
}>({ phase: "loading", me: undefined, notice: "" });

whenSignedOut((reason) => {
  session.phase = "signed-out";
  session.me = undefined;
  session.notice = reason;
});

whenEnrolmentRequired(() => {
  if (session.phase === "ready") {
    session.phase = "enrol";
  }
});

/** canWrite: superusers change users and keys; staff only read. */
export function canWrite(): boolean {
  return session.me?.is_superuser === true;
}

/** resume picks up this tab's session after a reload, or shows the sign-in page. */
export async function resume(): Promise<void> {
  if (!hasSession()) {
    session.phase = "signed-out";
    return;
  }
  if (await refresh()) {
    await loadMe();
  }
}

/**
 * login signs in with a password and loads the caller's roles; it returns the second factor's
 * challenge when one is needed (then answer it with completeLogin), or the error to show.
 */
export async function login(username: string, password: string): Promise<SignInResult> {
  const result = await signIn(username, password);
  if (!result.done) {
    return result;
  }
  session.notice = "";
  const error = await loadMe();
  return error === undefined ? result : { done: false, message: error };
}

/**
 * completeLogin answers a login's challenge with a second factor and loads the caller's roles;
 * it returns the error to show, and whether the challenge is gone (start again).
 */
export async function completeLogin(challenge: MfaChallenge, factor: FactorAnswer): Promise<{ message: string; expired: boolean } | undefined> {
  const failed = await answerChallenge(challenge, factor);
  if (failed !== undefined) {
    return failed;
  }
  session.notice = "";
  const error = await loadMe();
  return error === undefined ? undefined : { message: error, expired: true };
}

/**
 * loginWithPasskey signs in with a passkey (sign runs the browser's ceremony) and loads the
 * caller's roles; it returns the error to show, if any.
 */
export async function loginWithPasskey(sign: (options: Record<string, unknown>) => Promise<Record<string, unknown>>): Promise<string | undefined> {
  const failed = await passkeySignIn(sign);
  if (failed !== undefined) return failed;
  session.notice = "";
  return loadMe();
}

/** logout ends the session on the server and returns to the sign-in page. */
export async function logout(): Promise<void> {
  try {
    await signOut();
  } finally {
    session.me = undefined;
    session.notice = "You are signed out.";
    session.phase = "signed-out";
  }
}

/**
 * reloadMe refreshes the caller's record, after they changed it on their own user page; it
 * returns the error to show, if any.
 */
export async function reloadMe(): Promise<string | undefined> {
  return loadMe();
}

// loadMe reads the caller's record. A refusal ends the session; no answer at all leaves it as
// it is, to try again.
async function loadMe(): Promise<string | undefined> {
  const account = await attempt(api.GET("/api/v1/account/"));
  if (!account.ok) {
    return account.response === undefined ? account.message : failed(account.error?.detail);
  }
  const me = await attempt(api.GET("/api/v1/account/management/{id}/", { params: { path: { id: account.data.id } } }));
  if (!me.ok && me.error?.code === "mfa_enrolment_required") {
    // Staff or superuser (the policy covers no one else), but which is not theirs to read yet.
    session.me = { ...account.data, is_active: true, is_staff: true, is_superuser: false, date_joined: "" };
    session.phase = "enrol";
    return undefined;
  }
  if (!me.ok && me.response?.status === 403) {
    // Not staff: the user record is not theirs to read. They keep their session for the
    // sign-out button, which ends it.
    session.me = { ...account.data, is_active: true, is_staff: false, is_superuser: false, date_joined: "" };
    session.phase = "no-access";
    return undefined;
  }
  if (!me.ok) {
    return me.response === undefined ? me.message : failed(me.error?.detail);
  }
  session.me = me.data;
  session.phase = me.data.is_staff || me.data.is_superuser ? "ready" : "no-access";
  return undefined;
}

function failed(detail: string | undefined): string {
  if (session.phase === "signed-out") {
    return session.notice || "Sign in again.";
  }
  forget();
  session.phase = "signed-out";
  return detail ?? unreachable;
}

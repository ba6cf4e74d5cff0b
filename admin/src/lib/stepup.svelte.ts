// The step-up prompt (RFC 9470): when the API refuses a call with 401
// insufficient_user_authentication, the console asks the user to prove it is them again (a
// second factor, or the password for a user without one), raises the session through
// reauthenticate, and the call is sent again once (api.ts). StepUpDialog shows the prompt.
import { api, attempt, reauthenticate, whenStepUpNeeded, type ReauthAnswer, type Schemas } from "./api.ts";
import { ceremonyError, getAssertion, supported } from "./webauthn.ts";

export const stepUp = $state<{ methods: string[] | undefined }>({ methods: undefined });

let settle: ((ok: boolean) => void) | undefined;

whenStepUpNeeded(async () => {
  const factors = await attempt(api.GET("/api/v1/account/mfa/"));
  stepUp.methods = factors.ok ? reauthMethods(factors.data) : ["totp", "recovery_code"];
  return new Promise<boolean>((resolve) => {
    settle = resolve;
  });
});

/**
 * reauthMethods is how a user with these factors can re-authenticate: with each kind of
 * active factor (a security key or passkey where the browser can use one) and a recovery
 * code, or with the password when none is active.
 */
export function reauthMethods(f: Schemas["MfaFactors"], webauthn: boolean = supported()): string[] {
  const active = [...new Set(f.factors.filter((x) => x.active).map((x) => x.type))];
  if (active.length === 0) return ["password"];
  return [...active.filter((m) => m !== "webauthn" || webauthn), "recovery_code"];
}

/**
 * stepUpWithKey re-authenticates with a security key or passkey: the API's options for this
 * session, the browser's ceremony, the assertion sent. It returns the failure to show, if any.
 */
export async function stepUpWithKey(): Promise<string | undefined> {
  const begun = await attempt(api.POST("/api/v1/auth/reauthenticate/webauthn/"));
  if (!begun.ok) return begun.message;
  let credential: Record<string, unknown>;
  try {
    credential = await getAssertion(begun.data.options);
  } catch (e) {
    return ceremonyError(e);
  }
  return answerStepUp({ method: "webauthn", ceremony: begun.data.ceremony, credential });
}

/** answerStepUp sends the user's answer; it returns the failure to show, if any. */
export async function answerStepUp(answer: ReauthAnswer): Promise<string | undefined> {
  const failed = await reauthenticate(answer);
  if (failed === undefined) {
    finish(true);
  }
  return failed;
}

/** cancelStepUp gives up: the refused call's answer goes to the page that made it. */
export function cancelStepUp(): void {
  finish(false);
}

function finish(ok: boolean): void {
  stepUp.methods = undefined;
  settle?.(ok);
  settle = undefined;
}

// How second factors are named on every page: one label a method, so that a method the API
// adds fails the type check until it has one here.
import type { Schemas } from "./api.ts";

export type Factor = Schemas["MfaFactor"];

/** methodLabel names each kind of second factor. */
export const methodLabel: Record<Factor["type"], string> = {
  totp: "Authenticator app",
  webauthn: "Security key or passkey",
};

/** factorLabel names one factor: a WebAuthn credential as a passkey or a security key. */
export function factorLabel(f: Factor): string {
  if (f.type === "webauthn" && f.passkey !== undefined) {
    return f.passkey ? "Passkey" : "Security key";
  }
  return methodLabel[f.type];
}

// How second factors are named on every page: one label a method, so that a method the API
// adds fails the type check until it has one here.
import type { Schemas } from "./api.ts";

export type Factor = Schemas["MfaFactor"];

/**
 * FactorsCard is what My account gives each card that shows the factors (Security, Passkeys):
 * the one read of them (or why it failed), and onchange to read them again after a change.
 */
export type FactorsCard = {
  username: string;
  factors: Schemas["MfaFactors"] | undefined;
  loadError?: string;
  onchange: () => Promise<void>;
};

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

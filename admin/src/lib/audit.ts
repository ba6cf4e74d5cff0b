// Names for the audit log's actions, in the order the filter lists them.
import type { Schemas } from "./api.ts";

export type AuditAction = Schemas["AuditAction"];

export const actionText: Record<AuditAction, string> = {
  "login.succeeded": "Signed in",
  "login.failed": "Sign-in failed",
  "login.throttled": "Sign-in throttled",
  "refresh.reuse_detected": "Refresh token reused",
  logout: "Signed out",
  logout_all: "Signed out everywhere",
  "session.revoked": "Session revoked",
  "password.changed": "Password changed",
  "password.change_failed": "Password change failed",
  "password.change_throttled": "Password change throttled",
  "user.created": "User created",
  "user.updated": "User updated",
  "user.deactivated": "User deactivated",
  "user.deleted": "User deleted",
  "key.rotated": "Key rotated",
  "client.created": "API client created",
  "client.updated": "API client updated",
  "client.secret_rotated": "API client secret rotated",
  "client.deleted": "API client deleted",
  "client.auth_failed": "API client authentication failed",
  "token.revoked": "Token revoked",
  "ssf.delivery_failed": "Security event delivery failed",
  "mfa.enrolled": "Authenticator app set up (pending)",
  "mfa.activated": "Second factor turned on",
  "mfa.removed": "Second factor removed",
  "mfa.failed": "Second factor code refused",
  "mfa.throttled": "Second factor attempts throttled",
  "mfa.recovery_code_used": "Recovery code used",
  "mfa.recovery_codes_regenerated": "Recovery codes replaced",
  "mfa.reset": "Second factors reset by an administrator",
  "reauth.succeeded": "Re-authenticated (step-up)",
  "reauth.failed": "Re-authentication refused",
  "reauth.throttled": "Re-authentication attempts throttled",
  "mail.sent": "Mail sent",
  "mail.failed": "Mail given up",
  "password.reset_requested": "Password reset link sent",
  "password.reset": "Password reset with a link",
  "email.verification_sent": "Verification link sent",
  "email.verified": "Email address verified",
  "email.change_requested": "Email change requested",
  "email.change_failed": "Email change failed",
  "email.changed": "Email address changed",
  "signup.created": "Signed up",
  "signup.existing_email": "Sign-up with an address in use",
  "login.new_device": "New device notice sent",
  "login.email_unverified": "Sign-in refused: address not verified",
  "mail.limited": "Mail rate limited",
};

export const actions = Object.keys(actionText) as AuditAction[];

// What a row counting several events (the throttle's refusals) counts, in the plural.
const countedText: Partial<Record<AuditAction, string>> = {
  "login.throttled": "throttled sign-in attempts",
  "password.change_throttled": "throttled password changes",
  "mail.limited": "refused mail requests",
};

// countedEvents is "42 throttled sign-in attempts" for a row that counts several events.
export function countedEvents(action: AuditAction, count: number): string {
  return `${count} ${countedText[action] ?? "events"}`;
}

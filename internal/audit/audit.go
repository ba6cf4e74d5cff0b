// Package audit is the audit log of security events: the names of the actions, the event an
// operation records, which action a change of a user is, the queries of the log and its
// retention.
//
// An event is written by the store method that makes the change it describes, in the same
// transaction (see store.AuditEvent): an operation builds its event with Source.Event and
// passes it to that method, which fills in what only it knows (the new user's ID, the
// session's ID, the key's ID). Events hold identifiers and field names, never a password,
// a token or a hash.
package audit

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/authapi/authapi/internal/store"
)

// Action names what happened. The spec's AuditAction enum lists the same names.
type Action string

// The actions.
const (
	LoginSucceeded Action = "login.succeeded"
	// LoginFailed is a wrong password, an unknown or an inactive user: they are alike to the
	// client and in the log (TargetID names the account when it exists).
	LoginFailed    Action = "login.failed"
	LoginThrottled Action = "login.throttled"
	// RefreshReuseDetected is a retired refresh token presented again: its session is revoked.
	RefreshReuseDetected Action = "refresh.reuse_detected"
	Logout               Action = "logout"
	LogoutAll            Action = "logout_all"
	// SessionRevoked is one session revoked by id, by its user or by an administrator.
	SessionRevoked  Action = "session.revoked"
	PasswordChanged Action = "password.changed"
	// PasswordChangeFailed is a change of one's own password refused for a wrong old
	// password, PasswordChangeThrottled one refused by the login throttle: the old password
	// is checked as a login's is, and counts against the same limits.
	PasswordChangeFailed    Action = "password.change_failed"
	PasswordChangeThrottled Action = "password.change_throttled"
	UserCreated             Action = "user.created"
	UserUpdated             Action = "user.updated"
	UserDeactivated         Action = "user.deactivated"
	UserDeleted             Action = "user.deleted"
	KeyRotated              Action = "key.rotated"
	// The API clients' registry; the events name the client (ClientID), never a secret.
	ClientCreated       Action = "client.created"
	ClientUpdated       Action = "client.updated"
	ClientSecretRotated Action = "client.secret_rotated"
	ClientDeleted       Action = "client.deleted"
	// ClientAuthFailed is a wrong secret for a registered client, or a refusal of the throttle.
	ClientAuthFailed Action = "client.auth_failed"
	// TokenRevoked is a token revoked through the revocation endpoint (RFC 7009): its session
	// ends; the event names the client that asked.
	TokenRevoked Action = "token.revoked"
	// SSFDeliveryFailed is a Shared Signals event a receiver's push endpoint failed to take
	// (first failure of each event; it is retried) or refused (400; dropped), or that a
	// full queue dropped. Fields names the stream ("stream:<id>"), TargetID the event's user.
	SSFDeliveryFailed Action = "ssf.delivery_failed"

	// Second factors. MFAFailed is a wrong or replayed code at the login challenge or at
	// activation; never is a code, secret or challenge recorded.
	MFAEnrolled              Action = "mfa.enrolled"
	MFAActivated             Action = "mfa.activated"
	MFARemoved               Action = "mfa.removed"
	MFAFailed                Action = "mfa.failed"
	MFAThrottled             Action = "mfa.throttled"
	RecoveryCodeUsed         Action = "mfa.recovery_code_used"
	RecoveryCodesRegenerated Action = "mfa.recovery_codes_regenerated"
	// MFAReset is a superuser's removal of every second factor of a user (the target), which
	// ends their sessions.
	MFAReset Action = "mfa.reset"

	// Re-authentication (step-up) of the actor's current session: ReauthFailed is a wrong
	// code or password (Fields names the method), ReauthThrottled a refusal by the throttle.
	ReauthSucceeded Action = "reauth.succeeded"
	ReauthFailed    Action = "reauth.failed"
	ReauthThrottled Action = "reauth.throttled"

	// Mail. MailSent is a message of the outbox delivered, MailFailed one given up after
	// the attempt bound; Fields names the kind ("kind:password_reset"), TargetID the user.
	MailSent   Action = "mail.sent"
	MailFailed Action = "mail.failed"
	// PasswordResetRequested is a reset link sent to an account (a request naming no account
	// records nothing: the log is not an oracle either); PasswordReset a password set with
	// one, which ended every session of the user.
	PasswordResetRequested Action = "password.reset_requested"
	PasswordReset          Action = "password.reset"
	// Email addresses. EmailVerificationSent is a verification link mailed (on creation, a
	// change of the address, or asked for again); EmailVerified its confirmation.
	// EmailChangeRequested is a self-service change waiting for the new address's
	// confirmation, EmailChangeFailed one refused for a wrong password, EmailChanged its
	// confirmation (the address changed). None records an address or a token.
	EmailVerificationSent Action = "email.verification_sent"
	EmailVerified         Action = "email.verified"
	EmailChangeRequested  Action = "email.change_requested"
	EmailChangeFailed     Action = "email.change_failed"
	EmailChanged          Action = "email.changed"
	// SignUpCreated is an account made by sign-up; SignUpExistingEmail a sign-up with an
	// address in use, which made no account (its owner was told).
	SignUpCreated       Action = "signup.created"
	SignUpExistingEmail Action = "signup.existing_email"
	// LoginNewDevice is a login from a device the account had not used: the notice mailed.
	LoginNewDevice Action = "login.new_device"
	// LoginEmailUnverified is a proven sign-in (the password, a second factor, a passkey)
	// refused until the address of an account made by sign-up is verified.
	LoginEmailUnverified Action = "login.email_unverified"
	// MailLimited is a request for mail refused by a limit (per IP, account or domain),
	// counted per window like a throttled login.
	MailLimited Action = "mail.limited"
)

// Actions lists every action.
var Actions = []Action{
	LoginSucceeded, LoginFailed, LoginThrottled, RefreshReuseDetected, Logout, LogoutAll,
	SessionRevoked, PasswordChanged, PasswordChangeFailed, PasswordChangeThrottled,
	UserCreated, UserUpdated, UserDeactivated, UserDeleted, KeyRotated,
	ClientCreated, ClientUpdated, ClientSecretRotated, ClientDeleted, ClientAuthFailed, TokenRevoked,
	SSFDeliveryFailed,
	MFAEnrolled, MFAActivated, MFARemoved, MFAFailed, MFAThrottled, RecoveryCodeUsed, RecoveryCodesRegenerated,
	MFAReset, ReauthSucceeded, ReauthFailed, ReauthThrottled,
	MailSent, MailFailed, PasswordResetRequested, PasswordReset,
	EmailVerificationSent, EmailVerified, EmailChangeRequested, EmailChangeFailed, EmailChanged,
	SignUpCreated, SignUpExistingEmail, LoginNewDevice, LoginEmailUnverified, MailLimited,
}

// Outcome tells whether the operation an event records was carried out.
type Outcome string

// The outcomes.
const (
	Success Outcome = "success"
	// Failure is a refusal: a failed or throttled login, password change, second factor or
	// re-authentication, a reused refresh token.
	Failure Outcome = "failure"
)

// Outcome is the outcome of every event of the action.
func (a Action) Outcome() Outcome {
	switch a {
	case LoginFailed, LoginThrottled, RefreshReuseDetected, PasswordChangeFailed, PasswordChangeThrottled,
		ClientAuthFailed, SSFDeliveryFailed, MFAFailed, MFAThrottled, ReauthFailed, ReauthThrottled, MailFailed, EmailChangeFailed, SignUpExistingEmail, LoginEmailUnverified, MailLimited:
		return Failure
	}
	return Success
}

// Source is who makes an operation, from where and when: the common part of its events.
type Source struct {
	At time.Time // zero: the store stamps the time of the change
	// ActorID is the user acting, 0 for none (an unauthenticated request, the CLI);
	// SessionID the session of their request.
	ActorID   int64
	SessionID string
	// IP and UserAgent describe the client; a command of the CLI names itself as the user
	// agent (see CLI).
	IP, UserAgent string
}

// CLI is the Source of a command of the authapi binary, such as "keys rotate": no actor and
// no IP, and "authapi <command>" as the user agent.
func CLI(command string) Source {
	return Source{UserAgent: "authapi " + command}
}

// Event is the event of action a made by s. The store method it is passed to sets the
// TargetID, SessionID or KeyID of the change it makes (see its doc); set TargetID for any
// other target.
func (s Source) Event(a Action) store.AuditEvent {
	return store.AuditEvent{
		At: s.At, Action: string(a), Outcome: string(a.Outcome()),
		ActorID: s.ActorID, SessionID: s.SessionID, IP: s.IP, UserAgent: s.UserAgent,
	}
}

// UserUpdate is the store.UserAudit of a change of a user made by s: one event naming the
// fields that changed (see ChangedFields), whose action is UserDeactivated when the user was
// deactivated, else PasswordChanged when the password changed, else UserUpdated.
func (s Source) UserUpdate() store.UserAudit {
	return func(before, after store.User) []store.AuditEvent {
		a := UserUpdated
		switch {
		case before.IsActive && !after.IsActive:
			a = UserDeactivated
		case before.PasswordHash != after.PasswordHash:
			a = PasswordChanged
		}
		e := s.Event(a)
		e.TargetID = after.ID
		e.Fields = ChangedFields(before, after)
		return []store.AuditEvent{e}
	}
}

// ChangedFields names the fields of a user, as the API names them, in which after differs
// from before: "password" for a new password hash, never the hash.
func ChangedFields(before, after store.User) []string {
	var fields []string
	add := func(name string, changed bool) {
		if changed {
			fields = append(fields, name)
		}
	}
	add("username", before.Username != after.Username)
	add("first_name", before.FirstName != after.FirstName)
	add("last_name", before.LastName != after.LastName)
	add("email", before.Email != after.Email)
	add("password", before.PasswordHash != after.PasswordHash)
	add("is_active", before.IsActive != after.IsActive)
	add("is_staff", before.IsStaff != after.IsStaff)
	add("is_superuser", before.IsSuperuser != after.IsSuperuser)
	return fields
}

// Page sizes of Query.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// Query selects a page of events, newest first. Zero fields select everything.
type Query struct {
	UserID  int64    // events whose actor or target is this user
	Actions []Action // events of any of these actions
	// Since and Until bound the events' time: Since included, Until excluded.
	Since, Until time.Time
	Limit        int   // 1 to MaxLimit; 0 is DefaultLimit
	Offset       int64 // how many of the newest to skip
}

// QueryMember names a member of Query, for QueryFaults.
type QueryMember string

// The members of Query that Check may find at fault.
const (
	MemberLimit   QueryMember = "Limit"
	MemberOffset  QueryMember = "Offset"
	MemberUserID  QueryMember = "UserID"
	MemberActions QueryMember = "Actions"
	MemberUntil   QueryMember = "Until"
)

// QueryFaults are what Check finds wrong with a Query: the reason (in English, for people)
// per member at fault.
type QueryFaults map[QueryMember]string

// Check returns what is wrong with q, per member (nil if nothing).
func (q Query) Check() QueryFaults {
	faults := QueryFaults{}
	if q.Limit < 0 || q.Limit > MaxLimit {
		faults[MemberLimit] = fmt.Sprintf("Ensure this value is between 1 and %d.", MaxLimit)
	}
	if q.Offset < 0 {
		faults[MemberOffset] = "Ensure this value is greater than or equal to 0."
	}
	if q.UserID < 0 {
		faults[MemberUserID] = "Ensure this value is greater than or equal to 1."
	}
	for _, a := range q.Actions {
		if !slices.Contains(Actions, a) {
			faults[MemberActions] = fmt.Sprintf("%q is not a known action.", a)
			break
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		faults[MemberUntil] = "Ensure this value is later than since."
	}
	if len(faults) == 0 {
		return nil
	}
	return faults
}

// List returns the page of events q selects and how many it selects in all. q must pass
// Check.
func List(ctx context.Context, st *store.Store, q Query) ([]store.AuditEvent, int64, error) {
	if fields := q.Check(); fields != nil {
		return nil, 0, fmt.Errorf("audit query: %v", fields)
	}
	f := store.AuditFilter{UserID: q.UserID, Since: q.Since, Until: q.Until, Limit: q.Limit, Offset: int(min(q.Offset, math.MaxInt))}
	if f.Limit == 0 {
		f.Limit = DefaultLimit
	}
	for _, a := range q.Actions {
		f.Actions = append(f.Actions, string(a))
	}
	return st.AuditEvents(ctx, f)
}

// DefaultRetention is how long events are kept unless configured otherwise: 90 days.
const DefaultRetention = 90 * 24 * time.Hour

// Prune deletes the events older than retention at now, and returns how many; a retention
// of 0 keeps every event. A row counting several events (see store.AuditEvent.Count) goes
// by its last one's time.
func Prune(ctx context.Context, st *store.Store, now time.Time, retention time.Duration) (int64, error) {
	if retention <= 0 {
		return 0, nil
	}
	return st.PruneAuditEvents(ctx, now.Add(-retention))
}

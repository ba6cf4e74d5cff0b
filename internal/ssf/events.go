package ssf

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
)

// Event type URIs. CAEP 1.0 defines session-revoked, credential-change and
// token-claims-change; CAEP has no account events, so account-disabled and account-purged are
// RISC's (OpenID RISC Profile 1.0, section 2); verification and stream-updated are SSF 1.0's.
const (
	TypeSessionRevoked    = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	TypeCredentialChange  = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
	TypeTokenClaimsChange = "https://schemas.openid.net/secevent/caep/event-type/token-claims-change"
	TypeAccountDisabled   = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	TypeAccountPurged     = "https://schemas.openid.net/secevent/risc/event-type/account-purged"
	TypeVerification      = "https://schemas.openid.net/secevent/ssf/event-type/verification"
	TypeStreamUpdated     = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"
)

// eventTypes maps the store's kinds to their URIs.
var eventTypes = map[store.EventKind]string{
	store.EventSessionRevoked:    TypeSessionRevoked,
	store.EventCredentialChange:  TypeCredentialChange,
	store.EventTokenClaimsChange: TypeTokenClaimsChange,
	store.EventAccountDisabled:   TypeAccountDisabled,
	store.EventAccountPurged:     TypeAccountPurged,
	store.EventVerification:      TypeVerification,
	store.EventStreamUpdated:     TypeStreamUpdated,
}

// EventsSupported are the event types a receiver may request, in this order. Verification
// and stream-updated events are always delivered, requested or not (SSF 1.0 sections 8.1.4
// and 8.1.5).
var EventsSupported = []string{
	TypeSessionRevoked, TypeCredentialChange, TypeTokenClaimsChange, TypeAccountDisabled, TypeAccountPurged,
}

// kindOf is the store kind of a supported event type URI.
func kindOf(uri string) (store.EventKind, bool) {
	for k, u := range eventTypes {
		if u == uri && k != store.EventVerification && k != store.EventStreamUpdated {
			return k, true
		}
	}
	return "", false
}

// reasons are the reason_admin texts (CAEP 1.0 section 2; the interoperability profile
// requires a non-empty one for session-revoked and credential-change), by kind and by the
// audit action of the change.
var reasons = map[store.EventKind]map[string]string{
	store.EventSessionRevoked: {
		string(audit.Logout):               "The user logged out",
		string(audit.LogoutAll):            "All sessions of the user were ended",
		string(audit.SessionRevoked):       "The session was revoked",
		string(audit.RefreshReuseDetected): "A refresh token of the session was reused: the session was revoked",
		string(audit.PasswordChanged):      "The password changed: the user's sessions were ended",
		string(audit.UserDeactivated):      "The account was deactivated",
		string(audit.UserUpdated):          "The account was changed: its sessions were ended",
		string(audit.UserDeleted):          "The account was deleted",
		string(audit.TokenRevoked):         "A token of the session was revoked",
		string(audit.MFAReset):             "The user's second factors were reset: their sessions were ended",
		"":                                 "The session was revoked",
	},
	store.EventCredentialChange: {
		"":                     "The password was changed",
		string(audit.MFAReset): "The user's second factors were removed by an administrator",
	},
	store.EventTokenClaimsChange: {"": "The user's roles changed"},
	store.EventAccountDisabled:   {"": "The account was deactivated"},
	store.EventAccountPurged:     {"": "The account was deleted"},
}

func reasonAdmin(e store.SecurityEvent) string {
	byCause := reasons[e.Kind]
	if r, ok := byCause[e.Cause]; ok {
		return r
	}
	return byCause[""]
}

// initiatingEntity is CAEP's initiating_entity of e: policy for a detected token reuse,
// the user for their own action, an administrator for another's, else the system.
func initiatingEntity(e store.SecurityEvent) string {
	switch {
	case e.Cause == string(audit.RefreshReuseDetected):
		return "policy"
	case e.ActorID == 0:
		return "system"
	case e.ActorID == e.UserID:
		return "user"
	}
	return "admin"
}

// subject is the sub_id of e in the stream's format (RFC 9493; SSF 1.0 section 3).
func (s *Service) subject(st store.Stream, e store.SecurityEvent) map[string]any {
	if e.Kind == store.EventVerification || e.Kind == store.EventStreamUpdated {
		// The stream itself (SSF 1.0 section 8.1.4.1).
		return map[string]any{"format": FormatOpaque, "id": st.ID}
	}
	user := strconv.FormatInt(e.UserID, 10)
	issSub := map[string]any{"format": FormatIssSub, "iss": s.cfg.Issuer, "sub": user}
	switch st.Format {
	case FormatEmail:
		if e.Email != "" {
			return map[string]any{"format": FormatEmail, "email": e.Email}
		}
	case FormatOpaque:
		return map[string]any{"format": FormatOpaque, "id": user}
	case FormatComplex:
		c := map[string]any{"format": FormatComplex, "user": issSub}
		if e.SessionID != "" {
			c["session"] = map[string]any{"format": FormatOpaque, "id": e.SessionID}
		}
		return c
	}
	return issSub
}

// body is the event object of e.
func body(e store.SecurityEvent) (map[string]any, error) {
	out := map[string]any{}
	if e.Detail != "" {
		if err := json.Unmarshal([]byte(e.Detail), &out); err != nil {
			return nil, fmt.Errorf("event %s detail: %w", e.JTI, err)
		}
	}
	switch e.Kind {
	case store.EventVerification, store.EventStreamUpdated:
		return out, nil
	case store.EventCredentialChange:
		out["credential_type"], out["change_type"] = "password", "update"
		if e.Cause == string(audit.MFAReset) { // every second factor (an authenticator app) removed
			out["credential_type"], out["change_type"] = "app", "revoke"
		}
	}
	if e.Kind == store.EventAccountDisabled || e.Kind == store.EventAccountPurged {
		return out, nil // RISC events carry no CAEP members
	}
	out["event_timestamp"] = e.At.Unix()
	out["initiating_entity"] = initiatingEntity(e)
	out["reason_admin"] = map[string]string{"en": reasonAdmin(e)}
	return out, nil
}

// SET returns event e as the SET delivered on stream st: the same bytes on every delivery
// and from every instance.
func (s *Service) SET(ctx context.Context, st store.Stream, e store.SecurityEvent) (string, error) {
	signer, err := s.signer.SETSigner(ctx)
	if err != nil {
		return "", err
	}
	ev, err := body(e)
	if err != nil {
		return "", err
	}
	typ, ok := eventTypes[e.Kind]
	if !ok {
		return "", fmt.Errorf("event %s: unknown kind %q", e.JTI, e.Kind)
	}
	return signer.Sign(token.SET{
		Issuer: s.cfg.Issuer, ID: e.JTI, IssuedAt: e.At, Audience: st.Audience, Txn: e.Txn,
		SubjectID: s.subject(st, e), EventType: typ, Event: ev,
	})
}

package store_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

// TestAuthChangesLogged checks that every change of authentication state logs one change of
// its user, in its own transaction, tells the local watchers and reaches another instance
// (a second Store on the database: its change feed, and on PostgreSQL its listener), and that
// no-ops log nothing. Every exported method of *store.Store must be the method of a case that
// logs, or be listed in notAuthChanging: a new method fails the test until it is classified.
func TestAuthChangesLogged(t *testing.T) {
	ctx := context.Background()
	later := time.Now().Add(time.Hour)
	cases := []struct {
		name    string
		method  string // the *store.Store method the case exercises
		change  func(t *testing.T, st *store.Store, u store.User) error
		session bool // the change names the session "s1"
		logs    bool
	}{
		{"revoke session", "RevokeSession", func(t *testing.T, st *store.Store, u store.User) error {
			_, err := st.RevokeSession(ctx, "s1", time.Now())
			return err
		}, true, true},
		{"revoke session again", "RevokeSession", func(t *testing.T, st *store.Store, u store.User) error {
			if _, err := st.RevokeSession(ctx, "s1", time.Now()); err != nil {
				return err
			}
			before, _ := st.LastAuthChangeID(ctx)
			_, err := st.RevokeSession(ctx, "s1", time.Now())
			if after, _ := st.LastAuthChangeID(ctx); after != before {
				t.Errorf("second revocation logged a change")
			}
			return err
		}, true, true},
		{"revoke user session", "RevokeUserSession", func(t *testing.T, st *store.Store, u store.User) error {
			return st.RevokeUserSession(ctx, u.ID, "s1", time.Now())
		}, true, true},
		{"revoke user sessions", "RevokeUserSessions", func(t *testing.T, st *store.Store, u store.User) error {
			_, err := st.RevokeUserSessions(ctx, u.ID, time.Now())
			return err
		}, false, true},
		{"deactivate", "UpdateUser", func(t *testing.T, st *store.Store, u store.User) error {
			_, err := st.UpdateUser(ctx, u.ID, func(u *store.User) error { u.IsActive = false; return nil }, false, time.Now())
			return err
		}, false, true},
		{"demote", "UpdateUser", func(t *testing.T, st *store.Store, u store.User) error {
			_, err := st.UpdateUser(ctx, u.ID, func(u *store.User) error { u.IsStaff = false; return nil }, false, time.Now())
			return err
		}, false, true},
		{"password change", "UpdateUser", func(t *testing.T, st *store.Store, u store.User) error {
			_, err := st.UpdateUser(ctx, u.ID, func(u *store.User) error { u.PasswordHash = "new"; return nil }, true, time.Now())
			return err
		}, false, true},
		{"update with nothing changed", "UpdateUser", func(t *testing.T, st *store.Store, u store.User) error {
			_, err := st.UpdateUser(ctx, u.ID, func(*store.User) error { return nil }, false, time.Now())
			return err
		}, false, false},
		{"delete", "DeleteUser", func(t *testing.T, st *store.Store, u store.User) error {
			return st.DeleteUser(ctx, u.ID)
		}, false, true},
		{"login", "StartSession", func(t *testing.T, st *store.Store, u store.User) error {
			sess := store.Session{UserID: u.ID, ExpiresAt: later}
			return st.StartSession(ctx, &sess, store.RefreshToken{ID: "r-login", ExpiresAt: later}, u.PasswordHash)
		}, false, true},
		{"password hash upgrade", "UpgradePasswordHash", func(t *testing.T, st *store.Store, u store.User) error {
			_, err := st.UpgradePasswordHash(ctx, u.ID, u.PasswordHash, "upgraded")
			return err
		}, false, true},
		{"own password change", "ChangePassword", func(t *testing.T, st *store.Store, u store.User) error {
			mustCreateSession(t, st, u.ID, "s-keep", later)
			_, _, err := changePassword(st, u.ID, u.PasswordHash, "new", "s-keep", time.Now())
			return err
		}, false, true},
		{"activate totp factor", "ActivateTOTPFactor", func(t *testing.T, st *store.Store, u store.User) error {
			f, err := st.CreateTOTPFactor(ctx, u.ID, []byte("secret"))
			if err != nil {
				return err
			}
			_, _, err = st.ActivateTOTPFactor(ctx, u.ID, f.ID, 1, store.FirstFactorCodes{})
			return err
		}, false, true},
		{"delete totp factor", "DeleteTOTPFactor", func(t *testing.T, st *store.Store, u store.User) error {
			if _, err := st.CreateTOTPFactor(ctx, u.ID, []byte("secret")); err != nil {
				return err
			}
			return st.DeleteTOTPFactor(ctx, u.ID)
		}, false, true},
		{"raise session", "RaiseSession", func(t *testing.T, st *store.Store, u store.User) error {
			return st.RaiseSession(ctx, u.ID, "s1", []string{"pwd", "otp", "mfa"}, time.Now(), nil)
		}, true, true},
		{"reset factors", "ResetFactors", func(t *testing.T, st *store.Store, u store.User) error {
			_, err := st.ResetFactors(ctx, u.ID, time.Now())
			return err
		}, false, true},
		{"add webauthn credential", "CreateWebAuthnCredential", func(t *testing.T, st *store.Store, u store.User) error {
			_, err := mustWebAuthnCredential(t, st, u)
			return err
		}, false, true},
		{"password reset", "ResetPassword", func(t *testing.T, st *store.Store, u store.User) error {
			tok := store.EmailToken{Hash: "h-reset", Purpose: store.PurposePasswordReset, UserID: u.ID, CreatedAt: time.Now(), ExpiresAt: later}
			if err := st.CreateEmailToken(ctx, tok, nil); err != nil {
				return err
			}
			_, err := st.ResetPassword(ctx, store.PasswordReset{TokenHash: "h-reset", UserID: u.ID, NewHash: "new", At: time.Now()})
			return err
		}, false, true},
		{"email change by a superuser", "UpdateUserMail", func(t *testing.T, st *store.Store, u store.User) error {
			_, err := st.UpdateUserMail(ctx, u.ID, func(u *store.User) error { u.Email = "new@example.com"; return nil }, false, time.Now(), nil)
			return err
		}, false, true},
		{"change of address asked", "SendAddressMail", func(t *testing.T, st *store.Store, u store.User) error {
			_, _, err := st.SendAddressMail(ctx, addressChange(u.ID, "h-change", time.Now()))
			return err
		}, false, true},
		{"address verified", "ConfirmAddress", func(t *testing.T, st *store.Store, u store.User) error {
			tok := store.EmailToken{Hash: "h-verify", Purpose: store.PurposeVerifyEmail, UserID: u.ID, Email: u.Email, CreatedAt: time.Now(), ExpiresAt: later}
			if err := st.CreateEmailToken(ctx, tok, nil); err != nil {
				return err
			}
			_, _, err := st.ConfirmAddress(ctx, store.AddressConfirmation{TokenHash: "h-verify", At: time.Now()})
			return err
		}, false, true},
		{"touch session", "TouchSession", func(t *testing.T, st *store.Store, u store.User) error {
			return st.TouchSession(ctx, "s1", time.Now())
		}, false, false},
	}
	t.Run("every method classified", func(t *testing.T) {
		logged := map[string]bool{}
		for _, tc := range cases {
			if tc.logs {
				logged[tc.method] = true
			}
		}
		logged["DeleteWebAuthnCredential"] = true // TestWebAuthnCredentialRemovalLogged: its setup logs too
		checkClassified(t, logged)
	})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			eachInstancePair(t, func(t *testing.T, st, other *store.Store) {
				u := mustCreateUser(t, st, "alice", superuser)
				mustCreateUser(t, st, "root", superuser) // so alice may be demoted
				mustCreateSession(t, st, u.ID, "s1", later)
				start, err := st.LastAuthChangeID(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var (
					mu      sync.Mutex
					watched []int64
				)
				st.OnAuthChange(func(id int64) { mu.Lock(); watched = append(watched, id); mu.Unlock() })
				announced := listenOn(t, other)
				if err := tc.change(t, st, u); err != nil {
					t.Fatalf("change: %v", err)
				}
				// The other instance sees what this one logged, in its change feed.
				otherLast, err := other.LastAuthChangeID(ctx)
				if err != nil {
					t.Fatal(err)
				}
				otherGot, err := other.AuthChangesAfter(ctx, start, 0)
				if err != nil {
					t.Fatal(err)
				}
				got, err := st.AuthChangesAfter(ctx, start, 0)
				if err != nil {
					t.Fatal(err)
				}
				if !tc.logs {
					if len(got) != 0 || len(watched) != 0 {
						t.Fatalf("logged %+v, watchers told %v; want nothing", got, watched)
					}
					if otherLast != start || len(otherGot) != 0 {
						t.Fatalf("the other instance sees last change %d, %+v; want %d, nothing", otherLast, otherGot, start)
					}
					return
				}
				if len(got) != 1 || got[0].UserID != u.ID || got[0].ID <= start {
					t.Fatalf("logged %+v, want one change of user %d after id %d", got, u.ID, start)
				}
				if want := map[bool]string{true: "s1"}[tc.session]; got[0].SessionID != want {
					t.Errorf("session %q, want %q", got[0].SessionID, want)
				}
				if len(watched) != 1 || watched[0] != u.ID {
					t.Errorf("watchers told %v, want [%d]", watched, u.ID)
				}
				if otherLast != got[0].ID || !reflect.DeepEqual(otherGot, got) {
					t.Errorf("the other instance sees last change %d, %+v; want %d, %+v", otherLast, otherGot, got[0].ID, got)
				}
				if announced != nil {
					select {
					case <-announced:
					case <-time.After(10 * time.Second):
						t.Errorf("the other instance's ListenAuthChanges heard nothing in 10s")
					}
				}
			})
		})
	}
}

// TestAuthChangeRolledBack checks that a change that fails logs nothing: the log is written in
// the change's own transaction.
func TestAuthChangeRolledBack(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, st *store.Store) {
		u := mustCreateUser(t, st, "root", superuser) // the last administrator
		start, _ := st.LastAuthChangeID(ctx)
		_, err := st.UpdateUser(ctx, u.ID, func(u *store.User) error { u.IsActive = false; return nil }, true, time.Now())
		if err == nil {
			t.Fatal("deactivating the last administrator succeeded")
		}
		if err := st.DeleteUser(ctx, u.ID); err == nil {
			t.Fatal("deleting the last administrator succeeded")
		}
		if got, _ := st.AuthChangesAfter(ctx, start, 0); len(got) != 0 {
			t.Fatalf("refused changes logged %+v", got)
		}
	})
}

func TestAuthChangesPagingAndPrune(t *testing.T) {
	ctx := context.Background()
	eachBackend(t, func(t *testing.T, st *store.Store) {
		u := mustCreateUser(t, st, "alice")
		for range 3 {
			if _, err := st.UpgradePasswordHash(ctx, u.ID, mustUser(t, st, u.ID).PasswordHash, time.Now().String()); err != nil {
				t.Fatal(err)
			}
		}
		all, err := st.AuthChangesAfter(ctx, 0, 0)
		if err != nil || len(all) != 3 {
			t.Fatalf("changes %+v, %v; want 3", all, err)
		}
		if !(all[0].ID < all[1].ID && all[1].ID < all[2].ID) {
			t.Fatalf("not in id order: %+v", all)
		}
		page, err := st.AuthChangesAfter(ctx, all[0].ID, 1)
		if err != nil || len(page) != 1 || page[0].ID != all[1].ID {
			t.Fatalf("page after %d: %+v, %v; want only %d", all[0].ID, page, err, all[1].ID)
		}
		if last, err := st.LastAuthChangeID(ctx); err != nil || last != all[2].ID {
			t.Fatalf("last id %d, %v; want %d", last, err, all[2].ID)
		}
		if n, err := st.PruneAuthChanges(ctx, all[0].At.Add(-time.Second)); err != nil || n != 0 {
			t.Fatalf("pruning older rows than any deleted %d, %v", n, err)
		}
		if n, err := st.PruneAuthChanges(ctx, time.Now().Add(time.Second)); err != nil || n != 3 {
			t.Fatalf("pruned %d, %v; want 3", n, err)
		}
		if last, err := st.LastAuthChangeID(ctx); err != nil || last != 0 {
			t.Fatalf("last id after pruning all %d, %v; want 0", last, err)
		}
	})
}

// notAuthChanging lists the exported methods of *store.Store that change no user's
// authentication state (nothing another instance may hold in its cache of verified tokens:
// see authcache), each with why. Every other method must go through authTx and be the method
// of a case of TestAuthChangesLogged that logs a change.
var notAuthChanging = map[string]string{
	// Reads.
	"AuditEvents": "reads", "AuthChangesAfter": "reads", "CountUsers": "reads", "LastAuthChangeID": "reads",
	"ListUsers": "reads", "LiveSessions": "reads", "LoginIPKnown": "reads", "MigrationStatus": "reads",
	"RefreshTokenByID": "reads", "RekeyCollisions": "reads", "SessionByID": "reads", "SigningKeys": "reads",
	"UserByID": "reads", "UserByUsername": "reads", "UserSession": "reads", "UserSessionRefresh": "reads", "UsernameCollisions": "reads",
	"UsersByIDs": "reads", "UsersByUsernames": "reads", "Warnings": "reads", "Ping": "reads",
	"PoolStats": "reads", "AnalyzeUsers": "planner statistics",
	// The Store itself.
	"Close": "closes the Store", "Init": "serialises initialisation", "Migrate": "schema",
	"ListenAuthChanges": "the change feed", "OnAuthChange": "the change feed",
	"OnAvailabilityChange": "availability, not a user",
	// Writes that no cache depends on.
	"CreateUser":  "a new user: nobody holds a token of theirs yet",
	"ImportUsers": "new users with IDs not taken: nobody holds a token of theirs yet",
	"CreateSession": "a new session: no token of it was verified yet, and the user's row is " +
		"untouched (StartSession, which sets the last login, logs)",
	"CreateRefreshToken": "refresh tokens are read from the database at each refresh, never cached",
	"RotateRefreshToken": "retires a refresh token (never cached) and moves the session's expiry " +
		"later: a cached entry expires by the earlier one, and checks again",
	"RotateLiveRefreshToken": "as RotateRefreshToken",
	"TouchSession":           "the session's last use, which no cached check reads",
	"FlushExpired":           "deletes sessions already dead (expired, or revoked with a logged change) and throttle rows",
	"RecordLoginFailure":     "throttle rows", "ReserveLoginAttempt": "throttle rows",
	"ReleaseLoginAttempt": "throttle rows", "LoginSucceeded": "throttle rows and known IPs",
	"RecordAuditEvents": "the audit log", "PruneAuditEvents": "the audit log",
	"PruneAuthChanges": "the change log itself",
	"CreateSigningKey": "signing keys: the key ring reloads them itself", "SetSigningKeyPrivate": "signing keys",
	"ChangeSigningKeyPrivates": "signing keys", "DeleteSigningKey": "signing keys",
	"CreateAPIClient": "API clients: no cache holds a client before it exists",
	"UpdateAPIClient": "API clients: logged as a client's change (TestClientChangesLogged)",
	"DeleteAPIClient": "API clients: logged as a client's change (TestClientChangesLogged)",
	"OnClientChange":  "the change feed",
	"TouchAPIClient":  "the client's last use", "APIClientByID": "reads", "APIClients": "reads",
	// Shared Signals: streams, their queues and the SET key are no user's state; the events
	// themselves are written by authTx with the change they describe.
	"CreateStream": "SSF streams", "UpdateStream": "SSF streams", "DeleteStream": "SSF streams",
	"Streams": "reads", "StreamByID": "reads", "PendingEvents": "reads",
	"AddStreamEvent": "an event about a stream (verification), not a user",
	"AckEvents":      "SSF queue rows", "ClaimDeliveries": "SSF queue rows", "Delivered": "SSF queue rows",
	"Retry": "SSF queue rows", "TrimQueues": "SSF queue rows", "PruneSecurityEvents": "SSF events past retention",
	"SETSigningKey": "reads", "CreateSETSigningKey": "the SET key, never a token key",
	// TOTP: a pending factor changes no login; the step advance is its own guard, read each time.
	"CreateTOTPFactor": "a pending factor: logins ignore it until activated (ActivateTOTPFactor logs)",
	"AcceptTOTPStep":   "the last accepted step, read from the database at each check, never cached",
	"TOTPFactorOf":     "reads", "PlaintextTOTPSecrets": "reads",
	"ChangeTOTPSecrets":  "seals TOTP secrets at rest: the same secret, read at each check",
	"CreateMFAChallenge": "a login waiting for its second factor: no session or token yet",
	"MFAChallengeByHash": "reads", "RecoveryCodesLeft": "reads",
	"CompleteMFAChallenge": "uses a challenge and a step or recovery code: the session it " +
		"leads to is started (and logged) by StartSession",
	"ReplaceRecoveryCodes": "recovery codes, read from the database at each use, never cached",
	// WebAuthn: ceremonies are no session's state; a credential's counter and name are read at
	// each use; adding and removing one log (cases above).
	"CreateWebAuthnCeremony": "a ceremony begun: no session or token yet", "WebAuthnCeremonyByHash": "reads",
	"UseWebAuthnCeremony":      "uses a ceremony and a credential's counter: the session it leads to is started (and logged) by StartSession",
	"RenameWebAuthnCredential": "a credential's name: nothing of a login reads it",
	"WebAuthnCredentialsOf":    "reads", "WebAuthnCredentialByCredentialID": "reads",
	// Mail: the outbox, email tokens (used by the methods that make their change, such as
	// ResetPassword, which logs) and password reset requests are no user's state.
	"EnqueueMail": "mail outbox rows", "ClaimMail": "mail outbox rows", "MailSent": "mail outbox rows",
	"MailFailed": "mail outbox rows", "MailQueueStats": "reads", "MailByMessageID": "reads",
	"MailSecret": "a random key of the email tokens' HMAC", "FlushMail": "outbox rows, expired tokens and reset requests",
	"CreateEmailToken": "a one-time token: nothing is cached of it", "EmailTokenByHash": "reads",
	"RecordResetRequest": "a reset request row", "ResolveResetRequests": "reset tokens and their messages",
	"PendingResetRequests": "reads",
	// The address flows: a new user, a notice, the devices and the limits' rows change no login.
	"CreateUserMail":    "a new user: nobody holds a token of theirs yet",
	"SignUp":            "a new user (nobody holds a token of theirs yet), or mail to an existing one",
	"RecordLoginDevice": "the devices a user logged in from, which no cached check reads",
	"FlushMailRequests": "the mail limits' rows",
	// Test hooks (export_test.go).
	"MigrateTo": "test hook", "Exec": "test hook", "Dialect": "test hook", "QueryStrings": "test hook",
}

// checkClassified fails for an exported method of *store.Store that is neither in logged
// (tested to log a change) nor in notAuthChanging, or in both, and for a stale entry.
func checkClassified(t *testing.T, logged map[string]bool) {
	t.Helper()
	typ := reflect.TypeFor[*store.Store]()
	var methods []string
	for i := range typ.NumMethod() {
		m := typ.Method(i).Name
		methods = append(methods, m)
		_, not := notAuthChanging[m]
		switch {
		case logged[m] && not:
			t.Errorf("%s is tested to log an auth change but listed in notAuthChanging", m)
		case !logged[m] && !not:
			t.Errorf("(*store.Store).%s is not classified: if it can change a user's authentication state "+
				"(account, password, roles, sessions), write it with authTx and add a case that logs to "+
				"TestAuthChangesLogged; otherwise add it to notAuthChanging with why", m)
		}
	}
	for m := range notAuthChanging {
		if !slices.Contains(methods, m) {
			t.Errorf("notAuthChanging lists %s, which *store.Store does not have", m)
		}
	}
	for m := range logged {
		if !slices.Contains(methods, m) {
			t.Errorf("a case exercises %s, which *store.Store does not have", m)
		}
	}
}

// eachInstancePair is eachBackend with two Stores on one database, as two instances of the
// service have: st migrated it, other is opened beside it.
func eachInstancePair(t *testing.T, f func(t *testing.T, st, other *store.Store)) {
	t.Helper()
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dsn := storetest.DSN(t, backend)
			st, other := mustOpen(t, dsn), mustOpen(t, dsn)
			if err := st.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			f(t, st, other)
		})
	}
}

func mustOpen(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(dsn)
	if err != nil {
		t.Fatalf("open %s: %v", dsn, err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return st
}

// listenOn starts st.ListenAuthChanges until t ends and returns a channel that receives once
// a change commits after the listener is ready; nil on SQLite, which cannot listen.
func listenOn(t *testing.T, st *store.Store) <-chan struct{} {
	t.Helper()
	if st.Dialect() != "postgres" {
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	heard := make(chan struct{}, 1)
	readyc, stopped := make(chan struct{}), make(chan error, 1)
	go func() {
		first := true
		stopped <- st.ListenAuthChanges(ctx, func() {
			if first { // the call once LISTEN took effect
				first = false
				close(readyc)
				return
			}
			select {
			case heard <- struct{}{}:
			default:
			}
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-stopped; !errors.Is(err, context.Canceled) {
			t.Errorf("ListenAuthChanges ended with %v, want context.Canceled", err)
		}
	})
	select {
	case <-readyc:
	case err := <-stopped:
		stopped <- err
		t.Fatalf("ListenAuthChanges: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("ListenAuthChanges not ready in 10s")
	}
	return heard
}

// addressChange is a change of user id's address to new@example.org waiting for the token of
// hash.
func addressChange(id int64, hash string, at time.Time) store.AddressMail {
	return store.AddressMail{UserID: id, Email: "new@example.org", Change: true, Request: store.MailRequest{Kind: "change_email", UserID: id, At: at},
		Mail: store.UserMail{Tokens: []store.EmailToken{{Hash: hash, Purpose: store.PurposeChangeEmail, Email: "new@example.org",
			CreatedAt: at, ExpiresAt: at.Add(time.Hour)}}}}
}

// mustWebAuthnCredential registers a credential of u through a registration ceremony.
func mustWebAuthnCredential(t *testing.T, st *store.Store, u store.User) (store.WebAuthnCredential, error) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	err := st.CreateWebAuthnCeremony(ctx, store.WebAuthnCeremony{IDHash: "c1", Kind: "register", UserID: u.ID,
		Data: []byte("{}"), CreatedAt: now, ExpiresAt: now.Add(time.Minute)})
	if err != nil {
		return store.WebAuthnCredential{}, err
	}
	c, _, err := st.CreateWebAuthnCredential(ctx, "c1", "register", now, store.WebAuthnCredential{UserID: u.ID,
		CredentialID: "cred-1", UserHandle: "handle", Name: "Key", Data: []byte("{}")}, store.FirstFactorCodes{})
	return c, err
}

// TestWebAuthnCredentialRemovalLogged: removing a credential logs one change of its user, which
// the other instance sees.
func TestWebAuthnCredentialRemovalLogged(t *testing.T) {
	ctx := context.Background()
	eachInstancePair(t, func(t *testing.T, st, other *store.Store) {
		u := mustCreateUser(t, st, "alice", superuser)
		c, err := mustWebAuthnCredential(t, st, u)
		if err != nil {
			t.Fatal(err)
		}
		start, err := st.LastAuthChangeID(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteWebAuthnCredential(ctx, u.ID, c.ID); err != nil {
			t.Fatal(err)
		}
		got, err := other.AuthChangesAfter(ctx, start, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].UserID != u.ID {
			t.Fatalf("logged %+v, want one change of user %d after id %d", got, u.ID, start)
		}
	})
}

package audit_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

func TestUserUpdate(t *testing.T) {
	src := audit.Source{ActorID: 1, SessionID: "S", IP: "192.0.2.1", UserAgent: "ua"}
	before := store.User{ID: 5, Username: "bob", Email: "b@example.com", PasswordHash: "secret-hash-1", IsActive: true}
	for _, tc := range []struct {
		name   string
		change func(u *store.User)
		action audit.Action
		fields []string
	}{
		{"profile", func(u *store.User) { u.Email, u.FirstName = "c@example.com", "Bob" }, audit.UserUpdated, []string{"first_name", "email"}},
		{"password", func(u *store.User) { u.PasswordHash = "secret-hash-2" }, audit.PasswordChanged, []string{"password"}},
		{"deactivation wins", func(u *store.User) { u.PasswordHash, u.IsActive = "secret-hash-2", false }, audit.UserDeactivated, []string{"password", "is_active"}},
		{"reactivation", func(u *store.User) { u.IsActive = true }, audit.UserUpdated, []string{"is_active"}},
		{"privileges", func(u *store.User) { u.IsStaff, u.IsSuperuser, u.Username = true, true, "Bob" }, audit.UserUpdated, []string{"username", "is_staff", "is_superuser"}},
	} {
		b := before
		if tc.name == "reactivation" {
			b.IsActive = false
		}
		after := b
		tc.change(&after)
		events := src.UserUpdate()(b, after)
		if len(events) != 1 {
			t.Fatalf("%s: %d events, want 1", tc.name, len(events))
		}
		e := events[0]
		if e.Action != string(tc.action) || !slices.Equal(e.Fields, tc.fields) || e.TargetID != 5 || e.ActorID != 1 ||
			e.SessionID != "S" || e.IP != "192.0.2.1" || e.UserAgent != "ua" || e.Outcome != string(audit.Success) {
			t.Errorf("%s: %+v, want %s with fields %v", tc.name, e, tc.action, tc.fields)
		}
	}
}

func TestOutcomes(t *testing.T) {
	failures := []audit.Action{audit.LoginFailed, audit.LoginThrottled, audit.RefreshReuseDetected, audit.PasswordChangeFailed, audit.PasswordChangeThrottled, audit.ClientAuthFailed, audit.SSFDeliveryFailed, audit.MFAFailed, audit.MFAThrottled, audit.ReauthFailed, audit.ReauthThrottled, audit.MailFailed,
		audit.EmailChangeFailed, audit.SignUpExistingEmail, audit.LoginEmailUnverified, audit.MailLimited}
	for _, a := range audit.Actions {
		want := audit.Success
		if slices.Contains(failures, a) {
			want = audit.Failure
		}
		if e := audit.CLI("x").Event(a); e.Outcome != string(want) || e.Action != string(a) || e.UserAgent != "authapi x" || e.ActorID != 0 {
			t.Errorf("%s: %+v, want outcome %s", a, e, want)
		}
	}
}

func TestQueryCheck(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		q    audit.Query
		want []string // fields at fault
	}{
		{audit.Query{}, nil},
		{audit.Query{Limit: 1000, Offset: 5, UserID: 1, Actions: []audit.Action{audit.Logout}, Since: t0, Until: t0.Add(time.Second)}, nil},
		{audit.Query{Limit: 1001}, []string{"Limit"}},
		{audit.Query{Limit: -1, Offset: -1}, []string{"Limit", "Offset"}},
		{audit.Query{UserID: -3}, []string{"UserID"}},
		{audit.Query{Actions: []audit.Action{"login.failed", "nope"}}, []string{"Actions"}},
		{audit.Query{Since: t0, Until: t0}, []string{"Until"}},
		{audit.Query{Since: t0, Until: t0.Add(-time.Hour)}, []string{"Until"}},
	} {
		var got []string
		for member := range tc.q.Check() {
			got = append(got, string(member))
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("Check(%+v) faults %v, want %v", tc.q, got, tc.want)
		}
	}
}

func TestPrune(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, backend)
			now := time.Now().UTC()
			src := audit.Source{At: now.Add(-audit.DefaultRetention - time.Second)}
			old, kept := src.Event(audit.Logout), audit.Source{At: now.Add(-audit.DefaultRetention + time.Second)}.Event(audit.Logout)
			if err := st.RecordAuditEvents(ctx, old, kept); err != nil {
				t.Fatal(err)
			}
			if n, err := audit.Prune(ctx, st, now, 0); err != nil || n != 0 {
				t.Fatalf("retention 0: pruned %d, %v; want none", n, err)
			}
			if n, err := audit.Prune(ctx, st, now, audit.DefaultRetention); err != nil || n != 1 {
				t.Fatalf("pruned %d, %v; want 1", n, err)
			}
			events, total, err := audit.List(ctx, st, audit.Query{})
			if err != nil || total != 1 || !events[0].At.Equal(kept.At.Truncate(time.Microsecond)) {
				t.Fatalf("left %v (%d), %v; want the newer event", events, total, err)
			}
		})
	}
}

package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/keyring"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

// userAgent sends ua as the request's User-Agent.
func userAgent(ua string) client.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Header.Set("User-Agent", ua)
		return nil
	}
}

// auditPage reads one page of the audit log through the API as the superuser whose access
// token is access.
func (e *testEnv) auditPage(t *testing.T, access string, p client.ListAuditEventsParams) ([]client.AuditEvent, int64, *string) {
	t.Helper()
	r, err := e.client.ListAuditEventsWithResponse(context.Background(), &p, bearer(access))
	if err != nil {
		t.Fatal(err)
	}
	if r.JSON200 == nil {
		t.Fatalf("audit log: status %d, body %s", r.StatusCode(), r.Body)
	}
	total, err := strconv.ParseInt(r.HTTPResponse.Header.Get("X-Total-Count"), 10, 64)
	if err != nil {
		t.Fatalf("X-Total-Count: %v", err)
	}
	var link *string
	if l := r.HTTPResponse.Header.Get("Link"); l != "" {
		link = &l
	}
	return *r.JSON200, total, link
}

// auditLog follows the audit log as a test goes: next returns the events written since the
// last call, oldest first.
type auditLog struct {
	e      *testEnv
	access string
	last   int64
}

func (l *auditLog) next(t *testing.T) []client.AuditEvent {
	t.Helper()
	all, total, _ := l.e.auditPage(t, l.access, client.ListAuditEventsParams{Limit: ptr(1000)})
	if int64(len(all)) != total {
		t.Fatalf("audit log: %d events of %d; the test log outgrew a page", len(all), total)
	}
	var out []client.AuditEvent
	for _, ev := range all {
		if ev.Id > l.last {
			out = append(out, ev)
		}
	}
	slices.Reverse(out)
	if len(out) > 0 {
		l.last = out[len(out)-1].Id
	}
	return out
}

// want is an expected event; zero IDs and "" stand for null.
type want struct {
	action         audit.Action
	actor, target  int64
	session, agent string
	fields         []string
}

// expect checks that exactly the events wanted were written since the last call, in order.
func (l *auditLog) expect(t *testing.T, what string, wants ...want) []client.AuditEvent {
	t.Helper()
	got := l.next(t)
	if len(got) != len(wants) {
		t.Fatalf("%s: %d events %s, want %d", what, len(got), mustMarshal(t, got), len(wants))
	}
	for i, w := range wants {
		g := got[i]
		wantOutcome := client.AuditOutcome(w.action.Outcome())
		if string(g.Action) != string(w.action) || g.Outcome != wantOutcome || id(g.ActorId) != w.actor || id(g.TargetId) != w.target ||
			str(g.SessionId) != w.session || g.UserAgent != w.agent || !slices.Equal(g.Fields, orEmpty(w.fields)) {
			t.Errorf("%s: event %d = %s\nwant action %s outcome %s actor %d target %d session %q agent %q fields %v",
				what, i, mustMarshal(t, g), w.action, wantOutcome, w.actor, w.target, w.session, w.agent, w.fields)
		}
		if w.agent != "" && !strings.HasPrefix(w.agent, "authapi ") && g.Ip != "127.0.0.1" {
			t.Errorf("%s: event %d ip %q, want the client's", what, i, g.Ip)
		}
	}
	return got
}

// auditEvents reads the events of the actions (every event when none) from the store, newest
// first: for tests that have no superuser to read the log with.
func (e *testEnv) auditEvents(t *testing.T, actions ...audit.Action) []store.AuditEvent {
	t.Helper()
	events, total, err := audit.List(context.Background(), e.store, audit.Query{Actions: actions, Limit: audit.MaxLimit})
	if err != nil || int64(len(events)) != total {
		t.Fatalf("audit log: %d events of %d, %v", len(events), total, err)
	}
	return events
}

// api is an action as the generated client types it.
func api(a audit.Action) client.AuditAction { return client.AuditAction(a) }

func id(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func sessionOf(t *testing.T, access string) string {
	t.Helper()
	sid, _ := decodeSegment(t, access, 1)["sid"].(string)
	return sid
}

// loginAs logs in with a User-Agent, and returns the status and, on success, the pair.
func (e *testEnv) loginAs(t *testing.T, username, pw, ua string) (int, client.TokenPair) {
	t.Helper()
	r, err := e.client.ObtainTokenWithResponse(context.Background(), client.TokenObtainRequest{Username: username, Password: pw}, userAgent(ua))
	if err != nil {
		t.Fatal(err)
	}
	if r.JSON200 == nil {
		return r.StatusCode(), client.TokenPair{}
	}
	return r.StatusCode(), *r.JSON200
}

// TestAuditRecordsEachAction runs every audited operation through the API and checks the
// event it wrote: actor, target, session, client, outcome and fields.
func TestAuditRecordsEachAction(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		root := e.mustUser(t, "root", superRole)
		alice := e.mustUser(t, "alice", regular)
		_, rootPair := e.loginAs(t, "root", demoPassword, "root-agent")
		rootSID := sessionOf(t, rootPair.Access)
		log := &auditLog{e: e, access: rootPair.Access}
		log.expect(t, "root's login", want{audit.LoginSucceeded, root.ID, root.ID, rootSID, "root-agent", nil})

		status, a1 := e.loginAs(t, "alice", demoPassword, "alice-phone")
		if status != 200 {
			t.Fatalf("alice login: %d", status)
		}
		sid1 := sessionOf(t, a1.Access)
		log.expect(t, "login", want{audit.LoginSucceeded, alice.ID, alice.ID, sid1, "alice-phone", nil})

		if status, _ := e.loginAs(t, "ALICE", "wrong password", "guesser"); status != 401 {
			t.Fatalf("wrong password: %d", status)
		}
		log.expect(t, "wrong password", want{audit.LoginFailed, 0, alice.ID, "", "guesser", nil})
		if status, _ := e.loginAs(t, "mallory", "whatever", "guesser"); status != 401 {
			t.Fatalf("unknown user: %d", status)
		}
		log.expect(t, "unknown user", want{audit.LoginFailed, 0, 0, "", "guesser", nil})
		if _, err := e.store.UpdateUser(ctx, e.mustUser(t, "eve", regular).ID, deactivate, false, e.clock.Now()); err != nil {
			t.Fatal(err)
		}
		if status, _ := e.loginAs(t, "eve", demoPassword, "eve-agent"); status != 401 {
			t.Fatalf("inactive user: %d", status)
		}
		if got := log.next(t); len(got) != 1 || got[0].Action != api(audit.LoginFailed) || got[0].TargetId == nil {
			t.Fatalf("inactive user's login: %s", mustMarshal(t, got))
		}

		// Refresh writes nothing; a retired refresh token after the grace window revokes.
		r := refresh(t, e, a1.Refresh)
		if r.JSON200 == nil {
			t.Fatalf("refresh: %d %s", r.StatusCode(), r.Body)
		}
		log.expect(t, "refresh")
		e.clock.Add(reuseGrace + time.Second)
		reuse, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: a1.Refresh}, userAgent("thief"))
		mustNoErr(t, err)
		wantError(t, "reuse", reuse.StatusCode(), reuse.Body, 401, "token_not_valid")
		log.expect(t, "refresh token reuse", want{audit.RefreshReuseDetected, 0, alice.ID, sid1, "thief", nil})

		// Logout of another of one's sessions with its refresh token, from the laptop.
		_, laptop := e.loginAs(t, "alice", demoPassword, "alice-laptop")
		_, tablet := e.loginAs(t, "alice", demoPassword, "alice-tablet")
		laptopSID, tabletSID := sessionOf(t, laptop.Access), sessionOf(t, tablet.Access)
		log.expect(t, "two logins",
			want{audit.LoginSucceeded, alice.ID, alice.ID, laptopSID, "alice-laptop", nil},
			want{audit.LoginSucceeded, alice.ID, alice.ID, tabletSID, "alice-tablet", nil})
		lo, err := e.client.LogoutWithResponse(ctx, client.LogoutRequest{Refresh: tablet.Refresh}, bearer(laptop.Access), userAgent("alice-laptop"))
		if err != nil || lo.StatusCode() != 200 {
			t.Fatalf("logout: %v %d %s", err, lo.StatusCode(), lo.Body)
		}
		log.expect(t, "logout", want{audit.Logout, alice.ID, alice.ID, tabletSID, "alice-laptop", nil})

		_, desk := e.loginAs(t, "alice", demoPassword, "alice-desk")
		deskSID := sessionOf(t, desk.Access)
		log.next(t)
		rs, err := e.client.RevokeSessionWithResponse(ctx, deskSID, bearer(laptop.Access), userAgent("alice-laptop"))
		if err != nil || rs.StatusCode() != 204 {
			t.Fatalf("revoke session: %v %d %s", err, rs.StatusCode(), rs.Body)
		}
		log.expect(t, "session revoked", want{audit.SessionRevoked, alice.ID, alice.ID, deskSID, "alice-laptop", nil})

		la, err := e.client.LogoutAllPostWithResponse(ctx, bearer(laptop.Access), userAgent("alice-laptop"))
		if err != nil || la.StatusCode() != 205 {
			t.Fatalf("logout all: %v %d", err, la.StatusCode())
		}
		log.expect(t, "logout all", want{audit.LogoutAll, alice.ID, alice.ID, laptopSID, "alice-laptop", nil})

		// User management by root.
		as := []client.RequestEditorFn{bearer(rootPair.Access), userAgent("root-agent")}
		c, err := e.client.CreateUserWithResponse(ctx, newUserBody("bob"), as...)
		if err != nil || c.JSON201 == nil {
			t.Fatalf("create bob: %v %d %s", err, c.StatusCode(), c.Body)
		}
		bob := c.JSON201.Id
		log.expect(t, "create", want{audit.UserCreated, root.ID, bob, rootSID, "root-agent", nil})

		patch := func(what string, p client.UserPatch) {
			t.Helper()
			r, err := e.client.PartialUpdateUserWithResponse(ctx, bob, p, as...)
			if err != nil || r.StatusCode() != 200 {
				t.Fatalf("%s: %v %d %s", what, err, r.StatusCode(), r.Body)
			}
		}
		patch("update", client.UserPatch{FirstName: ptr("Robert"), Email: ptr("robert@example.com"), LastName: ptr("Builder")})
		log.expect(t, "update", want{audit.UserUpdated, root.ID, bob, rootSID, "root-agent", []string{"first_name", "email"}})
		patch("no change", client.UserPatch{FirstName: ptr("Robert")})
		log.expect(t, "an update that changes nothing")
		patch("set password", client.UserPatch{Password: ptr("a brand new passphrase")})
		log.expect(t, "set password", want{audit.PasswordChanged, root.ID, bob, rootSID, "root-agent", []string{"password"}})
		u, err := e.client.UpdateUserWithResponse(ctx, bob, client.UserUpdate{
			Username: "bob", FirstName: "Robert", LastName: "Builder", Email: "robert@example.com", IsActive: ptr(false), IsStaff: ptr(true),
		}, as...)
		if err != nil || u.StatusCode() != 200 {
			t.Fatalf("deactivate: %v %d %s", err, u.StatusCode(), u.Body)
		}
		log.expect(t, "deactivate", want{audit.UserDeactivated, root.ID, bob, rootSID, "root-agent", []string{"is_active", "is_staff"}})

		d, err := e.client.DeleteUserWithResponse(ctx, bob, as...)
		if err != nil || d.StatusCode() != 204 {
			t.Fatalf("delete: %v %d", err, d.StatusCode())
		}
		log.expect(t, "delete", want{audit.UserDeleted, root.ID, bob, rootSID, "root-agent", nil})
		d, _ = e.client.DeleteUserWithResponse(ctx, root.ID, as...)
		wantError(t, "delete the last superuser", d.StatusCode(), d.Body, 400, "invalid")
		log.expect(t, "a refused deletion")

		// A user's sessions, by root: the actor is root, the target alice.
		_, phone := e.loginAs(t, "alice", demoPassword, "alice-phone")
		_, pc := e.loginAs(t, "alice", demoPassword, "alice-pc")
		phoneSID, pcSID := sessionOf(t, phone.Access), sessionOf(t, pc.Access)
		log.next(t)
		rus, err := e.client.RevokeUserSessionWithResponse(ctx, alice.ID, phoneSID, as...)
		if err != nil || rus.StatusCode() != 204 {
			t.Fatalf("revoke alice's session: %v %d %s", err, rus.StatusCode(), rus.Body)
		}
		log.expect(t, "session revoked by root", want{audit.SessionRevoked, root.ID, alice.ID, phoneSID, "root-agent", nil})
		rus, _ = e.client.RevokeUserSessionWithResponse(ctx, alice.ID, phoneSID, as...)
		wantError(t, "revoke it again", rus.StatusCode(), rus.Body, 404, "not_found")
		log.expect(t, "a revocation that found nothing")
		for range 2 { // the second finds no live session: no event
			lue, err := e.client.LogoutUserEverywhereWithResponse(ctx, alice.ID, as...)
			if err != nil || lue.StatusCode() != 204 {
				t.Fatalf("log alice out everywhere: %v %d %s", err, lue.StatusCode(), lue.Body)
			}
			if live := e.liveSessionIDs(t, alice.ID); len(live) != 0 {
				t.Fatalf("alice's live sessions after logout_all by root: %v (pc %s)", live, pcSID)
			}
		}
		log.expect(t, "logout_all by root", want{audit.LogoutAll, root.ID, alice.ID, rootSID, "root-agent", nil})

		// Alice changes her password: a wrong old password first.
		_, own := e.loginAs(t, "alice", demoPassword, "alice-own")
		ownSID := sessionOf(t, own.Access)
		log.next(t)
		asAlice := []client.RequestEditorFn{bearer(own.Access), userAgent("alice-own")}
		cp, err := e.client.ChangePasswordWithResponse(ctx, client.PasswordChange{OldPassword: "wrong password", NewPassword: newPassphrase}, asAlice...)
		mustNoErr(t, err)
		wantError(t, "wrong old password", cp.StatusCode(), cp.Body, 400, "invalid")
		log.expect(t, "wrong old password", want{audit.PasswordChangeFailed, alice.ID, alice.ID, ownSID, "alice-own", nil})
		cp, err = e.client.ChangePasswordWithResponse(ctx, client.PasswordChange{OldPassword: demoPassword, NewPassword: "short"}, asAlice...)
		mustNoErr(t, err)
		wantError(t, "a new password the policy refuses", cp.StatusCode(), cp.Body, 400, "invalid_password")
		log.expect(t, "a new password the policy refuses")
		cp, err = e.client.ChangePasswordWithResponse(ctx, client.PasswordChange{OldPassword: demoPassword, NewPassword: newPassphrase}, asAlice...)
		if err != nil || cp.JSON200 == nil {
			t.Fatalf("change password: %v %d %s", err, cp.StatusCode(), cp.Body)
		}
		log.expect(t, "password change", want{audit.PasswordChanged, alice.ID, alice.ID, ownSID, "alice-own", []string{"password"}})
		// Alice goes on in the change's new session.
		asAlice[0], ownSID = bearer(cp.JSON200.Access), sessionOf(t, cp.JSON200.Access)

		// Throttled: alice's successful logins (and password check) forgot her failures from
		// this IP; five more reach the limit, and the sixth attempt, right password or not,
		// is throttled, a login or a password change.
		for i := range 5 {
			if status, _ := e.loginAs(t, "alice", "wrong password", "guesser"); status != 401 {
				t.Fatalf("failure %d: %d", i, status)
			}
		}
		if status, _ := e.loginAs(t, "alice", newPassphrase, "alice-phone"); status != 429 {
			t.Fatalf("sixth attempt: %d, want 429", status)
		}
		cp, err = e.client.ChangePasswordWithResponse(ctx, client.PasswordChange{OldPassword: newPassphrase, NewPassword: "yet another passphrase"}, asAlice...)
		mustNoErr(t, err)
		wantError(t, "throttled password change", cp.StatusCode(), cp.Body, 429, "throttled")
		failed := want{audit.LoginFailed, 0, alice.ID, "", "guesser", nil}
		log.expect(t, "throttled", failed, failed, failed, failed, failed,
			want{audit.LoginThrottled, 0, alice.ID, "", "alice-phone", nil},
			want{audit.PasswordChangeThrottled, alice.ID, alice.ID, ownSID, "alice-own", nil})

		// Key rotation, as the CLI does it.
		rot, err := keyring.Rotate(ctx, e.store, keyring.Options{Retention: time.Hour}, audit.CLI("keys rotate").Event(audit.KeyRotated))
		if err != nil {
			t.Fatal(err)
		}
		got := log.expect(t, "key rotation", want{audit.KeyRotated, 0, 0, "", "authapi keys rotate", nil})
		if str(got[0].KeyId) != rot.New.ID || got[0].Ip != "" {
			t.Errorf("key rotation event: key %q ip %q, want key %q and no ip", str(got[0].KeyId), got[0].Ip, rot.New.ID)
		}
		// And through the API, by root.
		for _, now := range []bool{false, true} {
			r, err := e.client.RotateSigningKeyWithResponse(ctx, client.KeyRotateRequest{Now: &now}, as...)
			if err != nil || r.JSON201 == nil {
				t.Fatalf("rotate (now %v): %v %d %s", now, err, r.StatusCode(), r.Body)
			}
			got = log.expect(t, "key rotation by root", want{audit.KeyRotated, root.ID, 0, rootSID, "root-agent", nil})
			if str(got[0].KeyId) != r.JSON201.Key.Kid {
				t.Errorf("key rotation by root: key %q, want %q", str(got[0].KeyId), r.JSON201.Key.Kid)
			}
		}
	})
}

// TestAuditActionsMatchSpec keeps the audit package's actions and the spec's enum one list.
func TestAuditActionsMatchSpec(t *testing.T) {
	spec, err := gen.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	var inSpec, inCode []string
	for _, v := range spec.Components.Schemas["AuditAction"].Value.Enum {
		inSpec = append(inSpec, v.(string))
	}
	for _, a := range audit.Actions {
		inCode = append(inCode, string(a))
	}
	if !slices.Equal(inSpec, inCode) {
		t.Errorf("spec's AuditAction %v, audit.Actions %v", inSpec, inCode)
	}
	var outcomes []string
	for _, v := range spec.Components.Schemas["AuditOutcome"].Value.Enum {
		outcomes = append(outcomes, v.(string))
	}
	if !slices.Equal(outcomes, []string{string(audit.Success), string(audit.Failure)}) {
		t.Errorf("spec's AuditOutcome %v", outcomes)
	}
}

// TestAuditPermissions: only superusers read the audit log.
func TestAuditPermissions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		for _, tc := range []struct {
			who  string
			role role
			code string
		}{{"", regular, "not_authenticated"}, {"alice", regular, "permission_denied"}, {"staff", staffRole, "permission_denied"}, {"root", superRole, ""}} {
			var auth []client.RequestEditorFn
			if tc.who != "" {
				e.mustUser(t, tc.who, tc.role)
				auth = append(auth, bearer(e.mustLogin(t, tc.who).Access))
			}
			r, err := e.client.ListAuditEventsWithResponse(ctx, nil, auth...)
			mustNoErr(t, err)
			switch tc.code {
			case "":
				if r.JSON200 == nil || len(*r.JSON200) == 0 {
					t.Errorf("root: %d %s", r.StatusCode(), r.Body)
				}
			case "not_authenticated":
				wantError(t, "anonymous", r.StatusCode(), r.Body, 401, tc.code)
			default:
				wantError(t, tc.who, r.StatusCode(), r.Body, 403, tc.code)
			}
		}
	})
}

// TestAuditFiltersAndPaging checks every filter and their combinations against the whole log
// filtered here, and pages through each result by its Link header.
func TestAuditFiltersAndPaging(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "root", superRole)
		access := e.mustLogin(t, "root").Access
		// 40 events over 40 minutes before now, some sharing a time, among three users.
		start := e.clock.Now().Add(-time.Hour)
		for i := range 40 {
			src := audit.Source{At: start.Add(time.Duration(i/2*2) * time.Minute), ActorID: int64(i%3 + 10), IP: "192.0.2.9"}
			ev := src.Event(audit.Actions[i%len(audit.Actions)])
			ev.TargetID = int64((i+1)%3 + 10)
			if err := e.store.RecordAuditEvents(ctx, ev); err != nil {
				t.Fatal(err)
			}
		}
		all, total, link := e.auditPage(t, access, client.ListAuditEventsParams{Limit: ptr(1000)})
		if total != 41 || len(all) != 41 || link != nil {
			t.Fatalf("whole log: %d of %d, link %v; want 41, no link", len(all), total, link)
		}
		for i := 1; i < len(all); i++ {
			a, b := all[i-1], all[i]
			if a.Time.Before(b.Time) || a.Time.Equal(b.Time) && a.Id < b.Id {
				t.Fatalf("not newest first at %d: %v #%d before %v #%d", i, a.Time, a.Id, b.Time, b.Id)
			}
		}

		at := func(min int) *time.Time { v := start.Add(time.Duration(min) * time.Minute); return &v }
		for _, tc := range []struct {
			name string
			p    client.ListAuditEventsParams
			keep func(ev client.AuditEvent) bool
		}{
			{"user", client.ListAuditEventsParams{UserId: ptr[int64](11)}, func(ev client.AuditEvent) bool { return id(ev.ActorId) == 11 || id(ev.TargetId) == 11 }},
			{"one action", client.ListAuditEventsParams{Action: &[]client.AuditAction{api(audit.LoginFailed)}}, func(ev client.AuditEvent) bool { return ev.Action == api(audit.LoginFailed) }},
			{"two actions", client.ListAuditEventsParams{Action: &[]client.AuditAction{api(audit.Logout), api(audit.KeyRotated)}},
				func(ev client.AuditEvent) bool {
					return ev.Action == api(audit.Logout) || ev.Action == api(audit.KeyRotated)
				}},
			{"since", client.ListAuditEventsParams{Since: at(30)}, func(ev client.AuditEvent) bool { return !ev.Time.Before(*at(30)) }},
			{"until", client.ListAuditEventsParams{Until: at(10)}, func(ev client.AuditEvent) bool { return ev.Time.Before(*at(10)) }},
			{"everything", client.ListAuditEventsParams{UserId: ptr[int64](10), Since: at(4), Until: at(36),
				Action: &[]client.AuditAction{api(audit.LoginSucceeded), api(audit.UserCreated), api(audit.SessionRevoked), api(audit.Logout)}},
				func(ev client.AuditEvent) bool {
					return (id(ev.ActorId) == 10 || id(ev.TargetId) == 10) && !ev.Time.Before(*at(4)) && ev.Time.Before(*at(36)) &&
						slices.Contains([]client.AuditAction{api(audit.LoginSucceeded), api(audit.UserCreated), api(audit.SessionRevoked), api(audit.Logout)}, ev.Action)
				}},
			{"nobody", client.ListAuditEventsParams{UserId: ptr[int64](999)}, func(client.AuditEvent) bool { return false }},
		} {
			var want []int64
			for _, ev := range all {
				if tc.keep(ev) {
					want = append(want, ev.Id)
				}
			}
			if len(want) == 0 && tc.name != "nobody" {
				t.Fatalf("%s: the fixture selects nothing", tc.name)
			}
			// Page by 3, following Link, which must carry the filters.
			p := tc.p
			p.Limit = ptr(3)
			page, total, link := e.auditPage(t, access, p)
			var got []int64
			for pages := 1; ; pages++ {
				if total != int64(len(want)) {
					t.Fatalf("%s: X-Total-Count %d, want %d", tc.name, total, len(want))
				}
				for _, ev := range page {
					got = append(got, ev.Id)
				}
				if link == nil {
					break
				}
				if pages > 20 {
					t.Fatalf("%s: Link never ends", tc.name)
				}
				page, total, link = e.followLink(t, access, *link, tc.p)
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s: %v, want %v", tc.name, got, want)
			}
		}
	})
}

var linkNext = regexp.MustCompile(`^<([^>]+)>; rel="next"$`)

// followLink reads the page a Link header points at, checking that it keeps the filters of p.
func (e *testEnv) followLink(t *testing.T, access, link string, p client.ListAuditEventsParams) ([]client.AuditEvent, int64, *string) {
	t.Helper()
	m := linkNext.FindStringSubmatch(link)
	if m == nil {
		t.Fatalf("Link %q", link)
	}
	u, err := url.Parse(m[1])
	if err != nil || u.Path != "/api/v1/audit/" {
		t.Fatalf("Link %q: %v", link, err)
	}
	q := u.Query()
	if p.UserId != nil && q.Get("user_id") != strconv.FormatInt(*p.UserId, 10) ||
		p.Action != nil && len(q["action"]) != len(*p.Action) ||
		p.Since != nil && q.Get("since") == "" || p.Until != nil && q.Get("until") == "" {
		t.Fatalf("Link %q lost the filters %+v", link, p)
	}
	resp, body := e.do(t, http.MethodGet, m[1], "", "", "Authorization", "Bearer "+access)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", m[1], resp.StatusCode, body)
	}
	var page []client.AuditEvent
	if err := json.Unmarshal(body, &page); err != nil {
		t.Fatal(err)
	}
	total, _ := strconv.ParseInt(resp.Header.Get("X-Total-Count"), 10, 64)
	var next *string
	if l := resp.Header.Get("Link"); l != "" {
		next = &l
	}
	return page, total, next
}

func TestAuditBadFilters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "root", superRole)
		access := e.mustLogin(t, "root").Access
		many := strings.Repeat("action=logout&", 21)
		for _, tc := range []struct{ query, field string }{
			{"since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", "until"},
			{"since=2026-01-01T00:00:00Z&until=2026-01-01T00:00:00Z", "until"},
			{"since=yesterday", "since"},
			{"until=2026-13-01T00:00:00Z", "until"},
			{"action=login.guessed", "action"},
			{"action=", "action"},
			{many, "action"},
			{"user_id=0", "user_id"},
			{"user_id=alice", "user_id"},
			{"limit=0", "limit"},
			{"limit=1001", "limit"},
			{"offset=-1", "offset"},
		} {
			resp, body := e.do(t, http.MethodGet, "/api/v1/audit/?"+tc.query, "", "", "Authorization", "Bearer "+access)
			got := wantError(t, tc.query, resp.StatusCode, body, 400, "invalid")
			if got.Fields == nil || (*got.Fields)[tc.field] == nil {
				t.Errorf("%s: fields %v, want %q named", tc.query, got.Fields, tc.field)
			}
		}
	})
}

// TestAuthenticatedRequestsWriteNoAuditEvents keeps the hot path free of audit writes.
func TestAuthenticatedRequestsWriteNoAuditEvents(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "root", superRole)
		pair := e.mustLogin(t, "root")
		_, before, _ := e.auditPage(t, pair.Access, client.ListAuditEventsParams{})
		for range 5 {
			for _, status := range []func() (int, error){
				func() (int, error) {
					r, err := e.client.WelcomeWithResponse(ctx, bearer(pair.Access))
					return r.StatusCode(), err
				},
				func() (int, error) {
					r, err := e.client.GetAccountWithResponse(ctx, bearer(pair.Access))
					return r.StatusCode(), err
				},
				func() (int, error) {
					r, err := e.client.ListSessionsWithResponse(ctx, bearer(pair.Access))
					return r.StatusCode(), err
				},
				func() (int, error) {
					r, err := e.client.ListUsersWithResponse(ctx, nil, bearer(pair.Access))
					return r.StatusCode(), err
				},
				func() (int, error) {
					r, err := e.client.VerifyTokenWithResponse(ctx, client.TokenVerifyRequest{Token: pair.Refresh}, bearer(pair.Access))
					return r.StatusCode(), err
				},
			} {
				if s, err := status(); err != nil || s != 200 {
					t.Fatalf("request: %d %v", s, err)
				}
			}
		}
		if _, after, _ := e.auditPage(t, pair.Access, client.ListAuditEventsParams{}); after != before {
			t.Errorf("authenticated reads wrote %d audit events", after-before)
		}
	})
}

// TestAuditEventFailureRollsBackTheOperation makes the database refuse the events the API
// writes, and checks that each operation then fails whole: nothing it would have changed has
// changed. The events of changes are refused first, while a login's or a password change's
// reservation (a failure's event, withdrawn when the password is right) can still be written,
// so that those operations reach the change they make; then the failures' events.
func TestAuditEventFailureRollsBackTheOperation(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		root := e.mustUser(t, "root", superRole)
		alice := e.mustUser(t, "alice", regular)
		carol := e.mustUser(t, "carol", regular)
		rootPair := e.mustLogin(t, "root")
		a1, a2, a3 := e.mustLogin(t, "alice"), e.mustLogin(t, "alice"), e.mustLogin(t, "alice")
		keysBefore, err := e.store.SigningKeys(ctx)
		mustNoErr(t, err)
		_, eventsBefore, _ := e.auditPage(t, rootPair.Access, client.ListAuditEventsParams{})
		refuse := func(outcome audit.Outcome) {
			for _, a := range audit.Actions {
				if a.Outcome() == outcome {
					storetest.RefuseAuditEvents(t, e.dsn, string(a))
				}
			}
		}
		internal := func(what string, status int, body []byte) {
			t.Helper()
			wantError(t, what, status, body, 500, "internal_error")
		}
		live := func(what string, sid string) {
			t.Helper()
			s, err := e.store.SessionByID(ctx, sid)
			if err != nil || s.RevokedAt != nil {
				t.Errorf("%s: session %s %+v, %v; want it live", what, sid, s, err)
			}
		}
		noFailuresCounted := func(what, account string) {
			t.Helper()
			now := e.clock.Now()
			if res, err := e.store.ReserveLoginAttempt(ctx, store.LoginAttempt{Account: account, IP: "127.0.0.1", At: now, Since: now.Add(-time.Hour), AccountLimit: 9, IPLimit: 9}); err != nil ||
				len(res.AccountFailures) != 0 {
				t.Errorf("%s: counted failures %+v, %v", what, res, err)
			}
		}

		refuse(audit.Success)
		r, err := e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: "carol", Password: demoPassword})
		mustNoErr(t, err)
		internal("login", r.StatusCode(), r.Body)
		if s, _ := e.store.LiveSessions(ctx, carol.ID, e.clock.Now()); len(s) != 0 {
			t.Errorf("login: carol has sessions %+v", s)
		}
		if u, _ := e.store.UserByID(ctx, carol.ID); u.LastLogin != nil {
			t.Errorf("login: carol's last login set")
		}

		lo, err := e.client.LogoutWithResponse(ctx, client.LogoutRequest{Refresh: a2.Refresh}, bearer(a1.Access))
		mustNoErr(t, err)
		internal("logout", lo.StatusCode(), lo.Body)
		live("logout", sessionOf(t, a2.Access))
		rs, err := e.client.RevokeSessionWithResponse(ctx, sessionOf(t, a3.Access), bearer(a1.Access))
		mustNoErr(t, err)
		internal("revoke session", rs.StatusCode(), rs.Body)
		live("revoke session", sessionOf(t, a3.Access))
		la, err := e.client.LogoutAllWithResponse(ctx, bearer(a1.Access))
		mustNoErr(t, err)
		internal("logout all", la.StatusCode(), la.Body)
		for _, p := range []client.TokenPair{a1, a2, a3} {
			live("logout all", sessionOf(t, p.Access))
		}

		// Her own password: the old one is right, the change is made and rolled back.
		cp := e.changePassword(t, a1.Access, demoPassword, newPassphrase)
		internal("password change", cp.StatusCode(), cp.Body)
		if u, _ := e.store.UserByID(ctx, alice.ID); u.PasswordHash != alice.PasswordHash {
			t.Errorf("password change: alice's hash changed")
		}
		for _, p := range []client.TokenPair{a2, a3} {
			live("password change", sessionOf(t, p.Access))
		}

		as := bearer(rootPair.Access)
		// A user's sessions, by root.
		rus, err := e.client.RevokeUserSessionWithResponse(ctx, alice.ID, sessionOf(t, a2.Access), as)
		mustNoErr(t, err)
		internal("revoke a user's session", rus.StatusCode(), rus.Body)
		live("revoke a user's session", sessionOf(t, a2.Access))
		lue, err := e.client.LogoutUserEverywhereWithResponse(ctx, alice.ID, as)
		mustNoErr(t, err)
		internal("log a user out everywhere", lue.StatusCode(), lue.Body)
		for _, p := range []client.TokenPair{a1, a2, a3} {
			live("log a user out everywhere", sessionOf(t, p.Access))
		}

		c, err := e.client.CreateUserWithResponse(ctx, newUserBody("dave"), as)
		mustNoErr(t, err)
		internal("create", c.StatusCode(), c.Body)
		if _, err := e.store.UserByUsername(ctx, "dave"); err == nil {
			t.Errorf("create: dave exists")
		}
		for _, p := range []client.UserPatch{{IsActive: ptr(false)}, {Password: ptr("a brand new passphrase")}, {FirstName: ptr("Alicia")}} {
			u, err := e.client.PartialUpdateUserWithResponse(ctx, alice.ID, p, as)
			mustNoErr(t, err)
			internal(fmt.Sprintf("update %s", mustMarshal(t, p)), u.StatusCode(), u.Body)
		}
		if u, _ := e.store.UserByID(ctx, alice.ID); !u.IsActive || u.FirstName != alice.FirstName || u.PasswordHash != alice.PasswordHash {
			t.Errorf("update: alice changed to %+v", u)
		}
		live("deactivation", sessionOf(t, a1.Access))
		d, err := e.client.DeleteUserWithResponse(ctx, alice.ID, as)
		mustNoErr(t, err)
		internal("delete", d.StatusCode(), d.Body)
		if _, err := e.store.UserByID(ctx, alice.ID); err != nil {
			t.Errorf("delete: alice gone: %v", err)
		}
		if _, err := keyring.Rotate(ctx, e.store, keyring.Options{Retention: time.Hour}, audit.CLI("keys rotate").Event(audit.KeyRotated)); err == nil {
			t.Errorf("key rotation succeeded without its event")
		}
		for _, now := range []bool{false, true} {
			r, err := e.client.RotateSigningKeyWithResponse(ctx, client.KeyRotateRequest{Now: &now}, as)
			mustNoErr(t, err)
			internal(fmt.Sprintf("key rotation by root (now %v)", now), r.StatusCode(), r.Body)
		}
		if keys, _ := e.store.SigningKeys(ctx); len(keys) != len(keysBefore) {
			t.Errorf("key rotation: %d keys, want %d", len(keys), len(keysBefore))
		}

		refuse(audit.Failure)
		r, err = e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: "carol", Password: "wrong password"})
		mustNoErr(t, err)
		internal("failed login", r.StatusCode(), r.Body)
		noFailuresCounted("failed login", "carol")
		cp = e.changePassword(t, a1.Access, "wrong password", newPassphrase)
		internal("failed password change", cp.StatusCode(), cp.Body)
		noFailuresCounted("failed password change", "alice")
		next := refresh(t, e, a3.Refresh)
		if next.JSON200 == nil {
			t.Fatalf("refresh: %d %s", next.StatusCode(), next.Body)
		}
		e.clock.Add(reuseGrace + time.Second)
		reuse := refresh(t, e, a3.Refresh)
		internal("refresh token reuse", reuse.StatusCode(), reuse.Body)
		live("refresh token reuse", sessionOf(t, a3.Access))

		if _, after, _ := e.auditPage(t, rootPair.Access, client.ListAuditEventsParams{}); after != eventsBefore {
			t.Errorf("%d events written", after-eventsBefore)
		}
		// Everything still works once events can be written again; here: a read as root.
		if w, _ := e.client.GetUserWithResponse(ctx, root.ID, as); w.StatusCode() != 200 {
			t.Errorf("root after the failures: %d", w.StatusCode())
		}
	})
}

// TestConcurrentLoginsAllAudited logs users in at once, on two instances sharing the
// database, and counts one event per login and per failure: none lost, none doubled.
func TestConcurrentLoginsAllAudited(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		other := newTestEnv(t, e.backend, withDSN(e.dsn), withHasher(e.hasher))
		e.mustUser(t, "root", superRole)
		const n = 12
		users := make([]store.User, n)
		for i := range users {
			users[i] = e.mustUser(t, fmt.Sprintf("user%d", i), regular)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 3*n)
		for i, u := range users {
			// Two logins and a failure each, spread over both instances.
			for j, pw := range []string{demoPassword, demoPassword, "wrong password"} {
				env := []*testEnv{e, other}[(i+j)%2]
				wg.Go(func() {
					r, err := env.client.ObtainTokenWithResponse(context.Background(), client.TokenObtainRequest{Username: u.Username, Password: pw})
					switch {
					case err != nil:
						errs <- err
					case (pw == demoPassword) != (r.StatusCode() == 200):
						errs <- fmt.Errorf("%s: %d %s", u.Username, r.StatusCode(), r.Body)
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		access := e.mustLogin(t, "root").Access
		count := func(p client.ListAuditEventsParams) int64 {
			_, total, _ := e.auditPage(t, access, p)
			return total
		}
		if got := count(client.ListAuditEventsParams{Action: &[]client.AuditAction{api(audit.LoginSucceeded)}}); got != 2*n+1 {
			t.Errorf("%d login.succeeded events, want %d", got, 2*n+1)
		}
		if got := count(client.ListAuditEventsParams{Action: &[]client.AuditAction{api(audit.LoginFailed)}}); got != n {
			t.Errorf("%d login.failed events, want %d", got, n)
		}
		for _, u := range users {
			if got := count(client.ListAuditEventsParams{UserId: &u.ID}); got != 3 {
				t.Errorf("%s: %d events, want 3", u.Username, got)
			}
		}
	})
}

// TestAuditHoldsNoSecrets runs a user's whole life through the API and then searches every
// stored audit row for the passwords, hashes and tokens it involved.
func TestAuditHoldsNoSecrets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "root", superRole)
		root := e.mustLogin(t, "root")
		as := bearer(root.Access)
		const first, second, wrong, third = "first Secret passphrase 1", "second Secret passphrase 2", "wrong Secret passphrase 3", "third Secret passphrase 4"
		body := newUserBody("bob")
		body.Password = first
		c, err := e.client.CreateUserWithResponse(ctx, body, as)
		if err != nil || c.JSON201 == nil {
			t.Fatalf("create: %v %s", err, c.Body)
		}
		bob := c.JSON201.Id
		secrets := []string{first, second, wrong, third, root.Access, root.Refresh}
		hashes := func() {
			u, err := e.store.UserByID(ctx, bob)
			mustNoErr(t, err)
			secrets = append(secrets, u.PasswordHash)
		}
		hashes()
		login := func(pw string) client.TokenPair {
			t.Helper()
			status, pair := e.loginAs(t, "bob", pw, "bob-agent")
			if status != 200 {
				t.Fatalf("login: %d", status)
			}
			secrets = append(secrets, pair.Access, pair.Refresh)
			return pair
		}
		p1 := login(first)
		if status, _ := e.loginAs(t, "bob", wrong, "bob-agent"); status != 401 {
			t.Fatalf("wrong password: %d", status)
		}
		if status, _ := e.loginAs(t, wrong, first, "bob-agent"); status != 401 { // a password typed as the username
			t.Fatalf("password as username: %d", status)
		}
		r := refresh(t, e, p1.Refresh)
		if r.JSON200 == nil {
			t.Fatalf("refresh: %s", r.Body)
		}
		secrets = append(secrets, r.JSON200.Access, *r.JSON200.Refresh)
		e.clock.Add(reuseGrace + time.Second)
		refresh(t, e, p1.Refresh) // reuse: revokes
		p2 := login(first)
		p3 := login(first)
		if lo, _ := e.client.LogoutWithResponse(ctx, client.LogoutRequest{Refresh: p3.Refresh}, bearer(p2.Access)); lo.StatusCode() != 200 {
			t.Fatalf("logout: %d", lo.StatusCode())
		}
		if pu, _ := e.client.PartialUpdateUserWithResponse(ctx, bob, client.UserPatch{Password: ptr(second), Email: ptr("b2@example.com")}, as); pu.StatusCode() != 200 {
			t.Fatalf("set password: %d %s", pu.StatusCode(), pu.Body)
		}
		hashes()
		p4 := login(second)
		if r := e.changePassword(t, p4.Access, wrong, third); r.StatusCode() != 400 {
			t.Fatalf("wrong old password: %d %s", r.StatusCode(), r.Body)
		}
		cp := e.changePassword(t, p4.Access, second, third)
		if cp.JSON200 == nil {
			t.Fatalf("change password: %d %s", cp.StatusCode(), cp.Body)
		}
		secrets = append(secrets, cp.JSON200.Access, cp.JSON200.Refresh)
		hashes()
		if la, _ := e.client.LogoutAllWithResponse(ctx, bearer(cp.JSON200.Access)); la.StatusCode() != 205 {
			t.Fatalf("logout all: %d", la.StatusCode())
		}
		if d, _ := e.client.DeleteUserWithResponse(ctx, bob, as); d.StatusCode() != 204 {
			t.Fatalf("delete: %d", d.StatusCode())
		}
		// Each token's signature, and its ID, on its own too.
		for _, tok := range slices.Clone(secrets[4:]) {
			if parts := strings.Split(tok, "."); len(parts) == 3 {
				secrets = append(secrets, parts[2])
				if jti, _ := decodeSegment(t, tok, 1)["jti"].(string); jti != "" {
					secrets = append(secrets, jti)
				}
			}
		}

		rows := storetest.Rows(t, e.dsn, "audit_events")
		if len(rows) < 10 {
			t.Fatalf("only %d audit rows: %v", len(rows), rows)
		}
		for _, row := range rows {
			for _, s := range secrets {
				if s != "" && strings.Contains(strings.ToLower(row), strings.ToLower(s)) {
					t.Errorf("audit row holds a secret %.12q…: %s", s, row)
				}
			}
			if strings.Contains(strings.ToLower(row), "secret") {
				t.Errorf("audit row holds part of a password: %s", row)
			}
		}
	})
}

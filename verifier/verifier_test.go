package verifier

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/testclock"
	"github.com/authapi/authapi/internal/token/tokentest"
)

var start = time.Unix(1_800_000_000, 0)

type env struct {
	t     testing.TB
	clock *testclock.Clock
	iss   *fakeIssuer
	v     *Verifier
	polls chan error
	cfg   Config
}

// newEnv starts a verifier against a fake issuer; withStream gives it client credentials.
func newEnv(t testing.TB, withStream bool, opts ...func(*Config)) *env {
	t.Helper()
	clock := testclock.New(start)
	e := &env{t: t, clock: clock, iss: newFakeIssuer(t, clock), polls: make(chan error, 1)}
	e.cfg = Config{Issuer: e.iss.srv.URL, Audience: []string{fakeAudience}, Now: clock.Now, Leeway: time.Second, StreamName: "test"}
	if withStream {
		e.cfg.ClientID, e.cfg.ClientSecret = fakeClientID, fakeClientSecret
	}
	for _, o := range opts {
		o(&e.cfg)
	}
	e.v = e.start(e.cfg)
	return e
}

func (e *env) start(cfg Config) *Verifier {
	e.t.Helper()
	v, err := newVerifier(context.Background(), cfg, func(s *stream) {
		s.afterPoll = func(err error) {
			select {
			case e.polls <- err:
			default:
			}
		}
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = v.Close() })
	return v
}

// heard waits until a poll sent at the clock's current time has been answered and applied.
func (e *env) heard() {
	e.t.Helper()
	deadline := time.After(30 * time.Second) // a safety net for a hang, not synchronisation
	for {
		if h := e.v.Health(); !h.LastPoll.Before(e.clock.Now()) && !h.Stale {
			return
		}
		e.iss.kick()
		select {
		case <-e.polls:
		case <-deadline:
			e.t.Fatalf("stream not heard from: %+v", e.v.Health())
		}
	}
}

// fresh waits until the stream is heard from up to the clock's time (a status check and a
// poll since).
func (e *env) fresh() {
	e.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if h := e.v.Health(); !h.Stale && !h.LastHeard.Before(e.clock.Now()) {
			return
		}
		e.iss.kick()
		select {
		case <-e.polls:
		case <-deadline:
			e.t.Fatalf("stream not fresh: %+v", e.v.Health())
		}
	}
}

// nextPoll waits until a poll sent after now has been answered.
func (e *env) nextPoll() {
	e.t.Helper()
	e.clock.Add(time.Millisecond)
	e.heard()
}

// applied waits until the verifier has applied n events.
func (e *env) applied(n uint64) {
	e.t.Helper()
	deadline := time.After(30 * time.Second)
	for e.v.Health().Events < n {
		select {
		case <-e.polls:
		case <-deadline:
			e.t.Fatalf("events not applied: %+v", e.v.Health())
		}
	}
}

func (e *env) verify(raw string) error {
	_, err := e.v.Verify(context.Background(), raw)
	return err
}

// live is a token issued after the stream began: one the verifier checks locally.
func (e *env) live(sub, sid string) string {
	e.t.Helper()
	e.heard()                       // the stream is ensured (Since set)
	e.clock.Add(2 * e.v.cfg.Leeway) // past StaleAfter/2: a status check is due
	e.fresh()
	return e.iss.accessToken(sub, sid, e.clock.Now())
}

func TestVerifyLocallyWithoutCredentials(t *testing.T) {
	e := newEnv(t, false)
	c, err := e.v.Verify(context.Background(), e.iss.accessToken("42", "s1", start))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "42" || c.SessionID != "s1" || c.ClientID != "authapi" {
		t.Fatalf("claims %+v", c)
	}
	if h := e.v.Health(); h.Enabled || h.Stale {
		t.Fatalf("health %+v, want no stream", h)
	}
	refresh := e.iss.access.Sign("JWT", map[string]any{"iss": e.iss.srv.URL, "sub": "42", "sid": "s1", "jti": "r", "iat": start.Unix(),
		"exp": start.Add(time.Hour).Unix(), "token_type": "refresh", "client_id": "authapi"}, nil)
	if err := e.verify(refresh); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("refresh token: err = %v, want ErrInvalidToken", err)
	}
	long := e.iss.access.Sign("at+jwt", map[string]any{"iss": e.iss.srv.URL, "sub": "42", "aud": fakeAudience, "client_id": "x", "jti": "l",
		"iat": start.Unix(), "exp": start.Add(2 * time.Hour).Unix()}, nil)
	if err := e.verify(long); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("token outliving MaxTokenLifetime: err = %v, want ErrInvalidToken", err)
	}
}

func TestDiscoveryChecksIssuer(t *testing.T) {
	e := newEnv(t, false)
	cfg := e.cfg
	cfg.Issuer = e.iss.srv.URL + "/other"
	if _, err := New(context.Background(), cfg); err == nil {
		t.Fatal("New with an issuer the metadata does not name: nil error")
	}
}

func TestRevokedSessionRefused(t *testing.T) {
	var events []Event
	e := newEnv(t, true, func(c *Config) { c.OnEvent = func(ev Event) { events = append(events, ev) } })
	tok := e.live("42", "s1")
	other := e.iss.accessToken("42", "s2", e.clock.Now())
	if err := e.verify(tok); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	e.iss.emit(SessionRevoked, "42", "s1")
	e.applied(1)
	if err := e.verify(tok); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after revocation: err = %v, want ErrRevoked", err)
	}
	if err := e.verify(other); err != nil {
		t.Fatalf("another session of the user: %v", err)
	}
	if _, introspects := e.iss.counts(); introspects != 0 {
		t.Fatalf("%d introspections, want 0 while the stream is fresh", introspects)
	}
	if len(events) != 1 || events[0].SessionID != "s1" || events[0].Subject != "42" || events[0].Type != SessionRevoked {
		t.Fatalf("OnEvent got %+v", events)
	}
	// The applied event is acknowledged by the next poll.
	e.nextPoll()
	e.iss.mu.Lock()
	acked := e.iss.acked
	e.iss.mu.Unlock()
	if len(acked) != 1 || acked[0] != events[0].ID {
		t.Fatalf("acked %v, want [%s]", acked, events[0].ID)
	}
}

func TestUserEvents(t *testing.T) {
	for _, tc := range []struct {
		event          string
		sameSecondKept bool
	}{
		{CredentialChange, true}, {TokenClaimsChange, true}, {AccountDisabled, false}, {AccountPurged, false}, {SessionRevoked, false},
	} {
		t.Run(tc.event, func(t *testing.T) {
			e := newEnv(t, true)
			older := e.live("7", "a")
			e.clock.Add(time.Second)
			e.heard()
			sameSecond := e.iss.accessToken("7", "b", e.clock.Now())
			otherUser := e.iss.accessToken("8", "c", e.clock.Now())
			e.iss.emit(tc.event, "7", "") // the user, no session
			e.applied(1)
			if err := e.verify(older); !errors.Is(err, ErrRevoked) {
				t.Fatalf("token issued before: err = %v, want ErrRevoked", err)
			}
			if err := e.verify(sameSecond); (err == nil) != tc.sameSecondKept {
				t.Fatalf("token issued in the event's second: err = %v, kept want %v", err, tc.sameSecondKept)
			}
			if err := e.verify(otherUser); err != nil {
				t.Fatalf("another user: %v", err)
			}
			e.clock.Add(time.Second)
			e.heard()
			if err := e.verify(e.iss.accessToken("7", "d", e.clock.Now())); err != nil {
				t.Fatalf("token issued after: %v", err)
			}
		})
	}
}

func TestRevocationsForgottenAfterTokensExpire(t *testing.T) {
	r := newRevocations()
	forget := start.Add(time.Hour)
	r.revokeSession("s1", forget)
	r.revokeUser("7", start, forget)
	tok := &Claims{SessionID: "s1", Subject: "1", IssuedAt: start}
	if !r.refuses(tok, forget.Add(-time.Nanosecond)) {
		t.Fatal("session not refused before its forget time")
	}
	if r.refuses(tok, forget) {
		t.Fatal("session refused at its forget time")
	}
	if !r.refuses(&Claims{Subject: "7", IssuedAt: start.Add(-time.Second)}, start) {
		t.Fatal("user's older token not refused")
	}
	if r.refuses(&Claims{Subject: "7", IssuedAt: start}, start) {
		t.Fatal("user's token issued at notBefore refused")
	}
	r.prune(forget.Add(-time.Nanosecond))
	if r.len() != 2 {
		t.Fatalf("%d entries before forget time, want 2", r.len())
	}
	r.prune(forget)
	if r.len() != 0 {
		t.Fatalf("%d entries after prune, want 0", r.len())
	}
}

// The stream's entries live exactly as long as the tokens they refuse can.
func TestStreamEntriesExpireWithTokens(t *testing.T) {
	e := newEnv(t, true, func(c *Config) { c.MaxTokenLifetime = 15 * time.Minute })
	e.live("1", "s")
	e.iss.emit(SessionRevoked, "1", "s")
	e.applied(1)
	if n := e.v.Health().Revoked; n != 1 {
		t.Fatalf("%d remembered, want 1", n)
	}
	e.clock.Add(15*time.Minute + e.v.cfg.Leeway)
	e.heard()
	if n := e.v.Health().Revoked; n != 0 {
		t.Fatalf("%d remembered after every token of the session expired, want 0", n)
	}
}

func TestFailClosedAfterStaleAfter(t *testing.T) {
	for _, policy := range []StalePolicy{Introspect, Refuse} {
		t.Run(map[StalePolicy]string{Introspect: "introspect", Refuse: "refuse"}[policy], func(t *testing.T) {
			e := newEnv(t, true, func(c *Config) { c.OnStale = policy })
			tok := e.live("42", "s1")
			e.iss.setDown(true) // the issuer stops answering polls
			e.clock.Add(DefaultStaleAfter)
			if err := e.verify(tok); err != nil {
				t.Fatalf("at StaleAfter: %v", err)
			}
			if _, n := e.iss.counts(); n != 0 {
				t.Fatalf("%d introspections at StaleAfter, want 0", n)
			}
			e.clock.Add(time.Millisecond)
			if !e.v.Health().Stale {
				t.Fatal("health not stale past StaleAfter")
			}
			err := e.verify(tok)
			_, n := e.iss.counts()
			if policy == Refuse {
				if !errors.Is(err, ErrUnavailable) || n != 0 {
					t.Fatalf("refuse: err = %v, %d introspections; want ErrUnavailable, 0", err, n)
				}
				return
			}
			// Introspection is down too: refused.
			if !errors.Is(err, ErrUnavailable) || n != 1 {
				t.Fatalf("introspection down: err = %v, %d introspections; want ErrUnavailable, 1", err, n)
			}
			e.iss.mu.Lock()
			e.iss.introDown = false // introspection answers again, polls are still failing
			e.iss.active = func(raw string) (bool, int) { return raw == tok, http.StatusOK }
			e.iss.mu.Unlock()
			if err := e.verify(tok); err != nil {
				t.Fatalf("introspection active: %v", err)
			}
			if err := e.verify(e.iss.accessToken("42", "s9", e.clock.Now())); !errors.Is(err, ErrRevoked) {
				t.Fatalf("introspection inactive: err = %v, want ErrRevoked", err)
			}
			// Stale is not cached: each request asks.
			_ = e.verify(tok)
			if _, n := e.iss.counts(); n != 4 {
				t.Fatalf("%d introspections, want 4", n)
			}
		})
	}
}

// Revocations before the stream began are not in it: a token issued before then is
// confirmed by introspection once, and then checked locally.
func TestTokenFromBeforeTheStreamIntrospectedOnce(t *testing.T) {
	e := newEnv(t, true)
	e.heard()
	old := e.iss.accessToken("42", "s1", start.Add(-time.Minute))
	revoked := e.iss.accessToken("42", "s2", start.Add(-time.Minute))
	e.iss.mu.Lock()
	e.iss.active = func(raw string) (bool, int) { return raw == old, http.StatusOK }
	e.iss.mu.Unlock()
	for range 3 {
		if err := e.verify(old); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.verify(revoked); !errors.Is(err, ErrRevoked) {
		t.Fatalf("revoked before the stream: err = %v, want ErrRevoked", err)
	}
	if _, n := e.iss.counts(); n != 2 {
		t.Fatalf("%d introspections, want 2 (one per token)", n)
	}
	// A later revocation comes through the stream.
	e.iss.emit(SessionRevoked, "42", "s1")
	e.applied(1)
	if err := e.verify(old); !errors.Is(err, ErrRevoked) {
		t.Fatalf("confirmed, then revoked: err = %v, want ErrRevoked", err)
	}
}

func TestJWKSRefreshRateLimited(t *testing.T) {
	e := newEnv(t, false)
	newKey := tokentest.NewKey("k2", "EdDSA")
	claims := map[string]any{"iss": e.iss.srv.URL, "sub": "1", "aud": fakeAudience, "client_id": "c", "jti": "j",
		"iat": start.Unix(), "exp": start.Add(time.Minute).Unix()}
	for i := range 20 {
		if err := e.verify(tokentest.NewKey("made-up", "EdDSA").Sign("at+jwt", claims, nil)); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("unknown kid %d: err = %v", i, err)
		}
	}
	if jwks, _ := e.iss.counts(); jwks != 1 {
		t.Fatalf("%d JWKS fetches for 20 unknown kids within a second of the first, want 1", jwks)
	}
	// The issuer starts signing with a new key: within the same second it is not fetched...
	e.iss.mu.Lock()
	e.iss.keys = append(e.iss.keys, newKey)
	e.iss.mu.Unlock()
	fresh := newKey.Sign("at+jwt", claims, nil)
	if err := e.verify(fresh); err == nil {
		t.Fatal("new key accepted without a fetch")
	}
	// ...a second later it is.
	e.clock.Add(time.Second)
	if err := e.verify(fresh); err != nil {
		t.Fatalf("after a second: %v", err)
	}
	for range 20 {
		_ = e.verify(tokentest.NewKey("made-up", "EdDSA").Sign("at+jwt", claims, nil))
	}
	if jwks, _ := e.iss.counts(); jwks != 2 {
		t.Fatalf("%d JWKS fetches, want 2", jwks)
	}
}

func TestBadSETReportedNotApplied(t *testing.T) {
	e := newEnv(t, true)
	tok := e.live("42", "s1")
	forged := tokentest.NewKey("set1", "RS256") // the SET key's kid, another key
	e.iss.mu.Lock()
	e.iss.queue["forged"] = forged.Sign("secevent+jwt", map[string]any{"iss": e.iss.srv.URL, "aud": fakeClientID, "jti": "forged",
		"iat": e.clock.Now().Unix(), "sub_id": map[string]any{"format": "complex", "session": map[string]any{"format": "opaque", "id": "s1"}},
		"events": map[string]any{SessionRevoked: map[string]any{}}}, nil)
	e.iss.mu.Unlock()
	e.iss.emit(SessionRevoked, "1", "other") // a good one after it, to wait for
	e.applied(1)
	e.nextPoll()
	if err := e.verify(tok); err != nil {
		t.Fatalf("a forged SET revoked the session: %v", err)
	}
	e.iss.mu.Lock()
	defer e.iss.mu.Unlock()
	if _, ok := e.iss.setErrs["forged"]; !ok {
		t.Fatalf("forged SET not reported in setErrs: %v", e.iss.setErrs)
	}
}

// A restarted verifier finds its stream by name instead of creating another.
func TestStreamResumedByName(t *testing.T) {
	e := newEnv(t, true)
	e.heard()
	first := e.v.Health().StreamID
	_ = e.v.Close()
	v2 := e.start(e.cfg)
	e.v = v2
	e.heard()
	if got := v2.Health().StreamID; got != first {
		t.Fatalf("stream %q after restart, want %q", got, first)
	}
	e.iss.mu.Lock()
	n := len(e.iss.streams)
	e.iss.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d streams, want 1", n)
	}
	if f := e.iss.streams[0]["format"]; f != "complex" {
		t.Fatalf("stream format %v, want complex (the session in each event)", f)
	}
}

func TestSubject(t *testing.T) {
	issSub := map[string]any{"format": "iss_sub", "iss": "x", "sub": "7"}
	for _, tc := range []struct {
		id       map[string]any
		sub, sid string
	}{
		{issSub, "7", ""},
		{map[string]any{"format": "complex", "user": issSub}, "7", ""},
		{map[string]any{"format": "complex", "user": issSub, "session": map[string]any{"format": "opaque", "id": "s"}}, "7", "s"},
		{map[string]any{"format": "email", "email": "a@b"}, "", ""},
		{map[string]any{"format": "opaque", "id": "7"}, "", ""},
		{nil, "", ""},
	} {
		if sub, sid := subject(tc.id); sub != tc.sub || sid != tc.sid {
			t.Errorf("subject(%v) = %q, %q; want %q, %q", tc.id, sub, sid, tc.sub, tc.sid)
		}
	}
}

// A paused stream answers polls with nothing: the verifier checks the status at least every
// half StaleAfter, enables it again, and coverage starts again.
func TestPausedStreamEnabledAgain(t *testing.T) {
	e := newEnv(t, true)
	tok := e.live("42", "s1")
	since := e.v.Health().Since
	e.iss.mu.Lock()
	e.iss.status = "paused"
	e.iss.mu.Unlock()
	e.iss.emit(SessionRevoked, "42", "s1") // held while paused
	e.clock.Add(DefaultStaleAfter / 2)
	e.applied(1)
	if err := e.verify(tok); !errors.Is(err, ErrRevoked) {
		t.Fatalf("after the stream was enabled again: err = %v, want ErrRevoked", err)
	}
	e.iss.mu.Lock()
	enables := e.iss.enables
	e.iss.mu.Unlock()
	if enables != 1 {
		t.Fatalf("%d enables, want 1", enables)
	}
	if h := e.v.Health(); !h.Since.After(since) {
		t.Fatalf("Since %v, want after %v: events may have been dropped while paused", h.Since, since)
	}
}

// Polls answered while the stream is paused do not count as hearing from it: only as far as
// the last status check that found it enabled.
func TestPausedStreamGoesStale(t *testing.T) {
	e := newEnv(t, true)
	e.live("42", "s1") // the status was checked at this time: it is due after StaleAfter/2
	checked := e.clock.Now()
	e.iss.mu.Lock()
	e.iss.status, e.iss.refuseEnable = "paused", true
	e.iss.mu.Unlock()
	e.clock.Add(DefaultStaleAfter/2 - time.Millisecond) // no status check due yet
	deadline := time.After(30 * time.Second)
	for e.iss.pollsSince(e.clock.Now()) < 2 { // two whole polls at this time: one sent at it
		e.iss.kick()
		select {
		case <-e.polls:
		case <-deadline:
			t.Fatal("no polls")
		}
	}
	if h := e.v.Health(); !h.LastHeard.Equal(checked) {
		t.Fatalf("LastHeard %v after polls of a paused stream, want %v (the last status check)", h.LastHeard, checked)
	}
	e.clock.Add(DefaultStaleAfter/2 + 2*time.Millisecond)
	if !e.v.Health().Stale {
		t.Fatal("not stale past StaleAfter while the stream is paused")
	}
}

// An introspection answered while coverage starts again (the stream re-made or re-enabled)
// confirms nothing: a revocation between its answer and the new coverage would be unknown.
func TestConfirmationFromBeforeCoverageRestartDropped(t *testing.T) {
	e := newEnv(t, true)
	e.heard()
	old := e.iss.accessToken("42", "s1", start.Add(-time.Minute))
	e.iss.mu.Lock()
	e.iss.active = func(string) (bool, int) {
		e.v.restartCoverage() // as ensure or the status check would, meanwhile
		return true, http.StatusOK
	}
	e.iss.mu.Unlock()
	for range 2 {
		if err := e.verify(old); err != nil {
			t.Fatal(err)
		}
	}
	if _, n := e.iss.counts(); n != 2 {
		t.Fatalf("%d introspections, want 2: the first answer must not be kept", n)
	}
}

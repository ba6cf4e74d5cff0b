package fleet_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/testbin"
	"github.com/authapi/authapi/verifier"
)

const (
	// rsSessions are revoked one after another through every kind, while the resource servers
	// follow their streams; rsOffline more while the resource servers are stopped.
	rsSessions = 50
	rsOffline  = 10
	// rsDeadline bounds every wait of this test for a condition (a refusal, a stream heard
	// again, queued events delivered); the properties are held to their own bounds.
	rsDeadline = 30 * time.Second
	// sessionRevoked is CAEP's event type.
	sessionRevoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
)

// TestResourceServersFollowTheFleet: two authapi instances (A and B) behind one public URL,
// and two resource servers verifying their tokens locally, one with the Go verifier package
// and one with the Node package (@authapi/verifier, run by node), each with its own stream of
// one API client. Sessions logged in on B and revoked on A through every kind are refused by
// both within revocationBound; with authapi stopped both fail closed within StaleAfter; and
// sessions revoked while the resource servers are down reach their restarted streams, each
// event exactly once, nothing acknowledged before coming again.
func TestResourceServersFollowTheFleet(t *testing.T) {
	base := os.Getenv(postgresEnv)
	if base == "" {
		t.Skip(postgresEnv + " not set: runs two authapi serve processes on a PostgreSQL database it creates on that server (CI sets it)")
	}
	if testing.Short() {
		t.Skip("builds the binary, runs two servers and node")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node to run the Node resource server")
	}
	began := time.Now()
	dsn, db := freshDatabase(t, base)
	lb := newBalancer(t)
	f := &fleet{bin: testbin.Build(t), dsn: dsn, db: db}
	f.env = []string{
		"AUTHAPI_DB=" + dsn,
		"AUTHAPI_DB_MAX_OPEN_CONNS=4",
		"AUTHAPI_BOOTSTRAP_PASSWORD=" + adminPassword,
		"AUTHAPI_ARGON2_MEMORY_KIB=64", "AUTHAPI_ARGON2_ITERATIONS=1",
		"AUTHAPI_HASH_QUEUE_WAIT=1m",
		"AUTHAPI_REFRESH_REUSE_GRACE=0s", // a second use of a refresh token is a reuse at once
		"AUTHAPI_FLUSH_INTERVAL=0s",
		"AUTHAPI_SHUTDOWN_DRAIN=0s",
	}
	addrs := []string{testbin.FreeAddr(t), testbin.FreeAddr(t)}
	f.inst = startAt(t, f.bin, f.env, lb.url, addrs)
	lb.route(f.inst)
	a, b := f.inst[0], f.inst[1]
	t.Cleanup(func() {
		if t.Failed() {
			for _, in := range f.inst {
				t.Logf("instance %d stderr:\n%s\nlast lines of its log:\n%s", in.n, in.stderr.String(), tail(in.stdout.String(), 30))
			}
		}
	})
	f.admin = f.login(t, a, "admin", adminPassword).Access
	clientID, secret := f.apiClient(t, a)

	rsCfg := rsConfig{issuer: lb.url, clientID: clientID, secret: secret, node: node}
	servers := []*resourceServer{startGoRS(t, rsCfg, "fleet-go"), startNodeRS(t, rsCfg, "fleet-node")}
	waitHeard(t, servers)

	// Everyone logs in on B, after the streams began (an older token is confirmed by
	// introspection instead, which would prove nothing about the stream).
	sessions := make([]*rsSession, rsSessions+rsOffline)
	for i := range sessions {
		name := fmt.Sprintf("rs-user-%d", i)
		id := f.createUser(t, a, name, false)
		sessions[i] = &rsSession{user: id, name: name, pair: f.login(t, b, name, userPassword)}
		sessions[i].sid = sid(t, sessions[i].pair.Access)
	}
	f.createUser(t, a, "rs-keeper", false)
	keeper := f.login(t, b, "rs-keeper", userPassword).Access
	t.Logf("set up in %v", time.Since(began).Round(time.Millisecond))

	delays := make([][]time.Duration, len(servers))
	t.Run("revocations on A refused by both resource servers", func(t *testing.T) {
		for i, s := range sessions[:rsSessions] {
			kind := revocationKinds[i%len(revocationKinds)]
			for _, rs := range servers {
				if code := rs.check(t, s.pair.Access); code != http.StatusOK {
					t.Fatalf("%s: session %d before its %s: status %d, want 200", rs.name, i, kind.name, code)
				}
			}
			kind.revoke(t, f, a, s)
			answered := time.Now()
			var wg sync.WaitGroup
			got := make([]time.Duration, len(servers))
			for j, rs := range servers {
				wg.Go(func() { got[j] = rs.measureRefusal(t, s.pair.Access, answered, kind.name) })
			}
			wg.Wait()
			for j := range servers {
				delays[j] = append(delays[j], got[j])
			}
		}
		for j, rs := range servers {
			p50, p99, worst := percentiles(delays[j])
			t.Logf("%-10s %d revocations through %d kinds: p50 %v  p99 %v  max %v (bound %v)",
				rs.name, len(delays[j]), len(revocationKinds), p50, p99, worst, revocationBound)
		}
	})
	if t.Failed() {
		return
	}

	t.Run("authapi stopped: both fail closed within StaleAfter", func(t *testing.T) {
		for _, rs := range servers {
			if code := rs.check(t, keeper); code != http.StatusOK {
				t.Fatalf("%s: a live token before the stop: status %d, want 200", rs.name, code)
			}
			// The last event's batch is acknowledged (by a poll sent after it was applied)
			// before authapi stops, so that the restarted streams owe nothing of it.
			rs.waitPolledAfterLastEvent(t)
		}
		for _, in := range f.inst {
			in.stop()
		}
		stopped := time.Now()
		var wg sync.WaitGroup
		for _, rs := range servers {
			wg.Go(func() { rs.measureFailClosed(t, keeper, stopped) })
		}
		wg.Wait()
	})
	if t.Failed() {
		return
	}

	t.Run("restarted: streams resume from their last ack, nothing lost", func(t *testing.T) {
		f.inst = startAt(t, f.bin, f.env, lb.url, addrs)
		lb.route(f.inst)
		a, b = f.inst[0], f.inst[1]
		waitHeard(t, servers)
		for _, rs := range servers {
			if code := rs.check(t, keeper); code != http.StatusOK {
				t.Fatalf("%s: a live token after the restart: status %d, want 200", rs.name, code)
			}
		}
		streamIDs := make([]string, len(servers))
		for i, rs := range servers {
			streamIDs[i] = rs.health(t).StreamID
			rs.stop(t)
		}
		// Revoked while no resource server follows its stream: the events wait in its queue.
		offline := sessions[rsSessions:]
		for i, s := range offline {
			revocationKinds[i%len(revocationKinds)].revoke(t, f, a, s)
		}
		wantSIDs := map[string]bool{}
		for _, s := range offline {
			wantSIDs[s.sid] = true
		}
		earlier := map[string]bool{}
		for _, s := range sessions[:rsSessions] {
			earlier[s.sid] = true
		}
		restarted := []*resourceServer{startGoRS(t, rsCfg, "fleet-go"), startNodeRS(t, rsCfg, "fleet-node")}
		for i, rs := range restarted {
			// Every queued event arrives.
			deadline := time.Now().Add(rsDeadline)
			for {
				if n := len(sessionsNamed(rs.events(t), wantSIDs)); n == len(wantSIDs) {
					break
				} else if time.Now().After(deadline) {
					t.Fatalf("%s: %d of the %d sessions revoked while it was down arrived within %v", rs.name, n, len(wantSIDs), rsDeadline)
				}
				time.Sleep(5 * time.Millisecond)
			}
			for _, s := range offline {
				if code := rs.check(t, s.pair.Access); code != http.StatusUnauthorized {
					t.Errorf("%s: session revoked while it was down: status %d, want 401", rs.name, code)
				}
			}
			if id := rs.health(t).StreamID; id != streamIDs[i] {
				t.Errorf("%s: stream %s after the restart, %s before: want the same stream resumed", rs.name, id, streamIDs[i])
			}
			// Exactly once: one SET (one jti) per session, delivered once; and nothing
			// acknowledged before the restart came again.
			events := rs.events(t)
			jtis := map[string][]string{} // sid -> jtis delivered
			again := 0
			for _, e := range events {
				switch {
				case e.Type != sessionRevoked:
				case wantSIDs[e.SessionID]:
					jtis[e.SessionID] = append(jtis[e.SessionID], e.ID)
				case earlier[e.SessionID]:
					again++
				}
			}
			for sid, got := range jtis {
				if len(got) != 1 {
					t.Errorf("%s: session %s revoked while down: delivered %d times (jtis %v), want once", rs.name, sid, len(got), got)
				}
			}
			if again > 0 {
				t.Errorf("%s: %d events acknowledged before the restart came again", rs.name, again)
			}
			t.Logf("%s: stream %s resumed; %d events delivered after the restart, %d sessions revoked while down each named once, none acknowledged before",
				rs.name, streamIDs[i], len(events), len(jtis))
		}
	})
}

// rsSession is one user's session, logged in on B.
type rsSession struct {
	user      int64
	name, sid string
	pair      client.TokenPair
}

// revocationKind is one way of ending a session, made on instance on; it returns once its
// answer has arrived.
type revocationKind struct {
	name   string
	revoke func(t *testing.T, f *fleet, on *instance, s *rsSession)
}

var revocationKinds = []revocationKind{
	{"logout", func(t *testing.T, f *fleet, on *instance, s *rsSession) {
		resp, err := on.client.LogoutWithResponse(t.Context(), client.LogoutRequest{Refresh: s.pair.Refresh}, bearer(s.pair.Access))
		expect2xx(t, "logout", resp, err)
	}},
	{"logout-all", func(t *testing.T, f *fleet, on *instance, s *rsSession) {
		resp, err := on.client.LogoutAllPostWithResponse(t.Context(), bearer(s.pair.Access))
		expect2xx(t, "logout_all", resp, err)
	}},
	{"admin session revoke", func(t *testing.T, f *fleet, on *instance, s *rsSession) {
		resp, err := on.client.RevokeUserSessionWithResponse(t.Context(), s.user, s.sid, bearer(f.admin))
		expect2xx(t, "admin revoke session", resp, err)
	}},
	{"admin logout-all", func(t *testing.T, f *fleet, on *instance, s *rsSession) {
		resp, err := on.client.LogoutUserEverywhereWithResponse(t.Context(), s.user, bearer(f.admin))
		expect2xx(t, "admin logout everywhere", resp, err)
	}},
	{"password change", func(t *testing.T, f *fleet, on *instance, s *rsSession) {
		resp, err := on.client.ChangePasswordWithResponse(t.Context(), client.PasswordChange{
			OldPassword: userPassword, NewPassword: "another horse battery staple",
		}, bearer(s.pair.Access))
		expect2xx(t, "password change", resp, err)
	}},
	{"deactivation", func(t *testing.T, f *fleet, on *instance, s *rsSession) {
		inactive := false
		resp, err := on.client.PartialUpdateUserWithResponse(t.Context(), s.user, client.UserPatch{IsActive: &inactive}, bearer(f.admin))
		expect2xx(t, "deactivation", resp, err)
	}},
	{"deletion", func(t *testing.T, f *fleet, on *instance, s *rsSession) {
		resp, err := on.client.DeleteUserWithResponse(t.Context(), s.user, bearer(f.admin))
		expect2xx(t, "deletion", resp, err)
	}},
	{"refresh-token reuse", func(t *testing.T, f *fleet, on *instance, s *rsSession) {
		resp, err := on.client.RefreshTokenWithResponse(t.Context(), client.TokenRefreshRequest{Refresh: s.pair.Refresh})
		expect2xx(t, "refresh", resp, err)
		resp, err = on.client.RefreshTokenWithResponse(t.Context(), client.TokenRefreshRequest{Refresh: s.pair.Refresh})
		expect(t, "reuse of a rotated refresh token", resp, err, http.StatusUnauthorized)
	}},
	{"/oauth/revoke of the access token", func(t *testing.T, f *fleet, on *instance, s *rsSession) {
		oauthRevoke(t, on, s.pair.Access)
	}},
	{"/oauth/revoke of the refresh token", func(t *testing.T, f *fleet, on *instance, s *rsSession) {
		oauthRevoke(t, on, s.pair.Refresh)
	}},
}

// oauthRevoke revokes tok at RFC 7009's endpoint as its holder (the public client authapi).
func oauthRevoke(t *testing.T, on *instance, tok string) {
	t.Helper()
	public := "authapi"
	resp, err := on.client.OauthRevokeWithFormdataBodyWithResponse(t.Context(), client.OAuthRevokeRequest{Token: &tok, ClientId: &public})
	expect2xx(t, "/oauth/revoke", resp, err)
}

func expect2xx(t *testing.T, what string, resp response, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if resp.StatusCode()/100 != 2 {
		t.Fatalf("%s: status %d, want 2xx", what, resp.StatusCode())
	}
}

// apiClient registers the resource servers' API client on in.
func (f *fleet) apiClient(t *testing.T, in *instance) (id, secret string) {
	t.Helper()
	scopes := []client.ClientScope{client.ScopeSSFRead, client.ScopeSSFManage, client.ScopeIntrospect}
	resp, err := in.client.CreateClientWithResponse(t.Context(), client.APIClientCreate{Name: "resource servers", Scopes: &scopes}, bearer(f.admin))
	expect(t, "create API client", resp, err, http.StatusCreated)
	return resp.JSON201.Client.ClientId, resp.JSON201.ClientSecret
}

// balancer is the fleet's public URL: it passes each request to the next running instance in
// turn, as a load balancer would, and answers 502 when none runs.
type balancer struct {
	url  string
	next atomic.Uint64
	mu   sync.Mutex
	to   []*url.URL
}

func newBalancer(t *testing.T) *balancer {
	lb := &balancer{}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			lb.mu.Lock()
			to := lb.to[lb.next.Add(1)%uint64(len(lb.to))]
			lb.mu.Unlock()
			r.SetURL(to)
			r.Out.Host = r.In.Host // the public host, as behind a real balancer
		},
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			w.WriteHeader(http.StatusBadGateway)
		},
	}
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)
	lb.url = srv.URL
	return lb
}

// route sends the balancer's requests to inst.
func (lb *balancer) route(inst []*instance) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	lb.to = lb.to[:0]
	for _, in := range inst {
		u, _ := url.Parse(in.url)
		lb.to = append(lb.to, u)
	}
}

// rsConfig is what both resource servers are configured with.
type rsConfig struct {
	issuer, clientID, secret string
	node                     string // the node binary
}

// rsHealth is the part of a verifier's health the test reads.
type rsHealth struct {
	StreamID string
	Stale    bool
	LastPoll time.Time
}

// rsEvent is one security event a resource server applied.
type rsEvent struct {
	ID, Type, SessionID string
	AppliedAt           time.Time
}

// resourceServer is a running resource server: url answers GET /check with the verifier's
// decision on the bearer token.
type resourceServer struct {
	name     string
	url      string
	health   func(t *testing.T) rsHealth
	events   func(t *testing.T) []rsEvent
	stop     func(t *testing.T)
	checkCli *http.Client
}

// startGoRS runs the Go verifier package's middleware in front of a handler, in process.
func startGoRS(t *testing.T, cfg rsConfig, stream string) *resourceServer {
	t.Helper()
	var (
		mu     sync.Mutex
		events []rsEvent
		log    testbin.Buffer // the stream's warnings, shown if the test fails
	)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("go resource server log:\n%s", tail(log.String(), 30))
		}
	})
	v, err := verifier.New(t.Context(), verifier.Config{
		Issuer: cfg.issuer, Audience: []string{cfg.issuer}, ClientID: cfg.clientID, ClientSecret: cfg.secret,
		StreamName: stream, Logger: slog.New(slog.NewTextHandler(&log, nil)),
		OnEvent: func(e verifier.Event) {
			mu.Lock()
			events = append(events, rsEvent{ID: e.ID, Type: e.Type, SessionID: e.SessionID, AppliedAt: e.AppliedAt})
			mu.Unlock()
		},
	})
	if err != nil {
		t.Fatalf("go resource server: %v", err)
	}
	srv := httptest.NewServer(v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	var once sync.Once
	stop := func(*testing.T) {
		once.Do(func() {
			srv.Close()
			_ = v.Close()
		})
	}
	t.Cleanup(func() { stop(t) })
	return &resourceServer{
		name: "go", url: srv.URL, stop: stop, checkCli: srv.Client(),
		health: func(*testing.T) rsHealth {
			h := v.Health()
			return rsHealth{StreamID: h.StreamID, Stale: h.Stale, LastPoll: h.LastPoll}
		},
		events: func(*testing.T) []rsEvent {
			mu.Lock()
			defer mu.Unlock()
			return slices.Clone(events)
		},
	}
}

// startNodeRS runs testdata/resource-server.mjs (@authapi/verifier) with node.
func startNodeRS(t *testing.T, cfg rsConfig, stream string) *resourceServer {
	t.Helper()
	script, err := filepath.Abs(filepath.Join("testdata", "resource-server.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(cfg.node, script)
	cmd.Env = append(os.Environ(), "ISSUER="+cfg.issuer, "CLIENT_ID="+cfg.clientID, "CLIENT_SECRET="+cfg.secret, "STREAM_NAME="+stream)
	var stderr testbin.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("node resource server: %v", err)
	}
	exited := make(chan struct{})
	lines := bufio.NewScanner(out)
	port := make(chan string, 1)
	go func() {
		for lines.Scan() {
			if p, ok := strings.CutPrefix(lines.Text(), "listening "); ok {
				port <- p
			}
		}
		_ = cmd.Wait()
		close(exited)
	}()
	var once sync.Once
	stop := func(*testing.T) {
		once.Do(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(rsDeadline):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
	}
	t.Cleanup(func() {
		stop(t)
		if t.Failed() {
			t.Logf("node resource server stderr:\n%s", tail(stderr.String(), 30))
		}
	})
	var base string
	select {
	case p := <-port:
		base = "http://127.0.0.1:" + p
	case <-exited:
		t.Fatalf("node resource server exited: %s", stderr.String())
	case <-time.After(time.Minute):
		t.Fatalf("node resource server did not listen within a minute: %s", stderr.String())
	}
	rs := &resourceServer{name: "node", url: base, stop: stop, checkCli: &http.Client{Timeout: rsDeadline}}
	rs.health = func(t *testing.T) rsHealth {
		var h struct {
			StreamID string  `json:"streamId"`
			Stale    bool    `json:"stale"`
			LastPoll float64 `json:"lastPoll"`
		}
		rs.getJSON(t, "/health", &h)
		return rsHealth{StreamID: h.StreamID, Stale: h.Stale, LastPoll: time.UnixMilli(int64(h.LastPoll))}
	}
	rs.events = func(t *testing.T) []rsEvent {
		var raw []struct {
			ID        string  `json:"id"`
			Type      string  `json:"type"`
			SessionID string  `json:"sessionId"`
			AppliedAt float64 `json:"appliedAt"`
		}
		rs.getJSON(t, "/events", &raw)
		out := make([]rsEvent, len(raw))
		for i, e := range raw {
			out[i] = rsEvent{ID: e.ID, Type: e.Type, SessionID: e.SessionID, AppliedAt: time.UnixMilli(int64(e.AppliedAt))}
		}
		return out
	}
	return rs
}

func (rs *resourceServer) getJSON(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := rs.checkCli.Get(rs.url + path)
	if err != nil {
		t.Fatalf("%s %s: %v", rs.name, path, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s %s: %v", rs.name, path, err)
	}
}

// check is the resource server's status for a request with tok, 0 (and an error reported) if
// it did not answer.
func (rs *resourceServer) check(t *testing.T, tok string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, rs.url+"/check", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := rs.checkCli.Do(req)
	if err != nil {
		t.Errorf("%s: %v", rs.name, err) // not Fatal: called from the test's goroutines too
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// measureRefusal polls the resource server with tok, revoked by a request answered at
// answered, until it answers 401, and returns the delay from answered to that answer.
//
// The bound is held to what only a miss can break: a request *sent* revocationBound or more
// after the revocation was answered, and still accepted, means the resource server had not
// applied the revocation by then (it decides after the request is sent). A slow machine only
// delays requests and answers, which makes no such acceptance; so it cannot fail the test,
// while the delay reported (to the first refusal's answer, an upper bound) shows it.
func (rs *resourceServer) measureRefusal(t *testing.T, tok string, answered time.Time, kind string) time.Duration {
	for {
		sent := time.Now()
		code := rs.check(t, tok)
		switch code {
		case http.StatusUnauthorized:
			return time.Since(answered)
		case http.StatusOK:
			if late := sent.Sub(answered); late >= revocationBound {
				t.Errorf("%s: %s: a request sent %v after the revocation's answer was accepted (bound %v)", rs.name, kind, late, revocationBound)
				return time.Since(answered)
			}
		default:
			t.Errorf("%s: %s: status %d, want 200 then 401", rs.name, kind, code)
			return time.Since(answered)
		}
	}
}

// measureFailClosed polls the resource server with tok, valid but unverifiable since authapi
// stopped at stopped, until it answers 503. Waiting is polling that condition with a deadline,
// not sleeping: the property is that no request sent StaleAfter or more after the stop is
// accepted (the stream was last heard at the stop at the latest), so only a resource server
// that failed open can fail it, however slow the machine.
func (rs *resourceServer) measureFailClosed(t *testing.T, tok string, stopped time.Time) {
	bound := verifier.DefaultStaleAfter
	for {
		sent := time.Now()
		switch code := rs.check(t, tok); code {
		case http.StatusServiceUnavailable:
			t.Logf("%s: fails closed (503) %v after authapi stopped (bound StaleAfter %v)", rs.name, time.Since(stopped).Round(time.Millisecond), bound)
			return
		case http.StatusOK:
			if late := sent.Sub(stopped); late >= bound {
				t.Errorf("%s: a request sent %v after authapi stopped was accepted: fail-open past StaleAfter %v", rs.name, late, bound)
				return
			}
		default:
			t.Errorf("%s: with authapi stopped: status %d, want 200 then 503", rs.name, code)
			return
		}
		if time.Since(stopped) > bound+rsDeadline {
			t.Errorf("%s: still no 503 %v after authapi stopped", rs.name, time.Since(stopped))
			return
		}
	}
}

// waitHeard waits until every resource server's stream is fresh (an answered poll within
// StaleAfter).
func waitHeard(t *testing.T, servers []*resourceServer) {
	t.Helper()
	for _, rs := range servers {
		deadline := time.Now().Add(rsDeadline)
		for h := rs.health(t); h.Stale || h.StreamID == ""; h = rs.health(t) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: stream not heard within %v", rs.name, rsDeadline)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// waitPolledAfterLastEvent waits until the resource server has had a poll answered that it
// sent after applying its last event: that poll acknowledged it.
func (rs *resourceServer) waitPolledAfterLastEvent(t *testing.T) {
	t.Helper()
	events := rs.events(t)
	if len(events) == 0 {
		return
	}
	last := events[len(events)-1].AppliedAt
	deadline := time.Now().Add(rsDeadline)
	for !rs.health(t).LastPoll.After(last) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: no poll answered after its last event within %v", rs.name, rsDeadline)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// sessionsNamed are the sessions of want that session-revoked events among events name.
func sessionsNamed(events []rsEvent, want map[string]bool) map[string]bool {
	got := map[string]bool{}
	for _, e := range events {
		if e.Type == sessionRevoked && want[e.SessionID] {
			got[e.SessionID] = true
		}
	}
	return got
}

// percentiles are the nearest-rank p50 and p99 and the maximum of ds, rounded.
func percentiles(ds []time.Duration) (p50, p99, worst time.Duration) {
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		return s[max(0, int(math.Ceil(p*float64(len(s))))-1)].Round(100 * time.Microsecond)
	}
	return rank(0.50), rank(0.99), s[len(s)-1].Round(100 * time.Microsecond)
}

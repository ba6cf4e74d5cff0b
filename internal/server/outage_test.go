package server_test

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/metrics/metricstest"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

// outage takes a test's database away from the server and gives it back.
type outage interface {
	begin(t *testing.T)
	end(t *testing.T)
}

// tcpProxy forwards connections to a PostgreSQL server. stop closes its listener and cuts
// every connection; start listens again on the same port. To the store that is PostgreSQL
// going away and coming back, without stopping the server other tests share.
type tcpProxy struct {
	target, addr string

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{target: target, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	t.Cleanup(func() { p.stop(); p.wg.Wait() })
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go p.forward(ln, c)
		}
	}()
}

func (p *tcpProxy) forward(ln net.Listener, c net.Conn) {
	defer p.wg.Done()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.ln != ln { // stopped meanwhile
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	var pipes sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		defer pipes.Done()
		io.Copy(dst, src)
		c.Close() // either side ending ends both
		up.Close()
	}
	pipes.Add(2)
	go pipe(up, c)
	go pipe(c, up)
	pipes.Wait()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

func (p *tcpProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

func (p *tcpProxy) begin(*testing.T) { p.stop() }

func (p *tcpProxy) end(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatalf("proxy: listen again on %s: %v", p.addr, err)
	}
	p.serve(ln)
}

// sqliteLock holds the write lock of a SQLite file from another connection (as another
// process would: a CLI command, a backup) for longer than the store's busy timeout: writes
// fail with SQLITE_BUSY, reads go on (WAL).
type sqliteLock struct {
	path string
	db   *sql.DB
	conn *sql.Conn
}

func (l *sqliteLock) begin(t *testing.T) {
	t.Helper()
	db, err := sql.Open("sqlite3", l.path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := db.Conn(context.Background())
	if err == nil {
		_, err = conn.ExecContext(context.Background(), "BEGIN EXCLUSIVE")
	}
	if err != nil {
		db.Close()
		t.Fatalf("lock %s: %v", l.path, err)
	}
	l.db, l.conn = db, conn
}

func (l *sqliteLock) end(t *testing.T) {
	t.Helper()
	if _, err := l.conn.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		t.Errorf("unlock %s: %v", l.path, err)
	}
	l.conn.Close()
	l.db.Close()
}

// logCounter counts the records logged with each message, but for the request lines.
type logCounter struct {
	mu   sync.Mutex
	msgs map[string]int
}

func (h *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (h *logCounter) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logCounter) WithGroup(string) slog.Handler            { return h }
func (h *logCounter) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "request" {
		h.mu.Lock()
		h.msgs[r.Message+" @"+r.Level.String()]++
		h.mu.Unlock()
	}
	return nil
}

func (h *logCounter) snapshot() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]int, len(h.msgs))
	for k, v := range h.msgs {
		out[k] = v
	}
	return out
}

// tally counts one kind of request's answers.
type tally struct{ ok, unavailable atomic.Int64 }

// waitFor polls cond until it holds, failing t after a generous deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDatabaseOutage takes the database away under mixed traffic (cached GETs, refreshes
// with rotation, user creations, a logged-out token) and gives it back: no request answers
// 500, each refused one answers 503 unavailable with Retry-After, the outage is logged once
// and counted, every acknowledged write is there afterwards and the logout still holds.
// PostgreSQL goes away behind a proxy the test stops; SQLite is write-locked by another
// connection past the busy timeout.
func TestDatabaseOutage(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			testDatabaseOutage(t, backend)
		})
	}
}

func testDatabaseOutage(t *testing.T, backend string) {
	dsn := storetest.DSN(t, backend)
	var db outage
	if backend == "sqlite" {
		db = &sqliteLock{path: dsn}
		dsn += "?_busy_timeout=50" // the dsn's own value wins: writes give up quickly
	} else {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal(err)
		}
		p := newTCPProxy(t, u.Host)
		u.Host = p.addr
		dsn = u.String()
		db = p
	}
	logs := &logCounter{msgs: map[string]int{}}
	m := metrics.New()
	e := newTestEnv(t, backend, withDSN(dsn), withConfig(func(c *server.Config) {
		c.Logger = slog.New(logs)
		c.Metrics = m
		c.RefreshesPerIPPerMinute = -1 // one client refreshes as fast as it can
	}))
	var downs, ups atomic.Int32
	e.store.OnAvailabilityChange(func(c store.AvailabilityChange) {
		if c.Available {
			ups.Add(1)
		} else {
			downs.Add(1)
		}
	})
	ctx := context.Background()

	e.mustUser(t, "admin", superRole)
	admin := e.mustLogin(t, "admin")
	e.mustUser(t, "reader", regular)
	reader := e.mustLogin(t, "reader")
	e.mustUser(t, "refresher", regular)
	refresher := e.mustLogin(t, "refresher")
	e.mustUser(t, "gone", regular)
	gone := e.mustLogin(t, "gone")
	lo, err := e.client.LogoutWithResponse(ctx, client.LogoutRequest{Refresh: gone.Refresh}, bearer(gone.Access))
	if err != nil || lo.StatusCode() != http.StatusOK && lo.StatusCode() != http.StatusNoContent {
		t.Fatalf("logout before the outage: %v %v", err, lo)
	}

	// checkUnavailable checks a 503 is the database's, as the spec describes it.
	checkUnavailable := func(what string, header http.Header, body []byte) {
		wantError(t, what, http.StatusServiceUnavailable, body, http.StatusServiceUnavailable, "unavailable")
		if ra := header.Get("Retry-After"); ra != "2" {
			t.Errorf("%s: Retry-After %q, want 2", what, ra)
		}
	}
	var gets, revoked, refreshes, creations tally
	var (
		mu       sync.Mutex
		created  []string // acknowledged creations
		lastPair = refresher
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// run calls req until stop, at most 20,000 times, pacing itself so as to leave the
	// machine to the server (longer after a refusal or a failure, which req reports); the
	// pace is not what the test relies on.
	run := func(req func(i int) (refused bool)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20_000; i++ {
				select {
				case <-stop:
					return
				default:
				}
				pause := time.Millisecond
				if req(i) {
					pause = 10 * time.Millisecond
				}
				time.Sleep(pause)
			}
		}()
	}
	run(func(int) bool {
		r, err := e.client.GetAccountWithResponse(ctx, bearer(reader.Access))
		switch {
		case err != nil:
			t.Errorf("get account: %v", err)
		case r.StatusCode() == http.StatusOK:
			gets.ok.Add(1)
		case r.StatusCode() == http.StatusServiceUnavailable:
			checkUnavailable("get account", r.HTTPResponse.Header, r.Body)
			gets.unavailable.Add(1)
			return true
		default:
			t.Errorf("get account: status %d, body %s", r.StatusCode(), r.Body)
			return true
		}
		return false
	})
	run(func(int) bool {
		r, err := e.client.GetAccountWithResponse(ctx, bearer(gone.Access))
		switch {
		case err != nil:
			t.Errorf("get account, logged out: %v", err)
		case r.StatusCode() == http.StatusUnauthorized:
			revoked.ok.Add(1)
		case r.StatusCode() == http.StatusServiceUnavailable:
			checkUnavailable("get account, logged out", r.HTTPResponse.Header, r.Body)
			revoked.unavailable.Add(1)
			return true
		default:
			t.Errorf("get account with a logged-out token: status %d, want 401 or 503; body %s", r.StatusCode(), r.Body)
			return true
		}
		return false
	})
	run(func(int) bool {
		mu.Lock()
		cur := lastPair.Refresh
		mu.Unlock()
		r, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: cur})
		switch {
		case err != nil:
			t.Errorf("refresh: %v", err)
		case r.StatusCode() == http.StatusOK && r.JSON200.Refresh != nil:
			mu.Lock()
			lastPair = client.TokenPair{Access: r.JSON200.Access, Refresh: *r.JSON200.Refresh}
			mu.Unlock()
			refreshes.ok.Add(1)
		case r.StatusCode() == http.StatusServiceUnavailable:
			// Retried with the same token: if the rotation committed unacknowledged, the
			// grace window answers it again.
			checkUnavailable("refresh", r.HTTPResponse.Header, r.Body)
			refreshes.unavailable.Add(1)
			return true
		default:
			t.Errorf("refresh: status %d, body %s", r.StatusCode(), r.Body)
			return true
		}
		return false
	})
	run(func(i int) bool {
		name := fmt.Sprintf("new%d", i)
		r, err := e.client.CreateUserWithResponse(ctx, newUserBody(name), bearer(admin.Access))
		switch {
		case err != nil:
			t.Errorf("create user: %v", err)
		case r.StatusCode() == http.StatusCreated:
			mu.Lock()
			created = append(created, name)
			mu.Unlock()
			creations.ok.Add(1)
		case r.StatusCode() == http.StatusServiceUnavailable:
			checkUnavailable("create user", r.HTTPResponse.Header, r.Body)
			creations.unavailable.Add(1)
			return true
		default:
			t.Errorf("create user %s: status %d, body %s", name, r.StatusCode(), r.Body)
			return true
		}
		return false
	})
	stopped := false
	stopTraffic := func() {
		if !stopped {
			stopped = true
			close(stop)
			wg.Wait()
		}
	}
	defer stopTraffic()
	all := []*tally{&gets, &revoked, &refreshes, &creations}
	okAtLeast := func(n []int64) func() bool {
		return func() bool {
			for i, k := range all {
				if k.ok.Load() < n[i] {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, "traffic before the outage", okAtLeast([]int64{3, 3, 3, 3}))
	if n := downs.Load(); n != 0 {
		t.Fatalf("%d outages before the database went away", n)
	}

	db.begin(t)
	waitFor(t, "refusals during the outage", func() bool {
		return downs.Load() == 1 && refreshes.unavailable.Load() >= 10 && creations.unavailable.Load() >= 10 &&
			(backend == "sqlite" || gets.unavailable.Load() >= 3) // SQLite still reads
	})
	if backend == "postgres" {
		r, err := e.client.GetReadyWithResponse(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, "readyz during the outage", r.StatusCode(), r.Body, http.StatusServiceUnavailable, "unavailable")
	}
	db.end(t)

	mark := make([]int64, len(all))
	for i, k := range all {
		mark[i] = k.ok.Load() + 3
	}
	waitFor(t, "the database to be back", func() bool { return ups.Load() == downs.Load() })
	waitFor(t, "traffic after the outage", okAtLeast(mark))
	stopTraffic()

	// Every acknowledged write is there, and the logout still holds.
	mu.Lock()
	defer mu.Unlock()
	for _, name := range created {
		if _, err := e.store.UserByUsername(ctx, name); err != nil {
			t.Errorf("user %s, acknowledged as created: %v", name, err)
		}
	}
	r, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: lastPair.Refresh})
	if err != nil || r.StatusCode() != http.StatusOK {
		t.Errorf("refresh with the last acknowledged token: %v status %d body %s", err, r.StatusCode(), r.Body)
	}
	g, err := e.client.GetAccountWithResponse(ctx, bearer(gone.Access))
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, "logged-out access token after the outage", g.StatusCode(), g.Body, http.StatusUnauthorized, "token_not_valid")
	rg, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: gone.Refresh})
	if err != nil {
		t.Fatal(err)
	}
	if rg.StatusCode() != http.StatusUnauthorized {
		t.Errorf("logged-out refresh token after the outage: status %d, want 401; body %s", rg.StatusCode(), rg.Body)
	}
	ready, err := e.client.GetReadyWithResponse(ctx)
	if err != nil || ready.StatusCode() != http.StatusOK {
		t.Errorf("readyz after the outage: %v status %d", err, ready.StatusCode())
	}

	// Logged once per outage, not per request; every refusal counted.
	var refused int64
	for _, k := range all {
		refused += k.unavailable.Load()
	}
	got := logs.snapshot()
	n := int(downs.Load())
	if got["database unavailable: requests that need it answer 503 until it is back @ERROR"] != n ||
		got["database available again @INFO"] != n || got["request failed @ERROR"] != 0 {
		t.Errorf("log lines %v, want one outage line and one recovery line for each of %d outages, no request failures", got, n)
	}
	ms := httptest.NewServer(m.Handler())
	defer ms.Close()
	samples := metricstest.Scrape(t, http.DefaultClient, ms.URL)
	if c := samples.Value("authapi_database_unavailable_requests_total"); c != float64(refused) {
		t.Errorf("authapi_database_unavailable_requests_total = %v, want the %d requests refused", c, refused)
	}
	t.Logf("%s: %d outage(s); refused %d requests (GETs %d, logged out %d, refreshes %d, creations %d); created %d users",
		backend, n, refused, gets.unavailable.Load(), revoked.unavailable.Load(), refreshes.unavailable.Load(),
		creations.unavailable.Load(), len(created))
	if refused < int64(10*n) {
		t.Errorf("%d outages logged for %d refused requests: want far fewer outages than refusals", n, refused)
	}
}

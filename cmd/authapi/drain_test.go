package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/testbin"
)

// outcome is what one request of the load got, and when it was sent.
type outcome struct {
	what   string
	sentAt time.Time
	status int
	close  bool // the response said Connection: close
	err    error
}

// TestServeDrainUnderLoad runs the built binary under a load of logins and authenticated
// requests over keep-alive connections, and sends it SIGTERM, with a load balancer's view:
// a watcher polls /readyz on new connections, and the load stops once it answers 503, as a
// balancer would stop routing here (after a few more requests, as its next check would).
// Meanwhile one login is in flight with half its body sent.
// It checks outcomes, never durations:
//   - /readyz turns 503 (on a new connection, so new connections are still accepted then),
//     and the answers after that close their connections, so clients reconnect elsewhere;
//   - no request of the load gets a 5xx, and none fails at all unless it was sent after the
//     server logged that its drain was over ("shutting down", when the listener closes);
//   - the login in flight completes with 200 after the listener has closed;
//   - the process exits 0, within the drain plus the shutdown timeout (bounded generously).
func TestServeDrainUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs it under load; make test runs it (no -short)")
	}
	if runtime.GOOS == "windows" {
		t.Skip("sends SIGTERM")
	}
	t.Parallel()
	const (
		drain           = time.Second
		shutdownTimeout = 20 * time.Second
		workers         = 6
		realPassword    = "correct horse battery staple 7"
	)
	dir := t.TempDir()
	bin := testbin.Build(t)
	addr := testbin.FreeAddr(t)
	base := "http://" + addr
	cmd := exec.Command(bin, "serve")
	cmd.Env = []string{
		"AUTHAPI_ADDR=" + addr,
		"AUTHAPI_DB=" + filepath.Join(dir, "authapi.db"),
		"AUTHAPI_SHUTDOWN_DRAIN=" + drain.String(),
		"AUTHAPI_SHUTDOWN_TIMEOUT=" + shutdownTimeout.String(),
		"AUTHAPI_ARGON2_MEMORY_KIB=64", "AUTHAPI_ARGON2_ITERATIONS=1",
		"AUTHAPI_LOGIN_FAILURES_PER_ACCOUNT=-1", "AUTHAPI_LOGIN_FAILURES_PER_IP=-1",
		"AUTHAPI_BOOTSTRAP_USERNAME=alice", "AUTHAPI_BOOTSTRAP_PASSWORD=" + realPassword,
	}
	var stdout, stderr testbin.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s serve: %v", bin, err)
	}
	exited := make(chan error, 1)
	done := make(chan struct{}) // closed once the process has been waited for
	go func() {
		defer close(done)
		exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: workers}}
	waitChildHealthy(t, hc, base, exited, &stderr)
	access := mustLogin(t, hc, base, "alice", realPassword)
	loginBody, _ := json.Marshal(client.TokenObtainRequest{Username: "alice", Password: realPassword})

	// The load: each worker alternates an authenticated GET (which the client may retry on a
	// closed keep-alive connection) and a login (a POST, which it never retries).
	var (
		stop     atomic.Bool
		mu       sync.Mutex
		outcomes []outcome
		sent     atomic.Int64
		wg       sync.WaitGroup
		// notReadyAt is when the watcher first got 503 from /readyz; the load goes on for
		// a few requests after it, as a balancer's next health check would take a moment.
		notReadyAt        atomic.Pointer[time.Time]
		sentWhileNotReady atomic.Int64
	)
	send := func(what string, req *http.Request) {
		o := outcome{what: what, sentAt: time.Now()}
		resp, err := hc.Do(req)
		if err != nil {
			o.err = err
		} else {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			o.status, o.close = resp.StatusCode, resp.Close
		}
		sent.Add(1)
		if drainSeen := notReadyAt.Load(); drainSeen != nil && o.sentAt.After(*drainSeen) {
			sentWhileNotReady.Add(1)
		}
		mu.Lock()
		outcomes = append(outcomes, o)
		mu.Unlock()
	}
	for range workers {
		wg.Go(func() {
			for i := 0; !stop.Load() && i < 100_000; i++ {
				if i%2 == 0 {
					req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/", nil)
					req.Header.Set("Authorization", "Bearer "+access)
					send("GET /api/v1/", req)
				} else {
					req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/auth/token/", bytes.NewReader(loginBody))
					req.Header.Set("Content-Type", "application/json")
					send("POST /api/v1/auth/token/", req)
				}
			}
		})
	}

	// A login in flight across the shutdown: headers and half the body now.
	inflight, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer inflight.Close()
	half := len(loginBody) / 2
	fmt.Fprintf(inflight, "POST /api/v1/auth/token/ HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		addr, len(loginBody), loginBody[:half])

	waitUntil(t, "the load to get going", func() bool { return sent.Load() >= 50 })
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}

	// The load balancer: new connections, until /readyz says 503; then the load stops.
	probe := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	var notReady client.Error
	waitUntil(t, "/readyz to answer 503", func() bool {
		resp, err := probe.Get(base + "/readyz")
		if err != nil {
			t.Fatalf("GET /readyz after SIGTERM, on a new connection: %v", err)
		}
		defer resp.Body.Close()
		_ = json.NewDecoder(resp.Body).Decode(&notReady)
		return resp.StatusCode == http.StatusServiceUnavailable
	})
	now := time.Now()
	notReadyAt.Store(&now)
	// A balancer stops within the drain: the load ends after 60 requests or half the drain,
	// whichever comes first, so that on a slow machine no request is still on its way to the
	// server (written, not yet read) when the listener and the idle connections close.
	waitUntil(t, "requests of the load after /readyz answered 503", func() bool {
		return sentWhileNotReady.Load() >= 60 || (sentWhileNotReady.Load() > 0 && time.Since(now) >= drain/2)
	})
	stop.Store(true)
	wg.Wait()
	if notReady.Code != "unavailable" {
		t.Errorf("/readyz while draining: %+v, want code unavailable", notReady)
	}

	// Once the drain is over the listener closes; the login in flight still gets its answer.
	waitUntil(t, `the "shutting down" log line`, func() bool { return strings.Contains(stdout.String(), `"msg":"shutting down"`) })
	waitUntil(t, "the listener to close", func() bool {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err == nil {
			c.Close()
		}
		return errors.Is(err, syscall.ECONNREFUSED)
	})
	if _, err := inflight.Write(loginBody[half:]); err != nil {
		t.Fatalf("send the rest of the login in flight: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(inflight), nil)
	if err != nil {
		t.Fatalf("the login in flight got no answer: %v", err)
	}
	var pair client.TokenPair
	err = json.NewDecoder(resp.Body).Decode(&pair)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err != nil || pair.Access == "" {
		t.Errorf("the login in flight = %d (%v), want 200 with tokens", resp.StatusCode, err)
	}

	bound := drain + shutdownTimeout + 30*time.Second // generous: only a hang fails it
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM, want 0; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(bound):
		t.Fatalf("serve still running %v after its drain ended; stdout:\n%s", bound, stdout.String())
	}

	lines := logLines(t, stdout.String())
	shuttingDown, ok := findLog(lines, map[string]any{"msg": "shutting down"})
	if !ok {
		t.Fatalf("no \"shutting down\" log line:\n%s", stdout.String())
	}
	closedAt, err := time.Parse(time.RFC3339Nano, shuttingDown["time"].(string))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"draining: /readyz answers 503", "stopped"} {
		if _, ok := findLog(lines, map[string]any{"msg": want}); !ok {
			t.Errorf("no %q log line:\n%s", want, stdout.String())
		}
	}
	counts := map[string]int{}
	for _, o := range outcomes {
		switch {
		case o.status >= 500:
			t.Errorf("%s sent at %v: status %d", o.what, o.sentAt, o.status)
		case o.err != nil && !o.sentAt.After(closedAt):
			t.Errorf("%s sent at %v, before the listener closed at %v: %v", o.what, o.sentAt, closedAt, o.err)
		case o.err == nil && o.sentAt.After(now) && !o.close:
			t.Errorf("%s sent at %v, while /readyz answered 503: no Connection: close", o.what, o.sentAt)
		}
		switch {
		case o.err != nil:
			counts["error after the drain"]++
		default:
			counts[fmt.Sprint(o.status)]++
		}
	}
	t.Logf("%d requests of the load: %v", len(outcomes), counts)
}

// waitUntil polls cond for up to a minute.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after a minute waiting for %s", what)
		}
	}
}

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/testbin"
)

// maxLoginBurstGrowth is how much a burst of logins may raise the server's peak RSS. Without a
// bound on concurrent hashing, 80 logins at 19 MiB of argon2id each took 1.3-1.6 GiB.
const maxLoginBurstGrowth = 256 << 20

// TestLoginBurstMemory sends 80 logins at once to the real binary with production argon2id
// costs and no login throttle, and checks that every answer is 401, 429 or 503 busy and that
// the server's peak RSS grows by less than maxLoginBurstGrowth. The child runs with
// GOMAXPROCS=2, so the default limit (4 concurrent hashes) is what is measured whatever the
// machine.
func TestLoginBurstMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and hashes 80 passwords at production cost; make test runs it (no -short)")
	}
	if runtime.GOOS != "linux" {
		t.Skip("reads the peak RSS (VmHWM) from /proc/<pid>/status, which only Linux has")
	}
	t.Parallel()
	const logins = 80
	dir := t.TempDir()
	bin := testbin.Build(t)
	addr := testbin.FreeAddr(t)
	base := "http://" + addr
	const realPassword = "correct horse battery staple 7"
	cmd, exited, _, stderr := startChildServe(t, bin, []string{
		"GOMAXPROCS=2",
		"AUTHAPI_ADDR=" + addr,
		"AUTHAPI_DB=" + filepath.Join(dir, "authapi.db"),
		"AUTHAPI_LOGIN_FAILURES_PER_ACCOUNT=-1",
		"AUTHAPI_LOGIN_FAILURES_PER_IP=-1",
		"AUTHAPI_BOOTSTRAP_USERNAME=alice",
		"AUTHAPI_BOOTSTRAP_PASSWORD=" + realPassword,
	})

	hc := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: logins}}
	waitChildHealthy(t, hc, base, exited, stderr)
	before := peakRSS(t, cmd.Process.Pid)

	type answer struct {
		status     int
		code       client.ErrorCode
		retryAfter string
		err        error
	}
	answers := make([]answer, logins)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range logins {
		wg.Go(func() {
			// Half unknown users (the dummy verify), half wrong passwords for a real one.
			username, pw := fmt.Sprintf("nobody%d", i), realPassword
			if i%2 == 1 {
				username, pw = "alice", fmt.Sprintf("wrong password %d", i)
			}
			body, _ := json.Marshal(client.TokenObtainRequest{Username: username, Password: pw})
			<-start
			resp, err := hc.Post(base+"/api/v1/auth/token/", "application/json", bytes.NewReader(body))
			if err != nil {
				answers[i] = answer{err: err}
				return
			}
			defer resp.Body.Close()
			var e client.Error
			_ = json.NewDecoder(resp.Body).Decode(&e)
			answers[i] = answer{status: resp.StatusCode, code: e.Code, retryAfter: resp.Header.Get("Retry-After")}
		})
	}
	close(start)
	wg.Wait()
	after := peakRSS(t, cmd.Process.Pid)

	counts := map[int]int{}
	for i, a := range answers {
		switch {
		case a.err != nil:
			t.Errorf("login %d: %v", i, a.err)
		case a.status == http.StatusServiceUnavailable && (a.code != "busy" || a.retryAfter == ""):
			t.Errorf("login %d: 503 with code %q and Retry-After %q, want busy and a Retry-After", i, a.code, a.retryAfter)
		case !slices.Contains([]int{http.StatusUnauthorized, http.StatusTooManyRequests, http.StatusServiceUnavailable}, a.status):
			t.Errorf("login %d: status %d (code %q), want 401, 429 or 503 busy", i, a.status, a.code)
		}
		counts[a.status]++
	}
	if counts[http.StatusUnauthorized] == 0 {
		t.Errorf("no login was checked (answers by status %v): the burst measured nothing", counts)
	}
	growth := after - before
	t.Logf("%d parallel logins: answers by status %v; peak RSS %d MiB before, %d MiB after, growth %d MiB",
		logins, counts, before>>20, after>>20, growth>>20)
	if growth >= maxLoginBurstGrowth {
		t.Errorf("peak RSS grew by %d MiB (%d -> %d MiB), want under %d MiB",
			growth>>20, before>>20, after>>20, maxLoginBurstGrowth>>20)
	}
}

// startChildServe starts bin serve with exactly env, and stops it at the end of the test.
func startChildServe(t *testing.T, bin string, env []string) (cmd *exec.Cmd, exited <-chan error, stdout, stderr *testbin.Buffer) {
	t.Helper()
	cmd = exec.Command(bin, "serve")
	cmd.Env = env
	stdout, stderr = &testbin.Buffer{}, &testbin.Buffer{}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s serve: %v", bin, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	return cmd, done, stdout, stderr
}

// waitChildHealthy polls GET /readyz (which answers 200 only once serve has started, after
// /healthz does) for up to a minute, failing at once if the child exits.
func waitChildHealthy(t *testing.T, hc *http.Client, base string, exited <-chan error, stderr *testbin.Buffer) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case err := <-exited:
			t.Fatalf("serve exited (%v) before answering /readyz; stderr:\n%s", err, stderr.String())
		default:
		}
		if resp, err := hc.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve was not ready within a minute; stderr:\n%s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// peakRSS is the process's peak resident set size (VmHWM) in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("read peak RSS: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "VmHWM:	   81234 kB"
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("parse VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status (err %v)", pid, sc.Err())
	return 0
}

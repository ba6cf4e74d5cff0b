package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/testbin"
)

// The profiling listener exists only when asked for, and never on the API listener.
func TestServeDebugAddr(t *testing.T) {
	t.Parallel()
	t.Run("off by default", func(t *testing.T) {
		t.Parallel()
		srv := startServe(t, testEnv(), "--db", storetest.DSN(t, "sqlite"))
		base := "http://" + srv.addr
		srv.waitHealthy(t, http.DefaultClient, base)
		if resp := mustGet(t, http.DefaultClient, base+"/debug/pprof/"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /debug/pprof/ on the API listener = %d, want 404", resp.StatusCode)
		}
		if l, ok := findLog(logLines(t, srv.stdout.String()), map[string]any{"msg": "serving profiles"}); ok {
			t.Errorf("serve without --debug-addr logged %v, want no profiling listener", l)
		}
	})

	for _, how := range []string{"flag", "env"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			debugAddr := testbin.FreeAddr(t)
			e, args := testEnv(), []string{"--db", storetest.DSN(t, "sqlite")}
			if how == "flag" {
				args = append(args, "--debug-addr", debugAddr)
			} else {
				e["AUTHAPI_DEBUG_ADDR"] = debugAddr
			}
			srv := startServe(t, e, args...)
			base := "http://" + srv.addr
			srv.waitHealthy(t, http.DefaultClient, base)

			client := &http.Client{Timeout: 10 * time.Second}
			resp, err := client.Get("http://" + debugAddr + "/debug/pprof/")
			if err != nil {
				t.Fatalf("GET /debug/pprof/ on %s: %v", debugAddr, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine") {
				t.Errorf("GET /debug/pprof/ on the debug listener = %d %.200q, want 200 listing the goroutine profile", resp.StatusCode, body)
			}
			if resp := mustGet(t, client, "http://"+debugAddr+"/debug/pprof/goroutine?debug=1"); resp.StatusCode != http.StatusOK {
				t.Errorf("GET /debug/pprof/goroutine = %d, want 200", resp.StatusCode)
			}
			if resp := mustGet(t, http.DefaultClient, base+"/debug/pprof/"); resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET /debug/pprof/ on the API listener = %d, want 404", resp.StatusCode)
			}
			// The debug listener serves profiles only, not the API.
			if resp := mustGet(t, client, "http://"+debugAddr+"/healthz"); resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET /healthz on the debug listener = %d, want 404", resp.StatusCode)
			}
			if _, ok := findLog(logLines(t, srv.stdout.String()), map[string]any{"msg": "serving profiles", "url": "http://" + debugAddr + "/debug/pprof/"}); !ok {
				t.Errorf("no log line for the profiling listener in stdout:\n%s", srv.stdout.String())
			}
		})
	}
}

func TestServeDebugAddrRefusesRemote(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "example.com:6060", "10.1.2.3:6060"} {
		t.Run(addr, func(t *testing.T) {
			t.Parallel()
			res := runCLI(t, testEnv(), "", "serve", "--db", storetest.DSN(t, "sqlite"), "--addr", testbin.FreeAddr(t), "--debug-addr", addr)
			if res.code != 1 || !strings.Contains(res.stderr, "not a loopback address") {
				t.Errorf("serve --debug-addr %s: exit code %d, stderr %q; want 1 and a refusal", addr, res.code, res.stderr)
			}
		})
	}
	t.Run("allowed", func(t *testing.T) {
		t.Parallel()
		srv := startServe(t, testEnv("AUTHAPI_DEBUG_ALLOW_REMOTE", "true"), "--db", storetest.DSN(t, "sqlite"), "--debug-addr", "0.0.0.0:0")
		srv.waitHealthy(t, http.DefaultClient, "http://"+srv.addr)
		if _, ok := findLog(logLines(t, srv.stdout.String()), map[string]any{"msg": "serving profiles"}); !ok {
			t.Errorf("no log line for the profiling listener with --debug-allow-remote:\n%s", srv.stdout.String())
		}
	})
}

package main

import (
	"math"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/metrics/metricstest"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/testbin"
)

// The metrics listener exists only when asked for, is never the API's, and exports the
// runtime, the process, the database pools and the key ring besides the API's own series,
// which follow what happens: a login, a key rotation by another process.
func TestServeMetricsAddr(t *testing.T) {
	t.Parallel()
	t.Run("off by default", func(t *testing.T) {
		t.Parallel()
		srv := startServe(t, testEnv(), "--db", storetest.DSN(t, "sqlite"))
		base := "http://" + srv.addr
		srv.waitHealthy(t, http.DefaultClient, base)
		if resp := mustGet(t, http.DefaultClient, base+"/metrics"); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET /metrics on the API listener = %d, want 404", resp.StatusCode)
		}
		if l, ok := findLog(logLines(t, srv.stdout.String()), map[string]any{"msg": "serving metrics"}); ok {
			t.Errorf("serve without --metrics-addr logged %v, want no metrics listener", l)
		}
	})
	for _, how := range []string{"flag", "env"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			metricsAddr, dsn := testbin.FreeAddr(t), storetest.DSN(t, "sqlite")
			e := testEnv("AUTHAPI_BOOTSTRAP_USERNAME", "alice", "AUTHAPI_BOOTSTRAP_PASSWORD", bootstrapPassword,
				"AUTHAPI_KEY_RELOAD_INTERVAL", "50ms")
			args := []string{"--db", dsn, "--db-max-open-conns", "7"}
			if how == "flag" {
				args = append(args, "--metrics-addr", metricsAddr)
			} else {
				e["AUTHAPI_METRICS_ADDR"] = metricsAddr
			}
			srv := startServe(t, e, args...)
			base, scrapeURL := "http://"+srv.addr, "http://"+metricsAddr+"/metrics"
			srv.waitHealthy(t, http.DefaultClient, base)
			if _, ok := findLog(logLines(t, srv.stdout.String()), map[string]any{"msg": "serving metrics", "url": scrapeURL}); !ok {
				t.Errorf("no log line for the metrics listener in stdout:\n%s", srv.stdout.String())
			}

			got := metricstest.Scrape(t, http.DefaultClient, scrapeURL)
			for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "go_build_info",
				"go_sql_open_connections", "go_sql_wait_count_total", "authapi_password_hash_queue_wait_seconds_count"} {
				if !got.Has(name) {
					t.Errorf("scrape has no %s", name)
				}
			}
			if runtime.GOOS == "linux" && !got.Has("process_cpu_seconds_total") {
				t.Error("scrape has no process_cpu_seconds_total")
			}
			for pool, want := range map[string]float64{"sqlite_write": 1, "sqlite_read": 7} {
				if v, ok := got.Get("go_sql_max_open_connections", "db_name", pool); !ok || v != want {
					t.Errorf("go_sql_max_open_connections{db_name=%q} = %v (present %v), want %v", pool, v, ok, want)
				}
			}
			if v := got.Value("authapi_signing_keys_loaded"); v != 1 {
				t.Errorf("authapi_signing_keys_loaded = %v, want 1", v)
			}
			if v := got.Value("authapi_signing_key_next_signs_in_seconds"); !math.IsInf(v, 1) {
				t.Errorf("authapi_signing_key_next_signs_in_seconds = %v with no key pending, want +Inf", v)
			}

			mustLogin(t, http.DefaultClient, base, "alice", bootstrapPassword)
			got = metricstest.Scrape(t, http.DefaultClient, scrapeURL)
			if v := got.Value("authapi_logins_total", "outcome", "ok"); v != 1 {
				t.Errorf("authapi_logins_total{outcome=ok} after one login = %v, want 1", v)
			}
			if v := got.Value("authapi_http_requests_total", "method", "POST", "route", "/api/v1/auth/token/", "status", "200"); v != 1 {
				t.Errorf("POST /api/v1/auth/token/ 200 requests = %v, want 1", v)
			}

			// Another process rotates the key; this one sees it at its next reload.
			if res := runCLI(t, testEnv("AUTHAPI_KEY_RELOAD_INTERVAL", "50ms"), "", "keys", "rotate", "--db", dsn); res.code != 0 {
				t.Fatalf("keys rotate: %d\n%s", res.code, res.stderr)
			}
			srv.waitFor(t, "the rotated key in the metrics", func() bool {
				return metricstest.Scrape(t, http.DefaultClient, scrapeURL).Value("authapi_signing_keys_loaded") == 2
			})
			// Published now, signing after the reload interval, the JWKS cache time and the skew.
			next := metricstest.Scrape(t, http.DefaultClient, scrapeURL).Value("authapi_signing_key_next_signs_in_seconds")
			if max := (50*time.Millisecond + 6*time.Minute).Seconds(); next <= 0 || next > max {
				t.Errorf("authapi_signing_key_next_signs_in_seconds after a rotation = %v, want in (0, %v]", next, max)
			}

			client := &http.Client{Timeout: 10 * time.Second}
			if resp := mustGet(t, http.DefaultClient, base+"/metrics"); resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET /metrics on the API listener = %d, want 404", resp.StatusCode)
			}
			if resp := mustGet(t, client, "http://"+metricsAddr+"/healthz"); resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET /healthz on the metrics listener = %d, want 404", resp.StatusCode)
			}
		})
	}
}

func TestServeMetricsAddrRefusesRemote(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "example.com:9464", "10.1.2.3:9464"} {
		t.Run(addr, func(t *testing.T) {
			t.Parallel()
			res := runCLI(t, testEnv(), "", "serve", "--db", storetest.DSN(t, "sqlite"), "--addr", testbin.FreeAddr(t), "--metrics-addr", addr)
			if res.code != 1 || !strings.Contains(res.stderr, "not a loopback address") || !strings.Contains(res.stderr, "--metrics-allow-remote") {
				t.Errorf("serve --metrics-addr %s: exit code %d, stderr %q; want 1 and a refusal naming --metrics-allow-remote", addr, res.code, res.stderr)
			}
		})
	}
	t.Run("allowed", func(t *testing.T) {
		t.Parallel()
		srv := startServe(t, testEnv("AUTHAPI_METRICS_ALLOW_REMOTE", "true"), "--db", storetest.DSN(t, "sqlite"), "--metrics-addr", "0.0.0.0:0")
		srv.waitHealthy(t, http.DefaultClient, "http://"+srv.addr)
		if _, ok := findLog(logLines(t, srv.stdout.String()), map[string]any{"msg": "serving metrics"}); !ok {
			t.Errorf("no log line for the metrics listener with --metrics-allow-remote:\n%s", srv.stdout.String())
		}
	})
}

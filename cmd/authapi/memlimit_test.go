package main

import (
	"bufio"
	"math"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/testbin"
)

// The tests run serve in this process, and many at once: a limit sized for one server would
// make the collector run without pause here.
func init() { setMemoryLimit = func(int64) int64 { return math.MaxInt64 } }

func TestMemoryLimit(t *testing.T) {
	const mib = 1 << 20
	defaults := serveConfig{cacheMiB: 64, maxHashes: 4, argonMemory: 19456}
	for _, tc := range []struct {
		name       string
		cfg        func(*serveConfig)
		gomemlimit string
		want       int64
	}{
		{"defaults", func(*serveConfig) {}, "", 64*mib + 4*19*mib + memoryBaseMiB*mib},
		{"cache off", func(c *serveConfig) { c.cacheEntries = -1 }, "", 4*19*mib + memoryBaseMiB*mib},
		{"a larger cache", func(c *serveConfig) { c.cacheMiB, c.maxHashes, c.argonMemory = 256, 2, 8192 }, "", 256*mib + 16*mib + memoryBaseMiB*mib},
		{"GOMEMLIMIT set", func(*serveConfig) {}, "1GiB", 0},
		{"none", func(c *serveConfig) { c.memoryLimitMiB = -1 }, "", 0},
		{"set", func(c *serveConfig) { c.memoryLimitMiB = 300 }, "", 300 * mib},
		{"set, and GOMEMLIMIT", func(c *serveConfig) { c.memoryLimitMiB = 300 }, "1GiB", 300 * mib},
	} {
		cfg := defaults
		tc.cfg(&cfg)
		got, _ := memoryLimit(cfg, env{"GOMEMLIMIT": tc.gomemlimit}.get)
		if got != tc.want {
			t.Errorf("%s: limit %d MiB, want %d MiB", tc.name, got/mib, tc.want/mib)
		}
	}
}

// TestServeSetsMemoryLimit runs the real binary, whose runtime the limit is for, and reads
// the limit it runs with from its metrics.
func TestServeSetsMemoryLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary; make test runs it (no -short)")
	}
	t.Parallel()
	bin := testbin.Build(t)
	for _, tc := range []struct {
		name string
		env  []string
		want int64
	}{
		{"from the bounds", []string{"AUTHAPI_AUTH_CACHE_MIB=100", "AUTHAPI_MAX_CONCURRENT_HASHES=2", "AUTHAPI_ARGON2_MEMORY_KIB=8192"}, (100 + 16 + memoryBaseMiB) << 20},
		{"GOMEMLIMIT", []string{"AUTHAPI_AUTH_CACHE_MIB=100", "GOMEMLIMIT=300MiB"}, 300 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := serveMemoryLimit(t, bin, tc.env); got != tc.want {
				t.Errorf("go_gc_gomemlimit_bytes %d MiB, want %d MiB", got>>20, tc.want>>20)
			}
		})
	}
}

// serveMemoryLimit starts bin serve with env and returns go_gc_gomemlimit_bytes.
func serveMemoryLimit(t *testing.T, bin string, env []string) int64 {
	t.Helper()
	addr, metricsAddr := testbin.FreeAddr(t), testbin.FreeAddr(t)
	_, exited, stdout, stderr := startChildServe(t, bin, append([]string{
		"AUTHAPI_ADDR=" + addr,
		"AUTHAPI_METRICS_ADDR=" + metricsAddr,
		"AUTHAPI_DB=" + filepath.Join(t.TempDir(), "authapi.db"),
	}, env...))
	hc := &http.Client{Timeout: time.Minute}
	waitChildHealthy(t, hc, "http://"+addr, exited, stderr)
	resp, err := hc.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_gc_gomemlimit_bytes "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("go_gc_gomemlimit_bytes %q: %v", v, err)
			}
			if f >= math.MaxInt64 {
				return math.MaxInt64 // none set
			}
			return int64(f)
		}
	}
	t.Fatalf("no go_gc_gomemlimit_bytes in the metrics (err %v); stdout:\n%s", sc.Err(), stdout.String())
	return 0
}

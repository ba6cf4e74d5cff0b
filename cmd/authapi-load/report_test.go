package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	// A command name with spaces and a ')' of its own; utime 250 and stime 70 ticks.
	stat := []byte("4242 (auth api) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 70 0 0 20 0 8 0 100 1000000 2000 18446744073709551615\n")
	got, err := parseStatCPU(stat)
	if err != nil {
		t.Fatalf("parseStatCPU: %v", err)
	}
	if want := 3200 * time.Millisecond; got != want {
		t.Errorf("parseStatCPU = %s, want %s", got, want)
	}
	for _, bad := range []string{"", "4242 (authapi) S 1 2", "4242 authapi S 1 2 3 4 5 6 7 8 9 10 11 12 13 14"} {
		if _, err := parseStatCPU([]byte(bad)); err == nil {
			t.Errorf("parseStatCPU(%q) = nil error, want one", bad)
		}
	}
}

func TestReadUsageSelf(t *testing.T) {
	t.Parallel()
	u, err := readUsage("self")
	if err != nil {
		t.Fatalf("readUsage(self): %v", err)
	}
	if u.peakRSS <= 0 {
		t.Errorf("peak RSS of this test = %d, want > 0", u.peakRSS)
	}
}

func TestParseStatusKiB(t *testing.T) {
	t.Parallel()
	status := []byte("Name:\tauthapi\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40000 kB\n")
	for field, want := range map[string]int64{"VmHWM": 51200, "VmRSS": 40000} {
		got, err := parseStatusKiB(status, field)
		if err != nil || got != want {
			t.Errorf("parseStatusKiB(%s) = %d, %v; want %d, nil", field, got, err, want)
		}
	}
	if _, err := parseStatusKiB(status, "VmSwap"); err == nil {
		t.Error("parseStatusKiB(VmSwap) = nil error for a missing field, want one")
	}
}

func TestNewRunClassifiesErrors(t *testing.T) {
	t.Parallel()
	var m vegeta.Metrics
	start := time.Unix(1000, 0)
	add := func(code uint16, latency time.Duration, at time.Duration, errMsg string) {
		m.Add(&vegeta.Result{Code: code, Latency: latency, Timestamp: start.Add(at), Error: errMsg})
	}
	for i := range 96 {
		add(200, 2*time.Millisecond, time.Duration(i)*10*time.Millisecond, "")
	}
	add(204, time.Millisecond, 960*time.Millisecond, "")
	add(401, time.Millisecond, 970*time.Millisecond, "401 Unauthorized")
	add(500, time.Millisecond, 980*time.Millisecond, "500 Internal Server Error")
	add(0, 9*time.Millisecond, 991*time.Millisecond, "connection reset by peer")
	m.Close()
	r := newRun(2, "welcome", "sqlite", attackResult{metrics: m, transport: map[string]int{"connection reset by peer": 1}, relogins: 1})

	if r.Requests != 100 {
		t.Errorf("requests = %d, want 100", r.Requests)
	}
	// From the first request sent (0 s) to the last answer (0.991 s + 9 ms).
	if r.Seconds != 1 || r.RPS != 100 {
		t.Errorf("seconds, rps = %v, %v; want 1, 100", r.Seconds, r.RPS)
	}
	want := map[string]int{"401": 1, "500": 1, "transport": 1}
	if len(r.Errors) != len(want) {
		t.Errorf("errors = %v, want %v (2xx are no errors)", r.Errors, want)
	}
	for k, n := range want {
		if r.Errors[k] != n {
			t.Errorf("errors[%s] = %d, want %d (all: %v)", k, r.Errors[k], n, r.Errors)
		}
	}
	if r.TransportErrors["connection reset by peer"] != 1 || r.Relogins != 1 {
		t.Errorf("transport errors %v, relogins %d; want the reset once and 1", r.TransportErrors, r.Relogins)
	}
	if r.P50Ms != 2 || r.MaxMs != 9 {
		t.Errorf("p50, max = %v, %v ms; want 2, 9", r.P50Ms, r.MaxMs)
	}
}

func TestSummarize(t *testing.T) {
	t.Parallel()
	runs := []run{
		{Round: 1, Scenario: "welcome", System: "bare", RPS: 1000, P99Ms: 5, PeakRSSMiB: 20, Errors: map[string]int{}},
		{Round: 1, Scenario: "welcome", System: "sqlite", RPS: 300, RatioToBare: 0.3, P99Ms: 40, PeakRSSMiB: 60, Errors: map[string]int{"500": 2}},
		{Round: 2, Scenario: "welcome", System: "bare", RPS: 800, P99Ms: 7, PeakRSSMiB: 22, Errors: map[string]int{}},
		{Round: 2, Scenario: "welcome", System: "sqlite", RPS: 320, RatioToBare: 0.4, P99Ms: 60, PeakRSSMiB: 50, Errors: map[string]int{"500": 1, "transport": 4}},
		{Round: 3, Scenario: "welcome", System: "bare", RPS: 5000, P99Ms: 1, PeakRSSMiB: 21, Errors: map[string]int{}},
		{Round: 3, Scenario: "welcome", System: "sqlite", RPS: 310, RatioToBare: 0.062, P99Ms: 50, PeakRSSMiB: 55, Errors: map[string]int{}},
	}
	got := summarize(runs)
	if len(got) != 2 || got[0].System != "bare" || got[1].System != "sqlite" {
		t.Fatalf("summarize = %+v, want bare then sqlite", got)
	}
	bare, sqlite := got[0], got[1]
	if bare.RPS != 1000 || bare.P99Ms != 5 || bare.PeakRSSMiB != 22 {
		t.Errorf("bare = %+v, want median rps 1000, median p99 5, highest RSS 22", bare)
	}
	if sqlite.RPS != 310 || sqlite.RatioToBare != 0.3 || sqlite.P99Ms != 50 || sqlite.PeakRSSMiB != 60 {
		t.Errorf("sqlite = %+v, want medians 310 req/s, 0.3x, p99 50 and highest RSS 60", sqlite)
	}
	if sqlite.Errors["500"] != 3 || sqlite.Errors["transport"] != 4 {
		t.Errorf("sqlite errors = %v, want 500:3 and transport:4 summed over rounds", sqlite.Errors)
	}
	if m := median(runs[:2], func(r run) float64 { return r.RPS }); m != 650 {
		t.Errorf("median of two = %v, want their mean 650", m)
	}
}

func TestFormatErrors(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		errs map[string]int
		want string
	}{
		{nil, "0"},
		{map[string]int{"500": 0}, "0"},
		{map[string]int{"transport": 2, "503": 1, "401": 7, "429": 3}, "401:7 429:3 503:1 transport:2"},
	} {
		if got := formatErrors(tt.errs); got != tt.want {
			t.Errorf("formatErrors(%v) = %q, want %q", tt.errs, got, tt.want)
		}
	}
}

func TestRenderAndWriteJSON(t *testing.T) {
	t.Parallel()
	rep := &report{
		Started: time.Date(2026, 12, 2, 3, 0, 0, 0, time.UTC), Duration: "5s", Rounds: 2, Conns: 32, CPUs: 2,
		Runs: []run{
			{Round: 1, Scenario: "welcome", System: "bare", RPS: 20000, Errors: map[string]int{}},
			{Round: 1, Scenario: "welcome", System: "sqlite", RPS: 4000, RatioToBare: 0.2, P50Ms: 6.5, P99Ms: 38.25, Errors: map[string]int{"500": 44}, PeakRSSMiB: 70},
		},
		ServerLogs: []serverLog{{Server: "sqlite", ErrorLines: 44, Status5xx: 44}},
	}
	rep.Summary = summarize(rep.Runs)
	var out bytes.Buffer
	renderTable(&out, rep)
	text := out.String()
	for _, want := range []string{
		"32 connections, 5s per run, median of 2 rounds; 2 CPUs",
		"| scenario ",
		"| welcome  | sqlite | 4000  | 0.200  | 6.50   | 38.25  | 500:44 | 70 ",
		"sqlite logged 44 ERROR lines and 44 requests with a 5xx status",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("table lacks %q:\n%s", want, text)
		}
	}
	// Every table line has the same width, so that it reads as a table in a terminal too.
	var width int
	for line := range strings.Lines(text) {
		if strings.HasPrefix(line, "|") {
			if n := utf8.RuneCountInString(line); width == 0 {
				width = n
			} else if n != width {
				t.Errorf("table line %q is %d characters wide, want %d", line, n, width)
			}
		}
	}

	path := filepath.Join(t.TempDir(), "sub", "results.json")
	if err := writeJSON(path, rep); err != nil {
		t.Fatalf("writeJSON: %v", err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	var back report
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("results JSON does not parse: %v\n%s", err, b)
	}
	if len(back.Runs) != 2 || back.Runs[1].Errors["500"] != 44 || back.Summary[1].RatioToBare != 0.2 {
		t.Errorf("results JSON read back = %+v, want the runs and summary written", back)
	}
}

func TestParseOptions(t *testing.T) {
	t.Parallel()
	env := func(string) string { return "" }
	o, err := parseOptions(nil, env, io.Discard)
	if err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if o.conns != 32 || o.rounds != 2 || o.duration != 5*time.Second || o.users != 10000 || len(o.scenarios) != len(allScenarios)-1 || o.postgresDSN != "" {
		t.Errorf("defaults = %+v, want 32 connections, 2 rounds of 5s, 10,000 users, every scenario but many-tokens, no PostgreSQL", o)
	}
	if slices.ContainsFunc(o.scenarios, func(s scenario) bool { return s.many }) {
		t.Error("many-tokens runs by default")
	}
	if _, err := parseOptions([]string{"-scenarios", "many-tokens", "-generator", "vegeta"}, env, io.Discard); err == nil {
		t.Error("many-tokens on vegeta: no error")
	}
	o, err = parseOptions([]string{"-scenarios", "login, welcome"}, func(k string) string {
		return map[string]string{"AUTHAPI_TEST_POSTGRES_DSN": "postgres://x"}[k]
	}, io.Discard)
	if err != nil || len(o.scenarios) != 2 || o.scenarios[0].name != "login" || o.postgresDSN != "postgres://x" {
		t.Errorf("-scenarios login,welcome with a DSN in the environment = %+v, %v", o, err)
	}
	if o, err := parseOptions([]string{"-server-env", "AUTHAPI_AUTH_CACHE_MIB=256,GOMEMLIMIT=400MiB"}, env, io.Discard); err != nil || len(o.serverEnv) != 2 {
		t.Errorf("-server-env with GOMEMLIMIT = %q, %v; want both settings", o.serverEnv, err)
	}
	for _, args := range [][]string{
		{"-duration", "0s"}, {"-duration", "1h"}, {"-rounds", "0"}, {"-rounds", "1000"},
		{"-conns", "0"}, {"-conns", "100000"}, {"-scenarios", "welcome,nope"}, {"-users", "50"}, {"extra"},
		{"-generator", "ab"}, {"-server-env", "PATH=/tmp"}, {"-server-env", "AUTHAPI_X"}, {"-server-env", "GOMEMLIMIT"},
	} {
		if _, err := parseOptions(args, env, io.Discard); err == nil {
			t.Errorf("parseOptions(%q) = nil error, want one", args)
		}
	}
}

// TestFullSyncSystemRunsTheWrites: the SQLite server syncing at every commit is measured on
// exactly the scenarios that write, the others on all.
func TestFullSyncSystemRunsTheWrites(t *testing.T) {
	full, normal := &system{name: "sqlite-full", writes: true}, &system{name: "sqlite"}
	var got []string
	for _, sc := range allScenarios {
		if !normal.runs(sc) {
			t.Errorf("sqlite skips %s", sc.name)
		}
		if full.runs(sc) {
			got = append(got, sc.name)
		}
	}
	if want := []string{"refresh-rotate", "refresh-fixed", "login", "logout-login"}; !slices.Equal(got, want) {
		t.Errorf("sqlite-full runs %v, want %v", got, want)
	}
}

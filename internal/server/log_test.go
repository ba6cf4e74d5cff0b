package server_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/testbin"
)

// logRecords returns the JSON log records written to b so far.
func logRecords(t *testing.T, b *testbin.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	dec := json.NewDecoder(strings.NewReader(b.String()))
	for dec.More() {
		var rec map[string]any
		if err := dec.Decode(&rec); err != nil {
			t.Fatalf("log is not JSON lines: %v", err)
		}
		out = append(out, rec)
	}
	return out
}

// TestRequestLog: one record per request, with the latency in milliseconds as a number a
// person can read, not Go's nanosecond integer.
func TestRequestLog(t *testing.T) {
	var logs testbin.Buffer
	e := newTestEnv(t, "sqlite", withConfig(func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	}))
	resp, _ := rawGet(t, http.DefaultClient, "GET", e.url+"/healthz")
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	var found bool
	for _, rec := range logRecords(t, &logs) {
		if rec["msg"] != "request" || rec["path"] != "/healthz" {
			continue
		}
		found = true
		ms, ok := rec["latency_ms"].(float64)
		if !ok || ms < 0 || ms > 60_000 {
			t.Errorf("latency_ms = %#v, want milliseconds as a number", rec["latency_ms"])
		}
		if _, ok := rec["latency"]; ok {
			t.Errorf("record still has a raw latency: %v", rec)
		}
		if rec["status"] != float64(200) || rec["method"] != "GET" {
			t.Errorf("record %v: want GET and 200", rec)
		}
	}
	if !found {
		t.Fatalf("no request record for /healthz in %v", logRecords(t, &logs))
	}
}

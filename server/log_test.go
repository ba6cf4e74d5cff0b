package server_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"testing"

	"authapi/server"
)

// syncBuffer collects log output written from the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// records returns the JSON log records written so far.
func (b *syncBuffer) records(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	dec := json.NewDecoder(bytes.NewReader(b.buf.Bytes()))
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
	var logs syncBuffer
	e := newTestEnv(t, "sqlite", func(c *server.Config) {
		c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
	})
	resp, _ := rawGet(t, http.DefaultClient, "GET", e.url+"/healthz")
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	var found bool
	for _, rec := range logs.records(t) {
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
		t.Fatalf("no request record for /healthz in %v", logs.records(t))
	}
}

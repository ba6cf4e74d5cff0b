package server_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strings"
	"testing"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/testbin"
)

// ulid is what a request id made by the server looks like.
var ulid = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{26}$`)

// requestIDOf sends GET path with an X-Request-ID header (none when id is "") and returns the
// id the response carries.
func requestIDOf(t *testing.T, e *testEnv, path, id string) string {
	t.Helper()
	var headers []string
	if id != "" {
		headers = []string{"X-Request-ID", id}
	}
	resp, _ := e.do(t, http.MethodGet, path, "", "", headers...)
	got := resp.Header.Values("X-Request-Id")
	if len(got) != 1 {
		t.Fatalf("GET %s: X-Request-ID %q, want exactly one", path, got)
	}
	return got[0]
}

// Every response names its request. The id is the server's own (a ULID) unless a trusted
// proxy sent a well-formed one: a client cannot pick the id its request is logged under.
func TestRequestID(t *testing.T) {
	t.Parallel()
	const fromProxy = "0f8fad5b-d9cb-469f-a165-70867728950e"
	t.Run("made by the server", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, "sqlite")
		seen := map[string]bool{}
		for _, path := range []string{"/healthz", "/healthz", "/nope/", "/api/v1/"} {
			id := requestIDOf(t, e, path, "")
			if !ulid.MatchString(id) || seen[id] {
				t.Errorf("GET %s: request id %q, want a new ULID (seen %v)", path, id, seen)
			}
			seen[id] = true
		}
		if id := requestIDOf(t, e, "/healthz", fromProxy); id == fromProxy || !ulid.MatchString(id) {
			t.Errorf("a client's own X-Request-ID gave %q, want it ignored for a ULID", id)
		}
	})
	t.Run("from a trusted proxy", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, "sqlite", withConfig(trustLoopback))
		for _, id := range []string{fromProxy, "01J9ZQ3X4Y5Z6A7B8C9D0E1F2G", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			"req_42", "aGVsbG8gd29ybGQ=", strings.Repeat("a", 128)} {
			if got := requestIDOf(t, e, "/healthz", id); got != id {
				t.Errorf("trusted proxy's X-Request-ID %q came back as %q", id, got)
			}
		}
		for _, id := range []string{strings.Repeat("a", 129), "two words", `a"quote`, "semi;colon", "ünïcode", "<script>"} {
			if got := requestIDOf(t, e, "/healthz", id); got == id || !ulid.MatchString(got) {
				t.Errorf("malformed X-Request-ID %q came back as %q, want a new ULID", id, got)
			}
		}
	})
	t.Run("from a peer that is not a trusted proxy", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, "sqlite", withConfig(func(c *server.Config) {
			c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		}))
		if id := requestIDOf(t, e, "/healthz", fromProxy); id == fromProxy || !ulid.MatchString(id) {
			t.Errorf("an untrusted peer's X-Request-ID gave %q, want it ignored for a ULID", id)
		}
	})
	t.Run("exposed to browsers", func(t *testing.T) {
		t.Parallel()
		e := newTestEnv(t, "sqlite", withConfig(func(c *server.Config) { c.CORSOrigins = []string{"https://app.example"} }))
		resp, _ := e.do(t, http.MethodGet, "/healthz", "", "", "Origin", "https://app.example")
		if got := resp.Header.Get("Access-Control-Expose-Headers"); !strings.Contains(got, "X-Request-Id") {
			t.Errorf("Access-Control-Expose-Headers = %q, want X-Request-Id in it", got)
		}
	})
}

// logsOf returns the log records of the request with id.
func logsOf(t *testing.T, logs *testbin.Buffer, id string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, rec := range logRecords(t, logs) {
		if rec["request_id"] == id {
			out = append(out, rec)
		}
	}
	return out
}

// hasLog reports whether one of recs has every field of want.
func hasLog(recs []map[string]any, want map[string]any) bool {
next:
	for _, r := range recs {
		for k, v := range want {
			if r[k] != v {
				continue next
			}
		}
		return true
	}
	return false
}

// Every line a request logs carries its id: the request line, and the warning or error logged
// when it fails, so an operator finds the cause of a 500 from the id the client saw.
func TestRequestIDInLogs(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			logs := &testbin.Buffer{}
			e := newTestEnv(t, backend, withConfig(func(c *server.Config) { c.Logger = slog.New(slog.NewJSONHandler(logs, nil)) }))
			requestIDInLogs(t, e, logs)
		})
	}
}

func requestIDInLogs(t *testing.T, e *testEnv, logs *testbin.Buffer) {
	e.mustUser(t, "root", superRole)
	root := bearer(e.mustLogin(t, "root").Access)
	if r, err := e.client.ListUsersWithResponse(context.Background(), nil, root); err != nil || r.StatusCode() != 200 {
		t.Fatalf("list users: %v %v", r, err)
	}
	ok := requestIDOf(t, e, "/healthz", "")
	if recs := logsOf(t, logs, ok); len(recs) != 1 || !hasLog(recs, map[string]any{"msg": "request", "path": "/healthz", "status": 200.0}) {
		t.Errorf("log lines of request %s = %v, want its request line only", ok, recs)
	}

	// The database goes away: readiness warns, a query fails with a 500.
	if err := e.store.Close(); err != nil {
		t.Fatal(err)
	}
	ready := requestIDOf(t, e, "/readyz", "")
	recs := logsOf(t, logs, ready)
	if !hasLog(recs, map[string]any{"msg": "request", "path": "/readyz", "status": 503.0}) ||
		!hasLog(recs, map[string]any{"msg": "readiness check failed", "level": "WARN"}) {
		t.Errorf("log lines of the failed readiness check %s = %v, want the request line and the warning", ready, recs)
	}
	r, err := e.client.ListUsersWithResponse(context.Background(), nil, root)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, "list users without a database", r.StatusCode(), r.Body, 500, "internal_error")
	failed := r.HTTPResponse.Header.Get("X-Request-Id")
	recs = logsOf(t, logs, failed)
	if !hasLog(recs, map[string]any{"msg": "request", "path": "/api/v1/account/management/", "status": 500.0}) ||
		!hasLog(recs, map[string]any{"msg": "request failed", "level": "ERROR"}) {
		t.Errorf("log lines of the failed request %q = %v, want the request line and the error", failed, recs)
	}
}

// Drain turns /readyz to 503 at once, while every other request is still answered, each
// telling its client to close the connection.
func TestDrain(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		access := bearer(e.mustLogin(t, "alice").Access)
		ctx := context.Background()
		ready, err := e.client.GetReadyWithResponse(ctx)
		if err != nil || ready.StatusCode() != 200 || ready.HTTPResponse.Close {
			t.Fatalf("readyz before draining: %v %v, want 200 keeping the connection", ready, err)
		}
		e.handler.(*server.Server).Drain()
		ready, err = e.client.GetReadyWithResponse(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if e := wantError(t, "readyz while draining", ready.StatusCode(), ready.Body, 503, "unavailable"); e.Detail != "The server is shutting down." {
			t.Errorf("readyz while draining: detail %q", e.Detail)
		}
		for _, call := range []func() (int, *http.Response){
			func() (int, *http.Response) {
				r, err := e.client.WelcomeWithResponse(ctx, access)
				if err != nil {
					t.Fatal(err)
				}
				return r.StatusCode(), r.HTTPResponse
			},
			func() (int, *http.Response) {
				r, err := e.client.GetHealthWithResponse(ctx)
				if err != nil {
					t.Fatal(err)
				}
				return r.StatusCode(), r.HTTPResponse
			},
			func() (int, *http.Response) {
				r, err := e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: "alice", Password: demoPassword})
				if err != nil {
					t.Fatal(err)
				}
				return r.StatusCode(), r.HTTPResponse
			},
		} {
			status, resp := call()
			if status != 200 || !resp.Close { // Close: the response said Connection: close
				t.Errorf("%s %s while draining: %d, close %v; want 200 and Connection: close",
					resp.Request.Method, resp.Request.URL.Path, status, resp.Close)
			}
		}
	})
}

// Until the server is built, Starting answers: the process is alive (/healthz 200) but not
// ready (/readyz 503), and the API asks to be retried; every answer is logged with its id.
func TestStarting(t *testing.T) {
	t.Parallel()
	var logs testbin.Buffer
	ts := httptest.NewServer(server.Starting(server.Config{Logger: slog.New(slog.NewJSONHandler(&logs, nil))}))
	defer ts.Close()
	api, err := client.NewClientWithResponses(ts.URL, client.WithHTTPClient(specChecker{t}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	health, err := api.GetHealthWithResponse(ctx)
	if err != nil || health.JSON200 == nil || health.JSON200.Status != "ok" {
		t.Fatalf("healthz while starting: %v %v, want 200 ok", health, err)
	}
	ready, err := api.GetReadyWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantError(t, "readyz while starting", ready.StatusCode(), ready.Body, 503, "unavailable")
	for _, req := range []struct{ method, path string }{{"GET", "/api/v1/"}, {"POST", "/api/v1/auth/token/"}, {"DELETE", "/healthz"}, {"GET", "/nope"}} {
		hreq, err := http.NewRequest(req.method, ts.URL+req.path, strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(hreq)
		if err != nil {
			t.Fatal(err)
		}
		var body client.Error
		err = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 503 || err != nil || body.Code != "unavailable" || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%s %s while starting: %d %+v (%v), Retry-After %q; want 503 unavailable with Retry-After",
				req.method, req.path, resp.StatusCode, body, err, resp.Header.Get("Retry-After"))
		}
		id := resp.Header.Get("X-Request-Id")
		if !ulid.MatchString(id) || !hasLog(logsOf(t, &logs, id), map[string]any{"msg": "request", "status": 503.0, "path": req.path}) {
			t.Errorf("%s %s while starting: request id %q, not found in the log:\n%s", req.method, req.path, id, logs.String())
		}
	}
}

package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/authapi/authapi/gen/client"
)

// TestRawRequest: wrk sends the bytes vegeta would, as HTTP/1.1 with the Host and a
// Content-Length for a body.
func TestRawRequest(t *testing.T) {
	c := &conn{base: "http://127.0.0.1:8000", access: "tok", refresh: "ref"}
	got, err := rawRequest(c.post("/api/v1/auth/token/verify/", true, client.TokenVerifyRequest{Token: c.refresh}))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"POST /api/v1/auth/token/verify/ HTTP/1.1\r\n", "Host: 127.0.0.1:8000\r\n", "Authorization: Bearer tok\r\n",
		"Content-Type: application/json\r\n", "Content-Length: 15\r\n", "\r\n\r\n{\"token\":\"ref\"}"} {
		if !strings.Contains(got, want) {
			t.Errorf("request %q lacks %q", got, want)
		}
	}
	if got, _ := rawRequest(c.get("/api/v1/?q=1")); !strings.HasPrefix(got, "GET /api/v1/?q=1 HTTP/1.1\r\n") || strings.Contains(got, "Content-Length") {
		t.Errorf("GET %q", got)
	}
}

// TestWrkResult: statuses other than 2xx are errors by status, socket errors are transport
// errors, and the rate is the requests over wrk's own duration.
func TestWrkResult(t *testing.T) {
	r := newWrkRun(1, "refresh-rotate", "sqlite", wrkResult(wrkOut{Requests: 1000, DurationUs: 2_000_000, P50Us: 1500, P99Us: 9000,
		Codes: map[string]int{"200": 990, "401": 7, "503": 3}, Read: 2}))
	if r.RPS != 500 || r.P50Ms != 1.5 || r.P99Ms != 9 || r.Errors["401"] != 7 || r.Errors["503"] != 3 || r.Errors["200"] != 0 || r.Errors["transport"] != 2 {
		t.Errorf("run = %+v", r)
	}
}

// TestWrkScriptRenders: every kind of script renders, with each request and token quoted.
func TestWrkScriptRenders(t *testing.T) {
	for _, data := range []map[string]any{
		{"Requests": []string{"GET / HTTP/1.1\r\n\r\n"}, "Threads": 2},
		{"Tokens": []string{"a.b.c"}, "Threads": 2, "Refresh": true, "Path": "/r/"},
		{"Threads": 2, "Many": true, "TokensFile": "/tmp/t"},
	} {
		var b bytes.Buffer
		if err := wrkScript.Execute(&b, data); err != nil {
			t.Fatal(err)
		}
		// Lua keeps the last definition of a function: a second one silently replaces the first.
		for _, fn := range []string{"function setup(", "function init(", "function request()", "function done("} {
			if n := strings.Count(b.String(), fn); n != 1 {
				t.Errorf("script for %v defines %q %d times, want once:\n%s", data, fn, n, b.String())
			}
		}
		if !strings.Contains(b.String(), "WRKJSON") {
			t.Errorf("script for %v:\n%s", data, b.String())
		}
	}
}

package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/authapi/authapi/gen/client"
)

func TestAccount(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		alice := e.mustUser(t, "alice", regular)
		r, err := e.client.GetAccountWithResponse(context.Background(), bearer(e.mustLogin(t, "alice").Access))
		mustNoErr(t, err)
		if r.JSON200 == nil {
			t.Fatalf("account: %d %s", r.StatusCode(), r.Body)
		}
		got := *r.JSON200
		if got.Id != alice.ID || got.Username != "alice" || got.FirstName != "Alice" || got.LastName != "Seed" || got.Email != "alice@example.com" || got.LastLogin == nil {
			t.Errorf("account = %+v", got)
		}
		var fields map[string]any
		mustNoErr(t, json.Unmarshal(r.Body, &fields))
		if len(fields) != 9 {
			t.Errorf("account has fields %v, want exactly id, username, first_name, last_name, email, last_login, email_verified, email_verified_at, pending_email", fields)
		}
		noToken, _ := e.client.GetAccountWithResponse(context.Background())
		wantError(t, "no token", noToken.StatusCode(), noToken.Body, 401, "not_authenticated")
	})
}

func TestPublicEndpoints(t *testing.T) {
	e := newTestEnv(t, "sqlite")
	ctx := context.Background()

	h, err := e.client.GetHealthWithResponse(ctx)
	if err != nil || h.JSON200 == nil || h.JSON200.Status != "ok" {
		t.Errorf("healthz: %v %d %s", err, h.StatusCode(), h.Body)
	}
	rd, err := e.client.GetReadyWithResponse(ctx)
	if err != nil || rd.JSON200 == nil {
		t.Errorf("readyz: %v %d %s", err, rd.StatusCode(), rd.Body)
	}

	spec, err := e.client.GetOpenAPIJSONWithResponse(ctx)
	mustNoErr(t, err)
	var doc struct {
		OpenAPI string                    `json:"openapi"`
		Paths   map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(spec.Body, &doc); err != nil || spec.StatusCode() != 200 || !strings.HasPrefix(doc.OpenAPI, "3.0") {
		t.Fatalf("openapi.json: %d %v", spec.StatusCode(), err)
	}
	if op, _ := doc.Paths["/api/v1/auth/token/"]["post"].(map[string]any); op["operationId"] != "obtainToken" {
		t.Errorf("openapi.json token operation = %v, want operationId obtainToken as written in openapi.yaml", op)
	}
	y, err := e.client.GetOpenAPIYAMLWithResponse(ctx)
	if err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if y.StatusCode() != 200 || !strings.Contains(string(y.Body), "/api/v1/auth/token/:") {
		t.Errorf("openapi.yaml: %d %.200s", y.StatusCode(), y.Body)
	}

	ui, body := e.do(t, http.MethodGet, "/api/v1/swagger/ui/", "", "")
	if ui.StatusCode != 200 || !strings.HasPrefix(ui.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(body), "/api/v1/openapi.json") {
		t.Fatalf("swagger ui: %d %s", ui.StatusCode, ui.Header.Get("Content-Type"))
	}
	// Every script and stylesheet the page loads is served by authapi itself.
	assets := regexp.MustCompile(`(?:src|href)="([^"]+\.(?:js|css))"`).FindAllStringSubmatch(string(body), -1)
	if len(assets) == 0 {
		t.Fatal("swagger ui page loads no assets")
	}
	for _, m := range assets {
		if strings.Contains(m[1], "//") {
			t.Errorf("swagger ui loads %s from another host", m[1])
			continue
		}
		path := m[1]
		if !strings.HasPrefix(path, "/") {
			path = "/api/v1/swagger/ui/" + path
		}
		if r, _ := e.do(t, http.MethodGet, path, "", ""); r.StatusCode != 200 {
			t.Errorf("swagger asset %s: %d", path, r.StatusCode)
		}
	}
}

func TestUnknownRoutesAndMethods(t *testing.T) {
	e := newTestEnv(t, "sqlite")
	e.mustUser(t, "root", superRole)
	auth := "Bearer " + e.mustLogin(t, "root").Access
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/api/v1/nope", 404, "not_found"}, // not /api/v1: that redirects to /api/v1/
		{"GET", "/api/v1/nope/", 404, "not_found"},
		{"GET", "/", 404, "not_found"},
		{"POST", "/api/v1/", 405, "method_not_allowed"},
		{"DELETE", "/api/v1/account/", 405, "method_not_allowed"},
		{"GET", "/api/v1/account/management/1/delete/", 405, "method_not_allowed"},
		{"GET", "/api/v1/account/management/abc/", 404, "not_found"}, // the demo's <int:id>
		{"GET", "/api/v1/account/management/99999999999999999999999/", 404, "not_found"},
		{"GET", "/api/v1/account/management/-1/", 404, "not_found"},
		{"GET", "/api/v1/account/management/0/", 404, "not_found"},
		{"DELETE", "/api/v1/account/management/1.5/delete/", 404, "not_found"},
	} {
		r, body := e.do(t, tc.method, tc.path, "", "", "Authorization", auth)
		wantError(t, tc.method+" "+tc.path, r.StatusCode, body, tc.status, tc.code)
		if r.Header.Get("X-Content-Type-Options") != "nosniff" || r.Header.Get("X-Frame-Options") != "DENY" || r.Header.Get("Referrer-Policy") != "same-origin" {
			t.Errorf("%s %s: security headers missing: %v", tc.method, tc.path, r.Header)
		}
	}
}

// TestPathParametersValidated: the validator reads path parameters from the route Echo
// matched, for both kinds the spec has, in the path and in a second operation on the same
// path item. A user id that is not a positive integer is not found, as with the demo's
// <int:id> routes; a malformed session id is refused naming the parameter.
func TestPathParametersValidated(t *testing.T) {
	e := newTestEnv(t, "sqlite")
	e.mustUser(t, "root", superRole)
	auth := "Bearer " + e.mustLogin(t, "root").Access
	for _, tc := range []struct{ method, path string }{
		{"GET", "/api/v1/account/management/0/"},
		{"GET", "/api/v1/account/management/abc/"},
		{"DELETE", "/api/v1/account/management/-7/delete/"},
	} {
		r, body := e.do(t, tc.method, tc.path, "", "", "Authorization", auth)
		wantError(t, tc.method+" "+tc.path, r.StatusCode, body, 404, "not_found")
	}
	for _, tc := range []struct{ method, path string }{
		{"DELETE", "/api/v1/auth/sessions/lowercase/"},
		{"DELETE", "/api/v1/auth/sessions/A1B/"},
	} {
		r, body := e.do(t, tc.method, tc.path, "", "", "Authorization", auth)
		got := wantError(t, tc.method+" "+tc.path, r.StatusCode, body, 400, "invalid")
		if got.Fields == nil || len((*got.Fields)["id"]) == 0 {
			t.Errorf("%s %s: fields %v, want a message for id", tc.method, tc.path, got.Fields)
		}
	}
}

// TestBadInputNeverFails500 sends malformed requests to every operation of the spec, as a
// superuser so they get past authentication, and requires a 4xx Error body each time.
func TestBadInputNeverFails500(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "root", superRole)
		auth := "Bearer " + e.mustLogin(t, "root").Access
		bodies := []struct{ contentType, body string }{
			{"application/json", `{`},
			{"application/json", `[]`},
			{"application/json", `"str"`},
			{"application/json", `null`},
			{"application/json", `{"username": {"$gt": ""}}`},
			{"application/json", `{"a":1}{"b":2}`},
			{"application/json", `{"username":"` + strings.Repeat("é", 5000) + `"}`},
			{"application/json", "{\"username\":\"\x00\xff\"}"},
			{"application/json; charset=utf-8", `{"nope": true}`},
			{"text/plain", `hello`},
			{"application/xml", `<a/>`},
			{"application/x-www-form-urlencoded", `username=%zz`},
			{"multipart/form-data; boundary=x", "--x\r\n"},
			{"application/json", strings.Repeat(" ", 2<<20)},
		}
		paths := []string{
			"/api/v1/auth/token/", "/api/v1/auth/token/refresh/", "/api/v1/auth/token/verify/",
			"/api/v1/auth/logout/", "/api/v1/account/management/create/",
			"/api/v1/account/management/1/update/", "/api/v1/account/management/999999999999/update/",
			"/api/v1/account/password/", "/api/v1/keys/rotate/",
		}
		for _, path := range paths {
			for _, method := range []string{"POST", "PUT", "PATCH"} {
				for _, b := range bodies {
					r, body := e.do(t, method, path, b.contentType, b.body, "Authorization", auth)
					if r.StatusCode >= 500 {
						t.Errorf("%s %s (%s, %.20q): %d %s", method, path, b.contentType, b.body, r.StatusCode, body)
						continue
					}
					if r.StatusCode >= 400 {
						var e client.Error
						if err := json.Unmarshal(body, &e); err != nil || e.Code == "" || e.Detail == "" {
							t.Errorf("%s %s (%s): %d, not an Error body: %s", method, path, b.contentType, r.StatusCode, body)
						}
					}
				}
			}
		}
		r, body := e.do(t, "POST", "/api/v1/account/management/create/", "application/json", `{"username":"`+strings.Repeat("a", 2<<20)+`"}`, "Authorization", auth)
		wantError(t, "2 MiB body", r.StatusCode, body, http.StatusRequestEntityTooLarge, "request_too_large")
		r, body = e.do(t, "POST", "/api/v1/auth/token/", "application/x-www-form-urlencoded", "username="+strings.Repeat("a", 2<<20))
		wantError(t, "2 MiB form", r.StatusCode, body, http.StatusRequestEntityTooLarge, "request_too_large")
	})
}

// TestHead answers HEAD like GET, without a body, as the demo did.
func TestHead(t *testing.T) {
	e := newTestEnv(t, "sqlite")
	e.mustUser(t, "alice", regular)
	auth := "Bearer " + e.mustLogin(t, "alice").Access
	for _, tc := range []struct {
		path, auth string
		status     int
	}{{"/healthz", "", 200}, {"/api/v1/", auth, 200}, {"/api/v1/", "", 401}, {"/api/v1/nope/", "", 404}} {
		var headers []string
		if tc.auth != "" {
			headers = []string{"Authorization", tc.auth}
		}
		r, body := e.do(t, http.MethodHead, tc.path, "", "", headers...)
		if r.StatusCode != tc.status || len(body) != 0 {
			t.Errorf("HEAD %s: %d with %d body bytes, want %d and none", tc.path, r.StatusCode, len(body), tc.status)
		}
	}
}

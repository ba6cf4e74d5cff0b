package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/ssf"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
)

// ssfClient is a registered API client with a token for the SSF endpoints.
type ssfClient struct {
	apiClient
	token string
}

func (e *testEnv) mustSSFClient(t *testing.T, admin, name string, scopes ...client.ClientScope) ssfClient {
	t.Helper()
	c := e.mustClient(t, admin, name, scopes...)
	return ssfClient{apiClient: c, token: e.mustClientToken(t, c, "")}
}

// ssfCall sends body (JSON, "" for none) to path with the client token.
func (e *testEnv) ssfCall(t *testing.T, tok, method, path, body string) (*http.Response, []byte) {
	t.Helper()
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	return e.do(t, method, path, ct, body, "Authorization", "Bearer "+tok)
}

func (e *testEnv) mustCreateStream(t *testing.T, tok, body string) client.StreamConfiguration {
	t.Helper()
	resp, b := e.ssfCall(t, tok, http.MethodPost, "/ssf/streams", body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create stream: %d %s", resp.StatusCode, b)
	}
	var st client.StreamConfiguration
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// poll polls at once, acknowledging ack, and returns the SETs by jti.
func (e *testEnv) poll(t *testing.T, tok, streamID string, ack ...string) map[string]string {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"returnImmediately": true, "ack": append([]string{}, ack...)})
	resp, b := e.ssfCall(t, tok, http.MethodPost, "/ssf/poll/"+streamID, string(body))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("poll: %d %s", resp.StatusCode, b)
	}
	var r client.PollResponse
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r.Sets
}

// jwks fetches the published key set.
func (e *testEnv) jwks(t *testing.T) []byte {
	t.Helper()
	resp, b := e.do(t, http.MethodGet, "/.well-known/jwks.json", "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("jwks: %d", resp.StatusCode)
	}
	return b
}

// drainSETs polls everything, acknowledging it, and returns the verified claims of each SET.
func (e *testEnv) drainSETs(t *testing.T, tok, streamID string) []map[string]any {
	t.Helper()
	var out []map[string]any
	var ack []string
	for {
		sets := e.poll(t, tok, streamID, ack...)
		if len(sets) == 0 {
			return out
		}
		ack = ack[:0]
		jwks := e.jwks(t)
		for jti, raw := range sets {
			_, claims, err := token.VerifySET(raw, jwks)
			if err != nil {
				t.Fatalf("SET %s: %v", jti, err)
			}
			out = append(out, claims)
			ack = append(ack, jti)
		}
	}
}

func eventType(claims map[string]any) string {
	for typ := range claims["events"].(map[string]any) {
		return typ
	}
	return ""
}

// TestSSFEndToEnd: a resource server's client creates a poll stream in the complex format,
// a user logs out, and the stream carries a session-revoked SET naming the user and the
// session of the access token, verified with the published JWKS, which the token parser of
// the server never accepts as a token key (the SET key is RS256, the tokens EdDSA).
func TestSSFEndToEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		admin := e.mustAdmin(t)
		rs := e.mustSSFClient(t, admin, "resource server", client.ScopeSSFManage, client.ScopeSSFRead)
		st := e.mustCreateStream(t, rs.token, `{"delivery":{"method":"urn:ietf:rfc:8936"},"format":"complex",
			"events_requested":["`+ssf.TypeSessionRevoked+`","urn:example:unknown"]}`)
		if st.Delivery.EndpointUrl == nil || !strings.HasSuffix(*st.Delivery.EndpointUrl, "/ssf/poll/"+st.StreamId) ||
			!slices.Equal(st.EventsDelivered, []string{ssf.TypeSessionRevoked}) || !slices.Equal(st.Aud, []string{rs.id}) {
			t.Fatalf("stream %+v", st)
		}
		u := e.mustUser(t, "alice", regular)
		pair := e.mustLogin(t, "alice")
		claims, err := e.tokens.Parse(pair.Access, token.Access)
		if err != nil {
			t.Fatal(err)
		}
		resp, b := e.do(t, http.MethodPost, "/api/v1/auth/logout/", "application/json", `{"refresh":"`+pair.Refresh+`"}`, "Authorization", "Bearer "+pair.Access)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("logout: %d %s", resp.StatusCode, b)
		}
		sets := e.drainSETs(t, rs.token, st.StreamId)
		if len(sets) != 1 || eventType(sets[0]) != ssf.TypeSessionRevoked || sets[0]["aud"] != rs.id {
			t.Fatalf("SETs %v, want one session-revoked for %s", sets, rs.id)
		}
		sub := sets[0]["sub_id"].(map[string]any)
		session := sub["session"].(map[string]any)
		user := sub["user"].(map[string]any)
		if session["id"] != claims.SessionID || user["sub"] != strconv.FormatInt(u.ID, 10) {
			t.Errorf("sub_id %v, want session %s of user %d", sub, claims.SessionID, u.ID)
		}
		// The SET key is published but no token key.
		var set struct{ Keys []map[string]any }
		_ = json.Unmarshal(e.jwks(t), &set)
		for _, k := range set.Keys {
			if k["alg"] == "RS256" && e.tokens.HasKey(k["kid"].(string)) {
				t.Errorf("the SET key %v verifies tokens", k["kid"])
			}
		}
	})
}

// TestSSFScopes: CAEP interoperability profile 2.7.3 (the transmitter as a resource server):
// client tokens in the Authorization header only, with ssf.manage for changes and ssf.read (or
// ssf.manage) for reads and polls; RFC 6750 errors otherwise.
func TestSSFScopes(t *testing.T) {
	e := newTestEnv(t, "sqlite")
	admin := e.mustAdmin(t)
	manage := e.mustSSFClient(t, admin, "manage", client.ScopeSSFManage)
	read := e.mustSSFClient(t, admin, "read", client.ScopeSSFRead)
	other := e.mustSSFClient(t, admin, "introspect", client.ScopeIntrospect)
	st := e.mustCreateStream(t, manage.token, `{}`)
	// The reader's own stream, made with a manage token of the same client.
	both := e.mustClient(t, admin, "both", client.ScopeSSFManage, client.ScopeSSFRead)
	readOnly := e.mustClientToken(t, both, "ssf.read")
	own := e.mustCreateStream(t, e.mustClientToken(t, both, "ssf.manage"), `{}`)

	id := st.StreamId
	ops := []struct {
		name, method, path, body string
		read                     int // what ssf.read gets: 404 (another client's stream), 200, or 403
	}{
		{"create", http.MethodPost, "/ssf/streams", `{}`, http.StatusForbidden},
		{"list", http.MethodGet, "/ssf/streams", "", http.StatusOK},
		{"read", http.MethodGet, "/ssf/streams?stream_id=" + id, "", http.StatusNotFound},
		{"update", http.MethodPatch, "/ssf/streams", `{"stream_id":"` + id + `","description":"x"}`, http.StatusForbidden},
		{"replace", http.MethodPut, "/ssf/streams", `{"stream_id":"` + id + `"}`, http.StatusForbidden},
		{"status", http.MethodGet, "/ssf/status?stream_id=" + id, "", http.StatusNotFound},
		{"set status", http.MethodPost, "/ssf/status", `{"stream_id":"` + id + `","status":"enabled"}`, http.StatusForbidden},
		{"verify", http.MethodPost, "/ssf/verify", `{"stream_id":"` + id + `"}`, http.StatusForbidden},
		{"poll", http.MethodPost, "/ssf/poll/" + id, `{"returnImmediately":true}`, http.StatusNotFound},
		{"delete", http.MethodDelete, "/ssf/streams?stream_id=" + id, "", http.StatusForbidden},
	}
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			for _, c := range []struct {
				who, auth string
				want      int
			}{
				{"no token", "", http.StatusUnauthorized},
				{"a user's access token", "Bearer " + e.mustLogin(t, "root").Access, http.StatusUnauthorized},
				{"a client secret", basicAuth(manage.id, manage.secret), http.StatusUnauthorized},
				{"a token without ssf scopes", "Bearer " + other.token, http.StatusForbidden},
				{"ssf.read", "Bearer " + read.token, op.read},
			} {
				resp, b := e.do(t, op.method, op.path, map[bool]string{true: "application/json"}[op.body != ""], op.body, "Authorization", c.auth)
				if resp.StatusCode != c.want {
					t.Errorf("%s: %d %s, want %d", c.who, resp.StatusCode, b, c.want)
				}
				if c.want == http.StatusForbidden && !strings.Contains(resp.Header.Get("WWW-Authenticate"), "insufficient_scope") {
					t.Errorf("%s: WWW-Authenticate %q", c.who, resp.Header.Get("WWW-Authenticate"))
				}
			}
		})
	}
	// ssf.read reads its own client's stream.
	if resp, b := e.ssfCall(t, readOnly, http.MethodGet, "/ssf/streams?stream_id="+own.StreamId, ""); resp.StatusCode != http.StatusOK {
		t.Errorf("ssf.read on its own stream: %d %s", resp.StatusCode, b)
	}
	// Never in the query (RFC 6750 2.3 is not supported).
	resp, _ := e.do(t, http.MethodGet, "/ssf/streams?access_token="+manage.token, "", "")
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("token in the query: %d, want 401", resp.StatusCode)
	}
	// The manage token does it all (last: it deletes).
	for _, op := range ops {
		resp, b := e.ssfCall(t, manage.token, op.method, op.path, op.body)
		if resp.StatusCode/100 != 2 {
			t.Errorf("ssf.manage %s: %d %s", op.name, resp.StatusCode, b)
		}
	}
}

// TestSSFStreamsOfOtherClients: another client, with every scope, finds none of a client's
// streams: 404 for each operation, an empty list, and the stream is untouched.
func TestSSFStreamsOfOtherClients(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		admin := e.mustAdmin(t)
		alice := e.mustSSFClient(t, admin, "alice", client.ScopeSSFManage, client.ScopeSSFRead)
		mallory := e.mustSSFClient(t, admin, "mallory", client.ScopeSSFManage, client.ScopeSSFRead)
		st := e.mustCreateStream(t, alice.token, `{"description":"alice's"}`)
		id := st.StreamId
		for _, op := range []struct{ method, path, body string }{
			{http.MethodGet, "/ssf/streams?stream_id=" + id, ""},
			{http.MethodPatch, "/ssf/streams", `{"stream_id":"` + id + `","description":"mine"}`},
			{http.MethodPut, "/ssf/streams", `{"stream_id":"` + id + `"}`},
			{http.MethodDelete, "/ssf/streams?stream_id=" + id, ""},
			{http.MethodGet, "/ssf/status?stream_id=" + id, ""},
			{http.MethodPost, "/ssf/status", `{"stream_id":"` + id + `","status":"disabled"}`},
			{http.MethodPost, "/ssf/verify", `{"stream_id":"` + id + `"}`},
			{http.MethodPost, "/ssf/poll/" + id, `{"returnImmediately":true}`},
		} {
			resp, b := e.ssfCall(t, mallory.token, op.method, op.path, op.body)
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("mallory %s %s: %d %s, want 404", op.method, op.path, resp.StatusCode, b)
			}
		}
		resp, b := e.ssfCall(t, mallory.token, http.MethodGet, "/ssf/streams", "")
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != "[]" {
			t.Errorf("mallory's list: %d %s, want []", resp.StatusCode, b)
		}
		resp, b = e.ssfCall(t, alice.token, http.MethodGet, "/ssf/status?stream_id="+id, "")
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"enabled"`) {
			t.Errorf("alice's stream after mallory: %d %s", resp.StatusCode, b)
		}
	})
}

// TestSSFConfiguration: the public transmitter metadata (SSF 1.0 section 7.1; the CAEP
// interoperability profile's 2.3 MUSTs).
func TestSSFConfiguration(t *testing.T) {
	e := newTestEnv(t, "sqlite")
	resp, b := e.do(t, http.MethodGet, "/.well-known/ssf-configuration", "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var c client.SSFConfiguration
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.SpecVersion != "1_0" || c.Issuer != testIssuer || c.JwksUri != testIssuer+"/.well-known/jwks.json" ||
		c.ConfigurationEndpoint != testIssuer+"/ssf/streams" || c.StatusEndpoint != testIssuer+"/ssf/status" ||
		c.VerificationEndpoint != testIssuer+"/ssf/verify" || len(c.AuthorizationSchemes) != 1 ||
		c.AuthorizationSchemes[0].SpecUrn != "urn:ietf:rfc:6749" || len(c.DeliveryMethodsSupported) != 2 {
		t.Errorf("configuration %+v", c)
	}
}

// TestSSFBadInput: refusals are 400 with the Error body naming the member, never 500.
func TestSSFBadInput(t *testing.T) {
	e := newTestEnv(t, "sqlite")
	admin := e.mustAdmin(t)
	c := e.mustSSFClient(t, admin, "c", client.ScopeSSFManage, client.ScopeSSFRead)
	st := e.mustCreateStream(t, c.token, `{}`)
	for _, tc := range []struct{ method, path, body string }{
		{http.MethodPost, "/ssf/streams", `{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"http://rp.example/events"}}`},
		{http.MethodPost, "/ssf/streams", `{"delivery":{"method":"urn:ietf:rfc:8935"}}`},
		{http.MethodPost, "/ssf/streams", `{"delivery":{"method":"carrier-pigeon"}}`},
		{http.MethodPost, "/ssf/streams", `{"format":"phone"}`},
		{http.MethodPost, "/ssf/streams", `{"description":` + strings.Repeat(`"x`, 1) + strings.Repeat("x", 300) + `"}`},
		{http.MethodPost, "/ssf/streams", `[]`},
		{http.MethodPost, "/ssf/status", `{"stream_id":"` + st.StreamId + `","status":"stopped"}`},
		{http.MethodPost, "/ssf/poll/" + st.StreamId, `{"maxEvents":-1}`},
		{http.MethodPost, "/ssf/poll/" + st.StreamId, `{"maxEvents":1001}`},
		{http.MethodPost, "/ssf/poll/" + st.StreamId, `{"ack":"jti"}`},
		{http.MethodPatch, "/ssf/streams", `{"description":"no id"}`},
		{http.MethodDelete, "/ssf/streams", ``},
	} {
		resp, b := e.ssfCall(t, c.token, tc.method, tc.path, tc.body)
		var body client.Error
		if resp.StatusCode != http.StatusBadRequest || json.Unmarshal(b, &body) != nil || body.Code == "" {
			t.Errorf("%s %s %s: %d %s, want 400 with an Error body", tc.method, tc.path, tc.body, resp.StatusCode, b)
		}
	}
	for range 9 { // the 10th stream is the limit
		e.mustCreateStream(t, c.token, `{}`)
	}
	if resp, b := e.ssfCall(t, c.token, http.MethodPost, "/ssf/streams", `{}`); resp.StatusCode != http.StatusConflict {
		t.Errorf("11th stream: %d %s, want 409", resp.StatusCode, b)
	}
}

// TestSSFTwoInstances: two instances on one database serve the same SETs, byte for byte; a
// revocation made through one reaches a poll on the other.
func TestSSFTwoInstances(t *testing.T) {
	forEachBackend(t, func(t *testing.T, a *testEnv) {
		b := newTestEnv(t, a.backend, withDSN(a.dsn))
		admin := a.mustAdmin(t)
		c := a.mustSSFClient(t, admin, "rs", client.ScopeSSFManage, client.ScopeSSFRead)
		st := a.mustCreateStream(t, c.token, `{"format":"complex"}`)
		a.mustUser(t, "bob", regular)
		for range 3 {
			pair := a.mustLogin(t, "bob")
			a.do(t, http.MethodPost, "/api/v1/auth/logout/", "application/json", `{"refresh":"`+pair.Refresh+`"}`, "Authorization", "Bearer "+pair.Access)
		}
		fromA, fromB := a.poll(t, c.token, st.StreamId), b.poll(t, c.token, st.StreamId)
		if len(fromA) != 3 || !maps.Equal(fromA, fromB) {
			t.Fatalf("A: %d SETs, B: %d, equal %v", len(fromA), len(fromB), maps.Equal(fromA, fromB))
		}
		for _, raw := range fromA {
			if _, _, err := token.VerifySET(raw, b.jwks(t)); err != nil {
				t.Errorf("B's JWKS does not verify A's SET: %v", err)
			}
		}
	})
}

// TestSSFPushEndToEnd: a push stream gets the SETs of revocations from the sender that
// app.Start runs, with its authorization header; the test waits on the receiver, not a clock.
func TestSSFPushEndToEnd(t *testing.T) {
	got := make(chan string, 10)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer rs-secret" || r.Header.Get("Content-Type") != "application/secevent+jwt" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusAccepted)
		got <- string(b)
	}))
	t.Cleanup(rcv.Close)
	e := newTestEnv(t, "sqlite", withSSF(ssf.Config{AllowHTTPPush: true}))
	admin := e.mustAdmin(t)
	c := e.mustSSFClient(t, admin, "rs", client.ScopeSSFManage)
	e.mustCreateStream(t, c.token, `{"delivery":{"method":"urn:ietf:rfc:8935","endpoint_url":"`+rcv.URL+`","authorization_header":"Bearer rs-secret"}}`)
	e.mustUser(t, "carol", regular)
	pair := e.mustLogin(t, "carol")
	e.do(t, http.MethodPost, "/api/v1/auth/logout_all/", "", "", "Authorization", "Bearer "+pair.Access)
	raw := <-got
	_, claims, err := token.VerifySET(raw, e.jwks(t))
	if err != nil || eventType(claims) != ssf.TypeSessionRevoked {
		t.Fatalf("pushed %v, %v", claims, err)
	}
}

// TestSSFEveryRevocationKindOverHTTP: each way the API revokes sessions or changes what a
// token may carry, called as clients call it, puts exactly the right events on a stream:
// one session-revoked per session ended, each naming its session (the user has two, so a
// user-wide revocation must name both), plus the credential, claims and account events of
// the change.
func TestSSFEveryRevocationKindOverHTTP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		admin := e.mustAdmin(t)
		rs := e.mustSSFClient(t, admin, "rs", client.ScopeSSFManage, client.ScopeSSFRead)
		revoker := e.mustClient(t, admin, "revoker", client.ScopeRevoke)
		st := e.mustCreateStream(t, rs.token, `{"format":"complex"}`)
		sr, cc, tc := ssf.TypeSessionRevoked, ssf.TypeCredentialChange, ssf.TypeTokenClaimsChange
		call := func(t *testing.T, access, method, path, body string) {
			t.Helper()
			ct := ""
			if body != "" {
				ct = "application/json"
			}
			resp, b := e.do(t, method, path, ct, body, "Authorization", "Bearer "+access)
			if resp.StatusCode/100 != 2 {
				t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
			}
		}
		n := 0
		cases := []struct {
			name  string
			do    func(t *testing.T, u store.User, p client.TokenPair, sid string)
			want  map[string]int // besides session-revoked
			ended int            // sessions ended: 1 the first one (p's), 2 both
		}{
			{"logout", func(t *testing.T, u store.User, p client.TokenPair, sid string) {
				call(t, p.Access, http.MethodPost, "/api/v1/auth/logout/", `{"refresh":"`+p.Refresh+`"}`)
			}, map[string]int{}, 1},
			{"logout-all", func(t *testing.T, u store.User, p client.TokenPair, sid string) {
				call(t, p.Access, http.MethodPost, "/api/v1/auth/logout_all/", "")
			}, map[string]int{}, 2},
			{"own session revoked", func(t *testing.T, u store.User, p client.TokenPair, sid string) {
				call(t, p.Access, http.MethodDelete, "/api/v1/auth/sessions/"+sid+"/", "")
			}, map[string]int{}, 1},
			{"admin revokes a session", func(t *testing.T, u store.User, p client.TokenPair, sid string) {
				call(t, admin, http.MethodDelete, fmt.Sprintf("/api/v1/account/management/%d/sessions/%s/", u.ID, sid), "")
			}, map[string]int{}, 1},
			{"admin logs the user out everywhere", func(t *testing.T, u store.User, p client.TokenPair, sid string) {
				call(t, admin, http.MethodPost, fmt.Sprintf("/api/v1/account/management/%d/logout_all/", u.ID), "")
			}, map[string]int{}, 2},
			{"refresh-token reuse", func(t *testing.T, u store.User, p client.TokenPair, sid string) {
				call(t, p.Access, http.MethodPost, "/api/v1/auth/token/refresh/", `{"refresh":"`+p.Refresh+`"}`)
				e.clock.Add(reuseGrace + time.Second)
				resp, _ := e.do(t, http.MethodPost, "/api/v1/auth/token/refresh/", "application/json", `{"refresh":"`+p.Refresh+`"}`)
				if resp.StatusCode != http.StatusUnauthorized {
					t.Fatalf("reuse: %d", resp.StatusCode)
				}
			}, map[string]int{}, 1},
			{"revocation endpoint (RFC 7009)", func(t *testing.T, u store.User, p client.TokenPair, sid string) {
				resp, b := e.postForm(t, "/oauth/revoke", url.Values{"token": {p.Refresh}}, "Authorization", basicAuth(revoker.id, revoker.secret))
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("revoke: %d %s", resp.StatusCode, b)
				}
			}, map[string]int{}, 1},
			{"password change", func(t *testing.T, u store.User, p client.TokenPair, sid string) {
				call(t, p.Access, http.MethodPost, "/api/v1/account/password/", `{"old_password":"`+demoPassword+`","new_password":"another-Secret-42"}`)
			}, map[string]int{cc: 1}, 2},
			{"password reset by an administrator", func(t *testing.T, u store.User, p client.TokenPair, sid string) {
				call(t, admin, http.MethodPatch, fmt.Sprintf("/api/v1/account/management/%d/update/", u.ID), `{"password":"another-Secret-42"}`)
			}, map[string]int{cc: 1}, 2},
			{"deactivation", func(t *testing.T, u store.User, p client.TokenPair, sid string) {
				call(t, admin, http.MethodPatch, fmt.Sprintf("/api/v1/account/management/%d/update/", u.ID), `{"is_active":false}`)
			}, map[string]int{ssf.TypeAccountDisabled: 1}, 2},
			{"deletion", func(t *testing.T, u store.User, p client.TokenPair, sid string) {
				call(t, admin, http.MethodDelete, fmt.Sprintf("/api/v1/account/management/%d/delete/", u.ID), "")
			}, map[string]int{ssf.TypeAccountPurged: 1}, 2},
			{"made staff", func(t *testing.T, u store.User, p client.TokenPair, sid string) {
				call(t, admin, http.MethodPatch, fmt.Sprintf("/api/v1/account/management/%d/update/", u.ID), `{"is_staff":true}`)
			}, map[string]int{tc: 1}, 0},
			{"a login and a refresh", func(t *testing.T, u store.User, p client.TokenPair, sid string) {
				call(t, p.Access, http.MethodPost, "/api/v1/auth/token/refresh/", `{"refresh":"`+p.Refresh+`"}`)
			}, map[string]int{}, 0},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				n++
				u := e.mustUser(t, fmt.Sprintf("user%d", n), regular)
				p := e.mustLogin(t, u.Username)
				claims, err := e.tokens.Parse(p.Access, token.Access)
				if err != nil {
					t.Fatal(err)
				}
				other, err := e.tokens.Parse(e.mustLogin(t, u.Username).Access, token.Access)
				if err != nil {
					t.Fatal(err)
				}
				c.do(t, u, p, claims.SessionID)
				want := maps.Clone(c.want)
				wantSessions := map[string]bool{}
				for _, sid := range []string{claims.SessionID, other.SessionID}[:c.ended] {
					want[sr]++
					wantSessions[sid] = true
				}
				named := map[string]bool{}
				got := map[string]int{}
				for _, set := range e.drainSETs(t, rs.token, st.StreamId) {
					typ := eventType(set)
					got[typ]++
					sub := set["sub_id"].(map[string]any)
					if user := sub["user"].(map[string]any); user["sub"] != strconv.FormatInt(u.ID, 10) {
						t.Errorf("%s about %v, want user %d", typ, user, u.ID)
					}
					if typ == sr {
						session, _ := sub["session"].(map[string]any)
						id, _ := session["id"].(string)
						if !wantSessions[id] || named[id] {
							t.Errorf("session-revoked sub_id %v, want one of %v, each once", sub, wantSessions)
						}
						named[id] = true
					}
				}
				if !maps.Equal(got, want) {
					t.Errorf("events %v, want %v", got, want)
				}
			})
		}
	})
}

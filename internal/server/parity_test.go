package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"testing"

	"github.com/authapi/authapi/gen/client"
)

// fieldNames are the fields an Error body names, sorted.
func fieldNames(e client.Error) []string {
	if e.Fields == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(*e.Fields))
}

// TestEveryInvalidFieldAtOnce: as the demo's serializers did, one 400 names every invalid
// field, whether the spec (pattern, length, type, unknown member) or the handler (email,
// null characters, a taken username, the password policy) finds it, and nothing is written.
func TestEveryInvalidFieldAtOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "root", superRole)
		alice := e.mustUser(t, "alice", regular)
		bob := e.mustUser(t, "bob", regular)
		rootTok := e.mustLogin(t, "root").Access
		root := bearer(rootTok)

		// Through the generated client: what its types can express.
		for _, tc := range []struct {
			name string
			body client.UserCreate
			want []string
		}{
			{"the demo's pair", client.UserCreate{Username: "bad name!", FirstName: "a", LastName: "b", Email: "bad", Password: demoPassword},
				[]string{"email", "username"}},
			{"taken username, bad email", client.UserCreate{Username: "ALICE", FirstName: "a", LastName: "b", Email: "bad", Password: demoPassword},
				[]string{"email", "username"}},
			{"taken username, weak password", client.UserCreate{Username: "alice", FirstName: "a", LastName: "b", Email: "a@example.com", Password: "1"},
				[]string{"password", "username"}},
			{"blank, too long, null, weak", client.UserCreate{Username: "", FirstName: string(make([]byte, 151)), LastName: "b\x00", Email: "bad", Password: "1"},
				[]string{"email", "first_name", "last_name", "password", "username"}},
		} {
			r, err := e.client.CreateUserWithResponse(ctx, tc.body, root)
			mustNoErr(t, err)
			got := wantError(t, tc.name, r.StatusCode(), r.Body, 400, "invalid")
			if !slices.Equal(fieldNames(got), tc.want) {
				t.Errorf("%s: fields %v, want %v", tc.name, got.Fields, tc.want)
			}
		}
		p, err := e.client.PartialUpdateUserWithResponse(ctx, bob.ID, client.UserPatch{Username: ptr("alice"), Email: ptr("bad"), FirstName: ptr("")}, root)
		mustNoErr(t, err)
		if got := wantError(t, "PATCH", p.StatusCode(), p.Body, 400, "invalid"); !slices.Equal(fieldNames(got), []string{"email", "first_name", "username"}) {
			t.Errorf("PATCH: fields %v", got.Fields)
		}
		// A user keeps their own username, in any case.
		p, _ = e.client.PartialUpdateUserWithResponse(ctx, bob.ID, client.UserPatch{Username: ptr("BOB"), Email: ptr("bad")}, root)
		if got := wantError(t, "PATCH own username", p.StatusCode(), p.Body, 400, "invalid"); !slices.Equal(fieldNames(got), []string{"email"}) {
			t.Errorf("PATCH own username: fields %v", got.Fields)
		}

		// Raw bodies, for members of the wrong type and unknown members.
		for _, tc := range []struct {
			name, method, path, body string
			want                     []string
		}{
			{"create: types, unknown, handler checks", http.MethodPost, "/api/v1/account/management/create/",
				`{"username":5,"first_name":"a","last_name":"b","email":"bad","password":"1","is_staff":"yes","is_superuser":true}`,
				[]string{"email", "is_staff", "is_superuser", "password", "username"}},
			{"create: missing and typed", http.MethodPost, "/api/v1/account/management/create/",
				`{"first_name":["a"],"email":"alice@example.com"}`,
				[]string{"first_name", "last_name", "password", "username"}},
			{"PUT: type and taken username", http.MethodPut, "/api/v1/account/management/" + strconv.FormatInt(bob.ID, 10) + "/update/",
				`{"username":"alice","first_name":"B","last_name":"B","email":"b@example.com","is_active":"no"}`,
				[]string{"is_active", "username"}},
			{"PATCH: type and blank", http.MethodPatch, "/api/v1/account/management/" + strconv.FormatInt(bob.ID, 10) + "/update/",
				`{"is_staff":1,"last_name":"","password":"x"}`,
				[]string{"is_staff", "last_name", "password"}},
		} {
			r, body := e.do(t, tc.method, tc.path, "application/json", tc.body, "Authorization", "Bearer "+rootTok)
			got := wantError(t, tc.name, r.StatusCode, body, 400, "invalid")
			if !slices.Equal(fieldNames(got), tc.want) {
				t.Errorf("%s: fields %v, want %v", tc.name, got.Fields, tc.want)
			}
		}

		// Nothing refused was written: no new user, bob and alice unchanged.
		if n, err := e.store.CountUsers(ctx); err != nil || n != 3 {
			t.Errorf("users after refused creations: %d, %v; want 3", n, err)
		}
		for _, want := range []int64{alice.ID, bob.ID} {
			before := map[int64]string{alice.ID: "alice", bob.ID: "bob"}[want]
			u, err := e.store.UserByID(ctx, want)
			mustNoErr(t, err)
			if u.Username != before || u.Email != before+"@example.com" || u.IsStaff || !u.IsActive || u.LastName != "Seed" {
				t.Errorf("user %d changed by a refused update: %+v", want, u)
			}
		}
	})
}

// TestNonIntegerUserIDNotFound: the demo routed users by <int:id>, so anything else in the
// id's place was no route at all: 404, here in the spec's Error body, whatever else is wrong.
func TestNonIntegerUserIDNotFound(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "root", superRole)
		auth := "Bearer " + e.mustLogin(t, "root").Access
		for _, id := range []string{"abc", "1.5", "0", "-1", "1e3", "99999999999999999999999", "%20", "%E2%82%AC"} {
			for _, tc := range []struct{ method, path, body string }{
				{http.MethodGet, "/api/v1/account/management/" + id + "/", ""},
				{http.MethodPut, "/api/v1/account/management/" + id + "/update/", `{"username":"bad name!","is_staff":"x"}`},
				{http.MethodPatch, "/api/v1/account/management/" + id + "/update/", `{}`},
				{http.MethodDelete, "/api/v1/account/management/" + id + "/delete/", ""},
			} {
				ct := ""
				if tc.body != "" {
					ct = "application/json"
				}
				r, body := e.do(t, tc.method, tc.path, ct, tc.body, "Authorization", auth)
				if got := wantError(t, tc.method+" "+tc.path, r.StatusCode, body, 404, "not_found"); got.Detail != "Not found." {
					t.Errorf("%s %s: detail %q", tc.method, tc.path, got.Detail)
				}
			}
		}
	})
}

// memberOrder returns the member names of a JSON object in the order they appear.
func memberOrder(t *testing.T, what string, body []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("%s: not a JSON object: %s", what, body)
	}
	var names []string
	for dec.More() {
		tok, err := dec.Token()
		mustNoErr(t, err)
		names = append(names, tok.(string))
		var skip json.RawMessage
		mustNoErr(t, dec.Decode(&skip))
	}
	return names
}

// TestJSONMemberOrder: members come in the demo's order (id first, the demo's serializer
// order after it), as the spec's x-order says.
func TestJSONMemberOrder(t *testing.T) {
	e := newTestEnv(t, "sqlite")
	ctx := context.Background()
	root := e.mustUser(t, "root", superRole)
	pair := e.mustLogin(t, "root")
	auth := bearer(pair.Access)
	// The demo's preview, then what authapi adds (the console needs both).
	preview := []string{"id", "username", "first_name", "last_name", "email", "is_active", "is_staff", "last_login", "is_superuser", "date_joined",
		"email_verified", "email_verified_at"}

	login, err := e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: "root", Password: demoPassword})
	mustNoErr(t, err)
	refresh, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: pair.Refresh})
	mustNoErr(t, err)
	account, err := e.client.GetAccountWithResponse(ctx, auth)
	mustNoErr(t, err)
	get, err := e.client.GetUserWithResponse(ctx, root.ID, auth)
	mustNoErr(t, err)
	created, err := e.client.CreateUserWithResponse(ctx, newUserBody("bob"), auth)
	mustNoErr(t, err)
	patched, err := e.client.PartialUpdateUserWithResponse(ctx, root.ID, client.UserPatch{FirstName: ptr("R")}, auth)
	mustNoErr(t, err)
	list, err := e.client.ListUsersWithResponse(ctx, nil, auth)
	mustNoErr(t, err)
	invalid, err := e.client.CreateUserWithResponse(ctx, client.UserCreate{}, auth)
	mustNoErr(t, err)
	welcome, err := e.client.WelcomeWithResponse(ctx, auth)
	mustNoErr(t, err)
	sessions, err := e.client.ListSessionsWithResponse(ctx, auth)
	mustNoErr(t, err)
	jwks, err := e.client.GetJWKSWithResponse(ctx)
	mustNoErr(t, err)
	rotated, err := e.client.RotateSigningKeyWithResponse(ctx, client.KeyRotateRequest{}, auth)
	mustNoErr(t, err)
	keys, err := e.client.ListSigningKeysWithResponse(ctx, auth)
	mustNoErr(t, err)
	audit, err := e.client.ListAuditEventsWithResponse(ctx, nil, auth)
	mustNoErr(t, err)
	var items []json.RawMessage
	mustNoErr(t, json.Unmarshal(list.Body, &items))
	first := func(body []byte) []byte {
		var all []json.RawMessage
		mustNoErr(t, json.Unmarshal(body, &all))
		if len(all) == 0 {
			t.Fatalf("empty list: %s", body)
		}
		return all[0]
	}
	var set struct{ Keys []json.RawMessage }
	mustNoErr(t, json.Unmarshal(jwks.Body, &set))
	var sessionItems []json.RawMessage
	mustNoErr(t, json.Unmarshal(sessions.Body, &sessionItems))

	for _, tc := range []struct {
		what string
		body []byte
		want []string
	}{
		{"token pair", login.Body, []string{"refresh", "access"}},
		{"refresh", refresh.Body, []string{"access", "refresh"}},
		{"account", account.Body, []string{"id", "username", "first_name", "last_name", "email", "last_login", "email_verified", "email_verified_at", "pending_email"}},
		{"get user", get.Body, preview},
		{"create user", created.Body, preview},
		{"patch user", patched.Body, preview},
		{"list item", items[0], preview},
		{"error", invalid.Body, []string{"detail", "code", "fields"}},
		{"welcome", welcome.Body, []string{"name", "api_version", "message"}},
		{"session", sessionItems[0], []string{"id", "created", "last_used", "expires", "user_agent", "ip", "current"}},
		// Schemas without a demo counterpart list their members as the spec declares them;
		// alg, key, action and outcome refer to other schemas (see the spec on x-order).
		{"jwk", set.Keys[0], []string{"kty", "kid", "alg", "use", "crv", "x"}},
		{"key rotation", rotated.Body, []string{"key", "encrypted", "deleted"}},
		{"signing key", first(keys.Body), []string{"kid", "alg", "created", "signs_from", "state", "verifies_until", "encrypted"}},
		{"audit event", first(audit.Body), []string{"id", "time", "action", "outcome", "actor_id", "target_id", "session_id", "ip", "user_agent", "key_id", "fields", "count", "first_time"}},
	} {
		got := memberOrder(t, tc.what, tc.body)
		// verifies_until is left out while null; the others keep their order.
		want := slices.DeleteFunc(slices.Clone(tc.want), func(m string) bool { return m == "verifies_until" && !slices.Contains(got, m) })
		if !slices.Equal(got, want) {
			t.Errorf("%s: members %v, want %v", tc.what, got, tc.want)
		}
	}
}

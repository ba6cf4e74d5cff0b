package server_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/token"
)

// TestUsernamesNFKC: usernames are NFKC-normalised (as Django normalises them) and unique
// ignoring case in that form: the fullwidth "ａｄｍｉｎ" cannot be created beside "admin", is
// stored as "admin" where it is new, logs into "admin", and shares its failed-login budget.
func TestUsernamesNFKC(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		admin := e.mustUser(t, "admin", superRole)
		root := bearer(e.mustLogin(t, "admin").Access)

		for _, name := range []string{"ａｄｍｉｎ", "ＡＤＭＩＮ"} {
			r, err := e.client.CreateUserWithResponse(ctx, newUserBody(name), root)
			if err != nil {
				t.Fatal(err)
			}
			got := wantError(t, "create "+name, r.StatusCode(), r.Body, http.StatusBadRequest, "invalid")
			if got.Fields == nil || (*got.Fields)["username"][0] != "A user with that username already exists." {
				t.Errorf("create %s: fields %v, want the username taken", name, got.Fields)
			}
		}
		r, err := e.client.CreateUserWithResponse(ctx, newUserBody("ｂｏｂ"), root)
		if err != nil || r.JSON201 == nil {
			t.Fatalf("create ｂｏｂ: %v %d %s", err, r.StatusCode(), r.Body)
		}
		if r.JSON201.Username != "bob" {
			t.Errorf("created username %q, want it normalised to bob", r.JSON201.Username)
		}
		// Renaming to another spelling of the same name changes nothing; to admin's, is refused.
		p, err := e.client.PartialUpdateUserWithResponse(ctx, r.JSON201.Id, client.UserPatch{Username: ptr("ＢＯＢ")}, root)
		if err != nil || p.JSON200 == nil || p.JSON200.Username != "BOB" {
			t.Errorf("rename to ＢＯＢ: %v %d %s, want BOB", err, p.StatusCode(), p.Body)
		}
		p, err = e.client.PartialUpdateUserWithResponse(ctx, r.JSON201.Id, client.UserPatch{Username: ptr("ａｄｍｉｎ")}, root)
		if err != nil {
			t.Fatal(err)
		}
		wantError(t, "rename to ａｄｍｉｎ", p.StatusCode(), p.Body, http.StatusBadRequest, "invalid")

		// Logging in as ａｄｍｉｎ logs into admin.
		pair := e.mustLoginWith(t, "ａｄｍｉｎ", demoPassword)
		claims, err := e.tokens.Parse(pair.Access, token.Access)
		if err != nil || claims.UserID != admin.ID {
			t.Errorf("login as ａｄｍｉｎ: user %d, %v; want admin (%d)", claims.UserID, err, admin.ID)
		}
	})
}

// TestThrottleNFKC: failed logins as "ＡＤＭＩＮ" count against "admin": another spelling gets no
// budget of its own.
func TestThrottleNFKC(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "admin", superRole)
		for i, name := range []string{"ａｄｍｉｎ", "ＡＤＭＩＮ", "Ａdmin", "aｄmin", "admｉn"} {
			if r := e.login(t, name, "wrong password"); r.StatusCode() != http.StatusUnauthorized {
				t.Fatalf("wrong password #%d as %s: %d %s", i+1, name, r.StatusCode(), r.Body)
			}
		}
		r := e.login(t, "admin", demoPassword)
		wantError(t, "admin after 5 failures under other spellings", r.StatusCode(), r.Body, http.StatusTooManyRequests, "throttled")
	}) // the default: 5 failures per account
}

// TestFormatCharacters: invisible formatting characters (Unicode Cf, such as U+202E, which
// reverses the text after it) are refused in usernames, names and emails; the zero-width
// non-joiner of Persian names is not.
func TestFormatCharacters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "admin", superRole)
		root := bearer(e.mustLogin(t, "admin").Access)
		for _, tc := range []struct {
			name, field, msg string
			body             client.UserCreate
		}{
			{"username", "username", "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters.",
				client.UserCreate{Username: "ad\u202Emin", FirstName: "A", LastName: "B", Email: "a@example.com", Password: demoPassword}},
			{"first name", "first_name", "Invisible formatting characters are not allowed.",
				client.UserCreate{Username: "u1", FirstName: "evil\u202Egnp.exe", LastName: "B", Email: "a@example.com", Password: demoPassword}},
			{"last name", "last_name", "Invisible formatting characters are not allowed.",
				client.UserCreate{Username: "u2", FirstName: "A", LastName: "B\u2066x", Email: "a@example.com", Password: demoPassword}},
			{"email", "email", "Enter a valid email address.",
				client.UserCreate{Username: "u3", FirstName: "A", LastName: "B", Email: "a\u200B@example.com", Password: demoPassword}},
		} {
			r, err := e.client.CreateUserWithResponse(ctx, tc.body, root)
			if err != nil {
				t.Fatal(err)
			}
			got := wantError(t, tc.name, r.StatusCode(), r.Body, http.StatusBadRequest, "invalid")
			if got.Fields == nil || len((*got.Fields)[tc.field]) == 0 || (*got.Fields)[tc.field][0] != tc.msg {
				t.Errorf("%s: fields %v, want %s: %q", tc.name, got.Fields, tc.field, tc.msg)
			}
		}
		ok := client.UserCreate{Username: "reza", FirstName: "Mohammad\u200CReza", LastName: "B", Email: "reza@example.com", Password: demoPassword}
		if r, err := e.client.CreateUserWithResponse(ctx, ok, root); err != nil || r.JSON201 == nil {
			t.Errorf("name with a zero-width non-joiner: %v %d %s, want 201", err, r.StatusCode(), r.Body)
		}
	})
}

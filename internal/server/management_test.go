package server_test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

func ptr[T any](v T) *T { return &v }

func newUserBody(username string) client.UserCreate {
	return client.UserCreate{
		Username: username, FirstName: "Bob", LastName: "Builder",
		Email: username + "@example.com", Password: demoPassword,
	}
}

// TestManagementPermissions is the demo suite's matrix: who may call which management operation.
func TestManagementPermissions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "root", superRole)
		e.mustUser(t, "staff", staffRole)
		e.mustUser(t, "alice", regular)
		tokens := map[string]string{}
		for _, name := range []string{"root", "staff", "alice"} {
			tokens[name] = e.mustLogin(t, name).Access
		}
		target := e.mustUser(t, "target", regular)

		type call func(auth ...client.RequestEditorFn) (int, []byte)
		calls := map[string]call{
			"list": func(a ...client.RequestEditorFn) (int, []byte) {
				r, err := e.client.ListUsersWithResponse(ctx, nil, a...)
				mustNoErr(t, err)
				return r.StatusCode(), r.Body
			},
			"get": func(a ...client.RequestEditorFn) (int, []byte) {
				r, err := e.client.GetUserWithResponse(ctx, target.ID, a...)
				mustNoErr(t, err)
				return r.StatusCode(), r.Body
			},
			"create": func(a ...client.RequestEditorFn) (int, []byte) {
				r, err := e.client.CreateUserWithResponse(ctx, newUserBody("new"+strconv.Itoa(len(a))), a...)
				mustNoErr(t, err)
				return r.StatusCode(), r.Body
			},
			"put": func(a ...client.RequestEditorFn) (int, []byte) {
				r, err := e.client.UpdateUserWithResponse(ctx, target.ID, client.UserUpdate{Username: "target", FirstName: "T", LastName: "T", Email: "t@example.com"}, a...)
				mustNoErr(t, err)
				return r.StatusCode(), r.Body
			},
			"patch": func(a ...client.RequestEditorFn) (int, []byte) {
				r, err := e.client.PartialUpdateUserWithResponse(ctx, target.ID, client.UserPatch{FirstName: ptr("Tee")}, a...)
				mustNoErr(t, err)
				return r.StatusCode(), r.Body
			},
		}
		for _, tc := range []struct {
			op, who string
			want    int
		}{
			{"list", "", 401}, {"list", "alice", 403}, {"list", "staff", 200}, {"list", "root", 200},
			{"get", "", 401}, {"get", "alice", 403}, {"get", "staff", 200}, {"get", "root", 200},
			{"create", "", 401}, {"create", "alice", 403}, {"create", "staff", 403}, {"create", "root", 201},
			{"put", "", 401}, {"put", "alice", 403}, {"put", "staff", 403}, {"put", "root", 200},
			{"patch", "", 401}, {"patch", "alice", 403}, {"patch", "staff", 403}, {"patch", "root", 200},
		} {
			var auth []client.RequestEditorFn
			if tc.who != "" {
				auth = append(auth, bearer(tokens[tc.who]))
			}
			status, body := calls[tc.op](auth...)
			what := fmt.Sprintf("%s as %q", tc.op, tc.who)
			switch tc.want {
			case 401:
				wantError(t, what, status, body, 401, "not_authenticated")
			case 403:
				if e := wantError(t, what, status, body, 403, "permission_denied"); e.Detail != "You do not have permission to perform this action." {
					t.Errorf("%s: detail %q", what, e.Detail)
				}
			default:
				if status != tc.want {
					t.Errorf("%s: status %d, want %d; body %s", what, status, tc.want, body)
				}
			}
		}
		for _, who := range []string{"", "alice", "staff"} {
			var auth []client.RequestEditorFn
			if who != "" {
				auth = append(auth, bearer(tokens[who]))
			}
			r, err := e.client.DeleteUserWithResponse(ctx, target.ID, auth...)
			mustNoErr(t, err)
			if r.StatusCode() == http.StatusNoContent {
				t.Fatalf("delete as %q succeeded", who)
			}
		}
		r, _ := e.client.DeleteUserWithResponse(ctx, target.ID, bearer(tokens["root"]))
		if r.StatusCode() != http.StatusNoContent || len(r.Body) != 0 {
			t.Fatalf("delete as root: %d %s", r.StatusCode(), r.Body)
		}
		r, _ = e.client.DeleteUserWithResponse(ctx, target.ID, bearer(tokens["root"]))
		wantError(t, "delete again", r.StatusCode(), r.Body, 404, "not_found")
		g, _ := e.client.GetUserWithResponse(ctx, target.ID, bearer(tokens["staff"]))
		wantError(t, "get deleted", g.StatusCode(), g.Body, 404, "not_found")
	})
}

func mustNoErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCreateUser(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "root", superRole)
		rootTok := e.mustLogin(t, "root").Access
		root := bearer(rootTok)

		body := newUserBody("bob")
		body.IsStaff = ptr(true)
		r, err := e.client.CreateUserWithResponse(ctx, body, root)
		mustNoErr(t, err)
		if r.JSON201 == nil {
			t.Fatalf("create: %d %s", r.StatusCode(), r.Body)
		}
		if r.JSON201.DateJoined.IsZero() {
			t.Errorf("created %+v without date_joined", *r.JSON201)
		}
		want := client.UserPreview{Id: r.JSON201.Id, Username: "bob", FirstName: "Bob", LastName: "Builder", Email: "bob@example.com", IsActive: true, IsStaff: true, DateJoined: r.JSON201.DateJoined}
		if *r.JSON201 != want {
			t.Errorf("created %+v, want %+v", *r.JSON201, want)
		}
		if g, err := e.client.GetUserWithResponse(ctx, r.JSON201.Id, root); err != nil || g.JSON200 == nil || *g.JSON200 != want {
			t.Errorf("read back: %v %s, want %+v", err, g.Body, want)
		}
		if strings.Contains(strings.ToLower(string(r.Body)), "password") {
			t.Errorf("response mentions a password: %s", r.Body)
		}
		// The new user can log in, and is not a superuser.
		bob := e.mustLogin(t, "bob")
		if c, _ := e.client.CreateUserWithResponse(ctx, newUserBody("carol"), bearer(bob.Access)); c.StatusCode() != 403 {
			t.Errorf("staff user created a user: %d", c.StatusCode())
		}

		for _, name := range []string{"bob", "BOB", "Bob"} {
			d, _ := e.client.CreateUserWithResponse(ctx, newUserBody(name), root)
			got := wantError(t, "duplicate "+name, d.StatusCode(), d.Body, 400, "invalid")
			if got.Fields == nil || (*got.Fields)["username"][0] != "A user with that username already exists." {
				t.Errorf("duplicate %s: fields %v", name, got.Fields)
			}
		}

		for _, pw := range []string{"password", "12345678", "1"} {
			b := newUserBody("weak" + strconv.Itoa(len(pw)))
			b.Password = pw
			w, _ := e.client.CreateUserWithResponse(ctx, b, root)
			got := wantError(t, "weak password "+pw, w.StatusCode(), w.Body, 400, "invalid_password")
			if got.Fields == nil || len((*got.Fields)["password"]) == 0 {
				t.Errorf("weak password %q: no reasons in fields: %s", pw, w.Body)
			}
			if _, err := e.store.UserByUsername(ctx, b.Username); err == nil {
				t.Errorf("weak password %q: user was created", pw)
			}
		}
		one, _ := e.client.CreateUserWithResponse(ctx, client.UserCreate{Username: "x1", FirstName: "X", LastName: "Y", Email: "x1@example.com", Password: "1"}, root)
		if got := wantError(t, "password 1", one.StatusCode(), one.Body, 400, "invalid_password"); !strings.Contains(got.Detail, "too short") || !strings.Contains(got.Detail, "entirely numeric") {
			t.Errorf("password 1: detail %q should list every reason", got.Detail)
		}

		for _, tc := range []struct{ name, body, field string }{
			{"missing fields", `{}`, "username"},
			{"bad username", `{"username":"bad name!","first_name":"a","last_name":"b","email":"a@example.com","password":"super_secret_password"}`, "username"},
			{"long username", `{"username":"` + strings.Repeat("u", 151) + `","first_name":"a","last_name":"b","email":"a@example.com","password":"super_secret_password"}`, "username"},
			{"bad email", `{"username":"dave","first_name":"a","last_name":"b","email":"not-an-email","password":"super_secret_password"}`, "email"},
			{"is_superuser", `{"username":"dave","first_name":"a","last_name":"b","email":"d@example.com","password":"super_secret_password","is_superuser":true}`, "is_superuser"},
			{"wrong type", `{"username":"dave","first_name":"a","last_name":"b","email":"d@example.com","password":"super_secret_password","is_staff":"yes"}`, "is_staff"},
		} {
			resp, body := e.do(t, http.MethodPost, "/api/v1/account/management/create/", "application/json", tc.body, "Authorization", "Bearer "+rootTok)
			got := wantError(t, tc.name, resp.StatusCode, body, 400, "invalid")
			if got.Fields == nil || len((*got.Fields)[tc.field]) == 0 {
				t.Errorf("%s: fields %v, want %s", tc.name, got.Fields, tc.field)
			}
		}

		// Read-only fields are accepted and ignored.
		resp, created := e.do(t, http.MethodPost, "/api/v1/account/management/create/", "application/json",
			`{"id":1,"last_login":"2020-01-01T00:00:00Z","date_joined":null,"username":"erin","first_name":"Erin","last_name":"E","email":"erin@example.com","password":"super_secret_password"}`,
			"Authorization", "Bearer "+rootTok)
		if resp.StatusCode != 201 || strings.Contains(string(created), `"id":1,`) || !strings.Contains(string(created), `"last_login":null`) {
			t.Errorf("read-only fields: %d %s", resp.StatusCode, created)
		}
	})
}

func TestUpdateUser(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "root", superRole)
		e.mustUser(t, "alice", regular)
		rootTok := e.mustLogin(t, "root").Access
		root := bearer(rootTok)
		bob := e.mustUser(t, "bob", regular)
		bobPair := e.mustLogin(t, "bob")

		// The demo's serializer ignored is_staff; authapi's applies it.
		r, err := e.client.UpdateUserWithResponse(ctx, bob.ID, client.UserUpdate{
			Username: "bob", FirstName: "Bobby", LastName: "Builder", Email: "bobby@example.com", IsStaff: ptr(true),
		}, root)
		mustNoErr(t, err)
		if r.JSON200 == nil || !r.JSON200.IsStaff || r.JSON200.FirstName != "Bobby" || r.JSON200.Email != "bobby@example.com" {
			t.Fatalf("PUT: %d %s", r.StatusCode(), r.Body)
		}
		// Promotion applies to the existing session at once.
		if l, _ := e.client.ListUsersWithResponse(ctx, nil, bearer(bobPair.Access)); l.StatusCode() != 200 {
			t.Errorf("promoted bob cannot list: %d", l.StatusCode())
		}

		p, err := e.client.PartialUpdateUserWithResponse(ctx, bob.ID, client.UserPatch{LastName: ptr("Mason")}, root)
		mustNoErr(t, err)
		if p.JSON200 == nil || p.JSON200.LastName != "Mason" || p.JSON200.FirstName != "Bobby" || !p.JSON200.IsStaff {
			t.Fatalf("PATCH: %d %s", p.StatusCode(), p.Body)
		}
		// Demotion too.
		if p, _ := e.client.PartialUpdateUserWithResponse(ctx, bob.ID, client.UserPatch{IsStaff: ptr(false)}, root); p.JSON200 == nil || p.JSON200.IsStaff {
			t.Fatalf("demote: %d %s", p.StatusCode(), p.Body)
		}
		l, _ := e.client.ListUsersWithResponse(ctx, nil, bearer(bobPair.Access))
		wantError(t, "demoted bob lists", l.StatusCode(), l.Body, 403, "permission_denied")

		// The demo accepted "1" as a new password; authapi applies the policy.
		w, _ := e.client.PartialUpdateUserWithResponse(ctx, bob.ID, client.UserPatch{Password: ptr("1")}, root)
		wantError(t, "weak new password", w.StatusCode(), w.Body, 400, "invalid_password")
		pu, _ := e.client.UpdateUserWithResponse(ctx, bob.ID, client.UserUpdate{Username: "bob", FirstName: "B", LastName: "B", Email: "b@example.com", Password: ptr("1")}, root)
		wantError(t, "weak new password (PUT)", pu.StatusCode(), pu.Body, 400, "invalid_password")

		// A new password revokes every session of the user.
		np, _ := e.client.PartialUpdateUserWithResponse(ctx, bob.ID, client.UserPatch{Password: ptr("another_secret_phrase")}, root)
		if np.StatusCode() != 200 {
			t.Fatalf("new password: %d %s", np.StatusCode(), np.Body)
		}
		wl, _ := e.client.WelcomeWithResponse(ctx, bearer(bobPair.Access))
		wantError(t, "session after password change", wl.StatusCode(), wl.Body, 401, "token_not_valid")
		if lr, _ := e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: "bob", Password: "another_secret_phrase"}); lr.StatusCode() != 200 {
			t.Errorf("login with new password: %d", lr.StatusCode())
		}

		rn, _ := e.client.UpdateUserWithResponse(ctx, bob.ID, client.UserUpdate{Username: "ALICE", FirstName: "B", LastName: "B", Email: "b@example.com"}, root)
		if got := wantError(t, "rename to existing", rn.StatusCode(), rn.Body, 400, "invalid"); got.Fields == nil || len((*got.Fields)["username"]) == 0 {
			t.Errorf("rename to existing: %s", rn.Body)
		}
		mf, _ := e.client.UpdateUserWithResponse(ctx, bob.ID, client.UserUpdate{}, root)
		if got := wantError(t, "PUT blank fields", mf.StatusCode(), mf.Body, 400, "invalid"); got.Fields == nil || len(*got.Fields) != 4 {
			t.Errorf("PUT blank fields: want 4 fields, got %s", mf.Body)
		}
		raw, body := e.do(t, http.MethodPut, "/api/v1/account/management/"+strconv.FormatInt(bob.ID, 10)+"/update/", "application/json", `{}`, "Authorization", "Bearer "+rootTok)
		if got := wantError(t, "PUT missing fields", raw.StatusCode, body, 400, "invalid"); got.Fields == nil || len(*got.Fields) != 4 || (*got.Fields)["email"][0] != "This field is required." {
			t.Errorf("PUT missing fields: want 4 required fields, got %s", body)
		}
		bl, _ := e.client.PartialUpdateUserWithResponse(ctx, bob.ID, client.UserPatch{FirstName: ptr("")}, root)
		wantError(t, "PATCH blank", bl.StatusCode(), bl.Body, 400, "invalid")
		nf, _ := e.client.PartialUpdateUserWithResponse(ctx, 999999, client.UserPatch{FirstName: ptr("X")}, root)
		wantError(t, "PATCH unknown id", nf.StatusCode(), nf.Body, 404, "not_found")
		raw, body = e.do(t, http.MethodGet, "/api/v1/account/management/"+strconv.FormatInt(bob.ID, 10)+"/update/", "", "", "Authorization", "Bearer "+rootTok)
		wantError(t, "GET update", raw.StatusCode, body, 405, "method_not_allowed")

		// Deactivation locks the user out at once, sessions and login alike.
		fresh := e.mustLogin(t, "alice")
		alice, _ := e.store.UserByUsername(ctx, "alice")
		if d, _ := e.client.PartialUpdateUserWithResponse(ctx, alice.ID, client.UserPatch{IsActive: ptr(false)}, root); d.JSON200 == nil || d.JSON200.IsActive {
			t.Fatalf("deactivate: %d %s", d.StatusCode(), d.Body)
		}
		wa, _ := e.client.WelcomeWithResponse(ctx, bearer(fresh.Access))
		if wa.StatusCode() != 401 {
			t.Errorf("deactivated alice's token: %d", wa.StatusCode())
		}
		rr, _ := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: fresh.Refresh})
		if rr.StatusCode() != 401 {
			t.Errorf("deactivated alice refreshed: %d", rr.StatusCode())
		}
	})
}

func TestLastSuperuserGuard(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		root := e.mustUser(t, "root", superRole)
		auth := bearer(e.mustLogin(t, "root").Access)
		for _, tc := range []struct {
			name  string
			patch client.UserPatch
			want  string
		}{
			{"deactivate", client.UserPatch{IsActive: ptr(false)}, "your own account"}, // refused before the guard
			{"demote", client.UserPatch{IsStaff: ptr(false)}, "last active superuser"},
		} {
			r, _ := e.client.PartialUpdateUserWithResponse(ctx, root.ID, tc.patch, auth)
			if got := wantError(t, tc.name, r.StatusCode(), r.Body, 400, "invalid"); !strings.Contains(got.Detail, tc.want) {
				t.Errorf("%s: detail %q", tc.name, got.Detail)
			}
		}
		d, _ := e.client.DeleteUserWithResponse(ctx, root.ID, auth)
		wantError(t, "delete", d.StatusCode(), d.Body, 400, "invalid")
		if w, _ := e.client.WelcomeWithResponse(ctx, auth); w.StatusCode() != 200 {
			t.Fatalf("root lost access after refused changes: %d", w.StatusCode())
		}

		// With a second superuser, the first may go.
		e.mustUser(t, "root2", superRole)
		d, _ = e.client.DeleteUserWithResponse(ctx, root.ID, auth)
		if d.StatusCode() != http.StatusNoContent {
			t.Fatalf("delete with another superuser: %d %s", d.StatusCode(), d.Body)
		}
		w, _ := e.client.WelcomeWithResponse(ctx, auth)
		wantError(t, "deleted user's token", w.StatusCode(), w.Body, 401, "user_not_found")
	})
}

func TestListPagination(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "staff", staffRole)
		staffTok := e.mustLogin(t, "staff").Access
		auth := bearer(staffTok)
		for i := range 4 {
			e.mustUser(t, fmt.Sprintf("user%d", i), regular)
		}
		var seen []int64
		offset := int64(0)
		for page := 0; ; page++ {
			r, err := e.client.ListUsersWithResponse(ctx, &client.ListUsersParams{Limit: ptr(2), Offset: &offset}, auth)
			mustNoErr(t, err)
			if r.JSON200 == nil {
				t.Fatalf("page %d: %d %s", page, r.StatusCode(), r.Body)
			}
			if got := r.HTTPResponse.Header.Get("X-Total-Count"); got != "5" {
				t.Errorf("page %d: X-Total-Count %q, want 5", page, got)
			}
			for _, u := range *r.JSON200 {
				seen = append(seen, u.Id)
			}
			link := r.HTTPResponse.Header.Get("Link")
			if page < 2 {
				want := fmt.Sprintf(`</api/v1/account/management/?limit=2&offset=%d>; rel="next"`, offset+2)
				if link != want {
					t.Fatalf("page %d: Link %q, want %q", page, link, want)
				}
				offset += 2
				continue
			}
			if link != "" {
				t.Errorf("last page: Link %q, want none", link)
			}
			break
		}
		if len(seen) != 5 {
			t.Fatalf("saw %d users, want 5: %v", len(seen), seen)
		}
		for i := 1; i < len(seen); i++ {
			if seen[i] <= seen[i-1] {
				t.Errorf("not ordered by id: %v", seen)
			}
		}
		all, _ := e.client.ListUsersWithResponse(ctx, nil, auth)
		if all.JSON200 == nil || len(*all.JSON200) != 5 || all.HTTPResponse.Header.Get("Link") != "" {
			t.Errorf("default page: %d users, Link %q", len(*all.JSON200), all.HTTPResponse.Header.Get("Link"))
		}
		for _, q := range []string{"limit=0", "limit=1001", "limit=abc", "offset=-1", "offset=99999999999999999999"} {
			r, body := e.do(t, http.MethodGet, "/api/v1/account/management/?"+q, "", "", "Authorization", "Bearer "+staffTok)
			wantError(t, q, r.StatusCode, body, 400, "invalid")
		}
	})
}

// TestListUsersEstimatedTotal: past the exact bound, PostgreSQL's X-Total-Count is the
// planner's estimate, marked X-Total-Count-Estimated, while Link still walks every user
// exactly once; within it, and on SQLite always, the total is exact and unmarked.
func TestListUsersEstimatedTotal(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		f := newListFixture(t, e)
		storetest.Analyze(t, e.dsn, "users")
		pg := e.backend == "postgres"
		var seen []int64
		offset := int64(0)
		for page := 0; page < 10; page++ {
			r, err := e.client.ListUsersWithResponse(ctx, &client.ListUsersParams{Limit: ptr(2), Offset: &offset}, f.auth)
			mustNoErr(t, err)
			if r.JSON200 == nil {
				t.Fatalf("page %d: %d %s", page, r.StatusCode(), r.Body)
			}
			h := r.HTTPResponse.Header
			total, err := strconv.ParseInt(h.Get("X-Total-Count"), 10, 64)
			mustNoErr(t, err)
			link := h.Get("Link")
			// The last page counts nothing: it tells the total itself.
			estimated := pg && link != ""
			if got := h.Get("X-Total-Count-Estimated") == "true"; got != estimated || (!estimated && h.Get("X-Total-Count-Estimated") != "") {
				t.Errorf("page %d: X-Total-Count-Estimated %q, want it %v", page, h.Get("X-Total-Count-Estimated"), estimated)
			}
			if !estimated && total != int64(len(f.users)) || total < offset+int64(len(*r.JSON200)) {
				t.Errorf("page %d: X-Total-Count %d of %d users", page, total, len(f.users))
			}
			for _, u := range *r.JSON200 {
				seen = append(seen, u.Id)
			}
			if link == "" {
				break
			}
			offset += 2
		}
		if len(seen) != len(f.users) {
			t.Fatalf("Link walked %d users, want %d", len(seen), len(f.users))
		}
		// Three staff: within the bound, counted.
		r, err := e.client.ListUsersWithResponse(ctx, &client.ListUsersParams{Limit: ptr(1), IsStaff: ptr(true)}, f.auth)
		mustNoErr(t, err)
		if h := r.HTTPResponse.Header; h.Get("X-Total-Count") != "3" || h.Get("X-Total-Count-Estimated") != "" {
			t.Errorf("staff: X-Total-Count %q, estimated %q; want 3, unmarked", h.Get("X-Total-Count"), h.Get("X-Total-Count-Estimated"))
		}
	}, withDB(store.Options{ExactCountMax: 3}))
}

// TestUserPreviewRoles: a preview tells staff from superusers (the console shows write controls
// to superusers only) and carries date_joined as stored.
func TestUserPreviewRoles(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		root := bearer(e.mustLogin(t, e.mustUser(t, "root", superRole).Username).Access)
		for _, tc := range []struct {
			name             string
			r                role
			staff, superuser bool
		}{{"plain", regular, false, false}, {"staffer", staffRole, true, false}, {"boss", superRole, true, true}} {
			u := e.mustUser(t, tc.name, tc.r)
			got, err := e.client.GetUserWithResponse(ctx, u.ID, root)
			mustNoErr(t, err)
			if got.JSON200 == nil {
				t.Fatalf("get %s: %d %s", tc.name, got.StatusCode(), got.Body)
			}
			p := *got.JSON200
			if p.IsStaff != tc.staff || p.IsSuperuser != tc.superuser || !p.DateJoined.Equal(u.DateJoined) {
				t.Errorf("%s: is_staff %v is_superuser %v date_joined %v, want %v %v %v",
					tc.name, p.IsStaff, p.IsSuperuser, p.DateJoined, tc.staff, tc.superuser, u.DateJoined)
			}
		}
	})
}

// TestOwnAccountNotThroughManagement: a superuser's access token alone (a stolen one, say)
// cannot set the superuser's own password or deactivate them through the management API,
// which would end their sessions and lock them out for good; the refusal points to the
// password change, which asks for the current password. Other edits of oneself, and the same
// edits of someone else, go through; staff may not update anyone, themselves included.
func TestOwnAccountNotThroughManagement(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		root := e.mustUser(t, "root", superRole)
		e.mustUser(t, "root2", superRole)
		staff := e.mustUser(t, "staff", staffRole)
		alice := e.mustUser(t, "alice", regular)
		rootTokens := e.mustLogin(t, "root")
		asRoot := bearer(rootTokens.Access)
		asStaff := bearer(e.mustLogin(t, "staff").Access)
		full := func(u string) client.UserUpdate {
			return client.UserUpdate{Username: u, FirstName: "R", LastName: "Oot", Email: u + "@example.com"}
		}
		withPassword := func(b client.UserUpdate) client.UserUpdate { b.Password = ptr("a brand new passphrase"); return b }
		withInactive := func(b client.UserUpdate) client.UserUpdate { b.IsActive = ptr(false); return b }

		for _, tc := range []struct {
			name  string
			call  func() (int, []byte)
			field string
		}{
			{"PATCH own password", func() (int, []byte) {
				r, err := e.client.PartialUpdateUserWithResponse(ctx, root.ID, client.UserPatch{Password: ptr("a brand new passphrase")}, asRoot)
				mustNoErr(t, err)
				return r.StatusCode(), r.Body
			}, "password"},
			{"PUT own password", func() (int, []byte) {
				r, err := e.client.UpdateUserWithResponse(ctx, root.ID, withPassword(full("root")), asRoot)
				mustNoErr(t, err)
				return r.StatusCode(), r.Body
			}, "password"},
			{"PATCH own deactivation", func() (int, []byte) {
				r, err := e.client.PartialUpdateUserWithResponse(ctx, root.ID, client.UserPatch{IsActive: ptr(false)}, asRoot)
				mustNoErr(t, err)
				return r.StatusCode(), r.Body
			}, "is_active"},
			{"PUT own deactivation", func() (int, []byte) {
				r, err := e.client.UpdateUserWithResponse(ctx, root.ID, withInactive(full("root")), asRoot)
				mustNoErr(t, err)
				return r.StatusCode(), r.Body
			}, "is_active"},
		} {
			status, body := tc.call()
			got := wantError(t, tc.name, status, body, http.StatusBadRequest, string(client.ErrorCodeInvalid))
			if got.Fields == nil || len((*got.Fields)[tc.field]) != 1 {
				t.Fatalf("%s: fields %v, want a message for %s", tc.name, got.Fields, tc.field)
			}
			if tc.field == "password" && !strings.Contains((*got.Fields)["password"][0], "/api/v1/account/password/") {
				t.Errorf("%s: %q does not point to the password change", tc.name, (*got.Fields)["password"][0])
			}
		}
		// Nothing changed: root's session lives, the password is the old one, root is active.
		if got := getAccount(t, e, rootTokens.Access); got != http.StatusOK {
			t.Fatalf("root's session after the refusals: %d", got)
		}
		e.mustLogin(t, "root")

		// Other edits of oneself pass, an unchanged is_active too.
		p, err := e.client.PartialUpdateUserWithResponse(ctx, root.ID, client.UserPatch{FirstName: ptr("Rosa"), IsActive: ptr(true)}, asRoot)
		mustNoErr(t, err)
		if p.JSON200 == nil || p.JSON200.FirstName != "Rosa" {
			t.Fatalf("PATCH own name: %d %s", p.StatusCode(), p.Body)
		}
		// Staff update nobody, themselves included.
		sp, err := e.client.PartialUpdateUserWithResponse(ctx, staff.ID, client.UserPatch{Password: ptr("a brand new passphrase")}, asStaff)
		mustNoErr(t, err)
		wantError(t, "staff PATCH own password", sp.StatusCode(), sp.Body, http.StatusForbidden, string(client.ErrorCodePermissionDenied))
		// The same edits of another user pass.
		for _, id := range []int64{alice.ID, staff.ID} {
			r, err := e.client.PartialUpdateUserWithResponse(ctx, id, client.UserPatch{Password: ptr("a brand new passphrase"), IsActive: ptr(false)}, asRoot)
			mustNoErr(t, err)
			if r.JSON200 == nil || r.JSON200.IsActive {
				t.Fatalf("PATCH user %d's password and deactivation: %d %s", id, r.StatusCode(), r.Body)
			}
		}
	})
}

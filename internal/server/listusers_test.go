package server_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/store"
)

// listFixture is a set of users that search, filters and orderings tell apart, and a staff
// caller among them.
type listFixture struct {
	e     *testEnv
	auth  client.RequestEditorFn
	token string
	users []store.User // every user, the caller included
}

// newListFixture creates the users directly in the store (no password hashing: only the
// caller logs in). Dates, logins and emails repeat, so that orderings need their id tie-break.
func newListFixture(t *testing.T, e *testEnv) *listFixture {
	t.Helper()
	caller := e.mustUser(t, "staff", staffRole)
	token := e.mustLogin(t, "staff").Access
	caller, err := e.store.UserByID(context.Background(), caller.ID)
	mustNoErr(t, err)
	base := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	at := func(hours int) *time.Time { v := base.Add(time.Duration(hours) * time.Hour); return &v }
	f := &listFixture{e: e, auth: bearer(token), token: token, users: []store.User{caller}}
	for _, u := range (fixtureUsers{
		{Username: "root", FirstName: "Root", LastName: "Seed", Email: "root+ops@example.com", IsStaff: true, IsSuperuser: true, LastLogin: at(5)},
		{Username: "alice", FirstName: "Alice", LastName: "Liddell", Email: "alice+list@example.com", LastLogin: at(2)},
		{Username: "Zed", FirstName: "Zed", LastName: "Zulu", Email: "DUP@example.com"},
		{Username: "a_b", FirstName: "Under", LastName: "Score", Email: "a_b@example.org", LastLogin: at(2)},
		{Username: "axb", FirstName: "Cross", LastName: "Banks", Email: "dup@example.com"},
		{Username: "percent", FirstName: "100%", LastName: "Sure", Email: "percent@example.net", LastLogin: at(1)},
		{Username: "thousand", FirstName: "1000", LastName: `back\slash`, Email: "thousand@example.net"},
		{Username: "ÉLODIE", FirstName: "Élodie", LastName: "ÑÚÑEZ", Email: "elodie@example.fr", LastLogin: at(3)},
		{Username: "ivan", FirstName: "Ivan", LastName: "Gone", Email: "ivan@example.com", Inactive: true},
		{Username: "bob", FirstName: "Bob", LastName: "Builder", Email: "Bob+work@EXAMPLE.com", IsStaff: true},
	}).withDefaults(base) {
		if err := e.store.CreateUser(context.Background(), &u); err != nil {
			t.Fatalf("create %s: %v", u.Username, err)
		}
		f.users = append(f.users, u)
	}
	return f
}

// list is GET /api/v1/account/management/ through the generated client, every page at once.
func (f *listFixture) list(t *testing.T, p client.ListUsersParams) ([]client.UserPreview, int64) {
	t.Helper()
	if p.Limit == nil {
		p.Limit = ptr(1000)
	}
	r, err := f.e.client.ListUsersWithResponse(context.Background(), &p, f.auth)
	mustNoErr(t, err)
	if r.JSON200 == nil {
		t.Fatalf("list %s: %d %s", describe(p), r.StatusCode(), r.Body)
	}
	total, err := strconv.ParseInt(r.HTTPResponse.Header.Get("X-Total-Count"), 10, 64)
	mustNoErr(t, err)
	return *r.JSON200, total
}

func usernames(users []client.UserPreview) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.Username
	}
	return out
}

func describe(p client.ListUsersParams) string {
	b, _ := json.Marshal(p)
	return string(b)
}

func TestListUsersSearch(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		f := newListFixture(t, e)
		for _, tc := range []struct {
			search string
			want   []string // in id order
		}{
			{"ALI", []string{"alice"}},                      // username, ignoring case
			{"under", []string{"a_b"}},                      // first name
			{"builder", []string{"bob"}},                    // last name
			{"example.org", []string{"a_b"}},                // email
			{"WORK@example", []string{"bob"}},               // email stored in mixed case
			{"a_b", []string{"a_b"}},                        // _ is no wildcard: axb stays out
			{"100%", []string{"percent"}},                   // % is no wildcard: 1000 stays out
			{`k\s`, []string{"thousand"}},                   // \ is no escape: Banks stays out
			{"élodie", []string{"ÉLODIE"}},                  // outside ASCII, in username and first name
			{"ÉLO", []string{"ÉLODIE"}},                     // upper case outside ASCII
			{"ñúñez", []string{"ÉLODIE"}},                   // last name stored in upper case
			{"alice liddell", []string{"alice"}},            // every word, each in some field
			{"  Alice   LIDDELL  ", []string{"alice"}},      // spaces around and between words
			{"alice builder", nil},                          // no user has both
			{"example.com seed", []string{"staff", "root"}}, // words in different fields
			{"nobody", nil},
			{"", f.allNames()}, // no search
		} {
			p := client.ListUsersParams{}
			if tc.search != "" {
				p.Search = &tc.search
			}
			got, total := f.list(t, p)
			if !slices.Equal(usernames(got), tc.want) || total != int64(len(tc.want)) {
				t.Errorf("search %q: %v (X-Total-Count %d), want %v", tc.search, usernames(got), total, tc.want)
			}
		}
	})
}

func (f *listFixture) allNames() []string {
	var out []string
	for _, u := range f.users {
		out = append(out, u.Username)
	}
	return out
}

func TestListUsersFilters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		f := newListFixture(t, e)
		yes, no := ptr(true), ptr(false)
		for _, tc := range []struct {
			name string
			p    client.ListUsersParams
			keep func(u store.User) bool
		}{
			{"active", client.ListUsersParams{IsActive: yes}, func(u store.User) bool { return u.IsActive }},
			{"inactive", client.ListUsersParams{IsActive: no}, func(u store.User) bool { return !u.IsActive }},
			{"staff", client.ListUsersParams{IsStaff: yes}, func(u store.User) bool { return u.IsStaff }},
			{"not staff", client.ListUsersParams{IsStaff: no}, func(u store.User) bool { return !u.IsStaff }},
			{"superuser", client.ListUsersParams{IsSuperuser: yes}, func(u store.User) bool { return u.IsSuperuser }},
			{"not superuser", client.ListUsersParams{IsSuperuser: no}, func(u store.User) bool { return !u.IsSuperuser }},
			{"active staff, not superuser", client.ListUsersParams{IsActive: yes, IsStaff: yes, IsSuperuser: no},
				func(u store.User) bool { return u.IsActive && u.IsStaff && !u.IsSuperuser }},
			{"search and filter", client.ListUsersParams{Search: ptr("example.com"), IsStaff: no, IsActive: yes},
				func(u store.User) bool {
					return strings.Contains(strings.ToLower(u.Email), "example.com") && !u.IsStaff && u.IsActive
				}},
			{"search, filter and ordering", client.ListUsersParams{Search: ptr("E"), IsActive: yes, Ordering: ptr(client.OrderByEmailDesc)},
				func(u store.User) bool { return u.IsActive }}, // every user has an e
		} {
			var want []store.User
			for _, u := range f.users {
				if tc.keep(u) {
					want = append(want, u)
				}
			}
			order := client.OrderByID
			if tc.p.Ordering != nil {
				order = *tc.p.Ordering
			}
			sortUsers(want, order)
			got, total := f.list(t, tc.p)
			if !slices.Equal(usernames(got), storeNames(want)) || total != int64(len(want)) {
				t.Errorf("%s: %v (X-Total-Count %d), want %v", tc.name, usernames(got), total, storeNames(want))
			}
			if len(want) == 0 || len(want) == len(f.users) {
				t.Errorf("%s: the fixture does not exercise this filter", tc.name)
			}
		}
	})
}

func storeNames(users []store.User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.Username
	}
	return out
}

// sortUsers orders users as the spec says ordering does: username and email ignoring case
// (code point order of the lower-cased text), no last login before any login, ties by id, all
// of it reversed for a descending order.
func sortUsers(users []store.User, o client.UserOrdering) {
	field, desc := strings.CutPrefix(string(o), "-")
	slices.SortFunc(users, func(a, b store.User) int {
		var c int
		switch field {
		case "username":
			c = strings.Compare(strings.ToLower(a.Username), strings.ToLower(b.Username))
		case "email":
			c = strings.Compare(strings.ToLower(a.Email), strings.ToLower(b.Email))
		case "date_joined":
			c = a.DateJoined.Compare(b.DateJoined)
		case "last_login":
			switch {
			case a.LastLogin == nil && b.LastLogin == nil:
			case a.LastLogin == nil:
				c = -1
			case b.LastLogin == nil:
				c = 1
			default:
				c = a.LastLogin.Compare(*b.LastLogin)
			}
		}
		c = cmp.Or(c, cmp.Compare(a.ID, b.ID))
		if desc {
			return -c
		}
		return c
	})
}

func TestListUsersOrdering(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		f := newListFixture(t, e)
		orders := []client.UserOrdering{
			client.OrderByID, client.OrderByIDDesc, client.OrderByUsername, client.OrderByUsernameDesc,
			client.OrderByEmail, client.OrderByEmailDesc, client.OrderByDateJoined, client.OrderByDateJoinedDesc,
			client.OrderByLastLogin, client.OrderByLastLoginDesc,
		}
		for _, o := range orders {
			want := slices.Clone(f.users)
			sortUsers(want, o)
			got, _ := f.list(t, client.ListUsersParams{Ordering: &o})
			if !slices.Equal(usernames(got), storeNames(want)) {
				t.Errorf("ordering %s: %v, want %v", o, usernames(got), storeNames(want))
			}
		}
		// Spelled out, to pin the rules sortUsers encodes: never logged in comes first ascending
		// and last descending, ties by id in the same direction; case is ignored, and the
		// lower-cased names compare by code point (_ before l, é after z).
		for _, tc := range []struct {
			o    client.UserOrdering
			want []string
		}{
			{client.OrderByLastLoginDesc, []string{"staff", "root", "ÉLODIE", "a_b", "alice", "percent", "bob", "ivan", "thousand", "axb", "Zed"}},
			{client.OrderByLastLogin, []string{"Zed", "axb", "thousand", "ivan", "bob", "percent", "alice", "a_b", "ÉLODIE", "root", "staff"}},
			{client.OrderByUsername, []string{"a_b", "alice", "axb", "bob", "ivan", "percent", "root", "staff", "thousand", "Zed", "ÉLODIE"}},
			{client.OrderByEmailDesc, []string{"thousand", "staff", "root", "percent", "ivan", "ÉLODIE", "axb", "Zed", "bob", "alice", "a_b"}},
		} {
			if got, _ := f.list(t, client.ListUsersParams{Ordering: &tc.o}); !slices.Equal(usernames(got), tc.want) {
				t.Errorf("ordering %s: %v, want %v", tc.o, usernames(got), tc.want)
			}
		}
	})
}

var nextLink = regexp.MustCompile(`^<(/api/v1/account/management/\?[^>]*)>; rel="next"$`)

// TestListUsersPagesFollowFilters walks the pages of filtered, ordered lists by their Link
// headers alone, and requires the same users as one big page, a total that counts the
// filtered users on every page, and a Link that keeps every parameter.
func TestListUsersPagesFollowFilters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		f := newListFixture(t, e)
		for _, p := range []client.ListUsersParams{
			{},
			{Ordering: ptr(client.OrderByLastLoginDesc)},
			{IsActive: ptr(true), Ordering: ptr(client.OrderByEmail)},
			{Search: ptr("example a"), IsSuperuser: ptr(false), Ordering: ptr(client.OrderByUsernameDesc)},
			{Search: ptr("+")},    // sent as a space, the next page would list everyone
			{Search: ptr("@ .%")}, // nobody: % is no wildcard
			{IsStaff: ptr(false), IsActive: ptr(true), Search: ptr("e"), Ordering: ptr(client.OrderByDateJoined)},
		} {
			all, wantTotal := f.list(t, p)
			p.Limit, p.Offset = ptr(2), ptr(int64(0))
			r, err := e.client.ListUsersWithResponse(context.Background(), &p, f.auth)
			mustNoErr(t, err)
			status, header, body := r.StatusCode(), r.HTTPResponse.Header, r.Body
			var walked []client.UserPreview
			for pages := 1; ; pages++ {
				if status != 200 {
					t.Fatalf("%s page %d: %d %s", describe(p), pages, status, body)
				}
				var page []client.UserPreview
				mustNoErr(t, json.Unmarshal(body, &page))
				walked = append(walked, page...)
				if got := header.Get("X-Total-Count"); got != strconv.FormatInt(wantTotal, 10) {
					t.Errorf("%s page %d: X-Total-Count %s, want %d", describe(p), pages, got, wantTotal)
				}
				link := header.Get("Link")
				if link == "" {
					break
				}
				m := nextLink.FindStringSubmatch(link)
				if m == nil {
					t.Fatalf("%s page %d: Link %q", describe(p), pages, link)
				}
				wantLinkParams(t, m[1], p, int64(len(walked)))
				resp, b := e.do(t, http.MethodGet, m[1], "", "", "Authorization", "Bearer "+f.token)
				status, header, body = resp.StatusCode, resp.Header, b
			}
			if !slices.Equal(usernames(walked), usernames(all)) {
				t.Errorf("%s: pages %v, want %v", describe(p), usernames(walked), usernames(all))
			}
		}
	})
}

// wantLinkParams checks that a next link carries p's search, filters and ordering, the same
// limit and the offset of the next page.
func wantLinkParams(t *testing.T, link string, p client.ListUsersParams, offset int64) {
	t.Helper()
	u, err := url.Parse(link)
	mustNoErr(t, err)
	q := u.Query()
	want := url.Values{"limit": {strconv.Itoa(*p.Limit)}, "offset": {strconv.FormatInt(offset, 10)}}
	if p.Search != nil {
		want.Set("search", *p.Search)
	}
	for name, v := range map[string]*bool{"is_active": p.IsActive, "is_staff": p.IsStaff, "is_superuser": p.IsSuperuser} {
		if v != nil {
			want.Set(name, strconv.FormatBool(*v))
		}
	}
	if p.Ordering != nil {
		want.Set("ordering", string(*p.Ordering))
	}
	if q.Encode() != want.Encode() {
		t.Errorf("Link %s: parameters %s, want %s", link, q.Encode(), want.Encode())
	}
}

func TestListUsersBadParameters(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		f := newListFixture(t, e)
		for _, tc := range []struct{ query, field, message string }{
			{"ordering=first_name", "ordering", `"first_name" is not a valid choice.`},
			{"ordering=-", "ordering", `"-" is not a valid choice.`},
			{"ordering=username,email", "ordering", `"username,email" is not a valid choice.`},
			{"ordering=Username", "ordering", `"Username" is not a valid choice.`},
			{"is_active=maybe", "is_active", "Must be a valid boolean."},
			{"is_staff=", "is_staff", ""},
			{"is_superuser=yes", "is_superuser", "Must be a valid boolean."},
			{"search=a%00b", "search", "Null characters are not allowed."},
			{"search=%FF%FE", "search", "Enter valid UTF-8 text."},
			{"search=" + strings.Repeat("x", 255), "search", ""},
			{"search=a+b+c+d+e+f+g+h+i", "search", "Ensure this value has no more than 8 words."},
			{"limit=0", "limit", ""},
		} {
			r, body := e.do(t, http.MethodGet, "/api/v1/account/management/?"+tc.query, "", "", "Authorization", "Bearer "+f.token)
			got := wantError(t, tc.query, r.StatusCode, body, 400, "invalid")
			if got.Fields == nil || len((*got.Fields)[tc.field]) == 0 {
				t.Errorf("%s: fields %v, want %s", tc.query, got.Fields, tc.field)
				continue
			}
			if tc.message != "" && (*got.Fields)[tc.field][0] != tc.message {
				t.Errorf("%s: %q, want %q", tc.query, (*got.Fields)[tc.field][0], tc.message)
			}
		}
		// Every bad parameter at once.
		r, body := e.do(t, http.MethodGet, "/api/v1/account/management/?ordering=x&is_active=x&limit=0&offset=-1", "", "",
			"Authorization", "Bearer "+f.token)
		got := wantError(t, "four bad parameters", r.StatusCode, body, 400, "invalid")
		for _, name := range []string{"ordering", "is_active", "limit", "offset"} {
			if got.Fields == nil || len((*got.Fields)[name]) == 0 {
				t.Errorf("four bad parameters: fields %v, want %s among them", got.Fields, name)
			}
		}
	})
}

// fixtureUsers describe users briefly; Inactive is the one flag whose zero value is not the
// common case.
type fixtureUsers []struct {
	Username, FirstName, LastName, Email string
	IsStaff, IsSuperuser, Inactive       bool
	LastLogin                            *time.Time
}

// withDefaults makes store users of us, with the fields they share.
func (us fixtureUsers) withDefaults(base time.Time) []store.User {
	out := make([]store.User, len(us))
	for i, u := range us {
		out[i] = store.User{
			Username: u.Username, FirstName: u.FirstName, LastName: u.LastName, Email: u.Email,
			PasswordHash: "not-a-hash", IsActive: !u.Inactive, IsStaff: u.IsStaff, IsSuperuser: u.IsSuperuser,
			LastLogin: u.LastLogin,
			// Joined in pairs, so that date_joined orders need their tie-break.
			DateJoined: base.Add(-time.Duration(i/2) * 24 * time.Hour),
		}
	}
	return out
}

// TestListUsersSearchAfterConcurrentEdits: edits of different fields of one user, sent at
// once, each rewrite the user's search key from the row as it is then, so that the search
// finds the user by every new value and by no old one.
func TestListUsersSearchAfterConcurrentEdits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		ctx := context.Background()
		e.mustUser(t, "root", superRole)
		root := bearer(e.mustLogin(t, "root").Access)
		for round := range 5 {
			target := e.mustUser(t, fmt.Sprintf("old%d", round), regular)
			patches := []client.UserPatch{
				{Username: ptr(fmt.Sprintf("newname%d", round))},
				{FirstName: ptr("Newfirst")},
				{LastName: ptr("Newlast")},
				{Email: ptr(fmt.Sprintf("new%d@example.org", round))},
			}
			var wg sync.WaitGroup
			for _, patch := range patches {
				wg.Go(func() {
					r, err := e.client.PartialUpdateUserWithResponse(ctx, target.ID, patch, root)
					if err != nil || r.JSON200 == nil {
						t.Errorf("patch %+v: %v %s", patch, err, r.Body)
					}
				})
			}
			wg.Wait()
			r, err := e.client.ListUsersWithResponse(ctx, &client.ListUsersParams{
				Search: ptr(fmt.Sprintf("NEWNAME%d newfirst NEWLAST new%d@example.org", round, round)),
			}, root)
			mustNoErr(t, err)
			if r.JSON200 == nil || len(*r.JSON200) != 1 || (*r.JSON200)[0].Id != target.ID {
				t.Fatalf("round %d: search by the new values: %d %s", round, r.StatusCode(), r.Body)
			}
			// The old values: the username, its email, and the last name only root still has.
			for old, want := range map[string][]string{
				fmt.Sprintf("old%d", round): nil, fmt.Sprintf("old%d@example.com", round): nil, "Seed": {"root"},
			} {
				r, err := e.client.ListUsersWithResponse(ctx, &client.ListUsersParams{Search: &old}, root)
				mustNoErr(t, err)
				if r.JSON200 == nil || !slices.Equal(usernames(*r.JSON200), want) {
					t.Errorf("round %d: search %q: %s, want %v", round, old, r.Body, want)
				}
			}
		}
	})
}

package store_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

// searchNames lists the usernames a search finds, in ID order.
func searchNames(t *testing.T, st *store.Store, search string) []string {
	t.Helper()
	page, err := st.ListUsers(context.Background(), store.UserQuery{Search: search})
	users, total := page.Users, page.Total
	if err != nil {
		t.Fatalf("ListUsers(search %q): %v", search, err)
	}
	names := make([]string, len(users))
	for i, u := range users {
		names[i] = u.Username
	}
	if total != int64(len(users)) {
		t.Errorf("search %q: total %d for %d users", search, total, len(users))
	}
	return names
}

// TestUserKeysOfOlderRows: migration 00006 fills the search keys of users stored before it,
// folding case outside ASCII too (on SQLite with the store's authapi_lower; on PostgreSQL with
// lower(), as the database's locale folds), and an update of the user rewrites stale keys.
func TestUserKeysOfOlderRows(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st, err := store.Open(storetest.DSN(t, backend))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			if err := st.MigrateTo(ctx, 5); err != nil {
				t.Fatalf("migrate to 5: %v", err)
			}
			for i, name := range []string{"u0", "plain"} {
				err := st.Exec(ctx, `INSERT INTO users (username, username_key, first_name, last_name, email, password_hash,
					is_active, is_staff, is_superuser, date_joined) VALUES (?, ?, ?, ?, ?, 'x', ?, ?, ?, ?)`,
					name, name, map[string]string{"u0": "ÉMILE", "plain": "PLAIN"}[name], "ØRSTED-"+fmt.Sprint(i),
					"ÅSA"+fmt.Sprint(i)+"@EXAMPLE.COM", true, false, false, t0)
				if err != nil {
					t.Fatalf("insert %s: %v", name, err)
				}
			}
			if err := st.Migrate(ctx); err != nil {
				t.Fatalf("migrate: %v", err)
			}
			if got := searchNames(t, st, "PLAIN"); !slices.Equal(got, []string{"plain"}) {
				t.Errorf("search PLAIN: %v", got)
			}
			folds := true
			if backend == "postgres" {
				lowered, err := st.QueryStrings(ctx, "SELECT lower('ÉØÅ')")
				if err != nil {
					t.Fatal(err)
				}
				folds = lowered[0] == "éøå"
			}
			for _, search := range []string{"émile", "ørsted-0", "åsa0@example"} {
				if got := searchNames(t, st, search); folds && !slices.Equal(got, []string{"u0"}) {
					t.Errorf("search %q after migrating: %v, want u0", search, got)
				}
			}

			// Keys left stale (as lower() under a C locale leaves them) are rewritten by the
			// user's next update, whatever it changes.
			if err := st.Exec(ctx, "UPDATE users SET search_key = 'stale', email_key = 'stale' WHERE username = 'u0'"); err != nil {
				t.Fatal(err)
			}
			if got := searchNames(t, st, "stale"); !slices.Equal(got, []string{"u0"}) {
				t.Fatalf("search stale: %v", got)
			}
			u, err := st.UserByUsername(ctx, "U0")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.UpdateUser(ctx, u.ID, func(u *store.User) error { u.IsStaff = true; return nil }, false, t0); err != nil {
				t.Fatal(err)
			}
			if got := searchNames(t, st, "stale"); len(got) != 0 {
				t.Errorf("search stale after update: %v", got)
			}
			if got := searchNames(t, st, "Émile åsa0"); !slices.Equal(got, []string{"u0"}) {
				t.Errorf("search after update: %v", got)
			}
		})
	}
}

// TestUserSearchIndexes: on PostgreSQL with pg_trgm (storetest installs it in public where it
// can), the migration indexes the search key with trigrams, naming the extension's schema.
func TestUserSearchIndexes(t *testing.T) {
	st := storetest.Open(t, "postgres")
	ctx := context.Background()
	installed, err := st.QueryStrings(ctx, "SELECT extname::text FROM pg_extension WHERE extname = 'pg_trgm'")
	if err != nil {
		t.Fatal(err)
	}
	if len(installed) == 0 {
		t.Skip("pg_trgm is not installed in the test database")
	}
	got, err := st.QueryStrings(ctx, `SELECT indexdef::text FROM pg_indexes
		WHERE schemaname = current_schema() AND indexname = 'users_search_key_trgm_idx'`)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !strings.Contains(got[0], "USING gin (search_key public.gin_trgm_ops)") {
		t.Errorf("trigram index %v, want one on search_key with public.gin_trgm_ops", got)
	}
}

// TestListUsersLargeCount: past Options.ExactCountMax matches, PostgreSQL answers the
// planner's estimate, never less than the page proves, while More stays exact; within it, and
// on SQLite always, the count is exact.
func TestListUsersLargeCount(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			st := storetest.OpenWithOptions(t, backend, store.Options{ExactCountMax: 3})
			ctx := context.Background()
			var ids []int64
			add := func(from, to int) {
				for i := from; i < to; i++ {
					ids = append(ids, mustCreateUser(t, st, fmt.Sprintf("u%02d", i), func(u *store.User) { u.IsStaff = i < 2 }).ID)
				}
			}
			add(0, 8)
			pg := backend == "postgres"
			check := func(what string, q store.UserQuery, n int, total int64, estimated, more bool) {
				t.Helper()
				p, err := st.ListUsers(ctx, q)
				if err != nil || len(p.Users) != n || p.Total != total || p.Estimated != estimated || p.More != more {
					t.Errorf("%s: %d users, total %d, estimated %v, more %v, %v; want %d, %d, %v, %v",
						what, len(p.Users), p.Total, p.Estimated, p.More, err, n, total, estimated, more)
				}
			}
			staff, others := true, false
			// PostgreSQL has no estimate before the table is analysed: it counts.
			check("never analysed", store.UserQuery{Limit: 2}, 2, 8, false, true)
			if err := st.AnalyzeUsers(ctx); err != nil {
				t.Fatal(err)
			}
			check("the first page", store.UserQuery{Limit: 2}, 2, 8, pg, true)
			check("the last page counts nothing", store.UserQuery{Limit: 5, Offset: 6}, 2, 8, false, false)
			check("within the bound", store.UserQuery{Limit: 1, IsStaff: &staff}, 1, 2, false, true)
			p, err := st.ListUsers(ctx, store.UserQuery{Limit: 2, IsStaff: &others})
			if err != nil || p.Total < 4 || p.Estimated != pg || !p.More {
				t.Errorf("a filter past the bound: total %d, estimated %v, more %v, %v; want at least 4, %v, more", p.Total, p.Estimated, p.More, err, pg)
			}
			// Users added since the analysis: the estimate (8) is less than the page proves.
			add(8, 14)
			check("past the estimate", store.UserQuery{Limit: 2, Offset: 10}, 2, map[bool]int64{true: 13, false: 14}[pg], pg, true)

			// An estimate over twice the bound is taken without counting, even when it is
			// stale: 11 of 14 users deleted, the 8 of the last analysis stand.
			for _, id := range ids[3:] {
				if err := st.DeleteUser(ctx, id); err != nil {
					t.Fatal(err)
				}
			}
			check("a stale estimate past twice the bound", store.UserQuery{Limit: 2}, 2, map[bool]int64{true: 8, false: 3}[pg], pg, true)
			// Analysed again, the estimate (3) is within twice the bound: counted.
			if err := st.AnalyzeUsers(ctx); err != nil {
				t.Fatal(err)
			}
			check("an estimate within twice the bound", store.UserQuery{Limit: 2}, 2, 3, false, true)
			// Within twice the bound but past the bound: counted, then the estimate after all.
			add(20, 22)
			if err := st.AnalyzeUsers(ctx); err != nil {
				t.Fatal(err)
			}
			check("counted past the bound", store.UserQuery{Limit: 2}, 2, 5, pg, true)
		})
	}
}

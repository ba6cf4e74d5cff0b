package store_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

var listBenchUsers = flag.Int("listusers.n", 1_000_000, "how many users BenchmarkListUsers stores")

// BenchmarkListUsers measures one page of the user list (the count and the page, as the API
// asks for them) over -listusers.n users, first with migration 00006's indexes and then
// without them. The users are stored once per backend, in one transaction of multi-row
// inserts (ImportUsers); the PostgreSQL run needs AUTHAPI_TEST_POSTGRES_DSN. For example:
//
//	go test -run='^$' -bench=ListUsers -benchtime=20x ./store/
func BenchmarkListUsers(b *testing.B) {
	yes, no := ptr(true), ptr(false)
	queries := []struct {
		name string
		q    store.UserQuery
	}{
		{"first page", store.UserQuery{}},
		{"search one user", store.UserQuery{Search: "123457"}},
		{"search last name", store.UserQuery{Search: benchLastName(7, 3)}},
		{"search two words", store.UserQuery{Search: "Anna " + benchLastName(7, 3)}},
		{"search 2 letters", store.UserQuery{Search: "an"}},
		{"search missing", store.UserQuery{Search: "nosuchname"}},
		{"staff", store.UserQuery{IsStaff: yes}},
		{"inactive", store.UserQuery{IsActive: no}},
		{"active", store.UserQuery{IsActive: yes}},
		{"-last_login", store.UserQuery{OrderBy: store.OrderByLastLogin, Descending: true}},
		{"last_login", store.UserQuery{OrderBy: store.OrderByLastLogin}},
		{"username", store.UserQuery{OrderBy: store.OrderByUsername}},
		{"-email", store.UserQuery{OrderBy: store.OrderByEmail, Descending: true}},
		{"-date_joined", store.UserQuery{OrderBy: store.OrderByDateJoined, Descending: true}},
		{"active -last_login", store.UserQuery{IsActive: yes, OrderBy: store.OrderByLastLogin, Descending: true}},
		{"staff -last_login", store.UserQuery{IsStaff: yes, OrderBy: store.OrderByLastLogin, Descending: true}},
		{"search username", store.UserQuery{Search: benchLastName(7, 3), OrderBy: store.OrderByUsername}},
		{"email offset 500000", store.UserQuery{OrderBy: store.OrderByEmail, Offset: 500_000}},
	}
	for _, backend := range storetest.Backends {
		b.Run(backend, func(b *testing.B) {
			ctx := context.Background()
			st := storetest.Open(b, backend)
			start := time.Now()
			bulkLoad(b, st, benchUsers(*listBenchUsers))
			b.Logf("%s: stored %d users in %v", backend, *listBenchUsers, time.Since(start).Round(time.Second))
			for _, indexed := range []bool{true, false} {
				phase := "indexed"
				if !indexed {
					phase = "unindexed"
					dropListIndexes(b, st)
				}
				for _, q := range queries {
					q.q.Limit = 100
					b.Run(phase+"/"+q.name, func(b *testing.B) {
						for b.Loop() {
							page, err := st.ListUsers(ctx, q.q)
							if err != nil || page.Total > 0 && len(page.Users) == 0 && q.q.Offset == 0 {
								b.Fatalf("%d users of %d: %v", len(page.Users), page.Total, err)
							}
						}
					})
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// The names are made of syllables, so that a last name matches a few hundred users and a
// search of a part of one matches more, as in a real directory.
var (
	benchFirstNames = strings.Fields("Anna Ben Chloé Dmitri Élodie Farid Grace Hiro Ines Jürgen Kofi Lena Mateo Nora " +
		"Oskar Priya Quentin Rosa Søren Tariq Uma Viktor Wen Ximena Yusuf Zoë")
	benchSyllables = strings.Fields("bar ber dal den fos gar hal kin lor man mor nak pel rin sal tov urs vik wal zen")
)

func benchLastName(a, b int) string {
	s := benchSyllables[a%len(benchSyllables)] + benchSyllables[b%len(benchSyllables)]
	return strings.ToUpper(s[:1]) + s[1:]
}

// benchUsers makes n users deterministically: about 3% inactive, 0.5% staff (a tenth of them
// superusers), 30% who never logged in, joined over five years.
func benchUsers(n int) []store.User {
	rng := rand.New(rand.NewPCG(1, 2))
	domains := []string{"example.com", "example.org", "mail.example", "corp.example", "uni.example"}
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	users := make([]store.User, n)
	for i := range users {
		first := benchFirstNames[rng.IntN(len(benchFirstNames))]
		last := benchLastName(rng.IntN(len(benchSyllables)), rng.IntN(len(benchSyllables)))
		username := fmt.Sprintf("%s.%s%d", strings.ToLower(first), strings.ToLower(last), i)
		joined := now.Add(-time.Duration(rng.Int64N(int64(5 * 365 * 24 * time.Hour))))
		u := store.User{
			ID: int64(i + 1), Username: username, FirstName: first, LastName: last,
			Email:        username + "@" + domains[rng.IntN(len(domains))],
			PasswordHash: "bench", IsActive: rng.IntN(100) >= 3, IsStaff: rng.IntN(1000) < 5,
			DateJoined: joined,
		}
		u.IsSuperuser = u.IsStaff && rng.IntN(10) == 0
		if rng.IntN(10) >= 3 {
			login := joined.Add(time.Duration(rng.Int64N(int64(now.Sub(joined)))))
			u.LastLogin = &login
		}
		users[i] = u
	}
	return users
}

// bulkLoad stores users the way a bulk load is done: without the users table's indexes,
// which are then built again from their own definitions, and with fresh statistics.
func bulkLoad(b *testing.B, st *store.Store, users []store.User) {
	b.Helper()
	ctx := context.Background()
	names, defs := `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'users' AND sql IS NOT NULL`,
		`SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'users' AND sql IS NOT NULL`
	if st.Dialect() == "postgres" {
		names, defs = `SELECT indexname::text FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'users' AND indexname <> 'users_pkey'`,
			`SELECT indexdef::text FROM pg_indexes WHERE schemaname = current_schema() AND tablename = 'users' AND indexname <> 'users_pkey'`
	}
	indexes, err := st.QueryStrings(ctx, names)
	if err != nil {
		b.Fatal(err)
	}
	create, err := st.QueryStrings(ctx, defs)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range indexes {
		if err := st.Exec(ctx, "DROP INDEX "+name); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.ImportUsers(ctx, users); err != nil {
		b.Fatal(err)
	}
	for _, stmt := range create {
		if err := st.Exec(ctx, stmt); err != nil {
			b.Fatalf("%s: %v", stmt, err)
		}
	}
	analyze(b, st)
}

// analyze does what a database in service would have done after a bulk load: on PostgreSQL
// autovacuum's VACUUM ANALYZE (statistics, and the visibility map that lets a count read an
// index alone); on SQLite nothing, as authapi runs no ANALYZE.
func analyze(b *testing.B, st *store.Store) {
	b.Helper()
	if st.Dialect() != "postgres" {
		return
	}
	if err := st.Exec(context.Background(), "VACUUM ANALYZE users"); err != nil {
		b.Fatal(err)
	}
}

// dropListIndexes drops the indexes migration 00006 made for listing, and the unique index
// on username_key that the username order uses (nothing is inserted afterwards).
func dropListIndexes(b *testing.B, st *store.Store) {
	b.Helper()
	names := []string{
		"users_email_key_idx", "users_date_joined_idx", "users_last_login_idx",
		"users_active_idx", "users_inactive_idx", "users_staff_idx", "users_nonstaff_idx",
		"users_superuser_idx", "users_nonsuperuser_idx", "users_username_key_idx",
	}
	if st.Dialect() == "postgres" {
		names = append(names, "users_search_key_trgm_idx")
	}
	for _, name := range names {
		if err := st.Exec(context.Background(), "DROP INDEX "+name); err != nil {
			b.Fatalf("drop index %s: %v", name, err)
		}
	}
	analyze(b, st)
}

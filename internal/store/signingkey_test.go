package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

func TestSigningKeyLifecycle(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, backend)
			created := time.Date(2025, 6, 1, 12, 0, 0, 123456789, time.UTC)
			keys := []store.SigningKey{
				{ID: "b", Algorithm: "ES256", Private: []byte(`{"kty":"EC"}`), CreatedAt: created},
				{ID: "a", Algorithm: "EdDSA", Private: []byte(`{"kty":"OKP"}`), CreatedAt: created},
				{ID: "c", Algorithm: "RS256", Private: []byte(`{"kty":"RSA"}`), CreatedAt: created.Add(-time.Second)},
			}
			for _, k := range keys {
				if err := st.CreateSigningKey(ctx, k); err != nil {
					t.Fatalf("CreateSigningKey(%s): %v", k.ID, err)
				}
			}

			// Oldest first, ties by ID; microsecond precision in UTC.
			got := mustSigningKeys(t, st)
			if ids := keyIDs(got); ids != "c a b" {
				t.Errorf("SigningKeys order = %s, want c a b", ids)
			}
			if want := created.Truncate(time.Microsecond); !got[1].CreatedAt.Equal(want) || got[1].CreatedAt.Location() != time.UTC {
				t.Errorf("CreatedAt = %v, want %v in UTC", got[1].CreatedAt, want)
			}

			sealed := []byte("enc:v1:c2VhbGVk")
			if err := st.SetSigningKeyPrivate(ctx, "a", sealed); err != nil {
				t.Fatalf("SetSigningKeyPrivate: %v", err)
			}
			got = mustSigningKeys(t, st)
			if !bytes.Equal(got[1].Private, sealed) || got[1].Algorithm != "EdDSA" || !bytes.Equal(got[2].Private, keys[0].Private) {
				t.Errorf("after SetSigningKeyPrivate(a): %+v", got)
			}
			if err := st.SetSigningKeyPrivate(ctx, "nope", sealed); !errors.Is(err, store.ErrSigningKeyNotFound) || !errors.Is(err, store.ErrNotFound) {
				t.Errorf("SetSigningKeyPrivate(missing) = %v, want ErrSigningKeyNotFound", err)
			}

			if err := st.DeleteSigningKey(ctx, "c"); err != nil {
				t.Fatalf("DeleteSigningKey: %v", err)
			}
			if ids := keyIDs(mustSigningKeys(t, st)); ids != "a b" {
				t.Errorf("after DeleteSigningKey(c): %s, want a b", ids)
			}
			if err := st.DeleteSigningKey(ctx, "c"); !errors.Is(err, store.ErrSigningKeyNotFound) {
				t.Errorf("second DeleteSigningKey = %v, want ErrSigningKeyNotFound", err)
			}
		})
	}
}

// SignsFrom is stored when given, at microsecond precision in UTC, and nil when not.
func TestSigningKeySignsFrom(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, backend)
			from := t0.Add(time.Minute)
			for _, k := range []store.SigningKey{
				{ID: "derived", Algorithm: "EdDSA", Private: []byte("{}"), CreatedAt: t0},
				{ID: "set", Algorithm: "EdDSA", Private: []byte("{}"), CreatedAt: t0.Add(time.Second), SignsFrom: &from},
			} {
				if err := st.CreateSigningKey(ctx, k); err != nil {
					t.Fatalf("CreateSigningKey(%s): %v", k.ID, err)
				}
			}
			got := mustSigningKeys(t, st)
			if len(got) != 2 || got[0].SignsFrom != nil {
				t.Fatalf("SigningKeys = %+v, want derived with a nil SignsFrom first", got)
			}
			want := from.UTC().Truncate(time.Microsecond)
			if sf := got[1].SignsFrom; sf == nil || !sf.Equal(want) || sf.Location() != time.UTC {
				t.Errorf("SignsFrom = %v, want %v in UTC", sf, want)
			}
		})
	}
}

// Migrating a database made by the migrations before signs_from keeps its keys, with a nil
// SignsFrom, and lets new keys store one.
func TestSigningKeySignsFromMigration(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsn := storetest.DSN(t, backend)
			driver, dialect := "sqlite3", goose.DialectSQLite3
			if backend == "postgres" {
				driver, dialect = "pgx", goose.DialectPostgres
			}
			db, err := sql.Open(driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			p, err := goose.NewProvider(dialect, db, os.DirFS("migrations/"+backend), goose.WithDisableGlobalRegistry(true))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.UpTo(ctx, 2); err != nil {
				t.Fatalf("migrate to version 2: %v", err)
			}
			if _, err := db.ExecContext(ctx, "INSERT INTO signing_keys (id, algorithm, private, created_at) VALUES ('old', 'EdDSA', $1, $2)",
				[]byte("{}"), t0.UTC().Truncate(time.Microsecond)); err != nil {
				t.Fatalf("insert a key at version 2: %v", err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}

			st, err := store.Open(dsn)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			if err := st.Migrate(ctx); err != nil {
				t.Fatalf("Migrate from version 2: %v", err)
			}
			states, err := st.MigrationStatus(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range states {
				if !s.Applied {
					t.Errorf("migration %+v not applied", s)
				}
			}
			from := t0.Add(time.Minute)
			if err := st.CreateSigningKey(ctx, store.SigningKey{ID: "new", Algorithm: "EdDSA", Private: []byte("{}"), CreatedAt: from, SignsFrom: &from}); err != nil {
				t.Fatalf("CreateSigningKey after migrating: %v", err)
			}
			got := mustSigningKeys(t, st)
			if len(got) != 2 || got[0].ID != "old" || !got[0].CreatedAt.Equal(t0.Truncate(time.Microsecond)) || got[0].SignsFrom != nil ||
				got[1].SignsFrom == nil || !got[1].SignsFrom.Equal(from.Truncate(time.Microsecond)) {
				t.Errorf("SigningKeys = %+v, want old (nil SignsFrom) and new (SignsFrom %v)", got, from)
			}
		})
	}
}

func mustSigningKeys(t *testing.T, st *store.Store) []store.SigningKey {
	t.Helper()
	keys, err := st.SigningKeys(context.Background())
	if err != nil {
		t.Fatalf("SigningKeys: %v", err)
	}
	return keys
}

func keyIDs(keys []store.SigningKey) string {
	var b bytes.Buffer
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k.ID)
	}
	return b.String()
}

package store_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"authapi/store"
	"authapi/store/storetest"
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

package keyring_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/authapi/authapi/internal/keyring"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/token"
)

// TestSETKey: the SET key is created once, on first need, even by instances racing; it is an
// RS256 key that every instance publishes in its JWKS as soon as it exists, reload or not, and
// that no Manager
// holds, so nothing it signs verifies as a token.
func TestSETKey(t *testing.T) {
	eachKeyBackend(t, func(t *testing.T, backend string) {
		st := storetest.Open(t, backend)
		ctx := context.Background()
		opts := keyOpts(nil, token.EdDSA, keySecret)
		rings := []*keyring.Ring{mustKeyRing(t, st, nil, opts), mustKeyRing(t, st, nil, opts), mustKeyRing(t, st, nil, opts)}
		bystander := mustKeyRing(t, st, nil, opts) // signs no SET, reloads not
		if b, _ := bystander.JWKS(ctx); hasRSA(t, b) {
			t.Fatal("SET key published before any need")
		}
		kids := make([]string, len(rings))
		var wg sync.WaitGroup
		for i, r := range rings {
			wg.Go(func() {
				s, err := r.SETSigner(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				kids[i] = s.KeyID()
			})
		}
		wg.Wait()
		if kids[0] == "" || kids[0] != kids[1] || kids[1] != kids[2] {
			t.Fatalf("racing instances sign SETs with %v, want one key", kids)
		}
		// An instance that signs no SET publishes the key the others sign with, without a
		// reload: a receiver may fetch the JWKS from it.
		if b, err := bystander.JWKS(ctx); err != nil || !hasKid(t, b, kids[0]) {
			t.Errorf("an instance that signed no SET lacks the SET key until a reload (err %v)", err)
		}
		late := mustKeyRing(t, st, nil, opts) // started after: loads it, before any reload
		if b, err := late.JWKS(ctx); err != nil || !hasKid(t, b, kids[0]) {
			t.Errorf("a ring started after the SET key exists lacks it until a reload (err %v)", err)
		}
		for _, r := range append(rings, late) {
			mustReload(t, r)
			b, err := r.JWKS(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !hasKid(t, b, kids[0]) {
				t.Errorf("a ring's JWKS lacks the SET key %s", kids[0])
			}
			if r.Manager().HasKey(kids[0]) {
				t.Errorf("the token Manager holds the SET key")
			}
			if _, ok := jwksKeys(t, r.Manager())[kids[0]]; ok {
				t.Errorf("the Manager's own JWKS has the SET key")
			}
		}
		for _, k := range storedSigningKeys(t, st) {
			if k.ID == kids[0] {
				t.Errorf("store.SigningKeys (token keys) returned the SET key")
			}
		}
	})
}

func jwksOf(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	return set.Keys
}

func hasRSA(t *testing.T, b []byte) bool {
	for _, k := range jwksOf(t, b) {
		if k["kty"] == "RSA" {
			return true
		}
	}
	return false
}

func hasKid(t *testing.T, b []byte, kid string) bool {
	for _, k := range jwksOf(t, b) {
		if k["kid"] == kid {
			return k["alg"] == "RS256" && k["use"] == "sig"
		}
	}
	return false
}

package server_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/keyring"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/token"
)

const keysSecret = "an AUTHAPI_SECRET_KEY of 32+ bytes, for tests"

// forEachKeysBackend runs fn on each backend, with the private keys plaintext and encrypted
// at rest.
func forEachKeysBackend(t *testing.T, fn func(t *testing.T, e *testEnv, secret []byte)) {
	t.Helper()
	for _, backend := range storetest.Backends {
		for _, secret := range []string{"", keysSecret} {
			name := backend + map[bool]string{true: "/plaintext", false: "/encrypted"}[secret == ""]
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				e := newTestEnv(t, backend, withKeys(keyring.Options{Secret: []byte(secret)}))
				fn(t, e, []byte(secret))
			})
		}
	}
}

// publishAhead is how long a rotated key is published before it signs, with the default
// reload interval: reload interval, JWKS cache time, clock skew.
const publishAhead = keyring.DefaultReloadInterval + keyring.JWKSCacheTime + time.Minute

func (e *testEnv) listKeys(t *testing.T, auth client.RequestEditorFn) ([]client.SigningKey, []byte) {
	t.Helper()
	r, err := e.client.ListSigningKeysWithResponse(context.Background(), auth)
	if err != nil {
		t.Fatal(err)
	}
	if r.JSON200 == nil {
		t.Fatalf("list keys: %d %s", r.StatusCode(), r.Body)
	}
	return *r.JSON200, r.Body
}

func (e *testEnv) rotate(t *testing.T, auth client.RequestEditorFn, body client.KeyRotateRequest) (client.KeyRotation, []byte) {
	t.Helper()
	r, err := e.client.RotateSigningKeyWithResponse(context.Background(), body, auth)
	if err != nil {
		t.Fatal(err)
	}
	if r.JSON201 == nil {
		t.Fatalf("rotate %+v: %d %s", body, r.StatusCode(), r.Body)
	}
	return *r.JSON201, r.Body
}

func keyStates(keys []client.SigningKey) []client.SigningKeyState {
	out := make([]client.SigningKeyState, len(keys))
	for i, k := range keys {
		out[i] = k.State
	}
	return out
}

// kidOf is the kid in a token's header.
func kidOf(t *testing.T, tok string) string {
	t.Helper()
	kid, _ := decodeSegment(t, tok, 0)["kid"].(string)
	return kid
}

// TestSigningKeysAPI walks a key's life through the API: the first key signs; a rotation adds
// a pending key, published at once and signing after the publish-ahead time; a rotation with
// now signs at once, for the algorithm asked; superseded keys retire, then expire, and the next
// rotation deletes them. Nobody is logged out on the way.
func TestSigningKeysAPI(t *testing.T) {
	forEachKeysBackend(t, func(t *testing.T, e *testEnv, secret []byte) {
		ctx := context.Background()
		e.mustUser(t, "root", superRole)
		e.mustUser(t, "alice", regular)
		root := bearer(e.mustLogin(t, "root").Access)
		encrypted := len(secret) > 0

		keys, _ := e.listKeys(t, root)
		if len(keys) != 1 || keys[0].State != client.KeySigning || keys[0].Alg != client.EdDSA ||
			keys[0].Encrypted != encrypted || !keys[0].SignsFrom.Equal(keys[0].Created) || keys[0].VerifiesUntil != nil {
			t.Fatalf("first key %+v: want EdDSA, signing since its creation, encrypted %v", keys, encrypted)
		}
		first := keys[0].Kid

		e.clock.Add(time.Second)
		rot, _ := e.rotate(t, root, client.KeyRotateRequest{})
		if rot.Key.State != client.KeyPending || rot.Key.Alg != client.EdDSA || rot.Key.Encrypted != encrypted ||
			!rot.Key.SignsFrom.Equal(rot.Key.Created.Add(publishAhead)) || len(rot.Deleted) != 0 || len(rot.Encrypted) != 0 {
			t.Fatalf("rotation %+v: want a pending EdDSA key signing after %v", rot, publishAhead)
		}
		pending := rot.Key.Kid
		jwks, err := e.client.GetJWKSWithResponse(ctx)
		if err != nil || jwks.JSON200 == nil || !slices.ContainsFunc(jwks.JSON200.Keys, func(k client.JWK) bool { return k.Kid == pending }) {
			t.Fatalf("the new key is not published at once: %s", jwks.Body)
		}
		alice := e.mustLogin(t, "alice")
		if kid := kidOf(t, alice.Access); kid != first {
			t.Errorf("signed with %s before the new key's time, want %s", kid, first)
		}

		e.clock.Add(time.Second)
		now, _ := e.rotate(t, root, client.KeyRotateRequest{Now: ptr(true), Alg: ptr(client.RS256)})
		if now.Key.State != client.KeySigning || now.Key.Alg != client.RS256 || !now.Key.SignsFrom.Equal(now.Key.Created) {
			t.Fatalf("rotation now %+v: want an RS256 key signing at once", now.Key)
		}
		if kid := kidOf(t, e.mustLogin(t, "alice").Access); kid != now.Key.Kid {
			t.Errorf("signed with %s right after rotating now, want %s", kid, now.Key.Kid)
		}
		if got := getAccount(t, e, alice.Access); got != http.StatusOK {
			t.Errorf("a token of the first key after the rotations: %d", got)
		}
		keys, _ = e.listKeys(t, root)
		if got := keyStates(keys); !slices.Equal(got, []client.SigningKeyState{client.KeyRetiring, client.KeyRetiring, client.KeySigning}) {
			t.Fatalf("states %v, want retiring, retiring, signing", got)
		}
		for _, k := range keys[:2] {
			if k.VerifiesUntil == nil || !k.VerifiesUntil.After(e.clock.Now()) {
				t.Errorf("retiring key %s verifies until %v", k.Kid, k.VerifiesUntil)
			}
		}

		// A day later the superseded keys have expired; the next rotation deletes them.
		e.clock.Add(24 * time.Hour)
		root = bearer(e.mustLogin(t, "root").Access)
		keys, _ = e.listKeys(t, root)
		if got := keyStates(keys); !slices.Equal(got, []client.SigningKeyState{client.KeyExpired, client.KeyExpired, client.KeySigning}) {
			t.Fatalf("states a day later %v, want expired, expired, signing", got)
		}
		last, _ := e.rotate(t, root, client.KeyRotateRequest{Alg: ptr(client.ES256)})
		if got, want := sorted(last.Deleted), sorted([]string{first, pending}); !slices.Equal(got, want) {
			t.Errorf("deleted %v, want %v", got, want)
		}
		keys, _ = e.listKeys(t, root)
		if len(keys) != 2 || keys[0].Kid != now.Key.Kid || keys[1].Kid != last.Key.Kid || keys[1].Alg != client.ES256 {
			t.Errorf("keys after deleting the expired ones: %+v", keys)
		}
	})
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// TestRotateRefusesBadInput: an unknown algorithm or a malformed body is a 400 that names the
// field, and stores no key.
func TestRotateRefusesBadInput(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "root", superRole)
		auth := "Bearer " + e.mustLogin(t, "root").Access
		for _, tc := range []struct{ body, field string }{
			{`{"alg":"HS256"}`, "alg"},
			{`{"alg":"none"}`, "alg"},
			{`{"alg":""}`, "alg"},
			{`{"alg":"eddsa"}`, "alg"},
			{`{"now":"yes"}`, "now"},
			{`{"now":true,"kid":"mine"}`, "kid"},
		} {
			r, body := e.do(t, http.MethodPost, "/api/v1/keys/rotate/", "application/json", tc.body, "Authorization", auth)
			got := wantError(t, tc.body, r.StatusCode, body, 400, "invalid")
			if got.Fields == nil || len((*got.Fields)[tc.field]) == 0 {
				t.Errorf("%s: fields %v, want a message for %s", tc.body, got.Fields, tc.field)
			}
		}
		if keys, err := e.store.SigningKeys(context.Background()); err != nil || len(keys) != 1 {
			t.Errorf("%d keys after refused rotations (%v), want 1", len(keys), err)
		}
		// No body at all is the default rotation.
		r, body := e.do(t, http.MethodPost, "/api/v1/keys/rotate/", "", "", "Authorization", auth)
		if r.StatusCode != http.StatusCreated {
			t.Errorf("rotate without a body: %d %s", r.StatusCode, body)
		}
	})
}

// privateParts returns every form in which a stored key's private material could leak: the
// stored bytes (sealed or not) raw and base64-encoded, and each private JWK member.
func privateParts(t *testing.T, e *testEnv, secret []byte) [][]byte {
	t.Helper()
	stored, err := e.store.SigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var parts [][]byte
	for _, k := range stored {
		parts = append(parts, k.Private, []byte(base64.StdEncoding.EncodeToString(k.Private)),
			[]byte(base64.RawURLEncoding.EncodeToString(k.Private)))
		open, err := token.OpenKey(secret, token.Key{ID: k.ID, Algorithm: k.Algorithm, Private: k.Private, CreatedAt: k.CreatedAt})
		if err != nil {
			t.Fatal(err)
		}
		var jwk map[string]any
		if err := json.Unmarshal(open.Private, &jwk); err != nil {
			t.Fatal(err)
		}
		found := 0
		for _, member := range []string{"d", "p", "q", "dp", "dq", "qi"} {
			if v, ok := jwk[member].(string); ok {
				parts = append(parts, []byte(v))
				found++
			}
		}
		if found == 0 {
			t.Fatalf("key %s: no private member found in its JWK", k.ID)
		}
	}
	return parts
}

// TestSigningKeysNeverShowPrivateMaterial: neither the list nor a rotation's answer carries
// any part of a private key, encrypted or not, in any encoding, nor any member the schema
// does not name.
func TestSigningKeysNeverShowPrivateMaterial(t *testing.T) {
	forEachKeysBackend(t, func(t *testing.T, e *testEnv, secret []byte) {
		e.mustUser(t, "root", superRole)
		root := bearer(e.mustLogin(t, "root").Access)
		var bodies [][]byte
		for i, req := range []client.KeyRotateRequest{{}, {Alg: ptr(client.ES256)}, {Now: ptr(true), Alg: ptr(client.RS256)}} {
			e.clock.Add(time.Second)
			_, body := e.rotate(t, root, req)
			bodies = append(bodies, body)
			var strict client.KeyRotation
			mustDecodeStrict(t, fmt.Sprint("rotation ", i), body, &strict)
		}
		_, list := e.listKeys(t, root)
		var strict []client.SigningKey
		mustDecodeStrict(t, "list", list, &strict)
		if len(strict) != 4 {
			t.Fatalf("%d keys listed, want 4", len(strict))
		}
		bodies = append(bodies, list)
		for _, part := range privateParts(t, e, secret) {
			for i, body := range bodies {
				if bytes.Contains(body, part) {
					t.Fatalf("response %d contains private key material %.12q…: %s", i, part, body)
				}
			}
		}
	})
}

// mustDecodeStrict decodes body into v, refusing members v does not have.
func mustDecodeStrict(t *testing.T, what string, body []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s: %v; body %s", what, err, body)
	}
}

// TestConcurrentRotations: two superusers rotate at once, twice over, with expired keys to
// delete: every rotation succeeds with a key of its own, each expired key is deleted by exactly
// one of them, and tokens keep verifying.
func TestConcurrentRotations(t *testing.T) {
	forEachKeysBackend(t, func(t *testing.T, e *testEnv, _ []byte) {
		rootIDs := []int64{e.mustUser(t, "root", superRole).ID, e.mustUser(t, "root2", superRole).ID}
		e.clock.Add(time.Second)
		old, _ := e.rotate(t, bearer(e.mustLogin(t, "root").Access), client.KeyRotateRequest{Now: ptr(true)})
		e.clock.Add(24 * time.Hour) // the first key and old have expired, the latter signs
		expired, err := e.store.SigningKeys(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		admins := []client.RequestEditorFn{bearer(e.mustLogin(t, "root").Access), bearer(e.mustLogin(t, "root2").Access)}
		for round, now := range []bool{false, true} {
			e.clock.Add(time.Second)
			var (
				wg    sync.WaitGroup
				start = make(chan struct{})
				rots  [2]*client.RotateSigningKeyResponse
			)
			for i, admin := range admins {
				wg.Go(func() {
					<-start
					r, err := e.client.RotateSigningKeyWithResponse(context.Background(), client.KeyRotateRequest{Now: ptr(now)}, admin)
					if err != nil {
						t.Error(err)
						return
					}
					rots[i] = r
				})
			}
			close(start)
			wg.Wait()
			var deleted []string
			for i, r := range rots {
				if r == nil || r.JSON201 == nil {
					t.Fatalf("round %d: rotation %d: %+v", round, i, r)
				}
				deleted = append(deleted, r.JSON201.Deleted...)
			}
			if rots[0].JSON201.Key.Kid == rots[1].JSON201.Key.Kid {
				t.Fatalf("round %d: both rotations answered key %s", round, rots[0].JSON201.Key.Kid)
			}
			// Each rotation is logged with its key, by its superuser.
			actors := map[string]int64{}
			for _, ev := range e.auditEvents(t, audit.KeyRotated) {
				actors[ev.KeyID] = ev.ActorID
			}
			if len(actors) != 1+2*(round+1) {
				t.Errorf("round %d: key.rotated events for %d keys, want %d", round, len(actors), 1+2*(round+1))
			}
			for i, r := range rots {
				if actors[r.JSON201.Key.Kid] != rootIDs[i] {
					t.Errorf("round %d: key %s rotated by user %d, want %d", round, r.JSON201.Key.Kid, actors[r.JSON201.Key.Kid], rootIDs[i])
				}
			}
			if round == 0 {
				var want []string
				for _, k := range expired {
					if k.ID != old.Key.Kid {
						want = append(want, k.ID)
					}
				}
				if got := sorted(deleted); !slices.Equal(got, sorted(want)) {
					t.Fatalf("deleted %v between them, want each of %v once", got, want)
				}
			}
			keys, _ := e.listKeys(t, admins[0])
			for i, r := range rots {
				if !slices.ContainsFunc(keys, func(k client.SigningKey) bool { return k.Kid == r.JSON201.Key.Kid }) {
					t.Fatalf("round %d: rotation %d's key %s is not listed", round, i, r.JSON201.Key.Kid)
				}
			}
			if got := getAccount(t, e, e.mustLogin(t, "root").Access); got != http.StatusOK {
				t.Fatalf("round %d: a new token after the rotations: %d", round, got)
			}
		}
	})
}

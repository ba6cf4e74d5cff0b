package keyring_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/keyring"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/testclock"
	"github.com/authapi/authapi/internal/token"
)

const (
	keySecret = "an AUTHAPI_SECRET_KEY of 32+ bytes, for tests"
	retention = time.Hour
	reload    = time.Minute
)

// publishAhead is how long a rotated key is published before it signs: reload interval,
// JWKS cache time, clock skew. retained is how long a superseded key verifies.
const (
	publishAhead = reload + 5*time.Minute + time.Minute
	retained     = retention + time.Minute
)

func keyOpts(clk *testclock.Clock, alg, secret string) keyring.Options {
	o := keyring.Options{Algorithm: alg, Retention: retention, ReloadInterval: reload}
	if clk != nil {
		o.Now = clk.Now
	}
	if secret != "" {
		o.Secret = []byte(secret)
	}
	return o
}

func mustKeyRing(t *testing.T, st *store.Store, clk *testclock.Clock, opts keyring.Options) *keyring.Ring {
	t.Helper()
	cfg := token.Config{Issuer: "authapi"}
	if clk != nil {
		cfg.Now = clk.Now
	}
	ring, err := keyring.New(context.Background(), st, cfg, opts)
	if err != nil {
		t.Fatalf("keyring.New: %v", err)
	}
	return ring
}

func mustRotate(t *testing.T, st *store.Store, opts keyring.Options) keyring.Rotation {
	t.Helper()
	rot, err := keyring.Rotate(context.Background(), st, opts)
	if err != nil {
		t.Fatalf("keyring.Rotate: %v", err)
	}
	return rot
}

func mustReload(t *testing.T, ring *keyring.Ring) {
	t.Helper()
	if err := ring.Reload(context.Background()); err != nil {
		t.Fatalf("Reload: %v", err)
	}
}

// jwksKeys returns the kid -> alg of the Manager's JWKS.
func jwksKeys(t *testing.T, m *token.Manager) map[string]string {
	t.Helper()
	b, err := m.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Keys []struct{ Kid, Alg string } `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range doc.Keys {
		out[k.Kid] = k.Alg
	}
	return out
}

// signRefresh issues a refresh token at now and returns it with its kid.
func signRefresh(t *testing.T, m *token.Manager, now time.Time) (tok, kid string) {
	t.Helper()
	tok, err := m.Sign(token.Claims{Type: token.Refresh, UserID: 1, SessionID: "s", IssuedAt: now, ExpiresAt: now.Add(retention)})
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	var h struct{ Kid string }
	seg, _, _ := strings.Cut(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return tok, h.Kid
}

func storedSigningKeys(t *testing.T, st *store.Store) []store.SigningKey {
	t.Helper()
	keys, err := st.SigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func eachKeyBackend(t *testing.T, f func(t *testing.T, backend string)) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			f(t, backend)
		})
	}
}

func TestKeyRingRotation(t *testing.T) {
	eachKeyBackend(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		st := storetest.Open(t, backend)
		start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
		clk := testclock.New(start)
		ring := mustKeyRing(t, st, clk, keyOpts(clk, "", ""))
		m := ring.Manager()
		oldTok, oldKid := signRefresh(t, m, clk.Now())
		if got := jwksKeys(t, m); len(got) != 1 || got[oldKid] != token.EdDSA {
			t.Fatalf("first JWKS = %v, want only %s (EdDSA, the default)", got, oldKid)
		}

		// Rotation: the new key is published at once...
		clk.Set(start.Add(10 * time.Minute))
		rot := mustRotate(t, st, keyOpts(clk, token.ES256, ""))
		if want := rot.New.CreatedAt.Add(publishAhead); rot.New.State != keyring.KeyPending || !rot.New.SignsFrom.Equal(want) {
			t.Errorf("new key %+v, want pending, signing from %v", rot.New, want)
		}
		mustReload(t, ring)
		if got := jwksKeys(t, m); len(got) != 2 || got[oldKid] != token.EdDSA || got[rot.New.ID] != token.ES256 {
			t.Errorf("JWKS after rotation = %v, want %s EdDSA and %s ES256", got, oldKid, rot.New.ID)
		}
		// ...and signs once every instance and JWKS cache has it; the old key still verifies.
		clk.Set(rot.New.SignsFrom.Add(-time.Second))
		lastOld, kid := signRefresh(t, m, clk.Now())
		if kid != oldKid {
			t.Errorf("signing kid before SignsFrom = %s, want the old %s", kid, oldKid)
		}
		clk.Set(rot.New.SignsFrom)
		if _, kid := signRefresh(t, m, clk.Now()); kid != rot.New.ID {
			t.Errorf("signing kid at SignsFrom = %s, want %s", kid, rot.New.ID)
		}
		for _, tok := range []string{oldTok, lastOld} {
			if _, err := m.Parse(tok, token.Refresh); err != nil {
				t.Errorf("token of the old key after rotation: %v", err)
			}
		}

		// The old key verifies until every token it signed has expired...
		clk.Set(lastOldExpiry(rot).Add(-time.Second))
		mustReload(t, ring)
		if _, err := m.Parse(lastOld, token.Refresh); err != nil {
			t.Errorf("last token of the old key, just before it expires: %v", err)
		}
		until := rot.New.SignsFrom.Add(retained)
		clk.Set(until.Add(-time.Second))
		mustReload(t, ring)
		if _, ok := jwksKeys(t, m)[oldKid]; !ok {
			t.Errorf("old key left the JWKS before %v", until)
		}
		infos, err := keyring.List(ctx, st, keyOpts(clk, "", ""))
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) != 2 || infos[0].State != keyring.KeyVerifying || !infos[0].VerifiesUntil.Equal(until) || infos[1].State != keyring.KeySigning {
			t.Errorf("List = %+v, want old verifying until %v, new signing", infos, until)
		}

		// ...then drops out, and the next rotation deletes it.
		clk.Set(until)
		mustReload(t, ring)
		if got := jwksKeys(t, m); len(got) != 1 || got[rot.New.ID] == "" {
			t.Errorf("JWKS after retention = %v, want only %s", got, rot.New.ID)
		}
		if _, err := m.Parse(oldTok, token.Refresh); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("token of an expired key: %v, want ErrInvalid", err)
		}
		if infos, _ := keyring.List(ctx, st, keyOpts(clk, "", "")); infos[0].State != keyring.KeyExpired {
			t.Errorf("List after retention: %+v, want the old key expired", infos)
		}
		third := mustRotate(t, st, keyOpts(clk, token.RS256, ""))
		if !slices.Equal(third.Deleted, []string{oldKid}) {
			t.Errorf("Rotation.Deleted = %v, want [%s]", third.Deleted, oldKid)
		}
		if keys := storedSigningKeys(t, st); len(keys) != 2 {
			t.Errorf("%d keys stored after pruning, want 2", len(keys))
		}
	})
}

// lastOldExpiry is when the last token of the key rot superseded expires: signed a second
// before the new key took over, it lives for the retention.
func lastOldExpiry(rot keyring.Rotation) time.Time {
	return rot.New.SignsFrom.Add(-time.Second).Add(retention)
}

func mustRotateNow(t *testing.T, st *store.Store, opts keyring.Options) keyring.Rotation {
	t.Helper()
	rot, err := keyring.RotateNow(context.Background(), st, opts)
	if err != nil {
		t.Fatalf("keyring.RotateNow: %v", err)
	}
	return rot
}

func mustList(t *testing.T, st *store.Store, opts keyring.Options) []keyring.Info {
	t.Helper()
	infos, err := keyring.List(context.Background(), st, opts)
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	return infos
}

// An immediate rotation signs from each instance's next reload. An instance that has not
// reloaded yet signs with the old key for up to a reload interval, so the old key verifies
// until that interval plus the retention: nobody is logged out.
func TestKeyRingRotateNow(t *testing.T) {
	eachKeyBackend(t, func(t *testing.T, backend string) {
		st := storetest.Open(t, backend)
		start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
		clk := testclock.New(start)
		// A reload interval longer than the clock skew allowance, so that the old key's
		// retention must count it.
		opts := keyOpts(clk, "", "")
		opts.ReloadInterval = 3 * time.Minute
		ring, lagging := mustKeyRing(t, st, clk, opts), mustKeyRing(t, st, clk, opts)
		m := ring.Manager()
		oldTok, oldKid := signRefresh(t, m, clk.Now())

		clk.Set(start.Add(10 * time.Minute))
		newOpts := opts
		newOpts.Algorithm = token.ES256
		rot := mustRotateNow(t, st, newOpts)
		if rot.New.State != keyring.KeySigning || !rot.New.SignsFrom.Equal(rot.New.CreatedAt) {
			t.Errorf("new key %+v, want signing from its creation", rot.New)
		}
		if keys := storedSigningKeys(t, st); len(keys) != 2 || keys[1].SignsFrom == nil || !keys[1].SignsFrom.Equal(rot.New.CreatedAt) {
			t.Errorf("stored keys %+v, want the new one signing from its creation", keys)
		}
		if _, kid := signRefresh(t, m, clk.Now()); kid != oldKid {
			t.Errorf("signing kid before reloading = %s, want the old %s", kid, oldKid)
		}
		mustReload(t, ring)
		if _, kid := signRefresh(t, m, clk.Now()); kid != rot.New.ID {
			t.Errorf("signing kid after reloading = %s, want the new %s at once", kid, rot.New.ID)
		}
		if got := jwksKeys(t, m); len(got) != 2 || got[oldKid] != token.EdDSA || got[rot.New.ID] != token.ES256 {
			t.Errorf("JWKS = %v, want %s EdDSA and %s ES256", got, oldKid, rot.New.ID)
		}
		// The lagging instance signs with the old key until its reload, a reload interval on.
		lastSigned := rot.New.CreatedAt.Add(opts.ReloadInterval - time.Second)
		clk.Set(lastSigned)
		lastOld, kid := signRefresh(t, lagging.Manager(), clk.Now())
		if kid != oldKid {
			t.Errorf("lagging instance signs with %s, want the old %s", kid, oldKid)
		}
		mustReload(t, lagging)
		if _, kid := signRefresh(t, lagging.Manager(), clk.Now()); kid != rot.New.ID {
			t.Errorf("lagging instance after reloading signs with %s, want %s", kid, rot.New.ID)
		}
		for _, tok := range []string{oldTok, lastOld} {
			if _, err := m.Parse(tok, token.Refresh); err != nil {
				t.Errorf("token of the old key after rotation: %v", err)
			}
		}

		until := rot.New.CreatedAt.Add(opts.ReloadInterval + retained)
		infos := mustList(t, st, opts)
		if len(infos) != 2 || infos[0].State != keyring.KeyVerifying || !infos[0].VerifiesUntil.Equal(until) || infos[1].State != keyring.KeySigning {
			t.Errorf("List = %+v, want old verifying until %v, new signing", infos, until)
		}
		clk.Set(lastSigned.Add(retention - time.Second))
		mustReload(t, ring)
		if _, err := m.Parse(lastOld, token.Refresh); err != nil {
			t.Errorf("last token of the old key, just before it expires: %v", err)
		}
		clk.Set(until.Add(-time.Second))
		mustReload(t, ring)
		if _, ok := jwksKeys(t, m)[oldKid]; !ok {
			t.Errorf("old key left the JWKS before %v", until)
		}
		clk.Set(until)
		mustReload(t, ring)
		if got := jwksKeys(t, m); len(got) != 1 || got[rot.New.ID] == "" {
			t.Errorf("JWKS after retention = %v, want only %s", got, rot.New.ID)
		}
		if _, err := m.Parse(oldTok, token.Refresh); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("token of an expired key: %v, want ErrInvalid", err)
		}
		if third := mustRotate(t, st, opts); !slices.Equal(third.Deleted, []string{oldKid}) {
			t.Errorf("Rotation.Deleted = %v, want [%s]", third.Deleted, oldKid)
		}
	})
}

// An immediate rotation while another key is pending: the newer key signs at once, and the
// pending one, older, never signs on an instance that has both. An instance that loaded the
// pending key but not yet the immediate one may sign with it once its time comes, so it
// stays published and verifying, like the key it was to supersede, until the immediate key
// has taken over everywhere and the retention has passed.
func TestKeyRingRotateNowWhilePending(t *testing.T) {
	eachKeyBackend(t, func(t *testing.T, backend string) {
		st := storetest.Open(t, backend)
		start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
		clk := testclock.New(start)
		opts := keyOpts(clk, "", "")
		ring, lagging := mustKeyRing(t, st, clk, opts), mustKeyRing(t, st, clk, opts)
		m := ring.Manager()
		oldTok, oldKid := signRefresh(t, m, clk.Now())

		clk.Set(start.Add(10 * time.Minute))
		pending := mustRotate(t, st, opts).New
		mustReload(t, ring)
		mustReload(t, lagging)
		// Less than a reload interval before the pending key's time.
		clk.Set(pending.SignsFrom.Add(-reload / 2))
		now := mustRotateNow(t, st, opts).New
		mustReload(t, ring)
		if _, kid := signRefresh(t, m, clk.Now()); kid != now.ID {
			t.Errorf("signing kid after the immediate rotation = %s, want %s", kid, now.ID)
		}
		clk.Set(pending.SignsFrom)
		if _, kid := signRefresh(t, m, clk.Now()); kid != now.ID {
			t.Errorf("signing kid at the pending key's SignsFrom = %s, want still %s", kid, now.ID)
		}
		// The lagging instance, due to reload a reload interval after the immediate key was
		// made, signs with the pending key until then; no instance signs with the old key
		// after the pending key's time.
		pendingSigned := now.CreatedAt.Add(reload - time.Second)
		clk.Set(pendingSigned)
		pendingTok, kid := signRefresh(t, lagging.Manager(), clk.Now())
		if kid != pending.ID {
			t.Errorf("lagging instance signs with %s, want the pending %s", kid, pending.ID)
		}
		if got := jwksKeys(t, m); len(got) != 3 {
			t.Errorf("JWKS = %v, want the old, the pending and the immediate key", got)
		}
		for name, tok := range map[string]string{"old": oldTok, "pending": pendingTok} {
			if _, err := m.Parse(tok, token.Refresh); err != nil {
				t.Errorf("token of the %s key: %v", name, err)
			}
		}

		oldUntil, pendingUntil := pending.SignsFrom.Add(retained), now.CreatedAt.Add(reload+retained)
		want := []keyring.Info{
			{ID: oldKid, State: keyring.KeyVerifying, VerifiesUntil: oldUntil},
			{ID: pending.ID, State: keyring.KeyVerifying, VerifiesUntil: pendingUntil},
			{ID: now.ID, State: keyring.KeySigning},
		}
		infos := mustList(t, st, opts)
		if len(infos) != len(want) {
			t.Fatalf("List = %+v, want %d keys", infos, len(want))
		}
		for i, w := range want {
			if got := infos[i]; got.ID != w.ID || got.State != w.State || !got.VerifiesUntil.Equal(w.VerifiesUntil) {
				t.Errorf("List[%d] = %+v, want %s %s until %v", i, got, w.ID, w.State, w.VerifiesUntil)
			}
		}

		clk.Set(pendingSigned.Add(retention - time.Second))
		mustReload(t, ring)
		if _, err := m.Parse(pendingTok, token.Refresh); err != nil {
			t.Errorf("last token of the pending key, just before it expires: %v", err)
		}
		clk.Set(oldUntil)
		mustReload(t, ring)
		if got := jwksKeys(t, m); len(got) != 2 || got[oldKid] != "" {
			t.Errorf("JWKS at %v = %v, want the old key gone", oldUntil, got)
		}
		clk.Set(pendingUntil)
		mustReload(t, ring)
		if got := jwksKeys(t, m); len(got) != 1 || got[now.ID] == "" {
			t.Errorf("JWKS at %v = %v, want only %s", pendingUntil, got, now.ID)
		}
		deleted := mustRotate(t, st, opts).Deleted
		if want := []string{oldKid, pending.ID}; !slices.Equal(deleted, want) {
			t.Errorf("Rotation.Deleted = %v, want %v (oldest first)", deleted, want)
		}
	})
}

// RotateNow on an empty store creates the first key, signing at once as any first key.
func TestRotateKeyNowFirst(t *testing.T) {
	st := storetest.Open(t, "sqlite")
	rot := mustRotateNow(t, st, keyOpts(nil, "", ""))
	if rot.New.State != keyring.KeySigning {
		t.Errorf("first key %+v, want signing", rot.New)
	}
	tok, kid := signRefresh(t, mustKeyRing(t, st, nil, keyOpts(nil, "", "")).Manager(), time.Now())
	if kid != rot.New.ID {
		t.Errorf("signing kid = %s, want %s", kid, rot.New.ID)
	}
	if _, err := mustKeyRing(t, st, nil, keyOpts(nil, "", "")).Manager().Parse(tok, token.Refresh); err != nil {
		t.Errorf("Parse: %v", err)
	}
}

// Another process rotates (a second store handle on the same database). Two running
// instances pick the key up within one reload interval, before it signs, so each accepts
// the other's tokens of it.
func TestKeyRingRunFollowsOtherProcess(t *testing.T) {
	eachKeyBackend(t, func(t *testing.T, backend string) {
		dsn := storetest.DSN(t, backend)
		clk := testclock.New(time.Now())
		opts := keyOpts(clk, "", "")
		opts.ReloadInterval = 10 * time.Millisecond
		a, b := mustKeyRing(t, openKeyStore(t, dsn), clk, opts), mustKeyRing(t, openKeyStore(t, dsn), clk, opts)
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { a.Run(ctx) })
		wg.Go(func() { b.Run(ctx) })
		defer wg.Wait()
		defer cancel()

		clk.Set(clk.Now().Add(time.Second)) // after the first key
		rot := mustRotate(t, openKeyStore(t, dsn), opts)
		deadline := time.Now().Add(30 * time.Second) // a hang, not a loaded machine
		for jwksKeys(t, a.Manager())[rot.New.ID] == "" || jwksKeys(t, b.Manager())[rot.New.ID] == "" {
			if time.Now().After(deadline) {
				t.Fatalf("key %s not published within 30s at a 10ms reload interval", rot.New.ID)
			}
			time.Sleep(5 * time.Millisecond)
		}
		clk.Set(rot.New.SignsFrom)
		for name, pair := range map[string][2]*keyring.Ring{"a to b": {a, b}, "b to a": {b, a}} {
			tok, kid := signRefresh(t, pair[0].Manager(), clk.Now())
			if kid != rot.New.ID {
				t.Errorf("%s: signing kid = %s, want %s", name, kid, rot.New.ID)
			}
			if _, err := pair[1].Manager().Parse(tok, token.Refresh); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
}

func TestKeyRingAlgorithms(t *testing.T) {
	for _, alg := range []string{token.EdDSA, token.ES256, token.RS256} {
		t.Run(alg, func(t *testing.T) {
			t.Parallel()
			st := storetest.Open(t, "sqlite")
			m := mustKeyRing(t, st, nil, keyOpts(nil, alg, "")).Manager()
			tok, kid := signRefresh(t, m, time.Now())
			if got := jwksKeys(t, m); got[kid] != alg {
				t.Errorf("JWKS = %v, want %s with alg %s", got, kid, alg)
			}
			if _, err := m.Parse(tok, token.Refresh); err != nil {
				t.Errorf("Parse: %v", err)
			}
			if keys := storedSigningKeys(t, st); len(keys) != 1 || keys[0].Algorithm != alg {
				t.Errorf("stored %+v, want one %s key", keys, alg)
			}
		})
	}
}

func TestKeyEncryption(t *testing.T) {
	eachKeyBackend(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		st := storetest.Open(t, backend)
		ring := mustKeyRing(t, st, nil, keyOpts(nil, "", keySecret))
		tok, _ := signRefresh(t, ring.Manager(), time.Now())
		for _, k := range storedSigningKeys(t, st) {
			if !bytes.HasPrefix(k.Private, []byte("enc:v1:")) || bytes.Contains(k.Private, []byte(`"d"`)) {
				t.Errorf("stored private key is not encrypted: %.40q", k.Private)
			}
		}
		if infos, _ := keyring.List(ctx, st, keyOpts(nil, "", "")); !infos[0].Encrypted {
			t.Errorf("List = %+v, want Encrypted", infos)
		}

		// Another instance with the same secret verifies; without it or with another, it fails clearly.
		if _, err := mustKeyRing(t, st, nil, keyOpts(nil, "", keySecret)).Manager().Parse(tok, token.Refresh); err != nil {
			t.Errorf("same secret: %v", err)
		}
		for _, tc := range []struct {
			secret string
			want   error
		}{{"", token.ErrSecretRequired}, {keySecret + "!", token.ErrWrongSecret}} {
			if _, err := keyring.New(ctx, st, token.Config{Issuer: "authapi"}, keyOpts(nil, "", tc.secret)); !errors.Is(err, tc.want) {
				t.Errorf("NewKeyRing with secret %q = %v, want %v", tc.secret, err, tc.want)
			}
			if _, err := keyring.Rotate(ctx, st, keyOpts(nil, "", tc.secret)); !errors.Is(err, tc.want) {
				t.Errorf("RotateKey with secret %q = %v, want %v", tc.secret, err, tc.want)
			}
		}
		if n := len(storedSigningKeys(t, st)); n != 1 {
			t.Errorf("%d keys after refused rotations, want 1", n)
		}
	})
}

// A secret set after keys were stored in plaintext: they stay readable, and a rotation
// encrypts them along with the new key.
func TestKeyEncryptionAdopted(t *testing.T) {
	st := storetest.Open(t, "sqlite")
	plainTok, _ := signRefresh(t, mustKeyRing(t, st, nil, keyOpts(nil, "", "")).Manager(), time.Now())
	ring := mustKeyRing(t, st, nil, keyOpts(nil, "", keySecret))
	if _, err := ring.Manager().Parse(plainTok, token.Refresh); err != nil {
		t.Fatalf("plaintext key with a secret set: %v", err)
	}
	old := storedSigningKeys(t, st)[0].ID
	rot := mustRotate(t, st, keyOpts(nil, "", keySecret))
	if !slices.Equal(rot.Encrypted, []string{old}) || !rot.New.Encrypted {
		t.Errorf("Rotation = %+v, want the old key %s encrypted and the new one encrypted", rot, old)
	}
	for _, k := range storedSigningKeys(t, st) {
		if !bytes.HasPrefix(k.Private, []byte("enc:v1:")) {
			t.Errorf("key %s still plaintext", k.ID)
		}
	}
	mustReload(t, ring)
	if _, err := ring.Manager().Parse(plainTok, token.Refresh); err != nil {
		t.Errorf("token of the re-encrypted key: %v", err)
	}
}

func TestKeyOptionsRejected(t *testing.T) {
	st := storetest.Open(t, "sqlite")
	for name, opts := range map[string]keyring.Options{
		"no retention":    {},
		"bad algorithm":   {Retention: time.Hour, Algorithm: "HS256"},
		"short secret":    {Retention: time.Hour, Secret: []byte("short")},
		"negative reload": {Retention: time.Hour, ReloadInterval: -time.Second},
	} {
		if _, err := keyring.New(context.Background(), st, token.Config{Issuer: "authapi"}, opts); err == nil {
			t.Errorf("%s: NewKeyRing accepted %+v", name, opts)
		}
		if _, err := keyring.Rotate(context.Background(), st, opts); err == nil {
			t.Errorf("%s: RotateKey accepted %+v", name, opts)
		}
	}
	if n := len(storedSigningKeys(t, st)); n != 0 {
		t.Errorf("rejected options stored %d keys", n)
	}
}

func openKeyStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestRingRotate: a rotation through the ring is published by its own Manager at once, and a
// rotation with now signs at once; the algorithm defaults to the ring's, and an unknown one
// stores nothing.
func TestRingRotate(t *testing.T) {
	eachKeyBackend(t, func(t *testing.T, backend string) {
		ctx := context.Background()
		st := storetest.Open(t, backend)
		clk := testclock.New(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
		ring := mustKeyRing(t, st, clk, keyOpts(clk, token.ES256, ""))
		first := storedSigningKeys(t, st)[0].ID
		clk.Add(time.Second) // keys created at one instant would be ordered by kid

		rot, err := ring.Rotate(ctx, "", false)
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		if rot.New.Algorithm != token.ES256 || rot.New.State != keyring.KeyPending {
			t.Errorf("new key %+v, want a pending ES256 key (the ring's algorithm)", rot.New)
		}
		if _, ok := jwksKeys(t, ring.Manager())[rot.New.ID]; !ok {
			t.Errorf("the ring does not publish %s right after rotating", rot.New.ID)
		}
		if _, kid := signRefresh(t, ring.Manager(), clk.Now()); kid != first {
			t.Errorf("signed with %s, want the first key %s until the new one's time", kid, first)
		}

		clk.Add(time.Second)
		now, err := ring.Rotate(ctx, token.RS256, true)
		if err != nil {
			t.Fatalf("Rotate now: %v", err)
		}
		if now.New.Algorithm != token.RS256 || now.New.State != keyring.KeySigning {
			t.Errorf("new key %+v, want a signing RS256 key", now.New)
		}
		if _, kid := signRefresh(t, ring.Manager(), clk.Now()); kid != now.New.ID {
			t.Errorf("signed with %s, want %s at once", kid, now.New.ID)
		}

		if _, err := ring.Rotate(ctx, "HS256", false); err == nil {
			t.Error("Rotate(HS256) succeeded")
		}
		infos, err := ring.List(ctx)
		if err != nil || len(infos) != 3 {
			t.Fatalf("List = %d keys, %v; want 3", len(infos), err)
		}
	})
}

// After "keys rotate --now", an instance that has not reloaded yet loads the new key at its
// first token instead of refusing it as signed by an unknown kid; tokens naming unknown kids
// make it reload at most once per DemandReloadGap.
func TestKeyRingLoadsUnknownKid(t *testing.T) {
	eachKeyBackend(t, func(t *testing.T, backend string) {
		st := storetest.Open(t, backend)
		start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
		clk := testclock.New(start)
		opts := keyOpts(clk, "", "")
		ahead, lagging := mustKeyRing(t, st, clk, opts), mustKeyRing(t, st, clk, opts)

		clk.Set(start.Add(10 * time.Minute))
		rot := mustRotateNow(t, st, opts)
		mustReload(t, ahead)
		tok, kid := signRefresh(t, ahead.Manager(), clk.Now())
		if kid != rot.New.ID {
			t.Fatalf("the reloaded instance signs with %s, want %s", kid, rot.New.ID)
		}
		if _, err := lagging.Manager().Parse(tok, token.Refresh); err != nil {
			t.Errorf("the lagging instance refuses a token of the new key: %v", err)
		}
		if _, kid := signRefresh(t, lagging.Manager(), clk.Now()); kid != rot.New.ID {
			t.Errorf("after loading it, the lagging instance signs with %s, want %s", kid, rot.New.ID)
		}

		// Within the gap, an unknown kid is refused without a reload.
		clk.Set(clk.Now().Add(keyring.DemandReloadGap / 2))
		third := mustRotateNow(t, st, opts)
		mustReload(t, ahead)
		tok, kid = signRefresh(t, ahead.Manager(), clk.Now())
		if kid != third.New.ID {
			t.Fatalf("the reloaded instance signs with %s, want %s", kid, third.New.ID)
		}
		if _, err := lagging.Manager().Parse(tok, token.Refresh); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("a second unknown kid within %v: %v, want ErrInvalid (no reload)", keyring.DemandReloadGap, err)
		}
		clk.Set(clk.Now().Add(keyring.DemandReloadGap))
		if _, err := lagging.Manager().Parse(tok, token.Refresh); err != nil {
			t.Errorf("the key %s %v later: %v", third.New.ID, keyring.DemandReloadGap, err)
		}
	})
}

// Status tells how many keys are loaded and when the next one signs: nothing pending at
// first, the rotated key's SignsFrom after a reload, and nothing again once it signs. A pending
// key overtaken by a RotateNow key never signs, so it is not "next".
func TestKeyRingStatus(t *testing.T) {
	eachKeyBackend(t, func(t *testing.T, backend string) {
		st := storetest.Open(t, backend)
		start := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
		clk := testclock.New(start)
		opts := keyOpts(clk, "", "")
		ring := mustKeyRing(t, st, clk, opts)
		want := func(what string, loaded int, next time.Time) {
			t.Helper()
			s := ring.Status()
			if s.Loaded != loaded || !s.NextSignsFrom.Equal(next) || !s.Now.Equal(clk.Now()) {
				t.Errorf("%s: Status = %+v, want %d loaded, next signs from %v, now %v", what, s, loaded, next, clk.Now())
			}
		}
		want("first key", 1, time.Time{})
		if got := ring.Status().LastReload; !got.Equal(start) {
			t.Errorf("LastReload = %v, want the load at %v", got, start)
		}

		pending := mustRotate(t, st, opts).New
		want("before the reload", 1, time.Time{})
		clk.Add(time.Second)
		mustReload(t, ring)
		want("rotated", 2, pending.SignsFrom)
		if got := ring.Status().LastReload; !got.Equal(clk.Now()) {
			t.Errorf("LastReload = %v, want the reload at %v", got, clk.Now())
		}
		clk.Set(pending.SignsFrom)
		want("the rotated key signs", 2, time.Time{})

		second := mustRotate(t, st, opts).New
		mustReload(t, ring)
		want("rotated again", 3, second.SignsFrom)
		clk.Add(time.Second) // keys are ordered by creation time
		mustRotateNow(t, st, opts)
		mustReload(t, ring)
		want("overtaken by rotate --now", 4, time.Time{})
	})
}

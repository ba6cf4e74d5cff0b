package token

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func refreshClaims() Claims {
	return Claims{Type: Refresh, UserID: 42, SessionID: "s1", ID: "r1", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
}

// TestParseEitherRemembersRefreshTokens: a refresh token's signature is checked once, an
// access token's and a refused token's are not remembered, and a remembered token still
// has its claims checked and its key looked up on every use.
func TestParseEitherRemembersRefreshTokens(t *testing.T) {
	clock := now
	old, next := mustKey(t, EdDSA, now.Add(-time.Hour)), mustKey(t, ES256, now)
	m, err := NewManager(Config{Issuer: issuer, Now: func() time.Time { return clock }}, []Key{old})
	if err != nil {
		t.Fatal(err)
	}
	refresh, access := mustSign(t, m, refreshClaims()), mustSign(t, m, accessClaims())
	for range 2 {
		for _, tok := range []string{refresh, access} {
			if _, err := m.ParseEither(tok, Access, Refresh); err != nil {
				t.Fatalf("ParseEither: %v", err)
			}
		}
	}
	if _, err := m.ParseEither(alterSignature(t, refresh), Access, Refresh); !errors.Is(err, ErrInvalid) {
		t.Fatalf("altered refresh token: error %v, want ErrInvalid", err)
	}
	if _, err := m.Parse(mustSign(t, m, Claims{Type: Refresh, UserID: 7, SessionID: "s2", ID: "r2", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}), Refresh); err != nil {
		t.Fatal(err)
	}
	if n := m.verified.lru.Len(); n != 1 {
		t.Fatalf("%d tokens remembered, want the refresh token ParseEither accepted alone", n)
	}

	// Only the signature is remembered: the type and expiry are judged again.
	if _, err := m.ParseEither(refresh, Access, Access); !errors.Is(err, ErrWrongType) {
		t.Errorf("remembered refresh token as an access token: error %v, want ErrWrongType", err)
	}
	clock = now.Add(2 * time.Hour)
	if _, err := m.ParseEither(refresh, Access, Refresh); !errors.Is(err, ErrInvalid) {
		t.Errorf("remembered refresh token past its exp: error %v, want ErrInvalid", err)
	}
	clock = now

	// Keys loaded again are the same keys: still remembered.
	if err := m.SetKeys([]Key{old, next}); err != nil {
		t.Fatal(err)
	}
	if _, ok := m.verified.get(m.ring.Load(), refresh); !ok {
		t.Error("the keys loaded again: the refresh token is no longer remembered")
	}
	// Its key gone, the token is refused as if never seen.
	if err := m.SetKeys([]Key{next}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.ParseEither(refresh, Access, Refresh); !errors.Is(err, ErrInvalid) {
		t.Errorf("remembered refresh token of a removed key: error %v, want ErrInvalid", err)
	}
	// A key of the same kid with other material does not vouch for what it checked.
	if err := m.SetKeys([]Key{old}); err != nil {
		t.Fatal(err)
	}
	impostor := mustSigningKey(t, mustKey(t, EdDSA, now))
	impostor.id = old.ID
	payload, err := segment(segments(refresh)[1], 2)
	if err != nil {
		t.Fatal(err)
	}
	forged := "forged.by-another." + "key"
	claims, err := decodeClaims(payload)
	if err != nil {
		t.Fatal(err)
	}
	m.verified.add(forged, verified{claims: claims, typ: typJWT, key: impostor})
	if _, err := m.ParseEither(forged, Access, Refresh); !errors.Is(err, ErrInvalid) {
		t.Errorf("a token remembered as checked by another key of the same kid: error %v, want ErrInvalid", err)
	}
}

// TestRememberedClaimsOwned: ParseEither keeps a token's decoded claims to check them again,
// yet what each check returns is the caller's own: changing it changes no later check.
func TestRememberedClaimsOwned(t *testing.T) {
	m := mustManager(t, mustKey(t, EdDSA, now))
	payload := fmt.Sprintf(`{"token_type":"refresh","exp":%d,"iat":%d,"iss":%q,"jti":"r1","sid":"s1","user_id":42,"aud":["api"],"amr":["pwd","otp"]}`,
		now.Add(time.Hour).Unix(), now.Unix(), issuer)
	claims, err := decodeClaims([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	first, err := m.checkClaims(claims, typJWT, Refresh, Refresh)
	if err != nil {
		t.Fatal(err)
	}
	first.AMR[0], first.Audience[0] = "changed", "changed"
	again, err := m.checkClaims(claims, typJWT, Refresh, Refresh)
	if err != nil {
		t.Fatal(err)
	}
	if again.AMR[0] != "pwd" || again.Audience[0] != "api" {
		t.Errorf("second check: amr %v, aud %v, want [pwd otp] and [api]", again.AMR, again.Audience)
	}
}

func mustSigningKey(t *testing.T, k Key) *signingKey {
	t.Helper()
	sk, err := loadKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return sk
}

// BenchmarkParseEitherFirstSight is verify's parse of a refresh token it has not seen.
func BenchmarkParseEitherFirstSight(b *testing.B) {
	m := mustManager(b, mustKey(b, EdDSA, now))
	c := refreshClaims()
	toks := make([]string, 256)
	for i := range toks {
		c.ID = string(rune('a'+i%26)) + string(rune('a'+i/26))
		toks[i] = mustSign(b, m, c)
	}
	i := 0
	for b.Loop() {
		m.verified.lru.Purge()
		if _, err := m.ParseEither(toks[i%len(toks)], Access, Refresh); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

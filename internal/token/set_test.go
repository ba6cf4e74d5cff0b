package token

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

func testSET() SET {
	return SET{
		Issuer: issuer, ID: "jti-1", IssuedAt: now, Audience: []string{"rp"}, Txn: "t",
		SubjectID: map[string]any{"format": "iss_sub", "iss": issuer, "sub": "42"},
		EventType: "https://schemas.openid.net/secevent/caep/event-type/session-revoked",
		Event:     map[string]any{"event_timestamp": now.Unix(), "reason_admin": map[string]string{"en": "x"}},
	}
}

// TestSETSigner: only RS256 keys of 2048 bits or more sign SETs; the same SET is the same
// bytes every time (so every instance delivers identical SETs); VerifySET takes it and refuses
// tokens and tampered SETs.
func TestSETSigner(t *testing.T) {
	for _, alg := range []string{EdDSA, ES256} {
		if _, err := NewSETSigner(mustKey(t, alg, now)); err == nil {
			t.Errorf("%s key accepted for SETs", alg)
		}
	}
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	jk, _ := jwk.FromRaw(small)
	_ = setMembers(jk, "small", RS256, false)
	b, _ := json.Marshal(jk)
	if _, err := NewSETSigner(Key{ID: "small", Algorithm: RS256, Private: b}); err == nil {
		t.Error("1024-bit RSA key accepted for SETs")
	}

	k := mustKey(t, RS256, now)
	s, err := NewSETSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	a, err := s.Sign(testSET())
	if err != nil {
		t.Fatal(err)
	}
	again, _ := s.Sign(testSET())
	if a != again {
		t.Error("the same SET signed twice differs")
	}
	jwks, err := s.AddToJWKS([]byte(`{"keys":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	h, c, err := VerifySET(a, jwks)
	if err != nil {
		t.Fatal(err)
	}
	if h["typ"] != SETType || h["alg"] != RS256 || h["kid"] != k.ID || c["aud"] != "rp" || c["sub"] != nil || c["exp"] != nil {
		t.Errorf("header %v claims %v", h, c)
	}

	// An RS256 access token of a Manager is no SET, even with its key in the set.
	m := mustManager(t, mustKey(t, RS256, now))
	tok := mustSign(t, m, accessClaims())
	mj, _ := m.JWKS()
	if _, _, err := VerifySET(tok, mj); !errors.Is(err, ErrInvalid) {
		t.Errorf("an access token passed VerifySET: %v", err)
	}
	parts := strings.Split(a, ".")
	tampered := parts[0] + "." + strings.TrimRight(parts[1], "=") + "x." + parts[2]
	if _, _, err := VerifySET(tampered, jwks); err == nil {
		t.Error("a tampered SET verified")
	}
	// And a SET is no token for a Manager holding its key's JWKS as a token key would be.
	if _, err := m.Parse(a, Access); err == nil {
		t.Error("a SET parsed as an access token")
	}
}

package token_test

import (
	"testing"
	"time"

	"github.com/authapi/authapi/internal/token"
)

func TestKeyIDAndHasKey(t *testing.T) {
	now := time.Now()
	k1, err := token.GenerateKey(token.EdDSA, now)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := token.GenerateKey(token.EdDSA, now)
	if err != nil {
		t.Fatal(err)
	}
	m, err := token.NewManager(token.Config{Issuer: "authapi"}, []token.Key{k1})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := m.Sign(token.Claims{Type: token.Access, UserID: 1, SessionID: "s", ID: "j", IssuedAt: now, ExpiresAt: now.Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	if got := token.KeyID(raw); got != k1.ID {
		t.Fatalf("KeyID = %q, want %q", got, k1.ID)
	}
	for _, bad := range []string{"", "nodot", "!!!.x.y", "e30.x.y"} { // e30 is {}
		if got := token.KeyID(bad); got != "" {
			t.Errorf("KeyID(%q) = %q, want empty", bad, got)
		}
	}
	if !m.HasKey(k1.ID) || m.HasKey(k2.ID) || m.HasKey("") {
		t.Fatal("HasKey before SetKeys: want only k1")
	}
	if err := m.SetKeys([]token.Key{k2}); err != nil {
		t.Fatal(err)
	}
	if m.HasKey(k1.ID) || !m.HasKey(k2.ID) {
		t.Fatal("HasKey after SetKeys: want only k2")
	}
}

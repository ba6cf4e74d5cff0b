package token

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestClientTokens: a client token round-trips through ParseClient and is no user token, and
// no user token is a client token.
func TestClientTokens(t *testing.T) {
	for _, alg := range []string{EdDSA, ES256, RS256} {
		t.Run(alg, func(t *testing.T) {
			m := mustManager(t, mustKey(t, alg, now.Add(-time.Hour)))
			raw, err := m.SignClient(ClientClaims{ClientID: "ac_x", Scopes: []string{"introspect", "revoke"}, ID: "tag.r",
				IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			c, err := m.ParseClient(raw)
			if err != nil || c.ClientID != "ac_x" || !slices.Equal(c.Scopes, []string{"introspect", "revoke"}) || c.ID != "tag.r" ||
				!c.ExpiresAt.Equal(now.Add(time.Hour)) {
				t.Fatalf("ParseClient = %+v, %v", c, err)
			}
			for _, want := range []Type{Access, Refresh} {
				if _, err := m.Parse(raw, want); !errors.Is(err, ErrWrongType) {
					t.Errorf("Parse(client token, %s) = %v, want ErrWrongType", want, err)
				}
			}
			access := mustSign(t, m, accessClaims())
			if _, err := m.ParseClient(access); !errors.Is(err, ErrWrongType) {
				t.Errorf("ParseClient(access token) = %v, want ErrWrongType", err)
			}
			refresh := mustSign(t, m, Claims{Type: Refresh, UserID: 42, SessionID: "s1", IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
			if _, err := m.ParseClient(refresh); !errors.Is(err, ErrInvalid) {
				t.Errorf("ParseClient(refresh token) = %v, want ErrInvalid (typ JWT)", err)
			}
			parts := strings.Split(raw, ".")
			if _, err := m.ParseClient(parts[0] + "." + parts[1] + "." + strings.Repeat("A", len(parts[2]))); !errors.Is(err, ErrInvalid) {
				t.Errorf("tampered: %v", err)
			}
			expired, _ := m.SignClient(ClientClaims{ClientID: "ac_x", IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now})
			if _, err := m.ParseClient(expired); !errors.Is(err, ErrInvalid) {
				t.Errorf("expired: %v", err)
			}
		})
	}
}

package token_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/token"
	"github.com/authapi/authapi/internal/token/tokentest"
)

const testIssuer = "https://auth.example.com"

var keysetNow = time.Unix(1_800_000_000, 0)

func accessClaims() map[string]any {
	return map[string]any{
		"iss": testIssuer, "sub": "42", "aud": "https://api.example.com", "client_id": "authapi",
		"sid": "s1", "jti": "j1", "iat": keysetNow.Unix() - 10, "exp": keysetNow.Unix() + 300,
		"auth_time": keysetNow.Unix() - 100, "amr": []string{"pwd"}, "token_type": "access", "user_id": 42,
	}
}

func with(c map[string]any, name string, v any) map[string]any {
	out := make(map[string]any, len(c))
	for k, x := range c {
		out[k] = x
	}
	if v == nil {
		delete(out, name)
	} else {
		out[name] = v
	}
	return out
}

func expect() token.Expect {
	return token.Expect{Issuers: []string{testIssuer, "authapi"}, Audiences: []string{"https://api.example.com"}, Now: keysetNow, Leeway: 5 * time.Second}
}

func TestKeySetVerifyAccessToken(t *testing.T) {
	ed, es, rs := tokentest.NewKey("ed", "EdDSA"), tokentest.NewKey("es", "ES256"), tokentest.NewKey("rs", "RS256")
	other := tokentest.NewKey("ed", "EdDSA") // same kid, another key
	set, err := token.NewKeySet(tokentest.JWKS(ed, es, rs))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(set.KeyIDs(), ","); got != "ed,es,rs" {
		t.Fatalf("KeyIDs = %s, want ed,es,rs", got)
	}
	good := ed.Sign("at+jwt", accessClaims(), nil)
	for _, k := range []*tokentest.Key{ed, es, rs} {
		c, err := set.VerifyAccessToken(k.Sign("at+jwt", accessClaims(), nil), expect())
		if err != nil {
			t.Fatalf("%s: %v", k.Alg, err)
		}
		if c.Subject != "42" || c.SessionID != "s1" || c.ClientID != "authapi" || c.ID != "j1" ||
			len(c.AMR) != 1 || c.AMR[0] != "pwd" || c.AuthTime.Unix() != keysetNow.Unix()-100 || c.ExpiresAt.Unix() != keysetNow.Unix()+300 {
			t.Fatalf("%s: claims %+v", k.Alg, c)
		}
	}
	if _, err := set.VerifyAccessToken(ed.Sign("application/AT+JWT", accessClaims(), nil), expect()); err != nil {
		t.Fatalf("typ application/AT+JWT: %v", err)
	}
	client := with(with(accessClaims(), "sid", nil), "scope", "introspect ssf.read")
	if c, err := set.VerifyAccessToken(ed.Sign("at+jwt", client, nil), expect()); err != nil || c.Scope != "introspect ssf.read" || c.SessionID != "" {
		t.Fatalf("client token: %+v, %v", c, err)
	}
	arrayAud := with(accessClaims(), "aud", []string{"other", "https://api.example.com"})
	if _, err := set.VerifyAccessToken(ed.Sign("at+jwt", arrayAud, nil), expect()); err != nil {
		t.Fatalf("aud array holding ours: %v", err)
	}

	refresh := with(with(accessClaims(), "aud", nil), "token_type", "refresh")
	tampered := func() string {
		parts := strings.Split(good, ".")
		payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
		payload = []byte(strings.Replace(string(payload), `"sub":"42"`, `"sub":"43"`, 1))
		return parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
	}()
	refused := []struct {
		name, raw string
		unknown   bool
	}{
		{"tampered payload", tampered, false},
		{"signed by another key under a known kid", other.Sign("at+jwt", accessClaims(), nil), false},
		{"wrong alg in header (HS256)", ed.Sign("at+jwt", accessClaims(), map[string]any{"alg": "HS256"}), false},
		{"alg none", strings.Join(strings.Split(ed.Sign("at+jwt", accessClaims(), map[string]any{"alg": "none"}), ".")[:2], ".") + ".", false},
		{"alg of another held key", ed.Sign("at+jwt", accessClaims(), map[string]any{"alg": "RS256"}), false},
		{"unknown kid", tokentest.NewKey("nope", "EdDSA").Sign("at+jwt", accessClaims(), nil), true},
		{"no kid", ed.Sign("at+jwt", accessClaims(), map[string]any{"kid": nil}), true},
		{"typ JWT", ed.Sign("JWT", accessClaims(), nil), false},
		{"no typ", ed.Sign("at+jwt", accessClaims(), map[string]any{"typ": nil}), false},
		{"refresh token (typ JWT, no aud)", ed.Sign("JWT", refresh, nil), false},
		{"refresh claims under at+jwt but no aud", ed.Sign("at+jwt", refresh, nil), false},
		{"SET", ed.Sign("secevent+jwt", accessClaims(), nil), false},
		{"jku header", ed.Sign("at+jwt", accessClaims(), map[string]any{"jku": "https://evil"}), false},
		{"expired", ed.Sign("at+jwt", with(accessClaims(), "exp", keysetNow.Unix()-5), nil), false},
		{"no exp", ed.Sign("at+jwt", with(accessClaims(), "exp", nil), nil), false},
		{"no iat", ed.Sign("at+jwt", with(accessClaims(), "iat", nil), nil), false},
		{"issued in the future", ed.Sign("at+jwt", with(accessClaims(), "iat", keysetNow.Unix()+60), nil), false},
		{"not valid yet", ed.Sign("at+jwt", with(accessClaims(), "nbf", keysetNow.Unix()+60), nil), false},
		{"wrong aud", ed.Sign("at+jwt", with(accessClaims(), "aud", "https://other.example.com"), nil), false},
		{"aud array without ours", ed.Sign("at+jwt", with(accessClaims(), "aud", []string{"a", "b"}), nil), false},
		{"wrong iss", ed.Sign("at+jwt", with(accessClaims(), "iss", "https://evil.example.com"), nil), false},
		{"no sub", ed.Sign("at+jwt", with(accessClaims(), "sub", nil), nil), false},
		{"no client_id", ed.Sign("at+jwt", with(accessClaims(), "client_id", nil), nil), false},
		{"no jti", ed.Sign("at+jwt", with(accessClaims(), "jti", nil), nil), false},
		{"amr not strings", ed.Sign("at+jwt", with(accessClaims(), "amr", []int{1}), nil), false},
		{"two segments", "a.b", false},
		{"too large", strings.Repeat("a", 9000), false},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			_, err := set.VerifyAccessToken(tc.raw, expect())
			if !errors.Is(err, token.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
			if got := errors.Is(err, token.ErrUnknownKey); got != tc.unknown {
				t.Fatalf("errors.Is(err, ErrUnknownKey) = %v, want %v (%v)", got, tc.unknown, err)
			}
		})
	}
	// Leeway: 3 s after exp passes with 5 s of leeway.
	late := expect()
	late.Now = keysetNow.Add(303 * time.Second)
	if _, err := set.VerifyAccessToken(good, late); err != nil {
		t.Fatalf("within leeway: %v", err)
	}
}

func TestNewKeySetSkipsUnusableKeys(t *testing.T) {
	ed := tokentest.NewKey("ed", "EdDSA")
	noAlg := tokentest.NewKey("noalg", "EdDSA").JWK()
	delete(noAlg, "alg")
	enc := tokentest.NewKey("enc", "EdDSA").JWK()
	enc["use"] = "enc"
	wrongAlg := tokentest.NewKey("mislabelled", "EdDSA").JWK()
	wrongAlg["alg"] = "ES256"
	doc := `{"keys":[` + string(mustJSON(t, ed.JWK())) + `,` + string(mustJSON(t, noAlg)) + `,` +
		string(mustJSON(t, enc)) + `,` + string(mustJSON(t, wrongAlg)) + `,{"kty":"oct","k":"c2VjcmV0","kid":"hmac","alg":"HS256"}]}`
	set, err := token.NewKeySet([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(set.KeyIDs(), ","); got != "ed" {
		t.Fatalf("KeyIDs = %s, want ed", got)
	}
	if _, err := token.NewKeySet([]byte("not json")); err == nil {
		t.Fatal("NewKeySet(garbage) = nil error")
	}
}

func TestKeySetVerifySecurityEvent(t *testing.T) {
	rs := tokentest.NewKey("rs", "RS256")
	set, err := token.NewKeySet(tokentest.JWKS(rs))
	if err != nil {
		t.Fatal(err)
	}
	const revoked = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	subject := map[string]any{"format": "complex", "user": map[string]any{"format": "iss_sub", "iss": testIssuer, "sub": "42"}, "session": map[string]any{"format": "opaque", "id": "s1"}}
	claims := map[string]any{"iss": testIssuer, "aud": "https://api.example.com", "jti": "e1", "iat": keysetNow.Unix(),
		"sub_id": subject, "events": map[string]any{revoked: map[string]any{"event_timestamp": keysetNow.Unix()}}}
	c, err := set.VerifySecurityEvent(rs.Sign("secevent+jwt", claims, nil), expect())
	if err != nil {
		t.Fatal(err)
	}
	if c.EventType != revoked || c.ID != "e1" || c.SubjectID["format"] != "complex" {
		t.Fatalf("claims %+v", c)
	}
	for name, raw := range map[string]string{
		"access token typ": rs.Sign("at+jwt", claims, nil),
		"two events":       rs.Sign("secevent+jwt", with(claims, "events", map[string]any{revoked: map[string]any{}, "x": map[string]any{}}), nil),
		"no events":        rs.Sign("secevent+jwt", with(claims, "events", nil), nil),
		"no jti":           rs.Sign("secevent+jwt", with(claims, "jti", nil), nil),
		"wrong aud":        rs.Sign("secevent+jwt", with(claims, "aud", "x"), nil),
		"expired":          rs.Sign("secevent+jwt", with(claims, "exp", keysetNow.Unix()-60), nil),
	} {
		if _, err := set.VerifySecurityEvent(raw, expect()); !errors.Is(err, token.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The JWKS a Manager publishes is one a KeySet reads, for every algorithm.
func TestKeySetReadsManagerJWKS(t *testing.T) {
	var keys []token.Key
	for _, alg := range []string{token.EdDSA, token.ES256, token.RS256} {
		k, err := token.GenerateKey(alg, keysetNow)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	m, err := token.NewManager(token.Config{Issuer: testIssuer}, keys)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := m.JWKS()
	set, err := token.NewKeySet(doc)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(set.KeyIDs()); got != 3 {
		t.Fatalf("%d keys, want 3", got)
	}
}

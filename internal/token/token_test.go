package token

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

const issuer = "https://auth.example.test"

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

func mustKey(t testing.TB, alg string, created time.Time) Key {
	t.Helper()
	k, err := GenerateKey(alg, created)
	if err != nil {
		t.Fatalf("GenerateKey(%s): %v", alg, err)
	}
	return k
}

func mustManager(t testing.TB, keys ...Key) *Manager {
	t.Helper()
	m, err := NewManager(Config{Issuer: issuer, Now: func() time.Time { return now }}, keys)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	return m
}

func mustSign(t testing.TB, m *Manager, c Claims) string {
	t.Helper()
	tok, err := m.Sign(c)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return tok
}

func accessClaims() Claims {
	return Claims{Type: Access, UserID: 42, SessionID: "s1", IssuedAt: now, ExpiresAt: now.Add(5 * time.Minute)}
}

// validClaims is the JSON payload of a good access token, for hand-made tokens.
func validClaims() map[string]any {
	return map[string]any{
		"token_type": "access",
		"exp":        now.Add(5 * time.Minute).Unix(),
		"iat":        now.Unix(),
		"jti":        "0123456789abcdef0123456789abcdef",
		"user_id":    42,
		"sub":        "42",
		"iss":        issuer,
		"sid":        "s1",
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func b64JSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b64(b)
}

// handMade signs header and claims with k as alg, whatever the header says,
// so that each test changes exactly one thing about an otherwise good token.
func handMade(t testing.TB, k Key, alg string, header, claims map[string]any) string {
	t.Helper()
	sk, err := loadKey(k)
	if err != nil {
		t.Fatal(err)
	}
	input := b64JSON(t, header) + "." + b64JSON(t, claims)
	signer, err := jws.NewSigner(jwa.SignatureAlgorithm(alg))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.Sign([]byte(input), sk.private)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

func header(k Key) map[string]any {
	return map[string]any{"alg": k.Algorithm, "kid": k.ID, "typ": "at+jwt"}
}

func with(m map[string]any, key string, v any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	if v == nil {
		delete(out, key)
	} else {
		out[key] = v
	}
	return out
}

func segments(tok string) []string { return strings.Split(tok, ".") }

func TestValidAlgorithm(t *testing.T) {
	for alg, want := range map[string]bool{EdDSA: true, ES256: true, RS256: true, "HS256": false, "none": false, "": false, "eddsa": false} {
		if got := ValidAlgorithm(alg); got != want {
			t.Errorf("ValidAlgorithm(%q) = %v, want %v", alg, got, want)
		}
	}
}

func TestGenerateKey(t *testing.T) {
	if _, err := GenerateKey("HS256", now); err == nil {
		t.Error("GenerateKey(HS256): got nil error, want error")
	}
	k := mustKey(t, EdDSA, now)
	if !regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`).MatchString(k.ID) {
		t.Errorf("ID = %q, want 22 base64url characters", k.ID)
	}
	if k.Algorithm != EdDSA || !k.CreatedAt.Equal(now) {
		t.Errorf("got alg %q created %v, want %q %v", k.Algorithm, k.CreatedAt, EdDSA, now)
	}
	var jk struct{ Kid, Alg, D string }
	if err := json.Unmarshal(k.Private, &jk); err != nil {
		t.Fatal(err)
	}
	if jk.Kid != k.ID || jk.Alg != EdDSA || jk.D == "" {
		t.Errorf("Private JWK has kid %q alg %q d set %v, want %q %q true", jk.Kid, jk.Alg, jk.D != "", k.ID, EdDSA)
	}
	if other := mustKey(t, EdDSA, now); other.ID == k.ID {
		t.Errorf("two keys share ID %q", k.ID)
	}
}

func TestNewManagerRejectsBadKeys(t *testing.T) {
	good := mustKey(t, EdDSA, now)
	pub, err := jwk.ParseKey(good.Private)
	if err != nil {
		t.Fatal(err)
	}
	pubKey, err := pub.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	pubJSON, err := json.Marshal(pubKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string][]Key{
		"no keys":         nil,
		"not JSON":        {{ID: good.ID, Algorithm: EdDSA, Private: []byte("{"), CreatedAt: now}},
		"ID mismatch":     {{ID: "other", Algorithm: EdDSA, Private: good.Private, CreatedAt: now}},
		"alg mismatch":    {{ID: good.ID, Algorithm: ES256, Private: good.Private, CreatedAt: now}},
		"unsupported alg": {{ID: good.ID, Algorithm: "HS256", Private: good.Private, CreatedAt: now}},
		"public key only": {{ID: good.ID, Algorithm: EdDSA, Private: pubJSON, CreatedAt: now}},
		"duplicate ID":    {good, good},
	}
	for name, keys := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := NewManager(Config{Issuer: issuer}, keys); err == nil {
				t.Error("got nil error, want error")
			}
		})
	}
	if _, err := NewManager(Config{}, []Key{good}); err == nil {
		t.Error("empty issuer: got nil error, want error")
	}
}

func TestRoundTrip(t *testing.T) {
	for _, alg := range []string{EdDSA, ES256, RS256} {
		t.Run(alg, func(t *testing.T) {
			k := mustKey(t, alg, now)
			m := mustManager(t, k)
			want := Claims{
				Type:      Refresh,
				UserID:    1 << 53, // beyond float64's exact integers
				SessionID: "session-1",
				ID:        "jti-1",
				IssuedAt:  now,
				ExpiresAt: now.Add(24 * time.Hour),
			}
			want.UserID++
			tok := mustSign(t, m, want)

			got, err := m.Parse(tok, Refresh)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			want.Issuer = issuer
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Parse = %+v, want %+v", got, want)
			}

			hdr, err := jws.Parse([]byte(tok))
			if err != nil {
				t.Fatal(err)
			}
			h := hdr.Signatures()[0].ProtectedHeaders()
			if h.Algorithm().String() != alg || h.KeyID() != k.ID || h.Type() != "JWT" {
				t.Errorf("header alg %q kid %q typ %q, want %q %q JWT", h.Algorithm(), h.KeyID(), h.Type(), alg, k.ID)
			}
		})
	}
}

func TestSignPayload(t *testing.T) {
	m := mustManager(t, mustKey(t, EdDSA, now))
	c := accessClaims()
	c.IssuedAt = now.Add(500 * time.Millisecond) // truncated to whole seconds
	tok := mustSign(t, m, c)
	raw, err := base64.RawURLEncoding.DecodeString(segments(tok)[1])
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	jti, _ := got["jti"].(string)
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(jti) {
		t.Errorf("jti = %q, want 32 hex characters", jti)
	}
	delete(got, "jti")
	want := map[string]any{
		"token_type": "access",
		"exp":        json.Number("1748779500"),
		"iat":        json.Number("1748779200"),
		"user_id":    json.Number("42"),
		"sub":        "42",
		"iss":        issuer,
		"sid":        "s1",
		"aud":        issuer, // the default audience, one: a string
	}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("payload = %s, want %s", g, w)
	}
	if other := mustSign(t, m, accessClaims()); segments(other)[1] == segments(tok)[1] {
		t.Error("two tokens got the same payload, want different random jti")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSignRejectsBadClaims(t *testing.T) {
	m := mustManager(t, mustKey(t, EdDSA, now))
	tests := map[string]func(c *Claims){
		"unknown type":     func(c *Claims) { c.Type = "id" },
		"zero user":        func(c *Claims) { c.UserID = 0 },
		"no session":       func(c *Claims) { c.SessionID = "" },
		"no issued at":     func(c *Claims) { c.IssuedAt = time.Time{} },
		"expires too soon": func(c *Claims) { c.ExpiresAt = c.IssuedAt },
	}
	for name, change := range tests {
		t.Run(name, func(t *testing.T) {
			c := accessClaims()
			change(&c)
			if tok, err := m.Sign(c); err == nil {
				t.Errorf("Sign = %q, nil error; want error", tok)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	ed := mustKey(t, EdDSA, now.Add(-time.Hour))
	es := mustKey(t, ES256, now.Add(-2*time.Hour))
	rs := mustKey(t, RS256, now.Add(-3*time.Hour))
	m := mustManager(t, ed, es, rs)
	good := mustSign(t, m, accessClaims())
	seg := segments(good)
	if _, err := m.Parse(good, Access); err != nil {
		t.Fatalf("good token: %v", err)
	}

	// HS256 keyed with the public key: the classic algorithm confusion attack.
	edPub, err := loadKey(ed)
	if err != nil {
		t.Fatal(err)
	}
	jwks, err := m.JWKS()
	if err != nil {
		t.Fatal(err)
	}
	hsInput := b64JSON(t, with(header(ed), "alg", "HS256")) + "." + b64JSON(t, validClaims())
	hsToken := func(secret []byte) string {
		mac := hmac.New(sha256.New, secret)
		mac.Write([]byte(hsInput))
		return hsInput + "." + b64(mac.Sum(nil))
	}

	altered := alterSignature(t, good)

	tampered := seg[0] + "." + b64JSON(t, with(validClaims(), "user_id", 1)) + "." + seg[2]

	edJWK, err := jwk.FromRaw(edPub.public)
	if err != nil {
		t.Fatal(err)
	}

	big := handMade(t, ed, EdDSA, header(ed), with(validClaims(), "pad", strings.Repeat("x", 9000)))
	if len(big) <= maxTokenSize {
		t.Fatalf("oversize token is only %d bytes", len(big))
	}

	claims := validClaims()
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"alg none", b64JSON(t, with(header(ed), "alg", "none")) + "." + b64JSON(t, claims) + ".", ErrInvalid},
		{"alg none with a signature", b64JSON(t, with(header(ed), "alg", "none")) + "." + b64JSON(t, claims) + "." + b64([]byte("sig")), ErrInvalid},
		{"alg none with kid-less header", b64JSON(t, map[string]any{"alg": "none"}) + "." + b64JSON(t, claims) + ".", ErrInvalid},
		{"HS256 keyed with raw public key", hsToken(edPub.public.(ed25519.PublicKey)), ErrInvalid},
		{"HS256 keyed with JWKS", hsToken(jwks), ErrInvalid},
		{"unknown kid", handMade(t, ed, EdDSA, with(header(ed), "kid", "nope"), claims), ErrInvalid},
		{"no kid", handMade(t, ed, EdDSA, with(header(ed), "kid", nil), claims), ErrInvalid},
		{"kid of another alg", handMade(t, es, ES256, with(header(ed), "alg", ES256), claims), ErrInvalid},
		{"alg of another key", handMade(t, ed, EdDSA, with(header(ed), "alg", RS256), claims), ErrInvalid},
		{"signed by another key", handMade(t, mustKey(t, EdDSA, now), EdDSA, header(ed), claims), ErrInvalid},
		{"no typ", handMade(t, ed, EdDSA, with(header(ed), "typ", nil), claims), ErrInvalid},
		{"typ JWT for an access token of the current issuer", handMade(t, ed, EdDSA, with(header(ed), "typ", "JWT"), claims), ErrInvalid},
		{"typ secevent+jwt", handMade(t, ed, EdDSA, with(header(ed), "typ", "secevent+jwt"), claims), ErrInvalid},
		{"typ at+JWT", handMade(t, ed, EdDSA, with(header(ed), "typ", "at+JWT"), claims), ErrInvalid},
		{"stripped signature", seg[0] + "." + seg[1] + ".", ErrInvalid},
		{"altered signature", altered, ErrInvalid},
		{"tampered payload", tampered, ErrInvalid},
		{"expired", handMade(t, ed, EdDSA, header(ed), with(claims, "exp", now.Unix()-1)), ErrInvalid},
		{"expires now", handMade(t, ed, EdDSA, header(ed), with(claims, "exp", now.Unix())), ErrInvalid},
		{"nbf in future", handMade(t, ed, EdDSA, header(ed), with(claims, "nbf", now.Unix()+60)), ErrInvalid},
		{"iat in future", handMade(t, ed, EdDSA, header(ed), with(claims, "iat", now.Unix()+60)), ErrInvalid},
		{"wrong iss", handMade(t, ed, EdDSA, header(ed), with(claims, "iss", "https://evil.test")), ErrInvalid},
		{"missing iss", handMade(t, ed, EdDSA, header(ed), with(claims, "iss", nil)), ErrInvalid},
		{"missing exp", handMade(t, ed, EdDSA, header(ed), with(claims, "exp", nil)), ErrInvalid},
		{"exp as string", handMade(t, ed, EdDSA, header(ed), with(claims, "exp", "9999999999")), ErrInvalid},
		{"exp as float", handMade(t, ed, EdDSA, header(ed), with(claims, "exp", 9999999999.5)), ErrInvalid},
		{"nbf as bool", handMade(t, ed, EdDSA, header(ed), with(claims, "nbf", true)), ErrInvalid},
		{"missing iat", handMade(t, ed, EdDSA, header(ed), with(claims, "iat", nil)), ErrInvalid},
		{"missing jti", handMade(t, ed, EdDSA, header(ed), with(claims, "jti", nil)), ErrInvalid},
		{"empty jti", handMade(t, ed, EdDSA, header(ed), with(claims, "jti", "")), ErrInvalid},
		{"jti as number", handMade(t, ed, EdDSA, header(ed), with(claims, "jti", 7)), ErrInvalid},
		{"missing sid", handMade(t, ed, EdDSA, header(ed), with(claims, "sid", nil)), ErrInvalid},
		{"missing token_type", handMade(t, ed, EdDSA, header(ed), with(claims, "token_type", nil)), ErrInvalid},
		{"token_type as number", handMade(t, ed, EdDSA, header(ed), with(claims, "token_type", 1)), ErrInvalid},
		{"wrong type", mustSign(t, m, Claims{Type: Refresh, UserID: 42, SessionID: "s1", IssuedAt: now, ExpiresAt: now.Add(time.Hour)}), ErrWrongType},
		{"wrong type without user_id", handMade(t, ed, EdDSA, with(header(ed), "typ", "JWT"), with(with(claims, "token_type", "refresh"), "user_id", nil)), ErrWrongType},
		{"missing user_id", handMade(t, ed, EdDSA, header(ed), with(claims, "user_id", nil)), ErrNoUser},
		{"string user_id", handMade(t, ed, EdDSA, header(ed), with(claims, "user_id", "42")), ErrNoUser},
		{"float user_id", handMade(t, ed, EdDSA, header(ed), with(claims, "user_id", 1.5)), ErrNoUser},
		{"bool user_id", handMade(t, ed, EdDSA, header(ed), with(claims, "user_id", true)), ErrNoUser},
		{"zero user_id", handMade(t, ed, EdDSA, header(ed), with(claims, "user_id", 0)), ErrNoUser},
		{"expired without user_id", handMade(t, ed, EdDSA, header(ed), with(with(claims, "user_id", nil), "exp", now.Unix()-1)), ErrInvalid},
		{"empty", "", ErrInvalid},
		{"2 segments", seg[0] + "." + seg[1], ErrInvalid},
		{"4 segments", good + "." + seg[2], ErrInvalid},
		{"JSON serialization", `{"payload":"` + seg[1] + `","protected":"` + seg[0] + `","signature":"` + seg[2] + `"}`, ErrInvalid},
		{"bad base64", "!!!." + seg[1] + "." + seg[2], ErrInvalid},
		{"padded base64", seg[0] + "." + seg[1] + "." + seg[2] + "==", ErrInvalid},
		{"standard base64 alphabet", seg[0] + "." + seg[1] + "." + strings.NewReplacer("-", "+", "_", "/").Replace(seg[2]) + "+", ErrInvalid},
		{"non-JSON header", b64([]byte("not json")) + "." + seg[1] + "." + seg[2], ErrInvalid},
		{"header not an object", b64([]byte(`["EdDSA"]`)) + "." + seg[1] + "." + seg[2], ErrInvalid},
		{"header with trailing data", b64([]byte(`{"alg":"EdDSA"}{}`)) + "." + seg[1] + "." + seg[2], ErrInvalid},
		{"header with leading whitespace", rawHeaderToken(t, ed, " "+canonicalHeader(ed), claims), ErrInvalid},
		{"header with trailing newline", rawHeaderToken(t, ed, canonicalHeader(ed)+"\n", claims), ErrInvalid},
		{"payload not JSON", handMadeRaw(t, ed, header(ed), []byte("hello")), ErrInvalid},
		{"payload null", handMadeRaw(t, ed, header(ed), []byte("null")), ErrInvalid},
		{"embedded jwk header", handMade(t, ed, EdDSA, with(header(ed), "jwk", edJWK), claims), ErrInvalid},
		{"jku header", handMade(t, ed, EdDSA, with(header(ed), "jku", "https://evil.test/jwks.json"), claims), ErrInvalid},
		{"x5u header", handMade(t, ed, EdDSA, with(header(ed), "x5u", "https://evil.test/cert.pem"), claims), ErrInvalid},
		{"x5c header", handMade(t, ed, EdDSA, with(header(ed), "x5c", []string{"MIIB"}), claims), ErrInvalid},
		{"crit header", handMade(t, ed, EdDSA, with(header(ed), "crit", []string{"exp"}), claims), ErrInvalid},
		{"b64 header", handMade(t, ed, EdDSA, with(header(ed), "b64", false), claims), ErrInvalid},
		{"oversize", big, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := m.Parse(tt.token, Access)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse error = %v, want %v (claims %+v)", err, tt.want, got)
			}
			if !reflect.DeepEqual(got, Claims{}) {
				t.Errorf("Parse claims = %+v, want zero", got)
			}
		})
	}

	// Hand-made tokens are accepted when nothing is wrong with them, so the
	// rejections above are for the reason each test names.
	for name, tok := range map[string]string{
		"hand-made":       handMade(t, ed, EdDSA, header(ed), claims),
		"hand-made ES256": handMade(t, es, ES256, header(es), claims),
		"nbf in past":     handMade(t, ed, EdDSA, header(ed), with(claims, "nbf", now.Unix())),
		"large padding":   handMade(t, ed, EdDSA, header(ed), with(claims, "pad", strings.Repeat("x", 5000))),
	} {
		if _, err := m.Parse(tok, Access); err != nil {
			t.Errorf("%s: Parse error = %v, want nil", name, err)
		}
	}
}

// canonicalHeader is the header JSON of k as json.Marshal writes it (members sorted).
func canonicalHeader(k Key) string {
	return `{"alg":"` + k.Algorithm + `","kid":"` + k.ID + `","typ":"at+jwt"}`
}

// rawHeaderToken signs claims with k under exactly the header bytes given.
func rawHeaderToken(t testing.TB, k Key, header string, claims map[string]any) string {
	t.Helper()
	sk, err := loadKey(k)
	if err != nil {
		t.Fatal(err)
	}
	input := b64([]byte(header)) + "." + b64JSON(t, claims)
	signer, err := jws.NewSigner(sk.alg)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := signer.Sign([]byte(input), sk.private)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

// TestParseHeaderShortcut: Parse recognises the header Sign writes by its bytes, and any
// other spelling of a header is checked in full, with the same verdict as before the
// shortcut existed: another member order or inner whitespace is accepted, whitespace around
// the object is not, and the bytes of a key that left the ring are forgotten with it.
func TestParseHeaderShortcut(t *testing.T) {
	ed := mustKey(t, EdDSA, now.Add(-time.Hour))
	es := mustKey(t, ES256, now.Add(-2*time.Hour))
	m := mustManager(t, ed, es)
	good := mustSign(t, m, accessClaims())
	seg := segments(good)
	if kt := m.ring.Load().byHeader[seg[0]]; kt.key == nil || kt.key.id != ed.ID || kt.typ != typAccess {
		t.Fatalf("header Sign wrote (%s) is not remembered for key %q", seg[0], ed.ID)
	}
	if len(m.ring.Load().byHeader) != 4 {
		t.Errorf("remembered %d headers, want one per key and typ (4)", len(m.ring.Load().byHeader))
	}
	claims := validClaims()
	for _, tc := range []struct {
		name, header string
		key          Key
		want         error
	}{
		{"canonical", canonicalHeader(ed), ed, nil},
		{"canonical ES256", canonicalHeader(es), es, nil},
		{"members reordered", `{"typ":"at+jwt","kid":"` + ed.ID + `","alg":"EdDSA"}`, ed, nil},
		{"inner whitespace", `{ "alg" : "EdDSA", "kid":"` + ed.ID + `" ,"typ":"at+jwt" }`, ed, nil},
		{"escaped member", `{"alg":"Ed\u0044SA","kid":"` + ed.ID + `","typ":"at\u002bjwt"}`, ed, nil},
		{"leading space", " " + canonicalHeader(ed), ed, ErrInvalid},
		{"trailing tab", canonicalHeader(ed) + "\t", ed, ErrInvalid},
		{"leading CR LF", "\r\n" + canonicalHeader(ed), ed, ErrInvalid},
		{"other key's header", canonicalHeader(es), ed, ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Parse(rawHeaderToken(t, tc.key, tc.header, claims), Access)
			if (tc.want == nil && err != nil) || !errors.Is(err, tc.want) {
				t.Fatalf("Parse error = %v, want %v", err, tc.want)
			}
		})
	}

	// A header checked in full still needs the signature.
	reordered := rawHeaderToken(t, ed, `{"typ":"at+jwt","kid":"`+ed.ID+`","alg":"EdDSA"}`, claims)
	if _, err := m.Parse(alterSignature(t, reordered), Access); !errors.Is(err, ErrInvalid) {
		t.Errorf("reordered header, altered signature: error = %v, want %v", err, ErrInvalid)
	}

	if err := m.SetKeys([]Key{es}); err != nil {
		t.Fatal(err)
	}
	if kt := m.ring.Load().byHeader[seg[0]]; kt.key != nil {
		t.Errorf("header of removed key %q still remembered", ed.ID)
	}
	if _, err := m.Parse(good, Access); !errors.Is(err, ErrInvalid) {
		t.Errorf("token of removed key: error = %v, want %v", err, ErrInvalid)
	}
}

// handMadeRaw signs an arbitrary payload with an EdDSA key.
func handMadeRaw(t testing.TB, k Key, header map[string]any, payload []byte) string {
	t.Helper()
	sk, err := loadKey(k)
	if err != nil {
		t.Fatal(err)
	}
	h := jws.NewHeaders()
	for name, v := range header {
		if name == "alg" {
			continue
		}
		if err := h.Set(name, v); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := jws.Sign(payload, jws.WithKey(sk.alg, sk.private, jws.WithProtectedHeaders(h)))
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

func TestLeeway(t *testing.T) {
	k := mustKey(t, EdDSA, now)
	m, err := NewManager(Config{Issuer: issuer, Now: func() time.Time { return now }, Leeway: 30 * time.Second}, []Key{k})
	if err != nil {
		t.Fatal(err)
	}
	claims := validClaims()
	for name, tt := range map[string]struct {
		claims map[string]any
		want   error
	}{
		"expired within leeway": {with(claims, "exp", now.Unix()-10), nil},
		"expired beyond leeway": {with(claims, "exp", now.Unix()-30), ErrInvalid},
		"nbf within leeway":     {with(claims, "nbf", now.Unix()+10), nil},
		"nbf beyond leeway":     {with(claims, "nbf", now.Unix()+31), ErrInvalid},
		"iat within leeway":     {with(claims, "iat", now.Unix()+30), nil},
		"iat beyond leeway":     {with(claims, "iat", now.Unix()+31), ErrInvalid},
	} {
		_, err := m.Parse(handMade(t, k, EdDSA, header(k), tt.claims), Access)
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: Parse error = %v, want %v", name, err, tt.want)
		}
	}
}

func TestJWKS(t *testing.T) {
	keys := []Key{mustKey(t, EdDSA, now), mustKey(t, ES256, now.Add(-time.Hour)), mustKey(t, RS256, now.Add(-2*time.Hour))}
	m := mustManager(t, keys...)
	b, err := m.JWKS()
	if err != nil {
		t.Fatal(err)
	}

	var doc struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("JWKS is not JSON: %v\n%s", err, b)
	}
	if len(doc.Keys) != len(keys) {
		t.Fatalf("JWKS has %d keys, want %d", len(doc.Keys), len(keys))
	}
	algs := map[string]string{}
	for _, k := range keys {
		algs[k.ID] = k.Algorithm
	}
	for _, jk := range doc.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"} {
			if _, ok := jk[private]; ok {
				t.Errorf("key %v has private member %q", jk["kid"], private)
			}
		}
		kid, _ := jk["kid"].(string)
		if want, ok := algs[kid]; !ok || jk["alg"] != want || jk["use"] != "sig" {
			t.Errorf("key kid %q alg %v use %v, want a known kid with alg %q and use sig", kid, jk["alg"], jk["use"], want)
		}
		delete(algs, kid)
	}

	// A relying party with only the JWKS can verify our tokens.
	set, err := jwk.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		tok := mustSign(t, mustManager(t, k), accessClaims())
		pub, ok := set.LookupKeyID(k.ID)
		if !ok {
			t.Fatalf("JWKS has no key %q", k.ID)
		}
		if _, err := jws.Verify([]byte(tok), jws.WithKey(jwa.SignatureAlgorithm(k.Algorithm), pub)); err != nil {
			t.Errorf("%s: verify with JWKS key: %v", k.Algorithm, err)
		}
	}

	b[0] = 'x'
	if again, _ := m.JWKS(); again[0] != '{' {
		t.Error("JWKS returned shared bytes, want a copy")
	}
}

func TestKeyRotation(t *testing.T) {
	old := mustKey(t, EdDSA, now.Add(-24*time.Hour))
	m := mustManager(t, old)
	oldTok := mustSign(t, m, accessClaims())

	next := mustKey(t, ES256, now)
	if err := m.SetKeys([]Key{next, old}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Parse(oldTok, Access); err != nil {
		t.Errorf("old token after rotation: %v", err)
	}
	newTok := mustSign(t, m, accessClaims())
	if kid := kidOf(t, newTok); kid != next.ID {
		t.Errorf("new token kid = %q, want %q", kid, next.ID)
	}
	if _, err := m.Parse(newTok, Access); err != nil {
		t.Errorf("new token: %v", err)
	}

	if err := m.SetKeys([]Key{{ID: "broken", Algorithm: EdDSA}}); err == nil {
		t.Fatal("SetKeys with a broken key: got nil error")
	}
	if _, err := m.Parse(newTok, Access); err != nil {
		t.Errorf("failed SetKeys changed keys: %v", err)
	}

	if err := m.SetKeys([]Key{next}); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Parse(oldTok, Access); !errors.Is(err, ErrInvalid) {
		t.Errorf("token of removed key: error = %v, want %v", err, ErrInvalid)
	}
}

func kidOf(t *testing.T, tok string) string {
	t.Helper()
	msg, err := jws.Parse([]byte(tok))
	if err != nil {
		t.Fatal(err)
	}
	return msg.Signatures()[0].ProtectedHeaders().KeyID()
}

func TestConcurrentRotation(t *testing.T) {
	a, b := mustKey(t, EdDSA, now.Add(-time.Hour)), mustKey(t, EdDSA, now)
	m := mustManager(t, a)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 50 {
				if i == 0 && j%5 == 0 {
					if err := m.SetKeys([]Key{a, b}); err != nil {
						t.Error(err)
					}
					continue
				}
				tok, err := m.Sign(accessClaims())
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := m.Parse(tok, Access); err != nil {
					t.Error(err)
					return
				}
				if _, err := m.JWKS(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkSign(b *testing.B) {
	m := mustManager(b, mustKey(b, EdDSA, now))
	c := accessClaims()
	for b.Loop() {
		if _, err := m.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	m := mustManager(b, mustKey(b, EdDSA, now))
	tok := mustSign(b, m, accessClaims())
	for b.Loop() {
		if _, err := m.Parse(tok, Access); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseEither is verify's parse of a refresh token: the second type tried.
func BenchmarkParseEither(b *testing.B) {
	m := mustManager(b, mustKey(b, EdDSA, now))
	tok := mustSign(b, m, Claims{Type: Refresh, UserID: 42, SessionID: "s1", ID: "r1", IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	for b.Loop() {
		if _, err := m.ParseEither(tok, Access, Refresh); err != nil {
			b.Fatal(err)
		}
	}
}

func TestSignerTieBreak(t *testing.T) {
	a, b := mustKey(t, EdDSA, now), mustKey(t, ES256, now)
	want := max(a.ID, b.ID)
	for _, keys := range [][]Key{{a, b}, {b, a}} {
		if kid := kidOf(t, mustSign(t, mustManager(t, keys...), accessClaims())); kid != want {
			t.Errorf("keys created together: signer %q, want the larger ID %q whatever the order", kid, want)
		}
	}
}

func TestSignFrom(t *testing.T) {
	clock := now
	old, next := mustKey(t, EdDSA, now.Add(-time.Hour)), mustKey(t, ES256, now)
	next.SignFrom = now.Add(10 * time.Minute)
	m, err := NewManager(Config{Issuer: issuer, Now: func() time.Time { return clock }}, []Key{old, next})
	if err != nil {
		t.Fatal(err)
	}
	c := accessClaims()
	if kid := kidOf(t, mustSign(t, m, c)); kid != old.ID {
		t.Errorf("before SignFrom: signed with %q, want the older %q", kid, old.ID)
	}
	if b, _ := m.JWKS(); !strings.Contains(string(b), next.ID) {
		t.Error("a key waiting for its SignFrom is not in the JWKS")
	}
	if _, err := m.Parse(handMade(t, next, ES256, header(next), validClaims()), Access); err != nil {
		t.Errorf("a key waiting for its SignFrom does not verify: %v", err)
	}
	clock = next.SignFrom
	if kid := kidOf(t, mustSign(t, m, c)); kid != next.ID {
		t.Errorf("at SignFrom: signed with %q, want %q", kid, next.ID)
	}

	// With no key ready, the one ready first signs.
	old.SignFrom, next.SignFrom = now.Add(2*time.Hour), now.Add(time.Hour)
	if err := m.SetKeys([]Key{old, next}); err != nil {
		t.Fatal(err)
	}
	clock = now
	if kid := kidOf(t, mustSign(t, m, c)); kid != next.ID {
		t.Errorf("no key ready: signed with %q, want %q, the first to be", kid, next.ID)
	}
}

// TestTypAndTokenType: the header typ and token_type must agree, so that neither kind of token
// passes for the other even where a check of one of them is skipped. Access tokens from a
// previous issuer may say JWT: authapi signed them so before RFC 9068.
func TestTypAndTokenType(t *testing.T) {
	ed := mustKey(t, EdDSA, now.Add(-time.Hour))
	m, err := NewManager(Config{Issuer: issuer, PreviousIssuers: []string{"authapi"}, Now: func() time.Time { return now }}, []Key{ed})
	if err != nil {
		t.Fatal(err)
	}
	claims := func(tokenType, iss string) map[string]any {
		return with(with(validClaims(), "token_type", tokenType), "iss", iss)
	}
	for _, tc := range []struct {
		name, typ, tokenType, iss string
		want                      Type
		err                       error
	}{
		{"access at+jwt", "at+jwt", "access", issuer, Access, nil},
		{"access at+jwt from a previous issuer", "at+jwt", "access", "authapi", Access, nil},
		{"access JWT from a previous issuer (before the upgrade)", "JWT", "access", "authapi", Access, nil},
		{"access JWT from the current issuer", "JWT", "access", issuer, Access, ErrInvalid},
		{"refresh JWT", "JWT", "refresh", issuer, Refresh, nil},
		{"refresh JWT from a previous issuer", "JWT", "refresh", "authapi", Refresh, nil},
		{"refresh at+jwt", "at+jwt", "refresh", issuer, Refresh, ErrInvalid},
		{"refresh at+jwt as access", "at+jwt", "refresh", issuer, Access, ErrInvalid},
		{"access at+jwt as refresh", "at+jwt", "access", issuer, Refresh, ErrWrongType},
		{"refresh JWT as access", "JWT", "refresh", issuer, Access, ErrWrongType},
		{"unknown issuer", "at+jwt", "access", "https://evil.example", Access, ErrInvalid},
		{"issuer with a trailing slash", "at+jwt", "access", issuer + "/", Access, ErrInvalid},
		{"another token_type at+jwt", "at+jwt", "client", issuer, Access, ErrWrongType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := handMade(t, ed, EdDSA, with(header(ed), "typ", tc.typ), claims(tc.tokenType, tc.iss))
			c, err := m.Parse(raw, tc.want)
			if (tc.err == nil && err != nil) || !errors.Is(err, tc.err) {
				t.Fatalf("Parse(%s) = %v, want %v", tc.want, err, tc.err)
			}
			if err == nil && c.Issuer != tc.iss {
				t.Errorf("Issuer = %q, want %q", c.Issuer, tc.iss)
			}
		})
	}
}

// TestSignAccessProfile: an access token carries the RFC 9068 header and claims, aud a string
// for one audience and an array for more; a refresh token carries typ JWT and no aud or
// client_id.
func TestSignAccessProfile(t *testing.T) {
	ed := mustKey(t, EdDSA, now.Add(-time.Hour))
	m, err := NewManager(Config{Issuer: issuer, Audience: []string{"api-a", "api-b"}, Now: func() time.Time { return now }}, []Key{ed})
	if err != nil {
		t.Fatal(err)
	}
	authTime := now.Add(-time.Hour)
	c := accessClaims()
	c.ClientID, c.AuthTime, c.AMR, c.ACR = "authapi", authTime, []string{"pwd"}, "aal1"
	decode := func(raw string) (map[string]any, map[string]any) {
		t.Helper()
		seg := segments(raw)
		var h, p map[string]any
		for i, v := range []*map[string]any{&h, &p} {
			b, err := base64.RawURLEncoding.DecodeString(seg[i])
			if err != nil || json.Unmarshal(b, v) != nil {
				t.Fatalf("segment %d of %s", i, raw)
			}
		}
		return h, p
	}
	h, p := decode(mustSign(t, m, c))
	if h["typ"] != "at+jwt" {
		t.Errorf("access typ = %v, want at+jwt", h["typ"])
	}
	for k, want := range map[string]any{"aud": []any{"api-a", "api-b"}, "client_id": "authapi", "auth_time": float64(authTime.Unix()), "amr": []any{"pwd"}, "acr": "aal1", "sub": "42", "iss": issuer} {
		if !reflect.DeepEqual(p[k], want) {
			t.Errorf("access %s = %v, want %v", k, p[k], want)
		}
	}
	got, err := m.Parse(mustSign(t, m, c), Access)
	if err != nil || !reflect.DeepEqual(got.Audience, []string{"api-a", "api-b"}) || got.ClientID != "authapi" || !got.AuthTime.Equal(authTime) || !reflect.DeepEqual(got.AMR, []string{"pwd"}) || got.ACR != "aal1" {
		t.Errorf("Parse = %+v, %v", got, err)
	}

	c.Audience = []string{"only"}
	if _, p := decode(mustSign(t, m, c)); p["aud"] != "only" {
		t.Errorf("one audience: aud = %v, want the string \"only\"", p["aud"])
	}

	r := c
	r.Type, r.ExpiresAt = Refresh, now.Add(time.Hour)
	h, p = decode(mustSign(t, m, r))
	if h["typ"] != "JWT" {
		t.Errorf("refresh typ = %v, want JWT", h["typ"])
	}
	for _, k := range []string{"aud", "client_id", "auth_time", "amr", "acr"} {
		if v, ok := p[k]; ok {
			t.Errorf("refresh token carries %s = %v", k, v)
		}
	}
}

// TestParseOptionalClaimShapes: aud, client_id, auth_time and amr of the wrong shape are
// refused, not ignored.
func TestParseOptionalClaimShapes(t *testing.T) {
	ed := mustKey(t, EdDSA, now.Add(-time.Hour))
	m := mustManager(t, ed)
	for name, v := range map[string]map[string]any{
		"aud number":         {"aud": 1},
		"aud array of mixed": {"aud": []any{"a", 1}},
		"client_id number":   {"client_id": 1},
		"auth_time string":   {"auth_time": "1"},
		"auth_time fraction": {"auth_time": 1.5},
		"amr string":         {"amr": "pwd"},
		"acr array":          {"acr": []any{"aal1"}},
	} {
		t.Run(name, func(t *testing.T) {
			c := validClaims()
			for k, x := range v {
				c[k] = x
			}
			if _, err := m.Parse(handMade(t, ed, EdDSA, header(ed), c), Access); !errors.Is(err, ErrInvalid) {
				t.Errorf("Parse = %v, want %v", err, ErrInvalid)
			}
		})
	}
}

// alterSignature flips one bit of the signature's first byte: always a change, unlike
// rewriting the last characters, which may already read "AA" or only carry padding bits.
func alterSignature(t *testing.T, raw string) string {
	t.Helper()
	seg := segments(raw)
	sig, err := base64.RawURLEncoding.DecodeString(seg[2])
	if err != nil {
		t.Fatal(err)
	}
	sig[0] ^= 1
	return seg[0] + "." + seg[1] + "." + b64(sig)
}

// TestParseEither accepts a token of either type as Parse would, and refuses what Parse
// refuses for both: another type, a bad signature, an expired token.
func TestParseEither(t *testing.T) {
	m := mustManager(t, mustKey(t, EdDSA, now))
	access := mustSign(t, m, accessClaims())
	refresh := mustSign(t, m, Claims{Type: Refresh, UserID: 42, SessionID: "s1", ID: "r1", IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	for _, raw := range []string{access, refresh} {
		c, err := m.ParseEither(raw, Access, Refresh)
		if err != nil || c.UserID != 42 {
			t.Fatalf("ParseEither = %+v, %v", c, err)
		}
	}
	if c, _ := m.ParseEither(refresh, Access, Refresh); c.Type != Refresh || c.ID != "r1" {
		t.Fatalf("refresh token parsed as %+v", c)
	}
	if _, err := m.ParseEither(refresh, Access, Access); !errors.Is(err, ErrWrongType) {
		t.Fatalf("refresh token as access only: %v, want ErrWrongType", err)
	}
	if _, err := m.ParseEither(alterSignature(t, access), Access, Refresh); !errors.Is(err, ErrInvalid) {
		t.Fatalf("changed signature: %v, want ErrInvalid", err)
	}
	expired := mustSign(t, m, Claims{Type: Refresh, UserID: 42, SessionID: "s1", IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)})
	if _, err := m.ParseEither(expired, Access, Refresh); !errors.Is(err, ErrInvalid) {
		t.Fatalf("expired: %v, want ErrInvalid", err)
	}
}

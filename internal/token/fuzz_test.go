package token_test

// Fuzz targets for Manager.Parse. Each input is also judged by reference, an independent
// reading of what Parse documents (standard library only: encoding/base64, encoding/json,
// crypto/ed25519), and the two must agree: Parse must never accept what the reference refuses,
// nor refuse a token the reference accepts, and the error class must match.
//
// The key and clock are fixed, so the committed corpus (testdata/fuzz/) holds tokens that stay
// valid. Run a target with, for example:
//
//	go test -run='^$' -fuzz='^FuzzParse$' -fuzztime=20s ./token/

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/token"
)

const (
	// fuzzIssuer is a previous issuer, the committed corpus's: its access tokens say typ JWT,
	// as before RFC 9068, and stay accepted. Sign writes fuzzNewIssuer and typ at+jwt.
	fuzzIssuer    = "authapi"
	fuzzNewIssuer = "https://auth.fuzz.example"
	fuzzKID       = "fuzz"
	// maxTokenSize is the size limit Parse documents by behaviour: 8 KiB.
	maxTokenSize = 8 << 10
	// lastSafeUnix is the largest Unix time time.Unix represents without overflow: beyond it
	// the internal seconds since year 1 wrap around int64.
	lastSafeUnix = math.MaxInt64 - 62135596800
)

// fuzzNow is the fixed clock of the fuzz Manager.
var fuzzNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// fuzzPrivateKey is the fixed Ed25519 key the corpus is signed with.
func fuzzPrivateKey() ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("authapi fuzz signing key"))
	return ed25519.NewKeyFromSeed(seed[:])
}

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// fuzzManager is a Manager holding only the fixed key, with the fixed clock.
func fuzzManager(tb testing.TB) (*token.Manager, ed25519.PrivateKey) {
	tb.Helper()
	priv := fuzzPrivateKey()
	jwk, err := json.Marshal(map[string]string{
		"kty": "OKP", "crv": "Ed25519", "d": b64u(priv.Seed()), "x": b64u(priv.Public().(ed25519.PublicKey)),
		"kid": fuzzKID, "alg": token.EdDSA,
	})
	if err != nil {
		tb.Fatal(err)
	}
	m, err := token.NewManager(token.Config{Issuer: fuzzNewIssuer, PreviousIssuers: []string{fuzzIssuer}, Now: func() time.Time { return fuzzNow }},
		[]token.Key{{ID: fuzzKID, Algorithm: token.EdDSA, Private: jwk, CreatedAt: fuzzNow.Add(-time.Hour)}})
	if err != nil {
		tb.Fatal(err)
	}
	return m, priv
}

// publishedKey is the Ed25519 key the Manager publishes in its JWKS, read by hand.
func publishedKey(tb testing.TB, m *token.Manager) ed25519.PublicKey {
	tb.Helper()
	b, err := m.JWKS()
	if err != nil {
		tb.Fatal(err)
	}
	var set struct {
		Keys []struct {
			Kty, Crv, Kid, X string
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil || len(set.Keys) != 1 {
		tb.Fatalf("JWKS: %v: %s", err, b)
	}
	k := set.Keys[0]
	x, err := base64.RawURLEncoding.DecodeString(k.X)
	if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Kid != fuzzKID || err != nil || len(x) != ed25519.PublicKeySize {
		tb.Fatalf("JWKS key: %s", b)
	}
	return x
}

// goodHeader and goodClaims are what Sign writes, for seeds.
func goodHeader() []byte { return []byte(`{"alg":"EdDSA","kid":"fuzz","typ":"JWT"}`) }

func goodClaims(typ token.Type) []byte {
	return fmt.Appendf(nil, `{"token_type":%q,"exp":%d,"iat":%d,"jti":"0123456789abcdef0123456789abcdef","user_id":42,"sub":"42","iss":%q,"sid":"s1"}`,
		typ, fuzzNow.Add(5*time.Minute).Unix(), fuzzNow.Unix(), fuzzIssuer)
}

func signRaw(priv ed25519.PrivateKey, header, payload []byte) string {
	input := b64u(header) + "." + b64u(payload)
	return input + "." + b64u(ed25519.Sign(priv, []byte(input)))
}

// verdict is the outcome class of a Parse.
type verdict int

const (
	accepted verdict = iota
	invalid
	wrongType
	noUser
)

func (v verdict) String() string {
	return [...]string{"accepted", "ErrInvalid", "ErrWrongType", "ErrNoUser"}[v]
}

func classify(err error) verdict {
	switch {
	case err == nil:
		return accepted
	case errors.Is(err, token.ErrWrongType):
		return wrongType
	case errors.Is(err, token.ErrNoUser):
		return noUser
	case errors.Is(err, token.ErrInvalid):
		return invalid
	}
	return -1
}

// jsonObject decodes exactly one JSON object, numbers kept as json.Number.
func jsonObject(b []byte) (map[string]any, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return m, true
}

// integerClaim reads a JSON integer literal (no fraction, exponent or string).
func integerClaim(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	return i, err == nil
}

// judgement is the reference's verdict, why, and the numeric dates it read.
type judgement struct {
	verdict
	why           string
	exp, nbf, iat int64
	hasNBF        bool
}

// reference judges raw as Parse documents it: at most 8 KiB; three strict base64url segments,
// none empty; a header with only alg "EdDSA", kid "fuzz" and typ "JWT" or "at+jwt" (and, as
// jwx verifies it, no whitespace around the JSON object); an Ed25519 signature
// by the published key; then the claims: integer exp after now, integer nbf (if present) and
// iat not after now, iss the issuer or a previous one, non-empty string jti and sid; aud (a
// string or an array of strings), client_id (a string), auth_time (an integer) and amr (an
// array of strings) each absent or of that shape; a string token_type that the typ allows
// (refresh only JWT, access only at+jwt, or JWT from a previous issuer); token_type equal to
// want (else ErrWrongType), integer user_id > 0 (else ErrNoUser).
func reference(raw string, want token.Type, pub ed25519.PublicKey, now time.Time) judgement {
	bad := func(why string) judgement { return judgement{verdict: invalid, why: why} }
	if len(raw) > maxTokenSize {
		return bad("too large")
	}
	segs := strings.Split(raw, ".")
	if len(segs) != 3 {
		return bad("not three segments")
	}
	var parts [3][]byte
	for i, s := range segs {
		b, err := base64.RawURLEncoding.Strict().DecodeString(s)
		if err != nil || len(b) == 0 {
			return bad(fmt.Sprintf("segment %d not non-empty strict base64url", i+1))
		}
		parts[i] = b
	}
	h, ok := jsonObject(parts[0])
	if !ok {
		return bad("header not a JSON object")
	}
	for k := range h {
		if k != "alg" && k != "kid" && k != "typ" {
			return bad("header member " + k)
		}
	}
	if h["kid"] != fuzzKID || h["alg"] != token.EdDSA || (h["typ"] != "JWT" && h["typ"] != "at+jwt") {
		return bad("header kid, alg or typ")
	}
	// jwx verifies over the header JSON as encoding/json hands it to UnmarshalJSON, without
	// surrounding whitespace, so such a header never verifies. Fail-closed, and Sign never
	// writes one.
	if len(bytes.Trim(parts[0], " \t\r\n")) != len(parts[0]) {
		return bad("header JSON has surrounding whitespace")
	}
	if !ed25519.Verify(pub, []byte(segs[0]+"."+segs[1]), parts[2]) {
		return bad("signature")
	}
	c, ok := jsonObject(parts[1])
	if !ok {
		return bad("payload not a JSON object")
	}
	var j judgement
	if j.exp, ok = integerClaim(c["exp"]); !ok {
		return bad("exp not an integer")
	}
	if now.Unix() >= j.exp {
		return judgement{verdict: invalid, why: "expired", exp: j.exp}
	}
	if v, present := c["nbf"]; present {
		j.hasNBF = true
		if j.nbf, ok = integerClaim(v); !ok {
			return bad("nbf not an integer")
		}
		if j.nbf > now.Unix() {
			return judgement{verdict: invalid, why: "nbf in the future", exp: j.exp, nbf: j.nbf, hasNBF: true}
		}
	}
	if j.iat, ok = integerClaim(c["iat"]); !ok {
		return bad("iat not an integer")
	}
	if j.iat > now.Unix() {
		return judgement{verdict: invalid, why: "iat in the future", exp: j.exp, nbf: j.nbf, iat: j.iat, hasNBF: j.hasNBF}
	}
	previous := c["iss"] == fuzzIssuer
	if c["iss"] != fuzzNewIssuer && !previous {
		return bad("iss")
	}
	if s, _ := c["jti"].(string); s == "" {
		return bad("jti")
	}
	if s, _ := c["sid"].(string); s == "" {
		return bad("sid")
	}
	if why := badOptionalClaim(c); why != "" {
		return bad(why)
	}
	typ, ok := c["token_type"].(string)
	if !ok {
		return bad("token_type not a string")
	}
	switch {
	case typ == "refresh" && h["typ"] != "JWT":
		return bad("refresh token with typ " + fmt.Sprint(h["typ"]))
	case typ == "access" && h["typ"] != "at+jwt" && !(h["typ"] == "JWT" && previous):
		return bad("access token with typ JWT from the current issuer")
	}
	if token.Type(typ) != want {
		j.verdict, j.why = wrongType, "token_type "+typ
		return j
	}
	if uid, ok := integerClaim(c["user_id"]); !ok || uid <= 0 {
		j.verdict, j.why = noUser, "user_id"
		return j
	}
	j.verdict, j.why = accepted, "valid"
	return j
}

// badOptionalClaim says which of aud, client_id, auth_time and amr is present with the wrong
// shape, if any.
func badOptionalClaim(c map[string]any) string {
	strs := func(v any) bool {
		a, ok := v.([]any)
		for _, e := range a {
			if _, isStr := e.(string); !isStr {
				return false
			}
		}
		return ok
	}
	if v, ok := c["aud"]; ok {
		if _, isStr := v.(string); !isStr && !strs(v) {
			return "aud"
		}
	}
	if v, ok := c["client_id"]; ok {
		if _, isStr := v.(string); !isStr {
			return "client_id"
		}
	}
	if v, ok := c["auth_time"]; ok {
		if t, isInt := integerClaim(v); !isInt || t > lastSafeUnix {
			return "auth_time"
		}
	}
	if v, ok := c["amr"]; ok && !strs(v) {
		return "amr"
	}
	return ""
}

// checkParse runs Parse on raw and holds it to the reference and to the claims it returns.
func checkParse(t *testing.T, m *token.Manager, pub ed25519.PublicKey, raw string, want token.Type) {
	t.Helper()
	c, err := m.Parse(raw, want)
	got := classify(err)
	if got < 0 {
		t.Fatalf("Parse(%q) error %v wraps none of ErrInvalid, ErrWrongType, ErrNoUser", raw, err)
	}
	j := reference(raw, want, pub, fuzzNow)
	if got != j.verdict {
		if got == invalid && j.exp > lastSafeUnix {
			return // an exp past the year 292277026596 may be refused as absurd
		}
		t.Fatalf("Parse(%q, %s) = %s (%v), reference says %s (%s)", raw, want, got, err, j.verdict, j.why)
	}
	if err != nil {
		if !reflect.DeepEqual(c, token.Claims{}) {
			t.Fatalf("Parse(%q) failed (%v) but returned claims %+v", raw, err, c)
		}
		return
	}

	// Accepted: the claims are sane and are the payload's.
	if c.Type != want || c.UserID <= 0 || c.SessionID == "" || c.ID == "" {
		t.Fatalf("Parse(%q) accepted insane claims %+v", raw, c)
	}
	if !c.ExpiresAt.After(fuzzNow) || c.IssuedAt.After(fuzzNow) || c.ExpiresAt.Unix() != j.exp || c.IssuedAt.Unix() != j.iat {
		t.Fatalf("Parse(%q) accepted times iat %v exp %v at %v (payload iat %d exp %d)", raw, c.IssuedAt, c.ExpiresAt, fuzzNow, j.iat, j.exp)
	}
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[1])
	p, _ := jsonObject(payload)
	if uid, _ := integerClaim(p["user_id"]); uid != c.UserID || p["sid"] != c.SessionID || p["jti"] != c.ID || p["token_type"] != string(c.Type) {
		t.Fatalf("Parse(%q) = %+v, payload says %s", raw, c, payload)
	}
	// Deterministic, and the other type is refused as such.
	if again, err := m.Parse(raw, want); err != nil || !reflect.DeepEqual(again, c) {
		t.Fatalf("second Parse(%q) = %+v, %v; first %+v", raw, again, err, c)
	}
	other := token.Refresh
	if want == token.Refresh {
		other = token.Access
	}
	if _, err := m.Parse(raw, other); !errors.Is(err, token.ErrWrongType) {
		t.Fatalf("Parse(%q, %s) = %v, want ErrWrongType", raw, other, err)
	}
}

func tokenType(refresh bool) token.Type {
	if refresh {
		return token.Refresh
	}
	return token.Access
}

// FuzzParse feeds raw strings to Parse: it never panics, agrees with the reference, and
// whatever it accepts re-verifies and has sane claims.
func FuzzParse(f *testing.F) {
	m, priv := fuzzManager(f)
	pub := publishedKey(f, m)
	for _, typ := range []token.Type{token.Access, token.Refresh} {
		tok, err := m.Sign(token.Claims{Type: typ, UserID: 7, SessionID: "sess", IssuedAt: fuzzNow.Add(-time.Minute), ExpiresAt: fuzzNow.Add(time.Hour)})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok, typ == token.Refresh)
		f.Add(tok, typ != token.Refresh)
		f.Add(tok+".", false)
		f.Add(strings.ToUpper(tok[:1])+tok[1:], false)
	}
	good := signRaw(priv, goodHeader(), goodClaims(token.Access))
	segs := strings.Split(good, ".")
	for _, s := range []string{
		good,
		"", ".", "..", "...", "a.b.c", "e30.e30.e30", "e30.e30.", segs[0] + "." + segs[1],
		segs[0] + "=." + segs[1] + "." + segs[2],
		b64u([]byte(`{"alg":"none","kid":"fuzz","typ":"JWT"}`)) + "." + segs[1] + ".",
		b64u([]byte(`{"alg":"HS256","kid":"fuzz","typ":"JWT"}`)) + "." + segs[1] + "." + segs[2],
		b64u([]byte(`{"alg":"EdDSA","kid":"fuzz","typ":"JWT","jku":"http://127.0.0.1/"}`)) + "." + segs[1] + "." + segs[2],
		signRaw(priv, goodHeader(), goodClaims(token.Refresh)),
		signRaw(priv, []byte(`{"alg":"EdDSA","kid":"fuzz","typ":"at+jwt"}`), goodClaims(token.Refresh)),
		signRaw(priv, []byte(`{"alg":"EdDSA","kid":"fuzz","typ":"at+jwt"}`), goodClaims(token.Access)),
		signRaw(priv, goodHeader(), []byte(`{"token_type":"access","exp":9223372036854775807,"iat":1,"jti":"j","user_id":1,"iss":"authapi","sid":"s"}`)),
		signRaw(priv, goodHeader(), []byte(`{"token_type":"access","exp":1e10,"iat":1,"jti":"j","user_id":1,"iss":"authapi","sid":"s"}`)),
		signRaw(priv, goodHeader(), []byte(`{"token_type":"access","exp":1900000000,"iat":1,"jti":"j","user_id":"1","iss":"authapi","sid":"s"}`)),
		strings.Repeat("A", maxTokenSize+1),
	} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, raw string, refresh bool) {
		checkParse(t, m, pub, raw, tokenType(refresh))
	})
}

// FuzzParseSigned fuzzes the decoded header and payload and signs them with the Manager's own
// key, so that the claims checks behind the signature are explored, not just the signature.
func FuzzParseSigned(f *testing.F) {
	m, priv := fuzzManager(f)
	pub := publishedKey(f, m)
	h := goodHeader()
	for _, p := range [][]byte{
		goodClaims(token.Access), goodClaims(token.Refresh),
		[]byte(`{}`), []byte(`[]`), []byte(`null`), []byte(`{"exp":1}`),
		[]byte(`{"token_type":"access","exp":1900000000,"iat":1700000000,"nbf":1700000000,"jti":"j","user_id":1,"iss":"authapi","sid":"s"}`),
		[]byte(`{"token_type":"access","exp":1900000000,"iat":1700000000,"jti":"j","user_id":1.0,"iss":"authapi","sid":"s"}`),
		[]byte(`{"token_type":"access","exp":"1900000000","iat":1700000000,"jti":"j","user_id":1,"iss":"authapi","sid":"s"}`),
		[]byte(`{"token_type":"access","exp":1900000000,"iat":1700000000,"jti":"j","user_id":1,"iss":"authapi","sid":"s","user_id":0}`),
		[]byte(`{"token_type":"access","exp":-9223372036854775808,"iat":1700000000,"jti":"j","user_id":1,"iss":"authapi","sid":"s"}`),
		[]byte(`{"token_type":"access","exp":1900000000,"iat":1700000000,"jti":"j","user_id":9223372036854775808,"iss":"authapi","sid":"s"}`),
		append(goodClaims(token.Access), ' ', '{', '}'),
	} {
		f.Add(h, p, false)
	}
	for _, p := range []string{
		`{"token_type":"access","exp":1900000000,"iat":1700000000,"jti":"j","user_id":1,"iss":"https://auth.fuzz.example","sid":"s","aud":["a","b"],"client_id":"authapi","auth_time":1700000000,"amr":["pwd"]}`,
		`{"token_type":"access","exp":1900000000,"iat":1700000000,"jti":"j","user_id":1,"iss":"https://auth.fuzz.example","sid":"s","aud":1}`,
		`{"token_type":"access","exp":1900000000,"iat":1700000000,"jti":"j","user_id":1,"iss":"authapi","sid":"s","amr":"pwd","auth_time":1.5}`,
		`{"token_type":"refresh","exp":1900000000,"iat":1700000000,"jti":"j","user_id":1,"iss":"https://auth.fuzz.example","sid":"s","client_id":7}`,
	} {
		f.Add([]byte(`{"alg":"EdDSA","kid":"fuzz","typ":"at+jwt"}`), []byte(p), false)
		f.Add(h, []byte(p), true)
	}
	for _, hdr := range []string{`{"alg":"EdDSA","kid":"fuzz"}`, `{"alg":"EdDSA","kid":"fuzz","typ":"JWT","crit":["exp"]}`, `{"alg":"EdDSA","kid":"fuzz","typ":"JWT","b64":false}`, `{"alg":"EdDSA","kid":"fuzz","typ":"JWT"} `, `{"kid":"fuzz","typ":"JWT","alg":"EdDSA","alg":"none"}`} {
		f.Add([]byte(hdr), goodClaims(token.Access), false)
	}
	f.Fuzz(func(t *testing.T, header, payload []byte, refresh bool) {
		checkParse(t, m, pub, signRaw(priv, header, payload), tokenType(refresh))
	})
}

// TestParseNumericDateOverflow: exp, nbf and iat beyond what time.Unix represents must be
// judged as the far-future dates they are.
func TestParseNumericDateOverflow(t *testing.T) {
	m, priv := fuzzManager(t)
	claims := func(exp, iat int64, nbf string) []byte {
		return fmt.Appendf(nil, `{"token_type":"access","exp":%d,"iat":%d,%s"jti":"j","user_id":1,"iss":"authapi","sid":"s"}`, exp, iat, nbf)
	}
	exp, iat := fuzzNow.Add(time.Hour).Unix(), fuzzNow.Unix()
	for _, tc := range []struct {
		name    string
		payload []byte
		valid   bool
	}{
		{"iat 2^63-1 is in the future", claims(exp, math.MaxInt64, ""), false},
		{"iat just past the time.Unix range is in the future", claims(exp, lastSafeUnix+1, ""), false},
		{"nbf 2^63-1 is in the future", claims(exp, iat, `"nbf":9223372036854775807,`), false},
		{"iat at the end of the time.Unix range is in the future", claims(exp, lastSafeUnix, ""), false},
		{"iat now is fine", claims(exp, iat, ""), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Parse(signRaw(priv, goodHeader(), tc.payload), token.Access)
			if (err == nil) != tc.valid {
				t.Errorf("Parse(%s) = %v, want valid %v", tc.payload, err, tc.valid)
			}
		})
	}
}

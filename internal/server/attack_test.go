package server_test

// Attack tests: forged, tampered, confused and malformed tokens sent through the real HTTP
// server. Every one must be refused with 401 and the spec's Error body (token_not_valid unless
// a case says otherwise), never a 500. Tokens are built by hand with the standard library only;
// where a case needs a validly signed token with bad claims, it is signed with the server's own
// private key, read from the store, so the refusal is the server's and not a bad signature's.

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"hash"
	"io"
	"maps"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/keyring"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/ssf"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/testclock"
	"github.com/authapi/authapi/internal/token"
)

// msgWrongType is token.ErrWrongType's text, which clients see as the detail.
const msgWrongType = "Token has wrong type"

// newKeyedEnv is newTestEnv with a signing key chosen by the caller, stored before the server
// loads its keys, and the refresh rate limit off (the attacks send many refreshes from one
// IP; the limit is not what they test). It takes testing.TB so fuzz targets can use it.
func newKeyedEnv(tb testing.TB, backend string, key token.Key, opts ...func(*server.Config)) *testEnv {
	tb.Helper()
	dsn := storetest.DSN(tb, backend)
	st, err := store.Open(dsn)
	if err != nil {
		tb.Fatalf("open store: %v", err)
	}
	err = st.Migrate(context.Background())
	if err == nil {
		err = st.CreateSigningKey(context.Background(), store.SigningKey{ID: key.ID, Algorithm: key.Algorithm, Private: key.Private, CreatedAt: key.CreatedAt})
	}
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tb.Fatalf("store signing key: %v", err)
	}
	e := newTestEnv(tb, backend, withDSN(dsn), withoutCache(),
		withConfig(func(c *server.Config) { c.RefreshesPerIPPerMinute = -1 }), withConfig(opts...))
	infos, err := e.keys.List(context.Background())
	if err != nil || len(infos) != 1 || infos[0].ID != key.ID || !e.tokens.HasKey(key.ID) {
		tb.Fatalf("signing keys: got %+v (%v), want only %q", infos, err, key.ID)
	}
	return e
}

var allAlgorithms = []string{token.EdDSA, token.ES256, token.RS256}

// forEachAlgBackend runs fn on a fresh server per signing algorithm and backend.
func forEachAlgBackend(t *testing.T, algs []string, fn func(t *testing.T, e *testEnv)) {
	t.Helper()
	for _, alg := range algs {
		for _, backend := range storetest.Backends {
			t.Run(alg+"/"+backend, func(t *testing.T) {
				t.Parallel()
				key, err := token.GenerateKey(alg, time.Now().UTC().Truncate(time.Second))
				if err != nil {
					t.Fatal(err)
				}
				fn(t, newKeyedEnv(t, backend, key))
			})
		}
	}
}

// Hand-made JWS, standard library only.

func b64url(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// seg encodes one token segment: []byte as is, anything else as JSON.
func seg(tb testing.TB, v any) string {
	tb.Helper()
	if b, ok := v.([]byte); ok {
		return b64url(b)
	}
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b64url(b)
}

// unsignedToken joins header, claims and a signature of the caller's choosing.
func unsignedToken(tb testing.TB, header, claims any, sig []byte) string {
	tb.Helper()
	return seg(tb, header) + "." + seg(tb, claims) + "." + b64url(sig)
}

// hmacToken signs header.claims with HMAC, the way a verifier confused into HS* would check it.
func hmacToken(tb testing.TB, header, claims any, h func() hash.Hash, secret []byte) string {
	tb.Helper()
	input := seg(tb, header) + "." + seg(tb, claims)
	mac := hmac.New(h, secret)
	mac.Write([]byte(input))
	return input + "." + b64url(mac.Sum(nil))
}

// jwsKey is a private key that signs JWS input as its algorithm requires.
type jwsKey struct {
	alg, kid string
	priv     crypto.Signer
}

// header is the header Sign writes for an access token (typ at+jwt).
func (k jwsKey) header() map[string]any {
	return map[string]any{"alg": k.alg, "kid": k.kid, "typ": "at+jwt"}
}

// headerFor is the header Sign writes for a token with claims: typ JWT for a refresh token.
func (k jwsKey) headerFor(claims map[string]any) map[string]any {
	if claims["token_type"] == "refresh" {
		return claimsWith(k.header(), "typ", "JWT")
	}
	return k.header()
}

func (k jwsKey) sign(tb testing.TB, input string) []byte {
	tb.Helper()
	sum := sha256.Sum256([]byte(input))
	switch p := k.priv.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(p, []byte(input))
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, p, sum[:])
		if err != nil {
			tb.Fatal(err)
		}
		sig := make([]byte, 64) // JWS ES256 is r || s, 32 bytes each, not ASN.1
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
		return sig
	case *rsa.PrivateKey:
		sig, err := rsa.SignPKCS1v15(nil, p, crypto.SHA256, sum[:])
		if err != nil {
			tb.Fatal(err)
		}
		return sig
	}
	tb.Fatalf("jwsKey: unsupported key %T", k.priv)
	return nil
}

// forge signs header.claims with k, whatever the header says.
func (k jwsKey) forge(tb testing.TB, header, claims any) string {
	tb.Helper()
	input := seg(tb, header) + "." + seg(tb, claims)
	return input + "." + b64url(k.sign(tb, input))
}

// generateJWSKey makes an attacker's key for alg.
func generateJWSKey(t *testing.T, alg, kid string) jwsKey {
	t.Helper()
	var priv crypto.Signer
	var err error
	switch alg {
	case token.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case token.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case token.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		t.Fatalf("unknown alg %q", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return jwsKey{alg: alg, kid: kid, priv: priv}
}

// jwkFields are the members of the JWKs the token package writes.
type jwkFields struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	D   string `json:"d"`
	X   string `json:"x"`
	Y   string `json:"y"`
	N   string `json:"n"`
	E   string `json:"e"`
	P   string `json:"p"`
	Q   string `json:"q"`
}

func unb64(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		tb.Fatalf("JWK member %q: %v", s, err)
	}
	return b
}

func bigInt(tb testing.TB, s string) *big.Int { return new(big.Int).SetBytes(unb64(tb, s)) }

// publicFromJWK reads a public JWK (OKP Ed25519, EC P-256 or RSA).
func publicFromJWK(tb testing.TB, j jwkFields) crypto.PublicKey {
	tb.Helper()
	switch j.Kty {
	case "OKP":
		return ed25519.PublicKey(unb64(tb, j.X))
	case "EC":
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, unb64(tb, j.X)...), unb64(tb, j.Y)...))
		if err != nil {
			tb.Fatal(err)
		}
		return pub
	case "RSA":
		return &rsa.PublicKey{N: bigInt(tb, j.N), E: int(bigInt(tb, j.E).Int64())}
	}
	tb.Fatalf("unknown kty %q", j.Kty)
	return nil
}

// publicJWK renders pub as a JWK, as an attacker would embed or host it.
func publicJWK(tb testing.TB, pub crypto.PublicKey, kid string) map[string]any {
	tb.Helper()
	var m map[string]any
	switch p := pub.(type) {
	case ed25519.PublicKey:
		m = map[string]any{"kty": "OKP", "crv": "Ed25519", "x": b64url(p), "alg": token.EdDSA}
	case *ecdsa.PublicKey:
		b, err := p.Bytes()
		if err != nil {
			tb.Fatal(err)
		}
		m = map[string]any{"kty": "EC", "crv": "P-256", "x": b64url(b[1:33]), "y": b64url(b[33:]), "alg": token.ES256}
	case *rsa.PublicKey:
		m = map[string]any{"kty": "RSA", "n": b64url(p.N.Bytes()), "e": b64url(big.NewInt(int64(p.E)).Bytes()), "alg": token.RS256}
	default:
		tb.Fatalf("publicJWK: unsupported key %T", pub)
	}
	m["kid"], m["use"] = kid, "sig"
	return m
}

// serverKey reads the server's private key from the store and parses its JWK by hand.
func serverKey(tb testing.TB, e *testEnv) jwsKey {
	tb.Helper()
	stored, err := e.store.SigningKeys(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	if len(stored) != 1 {
		tb.Fatalf("store holds %d signing keys, want 1", len(stored))
	}
	k := stored[0]
	var j jwkFields
	if err := json.Unmarshal(k.Private, &j); err != nil {
		tb.Fatalf("stored key %q is not a plaintext JWK: %v", k.ID, err)
	}
	key := jwsKey{alg: k.Algorithm, kid: k.ID}
	switch j.Kty {
	case "OKP":
		key.priv = ed25519.NewKeyFromSeed(unb64(tb, j.D))
	case "EC":
		priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), unb64(tb, j.D))
		if err != nil {
			tb.Fatal(err)
		}
		key.priv = priv
	case "RSA":
		priv := &rsa.PrivateKey{
			PublicKey: rsa.PublicKey{N: bigInt(tb, j.N), E: int(bigInt(tb, j.E).Int64())},
			D:         bigInt(tb, j.D),
			Primes:    []*big.Int{bigInt(tb, j.P), bigInt(tb, j.Q)},
		}
		if err := priv.Validate(); err != nil {
			tb.Fatal(err)
		}
		priv.Precompute()
		key.priv = priv
	default:
		tb.Fatalf("stored key %q: unknown kty %q", k.ID, j.Kty)
	}
	return key
}

// claimsOf decodes a token's payload, keeping numbers exact.
func claimsOf(tb testing.TB, tok string) map[string]any {
	tb.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		tb.Fatalf("token has %d segments", len(parts))
	}
	dec := json.NewDecoder(bytes.NewReader(unb64(tb, parts[1])))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		tb.Fatal(err)
	}
	return m
}

// absent, as a value for claimsWith, removes the member.
type absentT struct{}

var absent absentT

// claimsWith copies m with members set (or removed with absent) by key-value pairs.
func claimsWith(m map[string]any, kv ...any) map[string]any {
	out := maps.Clone(m)
	for i := 0; i+1 < len(kv); i += 2 {
		k := kv[i].(string)
		if _, del := kv[i+1].(absentT); del {
			delete(out, k)
		} else {
			out[k] = kv[i+1]
		}
	}
	return out
}

func unix(t time.Time) json.Number { return json.Number(fmt.Sprint(t.Unix())) }

// Sending attacks.

// sinks are the places a token can be presented.
type sinks uint8

const (
	viaBearer  sinks = 1 << iota // Authorization: Bearer on GET /api/v1/
	viaVerify                    // body of POST /api/v1/auth/token/verify/
	viaRefresh                   // body of POST /api/v1/auth/token/refresh/
	viaLogout                    // body of POST /api/v1/auth/logout/, by the victim's own user

	asAccess  = viaBearer | viaVerify
	asRefresh = viaVerify | viaRefresh | viaLogout
	anywhere  = asAccess | asRefresh
)

var sinkNames = map[sinks]string{viaBearer: "bearer", viaVerify: "verify", viaRefresh: "refresh", viaLogout: "logout"}

// attack is one token and where to present it.
type attack struct {
	name   string
	token  string
	via    sinks
	code   string        // default token_not_valid
	detail string        // checked when set
	within time.Duration // each answer must come this fast, when set
	after  func(t *testing.T)
}

// attackFixture is a server with two users and the tokens the attacks start from.
type attackFixture struct {
	e          *testEnv
	key        jwsKey // the server's own key, from the store
	alice, bob store.User
	victim     client.TokenPair // alice's session under attack
	caller     string           // Authorization of another alice session, for verify and logout
	bobPair    client.TokenPair
	access     map[string]any // claims of victim.Access
	refresh    map[string]any // claims of victim.Refresh
	jwks       []byte         // GET /.well-known/jwks.json
}

func newAttackFixture(t *testing.T, e *testEnv) *attackFixture {
	t.Helper()
	fx := &attackFixture{e: e, key: serverKey(t, e)}
	fx.alice = e.mustUser(t, "alice", regular)
	fx.bob = e.mustUser(t, "bob", regular)
	fx.victim = e.mustLogin(t, "alice")
	fx.caller = "Bearer " + e.mustLogin(t, "alice").Access
	fx.bobPair = e.mustLogin(t, "bob")
	fx.access, fx.refresh = claimsOf(t, fx.victim.Access), claimsOf(t, fx.victim.Refresh)
	r, body := e.do(t, http.MethodGet, "/.well-known/jwks.json", "", "")
	if r.StatusCode != http.StatusOK {
		t.Fatalf("jwks: %d %s", r.StatusCode, body)
	}
	fx.jwks = body

	// Controls: tokens hand-signed with the key read from the store are accepted, so every
	// refusal below is about the attack and not about how these tests sign.
	control := e.mustLogin(t, "alice")
	access := fx.key.forge(t, fx.key.header(), claimsOf(t, control.Access))
	if r, body := fx.send(t, viaBearer, access); r.StatusCode != http.StatusOK {
		t.Fatalf("control: hand-signed access token as bearer: %d %s", r.StatusCode, body)
	}
	if r, body := fx.send(t, viaVerify, access); r.StatusCode != http.StatusOK {
		t.Fatalf("control: hand-signed access token verify: %d %s", r.StatusCode, body)
	}
	refresh := fx.key.forge(t, fx.key.headerFor(claimsOf(t, control.Refresh)), claimsOf(t, control.Refresh))
	if r, body := fx.send(t, viaRefresh, refresh); r.StatusCode != http.StatusOK {
		t.Fatalf("control: hand-signed refresh token: %d %s", r.StatusCode, body)
	}
	return fx
}

func jsonField(name, value string) string {
	b, _ := json.Marshal(map[string]string{name: value})
	return string(b)
}

func (fx *attackFixture) send(t *testing.T, s sinks, tok string) (*http.Response, []byte) {
	t.Helper()
	switch s {
	case viaBearer:
		return fx.e.do(t, http.MethodGet, "/api/v1/", "", "", "Authorization", "Bearer "+tok)
	case viaVerify:
		return fx.e.do(t, http.MethodPost, "/api/v1/auth/token/verify/", "application/json", jsonField("token", tok), "Authorization", fx.caller)
	case viaRefresh:
		return fx.e.do(t, http.MethodPost, "/api/v1/auth/token/refresh/", "application/json", jsonField("refresh", tok))
	case viaLogout:
		return fx.e.do(t, http.MethodPost, "/api/v1/auth/logout/", "application/json", jsonField("refresh", tok), "Authorization", fx.caller)
	}
	t.Fatalf("unknown sink %d", s)
	return nil, nil
}

// run presents every attack at each of its sinks and then checks the victim's session
// survived them all.
func (fx *attackFixture) run(t *testing.T, attacks []attack) {
	t.Helper()
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			via, code := a.via, a.code
			if via == 0 {
				via = anywhere
			}
			if code == "" {
				code = "token_not_valid"
			}
			for _, s := range []sinks{viaBearer, viaVerify, viaRefresh, viaLogout} {
				if via&s == 0 {
					continue
				}
				start := time.Now()
				r, body := fx.send(t, s, a.token)
				took := time.Since(start)
				what := sinkNames[s]
				got := wantError(t, what, r.StatusCode, body, http.StatusUnauthorized, code)
				if a.detail != "" && got.Detail != a.detail {
					t.Errorf("%s: detail %q, want %q", what, got.Detail, a.detail)
				}
				if h := r.Header.Get("WWW-Authenticate"); h == "" {
					t.Errorf("%s: 401 without WWW-Authenticate", what)
				}
				if a.within > 0 && took > a.within {
					t.Errorf("%s: answered in %v, want under %v", what, took, a.within)
				}
			}
			if a.after != nil {
				a.after(t)
			}
		})
	}
	t.Run("victim session intact", func(t *testing.T) {
		if r, body := fx.send(t, viaBearer, fx.victim.Access); r.StatusCode != http.StatusOK {
			t.Errorf("victim's access token after the attacks: %d %s", r.StatusCode, body)
		}
		if r, body := fx.send(t, viaVerify, fx.victim.Refresh); r.StatusCode != http.StatusOK {
			t.Errorf("victim's refresh token after the attacks: %d %s", r.StatusCode, body)
		}
	})
}

// both makes an access-token attack and its refresh-token twin from one recipe.
func (fx *attackFixture) both(name string, build func(claims map[string]any) string) []attack {
	return []attack{
		{name: name + " (access)", token: build(fx.access), via: asAccess},
		{name: name + " (refresh)", token: build(fx.refresh), via: asRefresh},
	}
}

func segments(tok string) []string { return strings.Split(tok, ".") }

// Attacks.

func TestAttackAlgNone(t *testing.T) {
	forEachAlgBackend(t, allAlgorithms, func(t *testing.T, e *testEnv) {
		fx := newAttackFixture(t, e)
		var attacks []attack
		for _, alg := range []string{"none", "None", "NONE", "nOnE"} {
			for _, h := range []struct {
				name   string
				header map[string]any
			}{
				{"kid", map[string]any{"alg": alg, "kid": fx.key.kid, "typ": "JWT"}},
				{"bare", map[string]any{"alg": alg}},
			} {
				for _, sig := range []struct {
					name string
					sig  func(real string) []byte
				}{
					{"empty signature", func(string) []byte { return nil }},
					{"junk signature", func(string) []byte { return []byte("junk") }},
					{"real signature", func(real string) []byte { return unb64(t, segments(real)[2]) }},
				} {
					name := fmt.Sprintf("%s %s header %s", alg, h.name, sig.name)
					attacks = append(attacks,
						attack{name: name + " (access)", token: unsignedToken(t, h.header, fx.access, sig.sig(fx.victim.Access)), via: asAccess},
						attack{name: name + " (refresh)", token: unsignedToken(t, h.header, fx.refresh, sig.sig(fx.victim.Refresh)), via: asRefresh},
					)
				}
			}
		}
		fx.run(t, attacks)
	})
}

func TestAttackSignatureTampering(t *testing.T) {
	forEachAlgBackend(t, allAlgorithms, func(t *testing.T, e *testEnv) {
		fx := newAttackFixture(t, e)
		in := segments(fx.victim.Access)
		rin := segments(fx.victim.Refresh)
		sig := unb64(t, in[2])
		flipped := bytes.Clone(sig)
		flipped[len(flipped)/2] ^= 0x01
		keepSig := func(tok string, claims map[string]any) string {
			s := segments(tok)
			return s[0] + "." + seg(t, claims) + "." + s[2]
		}
		keepSigHeader := func(tok string, header map[string]any) string {
			s := segments(tok)
			return seg(t, header) + "." + s[1] + "." + s[2]
		}
		bobSID := claimsOf(t, fx.bobPair.Access)["sid"]
		attacks := []attack{
			{name: "signature stripped", token: in[0] + "." + in[1] + ".", via: asAccess},
			{name: "signature stripped (refresh)", token: rin[0] + "." + rin[1] + ".", via: asRefresh},
			{name: "signature truncated", token: in[0] + "." + in[1] + "." + b64url(sig[:len(sig)-1]), via: asAccess},
			{name: "signature extended", token: in[0] + "." + in[1] + "." + b64url(append(bytes.Clone(sig), 0)), via: asAccess},
			{name: "signature bit flipped", token: in[0] + "." + in[1] + "." + b64url(flipped), via: asAccess},
			{name: "signature zeroed", token: in[0] + "." + in[1] + "." + b64url(make([]byte, len(sig))), via: asAccess},
			{name: "signature doubled", token: in[0] + "." + in[1] + "." + b64url(append(bytes.Clone(sig), sig...)), via: asAccess},
			{name: "signature of the refresh token", token: in[0] + "." + in[1] + "." + rin[2], via: asAccess},
			{name: "signature of bob's token", token: in[0] + "." + in[1] + "." + segments(fx.bobPair.Access)[2], via: asAccess},
			{name: "header kid removed", token: keepSigHeader(fx.victim.Access, map[string]any{"alg": fx.key.alg, "typ": "at+jwt"}), via: asAccess},
			{name: "header reordered", token: b64url([]byte(`{"typ":"at+jwt","kid":"`+fx.key.kid+`","alg":"`+fx.key.alg+`"}`)) + "." + in[1] + "." + in[2], via: asAccess},
			{name: "header with spaces", token: b64url([]byte(`{"alg": "`+fx.key.alg+`", "kid": "`+fx.key.kid+`", "typ": "at+jwt"}`)) + "." + in[1] + "." + in[2], via: asAccess},
			{name: "header typ JWT, the refresh token's", token: keepSigHeader(fx.victim.Access, claimsWith(fx.key.header(), "typ", "JWT")), via: asAccess},
			{name: "refresh header typ at+jwt", token: keepSigHeader(fx.victim.Refresh, fx.key.header()), via: asRefresh},
		}
		for _, other := range allAlgorithms {
			if other != fx.key.alg {
				attacks = append(attacks, attack{name: "header alg " + other, token: keepSigHeader(fx.victim.Access, claimsWith(fx.key.header(), "alg", other)), via: asAccess})
			}
		}
		for _, c := range []struct {
			name string
			kv   []any
		}{
			{"user_id of bob", []any{"user_id", fx.bob.ID, "sub", fmt.Sprint(fx.bob.ID)}},
			{"sid of bob's session", []any{"sid", bobSID}},
			{"user_id and sid of bob", []any{"user_id", fx.bob.ID, "sub", fmt.Sprint(fx.bob.ID), "sid", bobSID}},
			{"exp extended a year", []any{"exp", unix(fx.e.clock.Now().AddDate(1, 0, 0))}},
			{"iss changed", []any{"iss", "evil"}},
			{"jti changed", []any{"jti", "00000000000000000000000000000000"}},
		} {
			attacks = append(attacks,
				attack{name: "claims changed: " + c.name + " (access)", token: keepSig(fx.victim.Access, claimsWith(fx.access, c.kv...)), via: asAccess},
				attack{name: "claims changed: " + c.name + " (refresh)", token: keepSig(fx.victim.Refresh, claimsWith(fx.refresh, c.kv...)), via: asRefresh},
			)
		}
		attacks = append(attacks,
			attack{name: "claims changed: access flipped to refresh", token: keepSig(fx.victim.Access, claimsWith(fx.access, "token_type", "refresh")), via: asRefresh},
			attack{name: "claims changed: refresh flipped to access", token: keepSig(fx.victim.Refresh, claimsWith(fx.refresh, "token_type", "access")), via: asAccess},
			attack{name: "claims changed: refresh flipped to access, exp kept", token: keepSig(fx.victim.Refresh, claimsWith(fx.refresh, "token_type", "access")), via: asRefresh},
		)
		fx.run(t, attacks)
	})
}

// publicKeyForms are the spellings of the server's public key an HS* confusion attack tries
// as the HMAC secret.
func publicKeyForms(t *testing.T, fx *attackFixture) map[string][]byte {
	t.Helper()
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(fx.jwks, &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks: %v, %d keys: %s", err, len(set.Keys), fx.jwks)
	}
	var j jwkFields
	if err := json.Unmarshal(set.Keys[0], &j); err != nil {
		t.Fatal(err)
	}
	if j.Kid != fx.key.kid || j.D != "" {
		t.Fatalf("jwks key: kid %q (want %q), has d: %v", j.Kid, fx.key.kid, j.D != "")
	}
	pub := publicFromJWK(t, j)
	if !fx.key.priv.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(pub) {
		t.Fatal("jwks key is not the stored key's public half")
	}
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	forms := map[string][]byte{
		"SPKI DER":                 der,
		"SPKI PEM":                 pemBytes,
		"SPKI PEM without newline": bytes.TrimRight(pemBytes, "\n"),
		"JWK JSON as served":       set.Keys[0],
		"JWKS document":            fx.jwks,
		"kid":                      []byte(fx.key.kid),
	}
	if compact, err := json.Marshal(publicJWK(t, pub, fx.key.kid)); err == nil {
		forms["JWK JSON re-encoded"] = compact
	}
	switch p := pub.(type) {
	case ed25519.PublicKey:
		forms["raw Ed25519 public key"] = p
		forms["raw Ed25519 public key, base64url"] = []byte(j.X)
	case *ecdsa.PublicKey:
		b, _ := p.Bytes()
		forms["raw uncompressed point"] = b
	case *rsa.PublicKey:
		forms["raw modulus"] = p.N.Bytes()
		forms["PKCS#1 PEM"] = pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(p)})
	}
	return forms
}

func TestAttackHMACKeyConfusion(t *testing.T) {
	forEachAlgBackend(t, allAlgorithms, func(t *testing.T, e *testEnv) {
		fx := newAttackFixture(t, e)
		secrets := publicKeyForms(t, fx)
		secrets["empty key"] = []byte{}
		secrets[`"secret"`] = []byte("secret")
		secrets[`"changeme"`] = []byte("changeme")
		secrets["issuer"] = []byte(fx.access["iss"].(string))
		var attacks []attack
		for name, secret := range secrets {
			for _, hs := range []struct {
				alg string
				h   func() hash.Hash
			}{{"HS256", sha256.New}, {"HS384", sha512.New384}, {"HS512", sha512.New}} {
				header := claimsWith(fx.key.header(), "alg", hs.alg)
				attacks = append(attacks, attack{
					name: hs.alg + " with " + name + " (access)", token: hmacToken(t, header, fx.access, hs.h, secret), via: asAccess,
				})
				if hs.alg == "HS256" {
					attacks = append(attacks,
						attack{name: hs.alg + " with " + name + " (refresh)", token: hmacToken(t, header, fx.refresh, hs.h, secret), via: asRefresh},
						// The server's own alg in the header, an HMAC in the signature.
						attack{name: fx.key.alg + " header, HMAC-SHA256 with " + name, token: hmacToken(t, fx.key.header(), fx.access, hs.h, secret), via: asAccess},
					)
				}
			}
		}
		fx.run(t, attacks)
	})
}

// keyHost is an attacker's web server for jku and x5u; it counts every request it gets.
type keyHost struct {
	url  string
	hits atomic.Int64
}

func newKeyHost(t *testing.T, jwks, certPEM []byte) *keyHost {
	t.Helper()
	h := &keyHost{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.hits.Add(1)
		if strings.HasSuffix(r.URL.Path, ".pem") {
			w.Header().Set("Content-Type", "application/x-pem-file")
			w.Write(certPEM)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	}))
	t.Cleanup(ts.Close)
	h.url = ts.URL
	return h
}

// selfSigned is a certificate for k's public key, signed by k, DER-encoded.
func selfSigned(t *testing.T, k jwsKey) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "authapi"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.priv.Public(), k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestAttackEmbeddedAndRemoteKeys(t *testing.T) {
	forEachAlgBackend(t, allAlgorithms, func(t *testing.T, e *testEnv) {
		fx := newAttackFixture(t, e)
		evil := generateJWSKey(t, fx.key.alg, "attacker")
		evilAsServer := jwsKey{alg: evil.alg, kid: fx.key.kid, priv: evil.priv}
		evilJWK := publicJWK(t, evil.priv.Public(), evil.kid)
		evilJWKAsServer := publicJWK(t, evil.priv.Public(), fx.key.kid)
		jwks, _ := json.Marshal(map[string]any{"keys": []any{evilJWK, evilJWKAsServer}})
		cert := selfSigned(t, evil)
		host := newKeyHost(t, jwks, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert}))
		noFetch := func(t *testing.T) {
			t.Helper()
			if n := host.hits.Load(); n != 0 {
				t.Fatalf("the server fetched attacker-supplied key material %d times", n)
			}
		}
		x5c := []string{base64.StdEncoding.EncodeToString(cert)}
		var attacks []attack
		for _, k := range []jwsKey{evil, evilAsServer} {
			who := "attacker kid"
			if k.kid == fx.key.kid {
				who = "server kid"
			}
			for _, h := range []struct {
				name    string
				members []any // key-value pairs added to the header
			}{
				{"embedded jwk", []any{"jwk", evilJWK}},
				{"embedded jwk named as the server's", []any{"jwk", evilJWKAsServer}},
				{"jku", []any{"jku", host.url + "/.well-known/jwks.json"}},
				{"x5u", []any{"x5u", host.url + "/cert.pem"}},
				{"x5c", []any{"x5c", x5c}},
				{"jku and jwk", []any{"jku", host.url + "/jwks.json", "jwk", evilJWK}},
			} {
				header := claimsWith(k.header(), h.members...)
				attacks = append(attacks, attack{name: h.name + ", " + who, after: noFetch, token: k.forge(t, header, fx.access), via: asAccess})
				attacks = append(attacks, attack{name: h.name + ", " + who + " (refresh)", after: noFetch, token: k.forge(t, header, fx.refresh), via: asRefresh})
			}
			attacks = append(attacks, attack{name: "signed by the attacker, " + who, token: k.forge(t, k.header(), fx.access), via: asAccess})
		}
		for _, h := range []map[string]any{
			{"alg": evil.alg, "typ": "JWT", "jwk": evilJWK},
			{"alg": evil.alg, "jku": host.url + "/jwks.json"},
			{"alg": evil.alg, "x5u": host.url + "/cert.pem"},
		} {
			attacks = append(attacks, attack{name: fmt.Sprintf("no kid, %v", headerMembers(h)), after: noFetch, token: evil.forge(t, h, fx.access), via: asAccess})
		}
		fx.run(t, attacks)
		noFetch(t)
	})
}

func headerMembers(m map[string]any) []string {
	var out []string
	for _, k := range []string{"alg", "kid", "typ", "jwk", "jku", "x5u", "x5c"} {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	return out
}

// injectedSleep bounds the answers to kids that would run "sleep 5" if a shell or a query
// ever saw them: under the 5s such a sleep takes, and far over what a refusal takes even on a
// loaded 2-core machine under the race detector (2s was within reach of a stall there).
const injectedSleep = 4 * time.Second

func TestAttackKIDInjection(t *testing.T) {
	forEachAlgBackend(t, allAlgorithms, func(t *testing.T, e *testEnv) {
		fx := newAttackFixture(t, e)
		evil := generateJWSKey(t, fx.key.alg, "attacker")
		kids := []any{
			"../../../../dev/null", "../../../../../../../etc/passwd", "/dev/null", "/proc/self/environ",
			"' OR '1'='1", "' OR '1'='1' --", "x' UNION SELECT 'AAAA' --", `"; DROP TABLE signing_keys; --`,
			"|sleep 5", "; sleep 5", "$(sleep 5)", "`sleep 5`", "& ping -n 5 127.0.0.1 &",
			"", " ", fx.key.kid + " ", " " + fx.key.kid, strings.ToUpper(fx.key.kid), fx.key.kid + "\x00",
			"%00", "\u202e" + fx.key.kid, "{{7*7}}", "${jndi:ldap://127.0.0.1/a}",
			strings.Repeat("A", 4000), b64url(make([]byte, 16)),
			1, true, nil, []any{fx.key.kid}, map[string]any{"kid": fx.key.kid},
		}
		var attacks []attack
		for _, kid := range kids {
			name := fmt.Sprintf("kid %.40q", fmt.Sprint(kid))
			header := claimsWith(fx.key.header(), "kid", kid)
			hsHeader := claimsWith(header, "alg", "HS256")
			evilK := jwsKey{alg: evil.alg, kid: "", priv: evil.priv}
			attacks = append(attacks,
				attack{name: name + ", HS256 with an empty key", token: hmacToken(t, hsHeader, fx.access, sha256.New, nil), via: asAccess, within: injectedSleep},
				attack{name: name + ", HS256 with key AAAA", token: hmacToken(t, hsHeader, fx.access, sha256.New, []byte("AAAA")), via: asAccess, within: injectedSleep},
				attack{name: name + ", signed by the attacker", token: evilK.forge(t, header, fx.access), via: asAccess, within: injectedSleep},
				attack{name: name + ", refresh, HS256 with an empty key", token: hmacToken(t, hsHeader, fx.refresh, sha256.New, nil), via: asRefresh, within: injectedSleep},
			)
		}
		attacks = append(attacks,
			attack{name: "unknown kid, signed by the attacker", token: evil.forge(t, evil.header(), fx.access), via: asAccess},
			attack{name: "unknown kid, server's signature", token: fx.key.forge(t, claimsWith(fx.key.header(), "kid", "unknown"), fx.access), via: asAccess},
		)
		fx.run(t, attacks)
	})
}

// TestAttackUnknownKIDFloodWithKeyRing sends tokens with random kids, concurrently, to a server
// whose keys a KeyRing maintains: whatever the kid says, each is refused at once, and no kid
// makes the server read the store (keys are reloaded on a timer, never on demand).
func TestAttackUnknownKIDFloodWithKeyRing(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := storetest.Open(t, backend)
			clk := testclock.New(time.Now().UTC().Truncate(time.Second))
			ring, err := keyring.New(ctx, st, token.Config{Issuer: "authapi", Now: clk.Now}, keyring.Options{Retention: refreshLifetime})
			if err != nil {
				t.Fatal(err)
			}
			hasher := password.NewHasher(password.FastParams(), testLimit)
			transmitter := ssf.New(ssf.Config{Issuer: "authapi"}, st, ring)
			srv, err := server.New(server.Config{Now: clk.Now, RefreshesPerIPPerMinute: -1, Keys: ring, Issuer: "authapi", SSF: transmitter}, st, hasher)
			if err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(srv)
			t.Cleanup(ts.Close)
			api, err := client.NewClientWithResponses(ts.URL)
			if err != nil {
				t.Fatal(err)
			}
			e := &testEnv{url: ts.URL, client: api, store: st, tokens: ring.Manager(), hasher: hasher, clock: clk}
			e.mustUser(t, "alice", regular)
			pair := e.mustLogin(t, "alice")
			claims := claimsOf(t, pair.Access)
			key := serverKey(t, e)

			kids := []string{"' OR '1'='1", "../../../../dev/null", "|sleep 5", "$(sleep 5)"}
			var wg sync.WaitGroup
			for i := range 40 {
				kid := kids[i%len(kids)]
				if i >= len(kids) {
					kid = b64url([]byte(fmt.Sprint("random kid ", i)))
				}
				tok := key.forge(t, claimsWith(key.header(), "kid", kid), claims)
				wg.Go(func() {
					req, err := http.NewRequest(http.MethodGet, e.url+"/api/v1/", nil)
					if err != nil {
						t.Error(err)
						return
					}
					req.Header.Set("Authorization", "Bearer "+tok)
					start := time.Now()
					r, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Errorf("kid %q: %v", kid, err)
						return
					}
					body, _ := io.ReadAll(r.Body)
					r.Body.Close()
					if took := time.Since(start); took > injectedSleep {
						t.Errorf("kid %q: answered in %v", kid, took)
					}
					if r.StatusCode != http.StatusUnauthorized || !bytes.Contains(body, []byte(`"token_not_valid"`)) {
						t.Errorf("kid %q: %d %s", kid, r.StatusCode, body)
					}
				})
			}
			wg.Wait()
			if r, body := e.do(t, http.MethodGet, "/api/v1/", "", "", "Authorization", "Bearer "+pair.Access); r.StatusCode != http.StatusOK {
				t.Errorf("good token after the flood: %d %s", r.StatusCode, body)
			}
		})
	}
}

// p256Order is the order n of P-256; r = s = n reduces to the psychic r = s = 0.
var p256Order = elliptic.P256().Params().N

func TestAttackPsychicSignature(t *testing.T) {
	forEachAlgBackend(t, []string{token.ES256}, func(t *testing.T, e *testEnv) {
		fx := newAttackFixture(t, e)
		rs := func(r, s *big.Int) []byte {
			sig := make([]byte, 64)
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
			return sig
		}
		zero, one := big.NewInt(0), big.NewInt(1)
		var attacks []attack
		for _, sig := range []struct {
			name string
			sig  []byte
		}{
			{"r = s = 0", make([]byte, 64)},
			{"r = s = n", rs(p256Order, p256Order)},
			{"r = 0, s = 1", rs(zero, one)},
			{"r = 1, s = 0", rs(one, zero)},
			{"r = s = 0, ASN.1 DER", []byte{0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00}},
			{"r = s = 0, one byte each", []byte{0, 0}},
			{"r = s = 0, 66 bytes", make([]byte, 66)},
		} {
			attacks = append(attacks, fx.both("psychic "+sig.name, func(claims map[string]any) string {
				return unsignedToken(t, fx.key.header(), claims, sig.sig)
			})...)
			attacks = append(attacks, attack{name: "psychic " + sig.name + ", user_id of bob", via: asAccess,
				token: unsignedToken(t, fx.key.header(), claimsWith(fx.access, "user_id", fx.bob.ID, "sub", fmt.Sprint(fx.bob.ID)), sig.sig)})
		}
		fx.run(t, attacks)
	})
}

func TestAttackTokenTypeConfusion(t *testing.T) {
	forEachAlgBackend(t, []string{token.EdDSA}, func(t *testing.T, e *testEnv) {
		fx := newAttackFixture(t, e)
		fx.run(t, []attack{
			{name: "refresh token as bearer", token: fx.victim.Refresh, via: viaBearer, detail: msgWrongType},
			{name: "access token to refresh", token: fx.victim.Access, via: viaRefresh, detail: msgWrongType},
			{name: "access token to log out", token: fx.victim.Access, via: viaLogout, detail: msgWrongType},
			{name: "bob's refresh token as bearer", token: fx.bobPair.Refresh, via: viaBearer, detail: msgWrongType},
		})
	})
}

// TestAttackValidlySignedBadClaims signs bad claims with the server's own key: the server must
// refuse them on their content.
func TestAttackValidlySignedBadClaims(t *testing.T) {
	forEachAlgBackend(t, allAlgorithms, func(t *testing.T, e *testEnv) {
		fx := newAttackFixture(t, e)
		now := fx.e.clock.Now()
		future, past := unix(now.Add(time.Hour)), unix(now.Add(-time.Second))
		aliceID := fx.alice.ID
		bobSID := claimsOf(t, fx.bobPair.Access)["sid"]
		noUser := "Token contained no recognizable user identification"
		var attacks []attack
		add := func(name, detail string, kv ...any) {
			for _, a := range fx.both(name, func(claims map[string]any) string {
				return fx.key.forge(t, fx.key.headerFor(claims), claimsWith(claims, kv...))
			}) {
				a.detail = detail
				attacks = append(attacks, a)
			}
		}
		for _, claim := range []string{"exp", "iat", "jti", "sid", "iss", "token_type"} {
			add("missing "+claim, "", claim, absent)
		}
		add("missing user_id", noUser, "user_id", absent)
		add("exp in the past", "", "exp", past)
		add("exp now", "", "exp", unix(now))
		add("nbf in the future", "", "nbf", unix(now.Add(time.Minute)))
		add("nbf not a number", "", "nbf", "soon")
		add("iat in the future", "", "iat", unix(now.Add(time.Minute)))
		for _, iss := range []any{"evil", "", "AUTHAPI", "authapi ", "https://authapi", []any{"authapi"}, nil, 1} {
			add(fmt.Sprintf("iss %#v", iss), "", "iss", iss)
		}
		for _, v := range []any{future.String(), json.Number(future.String() + ".5"), json.Number("1e10"), json.Number("9999999999999999999999"), true, nil, map[string]any{}} {
			add(fmt.Sprintf("exp %#v", v), "", "exp", v)
		}
		add("iat as string", "", "iat", unix(now).String())
		for _, v := range []any{fmt.Sprint(aliceID), json.Number("1.5"), json.Number(fmt.Sprint(aliceID) + ".0"), json.Number(fmt.Sprint(aliceID) + "e0"),
			-aliceID, 0, true, nil, json.Number("1" + strings.Repeat("0", 30)), map[string]any{"id": aliceID}, []any{aliceID}} {
			add(fmt.Sprintf("user_id %#v", v), noUser, "user_id", v)
		}
		for _, v := range []any{1, "ACCESS", "Access", "", nil, []any{"access"}} {
			add(fmt.Sprintf("token_type %#v", v), "", "token_type", v)
		}
		for _, v := range []any{"", 123, nil} {
			add(fmt.Sprintf("jti %#v", v), "", "jti", v)
			add(fmt.Sprintf("sid %#v", v), "", "sid", v)
		}
		// Claims that disagree with each other. Logout is left out: it trusts a well-signed
		// token's sid once its user_id is the caller's, and answers 403 when it is not.
		for _, a := range fx.both("sid of bob's session", func(claims map[string]any) string {
			return fx.key.forge(t, fx.key.headerFor(claims), claimsWith(claims, "sid", bobSID))
		}) {
			a.via &^= viaLogout
			attacks = append(attacks, a)
		}
		for _, a := range fx.both("user_id of bob, alice's sid", func(claims map[string]any) string {
			return fx.key.forge(t, fx.key.headerFor(claims), claimsWith(claims, "user_id", fx.bob.ID, "sub", fmt.Sprint(fx.bob.ID)))
		}) {
			a.via &^= viaLogout
			attacks = append(attacks, a)
		}
		add("sid unknown", "", "sid", "no-such-session")
		// A well-signed token naming a user that does not exist: user_not_found. Logout is left
		// out: it compares the token's user with the caller first and answers 403.
		attacks = append(attacks, attack{
			name: "user_id of no user", code: "user_not_found", via: viaBearer | viaVerify,
			token: fx.key.forge(t, fx.key.header(), claimsWith(fx.access, "user_id", 999999, "sub", "999999")),
		}, attack{
			name: "user_id of no user (refresh)", code: "user_not_found", via: viaVerify | viaRefresh,
			token: fx.key.forge(t, fx.key.headerFor(fx.refresh), claimsWith(fx.refresh, "user_id", 999999, "sub", "999999")),
		})
		// Payloads that are not a claims object.
		for _, p := range []string{`[]`, `null`, `"access"`, `1`, `{}`, `{"exp":` + future.String() + `}`, string(mustMarshal(t, fx.access)) + `{}`, string(mustMarshal(t, fx.access)) + `x`, "\ufeff" + string(mustMarshal(t, fx.access))} {
			attacks = append(attacks, attack{name: fmt.Sprintf("payload %.30q", p), token: fx.key.forge(t, fx.key.header(), []byte(p)), via: anywhere})
		}
		// Header members Sign never writes, under a good signature.
		for _, h := range []struct {
			name string
			kv   []any
		}{
			{"crit", []any{"crit", []any{"exp"}}},
			{"b64 false", []any{"b64", false, "crit", []any{"b64"}}},
			{"cty JWT", []any{"cty", "JWT"}},
			{"zip", []any{"zip", "DEF"}},
			{"x5t", []any{"x5t", "AAAA"}},
			{"typ jwt", []any{"typ", "jwt"}},
			{"typ JWS", []any{"typ", "JWS"}},
			{"typ missing", []any{"typ", absent}},
			{"typ JWT (an access token of the current issuer)", []any{"typ", "JWT"}},
			{"typ AT+JWT", []any{"typ", "AT+JWT"}},
			{"typ application/at+jwt", []any{"typ", "application/at+jwt"}},
			{"typ secevent+jwt", []any{"typ", "secevent+jwt"}},
			{"alg missing", []any{"alg", absent}},
			{"alg lowercase", []any{"alg", strings.ToLower(fx.key.alg)}},
			{"kid missing", []any{"kid", absent}},
		} {
			attacks = append(attacks, attack{name: "header " + h.name, token: fx.key.forge(t, claimsWith(fx.key.header(), h.kv...), fx.access), via: asAccess})
		}
		// A refresh token must say typ JWT, even well signed: at+jwt is what resource servers take.
		attacks = append(attacks, attack{name: "refresh token with typ at+jwt", token: fx.key.forge(t, fx.key.header(), fx.refresh), via: asRefresh})
		for _, h := range []string{`[]`, `null`, `{}`, `{"alg":"` + fx.key.alg + `","kid":"` + fx.key.kid + `","typ":"at+jwt"}{}`, "\ufeff" + string(mustMarshal(t, fx.key.header()))} {
			attacks = append(attacks, attack{name: fmt.Sprintf("header %.30q", h), token: fx.key.forge(t, []byte(h), fx.access), via: asAccess})
		}
		fx.run(t, attacks)
	})
}

func mustMarshal(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// altered changes one character that always carries data: the first of the last segment
// (a JWT's signature, or the whole of a link token). The last character may already be the
// replacement, or only carry padding bits that a lenient decoder ignores.
func altered(s string) string {
	i := strings.LastIndexByte(s, '.') + 1
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

// nonCanonical spells the same bytes as s with non-zero trailing bits, which a lenient
// base64 decoder accepts. It returns "" when s has no spare bits.
func nonCanonical(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	if len(s)%4 == 0 || len(s)%4 == 1 {
		return ""
	}
	last := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[last|1])
}

func TestAttackMalformedTokens(t *testing.T) {
	forEachAlgBackend(t, []string{token.EdDSA}, func(t *testing.T, e *testEnv) {
		fx := newAttackFixture(t, e)
		tok := fx.victim.Access
		s := segments(tok)
		var attacks []attack
		add := func(name, tok string) { attacks = append(attacks, attack{name: name, token: tok, via: anywhere}) }
		add("one segment", s[0])
		add("two segments", s[0]+"."+s[1])
		add("four segments", tok+"."+s[2])
		add("four segments, empty last", tok+".")
		add("five segments", tok+".."+s[2])
		add("dots only", "..")
		add("leading dot", "."+tok)
		add("empty header", "."+s[1]+"."+s[2])
		add("empty payload", s[0]+".."+s[2])
		for i, name := range []string{"header", "payload", "signature"} {
			mod := func(f func(string) string) string {
				c := slices.Clone(s)
				c[i] = f(c[i])
				return strings.Join(c, ".")
			}
			if len(s[i])%4 != 0 {
				add(name+" padded", mod(func(x string) string { return x + strings.Repeat("=", 4-len(x)%4) }))
			}
			add(name+" with one =", mod(func(x string) string { return x + "=" }))
			add(name+" in standard base64", mod(func(x string) string {
				return strings.NewReplacer("-", "+", "_", "/").Replace(x) + "+/"
			}))
			add(name+" with !", mod(func(x string) string { return x[:len(x)/2] + "!" + x[len(x)/2:] }))
			add(name+" with *", mod(func(x string) string { return "*" + x }))
			add(name+" with %3D", mod(func(x string) string { return x + "%3D" }))
			add(name+" with é", mod(func(x string) string { return x + "é" }))
			add(name+" truncated by one", mod(func(x string) string { return x[:len(x)-1] }))
			if nc := nonCanonical(s[i]); nc != "" {
				add(name+" with non-zero trailing bits", mod(func(string) string { return nc }))
			}
		}
		for _, h := range []string{"not json", `{"alg":"EdDSA"`, `{"alg":"EdDSA",}`, `{'alg':'EdDSA'}`, "\x00", strings.Repeat("[", 3000)} {
			add(fmt.Sprintf("header %.20q", h), b64url([]byte(h))+"."+s[1]+"."+s[2])
		}
		add("token over 8 KiB", tok+strings.Repeat("A", 8<<10))
		add("8 KiB of dots", strings.Repeat(".", 8<<10))
		fx.run(t, attacks)
	})
}

// TestAttackHugeToken sends a 1 MB token. net/http may refuse the header itself (431, not an
// app response); anything that reaches the app must be a 4xx Error body.
func TestAttackHugeToken(t *testing.T) {
	forEachAlgBackend(t, []string{token.EdDSA}, func(t *testing.T, e *testEnv) {
		fx := newAttackFixture(t, e)
		s := segments(fx.victim.Access)
		huge := s[0] + "." + s[1] + strings.Repeat("A", 1<<20) + "." + s[2]
		for _, sink := range []sinks{viaBearer, viaVerify, viaRefresh, viaLogout} {
			r, body := fx.send(t, sink, huge)
			what := "1 MB token via " + sinkNames[sink]
			switch {
			case r.StatusCode >= 500 || r.StatusCode < 400:
				t.Errorf("%s: status %d, want 4xx; body %.200s", what, r.StatusCode, body)
			case r.StatusCode == http.StatusRequestHeaderFieldsTooLarge && !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json"):
				// Refused by net/http before the app saw it.
			case r.StatusCode == http.StatusRequestEntityTooLarge:
				wantError(t, what, r.StatusCode, body, http.StatusRequestEntityTooLarge, "request_too_large")
			default:
				wantError(t, what, r.StatusCode, body, http.StatusUnauthorized, "token_not_valid")
			}
		}
	})
}

// TestAttackTokenOutsideAuthorizationHeader: a valid access token anywhere but the
// Authorization header authenticates nothing.
func TestAttackTokenOutsideAuthorizationHeader(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "alice", regular)
		access := e.mustLogin(t, "alice").Access
		q := url.QueryEscape(access)
		for _, tc := range []struct {
			name, path string
			headers    []string
		}{
			{"query access_token", "/api/v1/?access_token=" + q, nil},
			{"query token", "/api/v1/?token=" + q, nil},
			{"query jwt", "/api/v1/?jwt=" + q, nil},
			{"query Authorization", "/api/v1/?Authorization=" + url.QueryEscape("Bearer "+access), nil},
			{"cookie", "/api/v1/", []string{"Cookie", "access_token=" + access + "; token=" + access + "; jwt=" + access}},
			{"X-Access-Token", "/api/v1/", []string{"X-Access-Token", access}},
			{"X-Auth-Token", "/api/v1/", []string{"X-Auth-Token", access}},
			{"Proxy-Authorization", "/api/v1/", []string{"Proxy-Authorization", "Bearer " + access}},
			{"X-Forwarded-Authorization", "/api/v1/", []string{"X-Forwarded-Authorization", "Bearer " + access}},
		} {
			r, body := e.do(t, http.MethodGet, tc.path, "", "", tc.headers...)
			wantError(t, tc.name, r.StatusCode, body, http.StatusUnauthorized, "not_authenticated")
		}
		r, body := e.do(t, http.MethodPost, "/api/v1/auth/token/verify/?access_token="+q, "application/json", jsonField("token", access))
		wantError(t, "verify with the caller's token in the query", r.StatusCode, body, http.StatusUnauthorized, "not_authenticated")
		r, body = e.do(t, http.MethodPost, "/api/v1/auth/logout_all/", "application/x-www-form-urlencoded", "access_token="+q)
		wantError(t, "logout_all with the token in a form body", r.StatusCode, body, http.StatusUnauthorized, "not_authenticated")
	})
}

// TestAttackUnstorableText sends strings PostgreSQL text columns cannot hold (NUL, invalid
// UTF-8) wherever the server stores or looks up text. Each must be refused as bad input or
// handled, never a 500.
func TestAttackUnstorableText(t *testing.T) {
	forEachBackend(t, func(t *testing.T, e *testEnv) {
		e.mustUser(t, "root", superRole)
		target := e.mustUser(t, "target", regular)
		auth := "Bearer " + e.mustLogin(t, "root").Access
		update := fmt.Sprintf("/api/v1/account/management/%d/update/", target.ID)
		const form = "application/x-www-form-urlencoded"
		newUser := func(field, value string) string {
			u := map[string]any{"username": "newuser", "password": "correct horse battery staple 42",
				"email": "new@example.com", "first_name": "New", "last_name": "User"}
			u[field] = value
			return string(mustMarshal(t, u))
		}
		for _, tc := range []struct {
			name, method, path, contentType, body string
			headers                               []string
		}{
			{"login, username with NUL (JSON)", http.MethodPost, "/api/v1/auth/token/", "application/json", `{"username":"ro\u0000ot","password":"x"}`, nil},
			{"login, username with NUL (form)", http.MethodPost, "/api/v1/auth/token/", form, "username=ro%00ot&password=x", nil},
			{"login, username with invalid UTF-8 (form)", http.MethodPost, "/api/v1/auth/token/", form, "username=ro%FFot&password=x", nil},
			{"login, password with NUL", http.MethodPost, "/api/v1/auth/token/", "application/json", `{"username":"root","password":"x\u0000"}`, nil},
			{"login, User-Agent not UTF-8", http.MethodPost, "/api/v1/auth/token/", "application/json",
				string(mustMarshal(t, map[string]string{"username": "root", "password": demoPassword})), []string{"User-Agent", "agent \xff\xfe"}},
			{"create, username with NUL", http.MethodPost, "/api/v1/account/management/create/", "application/json", newUser("username", "new\x00user"), []string{"Authorization", auth}},
			{"create, first_name with NUL", http.MethodPost, "/api/v1/account/management/create/", "application/json", newUser("first_name", "N\x00"), []string{"Authorization", auth}},
			{"create, email with NUL", http.MethodPost, "/api/v1/account/management/create/", "application/json", newUser("email", "n\x00@example.com"), []string{"Authorization", auth}},
			{"PATCH, last_name with NUL", http.MethodPatch, update, "application/json", `{"last_name":"\u0000"}`, []string{"Authorization", auth}},
			{"PUT, first_name with NUL", http.MethodPut, update, "application/json",
				`{"username":"target","first_name":"T\u0000","last_name":"U","email":"t@example.com"}`, []string{"Authorization", auth}},
			{"list, search with NUL", http.MethodGet, "/api/v1/account/management/?search=%00", "", "", []string{"Authorization", auth}},
			{"verify, token with NUL", http.MethodPost, "/api/v1/auth/token/verify/", "application/json", `{"token":"a\u0000.b.c"}`, []string{"Authorization", auth}},
			{"revoke session, id with NUL", http.MethodDelete, "/api/v1/auth/sessions/A%00B/", "", "", []string{"Authorization", auth}},
			{"revoke session, id with invalid UTF-8", http.MethodDelete, "/api/v1/auth/sessions/A%FFB/", "", "", []string{"Authorization", auth}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r, body := e.do(t, tc.method, tc.path, tc.contentType, tc.body, tc.headers...)
				if r.StatusCode >= 500 {
					t.Fatalf("%s %s with %s answers %d %s: text PostgreSQL cannot store (NUL, invalid UTF-8) "+
						"must be refused with a 400 or made storable", tc.method, tc.path, tc.name, r.StatusCode, bytes.TrimSpace(body))
				}
				if r.StatusCode >= 400 {
					var got client.Error
					dec := json.NewDecoder(bytes.NewReader(body))
					dec.DisallowUnknownFields()
					if err := dec.Decode(&got); err != nil || got.Code == "" || got.Detail == "" {
						t.Errorf("status %d, not the Error schema: %s", r.StatusCode, body)
					}
				}
			})
		}
	})
}

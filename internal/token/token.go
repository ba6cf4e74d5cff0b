// Package token issues and verifies the service's JWTs and publishes its public keys.
//
// Tokens are compact JWS signed with EdDSA, ES256 or RS256. Their claims are
// those of djangorestframework-simplejwt (token_type, exp, iat, jti, user_id)
// plus sub, iss and sid, so clients of the Django service keep working. Access
// tokens also follow the JWT access token profile (RFC 9068): header typ at+jwt,
// aud, client_id, auth_time and amr, so that any resource server library
// configured with the issuer verifies them. Refresh tokens keep typ JWT and
// carry no aud, so such libraries refuse them.
package token

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lestrrat-go/jwx/v2/jws"
)

// Errors returned by Parse. Their texts are simplejwt's API messages, which
// clients see, hence the capitals.
var (
	//lint:ignore ST1005 API message
	ErrInvalid = errors.New("Token is invalid or expired")
	//lint:ignore ST1005 API message
	ErrWrongType = errors.New("Token has wrong type")
	//lint:ignore ST1005 API message
	ErrNoUser = errors.New("Token contained no recognizable user identification")
)

// Type is the token_type claim.
type Type string

// Token types.
const (
	Access  Type = "access"
	Refresh Type = "refresh"
)

// Claims are the claims in every token: token_type, user_id (a JSON integer),
// sub (user_id as a decimal string), sid, jti, iat, exp and iss; access tokens
// add aud, client_id, auth_time and amr (RFC 9068).
type Claims struct {
	Type      Type
	UserID    int64
	SessionID string
	ID        string // jti
	IssuedAt  time.Time
	ExpiresAt time.Time

	// Issuer is the iss Parse found; Sign always writes Config.Issuer.
	Issuer string
	// Audience is aud. Sign writes Config.Audience into access tokens when it is
	// empty, and never writes aud into refresh tokens.
	Audience []string
	ClientID string    // client_id: the client the session was started by
	AuthTime time.Time // auth_time: when the user authenticated (the session began); zero for none
	AMR      []string  // amr: how (RFC 8176), e.g. ["pwd"]
	ACR      string    // acr: the assurance level reached, "aal1" or "aal2" (NIST SP 800-63B)
}

// Header typ values (RFC 9068 2.1 for access tokens).
const (
	typAccess = "at+jwt"
	typJWT    = "JWT"
)

// Config configures a Manager.
type Config struct {
	Issuer string // iss claim of the tokens Sign makes
	// PreviousIssuers are iss values Parse still accepts besides Issuer: those of
	// tokens issued before the issuer changed, until they expire.
	PreviousIssuers []string
	// Audience is the aud of access tokens whose Claims name none; empty means
	// Issuer.
	Audience []string
	Now      func() time.Time // nil means time.Now
	Leeway   time.Duration    // clock skew allowed for exp, nbf and iat
	// UnknownKey, if set, is called by Parse when a token names a kid the Manager does not
	// hold, and may give the Manager new keys (SetKeys); Parse then looks the kid up once
	// more. A key ring uses it to load a key another instance has started signing with.
	UnknownKey func(kid string)
}

// Manager verifies with any key it holds and signs with the newest one (by
// CreatedAt, then ID, so that every instance holding the same keys picks the
// same one) whose SignFrom has come; if none has, with the one whose
// SignFrom comes first. It is safe for concurrent use.
type Manager struct {
	cfg      Config
	ring     atomic.Pointer[keyring]
	verified verifiedCache
}

// keyring is replaced as a whole by SetKeys, so Sign and Parse always see a
// consistent set of keys.
type keyring struct {
	newestFirst []*signingKey // by CreatedAt, then ID
	early       *signingKey   // the earliest SignFrom, for when none has come
	byID        map[string]*signingKey
	// byHeader maps each header segment Sign writes for a key (one per typ) to
	// that key and typ: a token carrying exactly those bytes needs no header
	// decoding (see SetKeys).
	byHeader map[string]keyTyp
	jwks     []byte
}

// signer is the key to sign with at now.
func (r *keyring) signer(now time.Time) *signingKey {
	for _, k := range r.newestFirst {
		if !k.signFrom.After(now) {
			return k
		}
	}
	return r.early
}

// NewManager returns a Manager holding keys. It fails if Issuer is empty,
// keys is empty or a key does not parse.
func NewManager(cfg Config, keys []Key) (*Manager, error) {
	if cfg.Issuer == "" {
		return nil, errors.New("new token manager: empty issuer")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if len(cfg.Audience) == 0 {
		cfg.Audience = []string{cfg.Issuer}
	}
	for _, a := range cfg.Audience {
		if a == "" {
			return nil, errors.New("new token manager: empty audience")
		}
	}
	cfg.Audience = slices.Clone(cfg.Audience)
	cfg.PreviousIssuers = slices.Clone(cfg.PreviousIssuers)
	m := &Manager{cfg: cfg, verified: newVerifiedCache()}
	if err := m.SetKeys(keys); err != nil {
		return nil, err
	}
	return m, nil
}

// SetKeys atomically replaces the Manager's keys. On error the old keys stay.
func (m *Manager) SetKeys(keys []Key) error {
	if len(keys) == 0 {
		return errors.New("set keys: no keys")
	}
	r := &keyring{byID: make(map[string]*signingKey, len(keys))}
	loaded := make([]*signingKey, 0, len(keys))
	for _, k := range keys {
		sk, err := loadKey(k)
		if err != nil {
			return fmt.Errorf("set keys: key %q: %w", k.ID, err)
		}
		if _, dup := r.byID[sk.id]; dup {
			return fmt.Errorf("set keys: duplicate key ID %q", sk.id)
		}
		r.byID[sk.id] = sk
		if r.early == nil || sk.signFrom.Before(r.early.signFrom) {
			r.early = sk
		}
		loaded = append(loaded, sk)
	}
	r.byHeader = make(map[string]keyTyp, 2*len(loaded))
	for _, sk := range loaded {
		for _, typ := range []string{typAccess, typJWT} {
			seg, err := sk.headerSegment(typ)
			if err != nil {
				return fmt.Errorf("set keys: key %q: %w", sk.id, err)
			}
			// Only a segment that the full check accepts for sk is remembered, so the
			// shortcut accepts exactly what keyFor would.
			if kt, err := r.checkHeader(seg); err == nil && kt == (keyTyp{sk, typ}) {
				r.byHeader[seg] = kt
			}
		}
	}
	r.newestFirst = slices.Clone(loaded)
	slices.SortFunc(r.newestFirst, func(a, b *signingKey) int {
		return cmp.Or(b.createdAt.Compare(a.createdAt), cmp.Compare(b.id, a.id))
	})
	jwks, err := publicJWKS(loaded)
	if err != nil {
		return fmt.Errorf("set keys: %w", err)
	}
	r.jwks = jwks
	m.ring.Store(r)
	return nil
}

// JWKS returns the public JWK set ({"keys":[...]}) of every key the Manager
// holds, each with kid, alg and use "sig".
func (m *Manager) JWKS() ([]byte, error) {
	return bytes.Clone(m.ring.Load().jwks), nil
}

// wireClaims is the JSON payload of a token.
type wireClaims struct {
	TokenType Type     `json:"token_type"`
	ExpiresAt int64    `json:"exp"`
	IssuedAt  int64    `json:"iat"`
	ID        string   `json:"jti"`
	UserID    int64    `json:"user_id"`
	Subject   string   `json:"sub"`
	Issuer    string   `json:"iss"`
	SessionID string   `json:"sid"`
	Audience  any      `json:"aud,omitempty"` // a string when one, else an array (RFC 7519 4.1.3)
	ClientID  string   `json:"client_id,omitempty"`
	AuthTime  int64    `json:"auth_time,omitempty"`
	AMR       []string `json:"amr,omitempty"`
	ACR       string   `json:"acr,omitempty"`
}

// Sign issues a token for c, signed with the newest key. If c.ID is empty a
// random jti of 32 hex characters is used, as simplejwt does. Times are
// truncated to whole seconds. An access token gets header typ at+jwt and
// c.Audience (else Config.Audience), c.ClientID, c.AuthTime and c.AMR; a
// refresh token gets typ JWT and none of them.
func (m *Manager) Sign(c Claims) (string, error) {
	switch {
	case c.Type != Access && c.Type != Refresh:
		return "", fmt.Errorf("sign token: unknown type %q", c.Type)
	case c.UserID <= 0:
		return "", fmt.Errorf("sign token: invalid user ID %d", c.UserID)
	case c.SessionID == "":
		return "", errors.New("sign token: empty session ID")
	case c.IssuedAt.IsZero() || !c.ExpiresAt.After(c.IssuedAt):
		return "", errors.New("sign token: expiry must be after issue time")
	}
	if c.ID == "" {
		c.ID = hex.EncodeToString(randomBytes(16))
	}
	w := wireClaims{
		TokenType: c.Type,
		ExpiresAt: c.ExpiresAt.Unix(),
		IssuedAt:  c.IssuedAt.Unix(),
		ID:        c.ID,
		UserID:    c.UserID,
		Subject:   strconv.FormatInt(c.UserID, 10),
		Issuer:    m.cfg.Issuer,
		SessionID: c.SessionID,
	}
	typ := typJWT
	if c.Type == Access {
		typ = typAccess
		auds := c.Audience
		if len(auds) == 0 {
			auds = m.cfg.Audience
		}
		if len(auds) == 1 {
			w.Audience = auds[0] // RFC 7519 4.1.3: a string for one, which more libraries take
		} else {
			w.Audience = auds
		}
		w.ClientID, w.AMR, w.ACR = c.ClientID, c.AMR, c.ACR
		if !c.AuthTime.IsZero() {
			w.AuthTime = c.AuthTime.Unix()
		}
	}
	payload, err := json.Marshal(w)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	tok, err := m.ring.Load().signer(m.cfg.Now()).sign(typ, payload)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return string(tok), nil
}

// sign signs payload as a compact JWS whose header names k (kid) and says what
// it is (typ); jwx adds alg.
func (k *signingKey) sign(typ string, payload []byte) ([]byte, error) {
	h := jws.NewHeaders()
	if err := h.Set(jws.KeyIDKey, k.id); err != nil {
		return nil, err
	}
	if err := h.Set(jws.TypeKey, typ); err != nil {
		return nil, err
	}
	return jws.Sign(payload, jws.WithKey(k.alg, k.private, jws.WithProtectedHeaders(h)))
}

// headerSegment is the first segment of the tokens of typ sign makes with k.
func (k *signingKey) headerSegment(typ string) (string, error) {
	tok, err := k.sign(typ, []byte("{}"))
	if err != nil {
		return "", err
	}
	seg, _, _ := strings.Cut(string(tok), ".")
	return seg, nil
}

// maxTokenSize bounds the work an unauthenticated caller can make Parse do.
const maxTokenSize = 8 << 10

// Parse verifies raw and returns its claims if it is a valid token of type
// want. It returns ErrWrongType for a valid token of another type, ErrNoUser
// for a valid token without an integer user_id, and an error wrapping
// ErrInvalid for anything else.
func (m *Manager) Parse(raw string, want Type) (Claims, error) {
	payload, typ, _, err := m.verifySignature(raw)
	if err != nil {
		return Claims{}, err
	}
	return m.claims(payload, typ, want, want)
}

// ParseEither is Parse accepting a token of type first or of type second, with the signature
// checked once: ErrWrongType only for a valid token of neither. The signature of a refresh
// token it accepted is not checked again while its key is held (see verifiedCache).
func (m *Manager) ParseEither(raw string, first, second Type) (Claims, error) {
	var (
		v  verified
		ok bool
	)
	if len(raw) <= maxTokenSize {
		v, ok = m.verified.get(m.ring.Load(), raw)
	}
	if !ok {
		payload, typ, key, err := m.verifySignature(raw)
		if err != nil {
			return Claims{}, err
		}
		if v.claims, err = decodeClaims(payload); err != nil {
			return Claims{}, err
		}
		v.typ, v.key = typ, key
	}
	c, err := m.checkClaims(v.claims, v.typ, first, second)
	if err == nil && !ok && c.Type == Refresh {
		m.verified.add(raw, v)
	}
	return c, err
}

// verifySignature checks raw's form, header and signature with a key held, and returns
// its payload and header typ; the claims are the caller's to check. Refusals wrap
// ErrInvalid.
func (m *Manager) verifySignature(raw string) (payload []byte, typ string, key *signingKey, err error) {
	if len(raw) > maxTokenSize {
		return nil, "", nil, invalid("larger than %d bytes", maxTokenSize)
	}
	headerSeg, rest, _ := strings.Cut(raw, ".")
	payloadSeg, sigSeg, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sigSeg, ".") {
		return nil, "", nil, invalid("%d segments, want 3", strings.Count(raw, ".")+1)
	}
	r := m.ring.Load()
	// The headers Sign writes for a key are checked once, in SetKeys; any other
	// header is decoded and checked here.
	kt := r.byHeader[headerSeg]
	var header []byte
	if kt.key == nil {
		if header, err = segment(headerSeg, 1); err != nil {
			return nil, "", nil, err
		}
	}
	if payload, err = segment(payloadSeg, 2); err != nil {
		return nil, "", nil, err
	}
	sig, err := segment(sigSeg, 3)
	if err != nil {
		return nil, "", nil, err
	}
	if kt.key == nil {
		kt, err = r.keyFor(header)
		var unknown unknownKeyError
		if errors.As(err, &unknown) && m.cfg.UnknownKey != nil {
			m.cfg.UnknownKey(unknown.kid)
			kt, err = m.ring.Load().keyFor(header)
		}
		if err != nil {
			return nil, "", nil, err
		}
	}
	// The key and algorithm come from our keyring, never from the token. The
	// signature covers the first two segments as they were sent (RFC 7515 5.2).
	k := kt.key
	signingInput := raw[:len(headerSeg)+1+len(payloadSeg)]
	if err := k.verifier.Verify([]byte(signingInput), sig, k.public); err != nil {
		return nil, "", nil, invalid("signature: %v", err)
	}
	return payload, kt.typ, k, nil
}

// segment decodes segment n of a token. jwx re-encodes what it decodes, so
// decode strictly here to reject other spellings of the same bytes (padding,
// non-zero trailing bits).
func segment(s string, n int) ([]byte, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, invalid("segment %d is not non-empty base64url", n)
	}
	return b, nil
}

// allowedHeader lists the only JOSE header members Parse accepts: those Sign
// writes. Everything else is rejected, not ignored: jku, x5u, x5c and jwk
// offer the verifier key material, crit and b64 change how the token must be
// processed (RFC 8725 section 3).
var allowedHeader = map[string]bool{"alg": true, "kid": true, "typ": true}

// keyTyp is a verified header's key and typ.
type keyTyp struct {
	key *signingKey
	typ string
}

// keyFor returns the key named by the JOSE header's kid and the header's typ,
// provided the header is one Sign could have written and its alg is that key's
// algorithm.
func (r *keyring) keyFor(header []byte) (keyTyp, error) {
	// Sign never writes whitespace around the header's JSON object. Such a
	// header is refused, as it was when jwx parsed the token and verified over
	// the header re-encoded without that whitespace.
	if len(bytes.Trim(header, jsonSpace)) != len(header) {
		return keyTyp{}, invalid("header: whitespace around the JSON object")
	}
	h, err := decodeObject(header)
	if err != nil {
		return keyTyp{}, invalid("header: %v", err)
	}
	for name := range h {
		if !allowedHeader[name] {
			return keyTyp{}, invalid("header member %q not allowed", name)
		}
	}
	kid, _ := h["kid"].(string)
	k, ok := r.byID[kid]
	if !ok {
		return keyTyp{}, unknownKeyError{kid}
	}
	if alg, _ := h["alg"].(string); alg != k.alg.String() {
		return keyTyp{}, invalid("alg %q does not match key %q", alg, kid)
	}
	typ, _ := h["typ"].(string)
	if typ != typJWT && typ != typAccess {
		return keyTyp{}, invalid("typ %q, want %s or %s", typ, typJWT, typAccess)
	}
	return keyTyp{k, typ}, nil
}

// unknownKeyError is ErrInvalid for a header whose kid names no key held.
type unknownKeyError struct{ kid string }

func (e unknownKeyError) Error() string { return fmt.Sprintf("%v: unknown kid %q", ErrInvalid, e.kid) }
func (e unknownKeyError) Unwrap() error { return ErrInvalid }

// checkHeader is keyFor of a header segment as Parse decodes it.
func (r *keyring) checkHeader(seg string) (keyTyp, error) {
	header, err := segment(seg, 1)
	if err != nil {
		return keyTyp{}, err
	}
	return r.keyFor(header)
}

// claims checks a verified payload whose header said typ, of type first or second (decoded
// once for both). The order follows simplejwt: the token itself (ErrInvalid), then its type
// (ErrWrongType), then the user (ErrNoUser).
func (m *Manager) claims(payload []byte, typ string, first, second Type) (Claims, error) {
	c, err := decodeClaims(payload)
	if err != nil {
		return Claims{}, err
	}
	return m.checkClaims(c, typ, first, second)
}

// decodeClaims decodes a payload checked by its signature into its claims.
func decodeClaims(payload []byte) (map[string]any, error) {
	c, err := decodeObject(payload)
	if err != nil {
		return nil, invalid("payload: %v", err)
	}
	return c, nil
}

// checkClaims is claims on a decoded payload c, which it only reads (ParseEither keeps
// it for the next parse of the same token).
func (m *Manager) checkClaims(c map[string]any, typ string, first, second Type) (Claims, error) {
	now := m.cfg.Now()
	exp, ok := numericDate(c["exp"])
	if !ok {
		return Claims{}, invalid("exp missing or not an integer")
	}
	if !now.Before(exp.Add(m.cfg.Leeway)) {
		return Claims{}, invalid("expired")
	}
	if v, present := c["nbf"]; present {
		nbf, ok := numericDate(v)
		if !ok {
			return Claims{}, invalid("nbf not an integer")
		}
		if now.Add(m.cfg.Leeway).Before(nbf) {
			return Claims{}, invalid("not valid yet")
		}
	}
	iat, ok := numericDate(c["iat"])
	if !ok {
		return Claims{}, invalid("iat missing or not an integer")
	}
	if now.Add(m.cfg.Leeway).Before(iat) {
		return Claims{}, invalid("issued in the future")
	}
	iss, _ := c["iss"].(string)
	previous := slices.Contains(m.cfg.PreviousIssuers, iss)
	if iss != m.cfg.Issuer && !previous {
		return Claims{}, invalid("iss %q, want %q", iss, m.cfg.Issuer)
	}
	jti, _ := c["jti"].(string)
	if jti == "" {
		return Claims{}, invalid("jti missing")
	}
	if tt, _ := c["token_type"].(string); Type(tt) == Client && typ == typAccess {
		return Claims{}, ErrWrongType // a client token (ParseClient reads those): no user, no sid
	}
	sid, _ := c["sid"].(string)
	if sid == "" {
		return Claims{}, invalid("sid missing")
	}
	out := Claims{Issuer: iss, SessionID: sid, ID: jti, IssuedAt: iat.UTC(), ExpiresAt: exp.UTC()}
	if err := optionalClaims(c, &out); err != nil {
		return Claims{}, err
	}
	tokenType, ok := c["token_type"].(string)
	if !ok {
		return Claims{}, invalid("token_type missing")
	}
	if typMismatch(typ, Type(tokenType), previous) {
		return Claims{}, invalid("typ %q with token_type %q", typ, tokenType)
	}
	if Type(tokenType) != first && Type(tokenType) != second {
		return Claims{}, ErrWrongType
	}
	uid, ok := integer(c["user_id"])
	if !ok || uid <= 0 {
		return Claims{}, ErrNoUser
	}
	out.Type, out.UserID = Type(tokenType), uid
	return out, nil
}

// typMismatch reports whether a header typ contradicts a token_type: a refresh
// token is never at+jwt, and an access token is at+jwt. Access tokens signed
// before RFC 9068 came to authapi said JWT; they are still accepted while
// their issuer is among Config.PreviousIssuers (fromPrevious), the transition
// that lets them live out their lifetime. Other token types are left to the
// type check.
func typMismatch(typ string, tokenType Type, fromPrevious bool) bool {
	switch tokenType {
	case Refresh:
		return typ != typJWT
	case Access:
		return typ != typAccess && !(typ == typJWT && fromPrevious)
	}
	return false
}

// optionalClaims reads aud, client_id, auth_time, acr and amr into c. Each may be
// absent; present, it must have its registered shape.
func optionalClaims(obj map[string]any, c *Claims) error {
	if v, ok := obj["aud"]; ok {
		aud, ok := stringOrStrings(v)
		if !ok {
			return invalid("aud not a string or an array of strings")
		}
		c.Audience = aud
	}
	if v, ok := obj["client_id"]; ok {
		if c.ClientID, ok = v.(string); !ok {
			return invalid("client_id not a string")
		}
	}
	if v, ok := obj["auth_time"]; ok {
		t, ok := numericDate(v)
		if !ok {
			return invalid("auth_time not an integer")
		}
		c.AuthTime = t.UTC()
	}
	if v, ok := obj["acr"]; ok {
		if c.ACR, ok = v.(string); !ok {
			return invalid("acr not a string")
		}
	}
	if v, ok := obj["amr"]; ok {
		amr, ok := v.([]any)
		if !ok {
			return invalid("amr not an array of strings")
		}
		if c.AMR, ok = allStrings(amr); !ok {
			return invalid("amr not an array of strings")
		}
	}
	return nil
}

// stringOrStrings reads a StringOrURI-or-array claim such as aud.
func stringOrStrings(v any) ([]string, bool) {
	switch v := v.(type) {
	case string:
		return []string{v}, true
	case []any:
		return allStrings(v)
	}
	return nil, false
}

// allStrings is vs if every element is a string.
func allStrings(vs []any) ([]string, bool) {
	out := make([]string, len(vs))
	for i, v := range vs {
		s, ok := v.(string)
		if !ok {
			return nil, false
		}
		out[i] = s
	}
	return out, true
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// jsonSpace is the whitespace JSON allows between tokens.
const jsonSpace = " \t\r\n"

// decodeObject decodes a JSON object, keeping numbers as json.Number so
// that integers can be told from other numbers.
func decodeObject(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var obj map[string]any
	if err := dec.Decode(&obj); err != nil {
		return nil, err
	}
	if obj == nil {
		return nil, errors.New("not a JSON object")
	}
	if len(bytes.TrimLeft(b[dec.InputOffset():], jsonSpace)) > 0 {
		return nil, errors.New("data after JSON object") // what Token would find: another value or garbage
	}
	return obj, nil
}

// integer returns v as an int64 if it is a JSON integer literal: not a
// string, bool, fraction or exponent.
func integer(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(string(n), 10, 64)
	return i, err == nil
}

// numericDate reads exp, nbf or iat. Sign writes whole seconds, so
// fractional NumericDates are rejected rather than rounded. Dates past what
// time.Unix represents are rejected too: it would wrap them into the far past,
// and an iat or nbf there would pass as already reached.
func numericDate(v any) (time.Time, bool) {
	sec, ok := integer(v)
	if !ok || sec > lastUnixSecond {
		return time.Time{}, false
	}
	return time.Unix(sec, 0), true
}

// lastUnixSecond is the last Unix time time.Unix holds without overflow.
const lastUnixSecond = math.MaxInt64 - 62135596800

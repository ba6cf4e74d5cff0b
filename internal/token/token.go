// Package token issues and verifies the service's JWTs and publishes its public keys.
//
// Tokens are compact JWS signed with EdDSA, ES256 or RS256. Their claims are
// those of djangorestframework-simplejwt (token_type, exp, iat, jti, user_id)
// plus sub, iss and sid, so clients of the Django service keep working.
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
// sub (user_id as a decimal string), sid, jti, iat, exp and iss.
type Claims struct {
	Type      Type
	UserID    int64
	SessionID string
	ID        string // jti
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Config configures a Manager.
type Config struct {
	Issuer string           // iss claim; Parse requires an exact match
	Now    func() time.Time // nil means time.Now
	Leeway time.Duration    // clock skew allowed for exp, nbf and iat
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
	cfg  Config
	ring atomic.Pointer[keyring]
}

// keyring is replaced as a whole by SetKeys, so Sign and Parse always see a
// consistent set of keys.
type keyring struct {
	newestFirst []*signingKey // by CreatedAt, then ID
	early       *signingKey   // the earliest SignFrom, for when none has come
	byID        map[string]*signingKey
	// byHeader maps the header segment Sign writes for a key to that key: a token
	// carrying exactly those bytes needs no header decoding (see SetKeys).
	byHeader map[string]*signingKey
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
	m := &Manager{cfg: cfg}
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
	r.byHeader = make(map[string]*signingKey, len(loaded))
	for _, sk := range loaded {
		seg, err := sk.headerSegment()
		if err != nil {
			return fmt.Errorf("set keys: key %q: %w", sk.id, err)
		}
		// Only a segment that the full check accepts for sk is remembered, so the
		// shortcut accepts exactly what keyFor would.
		if k, err := r.checkHeader(seg); err == nil && k == sk {
			r.byHeader[seg] = sk
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
	TokenType Type   `json:"token_type"`
	ExpiresAt int64  `json:"exp"`
	IssuedAt  int64  `json:"iat"`
	ID        string `json:"jti"`
	UserID    int64  `json:"user_id"`
	Subject   string `json:"sub"`
	Issuer    string `json:"iss"`
	SessionID string `json:"sid"`
}

// Sign issues a token for c, signed with the newest key. If c.ID is empty a
// random jti of 32 hex characters is used, as simplejwt does. Times are
// truncated to whole seconds.
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
	payload, err := json.Marshal(wireClaims{
		TokenType: c.Type,
		ExpiresAt: c.ExpiresAt.Unix(),
		IssuedAt:  c.IssuedAt.Unix(),
		ID:        c.ID,
		UserID:    c.UserID,
		Subject:   strconv.FormatInt(c.UserID, 10),
		Issuer:    m.cfg.Issuer,
		SessionID: c.SessionID,
	})
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	tok, err := m.ring.Load().signer(m.cfg.Now()).sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	return string(tok), nil
}

// sign signs payload as a compact JWS whose header names k (kid) and says it is
// a JWT (typ); jwx adds alg.
func (k *signingKey) sign(payload []byte) ([]byte, error) {
	h := jws.NewHeaders()
	if err := h.Set(jws.KeyIDKey, k.id); err != nil {
		return nil, err
	}
	if err := h.Set(jws.TypeKey, "JWT"); err != nil {
		return nil, err
	}
	return jws.Sign(payload, jws.WithKey(k.alg, k.private, jws.WithProtectedHeaders(h)))
}

// headerSegment is the first segment of the tokens sign makes with k.
func (k *signingKey) headerSegment() (string, error) {
	tok, err := k.sign([]byte("{}"))
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
	if len(raw) > maxTokenSize {
		return Claims{}, invalid("larger than %d bytes", maxTokenSize)
	}
	headerSeg, rest, _ := strings.Cut(raw, ".")
	payloadSeg, sigSeg, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sigSeg, ".") {
		return Claims{}, invalid("%d segments, want 3", strings.Count(raw, ".")+1)
	}
	r := m.ring.Load()
	// The header Sign writes for a key is checked once, in SetKeys; any other
	// header is decoded and checked here.
	k := r.byHeader[headerSeg]
	var header []byte
	if k == nil {
		var err error
		if header, err = segment(headerSeg, 1); err != nil {
			return Claims{}, err
		}
	}
	payload, err := segment(payloadSeg, 2)
	if err != nil {
		return Claims{}, err
	}
	sig, err := segment(sigSeg, 3)
	if err != nil {
		return Claims{}, err
	}
	if k == nil {
		k, err = r.keyFor(header)
		var unknown unknownKeyError
		if errors.As(err, &unknown) && m.cfg.UnknownKey != nil {
			m.cfg.UnknownKey(unknown.kid)
			k, err = m.ring.Load().keyFor(header)
		}
		if err != nil {
			return Claims{}, err
		}
	}
	// The key and algorithm come from our keyring, never from the token. The
	// signature covers the first two segments as they were sent (RFC 7515 5.2).
	signingInput := raw[:len(headerSeg)+1+len(payloadSeg)]
	if err := k.verifier.Verify([]byte(signingInput), sig, k.public); err != nil {
		return Claims{}, invalid("signature: %v", err)
	}
	return m.claims(payload, want)
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

// keyFor returns the key named by the JOSE header's kid, provided the header
// is one Sign could have written and its alg is that key's algorithm.
func (r *keyring) keyFor(header []byte) (*signingKey, error) {
	// Sign never writes whitespace around the header's JSON object. Such a
	// header is refused, as it was when jwx parsed the token and verified over
	// the header re-encoded without that whitespace.
	if len(bytes.Trim(header, jsonSpace)) != len(header) {
		return nil, invalid("header: whitespace around the JSON object")
	}
	h, err := decodeObject(header)
	if err != nil {
		return nil, invalid("header: %v", err)
	}
	for name := range h {
		if !allowedHeader[name] {
			return nil, invalid("header member %q not allowed", name)
		}
	}
	kid, _ := h["kid"].(string)
	k, ok := r.byID[kid]
	if !ok {
		return nil, unknownKeyError{kid}
	}
	if alg, _ := h["alg"].(string); alg != k.alg.String() {
		return nil, invalid("alg %q does not match key %q", alg, kid)
	}
	if typ, _ := h["typ"].(string); typ != "JWT" {
		return nil, invalid("typ %q, want JWT", typ)
	}
	return k, nil
}

// unknownKeyError is ErrInvalid for a header whose kid names no key held.
type unknownKeyError struct{ kid string }

func (e unknownKeyError) Error() string { return fmt.Sprintf("%v: unknown kid %q", ErrInvalid, e.kid) }
func (e unknownKeyError) Unwrap() error { return ErrInvalid }

// checkHeader is keyFor of a header segment as Parse decodes it.
func (r *keyring) checkHeader(seg string) (*signingKey, error) {
	header, err := segment(seg, 1)
	if err != nil {
		return nil, err
	}
	return r.keyFor(header)
}

// claims checks a verified payload. The order follows simplejwt: the token
// itself (ErrInvalid), then its type (ErrWrongType), then the user
// (ErrNoUser).
func (m *Manager) claims(payload []byte, want Type) (Claims, error) {
	c, err := decodeObject(payload)
	if err != nil {
		return Claims{}, invalid("payload: %v", err)
	}
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
	if iss, _ := c["iss"].(string); iss != m.cfg.Issuer {
		return Claims{}, invalid("iss %q, want %q", iss, m.cfg.Issuer)
	}
	jti, _ := c["jti"].(string)
	if jti == "" {
		return Claims{}, invalid("jti missing")
	}
	sid, _ := c["sid"].(string)
	if sid == "" {
		return Claims{}, invalid("sid missing")
	}
	typ, ok := c["token_type"].(string)
	if !ok {
		return Claims{}, invalid("token_type missing")
	}
	if Type(typ) != want {
		return Claims{}, ErrWrongType
	}
	uid, ok := integer(c["user_id"])
	if !ok || uid <= 0 {
		return Claims{}, ErrNoUser
	}
	return Claims{
		Type:      Type(typ),
		UserID:    uid,
		SessionID: sid,
		ID:        jti,
		IssuedAt:  iat.UTC(),
		ExpiresAt: exp.UTC(),
	}, nil
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

package token

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// This file is the resource server's side: verification with public keys only, from the
// issuer's JWKS document, of RFC 9068 access tokens and of RFC 8417 security event tokens.

// Header typ values a KeySet checks.
const (
	TypAccessToken = "at+jwt"       // RFC 9068 section 2.1
	TypSecEvent    = "secevent+jwt" // RFC 8417 section 2.3
)

// ErrUnknownKey is returned (wrapping ErrInvalid) by KeySet's verifications when the token
// names a kid the set does not hold: the caller may fetch the JWKS again and retry.
var ErrUnknownKey = fmt.Errorf("%w: unknown kid", ErrInvalid)

// KeySet holds the public keys of a JWKS document. It is immutable and safe for concurrent
// use; a newer document makes a new KeySet.
type KeySet struct {
	byID map[string]*publicKey
}

type publicKey struct {
	alg      jwa.SignatureAlgorithm
	public   any
	verifier jws.Verifier
}

// NewKeySet parses a JWKS document ({"keys":[...]}). Keys without kid or alg, keys for
// encryption, private keys and keys of another algorithm than EdDSA, ES256 and RS256 (RSA at
// least 2048 bits) are skipped, not refused, so that a key the issuer adds later in another
// kind does not break its resource servers. It fails on a document that does not parse.
func NewKeySet(jwksJSON []byte) (*KeySet, error) {
	set, err := jwk.Parse(jwksJSON)
	if err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	s := &KeySet{byID: make(map[string]*publicKey, set.Len())}
	for i := 0; i < set.Len(); i++ {
		jk, _ := set.Key(i)
		if k := usablePublicKey(jk); k != nil {
			s.byID[jk.KeyID()] = k
		}
	}
	return s, nil
}

// usablePublicKey is jk as a verification key, or nil if it is not one (see NewKeySet).
func usablePublicKey(jk jwk.Key) *publicKey {
	if jk.KeyID() == "" || jk.Algorithm() == nil || (jk.KeyUsage() != "" && jk.KeyUsage() != string(jwk.ForSignature)) {
		return nil
	}
	alg := jk.Algorithm().String()
	var raw any
	if err := jk.Raw(&raw); err != nil {
		return nil
	}
	ok := false
	switch p := raw.(type) {
	case ed25519.PublicKey:
		ok = alg == EdDSA
	case *ecdsa.PublicKey:
		ok = alg == ES256 && p.Curve == elliptic.P256()
	case *rsa.PublicKey:
		ok = alg == RS256 && p.N.BitLen() >= 2048
	}
	if !ok {
		return nil
	}
	v, err := jws.NewVerifier(jwa.SignatureAlgorithm(alg))
	if err != nil {
		return nil
	}
	return &publicKey{alg: jwa.SignatureAlgorithm(alg), public: raw, verifier: v}
}

// KeyIDs returns the kids of the usable keys, sorted.
func (s *KeySet) KeyIDs() []string {
	ids := make([]string, 0, len(s.byID))
	for id := range s.byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// Expect is what a KeySet verification requires of a token besides its signature.
type Expect struct {
	Issuers   []string      // iss must be one of them
	Audiences []string      // aud (a string or an array) must hold one of them; empty skips the check
	Now       time.Time     // zero means time.Now()
	Leeway    time.Duration // clock skew allowed for exp, nbf and iat
}

// AccessClaims are the claims of a verified RFC 9068 access token. Optional claims the token
// lacks are zero.
type AccessClaims struct {
	Issuer    string
	Subject   string
	Audience  []string
	ClientID  string
	SessionID string // sid; empty in a client credentials token
	Scope     string // space separated
	AuthTime  time.Time
	AMR       []string
	ACR       string
	ID        string // jti
	IssuedAt  time.Time
	ExpiresAt time.Time
	Raw       map[string]any // every claim, numbers as json.Number
}

// VerifyAccessToken verifies raw as an RFC 9068 access token: header typ at+jwt, the signature
// by the key its kid names with that key's algorithm (never the token's choice), iss, aud, exp
// (required), nbf and iat (required), sub, client_id and jti present. A refresh token (typ JWT,
// no aud) is refused. Errors wrap ErrInvalid; ErrUnknownKey for an unknown kid.
func (s *KeySet) VerifyAccessToken(raw string, want Expect) (AccessClaims, error) {
	c, err := s.verify(raw, TypAccessToken, want)
	if err != nil {
		return AccessClaims{}, err
	}
	now := want.now()
	exp, ok := numericDate(c["exp"])
	if !ok {
		return AccessClaims{}, invalid("exp missing or not an integer")
	}
	if !now.Before(exp.Add(want.Leeway)) {
		return AccessClaims{}, invalid("expired")
	}
	iat, ok := numericDate(c["iat"])
	if !ok {
		return AccessClaims{}, invalid("iat missing or not an integer")
	}
	out := AccessClaims{IssuedAt: iat.UTC(), ExpiresAt: exp.UTC(), Raw: c}
	out.Issuer, _ = c["iss"].(string)
	out.Audience, _ = audience(c["aud"])
	for name, dst := range map[string]*string{"sub": &out.Subject, "client_id": &out.ClientID, "jti": &out.ID} {
		if *dst, _ = c[name].(string); *dst == "" {
			return AccessClaims{}, invalid("%s missing", name)
		}
	}
	out.SessionID, _ = c["sid"].(string)
	out.Scope, _ = c["scope"].(string)
	out.ACR, _ = c["acr"].(string)
	if v, present := c["auth_time"]; present {
		if out.AuthTime, ok = numericDate(v); !ok {
			return AccessClaims{}, invalid("auth_time not an integer")
		}
		out.AuthTime = out.AuthTime.UTC()
	}
	if v, present := c["amr"]; present {
		if out.AMR, ok = stringList(v); !ok {
			return AccessClaims{}, invalid("amr not an array of strings")
		}
	}
	return out, nil
}

// SETClaims are the claims of a verified RFC 8417 security event token carrying one event.
type SETClaims struct {
	Issuer    string
	ID        string // jti, stable across re-deliveries
	IssuedAt  time.Time
	EventType string         // the one member of events
	Event     map[string]any // its value
	SubjectID map[string]any // sub_id (SSF 1.0), or the event's subject (older CAEP drafts)
	Raw       map[string]any
}

// VerifySecurityEvent verifies raw as a SET: header typ secevent+jwt, the signature as for
// access tokens, iss, aud (when want names any), iat, jti, exactly one event, and no exp in
// the past when it has one. Errors wrap ErrInvalid; ErrUnknownKey for an unknown kid.
func (s *KeySet) VerifySecurityEvent(raw string, want Expect) (SETClaims, error) {
	c, err := s.verify(raw, TypSecEvent, want)
	if err != nil {
		return SETClaims{}, err
	}
	iat, ok := numericDate(c["iat"])
	if !ok {
		return SETClaims{}, invalid("iat missing or not an integer")
	}
	if v, present := c["exp"]; present {
		exp, ok := numericDate(v)
		if !ok || !want.now().Before(exp.Add(want.Leeway)) {
			return SETClaims{}, invalid("expired")
		}
	}
	out := SETClaims{IssuedAt: iat.UTC(), Raw: c}
	out.Issuer, _ = c["iss"].(string)
	if out.ID, _ = c["jti"].(string); out.ID == "" {
		return SETClaims{}, invalid("jti missing")
	}
	events, _ := c["events"].(map[string]any)
	if len(events) != 1 {
		return SETClaims{}, invalid("%d events, want 1", len(events))
	}
	for typ, ev := range events {
		out.EventType = typ
		if out.Event, ok = ev.(map[string]any); !ok {
			return SETClaims{}, invalid("event is not an object")
		}
	}
	if out.SubjectID, ok = c["sub_id"].(map[string]any); !ok {
		out.SubjectID, _ = out.Event["subject"].(map[string]any)
	}
	return out, nil
}

// verify checks the header, the signature, iss, aud, nbf and that iat is not in the future,
// and returns the decoded payload.
func (s *KeySet) verify(raw, typ string, want Expect) (map[string]any, error) {
	if len(raw) > maxTokenSize {
		return nil, invalid("larger than %d bytes", maxTokenSize)
	}
	headerSeg, rest, _ := strings.Cut(raw, ".")
	payloadSeg, sigSeg, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(sigSeg, ".") {
		return nil, invalid("%d segments, want 3", strings.Count(raw, ".")+1)
	}
	header, err := segment(headerSeg, 1)
	if err != nil {
		return nil, err
	}
	payload, err := segment(payloadSeg, 2)
	if err != nil {
		return nil, err
	}
	sig, err := segment(sigSeg, 3)
	if err != nil {
		return nil, err
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
	// typ is compared case-insensitively and with or without "application/" (RFC 7515 4.1.9).
	if t, _ := h["typ"].(string); !strings.EqualFold(strings.TrimPrefix(strings.ToLower(t), "application/"), typ) {
		return nil, invalid("typ %q, want %s", t, typ)
	}
	kid, _ := h["kid"].(string)
	k, ok := s.byID[kid]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownKey, kid)
	}
	if alg, _ := h["alg"].(string); alg != k.alg.String() {
		return nil, invalid("alg %q does not match key %q", alg, kid)
	}
	signingInput := raw[:len(headerSeg)+1+len(payloadSeg)]
	if err := k.verifier.Verify([]byte(signingInput), sig, k.public); err != nil {
		return nil, invalid("signature: %v", err)
	}
	c, err := decodeObject(payload)
	if err != nil {
		return nil, invalid("payload: %v", err)
	}
	if iss, _ := c["iss"].(string); !slices.Contains(want.Issuers, iss) {
		return nil, invalid("iss %q not accepted", iss)
	}
	if len(want.Audiences) > 0 {
		aud, ok := audience(c["aud"])
		if !ok || !slices.ContainsFunc(aud, func(a string) bool { return slices.Contains(want.Audiences, a) }) {
			return nil, invalid("aud %v not accepted", c["aud"])
		}
	}
	now := want.now()
	if v, present := c["nbf"]; present {
		nbf, ok := numericDate(v)
		if !ok {
			return nil, invalid("nbf not an integer")
		}
		if now.Add(want.Leeway).Before(nbf) {
			return nil, invalid("not valid yet")
		}
	}
	if iat, ok := numericDate(c["iat"]); ok && now.Add(want.Leeway).Before(iat) {
		return nil, invalid("issued in the future")
	}
	return c, nil
}

func (e Expect) now() time.Time {
	if e.Now.IsZero() {
		return time.Now()
	}
	return e.Now
}

// audience reads aud, a string or an array of strings (RFC 7519 4.1.3).
func audience(v any) ([]string, bool) {
	if s, ok := v.(string); ok {
		return []string{s}, true
	}
	return stringList(v)
}

func stringList(v any) ([]string, bool) {
	arr, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(arr))
	for _, e := range arr {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

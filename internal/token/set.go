package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// SETType is the typ header of a Security Event Token (RFC 8417 section 2.3): no token
// parser of ours accepts it, nor a SET parser anything else.
const SETType = "secevent+jwt"

// SET is one Security Event Token (RFC 8417) as the Shared Signals Framework profiles it:
// one event, no sub and no exp, the subject in sub_id (RFC 9493).
type SET struct {
	Issuer    string
	ID        string // jti: the same on every delivery of the event
	IssuedAt  time.Time
	Audience  []string
	Txn       string
	SubjectID map[string]any // sub_id
	EventType string         // the events claim's only member
	Event     map[string]any
}

// wireSET is the JSON payload of a SET; its fixed member order and sorted maps make the same
// SET the same bytes on every instance.
type wireSET struct {
	Issuer    string                    `json:"iss"`
	ID        string                    `json:"jti"`
	IssuedAt  int64                     `json:"iat"`
	Audience  any                       `json:"aud"`
	Txn       string                    `json:"txn,omitempty"`
	SubjectID map[string]any            `json:"sub_id"`
	Events    map[string]map[string]any `json:"events"`
}

// SETSigner signs SETs with an RSA key of at least 2048 bits (RS256, as the CAEP
// interoperability profile requires). It is kept apart from the Manager: a Manager never
// holds it, so nothing it signs verifies as a token.
type SETSigner struct {
	key *signingKey
}

// NewSETSigner loads k, which must be an RS256 key of at least 2048 bits (GenerateKey(RS256)
// makes one).
func NewSETSigner(k Key) (*SETSigner, error) {
	if k.Algorithm != RS256 {
		return nil, fmt.Errorf("SET signing key %q: algorithm %s, want RS256", k.ID, k.Algorithm)
	}
	sk, err := loadKey(k) // refuses RSA keys under 2048 bits
	if err != nil {
		return nil, fmt.Errorf("SET signing key %q: %w", k.ID, err)
	}
	return &SETSigner{key: sk}, nil
}

// KeyID is the kid of the SETs it signs.
func (s *SETSigner) KeyID() string { return s.key.id }

// Sign returns set as a compact JWS with header {"alg":"RS256","kid","typ":"secevent+jwt"}.
// The same set always gives the same bytes (RS256 signatures are deterministic).
func (s *SETSigner) Sign(set SET) (string, error) {
	switch {
	case set.Issuer == "" || set.ID == "" || set.EventType == "" || set.IssuedAt.IsZero():
		return "", errors.New("sign SET: issuer, jti, iat and event type are required")
	case len(set.Audience) == 0:
		return "", errors.New("sign SET: no audience")
	}
	w := wireSET{
		Issuer: set.Issuer, ID: set.ID, IssuedAt: set.IssuedAt.Unix(), Txn: set.Txn, SubjectID: set.SubjectID,
		Events: map[string]map[string]any{set.EventType: set.Event},
	}
	if w.Events[set.EventType] == nil {
		w.Events[set.EventType] = map[string]any{}
	}
	w.Audience = set.Audience
	if len(set.Audience) == 1 {
		w.Audience = set.Audience[0]
	}
	payload, err := json.Marshal(w)
	if err != nil {
		return "", fmt.Errorf("sign SET: %w", err)
	}
	h := jws.NewHeaders()
	if err := h.Set(jws.KeyIDKey, s.key.id); err != nil {
		return "", fmt.Errorf("sign SET: %w", err)
	}
	if err := h.Set(jws.TypeKey, SETType); err != nil {
		return "", fmt.Errorf("sign SET: %w", err)
	}
	tok, err := jws.Sign(payload, jws.WithKey(s.key.alg, s.key.private, jws.WithProtectedHeaders(h)))
	if err != nil {
		return "", fmt.Errorf("sign SET: %w", err)
	}
	return string(tok), nil
}

// AddToJWKS returns the JWK set jwks with the SET key's public half added, so that receivers
// find it at the jwks_uri.
func (s *SETSigner) AddToJWKS(jwks []byte) ([]byte, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &doc); err != nil {
		return nil, fmt.Errorf("add SET key to JWKS: %w", err)
	}
	one, err := publicJWKS([]*signingKey{s.key})
	if err != nil {
		return nil, fmt.Errorf("add SET key to JWKS: %w", err)
	}
	var mine struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(one, &mine); err != nil {
		return nil, fmt.Errorf("add SET key to JWKS: %w", err)
	}
	doc.Keys = append(doc.Keys, mine.Keys...)
	return json.Marshal(doc)
}

// VerifySET checks raw against the public keys of the JWK set jwks: an RS256 signature, typ
// secevent+jwt, exactly one event, no sub and no exp; it returns the header and the claims.
// Receivers and tests use it; it does not check iss or aud, which depend on the stream.
func VerifySET(raw string, jwks []byte) (header, claims map[string]any, err error) {
	set, err := jwk.Parse(jwks)
	if err != nil {
		return nil, nil, fmt.Errorf("verify SET: JWKS: %w", err)
	}
	msg, err := jws.Parse([]byte(raw))
	if err != nil || len(msg.Signatures()) != 1 {
		return nil, nil, fmt.Errorf("verify SET: %w", ErrInvalid)
	}
	sig := msg.Signatures()[0].ProtectedHeaders()
	if sig.Algorithm() != jwa.RS256 || sig.Type() != SETType {
		return nil, nil, fmt.Errorf("verify SET: alg %s typ %q: %w", sig.Algorithm(), sig.Type(), ErrInvalid)
	}
	payload, err := jws.Verify([]byte(raw), jws.WithKeySet(set, jws.WithRequireKid(true)))
	if err != nil {
		return nil, nil, fmt.Errorf("verify SET: %w", ErrInvalid)
	}
	hb, err := json.Marshal(sig)
	if err != nil {
		return nil, nil, fmt.Errorf("verify SET: %w", err)
	}
	if err := json.Unmarshal(hb, &header); err != nil {
		return nil, nil, fmt.Errorf("verify SET: %w", err)
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, nil, fmt.Errorf("verify SET: %w", ErrInvalid)
	}
	events, _ := claims["events"].(map[string]any)
	_, hasSub := claims["sub"]
	_, hasExp := claims["exp"]
	if len(events) != 1 || hasSub || hasExp {
		return nil, nil, fmt.Errorf("verify SET: not an SSF SET: %w", ErrInvalid)
	}
	return header, claims, nil
}

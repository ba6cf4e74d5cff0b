package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// Supported signing algorithms.
const (
	EdDSA = "EdDSA"
	ES256 = "ES256"
	RS256 = "RS256"
)

// ValidAlgorithm reports whether alg is one of EdDSA, ES256 and RS256.
func ValidAlgorithm(alg string) bool {
	switch alg {
	case EdDSA, ES256, RS256:
		return true
	}
	return false
}

// Key is a signing key as stored. Private is the private key as JWK JSON
// with kid and alg set to ID and Algorithm (or that, sealed by SealKey).
type Key struct {
	ID        string
	Algorithm string
	Private   []byte
	CreatedAt time.Time
	// SignFrom is when a Manager may begin to sign with the key; until then
	// it only publishes it and verifies with it, so that relying parties and
	// other instances have it before its first token. Zero means at once. It
	// is not stored: whoever loads the keys decides it.
	SignFrom time.Time
}

// GenerateKey makes a new key for alg (Ed25519 for EdDSA, P-256 for ES256,
// RSA 2048 for RS256) with a random 128-bit base64url key ID. It returns an
// error for an unsupported alg.
func GenerateKey(alg string, now time.Time) (Key, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return Key{}, fmt.Errorf("generate key: unsupported algorithm %q", alg)
	}
	if err != nil {
		return Key{}, fmt.Errorf("generate %s key: %w", alg, err)
	}
	id := base64.RawURLEncoding.EncodeToString(randomBytes(16))
	jk, err := jwk.FromRaw(priv)
	if err != nil {
		return Key{}, fmt.Errorf("generate %s key: %w", alg, err)
	}
	if err := setMembers(jk, id, alg, false); err != nil {
		return Key{}, fmt.Errorf("generate %s key: %w", alg, err)
	}
	b, err := json.Marshal(jk)
	if err != nil {
		return Key{}, fmt.Errorf("generate %s key: %w", alg, err)
	}
	return Key{ID: id, Algorithm: alg, Private: b, CreatedAt: now}, nil
}

// signingKey is a Key parsed and checked for use.
type signingKey struct {
	id        string
	alg       jwa.SignatureAlgorithm
	private   crypto.Signer
	public    crypto.PublicKey
	verifier  jws.Verifier // jwx's verifier for alg, made once
	createdAt time.Time
	signFrom  time.Time
}

// loadKey parses k.Private and checks that it is a private key of the kind
// k.Algorithm needs, with the same kid and alg as k.
func loadKey(k Key) (*signingKey, error) {
	if k.ID == "" {
		return nil, errors.New("empty key ID")
	}
	if !ValidAlgorithm(k.Algorithm) {
		return nil, fmt.Errorf("unsupported algorithm %q", k.Algorithm)
	}
	jk, err := jwk.ParseKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("parse JWK: %w", err)
	}
	if jk.KeyID() != k.ID {
		return nil, fmt.Errorf("JWK kid %q does not match key ID", jk.KeyID())
	}
	if alg := jk.Algorithm(); alg == nil || alg.String() != k.Algorithm {
		return nil, fmt.Errorf("JWK alg does not match algorithm %s", k.Algorithm)
	}
	var raw any
	if err := jk.Raw(&raw); err != nil {
		return nil, fmt.Errorf("parse JWK: %w", err)
	}
	var priv crypto.Signer
	switch p := raw.(type) {
	case ed25519.PrivateKey:
		if k.Algorithm == EdDSA {
			priv = p
		}
	case *ecdsa.PrivateKey:
		if k.Algorithm == ES256 && p.Curve == elliptic.P256() {
			priv = p
		}
	case *rsa.PrivateKey:
		if k.Algorithm == RS256 && p.N.BitLen() >= 2048 {
			priv = p
		}
	}
	if priv == nil {
		return nil, fmt.Errorf("JWK is not a private key usable with %s", k.Algorithm)
	}
	alg := jwa.SignatureAlgorithm(k.Algorithm)
	verifier, err := jws.NewVerifier(alg)
	if err != nil {
		return nil, fmt.Errorf("verifier: %w", err)
	}
	return &signingKey{
		id:        k.ID,
		alg:       alg,
		private:   priv,
		public:    priv.Public(),
		verifier:  verifier,
		createdAt: k.CreatedAt,
		signFrom:  k.SignFrom,
	}, nil
}

// publicJWKS renders the public halves of keys as a JWK set. Building each
// JWK from the crypto public key, not by filtering the stored private JWK,
// makes it impossible for a private member to leak.
func publicJWKS(keys []*signingKey) ([]byte, error) {
	set := jwk.NewSet()
	for _, k := range keys {
		jk, err := jwk.FromRaw(k.public)
		if err != nil {
			return nil, fmt.Errorf("key %q: %w", k.id, err)
		}
		if err := setMembers(jk, k.id, k.alg.String(), true); err != nil {
			return nil, fmt.Errorf("key %q: %w", k.id, err)
		}
		if err := set.AddKey(jk); err != nil {
			return nil, fmt.Errorf("key %q: %w", k.id, err)
		}
	}
	return json.Marshal(set)
}

func setMembers(jk jwk.Key, id, alg string, sigUse bool) error {
	if err := jk.Set(jwk.KeyIDKey, id); err != nil {
		return err
	}
	if err := jk.Set(jwk.AlgorithmKey, jwa.SignatureAlgorithm(alg)); err != nil {
		return err
	}
	if sigUse {
		return jk.Set(jwk.KeyUsageKey, jwk.ForSignature)
	}
	return nil
}

// randomBytes returns n bytes from crypto/rand, which never fails.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

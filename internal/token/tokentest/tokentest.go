// Package tokentest signs arbitrary JWTs with the standard library, so that tests of the
// verifiers can make tokens authapi would never issue (other typ, alg, kid, claims).
package tokentest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
)

// Key is a signing key with its kid and alg (EdDSA, ES256 or RS256).
type Key struct {
	ID   string
	Alg  string
	priv crypto.Signer
}

// NewKey generates a key for alg; it panics on an unknown alg (a test's mistake).
func NewKey(id, alg string) *Key {
	var priv crypto.Signer
	var err error
	switch alg {
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "RS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		panic("tokentest: unknown alg " + alg)
	}
	if err != nil {
		panic(err)
	}
	return &Key{ID: id, Alg: alg, priv: priv}
}

// JWK is the public JWK of k, with kid, alg and use sig.
func (k *Key) JWK() map[string]any {
	b64 := base64.RawURLEncoding.EncodeToString
	m := map[string]any{"kid": k.ID, "alg": k.Alg, "use": "sig"}
	switch p := k.priv.Public().(type) {
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64(p)
	case *ecdsa.PublicKey:
		point, err := p.Bytes() // 0x04 || X || Y
		if err != nil {
			panic(err)
		}
		m["kty"], m["crv"], m["x"], m["y"] = "EC", "P-256", b64(point[1:33]), b64(point[33:])
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64(p.N.Bytes()), b64(big.NewInt(int64(p.E)).Bytes())
	}
	return m
}

// JWKS is the JWKS document of keys.
func JWKS(keys ...*Key) []byte {
	list := make([]map[string]any, 0, len(keys))
	for _, k := range keys {
		list = append(list, k.JWK())
	}
	b, _ := json.Marshal(map[string]any{"keys": list})
	return b
}

// Sign signs claims with k under a header {alg: k.Alg, kid: k.ID, typ}; header members given
// in extra replace or add to those (a nil value removes one).
func (k *Key) Sign(typ string, claims map[string]any, extra map[string]any) string {
	h := map[string]any{"alg": k.Alg, "kid": k.ID, "typ": typ}
	for name, v := range extra {
		if v == nil {
			delete(h, name)
		} else {
			h[name] = v
		}
	}
	hb, _ := json.Marshal(h)
	cb, _ := json.Marshal(claims)
	input := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	return input + "." + base64.RawURLEncoding.EncodeToString(k.signature([]byte(input)))
}

func (k *Key) signature(input []byte) []byte {
	switch p := k.priv.(type) {
	case ed25519.PrivateKey:
		return ed25519.Sign(p, input)
	case *ecdsa.PrivateKey:
		sum := sha256.Sum256(input)
		r, s, err := ecdsa.Sign(rand.Reader, p, sum[:])
		if err != nil {
			panic(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	case *rsa.PrivateKey:
		sum := sha256.Sum256(input)
		sig, err := rsa.SignPKCS1v15(rand.Reader, p, crypto.SHA256, sum[:])
		if err != nil {
			panic(err)
		}
		return sig
	}
	panic(fmt.Sprintf("tokentest: key type %T", k.priv))
}

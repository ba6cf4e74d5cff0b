package token

import (
	"crypto"

	lru "github.com/hashicorp/golang-lru/v2"
)

// verifiedRefreshTokens bounds the refresh tokens whose signature ParseEither remembers.
// An entry is the token (about 400 bytes), its decoded claims and the map's and list's
// share (about 800): 5 MiB in all.
const verifiedRefreshTokens = 4096

// verified is a signature check ParseEither made: the claims it decoded (read only, so
// that a token seen again is not decoded again either), the header's typ and the key that
// checked it.
type verified struct {
	claims map[string]any
	typ    string
	key    *signingKey
}

// verifiedCache remembers the refresh tokens whose signature checked out, keyed by the exact
// token: a client that verifies its refresh token again and again pays the Ed25519 check
// (a quarter of a verify's CPU) and the decoding of its claims once. The claims (expiry,
// issuer, type) are still checked on every use, and an entry counts only while the key that
// checked it is in the ring. Access tokens are left to the auth cache in front of this
// package, and the tokens Parse reads (a refresh, a logout: each token once) are not added.
type verifiedCache struct {
	lru *lru.Cache[string, verified]
}

func newVerifiedCache() verifiedCache {
	c, err := lru.New[string, verified](verifiedRefreshTokens)
	if err != nil {
		panic(err) // only for a size below 1
	}
	return verifiedCache{lru: c}
}

// get is the remembered check of raw, if its key is still one of r's.
func (c verifiedCache) get(r *keyring, raw string) (verified, bool) {
	v, ok := c.lru.Get(raw)
	if !ok {
		return verified{}, false
	}
	held := r.byID[v.key.id]
	if held == nil {
		c.lru.Remove(raw)
		return verified{}, false
	}
	// A reload of the keys makes new signingKeys of the same keys.
	if held != v.key {
		pub, ok := held.public.(interface{ Equal(crypto.PublicKey) bool })
		if !ok || !pub.Equal(v.key.public) {
			c.lru.Remove(raw)
			return verified{}, false
		}
	}
	return v, true
}

// add remembers a check of raw.
func (c verifiedCache) add(raw string, v verified) { c.lru.Add(raw, v) }

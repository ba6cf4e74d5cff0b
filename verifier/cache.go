package verifier

import (
	"crypto/sha256"
	"sync"
	"time"
)

// verifiedCache remembers the claims of tokens whose signature and claims have been checked,
// until they expire, so that a token used again costs a hash instead of a signature check.
// Revocation is checked on every use all the same: only the signature work is kept.
type verifiedCache struct {
	mu     sync.RWMutex
	byHash map[[sha256.Size]byte]*Claims
	leeway time.Duration
}

// maxVerified bounds the cache; past it the cache starts again (cheaper than an LRU, and a
// flood of distinct valid tokens is expensive to make).
const maxVerified = 50_000

func newVerifiedCache(leeway time.Duration) *verifiedCache {
	return &verifiedCache{byHash: map[[sha256.Size]byte]*Claims{}, leeway: leeway}
}

func (c *verifiedCache) get(key [sha256.Size]byte, now time.Time) (*Claims, bool) {
	c.mu.RLock()
	claims, ok := c.byHash[key]
	c.mu.RUnlock()
	if !ok || !now.Before(claims.ExpiresAt.Add(c.leeway)) {
		return nil, false
	}
	return claims, true
}

func (c *verifiedCache) put(key [sha256.Size]byte, claims *Claims, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byHash) >= maxVerified {
		for k, v := range c.byHash {
			if !now.Before(v.ExpiresAt.Add(c.leeway)) {
				delete(c.byHash, k)
			}
		}
		if len(c.byHash) >= maxVerified {
			clear(c.byHash)
		}
	}
	c.byHash[key] = claims
}

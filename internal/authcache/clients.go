package authcache

import (
	"slices"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/authapi/authapi/internal/store"
)

// The cache also keeps API clients as authenticating them reads them (package clients), so
// that a client-authenticated request (introspection, revocation, Shared Signals) needs no
// database query. A client is dropped by every change of it made through this process's
// Store before the Store method returns, by Run when it reads another instance's change in
// the log, and with everything else when the cache goes stale; a stale cache answers nothing.

// maxClients bounds the cached clients; clients are few, this is only a bound against misuse.
const maxClients = 1_000

// clientCache is the clients' part of a Cache, under Cache.mu.
type clientCache struct {
	lru *simplelru.LRU[string, store.APIClient]
	gen uint64 // bumped by every client invalidation, see ClientGen
}

func newClientCache() clientCache {
	lru, _ := simplelru.NewLRU[string, store.APIClient](maxClients, nil) // fails only for a size <= 0
	return clientCache{lru: lru}
}

// Client returns API client id as it was read, if it is cached and the cache fresh. The
// result is a copy the caller may keep.
func (c *Cache) Client(id string) (store.APIClient, bool) {
	if !c.Fresh() {
		return store.APIClient{}, false
	}
	c.mu.Lock()
	cl, ok := c.clients.lru.Get(id)
	c.mu.Unlock()
	if !ok {
		return store.APIClient{}, false
	}
	return cloneClient(cl), true
}

// ClientGen returns the client invalidation generation: read it before reading a client from
// the store and pass it to AddClient, which drops the client if any client was invalidated
// meanwhile (what was read may predate the change).
func (c *Cache) ClientGen() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clients.gen
}

// AddClient caches cl, read from the store after gen was read from ClientGen.
func (c *Cache) AddClient(gen uint64, cl store.APIClient) {
	if !c.Fresh() {
		return
	}
	cl = cloneClient(cl)
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen == c.clients.gen {
		c.clients.lru.Add(cl.ID, cl)
	}
}

// ClientUsed records in the cached copy of client id, if any, that it was last used at at, so
// that the copy does not ask for another last_used_at write before the grain has passed.
// last_used_at is not authentication state: it invalidates nothing.
func (c *Cache) ClientUsed(id string, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.clients.lru.Peek(id); ok {
		cl.LastUsedAt = &at
		c.clients.lru.Add(id, cl)
	}
}

// InvalidateClient drops API client id.
func (c *Cache) InvalidateClient(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clients.gen++
	c.clients.lru.Remove(id)
}

// cloneClient copies the slices of cl, so that no caller shares them with the cache.
func cloneClient(cl store.APIClient) store.APIClient {
	cl.Scopes = slices.Clone(cl.Scopes)
	cl.SecretHash = slices.Clone(cl.SecretHash)
	cl.PreviousSecretHash = slices.Clone(cl.PreviousSecretHash)
	return cl
}

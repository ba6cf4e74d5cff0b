// Package authcache keeps verified access tokens with the user and session they resolved to,
// so that an authenticated request needs neither a signature check nor a database query, and
// drops them as soon as anything about their user changes, on every instance sharing the
// database.
//
// What it guarantees:
//
//   - An entry is keyed by the exact token string: a token is only ever accepted because the
//     very same bytes were verified before. Only successes are cached.
//   - An entry dies at the token's exp or the session's expiry, whichever comes first, and is
//     not used once its signing key has left the token Manager's ring.
//   - A change made through this process's Store (revocation, deactivation, demotion, password
//     change, deletion, login) drops the user's entries before the Store method returns.
//   - A change made by another instance is read from the store's change log (written in the
//     change's own transaction) by Run, every PollInterval; its user's entries are dropped.
//   - Fail closed: when the change log has not been read successfully for StaleAfter, the
//     cache answers nothing until it has (every request reads the database), and it is
//     emptied when reading resumes.
//   - At most MaxBytes of entries, by each entry's estimated size (see entrySize), and at most
//     MaxEntries when that is set; least recently used are evicted first.
//
// It keeps API clients under the same guarantees (see clients.go).
package authcache

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
)

// Config tunes a Cache. Zero values mean the defaults noted.
type Config struct {
	// MaxBytes bounds the memory of the cached tokens, by each entry's estimated size
	// (entrySize: the token, its user and session without the password hash, and the maps'
	// and list's share); default DefaultMaxBytes, 64 MiB. An access token of a password
	// login (names, email, user agent, amr) makes an entry of about 1.9 KB by that
	// estimate (1.8 KB measured): 64 MiB hold about 34,000 of them, 100,000 need 186 MiB.
	MaxBytes int64
	// MaxEntries, when positive, also bounds the number of cached tokens; default none.
	MaxEntries int
	// PollInterval is how often Run reads the change log; default 200ms. It must stay well
	// under StaleAfter.
	PollInterval time.Duration
	// StaleAfter is how long the cache is trusted without a successful read of the change
	// log; default 1s.
	StaleAfter time.Duration
	// GapTimeout is how long a missing id in the change log is waited for (see Run); default
	// 10s.
	GapTimeout time.Duration
	// PruneAfter is the age after which Run deletes change-log rows; default 1 minute.
	PruneAfter time.Duration
	// Now is the clock tokens and sessions expire by (the token Manager's); default time.Now.
	// Staleness is measured on the process's monotonic clock, whatever Now says.
	Now    func() time.Time
	Logger *slog.Logger
}

// DefaultConfig is the cache serve runs with unless told otherwise; zero values of a Config
// are filled in from it.
func DefaultConfig() Config {
	return Config{
		MaxBytes: DefaultMaxBytes, PollInterval: 200 * time.Millisecond, StaleAfter: time.Second,
		GapTimeout: 10 * time.Second, PruneAfter: time.Minute,
		Now: time.Now, Logger: slog.New(slog.DiscardHandler),
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = d.MaxBytes
	}
	def(&c.PollInterval, d.PollInterval)
	def(&c.StaleAfter, d.StaleAfter)
	def(&c.GapTimeout, d.GapTimeout)
	def(&c.PruneAfter, d.PruneAfter)
	if c.Now == nil {
		c.Now = d.Now
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	return c
}

// Entry is what a verified access token resolved to. User.PasswordHash is always empty: the
// cache does not hold password hashes.
type Entry struct {
	Claims  token.Claims
	User    store.User
	Session store.Session
}

type entry struct {
	Entry
	kid     string
	expires time.Time
	size    int64 // entrySize, counted in Cache.bytes
}

// DefaultMaxBytes is the memory the cache holds by default.
const DefaultMaxBytes = 64 << 20

// entryOverhead is what an entry costs besides its struct and its strings' bytes: the LRU's
// map slot and list element, the byUser map's slot (and its share of a user's map), the
// pointers to it, allocation rounding. TestEntrySizeBoundsHeap measures the heap an entry
// really takes and checks that entrySize is no less.
const entryOverhead = 480

// entrySize estimates the heap an entry for raw takes. TestEntrySizeCountsEveryField fails
// when a field of the claims, the user or the session is left out.
func entrySize(raw string, e *entry) int64 {
	n := int(unsafe.Sizeof(*e)) + entryOverhead + len(raw) + len(e.kid)
	c, u, s := &e.Claims, &e.User, &e.Session
	for _, str := range []string{c.SessionID, c.ID, c.Issuer, c.ClientID, c.ACR,
		u.Username, u.FirstName, u.LastName, u.Email, u.PendingEmail, s.ID, s.UserAgent, s.IP} {
		n += len(str)
	}
	for _, list := range [][]string{c.Audience, c.AMR, s.AMR} {
		n += 16 * cap(list)
		for _, str := range list {
			n += len(str)
		}
	}
	for _, at := range []*time.Time{u.LastLogin, u.EmailVerifiedAt, s.RevokedAt} {
		if at != nil {
			n += 24
		}
	}
	return int64(n)
}

// Cache is safe for concurrent use. Its zero value is not usable; call New.
type Cache struct {
	cfg    Config
	st     *store.Store
	tokens *token.Manager

	mu      sync.Mutex
	lru     *simplelru.LRU[string, *entry]
	byUser  map[int64]map[string]struct{} // the keys of each user's entries
	bytes   int64                         // the entries' sizes, at most cfg.MaxBytes
	gen     uint64                        // bumped by every invalidation, see Gen
	clients clientCache                   // see clients.go

	epoch    time.Time    // origin of lastRead
	lastRead atomic.Int64 // monotonic nanoseconds since epoch of the last good read; 0: never
	log      changeLog    // only Run's goroutine touches it
}

// New returns an empty Cache over st's change log and tokens' key ring. It registers with st
// so that changes made through st drop their user's entries at once. The cache answers
// nothing until Run has read the change log once.
func New(cfg Config, st *store.Store, tokens *token.Manager) *Cache {
	cfg = cfg.withDefaults()
	c := &Cache{cfg: cfg, st: st, tokens: tokens, byUser: map[int64]map[string]struct{}{}, clients: newClientCache(), epoch: time.Now()}
	limit := cfg.MaxEntries
	if limit <= 0 {
		limit = math.MaxInt // the memory bound evicts
	}
	c.lru, _ = simplelru.NewLRU(limit, c.evicted) // fails only for a size <= 0
	st.OnAuthChange(c.InvalidateUser)
	st.OnClientChange(c.InvalidateClient)
	return c
}

// evicted keeps byUser in step with the LRU; it runs under mu.
func (c *Cache) evicted(raw string, e *entry) {
	c.bytes -= e.size
	keys := c.byUser[e.User.ID]
	delete(keys, raw)
	if len(keys) == 0 {
		delete(c.byUser, e.User.ID)
	}
}

// Fresh reports whether the change log was read successfully within StaleAfter.
func (c *Cache) Fresh() bool {
	last := c.lastRead.Load()
	return last != 0 && time.Since(c.epoch)-time.Duration(last) <= c.cfg.StaleAfter
}

// CaughtUp reports whether the change log has been read completely by a read that began after
// t (a time.Now reading of this process): every change committed before t has been applied.
func (c *Cache) CaughtUp(t time.Time) bool {
	last := c.lastRead.Load()
	return last != 0 && int64(t.Sub(c.epoch)) < last
}

// Get returns what the access token raw resolved to when it was verified, if it is cached,
// still unexpired, its key still in the ring, and the cache fresh.
func (c *Cache) Get(raw string) (Entry, bool) {
	if !c.Fresh() {
		return Entry{}, false
	}
	now := c.cfg.Now()
	c.mu.Lock()
	e, ok := c.lru.Get(raw)
	if ok && !now.Before(e.expires) {
		c.lru.Remove(raw)
		ok = false
	}
	c.mu.Unlock()
	if !ok || !c.tokens.HasKey(e.kid) {
		return Entry{}, false
	}
	return e.Entry, true
}

// Gen returns the invalidation generation. A caller reads it before verifying a token and
// loading its user and session, and passes it to Add: if anything was invalidated meanwhile,
// Add drops the entry, since what was loaded may predate the change.
func (c *Cache) Gen() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// Add caches e for the access token raw, which the caller verified and whose user and session
// it loaded and accepted, after reading gen from Gen.
func (c *Cache) Add(gen uint64, raw string, e Entry) {
	if e.Claims.Type != token.Access || !c.Fresh() {
		return
	}
	kid := token.KeyID(raw)
	expires := e.Claims.ExpiresAt
	if e.Session.ExpiresAt.Before(expires) {
		expires = e.Session.ExpiresAt
	}
	if kid == "" || !c.cfg.Now().Before(expires) {
		return
	}
	e.User.PasswordHash = ""
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	c.lru.Remove(raw) // an entry for raw already (evicted updates bytes and byUser)
	ne := &entry{Entry: e, kid: kid, expires: expires}
	ne.size = entrySize(raw, ne)
	if ne.size > c.cfg.MaxBytes {
		return
	}
	for c.bytes+ne.size > c.cfg.MaxBytes && c.lru.Len() > 0 {
		c.lru.RemoveOldest()
	}
	c.lru.Add(raw, ne)
	c.bytes += ne.size
	keys := c.byUser[e.User.ID]
	if keys == nil {
		keys = map[string]struct{}{}
		c.byUser[e.User.ID] = keys
	}
	keys[raw] = struct{}{}
}

// InvalidateUser drops every entry of the user.
func (c *Cache) InvalidateUser(userID int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for raw := range c.byUser[userID] {
		c.lru.Remove(raw) // evicted edits byUser[userID]: deleting during range is allowed
	}
	delete(c.byUser, userID)
}

// Purge drops every entry and every client.
func (c *Cache) Purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.lru.Purge()
	clear(c.byUser)
	c.bytes = 0
	c.clients.gen++
	c.clients.lru.Purge()
}

// Len returns the number of entries.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// Bytes returns the entries' estimated size (see Config.MaxBytes).
func (c *Cache) Bytes() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bytes
}

// Run reads the change log every PollInterval, and on PostgreSQL also as soon as a change
// commits (LISTEN/NOTIFY), dropping the entries of every user it names, and prunes rows older
// than PruneAfter about every 30 ticks, until ctx is done.
//
// On PostgreSQL ids come from a sequence and transactions commit in any order, so a row can
// become visible after rows with larger ids. Run therefore keeps a low-water mark: every id up
// to it has been read or given up on, and each poll reads every row above it, skipping those
// already seen. A missing id is given up on once a larger id has been seen for GapTimeout:
// ids are taken by the change's last statement, just before its commit, so a missing id is
// either rolled back or committing within milliseconds. At start the mark is set 1,000 ids
// below the last one, for changes committing while the instance starts.
func (c *Cache) Run(ctx context.Context) {
	wake := make(chan struct{}, 1)
	listened := make(chan struct{})
	go func() {
		defer close(listened)
		c.listen(ctx, wake)
	}()
	defer func() { <-listened }()
	tick := time.NewTicker(c.cfg.PollInterval)
	defer tick.Stop()
	for n := 0; ; n++ {
		c.Poll(ctx)
		if n%30 == 29 {
			if _, err := c.st.PruneAuthChanges(ctx, time.Now().Add(-c.cfg.PruneAfter)); err != nil && ctx.Err() == nil {
				c.cfg.Logger.Warn("prune auth changes", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-wake:
		}
	}
}

// listen wakes Run as soon as another instance commits a change, on PostgreSQL, so that it
// reads the log at once instead of at the next tick; polling alone keeps the guarantees.
func (c *Cache) listen(ctx context.Context, wake chan<- struct{}) {
	for {
		err := c.st.ListenAuthChanges(ctx, func() {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
		if errors.Is(err, store.ErrNoListen) || ctx.Err() != nil {
			return
		}
		level := slog.LevelWarn
		if errors.Is(err, store.ErrUnavailable) {
			level = slog.LevelDebug // as in failed
		}
		c.cfg.Logger.Log(ctx, level, "listen for auth changes; polling meanwhile", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// pollLimit bounds the rows one poll reads; a poll that reads that many has not caught up and
// does not count as a good read.
const pollLimit = 10_000

// startBack is how far below the last id the low-water mark starts.
const startBack = 1_000

// changeLog is Run's position in the change log.
type changeLog struct {
	started bool
	low     int64               // every id <= low has been read or given up on
	seen    map[int64]time.Time // ids > low read, and when first
}

// Poll reads the change log once (Run calls it; tests may too) and reports whether it read it
// completely. Concurrent calls are not allowed.
func (c *Cache) Poll(ctx context.Context) bool {
	l := &c.log
	if !l.started {
		last, err := c.st.LastAuthChangeID(ctx)
		if err != nil {
			c.failed(ctx, err)
			return false
		}
		l.low, l.seen, l.started = max(last-startBack, 0), map[int64]time.Time{}, true
	}
	start := max(time.Since(c.epoch), 1) // what is read is what had committed by now
	rows, err := c.st.AuthChangesAfter(ctx, l.low, pollLimit)
	if err != nil {
		c.failed(ctx, err)
		return false
	}
	now := time.Now()
	var users []int64
	var clients []string
	for _, r := range rows {
		if _, ok := l.seen[r.ID]; ok {
			continue
		}
		l.seen[r.ID] = now
		switch {
		case r.ClientID != "":
			if !slices.Contains(clients, r.ClientID) {
				clients = append(clients, r.ClientID)
			}
		case !slices.Contains(users, r.UserID):
			users = append(users, r.UserID)
		}
	}
	for _, u := range users {
		c.InvalidateUser(u)
	}
	for _, id := range clients {
		c.InvalidateClient(id)
	}
	ids := make([]int64, 0, len(l.seen))
	for id := range l.seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if id != l.low+1 && now.Sub(l.seen[id]) < c.cfg.GapTimeout {
			break
		}
		l.low = id
		delete(l.seen, id)
	}
	if len(rows) == pollLimit {
		return false // behind: not fresh until caught up
	}
	wasFresh := c.Fresh()
	if !wasFresh {
		// Changes may have been pruned while the log went unread: start from nothing.
		c.Purge()
	}
	c.lastRead.Store(int64(start))
	return true
}

func (c *Cache) failed(ctx context.Context, err error) {
	if ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return
	}
	level := slog.LevelWarn
	if errors.Is(err, store.ErrUnavailable) {
		level = slog.LevelDebug // the outage is logged once, where the store reports it
	}
	c.cfg.Logger.Log(ctx, level, "read auth change log", "err", err, "fresh", c.Fresh())
}

package authcache_test

import (
	"context"
	"database/sql"
	"fmt"
	"runtime"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"github.com/authapi/authapi/internal/authcache"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/testclock"
	"github.com/authapi/authapi/internal/token"
)

type env struct {
	st     *store.Store
	tokens *token.Manager
	clock  *testclock.Clock
	cache  *authcache.Cache
	key    token.Key
}

func newEnv(t *testing.T, backend string, cfg authcache.Config) *env {
	t.Helper()
	return newEnvOn(t, storetest.Open(t, backend), cfg)
}

func newEnvOn(t *testing.T, st *store.Store, cfg authcache.Config) *env {
	t.Helper()
	clk := testclock.New(time.Now().UTC().Truncate(time.Second))
	key, err := token.GenerateKey(token.EdDSA, clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := token.NewManager(token.Config{Issuer: "authapi", Now: clk.Now}, []token.Key{key})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Now = clk.Now
	if cfg.StaleAfter == 0 {
		cfg.StaleAfter = time.Hour // these tests poll by hand, not with Run
	}
	e := &env{st: st, tokens: tokens, clock: clk, cache: authcache.New(cfg, st, tokens), key: key}
	if !e.cache.Poll(context.Background()) {
		t.Fatal("first poll failed")
	}
	return e
}

// entry signs an access token for user and session sid and returns it with what it resolves to.
func (e *env) entry(t *testing.T, user int64, sid string) (string, authcache.Entry) {
	t.Helper()
	now := e.clock.Now()
	c := token.Claims{Type: token.Access, UserID: user, SessionID: sid, ID: fmt.Sprint(user, sid, now.UnixNano()),
		IssuedAt: now, ExpiresAt: now.Add(15 * time.Minute)}
	raw, err := e.tokens.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	return raw, authcache.Entry{
		Claims:  c,
		User:    store.User{ID: user, Username: fmt.Sprint("u", user), PasswordHash: "secret", IsActive: true},
		Session: store.Session{ID: sid, UserID: user, ExpiresAt: now.Add(time.Hour)},
	}
}

func (e *env) add(t *testing.T, user int64, sid string) (string, authcache.Entry) {
	t.Helper()
	raw, ent := e.entry(t, user, sid)
	e.cache.Add(e.cache.Gen(), raw, ent)
	if _, ok := e.cache.Get(raw); !ok {
		t.Fatalf("token of user %d not cached", user)
	}
	return raw, ent
}

func TestGetReturnsWhatWasAdded(t *testing.T) {
	e := newEnv(t, "sqlite", authcache.Config{})
	raw, want := e.add(t, 7, "s1")
	got, _ := e.cache.Get(raw)
	if got.User.ID != 7 || got.Session.ID != "s1" || got.Claims.ID != want.Claims.ID {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if got.User.PasswordHash != "" {
		t.Fatal("the cache keeps the password hash")
	}
}

// TestOnlyTheExactToken checks that a cached token never makes another one pass: the same
// token with one byte changed anywhere (signature, payload, header) misses.
func TestOnlyTheExactToken(t *testing.T) {
	e := newEnv(t, "sqlite", authcache.Config{})
	raw, _ := e.add(t, 1, "s1")
	for i := range raw {
		b := []byte(raw)
		b[i] ^= 1
		if _, ok := e.cache.Get(string(b)); ok {
			t.Fatalf("byte %d flipped: cache hit", i)
		}
	}
	for _, other := range []string{raw + "A", raw[:len(raw)-1], " " + raw} {
		if _, ok := e.cache.Get(other); ok {
			t.Fatalf("%q: cache hit", other)
		}
	}
}

func TestNeverCachesOtherTokenTypes(t *testing.T) {
	e := newEnv(t, "sqlite", authcache.Config{})
	raw, ent := e.entry(t, 1, "s1")
	ent.Claims.Type = token.Refresh
	e.cache.Add(e.cache.Gen(), raw, ent)
	if _, ok := e.cache.Get(raw); ok {
		t.Fatal("refresh claims cached")
	}
}

func TestEntriesDieAtExpiry(t *testing.T) {
	e := newEnv(t, "sqlite", authcache.Config{})
	raw, _ := e.add(t, 1, "s1") // token exp in 15 minutes, session in an hour
	e.clock.Add(15*time.Minute - time.Second)
	if _, ok := e.cache.Get(raw); !ok {
		t.Fatal("miss before exp")
	}
	e.clock.Add(time.Second)
	if _, ok := e.cache.Get(raw); ok {
		t.Fatal("hit at exp")
	}

	raw2, ent := e.entry(t, 2, "s2")
	ent.Session.ExpiresAt = e.clock.Now().Add(time.Minute) // the session ends first
	e.cache.Add(e.cache.Gen(), raw2, ent)
	e.clock.Add(time.Minute)
	if _, ok := e.cache.Get(raw2); ok {
		t.Fatal("hit after the session expired")
	}
}

func TestKeyLeavingTheRing(t *testing.T) {
	e := newEnv(t, "sqlite", authcache.Config{})
	raw, _ := e.add(t, 1, "s1")
	other, err := token.GenerateKey(token.EdDSA, e.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.tokens.SetKeys([]token.Key{other}); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.cache.Get(raw); ok {
		t.Fatal("hit after the token's key left the ring")
	}
	if err := e.tokens.SetKeys([]token.Key{other, e.key}); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.cache.Get(raw); !ok {
		t.Fatal("miss with the key back in the ring")
	}
}

// TestBounded floods the cache with distinct valid tokens: it never holds more than
// MaxEntries, and the newest are kept.
func TestBounded(t *testing.T) {
	const max = 50
	e := newEnv(t, "sqlite", authcache.Config{MaxEntries: max})
	var last string
	for i := range 20 * max {
		var ent authcache.Entry
		last, ent = e.entry(t, int64(1+i%7), fmt.Sprint("s", i))
		e.cache.Add(e.cache.Gen(), last, ent)
		if n := e.cache.Len(); n > max {
			t.Fatalf("after %d tokens: %d entries, bound %d", i+1, n, max)
		}
	}
	if e.cache.Len() != max {
		t.Fatalf("%d entries, want %d", e.cache.Len(), max)
	}
	if _, ok := e.cache.Get(last); !ok {
		t.Fatal("the newest token was evicted")
	}
	e.cache.InvalidateUser(3) // the index of evicted entries stays consistent
	e.cache.Purge()
	if e.cache.Len() != 0 {
		t.Fatal("entries after Purge")
	}
}

func TestInvalidateUser(t *testing.T) {
	e := newEnv(t, "sqlite", authcache.Config{})
	a1, _ := e.add(t, 1, "a1")
	a2, _ := e.add(t, 1, "a2")
	b, _ := e.add(t, 2, "b")
	e.cache.InvalidateUser(1)
	for _, raw := range []string{a1, a2} {
		if _, ok := e.cache.Get(raw); ok {
			t.Fatal("user 1's token still cached")
		}
	}
	if _, ok := e.cache.Get(b); !ok {
		t.Fatal("user 2's token dropped")
	}
}

// TestStaleLoadNotCached is the race of a request that loaded a user before a change and
// caches it after the change's invalidation: Add must drop it.
func TestStaleLoadNotCached(t *testing.T) {
	e := newEnv(t, "sqlite", authcache.Config{})
	raw, ent := e.entry(t, 1, "s1")
	gen := e.cache.Gen() // the request starts
	e.cache.InvalidateUser(1)
	e.cache.Add(gen, raw, ent)
	if _, ok := e.cache.Get(raw); ok {
		t.Fatal("an entry loaded before an invalidation was cached")
	}
}

// TestLocalChangesInvalidateAtOnce: a change made through the cache's own Store drops the
// user's entries before the Store method returns, without any poll.
func TestLocalChangesInvalidateAtOnce(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, backend, authcache.Config{PollInterval: time.Hour})
			u := store.User{Username: "alice", PasswordHash: "h", IsActive: true, DateJoined: time.Now()}
			if err := e.st.CreateUser(context.Background(), &u); err != nil {
				t.Fatal(err)
			}
			raw, _ := e.add(t, u.ID, "s1")
			if _, err := e.st.UpgradePasswordHash(context.Background(), u.ID, "h", "h2"); err != nil {
				t.Fatal(err)
			}
			if _, ok := e.cache.Get(raw); ok {
				t.Fatal("still cached after a change through the Store")
			}
		})
	}
}

// TestPollInvalidatesOtherInstancesChanges: two caches on one database, each with its own
// Store; a change through one Store reaches the other cache through the change log.
func TestPollInvalidatesOtherInstancesChanges(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dsn := storetest.DSN(t, backend)
			a, b := openStore(t, dsn), openStore(t, dsn)
			if err := a.Migrate(context.Background()); err != nil {
				t.Fatal(err)
			}
			eb := newEnvOn(t, b, authcache.Config{})
			u := store.User{Username: "alice", PasswordHash: "h", IsActive: true, DateJoined: time.Now()}
			if err := a.CreateUser(context.Background(), &u); err != nil {
				t.Fatal(err)
			}
			rawB, _ := eb.add(t, u.ID, "s1")
			if _, err := a.UpgradePasswordHash(context.Background(), u.ID, "h", "h2"); err != nil {
				t.Fatal(err)
			}
			if _, ok := eb.cache.Get(rawB); !ok {
				t.Fatal("the other instance dropped the entry before reading the log")
			}
			if !eb.cache.Poll(context.Background()) {
				t.Fatal("poll failed")
			}
			if _, ok := eb.cache.Get(rawB); ok {
				t.Fatal("still cached after the poll read the change")
			}
		})
	}
}

// TestPollInvalidatesEveryUserItReads: two users changed on another instance within one poll
// interval; the one poll that reads both changes drops the entries of both, and only theirs.
func TestPollInvalidatesEveryUserItReads(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsn := storetest.DSN(t, backend)
			a, b := openStore(t, dsn), openStore(t, dsn)
			if err := a.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			eb := newEnvOn(t, b, authcache.Config{})
			raws := map[string]string{}
			ids := map[string]int64{}
			for _, name := range []string{"alice", "bob", "carol"} {
				u := store.User{Username: name, PasswordHash: "h", IsActive: true, DateJoined: time.Now()}
				if err := a.CreateUser(ctx, &u); err != nil {
					t.Fatal(err)
				}
				ids[name] = u.ID
			}
			if !eb.cache.Poll(ctx) { // past the creations' changes
				t.Fatal("poll failed")
			}
			for name, id := range ids {
				raws[name], _ = eb.add(t, id, "s-"+name)
			}
			for _, name := range []string{"alice", "bob"} {
				if _, err := a.UpgradePasswordHash(ctx, ids[name], "h", "h2"); err != nil {
					t.Fatal(err)
				}
			}
			if !eb.cache.Poll(ctx) {
				t.Fatal("poll failed")
			}
			for name, wantCached := range map[string]bool{"alice": false, "bob": false, "carol": true} {
				if _, ok := eb.cache.Get(raws[name]); ok != wantCached {
					t.Errorf("%s's entry cached = %v after one poll read alice's and bob's changes, want %v", name, ok, wantCached)
				}
			}
		})
	}
}

func openStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestFailClosed: when the change log cannot be read for StaleAfter, the cache answers
// nothing; when it can again, it starts empty.
func TestFailClosed(t *testing.T) {
	dsn := storetest.DSN(t, "sqlite")
	st := openStore(t, dsn)
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, st, authcache.Config{StaleAfter: 100 * time.Millisecond})
	raw, ent := e.entry(t, 1, "s1")
	cachedWhileFresh(t, e, func() bool {
		e.cache.Add(e.cache.Gen(), raw, ent)
		_, ok := e.cache.Get(raw)
		return ok
	})
	db := rawDB(t, "sqlite3", dsn)
	if _, err := db.Exec(`ALTER TABLE auth_changes RENAME TO auth_changes_away`); err != nil {
		t.Fatal(err)
	}
	if e.cache.Poll(context.Background()) {
		t.Fatal("poll of a missing table succeeded")
	}
	waitFor(t, "the cache to stop answering", func() bool { _, ok := e.cache.Get(raw); return !ok })
	if e.cache.Fresh() {
		t.Fatal("fresh without a read")
	}
	if _, err := db.Exec(`ALTER TABLE auth_changes_away RENAME TO auth_changes`); err != nil {
		t.Fatal(err)
	}
	if !e.cache.Poll(context.Background()) {
		t.Fatal("poll failed with the table back")
	}
	if _, ok := e.cache.Get(raw); ok || e.cache.Len() != 0 {
		t.Fatal("entries survived a stale period")
	}
}

// TestOutOfOrderCommits: on PostgreSQL a change log row can become visible after rows with
// larger ids; the poll that follows must still see it.
func TestOutOfOrderCommits(t *testing.T) {
	dsn := storetest.DSN(t, "postgres")
	st := openStore(t, dsn)
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, st, authcache.Config{})
	slow, _ := e.add(t, 1, "s1")
	fast, _ := e.add(t, 2, "s2")
	db := rawDB(t, "pgx", dsn)
	ctx := context.Background()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`INSERT INTO auth_changes (user_id, at) VALUES (1, now())`); err != nil {
		t.Fatal(err) // takes the smaller id, commits later
	}
	if _, err := db.Exec(`INSERT INTO auth_changes (user_id, at) VALUES (2, now())`); err != nil {
		t.Fatal(err)
	}
	e.cache.Poll(ctx)
	if _, ok := e.cache.Get(fast); ok {
		t.Fatal("user 2's change not seen")
	}
	if _, ok := e.cache.Get(slow); !ok {
		t.Fatal("user 1 dropped before its change committed")
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	e.cache.Poll(ctx)
	if _, ok := e.cache.Get(slow); ok {
		t.Fatal("a change committed out of id order was skipped")
	}
}

// rawDB opens dsn outside the store, for what the store would not do. For PostgreSQL dsn
// selects the test's schema with search_path.
func rawDB(t *testing.T, driver, dsn string) *sql.DB {
	t.Helper()
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// cachedWhileFresh reads the change log and runs add until it reports its entry cached. With a
// StaleAfter of 100ms a loaded machine may let the cache go stale between the read and the
// Add, which a stale cache ignores; the next round tries again.
func cachedWhileFresh(t *testing.T, e *env, add func() bool) {
	t.Helper()
	waitFor(t, "an entry added while the cache is fresh", func() bool {
		if !e.cache.Poll(context.Background()) {
			t.Fatal("poll failed")
		}
		return add()
	})
}

// waitFor polls cond every 50ms for up to 30s: only a hang fails, not a loaded machine.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestNotifyWakesTheReader: on PostgreSQL another instance's change reaches a running cache
// through LISTEN/NOTIFY, long before its (here hour-long) poll interval.
func TestNotifyWakesTheReader(t *testing.T) {
	dsn := storetest.DSN(t, "postgres")
	a, b := openStore(t, dsn), openStore(t, dsn)
	if err := a.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	eb := newEnvOn(t, b, authcache.Config{PollInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); eb.cache.Run(ctx) }()
	defer func() { cancel(); <-done }()
	u := store.User{Username: "alice", PasswordHash: "h", IsActive: true, DateJoined: time.Now()}
	if err := a.CreateUser(context.Background(), &u); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first read", eb.cache.Fresh)
	// The first change may be seen by the read the listener makes once it listens; the
	// second can only be seen through a notification.
	for i, hash := range []string{"h", "h+"} {
		raw, _ := eb.add(t, u.ID, fmt.Sprint("s", i))
		if _, err := a.UpgradePasswordHash(context.Background(), u.ID, hash, hash+"+"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the notified poll", func() bool { _, ok := eb.cache.Get(raw); return !ok })
	}
}

func TestCaughtUp(t *testing.T) {
	e := newEnv(t, "sqlite", authcache.Config{})
	before := time.Now()
	if e.cache.CaughtUp(before) {
		t.Fatal("caught up with a time after the last read")
	}
	if !e.cache.Poll(context.Background()) || !e.cache.CaughtUp(before) {
		t.Fatal("not caught up after a read")
	}
}

// realisticEntry is an access token of a password login for user, with the claims, user and
// session the server caches (names, email, amr, audience, user agent).
func (e *env) realisticEntry(t *testing.T, user int64) (string, authcache.Entry) {
	t.Helper()
	now := e.clock.Now()
	sid := fmt.Sprintf("%032x", user)
	c := token.Claims{Type: token.Access, UserID: user, SessionID: sid, ID: fmt.Sprintf("%032x", user*7919),
		IssuedAt: now, ExpiresAt: now.Add(15 * time.Minute), Issuer: "https://auth.example.com",
		Audience: []string{"https://auth.example.com"}, AuthTime: now, AMR: []string{"pwd"}, ACR: "aal1"}
	raw, err := e.tokens.Sign(c)
	if err != nil {
		t.Fatal(err)
	}
	last := now
	return raw, authcache.Entry{
		Claims: c,
		User: store.User{ID: user, Username: fmt.Sprintf("user%07d", user), FirstName: "Firstname", LastName: "Lastname",
			Email: fmt.Sprintf("user%07d@example.com", user), PasswordHash: "secret", IsActive: true, LastLogin: &last, DateJoined: now},
		Session: store.Session{ID: sid, UserID: user, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour),
			UserAgent: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", IP: "203.0.113.7", AMR: []string{"pwd"}},
	}
}

// TestBoundedBytes floods the cache with distinct users' tokens: it never holds more than
// MaxBytes of entries by their estimate, and the newest are kept.
func TestBoundedBytes(t *testing.T) {
	const maxBytes = 64 << 10
	e := newEnv(t, "sqlite", authcache.Config{MaxBytes: maxBytes})
	var last string
	for i := range 500 {
		var ent authcache.Entry
		last, ent = e.realisticEntry(t, int64(1+i))
		e.cache.Add(e.cache.Gen(), last, ent)
		if b := e.cache.Bytes(); b > maxBytes {
			t.Fatalf("after %d tokens: %d bytes, bound %d", i+1, b, maxBytes)
		}
	}
	n := e.cache.Len()
	if n < 20 || e.cache.Bytes() < maxBytes*9/10 {
		t.Fatalf("%d entries of %d bytes under a bound of %d: the bound is not used", n, e.cache.Bytes(), maxBytes)
	}
	if _, ok := e.cache.Get(last); !ok {
		t.Fatal("the newest token was evicted")
	}
	e.cache.InvalidateUser(500)
	if got := e.cache.Len(); got != n-1 {
		t.Fatalf("%d entries after invalidating the newest's user, want %d", got, n-1)
	}
	e.cache.Purge()
	if e.cache.Len() != 0 || e.cache.Bytes() != 0 {
		t.Fatalf("%d entries of %d bytes after Purge", e.cache.Len(), e.cache.Bytes())
	}
}

// TestEntrySizeBoundsHeap caches 20,000 distinct users' tokens and checks that the heap they
// take (live heap after, minus before, all garbage collected) is no more than the cache's
// estimate: the memory bound is a bound on memory.
func TestEntrySizeBoundsHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("signs 20,000 tokens")
	}
	const n = 20_000
	e := newEnv(t, "sqlite", authcache.Config{MaxBytes: 1 << 30})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range n {
		raw, ent := e.realisticEntry(t, int64(1+i))
		e.cache.Add(e.cache.Gen(), raw, ent)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if e.cache.Len() != n {
		t.Fatalf("%d entries, want %d", e.cache.Len(), n)
	}
	heap := float64(after.HeapAlloc) - float64(before.HeapAlloc)
	perEntry, estimate := heap/n, float64(e.cache.Bytes())/n
	t.Logf("heap per entry %.0f bytes, estimate %.0f", perEntry, estimate)
	if perEntry > estimate {
		t.Fatalf("an entry takes %.0f bytes of heap, more than the %.0f the bound counts", perEntry, estimate)
	}
	runtime.KeepAlive(e.cache)
}

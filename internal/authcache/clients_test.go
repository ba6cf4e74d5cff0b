package authcache_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/authcache"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

func newClient(t *testing.T, st *store.Store, id string) store.APIClient {
	t.Helper()
	now := time.Now().UTC().Truncate(time.Second)
	c := store.APIClient{ID: id, Name: "0", Scopes: []string{"introspect"}, CreatedAt: now, UpdatedAt: now,
		SecretHash: make([]byte, 32), SecretSetAt: now}
	if err := st.CreateAPIClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return c
}

// readClient is how package clients reads a client through the cache.
func readClient(ctx context.Context, c *authcache.Cache, st *store.Store, id string) (store.APIClient, error) {
	if cl, ok := c.Client(id); ok {
		return cl, nil
	}
	gen := c.ClientGen()
	cl, err := st.APIClientByID(ctx, id)
	if err == nil {
		c.AddClient(gen, cl)
	}
	return cl, err
}

func mustCacheClient(t *testing.T, c *authcache.Cache, st *store.Store, id string) {
	t.Helper()
	if _, err := readClient(context.Background(), c, st, id); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Client(id); !ok {
		t.Fatalf("client %s not cached", id)
	}
}

func rename(name string) func(c *store.APIClient) ([]store.AuditEvent, error) {
	return func(c *store.APIClient) ([]store.AuditEvent, error) {
		c.Name = name
		return []store.AuditEvent{{Action: "client.updated"}}, nil
	}
}

// TestClientChangesInvalidateAtOnce: an update (rename, disable, rotation alike) or a deletion
// of a client through the cache's own Store drops the client before the method returns; a
// change of a user does not drop it, and an update that changes nothing keeps it.
func TestClientChangesInvalidateAtOnce(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			e := newEnv(t, backend, authcache.Config{PollInterval: time.Hour})
			newClient(t, e.st, "ac_1")
			mustCacheClient(t, e.cache, e.st, "ac_1")
			e.cache.InvalidateUser(1)
			if _, err := e.st.UpdateAPIClient(ctx, "ac_1", func(*store.APIClient) ([]store.AuditEvent, error) { return nil, nil }); err != nil {
				t.Fatal(err)
			}
			if _, ok := e.cache.Client("ac_1"); !ok {
				t.Fatal("dropped by a user's change or by an update that changed nothing")
			}
			if _, err := e.st.UpdateAPIClient(ctx, "ac_1", rename("1")); err != nil {
				t.Fatal(err)
			}
			if _, ok := e.cache.Client("ac_1"); ok {
				t.Fatal("still cached after an update through the Store")
			}
			mustCacheClient(t, e.cache, e.st, "ac_1")
			if err := e.st.DeleteAPIClient(ctx, "ac_1"); err != nil {
				t.Fatal(err)
			}
			if _, ok := e.cache.Client("ac_1"); ok {
				t.Fatal("still cached after a deletion through the Store")
			}
		})
	}
}

// TestClientChangesReachOtherInstances: two caches on one database, each with its own Store;
// a client's update and deletion through one Store reach the other cache through the change
// log, and only that client's entry is dropped.
func TestClientChangesReachOtherInstances(t *testing.T) {
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
			newClient(t, a, "ac_1")
			newClient(t, a, "ac_2")
			rawB, _ := eb.add(t, 7, "s1")
			for _, change := range []func() error{
				func() error { _, err := a.UpdateAPIClient(ctx, "ac_1", rename("1")); return err },
				func() error { return a.DeleteAPIClient(ctx, "ac_1") },
			} {
				mustCacheClient(t, eb.cache, b, "ac_1")
				mustCacheClient(t, eb.cache, b, "ac_2")
				if err := change(); err != nil {
					t.Fatal(err)
				}
				if _, ok := eb.cache.Client("ac_1"); !ok {
					t.Fatal("the other instance dropped the client before reading the log")
				}
				if !eb.cache.Poll(ctx) {
					t.Fatal("poll failed")
				}
				if _, ok := eb.cache.Client("ac_1"); ok {
					t.Fatal("still cached after the poll read the change")
				}
				if _, ok := eb.cache.Client("ac_2"); !ok {
					t.Fatal("another client was dropped")
				}
				if _, ok := eb.cache.Get(rawB); !ok {
					t.Fatal("a client's change dropped a user's token")
				}
			}
		})
	}
}

// TestStaleClientLoadNotCached is the race of a request that read a client before a change
// and caches it after the change's invalidation: AddClient must drop it.
func TestStaleClientLoadNotCached(t *testing.T) {
	e := newEnv(t, "sqlite", authcache.Config{})
	c := newClient(t, e.st, "ac_1")
	gen := e.cache.ClientGen() // the request starts and reads c
	e.cache.InvalidateClient("ac_1")
	e.cache.AddClient(gen, c)
	if _, ok := e.cache.Client("ac_1"); ok {
		t.Fatal("a client read before an invalidation was cached")
	}
}

// TestClientCacheFailsClosed: a stale cache answers no client, and starts without them.
func TestClientCacheFailsClosed(t *testing.T) {
	dsn := storetest.DSN(t, "sqlite")
	st := openStore(t, dsn)
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	e := newEnvOn(t, st, authcache.Config{StaleAfter: 100 * time.Millisecond})
	newClient(t, st, "ac_1")
	cachedWhileFresh(t, e, func() bool {
		if _, err := readClient(context.Background(), e.cache, st, "ac_1"); err != nil {
			t.Fatal(err)
		}
		_, ok := e.cache.Client("ac_1")
		return ok
	})
	db := rawDB(t, "sqlite3", dsn)
	if _, err := db.Exec(`ALTER TABLE auth_changes RENAME TO auth_changes_away`); err != nil {
		t.Fatal(err)
	}
	if e.cache.Poll(context.Background()) {
		t.Fatal("poll of a missing table succeeded")
	}
	waitFor(t, "the cache to stop answering", func() bool { _, ok := e.cache.Client("ac_1"); return !ok })
	if _, err := db.Exec(`ALTER TABLE auth_changes_away RENAME TO auth_changes`); err != nil {
		t.Fatal(err)
	}
	if !e.cache.Poll(context.Background()) {
		t.Fatal("poll failed with the table back")
	}
	if _, ok := e.cache.Client("ac_1"); ok {
		t.Fatal("a client survived a stale period")
	}
}

// TestClientReadsNeverOlderThanACompletedChange is the race of readers against a writer, on
// one instance and on another (whose reader polls the log as Run does): a read that begins
// after a change returned (locally) or after the cache read the log past it (elsewhere) never
// sees the client as it was before that change.
func TestClientReadsNeverOlderThanACompletedChange(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dsn := storetest.DSN(t, backend)
			a, b := openStore(t, dsn), openStore(t, dsn)
			if err := a.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			ea, eb := newEnvOn(t, a, authcache.Config{}), newEnvOn(t, b, authcache.Config{})
			newClient(t, a, "ac_1")

			const changes = 40
			var done atomic.Bool
			var committed atomic.Int64 // the last version whose update returned
			var polled atomic.Int64    // the last version b's log read is known to include
			var wg sync.WaitGroup
			defer func() { done.Store(true); wg.Wait() }()
			check := func(e *env, since *atomic.Int64) {
				for !done.Load() {
					want := since.Load()
					c, err := readClient(ctx, e.cache, e.st, "ac_1")
					if err != nil {
						t.Error(err)
						return
					}
					if got, _ := strconv.ParseInt(c.Name, 10, 64); got < want {
						t.Errorf("read version %d after version %d was in place", got, want)
						return
					}
				}
			}
			for range 3 {
				wg.Go(func() { check(ea, &committed) })
				wg.Go(func() { check(eb, &polled) })
			}
			wg.Go(func() { // b's Run: one poller at a time
				for !done.Load() {
					v := committed.Load()
					if eb.cache.Poll(ctx) {
						polled.Store(v)
					}
				}
			})
			for i := 1; i <= changes; i++ {
				if _, err := a.UpdateAPIClient(ctx, "ac_1", rename(strconv.Itoa(i))); err != nil {
					t.Fatal(err)
				}
				committed.Store(int64(i))
			}
			waitFor(t, "the other instance to read the last change", func() bool { return polled.Load() == changes })
		})
	}
}

package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// openSQLite opens a migrated store on a new SQLite file.
func openSQLite(t *testing.T, opts Options) *Store {
	t.Helper()
	st, err := OpenWithOptions(filepath.Join(t.TempDir(), "authapi.db"), opts)
	if err != nil {
		t.Fatalf("OpenWithOptions: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return st
}

// TestSQLiteHandles checks how a SQLite store is split: one writer connection, and a pool of
// readers sized by the options that SQLite itself keeps from writing.
func TestSQLiteHandles(t *testing.T) {
	st := openSQLite(t, Options{MaxOpenConns: 5})
	if st.readSQLDB == st.sqlDB {
		t.Fatal("reads and writes share one pool, want a reader pool apart from the writer")
	}
	if got := st.sqlDB.Stats().MaxOpenConnections; got != 1 {
		t.Errorf("writer: %d connections at most, want 1", got)
	}
	if got := st.readSQLDB.Stats().MaxOpenConnections; got != 5 {
		t.Errorf("readers: %d connections at most, want 5", got)
	}
	ctx := context.Background()
	err := st.read.WithContext(ctx).Exec("INSERT INTO signing_keys (id, algorithm, private, created_at) VALUES ('k', 'EdDSA', x'00', ?)", now()).Error
	if err == nil || !strings.Contains(err.Error(), "readonly") {
		t.Errorf("insert through the readers: %v, want a read-only error", err)
	}
	if err := st.CreateSigningKey(ctx, SigningKey{ID: "k", Algorithm: "EdDSA", Private: []byte{0}}); err != nil {
		t.Errorf("CreateSigningKey: %v", err)
	}
}

// TestSQLiteSynchronous checks that the synchronous setting reaches the writer connection,
// and that a mode given in the path still wins, as older configurations gave it.
func TestSQLiteSynchronous(t *testing.T) {
	for _, tc := range []struct {
		name, path, sync string
		want             int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{
		{"default", "", "", 1},
		{"normal", "", SyncNormal, 1},
		{"full", "", SyncFull, 2},
		{"FULL", "", "FULL", 2},
		{"full in the path", "?_sync=FULL", "", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := OpenWithOptions(filepath.Join(t.TempDir(), "authapi.db")+tc.path, Options{SQLiteSynchronous: tc.sync})
			if err != nil {
				t.Fatalf("OpenWithOptions: %v", err)
			}
			defer st.Close()
			var got int
			if err := st.db.Raw("PRAGMA synchronous").Scan(&got).Error; err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("synchronous = %d, want %d", got, tc.want)
			}
		})
	}
	if _, err := OpenWithOptions(filepath.Join(t.TempDir(), "authapi.db"), Options{SQLiteSynchronous: "off"}); err == nil {
		t.Error(`synchronous "off" accepted, want an error`)
	}
}

// TestOptionsDefaults checks what zero and negative options stand for.
func TestOptionsDefaults(t *testing.T) {
	got, err := Options{}.withDefaults()
	if err != nil || got != DefaultOptions() {
		t.Errorf("zero options = %+v, %v; want %+v", got, err, DefaultOptions())
	}
	got, err = Options{MaxOpenConns: 4, MaxIdleConns: 10}.withDefaults()
	if err != nil || got.MaxIdleConns != 4 {
		t.Errorf("idle above open = %+v, %v; want idle capped at 4", got, err)
	}
	got, err = Options{MaxOpenConns: 32}.withDefaults()
	if err != nil || got.MaxIdleConns != 32 || got.ConnMaxLifetime != 30*time.Minute {
		t.Errorf("open 32 = %+v, %v; want idle 32, lifetime 30m", got, err)
	}
	if _, err := (Options{MaxOpenConns: -1}).withDefaults(); err == nil {
		t.Error("max open -1 accepted, want an error")
	}
}

// TestRotationCommit checks that the rotation commit setting picks the statement that commits
// a rotation like every other write (the default) or asynchronously, and refuses others.
func TestRotationCommit(t *testing.T) {
	if _, err := OpenWithOptions(filepath.Join(t.TempDir(), "a.db"), Options{RotationCommit: "later"}); err == nil ||
		!strings.Contains(err.Error(), "rotation commit") {
		t.Errorf("rotation commit %q: %v, want refused", "later", err)
	}
	dsn := os.Getenv("AUTHAPI_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("AUTHAPI_TEST_POSTGRES_DSN not set: the statement choice is PostgreSQL's")
	}
	for _, tc := range []struct{ setting, want, wantLive string }{
		{"", rotatePostgresSQL, rotateLivePostgresSQL},
		{CommitAsync, rotatePostgresAsyncSQL, rotateLivePostgresAsyncSQL},
		{CommitSync, rotatePostgresSQL, rotateLivePostgresSQL},
		{"SYNC", rotatePostgresSQL, rotateLivePostgresSQL},
	} {
		st, err := OpenWithOptions(dsn, Options{RotationCommit: tc.setting})
		if err != nil {
			t.Fatalf("open with rotation commit %q: %v", tc.setting, err)
		}
		if st.rotateSQL != tc.want || st.rotateLiveSQL != tc.wantLive {
			t.Errorf("rotation commit %q: statements\n%s\n%s\nwant\n%s\n%s", tc.setting, st.rotateSQL, st.rotateLiveSQL, tc.want, tc.wantLive)
		}
		st.Close()
	}
}

package store_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/authapi/authapi/internal/store"
)

// mustOpenAndWrite opens a SQLite store at path, migrates it and writes a row, leaving the store
// open so that its -wal and -shm exist.
func mustOpenAndWrite(t *testing.T, path string) *store.Store {
	t.Helper()
	st, err := store.Open(path)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustCreateUser(t, st, "alice")
	return st
}

// wantPrivateFiles checks that the database file, its -wal and its -shm are all mode 0600.
func wantPrivateFiles(t *testing.T, path string) {
	t.Helper()
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		info, err := os.Stat(p)
		if err != nil {
			t.Errorf("stat %s: %v", filepath.Base(p), err)
			continue
		}
		if mode := info.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %04o, want 0600", filepath.Base(p), mode)
		}
	}
}

func TestOpenCreatesPrivateSQLiteFiles(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "authapi.db")
	st := mustOpenAndWrite(t, path)
	if w := st.Warnings(); len(w) != 0 {
		t.Errorf("Warnings() on a new file = %q, want none", w)
	}
	wantPrivateFiles(t, path)
}

// An umask of 0277 would leave the owner unable to write a file created 0600, and 0000 would let
// everyone write one created 0666: the files are 0600 under both. The umask belongs to the
// process, so this test is not parallel: Go runs it while no parallel test of the package runs.
func TestOpenCreatesPrivateSQLiteFilesWhateverTheUmask(t *testing.T) {
	for _, umask := range []int{0o277, 0o000, 0o022} {
		dir := t.TempDir()
		old := syscall.Umask(umask)
		func() {
			defer syscall.Umask(old)
			path := filepath.Join(dir, "authapi.db")
			mustOpenAndWrite(t, path)
			t.Logf("umask %04o", umask)
			wantPrivateFiles(t, path)
		}()
	}
}

func TestOpenRefusesSQLiteFilesOthersCanWrite(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		db, wal   fs.FileMode // 0: leave as created; wal 0: none
		refused   string      // the file named in the error, "" if Open must succeed
		wantModes string
	}{
		{name: "world-writable db", db: 0o666, refused: "authapi.db", wantModes: "0666"},
		{name: "group-writable db", db: 0o620, refused: "authapi.db", wantModes: "0620"},
		{name: "others-writable only", db: 0o602, refused: "authapi.db", wantModes: "0602"},
		{name: "world-writable wal", db: 0o600, wal: 0o666, refused: "authapi.db-wal", wantModes: "0666"},
		{name: "private", db: 0o600, wal: 0o600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "authapi.db")
			st, err := store.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			st.Close()
			if err := os.Chmod(path, tc.db); err != nil {
				t.Fatal(err)
			}
			if tc.wal != 0 {
				if err := os.WriteFile(path+"-wal", nil, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(path+"-wal", tc.wal); err != nil {
					t.Fatal(err)
				}
			}
			st, err = store.Open(path)
			if tc.refused == "" {
				if err != nil {
					t.Fatalf("Open of a private file: %v", err)
				}
				st.Close()
				return
			}
			if err == nil {
				st.Close()
				t.Fatalf("Open of a file with %s mode %s succeeded, want a refusal", tc.refused, tc.wantModes)
			}
			msg := err.Error()
			for _, want := range []string{filepath.Join(filepath.Dir(path), tc.refused), tc.wantModes, "chmod 600 "} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
		})
	}
}

func TestOpenWarnsOfSQLiteFilesOthersCanRead(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "authapi.db")
	st, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	st, err = store.Open(path)
	if err != nil {
		t.Fatalf("Open of a 0644 file: %v, want it opened with a warning", err)
	}
	defer st.Close()
	w := st.Warnings()
	if len(w) != 1 || !strings.Contains(w[0], path) || !strings.Contains(w[0], "0644") || !strings.Contains(w[0], "chmod 600 "+path) {
		t.Errorf("Warnings() = %q, want one naming %s, 0644 and chmod 600", w, path)
	}
}

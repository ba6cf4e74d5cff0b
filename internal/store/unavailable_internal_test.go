package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
	"gorm.io/gorm"
)

// TestIsUnavailable: the driver errors that say the database is out of reach, and some that
// say the statement was wrong.
func TestIsUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}, true},
		{fmt.Errorf("failed to receive message: %w", io.ErrUnexpectedEOF), true},
		{fmt.Errorf("write: %w", syscall.ECONNRESET), true},
		{driver.ErrBadConn, true},
		{pgconn.ErrConnClosed, true},
		{&pgconn.PgError{Code: "57P01"}, true}, // admin_shutdown
		{&pgconn.PgError{Code: "57P03"}, true}, // cannot_connect_now
		{&pgconn.PgError{Code: "08006"}, true}, // connection_failure
		{&pgconn.PgError{Code: "53300"}, true}, // too_many_connections
		{sqlite3.Error{Code: sqlite3.ErrBusy}, true},
		{sqlite3.Error{Code: sqlite3.ErrCantOpen}, true},
		{sqlite3.Error{Code: sqlite3.ErrIoErr}, true},
		{sqlite3.Error{Code: sqlite3.ErrReadonly}, true},

		{&pgconn.PgError{Code: "23505"}, false}, // unique_violation
		{&pgconn.PgError{Code: "42P01"}, false}, // undefined_table
		{sqlite3.Error{Code: sqlite3.ErrConstraint}, false},
		{sqlite3.Error{Code: sqlite3.ErrError}, false},
		{gorm.ErrRecordNotFound, false},
		{context.Canceled, false},
		{fmt.Errorf("dial: %w: %w", context.Canceled, syscall.ECONNREFUSED), false},
		{errors.New("something else"), false},
	} {
		if got := isUnavailable(tc.err); got != tc.want {
			t.Errorf("isUnavailable(%#v) = %v, want %v", tc.err, got, tc.want)
		}
		got := newAvailability().classify(tc.err)
		if errors.Is(got, ErrUnavailable) != tc.want || !errors.Is(got, tc.err) {
			t.Errorf("classify(%v) = %v: want ErrUnavailable %v, the driver's error kept", tc.err, got, tc.want)
		}
	}
}

// TestUnavailableReported: writes to a SQLite file another connection holds locked past the
// busy timeout fail with ErrUnavailable; the Store reports the outage once, and its end once
// the lock is gone.
func TestUnavailableReported(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "a.db")
	st, err := Open(path + "?_busy_timeout=20")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	changes := make(chan AvailabilityChange, 10)
	st.OnAvailabilityChange(func(c AvailabilityChange) { changes <- c })

	other, err := sql.Open("sqlite3", path+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	lock, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if _, err := lock.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := st.PruneAuthChanges(ctx, time.Now()); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("prune: %v, want ErrUnavailable", err)
		}
	}
	if c := <-changes; c.Available || c.Err == nil {
		t.Errorf("first change %+v, want the database gone, with its cause", c)
	}
	if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if c := <-changes; !c.Available || c.Down <= 0 {
		t.Errorf("second change %+v, want the database back after some time", c)
	}
	if _, err := st.PruneAuthChanges(ctx, time.Now()); err != nil {
		t.Fatalf("prune after the lock: %v", err)
	}
	if len(changes) != 0 {
		t.Errorf("%d more changes, want none", len(changes))
	}
}

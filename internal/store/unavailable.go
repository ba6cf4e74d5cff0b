package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
	"gorm.io/driver/postgres"
	"gorm.io/driver/sqlite"
	"gorm.io/gorm"
)

// ErrUnavailable means the database could not be reached or would not take the statement
// (PostgreSQL down, restarting or refusing connections; a SQLite file that cannot be opened,
// read or locked for longer than the busy timeout). Nothing was changed by the failed call;
// trying again once the database is back is safe. Every method may return it, wrapped
// around the driver's error.
var ErrUnavailable = errors.New("database unavailable")

// unavailableError is a driver error classified as ErrUnavailable; it keeps the driver's
// error in its chain for logs and errors.As.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string        { return "database unavailable: " + e.err.Error() }
func (e *unavailableError) Unwrap() error        { return e.err }
func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }

// isUnavailable reports whether err, from a driver, says the database is out of reach rather
// than that the statement was wrong. A cancelled context is the caller's doing, never the
// database's.
func isUnavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	var connect *pgconn.ConnectError
	var pgErr *pgconn.PgError
	var sqliteErr sqlite3.Error
	var netErr *net.OpError
	switch {
	case errors.As(err, &connect), errors.As(err, &netErr),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE):
		return true
	case errors.As(err, &pgErr):
		// Class 08: connection exception; 53: insufficient resources (disk full, out of
		// memory, too many connections); 57P01-03: the server is shutting down, crashed or
		// starting (admin_shutdown, crash_shutdown, cannot_connect_now).
		c := pgErr.Code
		return strings.HasPrefix(c, "08") || strings.HasPrefix(c, "53") ||
			c == "57P01" || c == "57P02" || c == "57P03"
	case errors.As(err, &sqliteErr):
		switch sqliteErr.Code {
		case sqlite3.ErrBusy, sqlite3.ErrLocked, sqlite3.ErrCantOpen, sqlite3.ErrIoErr, sqlite3.ErrReadonly,
			sqlite3.ErrFull, sqlite3.ErrPerm, sqlite3.ErrProtocol:
			return true
		}
	}
	return false
}

// classify returns err as ErrUnavailable if the driver says the database is out of reach
// (see isUnavailable), and marks the database down; any other error comes back unchanged.
// Every driver error passes through it: gorm's through the dialector's Translate, the few
// statements sent with database/sql directly at their call.
func (a *availability) classify(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || !isUnavailable(err) {
		return err
	}
	a.wentDown(err)
	return &unavailableError{err}
}

// AvailabilityChange is a change in whether the Store reaches its database.
type AvailabilityChange struct {
	// Available is false when a statement first failed with ErrUnavailable, true when the
	// database answered again.
	Available bool
	// Err is the first failure, when the database went away.
	Err error
	// Down is how long the database was unavailable, when it came back.
	Down time.Duration
}

// probeInterval is how often a Store whose database went away checks whether it is back.
const probeInterval = 500 * time.Millisecond

// availability tracks whether the database answers. The first ErrUnavailable marks it down
// and starts a probe that marks it up again at the first success, so that watchers hear of
// an outage twice however many statements fail during it. Statements that succeed touch
// none of it.
type availability struct {
	down  atomic.Bool
	probe func(context.Context) error // a read and a write, in the Store's ways

	mu     sync.Mutex
	fns    []func(AvailabilityChange)
	ctx    context.Context // cancelled by close: stops the probe
	cancel context.CancelFunc
	probes sync.WaitGroup
}

func newAvailability() *availability {
	a := &availability{}
	a.ctx, a.cancel = context.WithCancel(context.Background())
	return a
}

// wentDown marks the database down after err; only the first failure of an outage starts
// the probe.
func (a *availability) wentDown(err error) {
	if !a.down.CompareAndSwap(false, true) {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ctx.Err() != nil || a.probe == nil {
		return // closing (or opening): nobody to tell, nothing to probe with
	}
	a.probes.Add(1)
	go a.watch(err)
}

// watch tells the watchers the database went away, probes it until it answers, and tells
// them it is back. Watchers hear of each outage in order: the next cannot start before
// down is cleared, after the last call.
func (a *availability) watch(cause error) {
	defer a.probes.Done()
	start := time.Now()
	a.notify(AvailabilityChange{Err: cause})
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(a.ctx, 10*probeInterval)
		err := a.probe(ctx)
		cancel()
		if err == nil {
			a.notify(AvailabilityChange{Available: true, Down: time.Since(start)})
			a.down.Store(false)
			return
		}
	}
}

func (a *availability) notify(c AvailabilityChange) {
	a.mu.Lock()
	fns := a.fns
	a.mu.Unlock()
	for _, fn := range fns {
		fn(c)
	}
}

// close stops the probe and waits for it.
func (a *availability) close() {
	a.mu.Lock()
	a.cancel()
	a.mu.Unlock()
	a.probes.Wait()
}

// OnAvailabilityChange registers fn to be called when the database goes away (the first
// statement to fail with ErrUnavailable) and when it answers again (a probe, every half
// second meanwhile, succeeds): twice per outage, in that order, from one goroutine. fn must
// be quick and must not call the Store.
func (s *Store) OnAvailabilityChange(fn func(AvailabilityChange)) {
	s.avail.mu.Lock()
	defer s.avail.mu.Unlock()
	s.avail.fns = append(s.avail.fns, fn)
}

// probeAvailable checks that the database takes a write transaction (on SQLite, the write
// lock) and a read, as requests need.
func (s *Store) probeAvailable(ctx context.Context) error {
	var n int64
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		return tx.Raw("SELECT COUNT(*) FROM users WHERE id < 0").Scan(&n).Error
	})
	if err == nil {
		err = s.read.WithContext(ctx).Raw("SELECT COUNT(*) FROM users WHERE id < 0").Scan(&n).Error
	}
	return err
}

// The dialectors, with every error gorm reports classified (gorm passes each through
// Translate, TranslateError being on). They embed the drivers' own, so that gorm finds every
// optional interface of them.

type classifyingPostgres struct {
	*postgres.Dialector
	avail *availability
}

func (d classifyingPostgres) Translate(err error) error {
	return d.avail.classify(d.Dialector.Translate(err))
}

type classifyingSQLite struct {
	*sqlite.Dialector
	avail *availability
}

func (d classifyingSQLite) Translate(err error) error {
	return d.avail.classify(d.Dialector.Translate(err))
}

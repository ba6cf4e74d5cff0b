package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Login failure scopes: the lowercased username (known or not) and the client IP.
const (
	ScopeAccount = "account"
	ScopeIP      = "ip"
)

// loginFailureRow is one failed (or, while it is checked, reserved) login attempt, counted
// against Key in Scope. IP is the attempt's client IP in both scopes.
type loginFailureRow struct {
	ID    int64 `gorm:"primaryKey"`
	Scope string
	Key   string
	IP    string `gorm:"column:ip"`
	At    time.Time
}

func (loginFailureRow) TableName() string { return "login_failures" }

// loginIPRow records that a user logged in successfully from an IP.
type loginIPRow struct {
	UserID      int64  `gorm:"primaryKey"`
	IP          string `gorm:"column:ip;primaryKey"`
	LastLoginAt time.Time
}

func (loginIPRow) TableName() string { return "login_ips" }

// RecordLoginFailure counts one failed login against the account key and the IP at at,
// without checking any limit. It returns no sentinels.
func (s *Store) RecordLoginFailure(ctx context.Context, account, ip string, at time.Time) error {
	rows := []loginFailureRow{{Scope: ScopeAccount, Key: account, IP: ip, At: utc(at)}, {Scope: ScopeIP, Key: ip, IP: ip, At: utc(at)}}
	if err := s.write(ctx, func(db *gorm.DB) *gorm.DB { return db.Create(&rows) }).Error; err != nil {
		return fmt.Errorf("record login failure: %w", err)
	}
	return nil
}

// LoginAttempt is a login to reserve with ReserveLoginAttempt.
type LoginAttempt struct {
	Account, IP string    // the throttling keys: lowercased username and client IP
	At          time.Time // when the attempt is made
	Since       time.Time // failures at or before Since are out of the window
	// AccountLimit and IPLimit are how many failures in the window refuse an attempt; a
	// negative limit is not checked.
	AccountLimit, IPLimit int
	// AccountFromIPOnly counts against the account only its failures from IP (an IP that has
	// logged into the account before is not locked out by failures from elsewhere).
	AccountFromIPOnly bool
	// Failure is the audit event of the attempt failing, written with the reservation (and
	// withdrawn with it); Throttled is counted instead when the attempt is refused: one row
	// per action, IP (as its key: an IPv6 client's /64), window (At truncated to the
	// duration At - Since) and, when the account's limit refused (not the IP's), account,
	// with the number of refusals and the first and last one's times (see AuditEvent.Count).
	// Both get as TargetID the user whose username key is Account, if any, except a refusal
	// for the IP's failures, which names none. A zero event writes nothing.
	Failure, Throttled AuditEvent
}

// LoginReservation is the outcome of ReserveLoginAttempt.
type LoginReservation struct {
	// Reserved is true when the attempt was within its limits and has been recorded as a
	// failure, to be withdrawn with ReleaseLoginAttempt or LoginSucceeded.
	Reserved bool
	// IDs of the failures recorded, when Reserved, and of the audit event written with them.
	IDs      []int64
	AuditIDs []int64
	// AccountFailures and IPFailures are the most recent failures counted before the
	// attempt, newest first, at most the limit of them (none for a limit not checked).
	AccountFailures, IPFailures []time.Time
}

// ReserveLoginAttempt counts the failures in the window against the account and the IP and,
// when both are under their limits, records the attempt as a failure against both, in one
// transaction. Of any number of concurrent reservations for one key, on any number of
// processes sharing the database, at most as many as the limit allows succeed: SQLite's
// immediate transactions run one writer at a time, and on PostgreSQL each transaction takes
// an advisory lock per checked (scope, key), account before IP, before counting. The
// attempt's Failure event is written with the reservation, its Throttled event counted with a
// refusal (see LoginAttempt). It returns no sentinels.
func (s *Store) ReserveLoginAttempt(ctx context.Context, a LoginAttempt) (LoginReservation, error) {
	var out LoginReservation
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		if s.dialect == dialectPostgres {
			for _, l := range []struct {
				class, limit int
				key          string
			}{{lockAccount, a.AccountLimit, a.Account}, {lockIP, a.IPLimit, a.IP}} {
				if l.limit < 0 {
					continue
				}
				if err := lockThrottleKey(tx, l.class, l.key); err != nil {
					return err
				}
			}
		}
		count := func(limit int, where *gorm.DB) ([]time.Time, bool, error) {
			if limit < 0 {
				return nil, false, nil
			}
			var at []time.Time
			if limit > 0 {
				if err := where.Order("at DESC").Limit(limit).Pluck("at", &at).Error; err != nil {
					return nil, false, err
				}
			}
			for i := range at {
				at[i] = at[i].UTC()
			}
			return at, len(at) >= limit, nil
		}
		since := utc(a.Since)
		acct := tx.Model(&loginFailureRow{}).Where("scope = ? AND key = ? AND at > ?", ScopeAccount, a.Account, since)
		if a.AccountFromIPOnly {
			acct = acct.Where("ip = ?", a.IP)
		}
		var accountFull, ipFull bool
		var err error
		if out.AccountFailures, accountFull, err = count(a.AccountLimit, acct); err != nil {
			return err
		}
		ipq := tx.Model(&loginFailureRow{}).Where("scope = ? AND key = ? AND at > ?", ScopeIP, a.IP, since)
		if out.IPFailures, ipFull, err = count(a.IPLimit, ipq); err != nil {
			return err
		}
		full := accountFull || ipFull
		event := a.Failure
		if full {
			event = a.Throttled
		}
		if event.Action != "" && !ipFull { // a refusal for the IP's failures names no account
			var ids []int64
			if err := tx.Model(&userRow{}).Where("username_key = ?", a.Account).Limit(1).Pluck("id", &ids).Error; err != nil {
				return err
			}
			event.TargetID = 0
			if len(ids) > 0 {
				event.TargetID = ids[0]
			}
		}
		if full {
			if event.Action == "" {
				return nil
			}
			// A refusal costs no hashing, so a client can send them as fast as the database
			// takes them: they are counted, one row per window of the throttle and client IP
			// (and account, when its limit refused; not when the IP's did, so that changing
			// usernames does not multiply the rows).
			event.IP = a.IP // the network refused, an IPv6 client's /64
			account := ""
			if ipFull {
				event.TargetID = 0
			} else {
				account = a.Account
			}
			window := a.At.Truncate(a.At.Sub(a.Since)).UTC().Format(time.RFC3339Nano)
			return aggregateThrottled(tx, a.At, event, strings.Join([]string{event.Action, a.IP, account, window}, "\x00"))
		}
		if out.AuditIDs, err = writeAudit(tx, a.At, []AuditEvent{event}); err != nil {
			return err
		}
		rows := []loginFailureRow{
			{Scope: ScopeAccount, Key: a.Account, IP: a.IP, At: utc(a.At)},
			{Scope: ScopeIP, Key: a.IP, IP: a.IP, At: utc(a.At)},
		}
		if err := tx.Create(&rows).Error; err != nil {
			return err
		}
		out.Reserved, out.IDs = true, []int64{rows[0].ID, rows[1].ID}
		return nil
	})
	if err != nil {
		return LoginReservation{}, fmt.Errorf("reserve login attempt: %w", err)
	}
	return out, nil
}

// ReleaseLoginAttempt withdraws a reservation whose attempt was never checked (the password
// was not verified), with its audit event, so that it does not count as a failure. It
// returns no sentinels.
func (s *Store) ReleaseLoginAttempt(ctx context.Context, r LoginReservation) error {
	if len(r.IDs) == 0 && len(r.AuditIDs) == 0 {
		return nil
	}
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		return withdrawReservation(tx, r)
	})
	if err != nil {
		return fmt.Errorf("release login attempt: %w", err)
	}
	return nil
}

// withdrawReservation deletes the failures and the audit event a reservation recorded.
func withdrawReservation(tx *gorm.DB, r LoginReservation) error {
	if len(r.IDs) > 0 {
		if err := tx.Where("id IN ?", r.IDs).Delete(&loginFailureRow{}).Error; err != nil {
			return err
		}
	}
	if len(r.AuditIDs) > 0 {
		return tx.Where("id IN ?", r.AuditIDs).Delete(&auditEventRow{}).Error
	}
	return nil
}

// LoginSucceeded records, in one transaction, that the reserved attempt r of user userID
// (account key account) from ip succeeded at at, its password checked against passwordHash:
// it withdraws the reservation (and its audit event of a failure; StartSession writes the
// success), forgets the account's failures from that IP, and remembers the IP as one the
// user logs in from (see LoginIPKnown) unless the user's hash is no longer passwordHash (a
// password change, which forgets the known IPs, came first). It returns no sentinels; an
// unknown userID records no IP.
func (s *Store) LoginSucceeded(ctx context.Context, r LoginReservation, userID int64, passwordHash, account, ip string, at time.Time) error {
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		// Two concurrent successes of one account each delete their own reservation and then
		// the other's rows (the account's failures from the IP): without the account's lock,
		// PostgreSQL finds them waiting for each other and aborts one with a deadlock.
		if s.dialect == dialectPostgres {
			if err := lockThrottleKey(tx, lockAccount, account); err != nil {
				return err
			}
		}
		if err := withdrawReservation(tx, r); err != nil {
			return err
		}
		if err := tx.Where("scope = ? AND key = ? AND ip = ?", ScopeAccount, account, ip).Delete(&loginFailureRow{}).Error; err != nil {
			return err
		}
		// INSERT ... SELECT, so that a user deleted meanwhile, or whose password changed,
		// records nothing instead of failing on the foreign key. On PostgreSQL the user's row
		// is read FOR SHARE: a password change in progress is waited for (and its new hash
		// seen), and one that comes later waits for this IP and then forgets it.
		lock := ""
		if s.dialect == dialectPostgres {
			lock = " FOR SHARE"
		}
		return tx.Exec(`INSERT INTO login_ips (user_id, ip, last_login_at)
			SELECT id, ?, ? FROM users WHERE id = ? AND password_hash = ?`+lock+`
			ON CONFLICT (user_id, ip) DO UPDATE SET last_login_at = excluded.last_login_at`, ip, utc(at), userID, passwordHash).Error
	})
	if err != nil {
		return fmt.Errorf("login succeeded: %w", err)
	}
	return nil
}

// lockThrottleKey takes PostgreSQL's advisory lock of (class, key) until the transaction
// ends. Two int4 keys: the class keeps the scopes apart, so a hash collision can only
// serialise two keys of one scope, never deadlock across scopes.
func lockThrottleKey(tx *gorm.DB, class int, key string) error {
	return tx.Exec("SELECT pg_advisory_xact_lock(?, hashtext(?))", class, key).Error
}

// LoginIPKnown reports whether the user whose account key (lowercased username) is account
// has logged in successfully from ip after since (and since their password last changed:
// see forgetLoginIPs). It returns no sentinels; an unknown account has no known IPs.
func (s *Store) LoginIPKnown(ctx context.Context, account, ip string, since time.Time) (bool, error) {
	var n int64
	err := s.read.WithContext(ctx).Model(&loginIPRow{}).
		Joins("JOIN users ON users.id = login_ips.user_id").
		Where("users.username_key = ? AND login_ips.ip = ? AND login_ips.last_login_at > ?", account, ip, utc(since)).
		Count(&n).Error
	if err != nil {
		return false, fmt.Errorf("login ip known: %w", err)
	}
	return n > 0, nil
}

// forgetLoginIPs forgets, in tx, every IP user id has logged in from: run by each change of a
// password (not by a login's rehash of the same password), so that whoever knew the old one
// gets no exemption from the lockout (see LoginIPKnown) from an IP it logged in from.
func forgetLoginIPs(tx *gorm.DB, id int64) error {
	return tx.Where("user_id = ?", id).Delete(&loginIPRow{}).Error
}

package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// ResetRequest is a password reset request as accepted: the login typed (a username or an
// email address), where it came from, and the domain of the address when it is one.
type ResetRequest struct {
	ID        int64
	Login     string
	IP        string
	IPKey     string // IP's throttling key, which the per-IP limit counts
	Domain    string // lowercased; "" when Login is a username
	UserAgent string
	CreatedAt time.Time
}

type resetRequestRow struct {
	ID         int64 `gorm:"primaryKey"`
	Login      string
	IP         string
	IPKey      string `gorm:"column:ip_key"`
	Domain     string
	UserAgent  string
	CreatedAt  time.Time
	ResolvedAt *time.Time
}

func (resetRequestRow) TableName() string { return "password_reset_requests" }

// RequestLimit bounds the reset requests sharing a key (an IP's throttling key, a domain)
// since a time.
type RequestLimit struct {
	Reason string // what the refusal names: "ip", "recipient_domain"
	Column string // "ip_key" or "domain"
	Key    string // the value of Column; an empty key is not limited
	Max    int    // requests allowed since Since; negative: no limit
	Since  time.Time
}

// RecordResetRequest writes r unless one of limits is reached, in one transaction in which
// the counts cannot be passed by concurrent requests (PostgreSQL: an advisory lock per key;
// SQLite: one writer). It returns the limit reached and the time its oldest counted request
// leaves its window, or nil having written r. A refused request is not written: it does not
// extend the wait. It returns no sentinels.
func (s *Store) RecordResetRequest(ctx context.Context, r ResetRequest, limits []RequestLimit) (*RequestLimit, time.Time, error) {
	var (
		refused *RequestLimit
		oldest  time.Time
	)
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		refused = nil
		for i := range limits {
			l := limits[i]
			if l.Max < 0 || l.Key == "" {
				continue
			}
			if l.Column != "ip_key" && l.Column != "domain" {
				return fmt.Errorf("reset request limit on %q", l.Column)
			}
			if s.dialect == dialectPostgres {
				class := lockResetIP
				if l.Column == "domain" {
					class = lockResetDomain
				}
				if err := lockThrottleKey(tx, class, l.Key); err != nil {
					return err
				}
			}
			q := func() *gorm.DB {
				return tx.Model(&resetRequestRow{}).Where(l.Column+" = ? AND created_at > ?", l.Key, utc(l.Since))
			}
			var n int64
			if err := q().Count(&n).Error; err != nil {
				return err
			}
			if n >= int64(l.Max) {
				refused = &limits[i]
				var first resetRequestRow
				if err := q().Order("created_at").Limit(1).Find(&first).Error; err != nil {
					return err
				}
				oldest = first.CreatedAt.UTC()
				return nil
			}
		}
		row := resetRequestRow{Login: r.Login, IP: r.IP, IPKey: r.IPKey, Domain: r.Domain, UserAgent: r.UserAgent, CreatedAt: utc(r.CreatedAt)}
		return tx.Omit("ID").Create(&row).Error
	})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("record reset request: %w", err)
	}
	return refused, oldest, nil
}

// ResetCandidate is an account a reset request names, with how many reset tokens it was sent
// recently (for the per-account limit).
type ResetCandidate struct {
	User   User
	Recent int64
}

// ResetIssue is what resolving a request makes for one account: the token and the message
// carrying it.
type ResetIssue struct {
	Token EmailToken
	Mail  MailMessage
	// Events are written to the audit log with the token's user as TargetID.
	Events []AuditEvent
}

// maxResetAccounts bounds the accounts one request by email reaches (emails are not unique).
const maxResetAccounts = 5

// ResolveResetRequests resolves up to n pending reset requests, oldest first, each in a
// transaction of its own: it finds the active accounts the request names (the username,
// ignoring case, or else the email address, ignoring case, for a login with an @), counts
// their reset tokens made after recentSince, and calls issue, which returns the tokens and
// messages to write (none: the request ends silently). The request is marked resolved and its
// login blanked in the same transaction. On PostgreSQL concurrent resolvers skip each
// other's requests (FOR UPDATE SKIP LOCKED). It returns how many it resolved, and no
// sentinels.
func (s *Store) ResolveResetRequests(ctx context.Context, n int, now, recentSince time.Time,
	issue func(r ResetRequest, accounts []ResetCandidate) ([]ResetIssue, error)) (int, error) {
	done := 0
	for done < n {
		found := false
		err := s.transaction(ctx, func(tx *gorm.DB) error {
			var req resetRequestRow
			q := tx.Where("resolved_at IS NULL").Order("id").Limit(1)
			if s.dialect == dialectPostgres {
				q = q.Clauses(clause.Locking{Strength: "UPDATE", Options: "SKIP LOCKED"})
			}
			res := q.Find(&req)
			if res.Error != nil || res.RowsAffected == 0 {
				return res.Error
			}
			found = true
			var users []userRow
			uq := tx.Where("is_active AND username_key = ?", usernameKey(req.Login))
			if strings.Contains(req.Login, "@") {
				uq = tx.Where("is_active AND (username_key = ? OR email_key = ?)", usernameKey(req.Login), foldCase(req.Login))
			}
			if err := uq.Order("id").Limit(maxResetAccounts).Find(&users).Error; err != nil {
				return err
			}
			accounts := make([]ResetCandidate, 0, len(users))
			for _, u := range users {
				recent, err := countRecentEmailTokens(tx, u.ID, PurposePasswordReset, recentSince)
				if err != nil {
					return err
				}
				accounts = append(accounts, ResetCandidate{User: u.user(), Recent: recent})
			}
			issued, err := issue(ResetRequest{ID: req.ID, Login: req.Login, IP: req.IP, Domain: req.Domain,
				UserAgent: req.UserAgent, CreatedAt: req.CreatedAt.UTC()}, accounts)
			if err != nil {
				return err
			}
			for _, is := range issued {
				if err := createEmailToken(tx, is.Token); err != nil {
					return err
				}
				if err := enqueueMail(tx, now, []MailMessage{is.Mail}); err != nil {
					return err
				}
				if _, err := writeAudit(tx, utc(now), withTarget(is.Events, is.Token.UserID, "")); err != nil {
					return err
				}
			}
			return tx.Model(&resetRequestRow{}).Where("id = ?", req.ID).
				Updates(map[string]any{"resolved_at": utc(now), "login": ""}).Error
		})
		if err != nil {
			return done, fmt.Errorf("resolve reset requests: %w", err)
		}
		if !found {
			break
		}
		done++
	}
	return done, nil
}

// PendingResetRequests counts the reset requests not yet resolved. It returns no sentinels.
func (s *Store) PendingResetRequests(ctx context.Context) (int64, error) {
	var n int64
	if err := s.read.WithContext(ctx).Model(&resetRequestRow{}).Where("resolved_at IS NULL").Count(&n).Error; err != nil {
		return 0, fmt.Errorf("pending reset requests: %w", err)
	}
	return n, nil
}

// PasswordReset is the use of a password reset token, for ResetPassword.
type PasswordReset struct {
	TokenHash string
	UserID    int64 // the token's user, as read before hashing the new password
	NewHash   string
	At        time.Time
	// Events are written to the audit log with the user as TargetID; Mail (the notice of
	// the change) to the outbox.
	Events []AuditEvent
	Mail   []MailMessage
}

// ResetPassword uses a password reset token: in one transaction it marks the token used
// (only if unused and unexpired: of concurrent uses one wins) and the user's other reset
// tokens too, sets the password hash of the user (who must still be active), forgets the IPs
// the user logged in from, revokes every session of the user (logged: every instance drops
// them; Shared Signals credential-change and session-revoked events where a stream wants
// them), and writes the audit events and the mail. It returns how many sessions it revoked.
//
// It returns ErrEmailTokenInvalid (unknown, used, expired, of another user) or
// ErrUserNotFound (gone or inactive); then nothing is changed.
func (s *Store) ResetPassword(ctx context.Context, r PasswordReset) (int64, error) {
	at := utc(r.At)
	var revoked int64
	err := s.authTx(ctx, func(tx *gorm.DB, w *authWrite) error {
		if err := consumeEmailToken(tx, r.TokenHash, PurposePasswordReset, r.UserID, at); err != nil {
			return err
		}
		res := tx.Model(&userRow{}).Where("id = ? AND is_active", r.UserID).Update("password_hash", r.NewHash)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrUserNotFound
		}
		if err := voidEmailTokens(tx, r.UserID, PurposePasswordReset, at); err != nil {
			return err
		}
		if err := forgetLoginIPs(tx, r.UserID); err != nil {
			return err
		}
		ended, err := revokeUserSessions(tx, r.UserID, at)
		if err != nil {
			return err
		}
		revoked = int64(len(ended))
		if _, err := writeAudit(tx, at, withTarget(r.Events, r.UserID, "")); err != nil {
			return err
		}
		if err := enqueueMail(tx, at, r.Mail); err != nil {
			return err
		}
		w.user(r.UserID)
		w.event(EventCredentialChange, r.UserID, "", r.Events)
		w.sessionsRevoked(r.UserID, ended, r.Events)
		return nil
	})
	if errors.Is(err, ErrEmailTokenInvalid) {
		return 0, err
	}
	if err != nil {
		return 0, dbErr(fmt.Sprintf("reset password of user %d", r.UserID), err, ErrUserNotFound)
	}
	return revoked, nil
}

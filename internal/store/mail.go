package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// MailMessage is one rendered message of the mail outbox. A change that causes mail passes
// its messages to the store method making the change, which writes them in the same
// transaction (enqueueMail): the message exists exactly when its change does.
type MailMessage struct {
	ID int64 // set by the store
	// MessageID is the Message-ID header (without angle brackets), the same on every
	// attempt: a duplicate delivery is recognisable by it. Unique.
	MessageID string
	// Kind names the template (password_reset, password_changed, ...), for metrics and audit.
	Kind string
	// UserID is the user the message is about, 0 for none (audit target).
	UserID           int64
	To, Subject      string
	Text, HTML       string
	CreatedAt        time.Time // set by the store when zero
	Attempts         int       // failed attempts before this one (read only)
	LastError        string    // read only
	SentAt, FailedAt *time.Time
	lease            string
}

type mailRow struct {
	ID            int64 `gorm:"primaryKey"`
	MessageID     string
	Kind          string
	UserID        *int64
	Recipient     string
	Subject       string
	BodyText      string
	BodyHTML      string `gorm:"column:body_html"`
	CreatedAt     time.Time
	NextAttemptAt time.Time
	Attempts      int
	LastError     string
	LeaseOwner    *string
	LeaseUntil    *time.Time
	SentAt        *time.Time
	FailedAt      *time.Time
}

func (mailRow) TableName() string { return "mail_outbox" }

func (r mailRow) message() MailMessage {
	m := MailMessage{
		ID: r.ID, MessageID: r.MessageID, Kind: r.Kind, To: r.Recipient, Subject: r.Subject,
		Text: r.BodyText, HTML: r.BodyHTML, CreatedAt: r.CreatedAt.UTC(), Attempts: r.Attempts, LastError: r.LastError,
		SentAt: utcPtr(r.SentAt), FailedAt: utcPtr(r.FailedAt),
	}
	if r.UserID != nil {
		m.UserID = *r.UserID
	}
	if r.LeaseOwner != nil {
		m.lease = *r.LeaseOwner
	}
	return m
}

// enqueueMail writes msgs to the outbox in tx, due at once. Every store method that causes
// mail calls it in its own transaction.
func enqueueMail(tx *gorm.DB, at time.Time, msgs []MailMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	rows := make([]mailRow, len(msgs))
	for i, m := range msgs {
		if m.MessageID == "" || m.To == "" || m.Kind == "" {
			return fmt.Errorf("enqueue mail: message %d lacks a Message-ID, recipient or kind", i)
		}
		created := m.CreatedAt
		if created.IsZero() {
			created = at
		}
		rows[i] = mailRow{
			MessageID: m.MessageID, Kind: m.Kind, Recipient: m.To, Subject: m.Subject, BodyText: m.Text, BodyHTML: m.HTML,
			CreatedAt: utc(created), NextAttemptAt: utc(created),
		}
		if m.UserID != 0 {
			rows[i].UserID = &m.UserID
		}
	}
	if err := tx.Omit("ID").Create(&rows).Error; err != nil {
		return fmt.Errorf("enqueue mail: %w", err)
	}
	return nil
}

// EnqueueMail writes msgs to the outbox on their own, in one transaction, for mail that
// goes with no change of the store. It returns ErrConflict when a MessageID is taken.
func (s *Store) EnqueueMail(ctx context.Context, at time.Time, msgs ...MailMessage) error {
	err := s.transaction(ctx, func(tx *gorm.DB) error { return enqueueMail(tx, at, msgs) })
	return dbErr("enqueue mail", err, ErrNotFound)
}

// claimMailSQL leases up to n due messages to one claimant in one statement. On PostgreSQL
// the subquery locks the rows it picks and skips those another claim holds (FOR UPDATE SKIP
// LOCKED), and the lease test is repeated outside it; SQLite has one writer, so the one
// UPDATE is the claim.
const claimMailSQL = `UPDATE mail_outbox SET lease_owner = ?, lease_until = ?
WHERE (lease_until IS NULL OR lease_until < ?) AND sent_at IS NULL AND failed_at IS NULL AND id IN (
	SELECT id FROM mail_outbox
	WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= ?
	AND (lease_until IS NULL OR lease_until < ?)
	ORDER BY next_attempt_at, id LIMIT ?%s)
RETURNING id`

// ClaimMail leases up to n messages that are due at now to the caller until leaseUntil: no
// other claim returns them before then, on any instance. Finish each with MailSent or
// MailFailed. It returns no sentinels.
func (s *Store) ClaimMail(ctx context.Context, now, leaseUntil time.Time, n int) ([]MailMessage, error) {
	lease := randomID()
	now = utc(now)
	lock := ""
	if s.dialect == dialectPostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var ids []int64
	res := s.write(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Raw(fmt.Sprintf(claimMailSQL, lock), lease, utc(leaseUntil), now, now, now, n).Scan(&ids)
	})
	if res.Error != nil {
		return nil, fmt.Errorf("claim mail: %w", res.Error)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	var rows []mailRow
	if err := s.db.WithContext(ctx).Where("id IN ? AND lease_owner = ?", ids, lease).Order("id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("claimed mail: %w", err)
	}
	out := make([]MailMessage, len(rows))
	for i, r := range rows {
		out[i] = r.message()
	}
	return out, nil
}

// MailSent records that m, claimed by ClaimMail, was delivered at at, with the audit events
// given (TargetID set to m's user), if the caller still holds its lease. It reports whether it
// did, and returns no sentinels.
func (s *Store) MailSent(ctx context.Context, m MailMessage, at time.Time, events ...AuditEvent) (bool, error) {
	var done bool
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&mailRow{}).Where("id = ? AND lease_owner = ? AND sent_at IS NULL", m.ID, m.lease).
			Updates(map[string]any{"sent_at": utc(at), "lease_owner": nil, "lease_until": nil, "last_error": ""})
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		done = true
		_, err := writeAudit(tx, utc(at), withTarget(events, m.UserID, ""))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("mail sent: %w", err)
	}
	return done, nil
}

// MailFailed records a failed attempt to deliver m, claimed by ClaimMail, with its error:
// the message is due again at next, or, with giveUp, failed for good (FailedAt). The audit
// events given are written with it (TargetID set to m's user). It reports whether the caller
// still held the lease, and returns no sentinels.
func (s *Store) MailFailed(ctx context.Context, m MailMessage, at time.Time, cause string, next time.Time, giveUp bool, events ...AuditEvent) (bool, error) {
	var done bool
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		set := map[string]any{
			"attempts": gorm.Expr("attempts + 1"), "last_error": cause, "next_attempt_at": utc(next),
			"lease_owner": nil, "lease_until": nil,
		}
		if giveUp {
			set["failed_at"] = utc(at)
		}
		res := tx.Model(&mailRow{}).Where("id = ? AND lease_owner = ? AND sent_at IS NULL", m.ID, m.lease).Updates(set)
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		done = true
		_, err := writeAudit(tx, utc(at), withTarget(events, m.UserID, ""))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("mail failed: %w", err)
	}
	return done, nil
}

// MailQueue counts the outbox: messages waiting (due or not) and messages given up.
type MailQueue struct{ Pending, Failed int64 }

// MailQueueStats counts the outbox's pending and failed messages. It returns no sentinels.
func (s *Store) MailQueueStats(ctx context.Context) (MailQueue, error) {
	var out MailQueue
	db := s.read.WithContext(ctx).Model(&mailRow{})
	if err := db.Where("sent_at IS NULL AND failed_at IS NULL").Count(&out.Pending).Error; err != nil {
		return out, fmt.Errorf("mail queue: %w", err)
	}
	if err := s.read.WithContext(ctx).Model(&mailRow{}).Where("failed_at IS NOT NULL").Count(&out.Failed).Error; err != nil {
		return out, fmt.Errorf("mail queue: %w", err)
	}
	return out, nil
}

// MailByMessageID returns the outbox's message of that Message-ID. It returns ErrNotFound.
func (s *Store) MailByMessageID(ctx context.Context, messageID string) (MailMessage, error) {
	var r mailRow
	err := s.read.WithContext(ctx).Where("message_id = ?", messageID).Take(&r).Error
	if err != nil {
		return MailMessage{}, dbErr("mail by message id", err, ErrNotFound)
	}
	return r.message(), nil
}

// MailSecret returns the random key kept under name, making a 32-byte one the first time
// (processes starting at once agree on one). It returns no sentinels.
func (s *Store) MailSecret(ctx context.Context, name string) ([]byte, error) {
	var b [32]byte
	_, _ = rand.Read(b[:])
	row := mailSecretRow{Name: name, Value: base64.RawStdEncoding.EncodeToString(b[:])}
	res := s.write(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Clauses(clause.OnConflict{DoNothing: true}).Create(&row)
	})
	if res.Error != nil {
		return nil, fmt.Errorf("mail secret %s: %w", name, res.Error)
	}
	var got mailSecretRow
	if err := s.db.WithContext(ctx).Where("name = ?", name).Take(&got).Error; err != nil {
		return nil, fmt.Errorf("mail secret %s: %w", name, err)
	}
	key, err := base64.RawStdEncoding.DecodeString(got.Value)
	if err != nil {
		return nil, fmt.Errorf("mail secret %s: %w", name, err)
	}
	return key, nil
}

type mailSecretRow struct {
	Name  string `gorm:"primaryKey"`
	Value string
}

func (mailSecretRow) TableName() string { return "mail_secrets" }

// The purposes of email tokens.
const (
	PurposePasswordReset = "password_reset"
	PurposeVerifyEmail   = "verify_email"
	PurposeChangeEmail   = "change_email"
)

// ErrEmailTokenInvalid means an email token is unknown, used, expired, or not of the
// purpose or user asked for.
var ErrEmailTokenInvalid = errors.New("email token invalid, used or expired")

// EmailToken is a one-time token sent by mail. Only its HMAC (Hash) is stored.
type EmailToken struct {
	Hash    string
	Purpose string
	UserID  int64
	// Email is the address the token was sent to (for change_email, the new address).
	Email                string
	CreatedAt, ExpiresAt time.Time
	UsedAt               *time.Time
}

type emailTokenRow struct {
	TokenHash string `gorm:"primaryKey"`
	Purpose   string
	UserID    int64
	Email     string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    *time.Time
}

func (emailTokenRow) TableName() string { return "email_tokens" }

func (r emailTokenRow) token() EmailToken {
	return EmailToken{Hash: r.TokenHash, Purpose: r.Purpose, UserID: r.UserID, Email: r.Email,
		CreatedAt: r.CreatedAt.UTC(), ExpiresAt: r.ExpiresAt.UTC(), UsedAt: utcPtr(r.UsedAt)}
}

// createEmailToken writes t in tx.
func createEmailToken(tx *gorm.DB, t EmailToken) error {
	return tx.Create(&emailTokenRow{
		TokenHash: t.Hash, Purpose: t.Purpose, UserID: t.UserID, Email: t.Email,
		CreatedAt: utc(t.CreatedAt), ExpiresAt: utc(t.ExpiresAt),
	}).Error
}

// CreateEmailToken writes t with the messages that carry it, in one transaction. It returns
// ErrUserNotFound when t's user does not exist, ErrConflict for a hash taken.
func (s *Store) CreateEmailToken(ctx context.Context, t EmailToken, mail []MailMessage, events ...AuditEvent) error {
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&userRow{}).Where("id = ?", t.UserID).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return ErrUserNotFound
		}
		if err := createEmailToken(tx, t); err != nil {
			return err
		}
		if _, err := writeAudit(tx, utc(t.CreatedAt), withTarget(events, t.UserID, "")); err != nil {
			return err
		}
		return enqueueMail(tx, t.CreatedAt, mail)
	})
	return dbErr("create email token", err, ErrUserNotFound)
}

// EmailTokenByHash returns the token of that hash and purpose, used or not, expired or not.
// It returns ErrEmailTokenInvalid when there is none.
func (s *Store) EmailTokenByHash(ctx context.Context, hash, purpose string) (EmailToken, error) {
	var r emailTokenRow
	err := s.read.WithContext(ctx).Where("token_hash = ? AND purpose = ?", hash, purpose).Take(&r).Error
	if err != nil {
		return EmailToken{}, dbErr("email token", err, ErrEmailTokenInvalid)
	}
	return r.token(), nil
}

// consumeEmailToken marks the token of hash, purpose and user used at now, in tx, if it is
// unused and unexpired: one conditional UPDATE, so that of concurrent uses one wins. It
// returns ErrEmailTokenInvalid otherwise.
func consumeEmailToken(tx *gorm.DB, hash, purpose string, userID int64, now time.Time) error {
	res := tx.Model(&emailTokenRow{}).
		Where("token_hash = ? AND purpose = ? AND user_id = ? AND used_at IS NULL AND expires_at > ?", hash, purpose, userID, utc(now)).
		Update("used_at", utc(now))
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return ErrEmailTokenInvalid
	}
	return nil
}

// voidEmailTokens marks every unused token of the user and purpose used at now, in tx: a
// password reset voids the other reset links.
func voidEmailTokens(tx *gorm.DB, userID int64, purpose string, now time.Time) error {
	return tx.Model(&emailTokenRow{}).Where("user_id = ? AND purpose = ? AND used_at IS NULL", userID, purpose).
		Update("used_at", utc(now)).Error
}

// countRecentEmailTokens counts the tokens of the user and purpose made after since.
func countRecentEmailTokens(tx *gorm.DB, userID int64, purpose string, since time.Time) (int64, error) {
	var n int64
	err := tx.Model(&emailTokenRow{}).Where("user_id = ? AND purpose = ? AND created_at > ?", userID, purpose, utc(since)).Count(&n).Error
	return n, err
}

// MailFlushed counts what FlushMail deleted.
type MailFlushed struct{ Mail, EmailTokens, ResetRequests int64 }

// FlushMail deletes the outbox's messages sent or given up before doneBefore, the email
// tokens expired before now, and the password reset requests made before requestsBefore
// (resolved, or never to be: their limits' window is over). It returns no sentinels.
func (s *Store) FlushMail(ctx context.Context, now, doneBefore, requestsBefore time.Time) (MailFlushed, error) {
	var out MailFlushed
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		res := tx.Where("(sent_at IS NOT NULL AND sent_at < ?) OR (failed_at IS NOT NULL AND failed_at < ?)", utc(doneBefore), utc(doneBefore)).
			Delete(&mailRow{})
		if res.Error != nil {
			return res.Error
		}
		out.Mail = res.RowsAffected
		res = tx.Where("expires_at <= ?", utc(now)).Delete(&emailTokenRow{})
		if res.Error != nil {
			return res.Error
		}
		out.EmailTokens = res.RowsAffected
		res = tx.Where("created_at < ? AND resolved_at IS NOT NULL", utc(requestsBefore)).Delete(&resetRequestRow{})
		out.ResetRequests = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return MailFlushed{}, fmt.Errorf("flush mail: %w", err)
	}
	return out, nil
}

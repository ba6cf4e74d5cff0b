package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// UserMail is what a change of a user mails: one-time tokens to store (their links are in the
// messages) and the messages, written in the change's transaction. The store sets the UserID
// of each (a new user's is known only once inserted).
type UserMail struct {
	Tokens []EmailToken
	Mail   []MailMessage
}

func (m UserMail) write(tx *gorm.DB, userID int64, at time.Time) error {
	for _, t := range m.Tokens {
		t.UserID = userID
		if err := createEmailToken(tx, t); err != nil {
			return err
		}
	}
	msgs := make([]MailMessage, len(m.Mail))
	for i, msg := range m.Mail {
		msg.UserID = userID
		msgs[i] = msg
	}
	return enqueueMail(tx, at, msgs)
}

// UserMailer makes the mail of a change of a user from before to after (see UpdateUserMail).
// It runs inside the change's transaction and must do nothing but build the mail.
type UserMailer func(before, after User) (UserMail, error)

// addressPurposes are the purposes of the tokens that confirm an address: a change of the
// user's address voids every unused one.
var addressPurposes = []string{PurposeVerifyEmail, PurposeChangeEmail}

// voidAddressTokens marks every unused verification and change token of user id used at now.
func voidAddressTokens(tx *gorm.DB, id int64, now time.Time) error {
	for _, p := range addressPurposes {
		if err := voidEmailTokens(tx, id, p, now); err != nil {
			return err
		}
	}
	return nil
}

// CreateUserMail is CreateUser that also writes m (see UserMail) for the new user in the same
// transaction.
func (s *Store) CreateUserMail(ctx context.Context, u *User, m UserMail, events ...AuditEvent) error {
	return s.createUser(ctx, u, events, func(tx *gorm.DB, row userRow) error {
		return m.write(tx, row.ID, row.DateJoined)
	})
}

// SignUp is a sign-up to record with SignUp.
type SignUp struct {
	User *User // the account to make, its password hashed; SignedUp is set
	// Limits are checked first, against the mail requests of the window (see MailRequest):
	// the first one reached refuses the sign-up, which records nothing.
	Limits []MailLimit
	// Request is the mail request the sign-up records (one whatever the outcome).
	Request MailRequest
	// Created is the mail of the new account; Existing the notice to the owner of an address
	// already in use, made for that account (no account is made then).
	Created  func(u User) (UserMail, error)
	Existing func(owner User) (UserMail, error)
	// NoticeLimit bounds the notices to one owner (its Key is set to the owner's ID): once
	// reached, the notice is dropped silently. A notice sent records Request under the owner.
	NoticeLimit MailLimit
	// CreatedEvents and ExistingEvents are audited for each outcome.
	CreatedEvents, ExistingEvents []AuditEvent
}

// SignUpOutcome tells what SignUp did.
type SignUpOutcome struct {
	Created bool // false: the address was in use; its owner was mailed, unless NoticeDropped
	// NoticeDropped tells that the owner's notice was not written: NoticeLimit was reached.
	NoticeDropped bool
	// Refused is the limit that refused the sign-up (nil when none did), Oldest the oldest
	// request it counted, from which the wait follows.
	Refused *MailLimit
	Oldest  time.Time
}

// SignUp records a sign-up in one transaction: the limits, then the username (ErrConflict
// when it is taken, ignoring case, whatever the address), then, when the address (compared
// ignoring case) is some account's already, the notice to that account and no new one, else
// the new account with its mail.
func (s *Store) SignUp(ctx context.Context, in SignUp) (SignUpOutcome, error) {
	var out SignUpOutcome
	at := utc(in.Request.At)
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		refused, oldest, err := checkMailLimits(tx, s.dialect, in.Limits)
		if err != nil || refused != nil {
			out.Refused, out.Oldest = refused, oldest
			return err
		}
		// The username first: a taken one is refused whether or not the address is in use,
		// so that the answer never tells the address's use.
		var taken int64
		if err := tx.Model(&userRow{}).Where("username_key = ?", usernameKey(in.User.Username)).Count(&taken).Error; err != nil {
			return err
		}
		if taken > 0 {
			return ErrConflict
		}
		var owner userRow
		err = tx.Where("email_key = ?", foldCase(in.User.Email)).Order("id").Take(&owner).Error
		switch {
		case err == nil:
			return s.signUpExisting(tx, in, owner, at, &out)
		case !errors.Is(err, gorm.ErrRecordNotFound):
			return err
		}
		if err := recordMailRequest(tx, in.Request); err != nil {
			return err
		}
		in.User.SignedUp = true
		if in.User.DateJoined.IsZero() {
			in.User.DateJoined = at
		}
		row := toUserRow(in.User)
		row.ID = 0
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		if _, err := writeAudit(tx, at, withTarget(in.CreatedEvents, row.ID, "")); err != nil {
			return err
		}
		m, err := in.Created(row.user())
		if err != nil {
			return err
		}
		if err := m.write(tx, row.ID, at); err != nil {
			return err
		}
		*in.User, out.Created = row.user(), true
		return nil
	})
	if err != nil {
		return SignUpOutcome{}, dbErr("sign up", err, ErrUserNotFound)
	}
	return out, nil
}

// signUpExisting records, in tx, a sign-up with the address of owner: the request, the audit
// events and, under in.NoticeLimit, the notice to owner.
func (s *Store) signUpExisting(tx *gorm.DB, in SignUp, owner userRow, at time.Time, out *SignUpOutcome) error {
	l := in.NoticeLimit
	l.Key = owner.ID
	reached, _, err := checkMailLimits(tx, s.dialect, []MailLimit{l})
	if err != nil {
		return err
	}
	req := in.Request
	if reached == nil {
		req.UserID = owner.ID // counted by the owner's NoticeLimit
	}
	if err := recordMailRequest(tx, req); err != nil {
		return err
	}
	if _, err := writeAudit(tx, at, withTarget(in.ExistingEvents, owner.ID, "")); err != nil {
		return err
	}
	if reached != nil {
		out.NoticeDropped = true
		return nil
	}
	m, err := in.Existing(owner.user())
	if err != nil {
		return err
	}
	return m.write(tx, owner.ID, at)
}

// AddressMail is mail about a user's address to send with SendAddressMail.
type AddressMail struct {
	UserID int64
	// Email is the address the user must still have (verification), or the address they ask
	// to change to (Change).
	Email  string
	Change bool
	Limits []MailLimit
	// Request is recorded with the mail (counted by the limits later).
	Request MailRequest
	Mail    UserMail
	Events  []AuditEvent
}

// ErrAddressChanged refuses mail about an address that is no longer the user's, or a
// verification of an address already verified.
var ErrAddressChanged = errors.New("address changed or already verified")

// SendAddressMail records, in one authTx transaction, a verification of user's current
// address, or a change of address waiting for its confirmation (Change: PendingEmail becomes
// m.Email): earlier unused verification and change links are voided, the new tokens, mail and
// audit events written, the mail request recorded. The limits are checked first; the first
// reached is returned with the oldest request it counted, and nothing is recorded. It returns
// ErrUserNotFound, or ErrAddressChanged when a verification's address is no longer the
// user's or is verified already.
func (s *Store) SendAddressMail(ctx context.Context, m AddressMail) (*MailLimit, time.Time, error) {
	var (
		refused *MailLimit
		oldest  time.Time
	)
	at := utc(m.Request.At)
	err := s.userTx(ctx, m.UserID, lockForUpdate, func(tx *gorm.DB, w *authWrite, cur lockedUser) error {
		if !m.Change && (cur.row.Email != m.Email || cur.row.EmailVerified) {
			return ErrAddressChanged
		}
		var err error
		if refused, oldest, err = checkMailLimits(tx, s.dialect, m.Limits); err != nil || refused != nil {
			return err
		}
		if err := recordMailRequest(tx, m.Request); err != nil {
			return err
		}
		if err := voidAddressTokens(tx, m.UserID, at); err != nil {
			return err
		}
		if m.Change && cur.row.PendingEmail != m.Email {
			if err := tx.Model(&userRow{}).Where("id = ?", m.UserID).Update("pending_email", m.Email).Error; err != nil {
				return err
			}
			w.user(m.UserID)
		}
		if _, err := writeAudit(tx, at, withTarget(m.Events, m.UserID, "")); err != nil {
			return err
		}
		return m.Mail.write(tx, m.UserID, at)
	})
	if err != nil {
		return nil, time.Time{}, dbErr("address mail", err, ErrUserNotFound)
	}
	return refused, oldest, nil
}

// AddressConfirmation is a confirmation of an address by the token of a link.
type AddressConfirmation struct {
	TokenHash string
	At        time.Time
	// Notice makes the mail of a confirmed change, from the user before to after (the old
	// address is told).
	Notice UserMailer
	// Verified and Changed are audited for a verification and a change.
	Verified, Changed []AuditEvent
}

// ConfirmAddress confirms an address by the token of hash, in one authTx transaction: the
// token is used (one conditional UPDATE: of concurrent confirmations one wins) if it is a
// verification or change token, unused and unexpired; a verification marks the user's address
// verified if it is still the one the token was sent to, a change makes the pending address,
// if it is still the token's, the user's, verified, and writes c.Notice's mail. It returns
// the user as changed and whether the address changed, or ErrEmailTokenInvalid for anything
// else (nothing is changed then).
func (s *Store) ConfirmAddress(ctx context.Context, c AddressConfirmation) (User, bool, error) {
	var (
		out     User
		changed bool
	)
	at := utc(c.At)
	err := s.authTx(ctx, func(tx *gorm.DB, w *authWrite) error {
		var t emailTokenRow
		err := tx.Where("token_hash = ? AND purpose IN ?", c.TokenHash, addressPurposes).Take(&t).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return ErrEmailTokenInvalid
		}
		if err != nil {
			return err
		}
		if err := consumeEmailToken(tx, t.TokenHash, t.Purpose, t.UserID, at); err != nil {
			return err
		}
		cur, err := lockUser(tx, t.UserID, lockForUpdate, false)
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return ErrEmailTokenInvalid
		}
		if err != nil {
			return err
		}
		next := cur.row.user()
		events := c.Verified
		switch t.Purpose {
		case PurposeVerifyEmail:
			if next.Email != t.Email || next.EmailVerified {
				return ErrEmailTokenInvalid
			}
		default:
			if next.PendingEmail == "" || next.PendingEmail != t.Email {
				return ErrEmailTokenInvalid
			}
			next.Email, next.PendingEmail, changed, events = t.Email, "", true, c.Changed
			if err := voidAddressTokens(tx, t.UserID, at); err != nil {
				return err
			}
		}
		next.EmailVerified, next.EmailVerifiedAt = true, &at
		cols := changedColumns(cur.row, toUserRow(&next))
		if err := tx.Model(&userRow{}).Where("id = ?", t.UserID).Updates(cols).Error; err != nil {
			return err
		}
		if _, err := writeAudit(tx, at, withTarget(events, t.UserID, "")); err != nil {
			return err
		}
		if changed && c.Notice != nil {
			m, err := c.Notice(cur.row.user(), next)
			if err != nil {
				return err
			}
			if err := m.write(tx, t.UserID, at); err != nil {
				return err
			}
		}
		w.user(t.UserID)
		out = next
		return nil
	})
	if err != nil {
		return User{}, false, dbErr("confirm address", err, ErrEmailTokenInvalid)
	}
	return out, changed, nil
}

// LoginDevice is a login to record with RecordLoginDevice.
type LoginDevice struct {
	UserID int64
	Device string // the device's key
	At     time.Time
	// Notice makes the mail of a device new to an account that has logged in before; it and
	// Events are written only then.
	Notice func(u User) (UserMail, error)
	Events []AuditEvent
}

// RecordLoginDevice records that user d.UserID logged in from device d.Device at d.At, and
// reports whether the device was new to an account that had devices before: then d.Notice's
// mail and d.Events are written in the same transaction. Only the insert that creates the
// device's row mails (INSERT ... ON CONFLICT DO NOTHING, rows affected deciding), so that
// parallel logins from one new device send one notice; the user's row is locked first, so
// that two new devices at once are judged one after the other. A first device is recorded
// without a notice. A known device's time is updated alone, without the lock. An unknown
// user records nothing; it returns no sentinels.
func (s *Store) RecordLoginDevice(ctx context.Context, d LoginDevice) (bool, error) {
	var noticed bool
	at := utc(d.At)
	// Most logins are from a known device: one update, without the user's lock.
	seen := s.write(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Model(&loginDeviceRow{}).Where("user_id = ? AND device = ?", d.UserID, d.Device).
			Update("last_seen_at", at)
	})
	if seen.Error != nil {
		return false, fmt.Errorf("record login device: %w", seen.Error)
	}
	if seen.RowsAffected > 0 {
		return false, nil
	}
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		cur, err := lockUser(tx, d.UserID, lockForUpdate, false)
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		var known int64
		if err := tx.Model(&loginDeviceRow{}).Where("user_id = ?", d.UserID).Count(&known).Error; err != nil {
			return err
		}
		res := tx.Exec(`INSERT INTO login_devices (user_id, device, first_seen_at, last_seen_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (user_id, device) DO NOTHING`, d.UserID, d.Device, at, at)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return tx.Model(&loginDeviceRow{}).Where("user_id = ? AND device = ?", d.UserID, d.Device).
				Update("last_seen_at", at).Error
		}
		if known == 0 || d.Notice == nil {
			return nil
		}
		m, err := d.Notice(cur.row.user())
		if err != nil {
			return err
		}
		if _, err := writeAudit(tx, at, withTarget(d.Events, d.UserID, "")); err != nil {
			return err
		}
		noticed = true
		return m.write(tx, d.UserID, at)
	})
	if err != nil {
		return false, fmt.Errorf("record login device: %w", err)
	}
	return noticed, nil
}

type loginDeviceRow struct {
	UserID      int64  `gorm:"primaryKey"`
	Device      string `gorm:"primaryKey"`
	FirstSeenAt time.Time
	LastSeenAt  time.Time
}

func (loginDeviceRow) TableName() string { return "login_devices" }

// MailRequest is one request for mail of the address flows, counted by MailLimits.
type MailRequest struct {
	Kind   string // signup, verify_email, change_email
	UserID int64  // 0 for none
	IP     string // the client IP's throttling key
	Domain string // the recipient's domain, lowercased
	At     time.Time
}

type mailRequestRow struct {
	ID        int64 `gorm:"primaryKey"`
	Kind      string
	UserID    *int64
	IP        string `gorm:"column:ip"`
	Domain    string
	CreatedAt time.Time
}

func (mailRequestRow) TableName() string { return "mail_requests" }

// The scopes of MailLimit: the columns of mail_requests a limit counts by.
const (
	MailLimitIP      = "ip"
	MailLimitDomain  = "domain"
	MailLimitAccount = "user_id"
)

// MailLimit is a limit on the mail requests of one key within a window: at most Max since
// Since (a negative Max is off). Reason is what the refusal names.
type MailLimit struct {
	Reason string
	Scope  string // MailLimitIP, MailLimitDomain or MailLimitAccount
	Key    any
	// Kinds, when not empty, are the only kinds of request counted.
	Kinds []string
	Max   int
	Since time.Time
}

// checkMailLimits counts, in tx, the requests each limit covers, and returns the first limit
// reached with the oldest request that fills it (its leaving the window lets the next in).
func checkMailLimits(tx *gorm.DB, dialect string, limits []MailLimit) (*MailLimit, time.Time, error) {
	for i, l := range limits {
		if l.Max < 0 {
			continue
		}
		if dialect == dialectPostgres {
			if err := lockThrottleKey(tx, lockMailLimit, fmt.Sprintf("%s:%v", l.Scope, l.Key)); err != nil {
				return nil, time.Time{}, err
			}
		}
		var at []time.Time
		if l.Max > 0 {
			q := tx.Model(&mailRequestRow{}).Where(l.Scope+" = ? AND created_at > ?", l.Key, utc(l.Since))
			if len(l.Kinds) > 0 {
				q = q.Where("kind IN ?", l.Kinds)
			}
			err := q.Order("created_at DESC").Limit(l.Max).Pluck("created_at", &at).Error
			if err != nil {
				return nil, time.Time{}, err
			}
		}
		if len(at) >= l.Max {
			oldest := l.Since
			if l.Max > 0 {
				oldest = at[l.Max-1].UTC()
			}
			return &limits[i], oldest, nil
		}
	}
	return nil, time.Time{}, nil
}

// recordMailRequest records r in tx.
func recordMailRequest(tx *gorm.DB, r MailRequest) error {
	row := mailRequestRow{Kind: r.Kind, IP: r.IP, Domain: r.Domain, CreatedAt: utc(r.At)}
	if r.UserID != 0 {
		row.UserID = &r.UserID
	}
	return tx.Omit("ID").Create(&row).Error
}

// FlushMailRequests deletes the mail requests made before before (older than any limit's
// window). It returns no sentinels.
func (s *Store) FlushMailRequests(ctx context.Context, before time.Time) (int64, error) {
	res := s.write(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Where("created_at < ?", utc(before)).Delete(&mailRequestRow{})
	})
	if res.Error != nil {
		return 0, fmt.Errorf("flush mail requests: %w", res.Error)
	}
	return res.RowsAffected, nil
}

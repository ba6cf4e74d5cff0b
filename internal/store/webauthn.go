package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// WebAuthnCredential is a user's security key or passkey. Data is the verified credential
// (public key, flags, attestation) as its owner (package passkey) encodes it; the store keeps
// it opaque.
type WebAuthnCredential struct {
	ID             int64
	UserID         int64
	CredentialID   string // the authenticator's id, base64url
	UserHandle     string // the handle the user's credentials are registered under, base64url
	Name           string
	Data           []byte
	SignCount      int64
	Discoverable   bool // a passkey: it can sign in without a password
	BackupEligible bool // synced
	CreatedAt      time.Time
	LastUsedAt     *time.Time
}

type webauthnCredentialRow struct {
	ID             int64 `gorm:"primaryKey"`
	UserID         int64
	CredentialID   string
	UserHandle     string
	Name           string
	Data           string
	SignCount      int64
	Discoverable   bool
	BackupEligible bool
	CreatedAt      time.Time
	LastUsedAt     *time.Time
}

func (webauthnCredentialRow) TableName() string { return "webauthn_credentials" }

func (r webauthnCredentialRow) credential() WebAuthnCredential {
	c := WebAuthnCredential{ID: r.ID, UserID: r.UserID, CredentialID: r.CredentialID, UserHandle: r.UserHandle,
		Name: r.Name, Data: []byte(r.Data), SignCount: r.SignCount, Discoverable: r.Discoverable,
		BackupEligible: r.BackupEligible, CreatedAt: r.CreatedAt.UTC()}
	if r.LastUsedAt != nil {
		t := r.LastUsedAt.UTC()
		c.LastUsedAt = &t
	}
	return c
}

// WebAuthnCeremony is a WebAuthn ceremony begun and not yet finished. Kind says which;
// UserID is 0 for a passkey login (the user is not known until the assertion names them).
// Data is the relying party's session, opaque to the store.
type WebAuthnCeremony struct {
	IDHash    string
	Kind      string
	UserID    int64
	Data      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

type webauthnCeremonyRow struct {
	IDHash    string `gorm:"primaryKey"`
	Kind      string
	UserID    *int64
	Data      string
	CreatedAt time.Time
	ExpiresAt time.Time
}

func (webauthnCeremonyRow) TableName() string { return "webauthn_ceremonies" }

// The sentinels of WebAuthn.
var (
	// ErrWebAuthnCredentialNotFound means no such credential (of that user).
	ErrWebAuthnCredentialNotFound = fmt.Errorf("webauthn credential: %w", ErrNotFound)
	// ErrWebAuthnCredentialExists means the authenticator's credential id is registered already.
	ErrWebAuthnCredentialExists = fmt.Errorf("webauthn credential exists: %w", ErrConflict)
	// ErrWebAuthnCeremonyNotFound means no live ceremony of that kind has that hash: unknown,
	// expired or used.
	ErrWebAuthnCeremonyNotFound = fmt.Errorf("webauthn ceremony: %w", ErrNotFound)
	// ErrSignCountRegressed means the credential's signature counter did not move forward
	// (an assertion replayed, or a cloned authenticator): nothing was changed.
	ErrSignCountRegressed = errors.New("webauthn signature counter did not increase")
)

// CreateWebAuthnCeremony stores c.
func (s *Store) CreateWebAuthnCeremony(ctx context.Context, c WebAuthnCeremony) error {
	row := webauthnCeremonyRow{IDHash: c.IDHash, Kind: c.Kind, Data: string(c.Data),
		CreatedAt: utc(c.CreatedAt), ExpiresAt: utc(c.ExpiresAt)}
	if c.UserID != 0 {
		row.UserID = &c.UserID
	}
	if err := s.write(ctx, func(db *gorm.DB) *gorm.DB { return db.Create(&row) }).Error; err != nil {
		return fmt.Errorf("create webauthn ceremony: %w", dbErr("create webauthn ceremony", err, ErrNotFound))
	}
	return nil
}

// WebAuthnCeremonyByHash returns the ceremony idHash of kind if it is live at now, without
// using it, or ErrWebAuthnCeremonyNotFound.
func (s *Store) WebAuthnCeremonyByHash(ctx context.Context, idHash, kind string, now time.Time) (WebAuthnCeremony, error) {
	var row webauthnCeremonyRow
	err := s.read.WithContext(ctx).Where("id_hash = ? AND kind = ? AND expires_at > ?", idHash, kind, utc(now)).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return WebAuthnCeremony{}, ErrWebAuthnCeremonyNotFound
	}
	if err != nil {
		return WebAuthnCeremony{}, fmt.Errorf("webauthn ceremony: %w", err)
	}
	c := WebAuthnCeremony{IDHash: row.IDHash, Kind: row.Kind, Data: []byte(row.Data),
		CreatedAt: row.CreatedAt.UTC(), ExpiresAt: row.ExpiresAt.UTC()}
	if row.UserID != nil {
		c.UserID = *row.UserID
	}
	return c, nil
}

// useCeremony deletes the live ceremony idHash of kind in tx: of any number of transactions
// using one ceremony, on any instances, one does; the others get ErrWebAuthnCeremonyNotFound.
func useCeremony(tx *gorm.DB, idHash, kind string, now time.Time) error {
	res := tx.Where("id_hash = ? AND kind = ? AND expires_at > ?", idHash, kind, utc(now)).Delete(&webauthnCeremonyRow{})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return ErrWebAuthnCeremonyNotFound
	}
	return nil
}

// CreateWebAuthnCredential uses the registration ceremony ceremonyHash, live at now, and
// stores c, both or neither, with events, and reports whether c is the user's first active
// factor, which then comes with codes (see FirstFactorCodes). From then on the user's logins
// need a second factor: a change of their authentication state. It returns
// ErrWebAuthnCeremonyNotFound, ErrWebAuthnCredentialExists.
func (s *Store) CreateWebAuthnCredential(ctx context.Context, ceremonyHash, kind string, now time.Time, c WebAuthnCredential, codes FirstFactorCodes, events ...AuditEvent) (WebAuthnCredential, bool, error) {
	row := webauthnCredentialRow{UserID: c.UserID, CredentialID: c.CredentialID, UserHandle: c.UserHandle,
		Name: c.Name, Data: string(c.Data), SignCount: c.SignCount, Discoverable: c.Discoverable,
		BackupEligible: c.BackupEligible, CreatedAt: utc(now)}
	first := false
	err := s.authTx(ctx, func(tx *gorm.DB, w *authWrite) error {
		none, err := lockNoFactor(tx, c.UserID)
		if err != nil {
			return err
		}
		if err := useCeremony(tx, ceremonyHash, kind, now); err != nil {
			return err
		}
		if err := tx.Omit("ID").Create(&row).Error; err != nil {
			if errors.Is(err, gorm.ErrDuplicatedKey) {
				return ErrWebAuthnCredentialExists
			}
			return err
		}
		if _, err := writeAudit(tx, utc(now), withTarget(events, c.UserID, "")); err != nil {
			return err
		}
		if first = none; first {
			if err := replaceRecoveryCodes(tx, c.UserID, codes.Hashes, codes.Events); err != nil {
				return err
			}
		}
		w.user(c.UserID)
		return nil
	})
	if err != nil {
		return WebAuthnCredential{}, false, fmt.Errorf("create webauthn credential of user %d: %w", c.UserID, err)
	}
	return row.credential(), first, nil
}

// WebAuthnCredentialsOf returns userID's credentials, oldest first.
func (s *Store) WebAuthnCredentialsOf(ctx context.Context, userID int64) ([]WebAuthnCredential, error) {
	var rows []webauthnCredentialRow
	if err := s.read.WithContext(ctx).Where("user_id = ?", userID).Order("id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("webauthn credentials of user %d: %w", userID, err)
	}
	out := make([]WebAuthnCredential, len(rows))
	for i, r := range rows {
		out[i] = r.credential()
	}
	return out, nil
}

// WebAuthnCredentialByCredentialID returns the credential whose authenticator id is
// credentialID, or ErrWebAuthnCredentialNotFound.
func (s *Store) WebAuthnCredentialByCredentialID(ctx context.Context, credentialID string) (WebAuthnCredential, error) {
	var row webauthnCredentialRow
	err := s.read.WithContext(ctx).Where("credential_id = ?", credentialID).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return WebAuthnCredential{}, ErrWebAuthnCredentialNotFound
	}
	if err != nil {
		return WebAuthnCredential{}, fmt.Errorf("webauthn credential: %w", err)
	}
	return row.credential(), nil
}

// useCredential advances the signature counter of credential id of userID to signCount and
// records its use, in tx: only forward (or both zero, for authenticators without a counter),
// so that of two assertions with the same counter, on any instances, one wins; otherwise
// ErrSignCountRegressed.
func useCredential(tx *gorm.DB, userID, id, signCount int64, now time.Time) error {
	res := tx.Model(&webauthnCredentialRow{}).
		Where("id = ? AND user_id = ? AND (sign_count < ? OR (sign_count = 0 AND ? = 0))", id, userID, signCount, signCount).
		Updates(map[string]any{"sign_count": signCount, "last_used_at": utc(now)})
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		return ErrSignCountRegressed
	}
	return nil
}

// UseWebAuthnCeremony uses the ceremony ceremonyHash of kind, live at now, and the credential
// id of userID with signCount (see useCredential), in one transaction: both or neither. It
// returns ErrWebAuthnCeremonyNotFound or ErrSignCountRegressed; events are written with the win.
func (s *Store) UseWebAuthnCeremony(ctx context.Context, ceremonyHash, kind string, now time.Time, userID, id, signCount int64, events ...AuditEvent) error {
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		if err := useCeremony(tx, ceremonyHash, kind, now); err != nil {
			return err
		}
		if err := useCredential(tx, userID, id, signCount, now); err != nil {
			return err
		}
		_, err := writeAudit(tx, utc(now), withTarget(events, userID, ""))
		return err
	})
	if err != nil {
		return fmt.Errorf("use webauthn ceremony: %w", err)
	}
	return nil
}

// RenameWebAuthnCredential names userID's credential id name, or returns
// ErrWebAuthnCredentialNotFound.
func (s *Store) RenameWebAuthnCredential(ctx context.Context, userID, id int64, name string) (WebAuthnCredential, error) {
	var row webauthnCredentialRow
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		res := tx.Model(&webauthnCredentialRow{}).Where("id = ? AND user_id = ?", id, userID).Update("name", name)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrWebAuthnCredentialNotFound
		}
		return tx.Where("id = ?", id).Take(&row).Error
	})
	if err != nil {
		return WebAuthnCredential{}, fmt.Errorf("rename webauthn credential %d: %w", id, err)
	}
	return row.credential(), nil
}

// DeleteWebAuthnCredential removes userID's credential id, or returns
// ErrWebAuthnCredentialNotFound.
func (s *Store) DeleteWebAuthnCredential(ctx context.Context, userID, id int64, events ...AuditEvent) error {
	err := s.authTx(ctx, func(tx *gorm.DB, w *authWrite) error {
		res := tx.Where("id = ? AND user_id = ?", id, userID).Delete(&webauthnCredentialRow{})
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return ErrWebAuthnCredentialNotFound
		}
		if _, err := writeAudit(tx, now(), withTarget(events, userID, "")); err != nil {
			return err
		}
		w.user(userID)
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete webauthn credential %d: %w", id, err)
	}
	return nil
}

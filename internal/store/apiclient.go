package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// APIClient is a registered API client: a resource server or service that authenticates
// with its id and secret. Only hashes of its secrets are kept (package clients makes them).
type APIClient struct {
	ID        string
	Name      string
	Scopes    []string
	CreatedAt time.Time
	CreatedBy int64 // the superuser who created it, 0 for the CLI
	UpdatedAt time.Time
	// LastUsedAt is when it last authenticated with its secret, at a coarse grain (see
	// TouchAPIClient); nil if never.
	LastUsedAt *time.Time
	Disabled   bool

	SecretHash  []byte
	SecretSetAt time.Time // when SecretHash was set (created or rotated)
	// PreviousSecretHash is the secret a rotation replaced, accepted until
	// PreviousExpiresAt; nil when none.
	PreviousSecretHash []byte
	PreviousExpiresAt  *time.Time
}

type apiClientRow struct {
	ID                 string `gorm:"primaryKey"`
	Name               string
	Scopes             string
	CreatedAt          time.Time
	CreatedBy          *int64
	UpdatedAt          time.Time
	LastUsedAt         *time.Time
	Disabled           bool
	SecretHash         []byte
	SecretSetAt        time.Time
	PreviousSecretHash []byte
	PreviousExpiresAt  *time.Time
}

func (apiClientRow) TableName() string { return "api_clients" }

func toAPIClientRow(c APIClient) apiClientRow {
	return apiClientRow{
		ID: c.ID, Name: c.Name, Scopes: strings.Join(c.Scopes, " "), CreatedAt: utc(c.CreatedAt),
		CreatedBy: nonZero(c.CreatedBy), UpdatedAt: utc(c.UpdatedAt), LastUsedAt: utcPtr(c.LastUsedAt),
		Disabled: c.Disabled, SecretHash: c.SecretHash, SecretSetAt: utc(c.SecretSetAt),
		PreviousSecretHash: c.PreviousSecretHash, PreviousExpiresAt: utcPtr(c.PreviousExpiresAt),
	}
}

func (r apiClientRow) client() APIClient {
	c := APIClient{
		ID: r.ID, Name: r.Name, Scopes: strings.Fields(r.Scopes), CreatedAt: r.CreatedAt.UTC(),
		UpdatedAt: r.UpdatedAt.UTC(), LastUsedAt: utcPtr(r.LastUsedAt), Disabled: r.Disabled,
		SecretHash: r.SecretHash, SecretSetAt: r.SecretSetAt.UTC(),
		PreviousSecretHash: r.PreviousSecretHash, PreviousExpiresAt: utcPtr(r.PreviousExpiresAt),
	}
	if r.CreatedBy != nil {
		c.CreatedBy = *r.CreatedBy
	}
	if len(c.PreviousSecretHash) == 0 {
		c.PreviousSecretHash = nil
	}
	return c
}

// ErrAPIClientNotFound is ErrNotFound for a missing API client.
var ErrAPIClientNotFound = fmt.Errorf("api client: %w", ErrNotFound)

// withClient returns copies of events that name client id.
func withClient(events []AuditEvent, id string) []AuditEvent {
	out := make([]AuditEvent, len(events))
	for i, e := range events {
		e.ClientID = id
		out[i] = e
	}
	return out
}

// CreateAPIClient stores c and writes events, naming c, in the same transaction. It returns
// ErrConflict if the id is taken.
func (s *Store) CreateAPIClient(ctx context.Context, c APIClient, events ...AuditEvent) error {
	row := toAPIClientRow(c)
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		_, err := writeAudit(tx, row.CreatedAt, withClient(events, c.ID))
		return err
	})
	return dbErr("create api client", err, ErrAPIClientNotFound)
}

// APIClientByID returns client id: one primary-key read. Authentication reads it through
// the auth cache (authcache), which OnClientChange and the change log keep current. It returns ErrAPIClientNotFound.
func (s *Store) APIClientByID(ctx context.Context, id string) (APIClient, error) {
	var row apiClientRow
	if err := s.read.WithContext(ctx).Where("id = ?", id).Take(&row).Error; err != nil {
		return APIClient{}, dbErr("api client", err, ErrAPIClientNotFound)
	}
	return row.client(), nil
}

// APIClients returns every API client, oldest first. It returns no sentinels.
func (s *Store) APIClients(ctx context.Context) ([]APIClient, error) {
	var rows []apiClientRow
	if err := s.read.WithContext(ctx).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("api clients: %w", err)
	}
	out := make([]APIClient, len(rows))
	for i, r := range rows {
		out[i] = r.client()
	}
	return out, nil
}

// UpdateAPIClient changes client id in one transaction holding its row: change gets the
// stored client, edits it and returns the audit events of the edit (none: nothing is written).
// The edited client is stored with the events, naming it, and the change is logged (see
// clientTx); it is returned. It returns
// ErrAPIClientNotFound, or change's error.
func (s *Store) UpdateAPIClient(ctx context.Context, id string, change func(c *APIClient) ([]AuditEvent, error)) (APIClient, error) {
	var out APIClient
	err := s.clientTx(ctx, id, func(tx *gorm.DB) (bool, error) {
		var row apiClientRow
		// FOR UPDATE is dropped by the SQLite dialect, whose transactions lock the database.
		if err := tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).Where("id = ?", id).Take(&row).Error; err != nil {
			return false, err
		}
		c := row.client()
		events, err := change(&c)
		if err != nil || len(events) == 0 {
			out = row.client()
			return false, err
		}
		c.ID = id
		next := toAPIClientRow(c)
		if err := tx.Select("*").Omit("id", "created_at", "created_by", "last_used_at").Where("id = ?", id).Updates(&next).Error; err != nil {
			return false, err
		}
		if _, err := writeAudit(tx, next.UpdatedAt, withClient(events, id)); err != nil {
			return false, err
		}
		c.LastUsedAt = row.client().LastUsedAt
		out = c
		return true, nil
	})
	if err != nil {
		return APIClient{}, dbErr("update api client", err, ErrAPIClientNotFound)
	}
	return out, nil
}

// DeleteAPIClient deletes client id and writes events, naming it, in the same transaction,
// which logs the change (see clientTx). It returns ErrAPIClientNotFound.
func (s *Store) DeleteAPIClient(ctx context.Context, id string, events ...AuditEvent) error {
	err := s.clientTx(ctx, id, func(tx *gorm.DB) (bool, error) {
		res := tx.Where("id = ?", id).Delete(&apiClientRow{})
		if res.Error != nil {
			return false, res.Error
		}
		if res.RowsAffected == 0 {
			return false, ErrAPIClientNotFound
		}
		_, err := writeAudit(tx, now(), withClient(events, id))
		return err == nil, err
	})
	return dbErr("delete api client", err, ErrAPIClientNotFound)
}

// TouchAPIClient records that client id authenticated at at, unless it did less than grain
// before (the caller's test, clients.lastUsedGrain): a write at most once per grain, not one
// per request. It is not logged as a change:
// last_used_at decides nothing about authentication. It returns no sentinels (a
// missing client is no error).
func (s *Store) TouchAPIClient(ctx context.Context, id string, at time.Time, grain time.Duration) error {
	at = utc(at)
	res := s.write(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Model(&apiClientRow{}).Where("id = ? AND (last_used_at IS NULL OR last_used_at <= ?)", id, at.Add(-grain)).
			Update("last_used_at", at)
	})
	if res.Error != nil {
		return dbErr("touch api client", res.Error, ErrAPIClientNotFound)
	}
	return nil
}

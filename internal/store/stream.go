package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Stream statuses (SSF 1.0 stream status).
const (
	StreamEnabled  = "enabled"  // events are queued and delivered
	StreamPaused   = "paused"   // events are queued, not delivered
	StreamDisabled = "disabled" // events are neither queued nor delivered; the queue is emptied
)

// Stream is a Shared Signals event stream of one API client (its receiver). The store keeps
// what package ssf decides; it interprets only Status and EventsDelivered.
type Stream struct {
	ID, ClientID        string
	Audience            []string
	EventsRequested     []string    // as the receiver sent them
	EventsDelivered     []EventKind // the kinds queued for it
	DeliveryMethod      string
	EndpointURL         string // push: the receiver's; poll: ours
	AuthorizationHeader string // push: sent with every request
	Format              string // the subject identifier format of its SETs
	Description         string
	Status, Reason      string
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

type streamRow struct {
	ID                  string `gorm:"primaryKey"`
	ClientID            string
	Audience            string
	EventsRequested     string
	EventsDelivered     string
	DeliveryMethod      string
	EndpointURL         string
	AuthorizationHeader string
	Format              string
	Description         string
	Status              string
	Reason              string
	CreatedAt           time.Time
	UpdatedAt           time.Time
}

func (streamRow) TableName() string { return "ssf_streams" }

func jsonList[T any](v []T) string {
	if v == nil {
		v = []T{}
	}
	b, _ := json.Marshal(v) // a list of strings always marshals
	return string(b)
}

func toStreamRow(st Stream) streamRow {
	return streamRow{
		ID: st.ID, ClientID: st.ClientID, Audience: jsonList(st.Audience),
		EventsRequested: jsonList(st.EventsRequested), EventsDelivered: jsonList(st.EventsDelivered),
		DeliveryMethod: st.DeliveryMethod, EndpointURL: st.EndpointURL, AuthorizationHeader: st.AuthorizationHeader,
		Format: st.Format, Description: st.Description, Status: st.Status, Reason: st.Reason,
		CreatedAt: utc(st.CreatedAt), UpdatedAt: utc(st.UpdatedAt),
	}
}

func (r streamRow) stream() Stream {
	st := Stream{
		ID: r.ID, ClientID: r.ClientID, DeliveryMethod: r.DeliveryMethod, EndpointURL: r.EndpointURL,
		AuthorizationHeader: r.AuthorizationHeader, Format: r.Format, Description: r.Description,
		Status: r.Status, Reason: r.Reason, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	// Written by toStreamRow only.
	_ = json.Unmarshal([]byte(r.Audience), &st.Audience)
	_ = json.Unmarshal([]byte(r.EventsRequested), &st.EventsRequested)
	_ = json.Unmarshal([]byte(r.EventsDelivered), &st.EventsDelivered)
	return st
}

// delivers reports whether the stream queues events of kind.
func (r streamRow) delivers(kind EventKind) bool {
	var kinds []EventKind
	_ = json.Unmarshal([]byte(r.EventsDelivered), &kinds)
	return slices.Contains(kinds, kind)
}

// ErrStreamNotFound is ErrNotFound for a stream that does not exist or belongs to another
// client.
var ErrStreamNotFound = fmt.Errorf("stream: %w", ErrNotFound)

// CreateStream stores st; zero times become now. It returns ErrConflict if the ID is taken.
func (s *Store) CreateStream(ctx context.Context, st Stream) (Stream, error) {
	if st.CreatedAt.IsZero() {
		st.CreatedAt = now()
	}
	if st.UpdatedAt.IsZero() {
		st.UpdatedAt = st.CreatedAt
	}
	row := toStreamRow(st)
	if err := s.write(ctx, func(db *gorm.DB) *gorm.DB { return db.Create(&row) }).Error; err != nil {
		return Stream{}, dbErr("create stream", err, ErrStreamNotFound)
	}
	return row.stream(), nil
}

// Streams returns the client's streams, oldest first. It returns no sentinels.
func (s *Store) Streams(ctx context.Context, clientID string) ([]Stream, error) {
	var rows []streamRow
	if err := s.read.WithContext(ctx).Where("client_id = ?", clientID).Order("created_at, id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("streams of client %s: %w", clientID, err)
	}
	out := make([]Stream, len(rows))
	for i, r := range rows {
		out[i] = r.stream()
	}
	return out, nil
}

// StreamByID returns the client's stream id, or ErrStreamNotFound (also for another
// client's stream).
func (s *Store) StreamByID(ctx context.Context, clientID, id string) (Stream, error) {
	var row streamRow
	if err := s.read.WithContext(ctx).Where("id = ? AND client_id = ?", id, clientID).Take(&row).Error; err != nil {
		return Stream{}, dbErr("stream", err, ErrStreamNotFound)
	}
	return row.stream(), nil
}

// UpdateStream applies change to the client's stream id under lock and stores the result
// (ID, ClientID and CreatedAt kept, UpdatedAt set to now); an error from change is returned
// as is. A stream that becomes disabled loses its queue. It returns the stream before and
// after, or ErrStreamNotFound.
func (s *Store) UpdateStream(ctx context.Context, clientID, id string, change func(*Stream) error) (before, after Stream, err error) {
	err = s.transaction(ctx, func(tx *gorm.DB) error {
		var row streamRow
		err := tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).Where("id = ? AND client_id = ?", id, clientID).Take(&row).Error
		if err != nil {
			return err
		}
		before = row.stream()
		next := row.stream()
		if err := change(&next); err != nil {
			return err
		}
		next.ID, next.ClientID, next.CreatedAt, next.UpdatedAt = before.ID, before.ClientID, before.CreatedAt, now()
		nr := toStreamRow(next)
		if err := tx.Select("*").Omit("id", "client_id", "created_at").Where("id = ?", id).Updates(&nr).Error; err != nil {
			return err
		}
		if next.Status == StreamDisabled {
			if err := tx.Where("stream_id = ?", id).Delete(&queueRow{}).Error; err != nil {
				return err
			}
		}
		after = nr.stream()
		return nil
	})
	if err != nil {
		return Stream{}, Stream{}, dbErr("update stream", err, ErrStreamNotFound)
	}
	return before, after, nil
}

// DeleteStream deletes the client's stream id with its queue. It returns ErrStreamNotFound.
func (s *Store) DeleteStream(ctx context.Context, clientID, id string) error {
	var n int64
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		if err := tx.Where("stream_id IN (?)", tx.Session(&gorm.Session{NewDB: true}).Model(&streamRow{}).
			Select("id").Where("id = ? AND client_id = ?", id, clientID)).Delete(&queueRow{}).Error; err != nil {
			return err
		}
		res := tx.Where("id = ? AND client_id = ?", id, clientID).Delete(&streamRow{})
		n = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return fmt.Errorf("delete stream %s: %w", id, err)
	}
	if n == 0 {
		return ErrStreamNotFound
	}
	return nil
}

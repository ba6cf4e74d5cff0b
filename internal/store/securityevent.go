package store

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"
)

// EventKind names what a security event says happened; package ssf maps each to its event type
// URI. The store only files events under their kind.
type EventKind string

// Event kinds.
const (
	EventSessionRevoked    EventKind = "session-revoked"     // one session, always named
	EventCredentialChange  EventKind = "credential-change"   // the password changed
	EventTokenClaimsChange EventKind = "token-claims-change" // is_staff or is_superuser changed
	EventAccountDisabled   EventKind = "account-disabled"    // deactivated
	EventAccountPurged     EventKind = "account-purged"      // deleted
	EventVerification      EventKind = "verification"        // asked for by one stream's receiver
	EventStreamUpdated     EventKind = "stream-updated"      // one stream's status changed
)

// SecurityEvent is one event for Shared Signals receivers, written in the transaction of the
// change it describes and queued for every stream that wants its kind. Its ID increases with
// each event; JTI and At never change, so that every delivery of it, from any instance, is
// the same SET.
type SecurityEvent struct {
	ID        int64
	JTI       string
	Kind      EventKind
	Txn       string // shared by the events of one transaction
	UserID    int64  // 0 for events about a stream (verification, stream-updated)
	SessionID string // "" unless one session
	Email     string // the user's at the time of the event
	Cause     string // the audit action of the change ("logout", "user.deleted", ...)
	ActorID   int64  // the user who acted, 0 for none
	Detail    string // JSON object of kind-specific members (claims, state, status)
	At        time.Time
}

type securityEventRow struct {
	ID        int64 `gorm:"primaryKey"`
	JTI       string
	Type      string
	Txn       string
	UserID    int64
	SessionID string
	Email     string
	Cause     string
	ActorID   int64
	Detail    string
	At        time.Time
}

func (securityEventRow) TableName() string { return "security_events" }

func (r securityEventRow) event() SecurityEvent {
	return SecurityEvent{
		ID: r.ID, JTI: r.JTI, Kind: EventKind(r.Type), Txn: r.Txn, UserID: r.UserID,
		SessionID: r.SessionID, Email: r.Email, Cause: r.Cause, ActorID: r.ActorID,
		Detail: r.Detail, At: r.At.UTC(),
	}
}

type queueRow struct {
	StreamID      string `gorm:"primaryKey"`
	EventID       int64  `gorm:"primaryKey"`
	Attempts      int
	NextAttemptAt *time.Time
	LeaseOwner    *string
	LeaseUntil    *time.Time
}

func (queueRow) TableName() string { return "ssf_queue" }

// randomID is 128 random bits in hex, for jti and txn values.
func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// writeSecurityEvents writes events in tx and queues each for the streams, enabled or
// paused, that deliver its kind. With no such stream it writes nothing: one indexed read of
// the streams table, and only for changes that have events (never logins or refreshes).
func writeSecurityEvents(tx *gorm.DB, events []SecurityEvent) error {
	if len(events) == 0 {
		return nil
	}
	var streams []streamRow
	err := tx.Select("id, events_delivered").Where("status IN ?", []string{StreamEnabled, StreamPaused}).
		Find(&streams).Error
	if err != nil {
		return fmt.Errorf("streams for security events: %w", err)
	}
	if len(streams) == 0 {
		return nil
	}
	txn, at := randomID(), now()
	emails := map[int64]string{}
	for _, e := range events {
		if e.UserID == 0 || e.Email != "" {
			continue
		}
		if _, ok := emails[e.UserID]; ok {
			continue
		}
		var email string
		// A deleted user's row is gone: DeleteUser gives the email with the event.
		if err := tx.Model(&userRow{}).Select("email").Where("id = ?", e.UserID).Scan(&email).Error; err != nil {
			return fmt.Errorf("email for security event: %w", err)
		}
		emails[e.UserID] = email
	}
	for _, e := range events {
		if e.Email == "" {
			e.Email = emails[e.UserID]
		}
		e.Txn = txn
		if e.At.IsZero() {
			e.At = at
		}
		var ids []string
		for _, st := range streams {
			if st.delivers(e.Kind) {
				ids = append(ids, st.ID)
			}
		}
		if len(ids) == 0 {
			continue
		}
		if _, err := insertEvent(tx, e, ids); err != nil {
			return err
		}
	}
	return nil
}

// insertEvent writes e and queues it for the streams streamIDs.
func insertEvent(tx *gorm.DB, e SecurityEvent, streamIDs []string) (SecurityEvent, error) {
	row := securityEventRow{
		JTI: randomID(), Type: string(e.Kind), Txn: e.Txn, UserID: e.UserID, SessionID: e.SessionID,
		Email: e.Email, Cause: e.Cause, ActorID: e.ActorID, Detail: e.Detail, At: utc(e.At),
	}
	if row.Txn == "" {
		row.Txn = randomID()
	}
	if err := tx.Omit("ID").Create(&row).Error; err != nil {
		return SecurityEvent{}, fmt.Errorf("write security event: %w", err)
	}
	queue := make([]queueRow, len(streamIDs))
	for i, id := range streamIDs {
		queue[i] = queueRow{StreamID: id, EventID: row.ID}
	}
	if err := tx.Create(&queue).Error; err != nil {
		return SecurityEvent{}, fmt.Errorf("queue security event: %w", err)
	}
	return row.event(), nil
}

// AddStreamEvent writes an event about one stream (a verification or stream-updated event of
// the client's stream id) and queues it for that stream alone, even when paused: the receiver
// asked for it. A zero At becomes now. It returns the event as written, or ErrStreamNotFound.
func (s *Store) AddStreamEvent(ctx context.Context, clientID, id string, e SecurityEvent) (SecurityEvent, error) {
	if e.At.IsZero() {
		e.At = now()
	}
	var out SecurityEvent
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		var n int64
		if err := tx.Model(&streamRow{}).Where("id = ? AND client_id = ?", id, clientID).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return ErrStreamNotFound
		}
		var err error
		out, err = insertEvent(tx, e, []string{id})
		return err
	})
	if err != nil {
		return SecurityEvent{}, dbErr("add stream event", err, ErrStreamNotFound)
	}
	return out, nil
}

// PendingEvents returns the events queued for stream id that no receiver has acknowledged,
// oldest first, at most limit (>= 1), and whether more are queued. It returns no sentinels.
func (s *Store) PendingEvents(ctx context.Context, id string, limit int) ([]SecurityEvent, bool, error) {
	var rows []securityEventRow
	err := s.read.WithContext(ctx).Table("security_events e").Select("e.*").
		Joins("JOIN ssf_queue q ON q.event_id = e.id").Where("q.stream_id = ?", id).
		Order("e.id").Limit(limit + 1).Find(&rows).Error
	if err != nil {
		return nil, false, fmt.Errorf("pending events of stream %s: %w", id, err)
	}
	more := len(rows) > limit
	if more {
		rows = rows[:limit]
	}
	out := make([]SecurityEvent, len(rows))
	for i, r := range rows {
		out[i] = r.event()
	}
	return out, more, nil
}

// AckEvents removes from stream id's queue the events with the given jti values (the
// receiver acknowledged them, or reported them in error); unknown ones are ignored. It
// returns how many it removed, and no sentinels.
func (s *Store) AckEvents(ctx context.Context, id string, jtis []string) (int64, error) {
	if len(jtis) == 0 {
		return 0, nil
	}
	res := s.write(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Where("stream_id = ? AND event_id IN (?)", id,
			db.Session(&gorm.Session{NewDB: true}).Model(&securityEventRow{}).Select("id").Where("jti IN ?", jtis)).
			Delete(&queueRow{})
	})
	if res.Error != nil {
		return 0, fmt.Errorf("ack events of stream %s: %w", id, res.Error)
	}
	return res.RowsAffected, nil
}

// PruneSecurityEvents deletes the events written before before, with their queue rows, and
// returns how many events. Receivers that have not taken them by then lose them: this is the
// retention of a paused or silent stream. It returns no sentinels.
func (s *Store) PruneSecurityEvents(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		sub := tx.Session(&gorm.Session{NewDB: true}).Model(&securityEventRow{}).Select("id").Where("at < ?", utc(before))
		if err := tx.Where("event_id IN (?)", sub).Delete(&queueRow{}).Error; err != nil {
			return err
		}
		res := tx.Where("at < ?", utc(before)).Delete(&securityEventRow{})
		n = res.RowsAffected
		return res.Error
	})
	if err != nil {
		return 0, fmt.Errorf("prune security events: %w", err)
	}
	return n, nil
}

// TrimQueues keeps at most max events queued per stream, dropping the oldest, and returns
// how many it dropped per stream (only streams that lost some). It returns no sentinels.
func (s *Store) TrimQueues(ctx context.Context, max int) (map[string]int64, error) {
	type count struct {
		StreamID string
		N        int64
	}
	var over []count
	err := s.read.WithContext(ctx).Model(&queueRow{}).Select("stream_id, COUNT(*) AS n").
		Group("stream_id").Having("COUNT(*) > ?", max).Scan(&over).Error
	if err != nil {
		return nil, fmt.Errorf("trim queues: %w", err)
	}
	dropped := map[string]int64{}
	for _, c := range over {
		var cut int64
		// The oldest event to keep: everything before it goes.
		err := s.read.WithContext(ctx).Model(&queueRow{}).Select("event_id").Where("stream_id = ?", c.StreamID).
			Order("event_id DESC").Offset(max - 1).Limit(1).Scan(&cut).Error
		if err != nil {
			return nil, fmt.Errorf("trim queue of stream %s: %w", c.StreamID, err)
		}
		res := s.write(ctx, func(db *gorm.DB) *gorm.DB {
			return db.Where("stream_id = ? AND event_id < ?", c.StreamID, cut).Delete(&queueRow{})
		})
		if res.Error != nil {
			return nil, fmt.Errorf("trim queue of stream %s: %w", c.StreamID, res.Error)
		}
		if res.RowsAffected > 0 {
			dropped[c.StreamID] = res.RowsAffected
		}
	}
	return dropped, nil
}

// Delivery is a queued event claimed for push delivery to its stream.
type Delivery struct {
	Stream   Stream
	Event    SecurityEvent
	Attempts int // failed attempts before this one
	lease    string
}

// claimSQL leases up to n queued events of enabled push streams that are due and not leased
// (or whose lease ran out) to one claimant, in one statement on both backends. The lease test
// is repeated outside the subquery: on PostgreSQL a concurrent claim of the same rows waits
// for the first one's row locks and then re-checks that condition, so no row is claimed twice
// while its lease runs.
const claimSQL = `UPDATE ssf_queue SET lease_owner = ?, lease_until = ?
WHERE (lease_until IS NULL OR lease_until < ?) AND (stream_id, event_id) IN (
	SELECT q.stream_id, q.event_id FROM ssf_queue q JOIN ssf_streams s ON s.id = q.stream_id
	WHERE s.status = ? AND s.delivery_method = ?
	AND (q.lease_until IS NULL OR q.lease_until < ?)
	AND (q.next_attempt_at IS NULL OR q.next_attempt_at <= ?)
	ORDER BY q.event_id LIMIT ?)
RETURNING stream_id, event_id, attempts`

// ClaimDeliveries leases up to n due events of enabled streams of delivery method method to
// the caller until leaseUntil: no other claim returns them before then, on any instance.
// Finish each with Delivered or Retry. It returns no sentinels.
func (s *Store) ClaimDeliveries(ctx context.Context, method string, now, leaseUntil time.Time, n int) ([]Delivery, error) {
	lease := randomID()
	now = utc(now)
	type claimed struct {
		StreamID string
		EventID  int64
		Attempts int
	}
	var got []claimed
	res := s.write(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Raw(claimSQL, lease, utc(leaseUntil), now, StreamEnabled, method, now, now, n).Scan(&got)
	})
	if res.Error != nil {
		return nil, fmt.Errorf("claim deliveries: %w", res.Error)
	}
	if len(got) == 0 {
		return nil, nil
	}
	ids := make([]int64, len(got))
	streamIDs := make([]string, len(got))
	for i, c := range got {
		ids[i], streamIDs[i] = c.EventID, c.StreamID
	}
	var events []securityEventRow
	if err := s.db.WithContext(ctx).Where("id IN ?", ids).Find(&events).Error; err != nil {
		return nil, fmt.Errorf("claimed events: %w", err)
	}
	var streams []streamRow
	if err := s.db.WithContext(ctx).Where("id IN ?", streamIDs).Find(&streams).Error; err != nil {
		return nil, fmt.Errorf("claimed streams: %w", err)
	}
	eventByID := map[int64]SecurityEvent{}
	for _, e := range events {
		eventByID[e.ID] = e.event()
	}
	streamByID := map[string]Stream{}
	for _, st := range streams {
		streamByID[st.ID] = st.stream()
	}
	out := make([]Delivery, 0, len(got))
	for _, c := range got {
		e, ok1 := eventByID[c.EventID]
		st, ok2 := streamByID[c.StreamID]
		if ok1 && ok2 { // else deleted since the claim
			out = append(out, Delivery{Stream: st, Event: e, Attempts: c.Attempts, lease: lease})
		}
	}
	slices.SortFunc(out, func(a, b Delivery) int { return cmp.Compare(a.Event.ID, b.Event.ID) })
	return out, nil
}

// Delivered removes a delivered event from its stream's queue, if the caller still holds its
// lease. It reports whether it did, and returns no sentinels.
func (s *Store) Delivered(ctx context.Context, d Delivery) (bool, error) {
	res := s.write(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Where("stream_id = ? AND event_id = ? AND lease_owner = ?", d.Stream.ID, d.Event.ID, d.lease).Delete(&queueRow{})
	})
	if res.Error != nil {
		return false, fmt.Errorf("delivered: %w", res.Error)
	}
	return res.RowsAffected > 0, nil
}

// Retry releases a delivery that failed, to be claimed again from next, counting the
// attempt. It returns no sentinels.
func (s *Store) Retry(ctx context.Context, d Delivery, next time.Time) error {
	res := s.write(ctx, func(db *gorm.DB) *gorm.DB {
		return db.Model(&queueRow{}).Where("stream_id = ? AND event_id = ? AND lease_owner = ?", d.Stream.ID, d.Event.ID, d.lease).
			Updates(map[string]any{"attempts": gorm.Expr("attempts + 1"), "next_attempt_at": utc(next), "lease_owner": nil, "lease_until": nil})
	})
	if res.Error != nil {
		return fmt.Errorf("retry delivery: %w", res.Error)
	}
	return nil
}

package store

import (
	"context"
	"fmt"

	"gorm.io/gorm"
)

// clientTx is authTx for an API client: it runs fn in a transaction on the writer and, when
// fn returns changed, logs in the same transaction, as its last statement, that client id
// changed (the row names the client, with user_id 0), and after the commit tells this Store's
// client watchers (OnClientChange). Every write that changes what authenticating a client
// reads (its secrets, scopes, disabled flag, existence) goes through it, so that a change
// reaches every instance's cache as a user's does; last_used_at does not (see TouchAPIClient).
func (s *Store) clientTx(ctx context.Context, id string, fn func(tx *gorm.DB) (changed bool, err error)) error {
	var changed bool
	err := s.transaction(ctx, func(tx *gorm.DB) error {
		var err error
		if changed, err = fn(tx); err != nil || !changed {
			return err
		}
		return logClientChange(tx, id)
	})
	if err != nil {
		return err
	}
	if changed {
		s.clientChanged(id)
	}
	return nil
}

// logClientChange is logChange for client id; only clientTx calls it, last, for the same
// reason.
func logClientChange(tx *gorm.DB, id string) error {
	if err := insertChange(tx, authChangeRow{ClientID: &id, At: now()}); err != nil {
		return fmt.Errorf("log change of api client %s: %w", id, err)
	}
	return nil
}

// OnClientChange registers fn to be called, after the commit, with the id of every API client
// changed through this Store (the changes AuthChangesAfter returns with a ClientID, but at
// once and only those made through this Store). fn must be quick and must not call the Store.
func (s *Store) OnClientChange(fn func(clientID string)) { s.clientWatchers.add(fn) }

func (s *Store) clientChanged(id string) { s.clientWatchers.tell(id) }

package store_test

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/store"
)

// TestClientChangesLogged: a client's update (that changes something) and deletion each log
// one change naming the client (and no user), in their own transaction, that the other
// instance reads and hears of, and tell this Store's client watchers after the commit; a
// creation, an update that changes nothing, a failed one and a touch log nothing.
func TestClientChangesLogged(t *testing.T) {
	ctx := context.Background()
	edit := func(name string) func(c *store.APIClient) ([]store.AuditEvent, error) {
		return func(c *store.APIClient) ([]store.AuditEvent, error) {
			if name == "" {
				return nil, nil
			}
			c.Name = name
			return []store.AuditEvent{{Action: "client.updated"}}, nil
		}
	}
	for _, tc := range []struct {
		name   string
		change func(st *store.Store) error
		logs   bool
	}{
		{"update", func(st *store.Store) error { _, err := st.UpdateAPIClient(ctx, "ac_1", edit("new")); return err }, true},
		{"delete", func(st *store.Store) error { return st.DeleteAPIClient(ctx, "ac_1") }, true},
		{"update with nothing changed", func(st *store.Store) error { _, err := st.UpdateAPIClient(ctx, "ac_1", edit("")); return err }, false},
		{"update of a missing client", func(st *store.Store) error {
			if _, err := st.UpdateAPIClient(ctx, "ac_missing", edit("new")); err == nil {
				t.Error("updated a missing client")
			}
			return nil
		}, false},
		{"touch", func(st *store.Store) error { return st.TouchAPIClient(ctx, "ac_1", time.Now(), time.Minute) }, false},
		{"create", func(st *store.Store) error {
			now := time.Now()
			return st.CreateAPIClient(ctx, store.APIClient{ID: "ac_2", Name: "b", CreatedAt: now, UpdatedAt: now, SecretHash: make([]byte, 32), SecretSetAt: now})
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachInstancePair(t, func(t *testing.T, st, other *store.Store) {
				now := time.Now()
				if err := st.CreateAPIClient(ctx, store.APIClient{ID: "ac_1", Name: "a", CreatedAt: now, UpdatedAt: now, SecretHash: make([]byte, 32), SecretSetAt: now}); err != nil {
					t.Fatal(err)
				}
				start, err := st.LastAuthChangeID(ctx)
				if err != nil {
					t.Fatal(err)
				}
				var (
					mu      sync.Mutex
					watched []string
				)
				st.OnClientChange(func(id string) { mu.Lock(); watched = append(watched, id); mu.Unlock() })
				st.OnAuthChange(func(id int64) { t.Errorf("user %d's watchers told of a client's change", id) })
				announced := listenOn(t, other)
				if err := tc.change(st); err != nil {
					t.Fatalf("change: %v", err)
				}
				got, err := st.AuthChangesAfter(ctx, start, 0)
				if err != nil {
					t.Fatal(err)
				}
				otherGot, err := other.AuthChangesAfter(ctx, start, 0)
				if err != nil {
					t.Fatal(err)
				}
				if !tc.logs {
					if len(got) != 0 || len(watched) != 0 {
						t.Fatalf("logged %+v, watchers told %v; want nothing", got, watched)
					}
					return
				}
				if len(got) != 1 || got[0].ClientID != "ac_1" || got[0].UserID != 0 || got[0].SessionID != "" {
					t.Fatalf("logged %+v, want one change of client ac_1 and no user", got)
				}
				if !reflect.DeepEqual(otherGot, got) {
					t.Errorf("the other instance reads %+v, want %+v", otherGot, got)
				}
				if len(watched) != 1 || watched[0] != "ac_1" {
					t.Errorf("client watchers told %v, want [ac_1]", watched)
				}
				if announced != nil {
					select {
					case <-announced:
					case <-time.After(10 * time.Second):
						t.Errorf("the other instance's ListenAuthChanges heard nothing in 10s")
					}
				}
			})
		})
	}
}

package ssf_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/keyring"
	"github.com/authapi/authapi/internal/ssf"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/token"
)

const issuer = "https://auth.example.test"

// instance is one authapi's SSF parts over a store.
type instance struct {
	st    *store.Store
	ring  *keyring.Ring
	svc   *ssf.Service
	first map[string]string // session id -> its first refresh token
}

func newInstance(t *testing.T, st *store.Store, cfg ssf.Config) *instance {
	t.Helper()
	ring, err := keyring.New(context.Background(), st, token.Config{Issuer: issuer}, keyring.Options{Retention: time.Hour})
	if err != nil {
		t.Fatalf("key ring: %v", err)
	}
	cfg.Issuer = issuer
	return &instance{st: st, ring: ring, svc: ssf.New(cfg, st, ring), first: map[string]string{}}
}

// newEnv is one instance on a fresh database of backend.
func newEnv(t *testing.T, backend string, cfg ssf.Config) *instance {
	t.Helper()
	return newInstance(t, storetest.Open(t, backend), cfg)
}

func (in *instance) user(t *testing.T, email string) store.User {
	t.Helper()
	u := store.User{Username: "u" + rand.Text()[:10], Email: email, PasswordHash: "hash", IsActive: true}
	if err := in.st.CreateUser(context.Background(), &u); err != nil {
		t.Fatalf("create user: %v", err)
	}
	return u
}

func (in *instance) session(t *testing.T, u store.User) store.Session {
	t.Helper()
	now := time.Now()
	s := store.Session{UserID: u.ID, ExpiresAt: now.Add(time.Hour)}
	first := store.RefreshToken{ID: rand.Text(), IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := in.st.StartSession(context.Background(), &s, first, u.PasswordHash, audit.Source{}.Event(audit.LoginSucceeded)); err != nil {
		t.Fatalf("start session: %v", err)
	}
	in.first[s.ID] = first.ID
	return s
}

func pollStream() *ssf.Delivery { return &ssf.Delivery{Method: ssf.MethodPoll} }

func (in *instance) stream(t *testing.T, client string, input ssf.StreamInput) ssf.Stream {
	t.Helper()
	if input.Delivery == nil {
		input.Delivery = pollStream()
	}
	st, err := in.svc.CreateStream(context.Background(), client, input)
	if err != nil {
		t.Fatalf("create stream: %v", err)
	}
	return st
}

func ptr[T any](v T) *T { return &v }

// pollNow polls at once (returnImmediately), acknowledging ack.
func (in *instance) pollNow(t *testing.T, client, id string, max int, ack ...string) ssf.PollResponse {
	t.Helper()
	r, err := in.svc.Poll(context.Background(), client, id, ssf.PollRequest{Ack: ack, MaxEvents: &max, ReturnImmediately: true})
	if err != nil {
		t.Fatalf("poll: %v", err)
	}
	return r
}

func (in *instance) jwks(t *testing.T) []byte {
	t.Helper()
	b, err := in.ring.JWKS(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decoded is a verified SET.
type decoded struct {
	header, claims map[string]any
	typ            string         // the event type
	event          map[string]any // its members
	subID          map[string]any
}

func (in *instance) verify(t *testing.T, raw string) decoded {
	t.Helper()
	h, c, err := token.VerifySET(raw, in.jwks(t))
	if err != nil {
		t.Fatalf("verify SET: %v", err)
	}
	d := decoded{header: h, claims: c}
	for typ, ev := range c["events"].(map[string]any) {
		d.typ, d.event = typ, ev.(map[string]any)
	}
	d.subID, _ = c["sub_id"].(map[string]any)
	return d
}

// drain polls everything queued on the stream, acknowledging it, and returns the SETs
// decoded, oldest first by event order of the poll (the map has none: sorted by iat then jti
// is not enough, so this returns them as a list in any order).
func (in *instance) drain(t *testing.T, client, id string) []decoded {
	t.Helper()
	var out []decoded
	var ack []string
	for {
		r := in.pollNow(t, client, id, ssf.MaxMaxEvents, ack...)
		ack = ack[:0]
		for jti, raw := range r.Sets {
			out = append(out, in.verify(t, raw))
			ack = append(ack, jti)
		}
		if len(r.Sets) == 0 {
			return out
		}
	}
}

func countTypes(sets []decoded) map[string]int {
	m := map[string]int{}
	for _, d := range sets {
		m[d.typ]++
	}
	return m
}

func formatInt(id int64) string { return strconv.FormatInt(id, 10) }

// deepEqualJSON compares got, decoded from JSON, with want as JSON would decode it.
func deepEqualJSON(got, want any) bool {
	b, err := json.Marshal(want)
	if err != nil {
		return false
	}
	var w any
	if err := json.Unmarshal(b, &w); err != nil {
		return false
	}
	return reflect.DeepEqual(got, w)
}

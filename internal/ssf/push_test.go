package ssf_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/ssf"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/testclock"
)

// receiver is an RFC 8935 push endpoint that answers status(n) to its n-th request (from 1)
// and records the SETs it accepted, by jti, with how often.
type receiver struct {
	mu       sync.Mutex
	n        int
	status   func(n int) int
	accepted map[string]int
	auth     []string
	srv      *httptest.Server
	in       *instance
	t        *testing.T
}

func newReceiver(t *testing.T, in *instance, status func(n int) int) *receiver {
	r := &receiver{status: status, accepted: map[string]int{}, in: in, t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.n++
		r.auth = append(r.auth, req.Header.Get("Authorization"))
		if ct := req.Header.Get("Content-Type"); ct != "application/secevent+jwt" {
			t.Errorf("push Content-Type %q", ct)
		}
		code := r.status(r.n)
		if code == http.StatusAccepted {
			d := in.verify(t, string(body))
			r.accepted[d.claims["jti"].(string)]++
		}
		w.WriteHeader(code)
		if code == http.StatusBadRequest {
			_, _ = io.WriteString(w, `{"err":"invalid_request","description":"no"}`)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) pushStream(t *testing.T, client string) ssf.Stream {
	return r.in.stream(t, client, ssf.StreamInput{Delivery: &ssf.Delivery{
		Method: ssf.MethodPush, EndpointURL: r.srv.URL + "/events", AuthorizationHeader: "Bearer receiver-secret",
	}})
}

// TestPushRecovers: a receiver that fails (503, seven times) and then recovers gets
// every event at least once, none lost; retries wait their backoff (test clock), and the first
// failure of each event is audited.
func TestPushRecovers(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			clock := testclock.New(time.Now())
			in := newEnv(t, backend, ssf.Config{AllowHTTPPush: true, Now: clock.Now})
			ctx := context.Background()
			rcv := newReceiver(t, in, func(n int) int {
				if n <= 7 {
					return http.StatusServiceUnavailable
				}
				return http.StatusAccepted
			})
			stream := rcv.pushStream(t, "c")
			in.logouts(t, 5)
			for round := 0; ; round++ {
				n, err := in.svc.PushOnce(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					left, _, err := in.st.PendingEvents(ctx, stream.ID, 1)
					if err != nil {
						t.Fatal(err)
					}
					if len(left) == 0 {
						break
					}
					// Nothing due: the retries wait for their backoff.
					clock.Add(10 * time.Minute)
				}
				if round > 100 {
					t.Fatal("push never drained the queue")
				}
			}
			if len(rcv.accepted) != 5 {
				t.Fatalf("receiver accepted %d distinct events, want 5 (%v)", len(rcv.accepted), rcv.accepted)
			}
			for _, a := range rcv.auth {
				if a != "Bearer receiver-secret" {
					t.Fatalf("push Authorization %q, want the stream's", a)
				}
			}
			events, _, err := in.st.AuditEvents(ctx, store.AuditFilter{Actions: []string{string(audit.SSFDeliveryFailed)}, Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			if len(events) != 5 {
				t.Errorf("%d delivery failures audited, want 5 (the first of each event)", len(events))
			}
		})
	}
}

// TestPushRejected: a SET the receiver refuses (400) is not sent again, and is audited.
func TestPushRejected(t *testing.T) {
	in := newEnv(t, "sqlite", ssf.Config{AllowHTTPPush: true})
	ctx := context.Background()
	rcv := newReceiver(t, in, func(int) int { return http.StatusBadRequest })
	rcv.pushStream(t, "c")
	in.logouts(t, 1)
	for range 3 {
		if _, err := in.svc.PushOnce(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if rcv.n != 1 {
		t.Fatalf("a refused SET was sent %d times, want 1", rcv.n)
	}
}

// TestPushNoDoubleSend: instances pushing at once on one database claim disjoint events:
// with a receiver that accepts everything, each event arrives exactly once.
func TestPushNoDoubleSend(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			dsn := storetest.DSN(t, backend)
			var ins []*instance
			for range 3 {
				st, err := store.Open(dsn)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				if err := st.Migrate(context.Background()); err != nil {
					t.Fatal(err)
				}
				ins = append(ins, newInstance(t, st, ssf.Config{AllowHTTPPush: true}))
			}
			rcv := newReceiver(t, ins[0], func(int) int { return http.StatusAccepted })
			rcv.pushStream(t, "c")
			const events = 120
			ins[0].logouts(t, events)
			for _, in := range ins[1:] {
				if err := in.ring.Reload(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			for _, in := range ins {
				wg.Go(func() {
					for {
						n, err := in.svc.PushOnce(context.Background())
						if err != nil {
							t.Error(err)
							return
						}
						if n == 0 {
							return
						}
					}
				})
			}
			wg.Wait()
			if len(rcv.accepted) != events {
				t.Fatalf("%d distinct events arrived, want %d", len(rcv.accepted), events)
			}
			for jti, n := range rcv.accepted {
				if n != 1 {
					t.Errorf("event %s pushed %d times", jti, n)
				}
			}
		})
	}
}

// TestQueueBound: a stream's queue keeps at most QueueLimit events, dropping the oldest,
// counted in the audit log.
func TestQueueBound(t *testing.T) {
	in := newEnv(t, "sqlite", ssf.Config{QueueLimit: 3})
	ctx := context.Background()
	st := in.stream(t, "c", ssf.StreamInput{})
	in.logouts(t, 5)
	if err := in.svc.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if sets := in.drain(t, "c", st.ID); len(sets) != 3 {
		t.Fatalf("%d SETs after trimming to 3", len(sets))
	}
}

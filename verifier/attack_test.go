package verifier

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Many requests verify while the stream applies revocations: under -race, no data race, and
// once an event is applied no request accepts its session's token.
func TestAttackParallelVerifyDuringRevocations(t *testing.T) {
	e := newEnv(t, true)
	const sessions = 20
	toks := make([]string, sessions)
	e.live("1", "warmup")
	for i := range toks {
		toks[i] = e.iss.accessToken("1", fmt.Sprintf("s%d", i), e.clock.Now())
	}
	var revoked sync.Map // sid -> true once applied
	e.v.cfg.OnEvent = func(ev Event) { revoked.Store(ev.SessionID, true) }
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var bad sync.Map
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				sid := fmt.Sprintf("s%d", i%sessions)
				_, wasRevoked := revoked.Load(sid) // read before Verify: applied before it began
				_, err := e.v.Verify(context.Background(), toks[i%sessions])
				if wasRevoked && err == nil {
					bad.Store(sid, true)
				}
			}
		}()
	}
	for i := range sessions {
		e.iss.emit(SessionRevoked, "1", fmt.Sprintf("s%d", i))
		e.applied(uint64(i + 1))
	}
	close(stop)
	wg.Wait()
	bad.Range(func(k, _ any) bool {
		t.Errorf("session %v accepted after its revocation was applied", k)
		return true
	})
	for i, tok := range toks {
		if _, err := e.v.Verify(context.Background(), tok); !errors.Is(err, ErrRevoked) {
			t.Errorf("session s%d: err = %v, want ErrRevoked", i, err)
		}
	}
}

// BenchmarkMiddleware compares a handler behind the verifier (local check, fresh stream) with
// the bare handler; compare the two within one run.
func BenchmarkMiddleware(b *testing.B) {
	e := newEnv(b, true)
	e.heard()
	e.clock.Add(2 * e.v.cfg.Leeway)
	e.fresh()
	tok := e.iss.accessToken("42", "s1", e.clock.Now()) // after the stream began: checked locally
	bare := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"verified", e.v.Middleware(bare)}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.Header.Set("Authorization", "Bearer "+tok)
				for pb.Next() {
					w := httptest.NewRecorder()
					c.h.ServeHTTP(w, r)
					if w.Code != http.StatusNoContent {
						b.Fatalf("status %d", w.Code)
					}
				}
			})
		})
	}
}

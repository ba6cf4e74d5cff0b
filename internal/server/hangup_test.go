package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/testbin"
)

// TestClientHangUp checks that a request whose client hangs up while the handler is busy is
// logged as what it is, status 499 at INFO, and never as a 500 or at ERROR: a client that goes
// away is no server failure, and must not page anyone.
func TestClientHangUp(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			log := &testbin.Buffer{}
			// While gate holds a request's context, the server's clock waits for that request's
			// client to hang up: the login is held mid-way (after its first query, before it
			// records the attempt) until the server has seen the connection close.
			var gate atomic.Pointer[context.Context]
			e := newTestEnv(t, backend, withConfig(func(c *server.Config) {
				c.Logger = slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
				now := c.Now
				c.Now = func() time.Time {
					if ctx := gate.Load(); ctx != nil {
						<-(*ctx).Done()
					}
					return now()
				}
			}))
			e.mustUser(t, "alice", regular)

			arrived := make(chan struct{})
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx := r.Context()
				gate.Store(&ctx)
				close(arrived)
				e.handler.ServeHTTP(w, r)
			}))
			defer ts.Close()
			api, err := client.NewClientWithResponses(ts.URL)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				_, err := api.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: "alice", Password: demoPassword})
				done <- err
			}()
			<-arrived
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("login: %v, want the client's own cancellation", err)
			}
			ts.Close() // waits for the handler to finish and the request to be logged

			var requests int
			sc := bufio.NewScanner(strings.NewReader(log.String()))
			for sc.Scan() {
				var rec struct {
					Level, Msg, Path string
					Status           int
				}
				if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
					t.Fatalf("log line %q: %v", sc.Text(), err)
				}
				switch {
				case rec.Level != slog.LevelInfo.String():
					t.Errorf("log line at %s, want only INFO: %s", rec.Level, sc.Text())
				case rec.Msg == "request" && rec.Path == "/api/v1/auth/token/":
					requests++
					if rec.Status != 499 {
						t.Errorf("request logged with status %d, want 499: %s", rec.Status, sc.Text())
					}
				}
			}
			if requests != 1 {
				t.Errorf("%d request lines for the login, want 1; log:\n%s", requests, log.String())
			}
		})
	}
}

// TestRightPasswordCutMidHash: a client that hangs up while its right password is being
// checked leaves no failure behind, for a login and for the old password of a password
// change, so that a flaky network cannot lock its own user out. The hasher's hook holds each
// check, once it has its slot, until the server has seen the client go.
func TestRightPasswordCutMidHash(t *testing.T) {
	const cuts = 5 // the per-account and per-IP limits: one failure left behind locks alice
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			var gate atomic.Pointer[context.Context] // the cut request's context, while it runs
			hashing := make(chan struct{}, 1)
			limit := testLimit
			limit.ObserveWait = func(time.Duration) {
				if ctx := gate.Load(); ctx != nil {
					hashing <- struct{}{}
					<-(*ctx).Done()
				}
			}
			e := newTestEnv(t, backend, withHasher(password.NewHasher(password.FastParams(), limit)), withConfig(func(c *server.Config) {
				c.LoginFailuresPerAccount, c.LoginFailuresPerIP = cuts, cuts
			}))
			e.mustUser(t, "alice", regular)

			served := make(chan struct{}, 1)
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				ctx := r.Context()
				gate.Store(&ctx)
				defer func() { gate.Store(nil); served <- struct{}{} }()
				e.handler.ServeHTTP(w, r)
			}))
			defer ts.Close()
			api, err := client.NewClientWithResponses(ts.URL)
			if err != nil {
				t.Fatal(err)
			}
			// cut sends a request and hangs up once the server is checking its password.
			cut := func(what string, send func(ctx context.Context) error) {
				t.Helper()
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- send(ctx) }()
				<-hashing
				cancel()
				if err := <-done; !errors.Is(err, context.Canceled) {
					t.Fatalf("%s: %v, want the client's own cancellation", what, err)
				}
				<-served
			}

			for i := range cuts {
				cut(fmt.Sprintf("login %d", i), func(ctx context.Context) error {
					_, err := api.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: "alice", Password: demoPassword})
					return err
				})
			}
			pair := e.mustLogin(t, "alice") // no cut login counted as a failure
			for i := range cuts {
				cut(fmt.Sprintf("password change %d", i), func(ctx context.Context) error {
					_, err := api.ChangePasswordWithResponse(ctx, client.PasswordChange{OldPassword: demoPassword, NewPassword: "a fresh password 42"}, bearer(pair.Access))
					return err
				})
			}
			e.mustLogin(t, "alice") // nor any cut password change
			if failed := e.auditEvents(t, audit.LoginFailed, audit.PasswordChangeFailed); len(failed) != 0 {
				t.Errorf("audit events of failures: %+v, want none", failed)
			}
		})
	}
}

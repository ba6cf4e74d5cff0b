package server_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/server"
)

// BenchmarkLogin compares the cost of the answers to a login with the real argon2id costs:
// unknown user, wrong password and inactive user must take as long as each other (compare
// the ratios within one run), so timing tells nobody which accounts exist.
func BenchmarkLogin(b *testing.B) {
	e := newBenchEnv(b)
	ctx := context.Background()
	for _, tc := range []struct{ name, username, password string }{
		{"ok", "alice", demoPassword},
		{"wrong_password", "alice", "wrong_password_1"},
		{"unknown_user", "nobody", demoPassword},
		{"inactive_user", "eve", demoPassword},
	} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				r, err := e.client.ObtainTokenWithResponse(ctx, client.TokenObtainRequest{Username: tc.username, Password: tc.password})
				if err != nil || r.StatusCode() >= 500 {
					b.Fatalf("login: %v %d", err, r.StatusCode())
				}
			}
		})
	}
}

// BenchmarkAuthenticatedRequest is the cost of one bearer request with the auth cache (the
// default): after the first request the token, user and session come from the cache.
func BenchmarkAuthenticatedRequest(b *testing.B) {
	benchAuthenticated(b, newBenchEnv(b))
}

// BenchmarkAuthenticatedRequestUncached is BenchmarkAuthenticatedRequest without the cache:
// verify the token, load the user and the session on every request.
func BenchmarkAuthenticatedRequestUncached(b *testing.B) {
	benchAuthenticated(b, newBenchEnv(b, withoutCache()))
}

func benchAuthenticated(b *testing.B, e benchEnv) {
	ctx := context.Background()
	auth := bearer(e.login(b, "alice").Access)
	for deadline := time.Now().Add(5 * time.Second); e.cache != nil && !e.cache.Fresh() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // the cache takes entries once it has read the change log
	}
	for b.Loop() {
		r, err := e.client.GetAccountWithResponse(ctx, auth)
		if err != nil || r.StatusCode() != 200 {
			b.Fatalf("account: %v %d", err, r.StatusCode())
		}
	}
}

type benchEnv struct{ *testEnv }

// newBenchEnv is a SQLite server with the production password costs, no login throttling and
// the production JSON request log (written nowhere), with alice (active) and eve (inactive).
func newBenchEnv(b *testing.B, opts ...envOption) benchEnv {
	b.Helper()
	e := newTestEnv(b, "sqlite", append([]envOption{withCosts(password.DefaultParams()), withConfig(func(c *server.Config) {
		c.LoginFailuresPerAccount, c.LoginFailuresPerIP = -1, -1
		c.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
	})}, opts...)...)
	e.mustUser(b, "alice", regular)
	eve := e.mustUser(b, "eve", regular)
	if _, err := e.store.UpdateUser(context.Background(), eve.ID, deactivate, false, e.clock.Now()); err != nil {
		b.Fatal(err)
	}
	return benchEnv{e}
}

func (e benchEnv) login(b *testing.B, username string) client.TokenPair {
	return e.mustLogin(b, username)
}

// BenchmarkAuthenticatedRequestMetrics is BenchmarkAuthenticatedRequest with metrics on: what
// recording the request and its token check costs.
func BenchmarkAuthenticatedRequestMetrics(b *testing.B) {
	benchAuthenticated(b, newBenchEnv(b, withConfig(func(c *server.Config) { c.Metrics = metrics.New() })))
}

package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/metrics/metricstest"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/store/storetest"
)

// meter scrapes a Metrics over HTTP and checks how much series moved across an operation.
type meter struct {
	url  string
	last metricstest.Samples
}

func newMeter(t *testing.T, m *metrics.Metrics) *meter {
	t.Helper()
	ts := httptest.NewServer(m.Handler())
	t.Cleanup(ts.Close)
	mt := &meter{url: ts.URL}
	mt.last = metricstest.Scrape(t, http.DefaultClient, mt.url)
	return mt
}

// series names one series: a metric name and its labels as key, value pairs.
type series struct {
	name   string
	labels []string
}

// moved runs op and checks that each series in want moved by exactly its value since the
// last scrape; anything not named may move too.
func (mt *meter) moved(t *testing.T, what string, op func(), want map[*series]float64) {
	t.Helper()
	before := mt.last
	op()
	after := metricstest.Scrape(t, http.DefaultClient, mt.url)
	mt.last = after
	for sr, delta := range want {
		got := after.Value(sr.name, sr.labels...) - before.Value(sr.name, sr.labels...)
		if got != delta {
			t.Errorf("%s: %s moved by %v, want %v", what, metricstest.Key(sr.name, sr.labels...), got, delta)
		}
	}
}

func requests(method, route string, status int) *series {
	return &series{"authapi_http_requests_total", []string{"method", method, "route", route, "status", strconv.Itoa(status)}}
}

func durations(method, route string, status int) *series {
	return &series{"authapi_http_request_duration_seconds_count", []string{"method", method, "route", route, "status", strconv.Itoa(status)}}
}

func counter(name, label, value string) *series { return &series{name, []string{label, value}} }

// TestMetrics scrapes the metrics over HTTP around each operation and checks that the series
// it should move moved, by exactly one: requests by route template (never the raw path),
// logins, refreshes, revocations and token checks by outcome, and the hashing queue's waits.
func TestMetrics(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			m := metrics.New()
			slots := semaphore.NewWeighted(1)
			hasher := password.NewHasher(password.FastParams(), password.Limit{Slots: slots, Wait: 50 * time.Millisecond, ObserveWait: m.HashWait})
			e := newTestEnv(t, backend, withHasher(hasher), withConfig(func(c *server.Config) {
				c.Metrics = m
				c.LoginFailuresPerAccount = 2
				c.RefreshesPerIPPerMinute = -1
			}))
			e.mustUser(t, "root", superRole)
			aliceUser := e.mustUser(t, "alice", regular)
			e.mustUser(t, "carol", regular)
			dave := e.mustUser(t, "dave", regular)
			root := bearer(e.mustLogin(t, "root").Access)
			mt := newMeter(t, m)

			var alice client.TokenPair
			logins := func(o metrics.LoginOutcome) *series { return counter("authapi_logins_total", "outcome", string(o)) }
			hashWaits := &series{name: "authapi_password_hash_queue_wait_seconds_count"}
			mt.moved(t, "login", func() { alice = e.mustLogin(t, "alice") }, map[*series]float64{
				logins(metrics.LoginOK):                       1,
				requests("POST", "/api/v1/auth/token/", 200):  1,
				durations("POST", "/api/v1/auth/token/", 200): 1,
				hashWaits: 1,
			})

			verified := func(o metrics.VerifyOutcome) *series {
				return counter("authapi_tokens_verified_total", "outcome", string(o))
			}
			welcome := func(auth client.RequestEditorFn) int {
				r, err := e.client.WelcomeWithResponse(ctx, auth)
				if err != nil {
					t.Fatal(err)
				}
				return r.StatusCode()
			}
			mt.moved(t, "a token checked for the first time", func() { welcome(bearer(alice.Access)) }, map[*series]float64{
				verified(metrics.VerifyOK):       1,
				verified(metrics.VerifyCacheHit): 0,
				requests("GET", "/api/v1/", 200): 1,
			})
			mustCache(t, e, alice.Access, func(t *testing.T, e *testEnv, access string) int { return welcome(bearer(access)) })
			mt.last = metricstest.Scrape(t, http.DefaultClient, mt.url)
			mt.moved(t, "a cached token", func() { welcome(bearer(alice.Access)) }, map[*series]float64{
				verified(metrics.VerifyCacheHit): 1,
				verified(metrics.VerifyOK):       0,
			})
			mt.moved(t, "a forged token", func() { welcome(bearer(alice.Access + "x")) }, map[*series]float64{
				verified(metrics.VerifyInvalid):  1,
				requests("GET", "/api/v1/", 401): 1,
			})

			mt.moved(t, "a user id in the path", func() {
				if r, err := e.client.GetUserWithResponse(ctx, 987654, root); err != nil || r.StatusCode() != 404 {
					t.Fatalf("GetUser: %v %v", r, err)
				}
			}, map[*series]float64{requests("GET", "/api/v1/account/management/:id/", 404): 1})
			mt.moved(t, "an unknown path and an unknown method", func() {
				e.do(t, http.MethodGet, "/nope/123456/", "", "")
				e.do(t, "BREW", "/api/v1/", "", "")
			}, map[*series]float64{
				requests("GET", metrics.Unmatched, 404): 1,
				requests("other", "/api/v1/", 405):      1,
			})
			for key := range mt.last {
				if strings.Contains(key, "987654") || strings.Contains(key, "123456") || strings.Contains(key, "BREW") {
					t.Errorf("series %s holds a raw path or method", key)
				}
			}

			wrong := func() *client.ObtainTokenResponse { return e.login(t, "carol", "wrong_password_1") }
			mt.moved(t, "wrong passwords, then the limit", func() {
				if a, b, c := wrong().StatusCode(), wrong().StatusCode(), wrong().StatusCode(); a != 401 || b != 401 || c != 429 {
					t.Fatalf("logins = %d %d %d, want 401 401 429", a, b, c)
				}
			}, map[*series]float64{logins(metrics.LoginFailed): 2, logins(metrics.LoginThrottled): 1})
			if err := slots.Acquire(ctx, 1); err != nil {
				t.Fatal(err)
			}
			mt.moved(t, "a login while every hashing slot is taken", func() {
				if r := e.login(t, "alice", demoPassword); r.StatusCode() != 503 {
					t.Fatalf("login = %d, want 503", r.StatusCode())
				}
			}, map[*series]float64{logins(metrics.LoginBusy): 1, hashWaits: 1})
			slots.Release(1)

			refreshes := func(o metrics.RefreshOutcome) *series {
				return counter("authapi_token_refreshes_total", "outcome", string(o))
			}
			revoked := func(c metrics.RevokeCause) *series {
				return counter("authapi_session_revocations_total", "cause", string(c))
			}
			refresh := func(tok string) *client.RefreshTokenResponse {
				r, err := e.client.RefreshTokenWithResponse(ctx, client.TokenRefreshRequest{Refresh: tok})
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			mt.moved(t, "a refresh", func() { refresh(alice.Refresh) }, map[*series]float64{refreshes(metrics.RefreshRotated): 1})
			mt.moved(t, "the same refresh token again at once", func() { refresh(alice.Refresh) }, map[*series]float64{
				refreshes(metrics.RefreshGrace): 1, refreshes(metrics.RefreshRotated): 0,
			})
			e.clock.Add(reuseGrace + time.Second)
			mt.moved(t, "the same refresh token after the grace", func() { refresh(alice.Refresh) }, map[*series]float64{
				refreshes(metrics.RefreshReuseDetected): 1, revoked(metrics.RevokeReuse): 1,
			})
			mt.moved(t, "a revoked token", func() { welcome(bearer(alice.Access)) }, map[*series]float64{
				verified(metrics.VerifyRejected): 1,
			})
			mt.moved(t, "a bad refresh token", func() { refresh("nonsense") }, map[*series]float64{refreshes(metrics.RefreshInvalid): 1})

			a1, a2 := e.mustLogin(t, "alice"), e.mustLogin(t, "alice")
			e.mustLogin(t, "alice") // a session for a2 to revoke
			mt.moved(t, "logout", func() {
				if r, err := e.client.LogoutWithResponse(ctx, client.LogoutRequest{Refresh: a1.Refresh}, bearer(a1.Access)); err != nil || r.StatusCode() != 200 {
					t.Fatalf("logout: %v %v", r, err)
				}
			}, map[*series]float64{revoked(metrics.RevokeLogout): 1})
			mt.moved(t, "revoke a session", func() {
				list, err := e.client.ListSessionsWithResponse(ctx, bearer(a2.Access))
				if err != nil || list.JSON200 == nil {
					t.Fatalf("list sessions: %v %v", list, err)
				}
				for _, sess := range *list.JSON200 {
					if !sess.Current {
						if r, err := e.client.RevokeSessionWithResponse(ctx, sess.Id, bearer(a2.Access)); err != nil || r.StatusCode() != 204 {
							t.Fatalf("revoke session: %v %v", r, err)
						}
						return
					}
				}
				t.Fatal("no other session to revoke")
			}, map[*series]float64{revoked(metrics.RevokeSession): 1})
			mt.moved(t, "logout_all", func() {
				if r, err := e.client.LogoutAllPostWithResponse(ctx, bearer(a2.Access)); err != nil || r.StatusCode() != 205 {
					t.Fatalf("logout all: %v %v", r, err)
				}
			}, map[*series]float64{revoked(metrics.RevokeLogoutAll): 1})

			b1 := e.mustLogin(t, "alice")
			mt.moved(t, "a superuser revokes a user's session", func() {
				list, err := e.client.ListSessionsWithResponse(ctx, bearer(b1.Access))
				if err != nil || list.JSON200 == nil || len(*list.JSON200) == 0 {
					t.Fatalf("list sessions: %v %v", list, err)
				}
				sid := (*list.JSON200)[0].Id
				if r, err := e.client.RevokeUserSessionWithResponse(ctx, aliceUser.ID, sid, root); err != nil || r.StatusCode() != 204 {
					t.Fatalf("revoke a user's session: %v %v", r, err)
				}
			}, map[*series]float64{revoked(metrics.RevokeUserSession): 1})
			mt.moved(t, "a superuser logs a user out everywhere", func() {
				if r, err := e.client.LogoutUserEverywhereWithResponse(ctx, aliceUser.ID, root); err != nil || r.StatusCode() != 204 {
					t.Fatalf("log a user out everywhere: %v %v", r, err)
				}
			}, map[*series]float64{revoked(metrics.RevokeUserEverywhere): 1})
			own := e.mustLogin(t, "alice")
			mt.moved(t, "a user changes their own password", func() {
				r, err := e.client.ChangePasswordWithResponse(ctx, client.PasswordChange{OldPassword: demoPassword, NewPassword: "a brand new password 8"}, bearer(own.Access))
				if err != nil || r.StatusCode() != 200 {
					t.Fatalf("change password: %v %v", r, err)
				}
			}, map[*series]float64{revoked(metrics.RevokePasswordChange): 1})

			patch := func(p client.UserPatch) {
				if r, err := e.client.PartialUpdateUserWithResponse(ctx, dave.ID, p, root); err != nil || r.StatusCode() != 200 {
					t.Fatalf("patch dave: %v %v", r, err)
				}
			}
			newPassword, inactive := "a brand new password 9", false
			mt.moved(t, "a password set by a superuser", func() { patch(client.UserPatch{Password: &newPassword}) },
				map[*series]float64{revoked(metrics.RevokePasswordChange): 1, hashWaits: 1})
			mt.moved(t, "a deactivation", func() { patch(client.UserPatch{IsActive: &inactive}) },
				map[*series]float64{revoked(metrics.RevokeDeactivation): 1})
			mt.moved(t, "deactivating an inactive user", func() { patch(client.UserPatch{IsActive: &inactive}) },
				map[*series]float64{revoked(metrics.RevokeDeactivation): 0})
			mt.moved(t, "a deletion", func() {
				if r, err := e.client.DeleteUserWithResponse(ctx, dave.ID, root); err != nil || r.StatusCode() != 204 {
					t.Fatalf("delete dave: %v %v", r, err)
				}
			}, map[*series]float64{revoked(metrics.RevokeDeletion): 1})
		})
	}
}

// Without rotation a refresh returns an access token only; past the per-IP rate, refreshes are
// refused before any token is looked at.
func TestMetricsRefreshWithoutRotation(t *testing.T) {
	m := metrics.New()
	e := newTestEnv(t, "sqlite", withConfig(func(c *server.Config) {
		c.Metrics, c.RotateRefreshTokens, c.RefreshesPerIPPerMinute = m, false, 1
	}))
	mt := newMeter(t, m)
	e.mustUser(t, "alice", regular)
	pair := e.mustLogin(t, "alice")
	refreshes := func(o metrics.RefreshOutcome) *series {
		return counter("authapi_token_refreshes_total", "outcome", string(o))
	}
	mt.moved(t, "a refresh, then one too many", func() {
		for _, want := range []int{200, 429} {
			r, err := e.client.RefreshTokenWithResponse(context.Background(), client.TokenRefreshRequest{Refresh: pair.Refresh})
			if err != nil || r.StatusCode() != want {
				t.Fatalf("refresh: %v %v, want %d", r, err, want)
			}
		}
	}, map[*series]float64{
		refreshes(metrics.RefreshAccessOnly): 1, refreshes(metrics.RefreshThrottled): 1,
		requests("POST", "/api/v1/auth/token/refresh/", 429): 1,
	})
}

package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/testbin"
)

// TestLoginOverCostHash: a stored hash whose costs are above the maxima (crafted, or imported
// before the maxima) fails the login like a wrong password, 401 with the cause logged, and is
// never run: each such login takes one hashing slot, for the dummy hash at authapi's own costs
// that a wrong password costs too (so the answer's time does not single the account out), and
// none for the crafted hash, so such logins cannot starve the others into 503s. Each hash is
// cheap enough under the old limits that a regression fails on the count, not on a timeout.
func TestLoginOverCostHash(t *testing.T) {
	crafted := map[string]string{
		"pbkdf2": "pbkdf2_sha256$2000001$seasalt$JgZryXe2Ga8ysg6XbzkLpTdyPQrHqsinbL9BnnhgX4A=",
		"bcrypt": "$2b$14$abcdefghijklmnopqrstuuanVo7Xut1CH8VGIGlz1JovQh9GJbbtG",
		"argon":  fmt.Sprintf("$argon2id$v=19$m=%d,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U", 4*19456+1),
	}
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			var slots atomic.Int64
			hasher := password.NewHasher(password.FastParams(), password.Limit{Wait: time.Minute,
				ObserveWait: func(time.Duration) { slots.Add(1) }})
			var logs testbin.Buffer
			e := newTestEnv(t, backend, withHasher(hasher), withConfig(func(c *server.Config) {
				c.Logger = slog.New(slog.NewJSONHandler(&logs, nil))
			}))
			for name, hash := range crafted {
				u := store.User{Username: name, FirstName: "C", LastName: "C", Email: name + "@example.com",
					PasswordHash: hash, IsActive: true, DateJoined: e.clock.Now()}
				if err := e.store.CreateUser(context.Background(), &u); err != nil {
					t.Fatal(err)
				}
			}
			for name := range crafted {
				r := e.login(t, name, demoPassword)
				wantError(t, "login "+name, r.StatusCode(), r.Body, http.StatusUnauthorized, "authentication_failed")
			}
			if n := slots.Load(); n != int64(len(crafted)) {
				t.Errorf("%d hashing slots taken by %d logins to over-cost hashes, want one each (the dummy)", n, len(crafted))
			}
			var logged int
			for _, rec := range logRecords(t, &logs) {
				if rec["msg"] == "unreadable password hash" && strings.Contains(fmt.Sprint(rec["err"]), "costs above the maxima") {
					logged++
				}
			}
			if logged != len(crafted) {
				t.Errorf("%d over-cost hashes logged, want %d:\n%s", logged, len(crafted), logs.String())
			}
			e.mustUser(t, "admin", superRole)
			e.mustLogin(t, "admin")
		})
	}
}

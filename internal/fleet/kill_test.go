package fleet_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authapi/authapi/gen/client"
)

// testKill: under a load of user creations and logins spread over the instances, instance 3 is
// killed with SIGKILL. Every write acknowledged with a 2xx, by any instance, is in the
// database afterwards, and the other two keep serving without an error.
func (f *fleet) testKill(t *testing.T) {
	const (
		loaders   = 6
		killAfter = 30 // acknowledged writes before the kill
		afterKill = 60 // acknowledged writes after it, all by the survivors
	)
	victim := f.inst[2]
	var (
		mu        sync.Mutex
		users     = map[string]bool{} // acknowledged creations
		sessions  = map[string]bool{} // sessions of acknowledged logins
		acked     atomic.Int64
		sinceKill atomic.Int64
		killed    atomic.Bool
		wg        sync.WaitGroup
	)
	ack := func(record func()) {
		mu.Lock()
		record()
		mu.Unlock()
		acked.Add(1)
		if killed.Load() {
			sinceKill.Add(1)
		}
	}
	// failed reports a failure, which only the killed instance may have.
	failed := func(in *instance, what string, code int, err error, body []byte) {
		if in == victim && killed.Load() {
			return
		}
		t.Errorf("%s on instance %d: status %d (err %v) %s", what, in.n, code, err, body)
	}
	deadline := time.Now().Add(time.Minute)
	for g := range loaders {
		wg.Go(func() {
			for i := 0; sinceKill.Load() < afterKill && !t.Failed() && time.Now().Before(deadline); i++ {
				in := f.inst[(g+i)%instances]
				username := fmt.Sprintf("load-%d-%d", g, i)
				staff := false
				resp, err := in.client.CreateUserWithResponse(t.Context(), client.UserCreate{
					Username: username, FirstName: "Load", LastName: "Test", Email: username + "@example.com",
					Password: userPassword, IsStaff: &staff,
				}, bearer(f.admin))
				if code := status(resp, err); code != http.StatusCreated {
					var body []byte
					if resp != nil {
						body = resp.Body
					}
					failed(in, "create "+username, code, err, body)
					continue
				}
				ack(func() { users[username] = true })

				in = f.inst[(g+i+1)%instances]
				login, err := in.client.ObtainTokenWithResponse(t.Context(), client.TokenObtainRequest{Username: username, Password: userPassword})
				if code := status(login, err); code != http.StatusOK {
					var body []byte
					if login != nil {
						body = login.Body
					}
					failed(in, "login "+username, code, err, body)
					continue
				}
				session := sid(t, login.JSON200.Access)
				ack(func() { sessions[session] = true })
			}
		})
	}
	for acked.Load() < killAfter && !t.Failed() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	killed.Store(true)
	victim.kill(t)
	before := acked.Load()
	wg.Wait()
	if time.Now().After(deadline) {
		t.Fatalf("the load did not reach %d acknowledged writes after the kill within a minute (%d)", afterKill, sinceKill.Load())
	}
	t.Logf("killed instance %d after %d acknowledged writes; the other two acknowledged %d more", victim.n, before, sinceKill.Load())

	// Every acknowledged write is in the database.
	stored := map[string]bool{}
	rows, err := f.db.Query(`SELECT username FROM users WHERE username LIKE 'load-%'`)
	if err != nil {
		t.Fatalf("read users: %v", err)
	}
	for rows.Next() {
		var u string
		if err := rows.Scan(&u); err != nil {
			t.Fatal(err)
		}
		stored[u] = true
	}
	rows.Close()
	storedSessions := map[string]bool{}
	rows, err = f.db.Query(`SELECT id FROM sessions`)
	if err != nil {
		t.Fatalf("read sessions: %v", err)
	}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		storedSessions[s] = true
	}
	rows.Close()
	mu.Lock()
	defer mu.Unlock()
	lost := 0
	for u := range users {
		if !stored[u] {
			t.Errorf("user %s was acknowledged but is not in the database", u)
			lost++
		}
	}
	for s := range sessions {
		if !storedSessions[s] {
			t.Errorf("session %s was acknowledged but is not in the database", s)
			lost++
		}
	}
	t.Logf("%d acknowledged user creations and %d acknowledged logins, %d lost; %d users in the database (the rest were cut off unacknowledged)",
		len(users), len(sessions), lost, len(stored))

	// The survivors still serve, and still agree.
	for _, in := range f.inst[:2] {
		pair := f.login(t, in, "load-0-0", userPassword)
		for _, other := range f.inst[:2] {
			if code, err := welcomeStatus(t.Context(), other, pair.Access); err != nil || code != http.StatusOK {
				t.Errorf("after the kill: token from instance %d on instance %d: status %d, err %v", in.n, other.n, code, err)
			}
		}
	}
}

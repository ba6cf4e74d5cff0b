package verifier

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/testclock"
	"github.com/authapi/authapi/internal/token/tokentest"
)

// fakeIssuer plays authapi's part for the verifier, by the standards it follows: RFC 8414
// discovery, a JWKS, the client credentials grant, RFC 7662 introspection and an SSF stream
// with RFC 8936 poll delivery.
type fakeIssuer struct {
	t      testing.TB
	srv    *httptest.Server
	clock  *testclock.Clock
	access *tokentest.Key // signs access tokens
	setKey *tokentest.Key // signs SETs

	mu           sync.Mutex
	keys         []*tokentest.Key
	jwksFetches  int
	introspects  int
	active       func(raw string) (bool, int) // introspection's answer and status
	streams      []map[string]any
	queue        map[string]string // jti -> SET, until acknowledged
	acked        []string
	setErrs      map[string]any
	down         bool          // polls answer 503
	introDown    bool          // introspection answers 503
	wake         chan struct{} // closed to end a held poll
	nextEvent    int
	kicked       bool        // the next poll returns at once
	status       string      // of the (one) stream: enabled, paused or disabled
	enables      int         // status changes to enabled asked for
	refuseEnable bool        // status changes answer 403
	pollTimes    []time.Time // the clock's time at each poll answered
}

// pollsSince counts the polls answered that arrived at or after t.
func (f *fakeIssuer) pollsSince(t time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, pt := range f.pollTimes {
		if !pt.Before(t) {
			n++
		}
	}
	return n
}

const (
	fakeClientID     = "ac_test"
	fakeClientSecret = "s3cret/+"
	fakeAudience     = "https://api.example.com"
)

func newFakeIssuer(t testing.TB, clock *testclock.Clock) *fakeIssuer {
	f := &fakeIssuer{t: t, clock: clock, access: tokentest.NewKey("k1", "EdDSA"), setKey: tokentest.NewKey("set1", "RS256"),
		queue: map[string]string{}, setErrs: map[string]any{}, wake: make(chan struct{}), status: "enabled",
		active: func(string) (bool, int) { return true, http.StatusOK }}
	// As authapi does, the SET key is made (and published) when the first stream is created.
	f.keys = []*tokentest.Key{f.access}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"issuer": f.srv.URL, "jwks_uri": f.srv.URL + "/.well-known/jwks.json",
			"token_endpoint": f.srv.URL + "/oauth/token", "introspection_endpoint": f.srv.URL + "/oauth/introspect"})
	})
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.jwksFetches++
		doc := tokentest.JWKS(f.keys...)
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(doc)
	})
	mux.HandleFunc("POST /oauth/token", func(w http.ResponseWriter, r *http.Request) {
		if !f.clientAuth(r) || r.PostFormValue("grant_type") != "client_credentials" {
			writeJSON(w, 401, map[string]any{"error": "invalid_client"})
			return
		}
		writeJSON(w, 200, map[string]any{"access_token": "client-token", "token_type": "Bearer", "expires_in": 3600, "scope": r.PostFormValue("scope")})
	})
	mux.HandleFunc("POST /oauth/introspect", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.introspects++
		down, active := f.introDown, f.active
		f.mu.Unlock()
		if down {
			w.WriteHeader(503)
			return
		}
		if !f.clientAuth(r) {
			writeJSON(w, 401, map[string]any{"error": "invalid_client"})
			return
		}
		ok, status := active(r.PostFormValue("token"))
		writeJSON(w, status, map[string]any{"active": ok})
	})
	mux.HandleFunc("GET /.well-known/ssf-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"issuer": f.srv.URL, "jwks_uri": f.srv.URL + "/.well-known/jwks.json",
			"delivery_methods_supported": []string{PollDelivery}, "configuration_endpoint": f.srv.URL + "/ssf/streams",
			"status_endpoint": f.srv.URL + "/ssf/status"})
	})
	mux.HandleFunc("GET /ssf/streams", func(w http.ResponseWriter, r *http.Request) {
		if !f.bearer(w, r) {
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, 200, f.streams)
	})
	mux.HandleFunc("POST /ssf/streams", func(w http.ResponseWriter, r *http.Request) {
		if !f.bearer(w, r) {
			return
		}
		var req streamConfig
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Delivery.Method != PollDelivery {
			writeJSON(w, 400, map[string]any{"error": "bad stream"})
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		id := fmt.Sprintf("st%d", len(f.streams)+1)
		s := map[string]any{"stream_id": id, "iss": f.srv.URL, "aud": fakeClientID, "description": req.Description, "format": req.Format,
			"events_requested": req.EventsRequested, "events_delivered": req.EventsRequested,
			"delivery": map[string]any{"method": PollDelivery, "endpoint_url": f.srv.URL + "/ssf/poll/" + id}}
		f.streams = append(f.streams, s)
		if len(f.streams) == 1 {
			f.keys = append(f.keys, f.setKey)
		}
		writeJSON(w, 201, s)
	})
	mux.HandleFunc("GET /ssf/status", func(w http.ResponseWriter, r *http.Request) {
		if !f.bearer(w, r) {
			return
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, 200, map[string]any{"stream_id": r.URL.Query().Get("stream_id"), "status": f.status})
	})
	mux.HandleFunc("POST /ssf/status", func(w http.ResponseWriter, r *http.Request) {
		if !f.bearer(w, r) {
			return
		}
		var req struct{ StreamID, Status string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.refuseEnable {
			writeJSON(w, 403, map[string]any{"error": "insufficient_scope"})
			return
		}
		f.status = req.Status
		if req.Status == "enabled" {
			f.enables++
		}
		writeJSON(w, 200, map[string]any{"stream_id": req.StreamID, "status": f.status})
	})
	mux.HandleFunc("POST /ssf/poll/{id}", func(w http.ResponseWriter, r *http.Request) {
		if !f.bearer(w, r) {
			return
		}
		arrived := f.clock.Now()
		var req struct {
			MaxEvents         int            `json:"maxEvents"`
			ReturnImmediately bool           `json:"returnImmediately"`
			Ack               []string       `json:"ack"`
			SetErrs           map[string]any `json:"setErrs"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeJSON(w, 400, map[string]any{"err": "invalid_request"})
			return
		}
		f.mu.Lock()
		for _, jti := range req.Ack {
			delete(f.queue, jti)
			f.acked = append(f.acked, jti)
		}
		for jti, e := range req.SetErrs {
			delete(f.queue, jti)
			f.setErrs[jti] = e
		}
		if (len(f.queue) == 0 || f.status != "enabled") && !req.ReturnImmediately && !f.down && !f.kicked {
			wake := f.wake
			f.mu.Unlock()
			select {
			case <-wake:
			case <-r.Context().Done():
			case <-time.After(500 * time.Millisecond): // the transmitter's own hold
			}
			f.mu.Lock()
		}
		f.kicked = false
		defer f.mu.Unlock()
		if f.down {
			w.WriteHeader(503)
			return
		}
		f.pollTimes = append(f.pollTimes, arrived)
		sets := map[string]string{}
		for jti, set := range f.queue {
			if len(sets) < req.MaxEvents && f.status == "enabled" {
				sets[jti] = set
			}
		}
		writeJSON(w, 200, map[string]any{"sets": sets, "moreAvailable": len(sets) < len(f.queue)})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeIssuer) clientAuth(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	return ok && id == fakeClientID && secret == strings.ReplaceAll(strings.ReplaceAll(fakeClientSecret, "/", "%2F"), "+", "%2B")
}

func (f *fakeIssuer) bearer(w http.ResponseWriter, r *http.Request) bool {
	if r.Header.Get("Authorization") != "Bearer client-token" {
		writeJSON(w, 401, map[string]any{"error": "invalid_token"})
		return false
	}
	return true
}

// kick ends held polls now.
func (f *fakeIssuer) kick() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.wake)
	f.wake = make(chan struct{})
	f.kicked = true
}

func (f *fakeIssuer) setDown(down bool) {
	f.mu.Lock()
	f.down, f.introDown = down, down
	f.mu.Unlock()
	f.kick()
}

// accessToken signs a user's access token for session sid issued at the clock's now.
func (f *fakeIssuer) accessToken(sub, sid string, iat time.Time) string {
	return f.access.Sign("at+jwt", map[string]any{
		"iss": f.srv.URL, "sub": sub, "aud": fakeAudience, "client_id": "authapi", "sid": sid,
		"jti": fmt.Sprintf("%s-%s-%d", sub, sid, iat.UnixNano()), "iat": iat.Unix(), "exp": iat.Add(15 * time.Minute).Unix(),
		"auth_time": iat.Unix(), "amr": []string{"pwd"}, "token_type": "access", "user_id": 1,
	}, nil)
}

// emit queues a SET of eventType about the user sub (and session sid, if any) at the clock's now.
func (f *fakeIssuer) emit(eventType, sub, sid string) string {
	f.mu.Lock()
	f.nextEvent++
	jti := fmt.Sprintf("ev%d", f.nextEvent)
	now := f.clock.Now()
	user := map[string]any{"format": "iss_sub", "iss": f.srv.URL, "sub": sub}
	// As authapi writes them on a complex stream: the user, and the session when there is one.
	subject := map[string]any{"format": "complex", "user": user}
	if sid != "" {
		subject["session"] = map[string]any{"format": "opaque", "id": sid}
	}
	f.queue[jti] = f.setKey.Sign("secevent+jwt", map[string]any{"iss": f.srv.URL, "aud": fakeClientID, "jti": jti,
		"iat": now.Unix(), "sub_id": subject, "events": map[string]any{eventType: map[string]any{"event_timestamp": now.Unix()}}}, nil)
	f.mu.Unlock()
	f.kick()
	return jti
}

func (f *fakeIssuer) counts() (jwks, introspects int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.jwksFetches, f.introspects
}

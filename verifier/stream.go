package verifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/authapi/authapi/internal/token"
)

// The delivery method and the event types the verifier asks for (SSF 1.0, CAEP 1.0, RISC).
const (
	PollDelivery       = "urn:ietf:rfc:8936"
	SessionRevoked     = "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
	CredentialChange   = "https://schemas.openid.net/secevent/caep/event-type/credential-change"
	TokenClaimsChange  = "https://schemas.openid.net/secevent/caep/event-type/token-claims-change"
	AccountDisabled    = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
	AccountPurged      = "https://schemas.openid.net/secevent/risc/event-type/account-purged"
	StreamVerification = "https://schemas.openid.net/secevent/ssf/event-type/verification"
	StreamUpdated      = "https://schemas.openid.net/secevent/ssf/event-type/stream-updated"
)

var eventsRequested = []string{SessionRevoked, CredentialChange, TokenClaimsChange, AccountDisabled, AccountPurged}

// Event is a security event the verifier has applied.
type Event struct {
	ID        string    // the SET's jti
	Type      string    // the event type URI
	SessionID string    // the session it revokes, if it names one
	Subject   string    // the user's sub, if it names one
	EventTime time.Time // event_timestamp, or the SET's iat
	AppliedAt time.Time // when tokens it revokes began to be refused
}

// subjectFormat is the sub_id format the verifier asks for: the user and the session.
const subjectFormat = "complex"

// pollBatch is maxEvents of each poll.
const pollBatch = 100

// stream follows this verifier's SSF poll stream (RFC 8936): it ensures the stream exists,
// long-polls it, applies each SET to the revocations, and acknowledges the SETs it applied in
// its next poll. An unacknowledged SET is delivered again, so a crash loses nothing.
type stream struct {
	v *Verifier

	mu        sync.Mutex
	id        string
	pollURL   string
	statusURL string    // empty when the transmitter has no status endpoint
	statusOK  time.Time // when the newest status check that found the stream enabled was sent
	aud       []string
	since     time.Time
	lastHeard time.Time
	lastSent  time.Time // when the newest answered poll was sent
	lastErr   error
	events    uint64
	tok       string
	tokExp    time.Time

	// afterPoll, if set (tests), is called after each poll attempt with its error.
	afterPoll func(error)
}

func newStream(v *Verifier) *stream { return &stream{v: v} }

func (s *stream) health(now time.Time) Health {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Health{
		Enabled: true, StreamID: s.id, Since: s.since, LastHeard: s.lastHeard, LastPoll: s.lastSent,
		Stale:     s.lastHeard.IsZero() || now.Sub(s.lastHeard) > s.v.cfg.StaleAfter,
		LastError: s.lastErr, Events: s.events,
	}
}

func (s *stream) run(ctx context.Context) {
	var ack []string
	setErrs := map[string]setErr{}
	immediate := false
	backoff := 50 * time.Millisecond
	for ctx.Err() == nil {
		err := s.ensure(ctx)
		if err == nil {
			err = s.checkStatus(ctx)
		}
		if err == nil {
			var next []string
			next, immediate, err = s.poll(ctx, ack, setErrs, immediate)
			if err == nil {
				ack = next
				backoff = 50 * time.Millisecond
			}
		}
		s.v.revoked.prune(s.v.cfg.Now())
		if s.afterPoll != nil {
			s.afterPoll(err)
		}
		if err == nil || ctx.Err() != nil {
			continue
		}
		s.fail(err)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

func (s *stream) fail(err error) {
	s.mu.Lock()
	s.lastErr = err
	s.mu.Unlock()
	s.v.cfg.Logger.Warn("verifier: revocation stream", "err", err)
}

// errStreamGone makes run ensure the stream again.
var errStreamGone = errors.New("stream gone")

type setErr struct {
	Err         string `json:"err"`
	Description string `json:"description"`
}

type pollResponse struct {
	Sets          map[string]string `json:"sets"`
	MoreAvailable bool              `json:"moreAvailable"`
}

// poll makes one poll request acknowledging ack and reporting setErrs (which it empties once
// sent), and applies the SETs of the answer. It returns the jtis to acknowledge next and
// whether the next poll should return immediately.
func (s *stream) poll(ctx context.Context, ack []string, setErrs map[string]setErr, immediate bool) ([]string, bool, error) {
	cfg := s.v.cfg
	tok, err := s.clientToken(ctx)
	if err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	pollURL := s.pollURL
	s.mu.Unlock()
	if ack == nil {
		ack = []string{} // an array, never null
	}
	body := map[string]any{"maxEvents": pollBatch, "returnImmediately": immediate, "ack": ack}
	if len(setErrs) > 0 {
		body["setErrs"] = setErrs
	}
	b, _ := json.Marshal(body)
	// A long poll the issuer holds for longer than half of StaleAfter is given up and followed
	// by one that returns at once, so that a live issuer is heard from within the bound. (An
	// event that arrives as a poll is given up stays queued and comes in the next one.)
	wait := cfg.StaleAfter / 2
	if immediate {
		wait = cfg.StaleAfter
	}
	reqCtx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	sent := cfg.Now()
	req, err := http.NewRequestWithContext(reqCtx, http.MethodPost, pollURL, bytes.NewReader(b))
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := cfg.HTTPClient.Do(req)
	if err != nil {
		if !immediate && errors.Is(reqCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
			return ack, true, nil
		}
		return nil, false, fmt.Errorf("poll: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, false, fmt.Errorf("poll: %w", err)
	}
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized:
		s.mu.Lock()
		s.tok = ""
		s.mu.Unlock()
		return nil, false, fmt.Errorf("poll: status %d", resp.StatusCode)
	case http.StatusNotFound, http.StatusForbidden:
		s.forget()
		return nil, false, fmt.Errorf("poll: status %d: %w", resp.StatusCode, errStreamGone)
	default:
		return nil, false, fmt.Errorf("poll: status %d: %s", resp.StatusCode, truncate(raw))
	}
	clear(setErrs)
	var pr pollResponse
	if err := json.Unmarshal(raw, &pr); err != nil {
		return nil, false, fmt.Errorf("poll: %w", err)
	}
	next := make([]string, 0, len(pr.Sets))
	for jti, set := range pr.Sets {
		ok, sErr, err := s.apply(ctx, set)
		switch {
		case err != nil: // not acknowledged: it comes again
			return next, false, fmt.Errorf("poll: SET %s: %w", jti, err)
		case ok:
			next = append(next, jti)
		default:
			setErrs[jti] = sErr
		}
	}
	s.mu.Lock()
	// A poll of a paused or disabled stream answers, but with nothing: it counts only as far as
	// the stream was last seen enabled.
	s.lastHeard, s.lastSent = sent, sent
	if s.statusURL != "" && s.statusOK.Before(sent) {
		s.lastHeard = s.statusOK
	}
	s.lastErr = nil
	s.mu.Unlock()
	return next, pr.MoreAvailable, nil
}

// apply verifies and applies one SET. It returns ok when the SET should be acknowledged, a
// setErr when it should be reported as bad, and an error when it cannot be judged now (its
// key cannot be fetched yet).
func (s *stream) apply(ctx context.Context, raw string) (bool, setErr, error) {
	cfg := s.v.cfg
	now := cfg.Now()
	s.mu.Lock()
	want := token.Expect{Issuers: []string{cfg.Issuer}, Audiences: s.aud, Now: now, Leeway: cfg.Leeway}
	s.mu.Unlock()
	keys := s.v.keys
	c, err := keys.set().VerifySecurityEvent(raw, want)
	if errors.Is(err, token.ErrUnknownKey) {
		if !keys.refreshUnknown(ctx) {
			return false, setErr{}, err
		}
		c, err = keys.set().VerifySecurityEvent(raw, want)
	}
	if errors.Is(err, token.ErrUnknownKey) {
		return false, setErr{}, err
	}
	if err != nil {
		return false, setErr{Err: "invalid_request", Description: err.Error()}, nil
	}
	ev := Event{ID: c.ID, Type: c.EventType, EventTime: c.IssuedAt, AppliedAt: now}
	if ts, ok := c.Event["event_timestamp"].(json.Number); ok {
		if sec, err := ts.Int64(); err == nil {
			ev.EventTime = time.Unix(sec, 0).UTC()
		}
	}
	ev.Subject, ev.SessionID = subject(c.SubjectID)
	forget := ev.EventTime.Add(cfg.MaxTokenLifetime + cfg.Leeway)
	eventSecond := ev.EventTime.Truncate(time.Second)
	switch c.EventType {
	case SessionRevoked:
		switch {
		case ev.SessionID != "":
			s.v.revoked.revokeSession(ev.SessionID, forget)
		case ev.Subject != "": // every session of the user (authapi names each session it ends)
			s.v.revoked.revokeUser(ev.Subject, eventSecond.Add(time.Second), forget)
		}
	case CredentialChange, TokenClaimsChange:
		// Tokens of the event's second stay: the new session a password change starts
		// is issued in it (iat has whole seconds). Its old sessions are revoked by their own
		// session-revoked events.
		if ev.Subject != "" {
			s.v.revoked.revokeUser(ev.Subject, eventSecond, forget)
		}
	case AccountDisabled, AccountPurged:
		if ev.Subject != "" {
			s.v.revoked.revokeUser(ev.Subject, eventSecond.Add(time.Second), forget)
		}
	case StreamUpdated:
		if status, _ := c.Event["status"].(string); status != "enabled" {
			s.mu.Lock()
			s.statusOK = time.Time{} // check (and enable) it before the next poll
			s.mu.Unlock()
		}
	}
	if cfg.OnEvent != nil {
		cfg.OnEvent(ev)
	}
	s.mu.Lock()
	s.events++
	s.mu.Unlock()
	return true, setErr{}, nil
}

// subject reads an RFC 9493 subject identifier: the user's sub from iss_sub (alone or as the
// user of a complex subject) and the session's id from a complex subject's opaque session.
func subject(id map[string]any) (sub, sid string) {
	if id == nil {
		return "", ""
	}
	user := id
	if f, _ := id["format"].(string); f == "complex" {
		user, _ = id["user"].(map[string]any)
		if session, _ := id["session"].(map[string]any); session != nil {
			sid, _ = session["id"].(string)
		}
	}
	if user != nil {
		if f, _ := user["format"].(string); f == "iss_sub" {
			sub, _ = user["sub"].(string)
		}
	}
	return sub, sid
}

// forget drops the stream so that run ensures it again; what was revoked before stays, but
// the coverage starts again (Since).
func (s *stream) forget() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.id, s.pollURL = "", ""
}

type ssfConfiguration struct {
	ConfigurationEndpoint string `json:"configuration_endpoint"`
	StatusEndpoint        string `json:"status_endpoint"`
}

type streamConfig struct {
	StreamID        string          `json:"stream_id,omitempty"`
	Aud             json.RawMessage `json:"aud,omitempty"`
	Description     string          `json:"description,omitempty"`
	EventsRequested []string        `json:"events_requested,omitempty"`
	// Format is authapi's extension: the sub_id format of the stream's SETs. complex names
	// the session as well as the user; a transmitter without the extension omits it.
	Format   string `json:"format,omitempty"`
	Delivery struct {
		Method      string `json:"method"`
		EndpointURL string `json:"endpoint_url,omitempty"`
	} `json:"delivery"`
}

// ensure finds this verifier's stream (by StreamName) or creates it, unless it has it.
func (s *stream) ensure(ctx context.Context) error {
	s.mu.Lock()
	have := s.pollURL != ""
	s.mu.Unlock()
	if have {
		return nil
	}
	cfg := s.v.cfg
	began := cfg.Now()
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	tok, err := s.clientToken(ctx)
	if err != nil {
		return err
	}
	var ssf ssfConfiguration
	if err := getJSON(ctx, cfg.HTTPClient, cfg.Issuer+"/.well-known/ssf-configuration", &ssf); err != nil {
		return fmt.Errorf("SSF discovery: %w", err)
	}
	if ssf.ConfigurationEndpoint == "" {
		return errors.New("SSF discovery: no configuration_endpoint")
	}
	var found *streamConfig
	listed, status, err := s.call(ctx, http.MethodGet, ssf.ConfigurationEndpoint, tok, nil)
	if err != nil {
		return fmt.Errorf("list streams: %w", err)
	}
	if status == http.StatusOK {
		var list []streamConfig
		if json.Unmarshal(listed, &list) != nil { // a transmitter may answer one stream as an object
			var one streamConfig
			if json.Unmarshal(listed, &one) == nil && one.StreamID != "" {
				list = []streamConfig{one}
			}
		}
		for i := range list {
			if list[i].Description == cfg.StreamName && list[i].Delivery.Method == PollDelivery && (list[i].Format == "" || list[i].Format == subjectFormat) {
				found = &list[i]
				break
			}
		}
	}
	if found == nil {
		var want streamConfig
		want.Delivery.Method = PollDelivery
		want.Description = cfg.StreamName
		want.EventsRequested = eventsRequested
		want.Format = subjectFormat
		b, _ := json.Marshal(want)
		created, status, err := s.call(ctx, http.MethodPost, ssf.ConfigurationEndpoint, tok, b)
		if err != nil {
			return fmt.Errorf("create stream: %w", err)
		}
		if status != http.StatusOK && status != http.StatusCreated {
			return fmt.Errorf("create stream: status %d: %s", status, truncate(created))
		}
		found = new(streamConfig)
		if err := json.Unmarshal(created, found); err != nil {
			return fmt.Errorf("create stream: %w", err)
		}
		// The issuer may have made its SET signing key for this first stream: fetch the keys
		// now rather than wait out the unknown-kid rate limit on the first SET.
		if err := s.v.keys.refresh(ctx); err != nil {
			cfg.Logger.Warn("verifier: JWKS after creating the stream", "err", err)
		}
	}
	if found.Delivery.EndpointURL == "" {
		return fmt.Errorf("stream %s: no poll endpoint_url", found.StreamID)
	}
	var aud []string
	if json.Unmarshal(found.Aud, &aud) != nil {
		var one string
		if json.Unmarshal(found.Aud, &one) == nil && one != "" {
			aud = []string{one}
		}
	}
	s.mu.Lock()
	s.id, s.pollURL, s.aud = found.StreamID, found.Delivery.EndpointURL, aud
	s.statusURL, s.statusOK = ssf.StatusEndpoint, time.Time{}
	// Revocations before this are not in the stream's queue; tokens issued until then (plus
	// clock skew) are confirmed by introspection once.
	s.since = began.Add(cfg.Leeway)
	s.mu.Unlock()
	s.v.restartCoverage()
	return nil
}

// checkStatus makes sure, at least every half StaleAfter, that the stream is enabled: a paused
// or disabled one answers polls with nothing. One that is not is enabled again (it is this
// client's), and since events may have been dropped meanwhile, coverage starts again (Since).
func (s *stream) checkStatus(ctx context.Context) error {
	cfg := s.v.cfg
	now := cfg.Now()
	s.mu.Lock()
	statusURL, id, due := s.statusURL, s.id, now.Sub(s.statusOK) >= cfg.StaleAfter/2
	s.mu.Unlock()
	if statusURL == "" || !due {
		return nil
	}
	tok, err := s.clientToken(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var st struct {
		Status string `json:"status"`
	}
	u := statusURL + "?stream_id=" + url.QueryEscape(id)
	body, status, err := s.call(ctx, http.MethodGet, u, tok, nil)
	if err == nil && status == http.StatusOK {
		err = json.Unmarshal(body, &st)
	}
	switch {
	case err != nil:
		return fmt.Errorf("stream status: %w", err)
	case status == http.StatusNotFound:
		s.forget()
		return fmt.Errorf("stream status: %w", errStreamGone)
	case status != http.StatusOK:
		return fmt.Errorf("stream status: status %d", status)
	}
	if st.Status != "enabled" {
		req, _ := json.Marshal(map[string]string{"stream_id": id, "status": "enabled", "reason": "enabled again by its receiver"})
		body, status, err = s.call(ctx, http.MethodPost, statusURL, tok, req)
		if err == nil && status == http.StatusOK {
			err = json.Unmarshal(body, &st)
		}
		if err != nil || status != http.StatusOK || st.Status != "enabled" {
			return fmt.Errorf("enable stream %s: status %d, %v", id, status, err)
		}
		cfg.Logger.Warn("verifier: the stream was not enabled; enabled it again", "stream", id)
		s.mu.Lock()
		s.since = now.Add(cfg.Leeway)
		s.mu.Unlock()
		s.v.restartCoverage()
	}
	s.mu.Lock()
	s.statusOK = now
	s.mu.Unlock()
	return nil
}

// requestTimeout bounds each request of the stream's set-up.
const requestTimeout = 10 * time.Second

func (s *stream) call(ctx context.Context, method, url, tok string, body []byte) ([]byte, int, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.v.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	return b, resp.StatusCode, err
}

// streamScopes are what the stream's client token asks for.
const streamScopes = "ssf.manage ssf.read"

// clientToken returns a client credentials token for the stream, fetching one when the last
// is gone or nine tenths through its life.
func (s *stream) clientToken(ctx context.Context) (string, error) {
	now := s.v.cfg.Now()
	s.mu.Lock()
	tok, exp := s.tok, s.tokExp
	s.mu.Unlock()
	if tok != "" && now.Before(exp) {
		return tok, nil
	}
	var answer struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {streamScopes}}
	status, err := s.v.postForm(ctx, s.v.meta.TokenEndpoint, form, &answer)
	if err != nil {
		return "", fmt.Errorf("client token: %w", err)
	}
	if status != http.StatusOK || answer.AccessToken == "" {
		return "", fmt.Errorf("client token: status %d", status)
	}
	life := time.Duration(answer.ExpiresIn) * time.Second * 9 / 10
	s.mu.Lock()
	s.tok, s.tokExp = answer.AccessToken, now.Add(life)
	s.mu.Unlock()
	return answer.AccessToken, nil
}

// postForm posts form with the client's credentials (client_secret_basic) and decodes a JSON
// answer into into when the status is 200.
func (v *Verifier) postForm(ctx context.Context, endpoint string, form url.Values, into any) (int, error) {
	if endpoint == "" {
		return 0, errors.New("endpoint not in the issuer's metadata")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 2.3.1: the id and secret are form-encoded before Basic encoding.
	req.SetBasicAuth(url.QueryEscape(v.cfg.ClientID), url.QueryEscape(v.cfg.ClientSecret))
	resp, err := v.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, err
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, into); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

func truncate(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

package metrics_test

import (
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/metrics/metricstest"
)

// A nil *Metrics is what the server holds when metrics are off: every method is a no-op.
func TestNilRecordsNothing(t *testing.T) {
	var m *metrics.Metrics
	m.Request(http.MethodGet, "/", 200, time.Millisecond)
	m.Login(metrics.LoginOK)
	m.Refresh(metrics.RefreshRotated)
	m.Revoked(metrics.RevokeLogout)
	m.Verified(metrics.VerifyCacheHit)
	m.HashWait(time.Millisecond)
	m.WatchKeyRing(func() metrics.KeyRingState { return metrics.KeyRingState{} })
	m.WatchDBPools(nil)
}

// Every outcome's series is exported at 0 before it first happens, so a rate() over it is
// defined from the first scrape; the key ring's next signing is +Inf while none is pending.
func TestSeriesExistFromTheStart(t *testing.T) {
	m := metrics.New()
	pending := false
	m.WatchKeyRing(func() metrics.KeyRingState {
		return metrics.KeyRingState{Loaded: 2, Pending: pending, NextSignsIn: 90 * time.Second, LastReload: time.Unix(1_700_000_000, 0)}
	})
	ts := httptest.NewServer(m.Handler())
	defer ts.Close()
	got := metricstest.Scrape(t, http.DefaultClient, ts.URL)
	for _, want := range []struct{ name, label, value string }{
		{"authapi_logins_total", "outcome", "busy"},
		{"authapi_token_refreshes_total", "outcome", "reuse_detected"},
		{"authapi_session_revocations_total", "cause", "deactivation"},
		{"authapi_tokens_verified_total", "outcome", "rejected"},
	} {
		if v, ok := got.Get(want.name, want.label, want.value); !ok || v != 0 {
			t.Errorf("%s{%s=%q} = %v (present %v), want 0", want.name, want.label, want.value, v, ok)
		}
	}
	if v := got.Value("authapi_signing_key_next_signs_in_seconds"); !math.IsInf(v, 1) {
		t.Errorf("next key signs in %v with none pending, want +Inf", v)
	}
	if v := got.Value("authapi_signing_keys_last_reload_timestamp_seconds"); v != 1_700_000_000 {
		t.Errorf("last reload %v, want 1700000000", v)
	}
	pending = true
	got = metricstest.Scrape(t, http.DefaultClient, ts.URL)
	if v := got.Value("authapi_signing_key_next_signs_in_seconds"); v != 90 {
		t.Errorf("next key signs in %v, want 90", v)
	}
}

// BenchmarkRequest is what metrics add to a request: its count and duration, and a token check.
func BenchmarkRequest(b *testing.B) {
	m := metrics.New()
	for b.Loop() {
		m.Request(http.MethodGet, "/api/v1/account/", 200, 3*time.Millisecond)
		m.Verified(metrics.VerifyCacheHit)
	}
}

package throttle_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/throttle"
)

func TestRateIsBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	const max, burst = 1000, 3
	r := throttle.NewRate(1.0/60, burst, max, func() time.Time { return now })
	allow := func(key string) bool {
		ok, err := r.Allow(key)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for i := range burst {
		if !allow("victim") {
			t.Fatalf("event %d of the burst refused", i+1)
		}
	}
	if allow("victim") {
		t.Fatal("past the burst: allowed")
	}
	// A flood of distinct keys, fewer than the bound, leaves the victim's count alone, and
	// the victim's requests keep it among the recently used.
	for i := range 10 * max {
		if !allow("flood-" + strconv.Itoa(i)) {
			t.Fatalf("first event of a new key refused")
		}
		if i%(max/2) == 0 && allow("victim") {
			t.Fatalf("victim allowed during the flood (after %d keys)", i)
		}
	}
	if got := r.Len(); got != max {
		t.Errorf("%d keys tracked after a flood of %d, want the bound %d", got, 10*max, max)
	}
	// The limit still applies to a key the flood made new.
	for range burst {
		allow("late")
	}
	if allow("late") {
		t.Error("past the burst after the flood: allowed")
	}
	// Time refills the bucket: one event a minute.
	now = now.Add(time.Minute)
	if !allow("late") || allow("late") {
		t.Error("after a minute: want exactly one more event")
	}
}

func TestRateDefaultBound(t *testing.T) {
	r := throttle.NewRate(1, 1, 0, time.Now)
	for i := range throttle.MaxRateKeys + 10 {
		r.Allow(strconv.Itoa(i))
	}
	if got := r.Len(); got != throttle.MaxRateKeys {
		t.Errorf("%d keys, want MaxRateKeys = %d", got, throttle.MaxRateKeys)
	}
}

package throttle

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Failures limits failed attempts per key (a client id, an IP) in a fixed window, in this
// process's memory, for at most a fixed number of keys. A failure is counted after the
// check, atomically, and only the first limit failures of a window are answered as failures:
// parallel guesses cannot slip past the count, and parallel successes, which count nothing,
// are never refused for being in flight together. It suits credentials whose check is cheap
// and that cannot be guessed (API client secrets, 256 bits): it bounds the noise and the work
// of a flood, not a search, so that counting per instance (N instances allow N times the
// limit) is enough and no database write is spent on it.
type Failures struct {
	limit  int
	window time.Duration
	now    func() time.Time

	mu   sync.Mutex
	keys *simplelru.LRU[string, *failureWindow]
}

type failureWindow struct {
	start time.Time
	count int
}

// NewFailures returns a limit of limit failures per key within window, for at most maxKeys
// keys (MaxRateKeys if not positive), reading the time from now.
func NewFailures(limit int, window time.Duration, maxKeys int, now func() time.Time) *Failures {
	if maxKeys <= 0 {
		maxKeys = MaxRateKeys
	}
	keys, err := simplelru.NewLRU[string, *failureWindow](maxKeys, nil)
	if err != nil {
		panic(err)
	}
	return &Failures{limit: limit, window: window, now: now, keys: keys}
}

// Blocked returns how long until the window of a key that has reached the limit ends
// (positive), or 0 when none has: an attempt then goes on to be checked.
func (f *Failures) Blocked(keys ...string) time.Duration {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		if w := f.current(k, now); w.count >= f.limit {
			wait = max(wait, w.start.Add(f.window).Sub(now), time.Nanosecond)
		}
	}
	return wait
}

// Failed counts a failed attempt against every key. It returns 0 when the failure is within
// every key's limit (answer it as a failure), or how long until the window of a key it
// overflowed ends (answer it as throttled).
func (f *Failures) Failed(keys ...string) time.Duration {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	var wait time.Duration
	for _, k := range keys {
		w := f.current(k, now)
		w.count++
		if w.count > f.limit {
			wait = max(wait, w.start.Add(f.window).Sub(now), time.Nanosecond)
		}
	}
	return wait
}

// current is key's current window, a new one when it has none or its last has ended.
func (f *Failures) current(key string, now time.Time) *failureWindow {
	w, ok := f.keys.Get(key)
	if !ok || now.Sub(w.start) >= f.window {
		w = &failureWindow{start: now}
		f.keys.Add(key, w)
	}
	return w
}

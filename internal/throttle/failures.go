package throttle

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Failures limits failed attempts per key (a client id, an IP) in a fixed window, in this
// process's memory, for at most a fixed number of keys. An attempt is reserved as a failure
// before it is checked, so that parallel guesses cannot all slip past the count; a success
// withdraws it. It suits credentials that cannot be guessed (API client secrets, 256 bits):
// it bounds the noise and the work of a flood, not a search, so that counting per instance
// (N instances allow N times the limit) is enough and no database write is spent on it.
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

// Reserve counts one failure against every key unless one of them has reached the limit;
// then it counts nothing and returns how long until that key's window ends (positive). A
// reservation is withdrawn with Succeeded(keys...).
func (f *Failures) Reserve(keys ...string) time.Duration {
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	var wait time.Duration
	windows := make([]*failureWindow, len(keys))
	for i, k := range keys {
		w, ok := f.keys.Get(k)
		if !ok || now.Sub(w.start) >= f.window {
			w = &failureWindow{start: now}
			f.keys.Add(k, w)
		}
		windows[i] = w
		if w.count >= f.limit {
			wait = max(wait, w.start.Add(f.window).Sub(now), time.Nanosecond)
		}
	}
	if wait > 0 {
		return wait
	}
	for _, w := range windows {
		w.count++
	}
	return 0
}

// Succeeded withdraws a reservation of keys.
func (f *Failures) Succeeded(keys ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, k := range keys {
		if w, ok := f.keys.Peek(k); ok && w.count > 0 {
			w.count--
		}
	}
}

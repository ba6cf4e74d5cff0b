package throttle

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
	"golang.org/x/time/rate"
)

// MaxRateKeys is how many keys (client IPs) a Rate tracks by default. Past it, the key
// unused for longest is forgotten, and starts again with a full burst if it comes back. One
// key costs a few hundred bytes, so the store stays within a few tens of MiB however many
// addresses a flood comes from.
const MaxRateKeys = 100_000

// Rate is a token-bucket limit per key (rate per second, burst), in memory, for at most a
// fixed number of keys. Its Allow method makes it an echo middleware.RateLimiterStore.
type Rate struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu   sync.Mutex
	keys *simplelru.LRU[string, *rate.Limiter]
}

// NewRate returns a limit of limit events per second with bursts of burst, per key, for at
// most maxKeys keys (MaxRateKeys if maxKeys is not positive), reading the time from now.
func NewRate(limit rate.Limit, burst, maxKeys int, now func() time.Time) *Rate {
	if maxKeys <= 0 {
		maxKeys = MaxRateKeys
	}
	keys, err := simplelru.NewLRU[string, *rate.Limiter](maxKeys, nil)
	if err != nil { // only for a size that is not positive
		panic(err)
	}
	return &Rate{limit: limit, burst: burst, now: now, keys: keys}
}

// Allow reports whether one more event for key is within the limit, and counts it if so.
// It never fails; the error is for echo's RateLimiterStore.
func (r *Rate) Allow(key string) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	l, ok := r.keys.Get(key)
	if !ok {
		l = rate.NewLimiter(r.limit, r.burst)
		r.keys.Add(key, l)
	}
	return l.AllowN(r.now(), 1), nil
}

// Len is how many keys are tracked.
func (r *Rate) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.keys.Len()
}

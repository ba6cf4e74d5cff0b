package password

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/semaphore"
)

// However many callers arrive together, no more than the limit hash at once.
func TestLimitHolds(t *testing.T) {
	const limit, callers = 3, 24
	h := NewHasher(FastParams(), Limit{Slots: semaphore.NewWeighted(limit), Wait: time.Hour})
	enc := mustHash(t, h, "pw")
	var active, most atomic.Int64
	gate := make(chan struct{}) // holds everyone who got a slot until the test has looked
	h.onSlot = func(held bool) {
		if !held {
			active.Add(-1)
			return
		}
		n := active.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		<-gate
	}
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			var err error
			switch i % 3 {
			case 0:
				_, err = h.Hash(t.Context(), "pw")
			case 1:
				_, err = h.Verify(t.Context(), "pw", enc)
			case 2:
				err = h.VerifyDummy(t.Context(), "pw")
			}
			if err != nil {
				t.Errorf("call %d: %v", i, err)
			}
		})
	}
	// Once the limit is reached, give the other callers time to get in wrongly: the pause
	// only makes a broken limit easier to see, and a correct one passes however long it is.
	for active.Load() < limit {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(gate)
	wg.Wait()
	if got := most.Load(); got > limit {
		t.Errorf("%d hashes ran at once, want at most %d", got, limit)
	}
	if got := most.Load(); got < limit {
		t.Errorf("at most %d hashes ran at once, want the test to reach the limit %d", got, limit)
	}
}

// With every slot taken, a caller waits at most the Hasher's wait and gets ErrBusy, having
// hashed nothing; once the slot is free the same calls work.
func TestLimitBusy(t *testing.T) {
	slots := semaphore.NewWeighted(1)
	h := NewHasher(FastParams(), Limit{Slots: slots, Wait: 10 * time.Millisecond})
	if h.Wait() != 10*time.Millisecond {
		t.Errorf("Wait() = %v, want 10ms", h.Wait())
	}
	var hashed atomic.Int64
	h.onSlot = func(held bool) {
		if held {
			hashed.Add(1)
		}
	}
	enc := mustHash(t, h, "pw")
	if err := slots.Acquire(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	before := hashed.Load()
	if got, err := h.Hash(t.Context(), "pw"); !errors.Is(err, ErrBusy) || got != "" {
		t.Errorf("Hash while busy = %q, %v; want \"\", ErrBusy", got, err)
	}
	if ok, err := h.Verify(t.Context(), "pw", enc); !errors.Is(err, ErrBusy) || ok {
		t.Errorf("Verify while busy = %v, %v; want false, ErrBusy", ok, err)
	}
	if err := h.VerifyDummy(t.Context(), "pw"); !errors.Is(err, ErrBusy) {
		t.Errorf("VerifyDummy while busy = %v; want ErrBusy", err)
	}
	if n := hashed.Load() - before; n != 0 {
		t.Errorf("%d calls got a slot while it was held", n)
	}
	slots.Release(1)
	if ok, err := h.Verify(t.Context(), "pw", enc); !ok || err != nil {
		t.Errorf("Verify once free = %v, %v; want true, nil", ok, err)
	}
	if err := h.VerifyDummy(t.Context(), "pw"); err != nil {
		t.Errorf("VerifyDummy once free = %v; want nil", err)
	}
	// Every call gave its slot back, refused or not.
	if !slots.TryAcquire(1) {
		t.Error("slot still held after every call returned")
	}
}

// A caller whose context ends stops waiting at once, long before its wait is up, and takes no
// slot.
func TestLimitContextCancel(t *testing.T) {
	slots := semaphore.NewWeighted(1)
	h := NewHasher(FastParams(), Limit{Slots: slots, Wait: 10 * time.Minute})
	if err := slots.Acquire(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := h.Hash(ctx, "pw")
		done <- err
	}()
	// Most likely the caller is queued by now; if not, it must refuse at once all the same.
	time.Sleep(10 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, ErrBusy) || !errors.Is(err, context.Canceled) {
			t.Errorf("Hash after cancel = %v; want ErrBusy wrapping context.Canceled", err)
		}
	case <-time.After(time.Minute): // "eventually", and well before the 10-minute wait
		t.Fatal("Hash still waiting a minute after its context was cancelled")
	}
	slots.Release(1)
	if !slots.TryAcquire(1) {
		t.Fatal("the cancelled caller kept a slot")
	}
	slots.Release(1)
	if _, err := h.Hash(t.Context(), "pw"); err != nil {
		t.Errorf("Hash once free: %v", err)
	}
}

func TestDefaultLimit(t *testing.T) {
	h := NewHasher(FastParams(), Limit{})
	if h.Wait() != DefaultWait {
		t.Errorf("Wait() = %v, want DefaultWait %v", h.Wait(), DefaultWait)
	}
	n := int64(DefaultConcurrency())
	if !h.slots.TryAcquire(n) || h.slots.TryAcquire(1) {
		t.Errorf("default slots are not DefaultConcurrency() = %d", n)
	}
}

// ObserveWait hears of every call that asked for a slot: 0 for a slot free at once, the time
// waited for one that came free later, and at least the whole wait for one that gave up.
func TestLimitObserveWait(t *testing.T) {
	slots := semaphore.NewWeighted(1)
	var mu sync.Mutex
	var waits []time.Duration
	const wait = 20 * time.Millisecond
	h := NewHasher(FastParams(), Limit{Slots: slots, Wait: wait, ObserveWait: func(d time.Duration) {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, d)
	}})
	observed := func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(waits)
	}
	enc := mustHash(t, h, "pw")
	if got := observed(); len(got) != 1 || got[0] != 0 {
		t.Fatalf("waits after a hash with a free slot = %v, want [0]", got)
	}
	if err := slots.Acquire(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Verify(t.Context(), "pw", enc); !errors.Is(err, ErrBusy) {
		t.Fatalf("Verify while busy = %v, want ErrBusy", err)
	}
	if got := observed(); len(got) != 2 || got[1] < wait {
		t.Fatalf("waits after a busy verify = %v, want a second one of at least %v", got, wait)
	}
	// A canceled context asks for no slot, so there is no wait to observe.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := h.Hash(ctx, "pw"); !errors.Is(err, ErrBusy) {
		t.Fatalf("Hash with a canceled context = %v, want ErrBusy", err)
	}
	if got := observed(); len(got) != 2 {
		t.Fatalf("waits after a canceled hash = %v, want still 2", got)
	}
}

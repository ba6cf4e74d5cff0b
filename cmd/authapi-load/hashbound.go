package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authapi/authapi/internal/password"
)

// hashAloneSystem names the runs of the password hash alone, next to the login scenario's.
const hashAloneSystem = "hash-alone"

// hashAloneRate is how many password checks a second this machine does with nothing else
// of authapi running: as many goroutines as the server's default hashing slots verifying the
// seeded password at the default (real) argon2id costs for d. It is the ceiling of the login
// scenario (cores ÷ hash time), measured rather than computed so that memory bandwidth shared
// by the cores counts too, and with the server's concurrency so that a machine shared with
// other processes gives both the same share.
func hashAloneRate(ctx context.Context, d time.Duration) (float64, error) {
	h := password.NewHasher(password.DefaultParams(), password.Limit{})
	encoded, err := h.Hash(ctx, loadPassword)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		done     atomic.Int64
		firstErr error
		once     sync.Once
		wg       sync.WaitGroup
	)
	start := time.Now()
	for range password.DefaultConcurrency() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				if _, err := h.Verify(context.WithoutCancel(ctx), loadPassword, encoded); err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(done.Load()) / time.Since(start).Seconds(), firstErr
}

package main

import (
	"context"
	"io"
	"sync"
	"time"
)

// logWriter is serve's log output. Request lines (one per request) are gathered and written
// together every interval or once logBatchBytes have gathered, instead of a write(2) each:
// under load that write was a tenth of an authenticated GET's CPU. Every other record is
// written at once, after the request lines gathered before it, so the output keeps its order.
// Flush writes what has gathered; serve flushes when it stops.
type logWriter struct {
	mu  sync.Mutex
	out io.Writer
	buf []byte
}

// requestLogFlush is how long a request line may wait to be written.
const requestLogFlush = 100 * time.Millisecond

// logBatchBytes is how much a batch of request lines holds before it is written out.
const logBatchBytes = 32 << 10

func newLogWriter(out io.Writer) *logWriter { return &logWriter{out: out} }

// Write writes p at once, after the request lines gathered before it.
func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.flushLocked(); err != nil {
		return 0, err
	}
	return w.out.Write(p)
}

// batched is w for request lines: they gather until the next flush.
func (w *logWriter) batched() io.Writer { return batchedWriter{w} }

type batchedWriter struct{ w *logWriter }

func (b batchedWriter) Write(p []byte) (int, error) {
	w := b.w
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	if len(w.buf) >= logBatchBytes {
		if err := w.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush writes what has gathered.
func (w *logWriter) Flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushLocked()
}

func (w *logWriter) flushLocked() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.out.Write(w.buf)
	w.buf = w.buf[:0]
	if cap(w.buf) > 4*logBatchBytes {
		w.buf = nil // a burst's buffer is not kept
	}
	return err
}

// run flushes every interval until ctx is done, then once more.
func (w *logWriter) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			w.Flush()
			return
		case <-t.C:
			w.Flush()
		}
	}
}

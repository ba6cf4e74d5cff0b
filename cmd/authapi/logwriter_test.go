package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestLogWriterOrder: request lines wait for a flush, and any other record first writes the
// request lines before it, so the output keeps the order records were made in.
func TestLogWriterOrder(t *testing.T) {
	var out bytes.Buffer
	w := newLogWriter(&out)
	req := w.batched()
	req.Write([]byte("request 1\n"))
	req.Write([]byte("request 2\n"))
	if out.Len() != 0 {
		t.Fatalf("request lines written before a flush: %q", out.String())
	}
	w.Write([]byte("warning\n"))
	req.Write([]byte("request 3\n"))
	if got, want := out.String(), "request 1\nrequest 2\nwarning\n"; got != want {
		t.Fatalf("output %q, want %q", got, want)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "request 1\nrequest 2\nwarning\nrequest 3\n"; got != want {
		t.Fatalf("after Flush: %q, want %q", got, want)
	}
}

// TestLogWriterBatchBound: request lines are written once logBatchBytes have gathered, without
// waiting for the next tick.
func TestLogWriterBatchBound(t *testing.T) {
	var out bytes.Buffer
	w := newLogWriter(&out)
	line := strings.Repeat("x", 99) + "\n"
	for range logBatchBytes / len(line) {
		w.batched().Write([]byte(line))
	}
	if out.Len() != 0 {
		t.Fatalf("%d bytes written before the batch was full", out.Len())
	}
	w.batched().Write([]byte(line))
	if out.Len() < logBatchBytes {
		t.Fatalf("%d bytes written once the batch was full, want it all", out.Len())
	}
}

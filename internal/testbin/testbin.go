// Package testbin helps the tests that run authapi as a child process, as an operator does:
// it builds the binary, finds a free port for it, and collects what it writes.
package testbin

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Build builds cmd/authapi into a temporary directory of t and returns the binary's path. The
// binary has no race detector even under `go test -race`, whose shadow memory would swamp a
// test's memory figures.
func Build(t testing.TB) string {
	t.Helper()
	goBin, err := exec.LookPath("go") // go test puts its own GOROOT/bin first in PATH
	if err != nil {
		t.Fatalf("no go command to build the binary with: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "authapi")
	build := exec.Command(goBin, "build", "-o", bin, "github.com/authapi/authapi/cmd/authapi")
	build.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// given are the addresses FreeAddr returned in this test binary.
var given = struct {
	sync.Mutex
	addrs map[string]bool
}{addrs: map[string]bool{}}

// FreeAddr returns a loopback address with a port that was free a moment ago, and that no
// earlier call in this test binary returned: a port freed here may be handed out again at
// once, and two listeners of one test (serve's API and metrics), or of parallel tests, would
// then race for it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	given.Lock()
	defer given.Unlock()
	for {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("listen: %v", err)
		}
		addr := ln.Addr().String()
		if err := ln.Close(); err != nil {
			t.Fatalf("close listener: %v", err)
		}
		if !given.addrs[addr] {
			given.addrs[addr] = true
			return addr
		}
	}
}

// Buffer is a bytes.Buffer that a child process or a server's goroutines may write while the
// test reads it.
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

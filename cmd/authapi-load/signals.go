package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/authapi/authapi/verifier"
)

// signalReceivers is how many Shared Signals receivers follow a "+ssf" system: the issue's
// bar is that ten of them cost logins and refreshes nothing measurable.
const signalReceivers = 10

// apiClient is the API client the benchmark registers in each database, with every scope the
// introspect and verifier scenarios and the receivers need.
type apiClient struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

// basic is the client's client_secret_basic Authorization header (RFC 6749 2.3.1).
func (c apiClient) basic() string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(c.ID+":"+c.Secret))
}

// createClient registers the benchmark's API client in dsn through the CLI an operator uses.
func createClient(ctx context.Context, bin, dsn string) (apiClient, error) {
	cmd := exec.CommandContext(ctx, bin, "clients", "create", "--db", dsn, "--name", "authapi-load",
		"--scopes", "introspect,ssf.read,ssf.manage", "--json")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return apiClient{}, fmt.Errorf("authapi clients create: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	var c apiClient
	if err := json.Unmarshal(out, &c); err != nil || c.ID == "" || c.Secret == "" {
		return apiClient{}, fmt.Errorf("authapi clients create printed %q: %v", out, err)
	}
	return c, nil
}

// startVerifier starts the reference handler behind the verifier package, following the
// system's main server, and waits until its revocation stream is live.
func (b *bench) startVerifier(ctx context.Context, s *system, name, addr string) (*process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	issuer := s.servers[roleMain].base
	env := []string{clientSecretEnv + "=" + s.client.Secret}
	p, err := startProcess(ctx, name, addr, filepath.Join(b.dir, name+".log"), "/readyz", env,
		self, "bare", "-addr", addr, "-verify-issuer", issuer, "-client-id", s.client.ID)
	if err != nil {
		return nil, err
	}
	b.procs = append(b.procs, p)
	return p, nil
}

// startReceivers makes n verifiers follow the issuer's revocation stream from this process,
// each with a stream of its own, and returns once every stream is live.
func startReceivers(ctx context.Context, issuer string, c apiClient, n int) (stop func(), err error) {
	var vs []*verifier.Verifier
	stop = func() {
		for _, v := range vs {
			v.Close()
		}
	}
	for i := range n {
		v, err := verifier.New(ctx, verifier.Config{
			Issuer: issuer, Audience: []string{issuer}, ClientID: c.ID, ClientSecret: c.Secret,
			StreamName: fmt.Sprintf("authapi-load receiver %d", i),
		})
		if err != nil {
			stop()
			return nil, fmt.Errorf("receiver %d: %w", i, err)
		}
		vs = append(vs, v)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, v := range vs {
		for v.Health().Stale {
			if time.Now().After(deadline) {
				stop()
				return nil, fmt.Errorf("a receiver's stream is not live after 30s: %v", v.Health().LastError)
			}
			select {
			case <-ctx.Done():
				stop()
				return nil, ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return stop, nil
}

package verifier

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authapi/authapi/internal/token"
)

// metadata is what the verifier reads of RFC 8414 authorization server metadata.
type metadata struct {
	Issuer                string `json:"issuer"`
	JWKSURI               string `json:"jwks_uri"`
	TokenEndpoint         string `json:"token_endpoint"`
	IntrospectionEndpoint string `json:"introspection_endpoint"`
}

// maxBody bounds what the verifier reads of any answer.
const maxBody = 4 << 20

func getJSON(ctx context.Context, client *http.Client, url string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	if err := json.Unmarshal(body, into); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// minRefreshInterval is how often at most an unknown kid makes the verifier fetch the JWKS,
// so that tokens with made-up kids cannot make it hammer the issuer.
const minRefreshInterval = time.Second

// keyCache is the issuer's JWKS, fetched again when a token names a kid it lacks.
type keyCache struct {
	url    string
	client *http.Client
	now    func() time.Time

	current atomic.Pointer[token.KeySet]
	mu      sync.Mutex // serialises fetches, guards fetched
	fetched time.Time  // when the last fetch began
}

func (k *keyCache) set() *token.KeySet { return k.current.Load() }

// refresh fetches the JWKS now, whatever the rate limit.
func (k *keyCache) refresh(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.fetch(ctx)
}

// fetch fetches the JWKS; k.mu is held.
func (k *keyCache) fetch(ctx context.Context) error {
	k.fetched = k.now()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return fmt.Errorf("JWKS: %w", err)
	}
	resp, err := k.client.Do(req)
	if err != nil {
		return fmt.Errorf("JWKS: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("JWKS: GET %s: status %d, %v", k.url, resp.StatusCode, err)
	}
	set, err := token.NewKeySet(body)
	if err != nil {
		return fmt.Errorf("JWKS: %w", err)
	}
	k.current.Store(set)
	return nil
}

// refreshUnknown fetches the JWKS again for a token whose kid the current set lacks, unless
// the last fetch began less than minRefreshInterval ago. It reports whether the set may have
// changed since the caller looked (so that a retry is worth it).
func (k *keyCache) refreshUnknown(ctx context.Context) bool {
	before := k.set()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.set() != before { // another request fetched meanwhile
		return true
	}
	if k.now().Sub(k.fetched) < minRefreshInterval {
		return false
	}
	return k.fetch(ctx) == nil
}

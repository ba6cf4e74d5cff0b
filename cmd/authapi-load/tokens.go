package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
	"golang.org/x/sync/errgroup"
)

// mintTokens makes n sessions in the database at dsn, spread over the seeded users, and an
// access token for each signed with the database's signing keys as the servers' issuer signs
// them (the claims of a password login), and writes the tokens to path, one a line. A login
// each would take n argon2id hashes: half an hour for 100,000.
func mintTokens(ctx context.Context, dsn, issuer string, n, users int, path string) error {
	st, err := store.Open(dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	stored, err := st.SigningKeys(ctx)
	if err != nil {
		return err
	}
	var keys []token.Key
	for _, k := range stored {
		keys = append(keys, token.Key{ID: k.ID, Algorithm: k.Algorithm, Private: k.Private, CreatedAt: k.CreatedAt})
	}
	if len(keys) == 0 {
		return errors.New("no signing key in the database")
	}
	m, err := token.NewManager(token.Config{Issuer: issuer}, keys)
	if err != nil {
		return fmt.Errorf("signing keys (sealed? the benchmark runs without AUTHAPI_SECRET_KEY): %w", err)
	}
	now := time.Now().UTC()
	toks := make([]string, n)
	const workers = 4
	var g errgroup.Group
	for w := range workers {
		g.Go(func() error {
			for i := w; i < n; i += workers {
				user := int64(1 + i%users)
				sess := store.Session{UserID: user, CreatedAt: now, ExpiresAt: now.Add(2 * time.Hour),
					UserAgent: "authapi-load", IP: "127.0.0.1", AMR: []string{"pwd"}}
				if err := st.CreateSession(ctx, &sess); err != nil {
					return fmt.Errorf("session %d: %w", i, err)
				}
				raw, err := m.Sign(token.Claims{Type: token.Access, UserID: user, SessionID: sess.ID, ID: rand.Text(),
					IssuedAt: now, ExpiresAt: now.Add(time.Hour), AuthTime: now, AMR: []string{"pwd"}, ACR: "aal1"})
				if err != nil {
					return err
				}
				toks[i] = raw
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(strings.Join(toks, "\n")+"\n"), 0o600)
}

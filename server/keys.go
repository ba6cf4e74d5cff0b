package server

import (
	"context"
	"fmt"
	"time"

	"authapi/store"
	"authapi/token"
)

// SigningKeys loads the signing keys from the database, creating the first key for alg on an
// empty database, so that every instance sharing the database signs and verifies alike.
func SigningKeys(ctx context.Context, st *store.Store, alg string, now time.Time) ([]token.Key, error) {
	stored, err := st.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	if len(stored) == 0 {
		k, err := token.GenerateKey(alg, now.UTC())
		if err != nil {
			return nil, fmt.Errorf("generate signing key: %w", err)
		}
		if err := st.CreateSigningKey(ctx, store.SigningKey{ID: k.ID, Algorithm: k.Algorithm, Private: k.Private, CreatedAt: k.CreatedAt}); err != nil {
			return nil, fmt.Errorf("save signing key: %w", err)
		}
		// Read back: another instance may have created a key at the same moment.
		if stored, err = st.SigningKeys(ctx); err != nil {
			return nil, fmt.Errorf("load signing keys: %w", err)
		}
	}
	keys := make([]token.Key, 0, len(stored))
	for _, k := range stored {
		keys = append(keys, token.Key{ID: k.ID, Algorithm: k.Algorithm, Private: k.Private, CreatedAt: k.CreatedAt})
	}
	return keys, nil
}

package keyring

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
)

// The SET key signs Security Event Tokens for Shared Signals receivers. It is an RSA 2048 key
// (RS256 is the CAEP interoperability profile's algorithm, whatever the tokens use), stored
// with its own purpose: store.SigningKeys never returns it, so the Manager never holds it and
// nothing it signs verifies as a token. It is created on first need (the first stream), is
// published beside the token keys in the JWKS, encrypted at rest like them, and not rotated
// by Rotate.

// SETSigner returns the signer of SETs, creating its key if there is none yet. The store
// keeps one SET key: of instances creating it at once, one stores it and all use it.
func (r *Ring) SETSigner(ctx context.Context) (*token.SETSigner, error) {
	if s := r.set.Load(); s != nil {
		return s, nil
	}
	s, err := r.loadSET(ctx)
	if !errors.Is(err, store.ErrNotFound) {
		return s, err
	}
	k, err := token.GenerateKey(token.RS256, r.opts.Now().UTC().Truncate(time.Microsecond))
	if err != nil {
		return nil, fmt.Errorf("generate SET signing key: %w", err)
	}
	sealed := k
	if len(r.opts.Secret) > 0 {
		if sealed, err = token.SealKey(r.opts.Secret, k); err != nil {
			return nil, err
		}
	}
	err = r.st.CreateSETSigningKey(ctx, storeKey(sealed))
	if err != nil && !errors.Is(err, store.ErrConflict) { // conflict: another instance's won
		return nil, fmt.Errorf("save SET signing key: %w", err)
	}
	return r.loadSET(ctx)
}

// loadSET loads the stored SET key, if any, into the ring; it returns store.ErrNotFound if
// there is none.
func (r *Ring) loadSET(ctx context.Context) (*token.SETSigner, error) {
	sk, err := r.st.SETSigningKey(ctx)
	if err != nil {
		return nil, err
	}
	if cur := r.set.Load(); cur != nil && cur.KeyID() == sk.ID {
		return cur, nil
	}
	k, err := token.OpenKey(r.opts.Secret, tokenKey(sk))
	if err != nil {
		return nil, fmt.Errorf("load SET signing key: %w", err)
	}
	s, err := token.NewSETSigner(k)
	if err != nil {
		return nil, err
	}
	r.set.Store(s)
	return s, nil
}

// JWKS is the public JWK set of the token keys the Manager holds and, once it exists, of the
// SET key: what GET /.well-known/jwks.json serves. Until this ring holds the SET key it looks
// for it in the store (one indexed read per call): another instance may have created it and be
// signing SETs with it, and a receiver that fetches this JWKS after such a SET must find its
// kid here. Once found it is kept: the SET key is never rotated. A failed read is logged and
// the token keys served alone.
func (r *Ring) JWKS(ctx context.Context) ([]byte, error) {
	jwks, err := r.manager.JWKS()
	if err != nil {
		return nil, err
	}
	s := r.set.Load()
	if s == nil {
		if s, err = r.loadSET(ctx); err != nil && !errors.Is(err, store.ErrNotFound) {
			r.opts.Logger.Warn("load the SET key for the JWKS", "err", err)
		}
	}
	if s != nil {
		return s.AddToJWKS(jwks)
	}
	return jwks, nil
}

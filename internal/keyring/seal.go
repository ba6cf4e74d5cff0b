package keyring

import (
	"context"
	"errors"
	"fmt"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
	"github.com/authapi/authapi/internal/totp"
)

// NeitherSecretError is Reencrypt's error for a key that opens with neither secret.
type NeitherSecretError struct{ ID string }

func (e *NeitherSecretError) Error() string {
	return fmt.Sprintf("signing key %s opens with neither the old secret nor the new one", e.ID)
}

// Encrypt seals every stored private key that is still plaintext with secret, and returns
// the IDs of the keys it sealed. A key sealed already must open with secret (servers given
// it could not read it otherwise): if one does not, Encrypt fails with token's error and
// changes no key.
func Encrypt(ctx context.Context, st *store.Store, secret []byte) ([]string, error) {
	return st.ChangeSigningKeyPrivates(ctx, func(sk store.SigningKey) ([]byte, bool, error) {
		k := tokenKey(sk)
		if token.Sealed(k) {
			if _, err := token.OpenKey(secret, k); err != nil {
				return nil, false, err
			}
			return nil, false, nil
		}
		sealed, err := token.SealKey(secret, k)
		return sealed.Private, err == nil, err
	})
}

// Reencrypt seals every stored private key sealed with old with secret instead, and returns
// the IDs of the keys it changed. Keys already under secret (as after an earlier run) are left
// as they are; a key that opens with neither is a *NeitherSecretError, and then no key
// changes.
func Reencrypt(ctx context.Context, st *store.Store, old, secret []byte) ([]string, error) {
	return st.ChangeSigningKeyPrivates(ctx, func(sk store.SigningKey) ([]byte, bool, error) {
		k, err := token.OpenKey(old, tokenKey(sk))
		if errors.Is(err, token.ErrWrongSecret) {
			if _, err := token.OpenKey(secret, tokenKey(sk)); err == nil {
				return nil, false, nil
			}
			return nil, false, &NeitherSecretError{ID: sk.ID}
		}
		if err != nil {
			return nil, false, err
		}
		sealed, err := token.SealKey(secret, k)
		return sealed.Private, err == nil, err
	})
}

// Unencrypted returns the IDs of the stored keys whose private part is plaintext.
func Unencrypted(ctx context.Context, st *store.Store, opts Options) ([]string, error) {
	infos, err := List(ctx, st, opts)
	if err != nil {
		return nil, err
	}
	var plain []string
	for _, info := range infos {
		if !info.Encrypted {
			plain = append(plain, info.ID)
		}
	}
	return plain, nil
}

// EncryptTOTP seals every TOTP secret still stored plaintext with secret, as Encrypt does the
// signing keys, and returns how many it sealed. A sealed one must open with secret.
func EncryptTOTP(ctx context.Context, st *store.Store, secret []byte) (int, error) {
	return st.ChangeTOTPSecrets(ctx, func(userID int64, stored []byte) ([]byte, bool, error) {
		if token.SealedBytes(stored) {
			_, err := token.OpenBytes(secret, stored, totp.Label(userID))
			return nil, false, err
		}
		sealed, err := token.SealBytes(secret, stored, totp.Label(userID))
		return sealed, err == nil, err
	})
}

// ReencryptTOTP seals every TOTP secret sealed with old with secret instead, as Reencrypt
// does the signing keys; one under secret already stays, one that opens with neither fails
// and changes none. Plaintext ones stay plaintext (EncryptTOTP seals them).
func ReencryptTOTP(ctx context.Context, st *store.Store, old, secret []byte) (int, error) {
	return st.ChangeTOTPSecrets(ctx, func(userID int64, stored []byte) ([]byte, bool, error) {
		if !token.SealedBytes(stored) {
			return nil, false, nil
		}
		plain, err := token.OpenBytes(old, stored, totp.Label(userID))
		if errors.Is(err, token.ErrWrongSecret) {
			if _, err := token.OpenBytes(secret, stored, totp.Label(userID)); err == nil {
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("the TOTP secret of user %d opens with neither the old secret nor the new one", userID)
		}
		if err != nil {
			return nil, false, err
		}
		sealed, err := token.SealBytes(secret, plain, totp.Label(userID))
		return sealed, err == nil, err
	})
}

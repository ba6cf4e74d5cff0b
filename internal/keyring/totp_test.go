package keyring_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/authapi/authapi/internal/keyring"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/token"
	"github.com/authapi/authapi/internal/totp"
)

// TestEncryptAndReencryptTOTP: keys encrypt seals plaintext TOTP secrets, keys reencrypt moves
// them to the new secret, and each still opens to the same secret for its own user only.
func TestEncryptAndReencryptTOTP(t *testing.T) {
	ctx := context.Background()
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			st := storetest.Open(t, backend)
			u := store.User{Username: "alice", PasswordHash: "x", IsActive: true}
			if err := st.CreateUser(ctx, &u); err != nil {
				t.Fatal(err)
			}
			if _, err := st.CreateTOTPFactor(ctx, u.ID, []byte("JBSWY3DPEHPK3PXP")); err != nil {
				t.Fatal(err)
			}
			old, next := bytes.Repeat([]byte("o"), 32), bytes.Repeat([]byte("n"), 32)
			opens := func(secret []byte) bool {
				f, err := st.TOTPFactorOf(ctx, u.ID)
				if err != nil {
					t.Fatal(err)
				}
				plain, err := token.OpenBytes(secret, f.Secret, totp.Label(u.ID))
				return err == nil && token.SealedBytes(f.Secret) && string(plain) == "JBSWY3DPEHPK3PXP"
			}
			if n, err := keyring.EncryptTOTP(ctx, st, old); err != nil || n != 1 || !opens(old) {
				t.Fatalf("encrypt: %d, %v", n, err)
			}
			if n, err := keyring.EncryptTOTP(ctx, st, old); err != nil || n != 0 {
				t.Fatalf("encrypt again: %d, %v", n, err)
			}
			if _, err := keyring.EncryptTOTP(ctx, st, next); err == nil {
				t.Fatal("encrypt with another secret over sealed secrets succeeded")
			}
			if n, err := keyring.ReencryptTOTP(ctx, st, old, next); err != nil || n != 1 || !opens(next) || opens(old) {
				t.Fatalf("reencrypt: %d, %v", n, err)
			}
			if n, err := keyring.ReencryptTOTP(ctx, st, old, next); err != nil || n != 0 {
				t.Fatalf("reencrypt again: %d, %v", n, err)
			}
		})
	}
}

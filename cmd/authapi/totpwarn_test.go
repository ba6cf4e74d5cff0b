package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/authapi/authapi/internal/keyring"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/token"
	"github.com/authapi/authapi/internal/totp"
)

// TestWarnPlaintextTOTP: a TOTP secret stored unsealed is warned about at start, as a
// plaintext signing key is; sealed ones are not.
func TestWarnPlaintextTOTP(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t, "sqlite")
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	u := store.User{Username: "alice", PasswordHash: "x", IsActive: true}
	if err := st.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateTOTPFactor(ctx, u.ID, []byte("enc:v1:sealed")); err != nil {
		t.Fatal(err)
	}
	if err := warnPlaintextTOTP(ctx, log, st, keyring.Options{}); err != nil || buf.Len() != 0 {
		t.Fatalf("sealed secret: %v, logged %q", err, buf.String())
	}
	if err := st.DeleteTOTPFactor(ctx, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateTOTPFactor(ctx, u.ID, []byte("JBSWY3DPEHPK3PXP")); err != nil {
		t.Fatal(err)
	}
	if err := warnPlaintextTOTP(ctx, log, st, keyring.Options{}); err != nil || !strings.Contains(buf.String(), "TOTP secrets are stored unencrypted") {
		t.Fatalf("plaintext secret: %v, logged %q", err, buf.String())
	}
}

// TestKeysEncryptSealsTOTP: keys encrypt seals plaintext TOTP secrets and keys reencrypt moves
// them to the new secret, beside the signing keys.
func TestKeysEncryptSealsTOTP(t *testing.T) {
	ctx := context.Background()
	dsn := storetest.DSN(t, "sqlite")
	st, err := store.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	u := store.User{Username: "alice", PasswordHash: "x", IsActive: true}
	if err := st.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateTOTPFactor(ctx, u.ID, []byte("JBSWY3DPEHPK3PXP")); err != nil {
		t.Fatal(err)
	}
	opensWith := func(secret string) bool {
		f, err := st.TOTPFactorOf(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := token.OpenBytes([]byte(secret), f.Secret, totp.Label(u.ID))
		return err == nil && token.SealedBytes(f.Secret) && string(plain) == "JBSWY3DPEHPK3PXP"
	}
	stdout, _ := mustKeysRun(t, []string{"AUTHAPI_DB", dsn, "AUTHAPI_SECRET_KEY", testSecret}, "encrypt")
	if !strings.Contains(stdout, "encrypted 1 TOTP secrets with AUTHAPI_SECRET_KEY") || !opensWith(testSecret) {
		t.Fatalf("keys encrypt printed %q", stdout)
	}
	stdout, _ = mustKeysRun(t, []string{"AUTHAPI_DB", dsn, "AUTHAPI_SECRET_KEY", otherSecret, "AUTHAPI_OLD_SECRET_KEY", testSecret}, "reencrypt")
	if !strings.Contains(stdout, "re-encrypted 1 TOTP secrets") || !opensWith(otherSecret) {
		t.Fatalf("keys reencrypt printed %q", stdout)
	}
}

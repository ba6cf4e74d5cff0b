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

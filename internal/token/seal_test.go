package token

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

var secret = []byte("0123456789abcdef0123456789abcdef")

func TestSealOpen(t *testing.T) {
	for _, alg := range []string{EdDSA, ES256, RS256} {
		t.Run(alg, func(t *testing.T) {
			k := mustKey(t, alg, now)
			sealed, err := SealKey(secret, k)
			if err != nil {
				t.Fatal(err)
			}
			if !Sealed(sealed) || Sealed(k) {
				t.Errorf("Sealed(sealed) = %v, Sealed(plain) = %v; want true, false", Sealed(sealed), Sealed(k))
			}
			if !strings.HasPrefix(string(sealed.Private), "enc:v1:") || bytes.Contains(sealed.Private, []byte(`"d"`)) {
				t.Errorf("sealed Private = %q, want enc:v1: and no private member", sealed.Private)
			}
			if sealed.ID != k.ID || sealed.Algorithm != k.Algorithm || !sealed.CreatedAt.Equal(k.CreatedAt) {
				t.Errorf("sealing changed the key's metadata: %+v", sealed)
			}
			again, _ := SealKey(secret, k)
			if bytes.Equal(again.Private, sealed.Private) {
				t.Error("two seals of one key are equal, want a fresh nonce each")
			}
			opened, err := OpenKey(secret, sealed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(opened.Private, k.Private) {
				t.Error("OpenKey(SealKey(k)) differs from k")
			}
			m := mustManager(t, opened)
			if _, err := m.Parse(mustSign(t, m, accessClaims()), Access); err != nil {
				t.Errorf("opened key does not sign and verify: %v", err)
			}
		})
	}
}

func TestOpenKeyErrors(t *testing.T) {
	k := mustKey(t, EdDSA, now)
	sealed, err := SealKey(secret, k)
	if err != nil {
		t.Fatal(err)
	}
	other := mustKey(t, EdDSA, now)
	box, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(string(sealed.Private), "enc:v1:"))
	if err != nil {
		t.Fatal(err)
	}
	box[len(box)/2] ^= 1
	tampered := []byte("enc:v1:" + base64.RawURLEncoding.EncodeToString(box))
	for _, tc := range []struct {
		name   string
		secret []byte
		key    Key
		want   error
	}{
		{"no secret", nil, sealed, ErrSecretRequired},
		{"wrong secret", bytes.ToUpper(secret), sealed, ErrWrongSecret},
		{"moved to another kid", secret, Key{ID: other.ID, Algorithm: EdDSA, Private: sealed.Private}, ErrWrongSecret},
		{"another algorithm", secret, Key{ID: k.ID, Algorithm: ES256, Private: sealed.Private}, ErrWrongSecret},
		{"tampered", secret, Key{ID: k.ID, Algorithm: EdDSA, Private: tampered}, ErrWrongSecret},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := OpenKey(tc.secret, tc.key); !errors.Is(err, tc.want) {
				t.Errorf("OpenKey = %v, want %v", err, tc.want)
			}
		})
	}
	for name, key := range map[string]Key{
		"not base64": {ID: k.ID, Algorithm: EdDSA, Private: []byte("enc:v1:***")},
		"too short":  {ID: k.ID, Algorithm: EdDSA, Private: []byte("enc:v1:AAAA")},
	} {
		if _, err := OpenKey(secret, key); err == nil || errors.Is(err, ErrWrongSecret) {
			t.Errorf("%s: OpenKey = %v, want a malformed-key error", name, err)
		}
	}

	if _, err := SealKey(secret[:MinSecretSize-1], k); err == nil {
		t.Error("SealKey with a short secret: got nil error")
	}
	if _, err := SealKey(secret, sealed); err == nil {
		t.Error("SealKey of a sealed key: got nil error")
	}
	for _, s := range [][]byte{nil, secret, []byte("short")} {
		if got, err := OpenKey(s, k); err != nil || !bytes.Equal(got.Private, k.Private) {
			t.Errorf("OpenKey(%q, plaintext) = %v; want the key unchanged", s, err)
		}
	}
}

func TestSealBytes(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	sealed, err := SealBytes(secret, []byte("JBSWY3DPEHPK3PXP"), "totp:1")
	if err != nil || !SealedBytes(sealed) || bytes.Contains(sealed, []byte("JBSWY3DP")) {
		t.Fatalf("sealed %q, %v", sealed, err)
	}
	if plain, err := OpenBytes(secret, sealed, "totp:1"); err != nil || string(plain) != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("opened %q, %v", plain, err)
	}
	if _, err := OpenBytes(secret, sealed, "totp:2"); !errors.Is(err, ErrWrongSecret) {
		t.Fatalf("opened under another label: %v", err)
	}
}

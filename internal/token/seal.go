package token

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// Encryption of private keys at rest.
//
// A sealed Key.Private is sealedPrefix followed by base64url (no padding) of
// nonce || AES-256-GCM ciphertext. The AES key is derived from the secret
// with HKDF-SHA256 and a fixed info string; the key ID and algorithm are the
// additional data, so a sealed key cannot be moved under another kid or
// algorithm. The "v1" leaves room for a new scheme (or a rotated secret)
// beside old keys.
const (
	sealedPrefix = "enc:v1:"
	sealInfo     = "authapi signing key encryption v1"
)

// MinSecretSize is the shortest secret SealKey and OpenKey accept, in bytes.
// HKDF does not stretch a weak secret, so it must be random: 32 hex
// characters (128 bits) or more.
const MinSecretSize = 32

var (
	// ErrSecretRequired means a key is encrypted and no secret was given.
	ErrSecretRequired = errors.New("signing key is encrypted and no secret key is set")
	// ErrWrongSecret means a key is encrypted under another secret (or its
	// stored form was altered).
	ErrWrongSecret = errors.New("signing key does not decrypt with this secret key")
)

// Sealed reports whether k.Private is encrypted.
func Sealed(k Key) bool {
	return bytes.HasPrefix(k.Private, []byte(sealedPrefix))
}

// SealKey returns k with Private encrypted under secret. It fails if secret
// is shorter than MinSecretSize or k is sealed already.
func SealKey(secret []byte, k Key) (Key, error) {
	if Sealed(k) {
		return Key{}, fmt.Errorf("seal key %q: already sealed", k.ID)
	}
	aead, err := newAEAD(secret)
	if err != nil {
		return Key{}, fmt.Errorf("seal key %q: %w", k.ID, err)
	}
	nonce := randomBytes(aead.NonceSize())
	box := aead.Seal(nonce, nonce, k.Private, additionalData(k))
	out := make([]byte, 0, len(sealedPrefix)+base64.RawURLEncoding.EncodedLen(len(box)))
	out = append(out, sealedPrefix...)
	k.Private = base64.RawURLEncoding.AppendEncode(out, box)
	return k, nil
}

// OpenKey returns k with Private decrypted. A key that is not sealed comes
// back unchanged, whatever the secret, so that keys stored before a secret
// was set keep working. For a sealed key it returns ErrSecretRequired if
// secret is empty and ErrWrongSecret if secret does not decrypt it.
func OpenKey(secret []byte, k Key) (Key, error) {
	if !Sealed(k) {
		return k, nil
	}
	if len(secret) == 0 {
		return Key{}, fmt.Errorf("open key %q: %w", k.ID, ErrSecretRequired)
	}
	aead, err := newAEAD(secret)
	if err != nil {
		return Key{}, fmt.Errorf("open key %q: %w", k.ID, err)
	}
	box, err := base64.RawURLEncoding.Strict().DecodeString(string(k.Private[len(sealedPrefix):]))
	if err != nil || len(box) < aead.NonceSize()+aead.Overhead() {
		return Key{}, fmt.Errorf("open key %q: malformed sealed key", k.ID)
	}
	nonce, ciphertext := box[:aead.NonceSize()], box[aead.NonceSize():]
	plain, err := aead.Open(nil, nonce, ciphertext, additionalData(k))
	if err != nil {
		return Key{}, fmt.Errorf("open key %q: %w", k.ID, ErrWrongSecret)
	}
	k.Private = plain
	return k, nil
}

func newAEAD(secret []byte) (cipher.AEAD, error) {
	if len(secret) < MinSecretSize {
		return nil, fmt.Errorf("secret key is %d bytes, want at least %d", len(secret), MinSecretSize)
	}
	key, err := hkdf.Key(sha256.New, secret, nil, sealInfo, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// additionalData binds a sealed key to its ID and algorithm; the ID is
// length-prefixed so that no two (ID, algorithm) pairs give the same bytes.
func additionalData(k Key) []byte {
	return fmt.Appendf(nil, "%s\x00%d:%s%s", sealInfo, len(k.ID), k.ID, k.Algorithm)
}

// SealBytes encrypts plain under secret as SealKey does a private key, bound to label (say,
// "totp:42": what the bytes are and whose), so a sealed value cannot be moved to another row.
func SealBytes(secret, plain []byte, label string) ([]byte, error) {
	k, err := SealKey(secret, Key{ID: label, Algorithm: "bytes", Private: plain})
	return k.Private, err
}

// OpenBytes decrypts what SealBytes sealed with label; bytes not sealed come back unchanged
// (stored while no secret was set). Errors as OpenKey's.
func OpenBytes(secret, sealed []byte, label string) ([]byte, error) {
	k, err := OpenKey(secret, Key{ID: label, Algorithm: "bytes", Private: sealed})
	return k.Private, err
}

// SealedBytes reports whether b is sealed.
func SealedBytes(b []byte) bool { return bytes.HasPrefix(b, []byte(sealedPrefix)) }

// SealedPrefix is how every sealed value begins, for a store to count those that do not.
const SealedPrefix = sealedPrefix

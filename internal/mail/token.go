package mail

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"

	"github.com/authapi/authapi/internal/store"
)

// tokenKeyName is the mail_secrets row of the email tokens' HMAC key made when no secret key
// is configured.
const tokenKeyName = "email_token_hmac"

// TokenKey returns the key of the email tokens' HMAC: derived from the secret key
// (AUTHAPI_SECRET_KEY) when there is one, else a random key made once and kept in the
// database, shared by every instance.
func TokenKey(ctx context.Context, st *store.Store, secret []byte) ([]byte, error) {
	if len(secret) > 0 {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte("authapi email tokens v1"))
		return m.Sum(nil), nil
	}
	return st.MailSecret(ctx, tokenKeyName)
}

// NewToken returns a new one-time token for a link: 256 random bits, base64url.
func NewToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// HashToken returns what is stored of token: its HMAC-SHA256 under key, in hex. A database
// read yields no usable link, nor a way to test guesses without the key.
func HashToken(key []byte, token string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil))
}

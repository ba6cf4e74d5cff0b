package token

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// KeyID returns the kid in raw's JOSE header, or "" if raw has none or is malformed. It
// verifies nothing: use it only on a token Parse accepted, to remember which key did.
func KeyID(raw string) string {
	i := strings.IndexByte(raw, '.')
	if i < 0 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(raw[:i])
	if err != nil {
		return ""
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if json.Unmarshal(b, &h) != nil {
		return ""
	}
	return h.Kid
}

// HasKey reports whether the Manager holds the key kid, so that a cache of verified tokens can
// drop those whose key has left the ring.
func (m *Manager) HasKey(kid string) bool {
	_, ok := m.ring.Load().byID[kid]
	return ok
}

package server

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"unicode/utf8"

	"github.com/authapi/authapi/internal/userfields"
)

// newTokenID returns a random jti: 32 hex characters, as simplejwt's.
func newTokenID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newSessionID returns a random, URL-safe session id with 128 bits of entropy.
func newSessionID() string { return rand.Text() }

// storable reports whether s can be kept as text by both databases (see userfields.Storable).
func storable(s string) bool { return userfields.Storable(s) }

// cleanText makes client-supplied text (a User-Agent) storable, replacing what is not.
func cleanText(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

const msgNullCharacters = userfields.MsgNullCharacters

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// requireFields reports each empty field as required, in the demo's words.
func requireFields(values map[string]string) map[string][]string {
	var fields map[string][]string
	for name, v := range values {
		if v == "" {
			if fields == nil {
				fields = map[string][]string{}
			}
			fields[name] = []string{msgRequired}
		}
	}
	return fields
}

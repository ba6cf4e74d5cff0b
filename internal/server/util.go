package server

import (
	"strings"
	"unicode/utf8"

	"github.com/authapi/authapi/internal/userfields"
)

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

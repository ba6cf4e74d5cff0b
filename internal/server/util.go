package server

import (
	"unicode/utf8"

	"github.com/authapi/authapi/internal/userfields"
)

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

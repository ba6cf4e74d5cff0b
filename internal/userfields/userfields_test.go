package userfields

import (
	"strings"
	"testing"
)

func TestUsername(t *testing.T) {
	for _, tc := range []struct{ in, want, msg string }{
		{"alice", "alice", ""},
		{"ａｄｍｉｎ", "admin", ""},       // fullwidth
		{"e\u0301mile", "émile", ""}, // a combining accent composes
		{"ﬁle", "file", ""},          // a ligature decomposes
		{"<b>", "<b>", msgUsername},
		{"two words", "two words", msgUsername},
		{"line\nbreak", "line\nbreak", msgUsername},
		{"ad\u202Emin", "ad\u202Emin", msgUsername}, // Cf is neither letter nor digit
		{strings.Repeat("a", 151), strings.Repeat("a", 151), msgTooLong},
		{"a\x00", "a\x00", MsgNullCharacters},
		{"a\xff", "a\xff", MsgNullCharacters},
	} {
		got, msg := Username(tc.in)
		if got != tc.want || msg != tc.msg {
			t.Errorf("Username(%q) = %q, %q; want %q, %q", tc.in, got, msg, tc.want, tc.msg)
		}
	}
}

func TestNameAndEmail(t *testing.T) {
	for _, tc := range []struct{ in, msg string }{
		{"Émile", ""},
		{"Mohammad\u200CReza", ""}, // ZWNJ spells Persian names
		{"evil\u202Egnp.exe", MsgFormatCharacters},
		{"\u2066isolate", MsgFormatCharacters},
		{"soft\u00ADhyphen", MsgFormatCharacters},
		{strings.Repeat("n", 151), msgTooLong},
		{"a\x00", MsgNullCharacters},
	} {
		if msg := Name(tc.in); msg != tc.msg {
			t.Errorf("Name(%q) = %q, want %q", tc.in, msg, tc.msg)
		}
	}
	for _, tc := range []struct{ in, msg string }{
		{"bob@example.com", ""},
		{"not-an-email <b>", msgEmail},
		{"Bob <bob@example.com>", msgEmail},
		{"bob\u202E@example.com", msgEmail},
		{"a\x00@example.com", MsgNullCharacters},
	} {
		if msg := Email(tc.in); msg != tc.msg {
			t.Errorf("Email(%q) = %q, want %q", tc.in, msg, tc.msg)
		}
	}
}

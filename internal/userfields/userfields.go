// Package userfields holds the rules a user's username, names and email must follow, wherever
// the user comes from: the API and createsuperuser (through users) and import-django. Each
// function returns the message that refuses a value, in the API's words, or "" to accept it.
package userfields

import (
	"fmt"
	"maps"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// MaxLength is the most characters a username, first name or last name may have (Django's
// AbstractUser's max_length).
const MaxLength = 150

// maxEmailLength is the most bytes an email may have (Django's EmailField, RFC 5321).
const maxEmailLength = 254

// Messages.
const (
	// MsgRequired refuses a request without a field it must carry.
	MsgRequired = "This field is required."
	// MsgBlank refuses an empty value.
	MsgBlank = "This field may not be blank."
	// MsgNullCharacters refuses text that cannot be stored: invalid UTF-8 or NUL (Django's
	// ProhibitNullCharactersValidator).
	MsgNullCharacters = "Null characters are not allowed."
	// MsgFormatCharacters refuses a name holding invisible formatting characters (Unicode
	// category Cf, such as U+202E RIGHT-TO-LEFT OVERRIDE), which can make text displayed after
	// them read differently.
	MsgFormatCharacters = "Invisible formatting characters are not allowed."
	msgUsername         = "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters."
	msgEmail            = "Enter a valid email address."
)

// Errors refuses input field by field: each field at fault with its messages, in the API's
// words (clients may show them). Policy is set when only the password policy refused: then
// Fields holds the new password's field alone, with the policy's objections. The use-cases
// (auth, users) return it; the server answers it.
type Errors struct {
	Fields map[string][]string
	Policy bool
}

// Invalid refuses fields.
func Invalid(fields map[string][]string) *Errors { return &Errors{Fields: fields} }

// PolicyRefused refuses the new password in field for the policy's reasons, and nothing else.
func PolicyRefused(field string, reasons []string) *Errors {
	return &Errors{Fields: map[string][]string{field: reasons}, Policy: true}
}

// Error lists the fields in order, each with its messages: "email: ...; password: ...".
func (e *Errors) Error() string {
	parts := make([]string, 0, len(e.Fields))
	for _, name := range slices.Sorted(maps.Keys(e.Fields)) {
		parts = append(parts, name+": "+strings.Join(e.Fields[name], " "))
	}
	return strings.Join(parts, "; ")
}

var msgTooLong = fmt.Sprintf("Ensure this field has no more than %d characters.", MaxLength)

// usernamePattern is Django's UnicodeUsernameValidator: letters, digits and @.+-_ only, so no
// spaces, markup, control or formatting (Cf) characters.
var usernamePattern = regexp.MustCompile(`^[\p{L}\p{N}@.+_-]+$`)

// Storable reports whether s can be kept as text by both databases: valid UTF-8 without NUL
// (PostgreSQL refuses both).
func Storable(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

// MakeStorable makes client-supplied text (a User-Agent, a username to count failures against)
// storable, replacing invalid UTF-8 and NUL with U+FFFD.
func MakeStorable(s string) string {
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// Username returns v as it is stored, NFKC-normalised as Django's normalize_username does (so
// that the fullwidth "ａｄｍｉｎ" is "admin"), and the message that refuses it, checked on that
// form, or "". An unstorable v comes back as it is.
func Username(v string) (normalized, msg string) {
	if !Storable(v) {
		return v, MsgNullCharacters
	}
	v = norm.NFKC.String(v)
	switch {
	case utf8.RuneCountInString(v) > MaxLength:
		return v, msgTooLong
	case !usernamePattern.MatchString(v):
		return v, msgUsername
	}
	return v, ""
}

// Name returns the message that refuses v as a first or last name, or "".
func Name(v string) string {
	switch {
	case !Storable(v):
		return MsgNullCharacters
	case utf8.RuneCountInString(v) > MaxLength:
		return msgTooLong
	case hasFormatCharacter(v):
		return MsgFormatCharacters
	}
	return ""
}

// Email returns the message that refuses v as an email address, or "": a bare address as
// Django's EmailValidator takes it, without display name or formatting characters.
func Email(v string) string {
	if !Storable(v) {
		return MsgNullCharacters
	}
	addr, err := mail.ParseAddress(v)
	if err != nil || addr.Address != v || len(v) > maxEmailLength || !strings.Contains(v, "@") || hasFormatCharacter(v) {
		return msgEmail
	}
	return ""
}

// hasFormatCharacter reports whether s holds a character of Unicode category Cf other than
// the zero-width joiner and non-joiner, which spell words in Persian and the Indic scripts
// (and emoji) and reorder nothing.
func hasFormatCharacter(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool {
		return unicode.Is(unicode.Cf, r) && r != '\u200C' && r != '\u200D'
	})
}

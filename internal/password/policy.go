package password

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
)

// Attributes are the user's details that a password must not resemble.
type Attributes struct {
	Username, FirstName, LastName, Email string
}

const (
	minLength = 8
	maxLength = 4096 // bytes; argon2 and zxcvbn work grows with length
	// zxcvbn's time grows with the square of the length, times the number of
	// l33t substitutions: 100 l33t-heavy characters took ~280ms, 64 ~110ms.
	// A password whose first 64 characters are strong is strong.
	zxcvbnPrefix = 64
	minScore     = 3
	// maxSimilarity is Django's default: a password at least this much made
	// of the user's own details is refused even if zxcvbn rates it strong,
	// because an attacker who targets the user knows those details.
	maxSimilarity = 0.7
)

// Validate applies the policy of Django's four default validators and returns
// the reasons a password is refused, in Django's English and in the order of
// Django's default AUTH_PASSWORD_VALIDATORS (similarity, length, common,
// numeric), or nil if it is acceptable. Passwords longer than 4096 bytes get
// only the "too long" reason.
func Validate(plain string, a Attributes) []string {
	if len(plain) > maxLength {
		return []string{"This password is too long. It must contain at most 4096 characters."}
	}
	var reasons []string
	similar, common := guessable(plain, a)
	if similar != "" {
		reasons = append(reasons, "The password is too similar to the "+similar+".")
	}
	if utf8.RuneCountInString(plain) < minLength {
		reasons = append(reasons, "This password is too short. It must contain at least 8 characters.")
	}
	if common {
		reasons = append(reasons, "This password is too common.")
	}
	if isNumeric(plain) {
		reasons = append(reasons, "This password is entirely numeric.")
	}
	return reasons
}

// isNumeric mirrors Python's str.isdigit, which Django's NumericPasswordValidator uses.
func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

// attribute names as Django's messages spell them, in Django's order, which
// decides which one is named when several match.
var attributeNames = [...]string{"username", "first name", "last name", "email address"}

// guessable rates plain with zxcvbn. It returns the attribute plain is too
// similar to (or ""), and whether it is otherwise too common.
func guessable(plain string, a Attributes) (similar string, common bool) {
	// zxcvbn scores invalid UTF-8 as 0 without looking; JSON input is valid
	// anyway, so judge the text rather than refuse it as "common".
	pw := prefix(strings.ToValidUTF8(plain, "\uFFFD"), zxcvbnPrefix)

	// owner maps each lowercased user input (zxcvbn lowercases too) to the
	// index of its attribute; the first attribute in Django's order wins.
	owner := map[string]int{}
	var inputs []string
	add := func(s string, attr int) {
		k := strings.ToLower(s)
		if k == "" {
			return
		}
		if _, ok := owner[k]; !ok {
			owner[k] = attr
			inputs = append(inputs, s)
		}
	}
	add(a.Username, 0)
	add(a.FirstName, 1)
	add(a.LastName, 2)
	add(a.Email, 3)
	if local, _, ok := strings.Cut(a.Email, "@"); ok {
		add(local, 3)
	}

	r := zxcvbn.PasswordStrength(pw, inputs)
	best, covered := len(attributeNames), 0
	for _, m := range r.Sequence {
		word := ""
		switch {
		case m.Pattern == "dictionary" && m.DictionaryName == "user_inputs":
			word = m.MatchedWord
		case m.Pattern == "repeat":
			// The library matches a repeat's base ("bob" in "bobbob")
			// without the user inputs, so look the base up here.
			word = strings.ToLower(m.BaseToken)
			if _, ok := owner[word]; !ok {
				continue
			}
		default:
			continue
		}
		covered += utf8.RuneCountInString(m.Token)
		if i, ok := owner[word]; ok && i < best {
			best = i
		}
	}
	if best == len(attributeNames) {
		best = 0 // username, should a match's word not map back
	}

	n := utf8.RuneCountInString(pw)
	switch {
	case covered > 0 && (r.Score < minScore || float64(covered) >= maxSimilarity*float64(n)):
		return attributeNames[best], false
	case r.Score < minScore:
		return "", true
	}
	return "", false
}

// prefix returns the first n runes of s.
func prefix(s string, n int) string {
	for i := range s {
		if n == 0 {
			return s[:i]
		}
		n--
	}
	return s
}

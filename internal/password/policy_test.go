package password

import (
	"slices"
	"strings"
	"sync"
	"testing"
)

const (
	msgShort    = "This password is too short. It must contain at least 8 characters."
	msgNumeric  = "This password is entirely numeric."
	msgCommon   = "This password is too common."
	msgLong     = "This password is too long. It must contain at most 4096 characters."
	msgUsername = "The password is too similar to the username."
	msgFirst    = "The password is too similar to the first name."
	msgLast     = "The password is too similar to the last name."
	msgEmail    = "The password is too similar to the email address."
)

var bob = Attributes{Username: "bob", FirstName: "Bob", LastName: "Builder", Email: "bob@example.com"}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		plain string
		attrs Attributes
		want  []string
	}{
		{"strong with attrs", "super_secret_password", bob, nil},
		{"random passphrase", "correct-horse-battery-staple-9431", Attributes{}, nil},
		{"passphrase with attrs", "correct-horse-battery-staple-9431", bob, nil},
		{"password", "password", Attributes{}, []string{msgCommon}},
		{"digits", "12345678", Attributes{}, []string{msgCommon, msgNumeric}},
		{"one", "1", Attributes{}, []string{msgShort, msgCommon, msgNumeric}},
		{"empty", "", Attributes{}, []string{msgShort, msgCommon}},
		// zxcvbn rates any 7 characters below 3 (1e7 guesses).
		{"seven random chars", "x9#Lq2!", Attributes{}, []string{msgShort, msgCommon}},
		{"username twice", "alice2024alice", Attributes{Username: "alice"}, []string{msgUsername}},
		{"username case folded", "ALICE2024alice", Attributes{Username: "Alice"}, []string{msgUsername}},
		{"username reversed", "ecila2024ecila", Attributes{Username: "alice"}, []string{msgUsername}},
		{"last name leet", "Bu1ld3r2024", bob, []string{msgLast}},
		// Strong (score 4) and only 10 of 16 characters from the username: below Django's 0.7.
		{"username leet minority", "@l1c3-2024-@l1c3", Attributes{Username: "alice"}, nil},
		{"first name", "Roberta1987!", Attributes{Username: "rb", FirstName: "Roberta"}, []string{msgFirst}},
		{"last name", "Builder2024!", bob, []string{msgLast}},
		{"email", "bob@example.com", bob, []string{msgEmail}},
		{"email local part", "zanzibar.q!", Attributes{Email: "zanzibar.q@example.com"}, []string{msgEmail}},
		{"same word as username and first name", "Bob1987!", bob, []string{msgUsername}},
		{"username named before last name", "quixotic-zanzibar", Attributes{Username: "zanzibar", LastName: "quixotic"}, []string{msgUsername}},
		{"username repeated", "bobbob1987", bob, []string{msgUsername}},
		{"similar and short", "alice9x", Attributes{Username: "alice"}, []string{msgUsername, msgShort}},
		// In zxcvbn's password list, which beats the username match.
		{"common beats similar", "alice1", Attributes{Username: "alice"}, []string{msgShort, msgCommon}},
		{"unicode counted in characters", "пароль12", Attributes{}, []string{msgCommon}},
		{"unicode digits are numeric", "١٢٣٤٥٦٧٨٩", Attributes{}, []string{msgNumeric}},
		{"longest allowed", strings.Repeat("q", 4096), Attributes{}, []string{msgCommon}},
		{"too long", strings.Repeat("q", 4097), Attributes{}, []string{msgLong}},
		{"long strong", "correct-horse-battery-staple-9431" + strings.Repeat("a", 4000), Attributes{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Validate(tt.plain, tt.attrs); !slices.Equal(got, tt.want) {
				t.Errorf("Validate(%.40q, %+v) = %q, want %q", tt.plain, tt.attrs, got, tt.want)
			}
		})
	}
}

func TestValidateConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got := Validate("alice2024alice", Attributes{Username: "alice"}); !slices.Equal(got, []string{msgUsername}) {
				t.Errorf("Validate(alice2024alice) = %q, want %q", got, []string{msgUsername})
			}
		})
	}
	wg.Wait()
}

func BenchmarkValidate(b *testing.B) {
	for _, bm := range []struct{ name, plain string }{
		{"short", "super_secret_password"},
		{"long", strings.Repeat("p4$$w0rd!", 455)}, // 4095 bytes
		// Every l33t character: zxcvbn's worst case.
		{"leet", strings.Repeat("4@8({[<3691!|7$5+%2", 215)},
	} {
		b.Run(bm.name, func(b *testing.B) {
			for b.Loop() {
				Validate(bm.plain, bob)
			}
		})
	}
}

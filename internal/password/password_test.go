package password

import (
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
)

func TestDefaultParams(t *testing.T) {
	want := Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	if got := DefaultParams(); got != want {
		t.Errorf("DefaultParams() = %+v, want %+v", got, want)
	}
}

func mustHash(t testing.TB, h *Hasher, plain string) string {
	t.Helper()
	enc, err := h.Hash(t.Context(), plain)
	if err != nil {
		t.Fatalf("Hash(%q): %v", plain, err)
	}
	return enc
}

func TestHashFormat(t *testing.T) {
	tests := []struct {
		name string
		p    Params
		want string
	}{
		{"default", DefaultParams(), `^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`},
		{"fast", FastParams(), `^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustHash(t, NewHasher(tt.p, Limit{}), "hunter2")
			if !regexp.MustCompile(tt.want).MatchString(got) {
				t.Errorf("Hash = %q, want match for %s", got, tt.want)
			}
		})
	}
}

func TestHashSalted(t *testing.T) {
	h := NewHasher(FastParams(), Limit{})
	a, b := mustHash(t, h, "same"), mustHash(t, h, "same")
	if a == b {
		t.Errorf("two hashes of the same password are equal (%q): salt not random", a)
	}
}

func TestVerify(t *testing.T) {
	h := NewHasher(FastParams(), Limit{})
	enc := mustHash(t, h, "correct horse")
	// Swap one character of a field for another that keeps the string well formed.
	tamper := func(field int) string {
		f := strings.Split(enc, "$")
		c := byte('A')
		if f[field][0] == 'A' {
			c = 'B'
		}
		f[field] = string(c) + f[field][1:]
		return strings.Join(f, "$")
	}
	tests := []struct {
		name    string
		plain   string
		encoded string
		want    bool
	}{
		{"right password", "correct horse", enc, true},
		{"wrong password", "correct horsE", enc, false},
		{"empty password", "", enc, false},
		{"tampered key", "correct horse", tamper(5), false},
		{"tampered salt", "correct horse", tamper(4), false},
		{"tampered costs", "correct horse", strings.Replace(enc, "m=64,", "m=72,", 1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.Verify(t.Context(), tt.plain, tt.encoded)
			if err != nil || got != tt.want {
				t.Errorf("Verify(%q, %q) = %v, %v; want %v, nil", tt.plain, tt.encoded, got, err, tt.want)
			}
		})
	}
}

// Verify must use the costs in the string, so hashes survive a change of params.
func TestVerifyUsesStoredParams(t *testing.T) {
	old := NewHasher(FastParams(), Limit{})
	enc := mustHash(t, old, "pw")
	p := FastParams()
	p.Memory, p.Iterations, p.KeyLength = 128, 2, 64
	got, err := NewHasher(p, Limit{}).Verify(t.Context(), "pw", enc)
	if err != nil || !got {
		t.Errorf("Verify with other params = %v, %v; want true, nil", got, err)
	}
}

func TestVerifyMalformed(t *testing.T) {
	const (
		salt = "c2FsdHNhbHRzYWx0c2FsdA"                      // 16 bytes
		key  = "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U" // 32 bytes
	)
	ok := func(costs string) string { return "$argon2id$v=19$" + costs + "$" + salt + "$" + key }
	tests := []struct{ name, encoded string }{
		{"empty", ""},
		{"dollar only", "$"},
		{"wrong prefix argon2i", "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key},
		{"bcrypt $2x$", "$2x$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"plain text", "hunter2"},
		{"missing version", "$argon2id$m=64,t=1,p=1$" + salt + "$" + key},
		{"version 16", "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key},
		{"extra field", ok("m=64,t=1,p=1") + "$x"},
		{"missing key", "$argon2id$v=19$m=64,t=1,p=1$" + salt},
		{"bad base64 salt", "$argon2id$v=19$m=64,t=1,p=1$!!!!$" + key},
		{"bad base64 key", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key[:42] + "*"},
		{"padded base64", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key},
		{"non-canonical base64", "$argon2id$v=19$m=64,t=1,p=1$" + salt[:21] + "B$" + key},
		{"costs out of order", ok("t=1,m=64,p=1")},
		{"costs missing p", ok("m=64,t=1")},
		{"costs not numbers", ok("m=x,t=1,p=1")},
		{"costs negative", ok("m=-64,t=1,p=1")},
		{"m above uint32", ok("m=4294967296,t=1,p=1")},
		{"m absurd", ok("m=4294967295,t=1,p=1")},
		{"m just over 1 GiB", ok("m=1048577,t=1,p=1")},
		{"m below 8 per lane", ok("m=15,t=1,p=2")},
		{"t zero", ok("m=64,t=0,p=1")},
		{"t absurd", ok("m=64,t=101,p=1")},
		{"p zero", ok("m=64,t=1,p=0")},
		{"p above uint8", ok("m=4096,t=1,p=256")},
		{"salt too short", "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key},
		{"salt too long", "$argon2id$v=19$m=64,t=1,p=1$" + strings.Repeat("A", 88) + "$" + key},
		{"key too short", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$a2V5"},
		{"key too long", "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + strings.Repeat("A", 88)},
		{"huge", ok("m=64,t=1,p=1") + strings.Repeat("A", 1<<20)},
	}
	h := NewHasher(FastParams(), Limit{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.Verify(t.Context(), "pw", tt.encoded)
			if got || !errors.Is(err, ErrUnknownFormat) {
				t.Errorf("Verify(%.80q) = %v, %v; want false, ErrUnknownFormat", tt.encoded, got, err)
			}
			if !h.NeedsRehash(tt.encoded) {
				t.Errorf("NeedsRehash(%.80q) = false, want true", tt.encoded)
			}
		})
	}
	// The fixture itself must be valid, or every case above passes for the wrong reason.
	if _, err := h.Verify(t.Context(), "pw", ok("m=64,t=1,p=1")); err != nil {
		t.Errorf("well-formed fixture rejected: %v", err)
	}
}

func TestNeedsRehash(t *testing.T) {
	base := FastParams()
	enc := mustHash(t, NewHasher(base, Limit{}), "pw")
	with := func(f func(*Params)) Params { p := base; f(&p); return p }
	tests := []struct {
		name string
		p    Params
		want bool
	}{
		{"same params", base, false},
		{"memory", with(func(p *Params) { p.Memory = 128 }), true},
		{"iterations", with(func(p *Params) { p.Iterations = 2 }), true},
		{"parallelism", with(func(p *Params) { p.Parallelism = 2 }), true},
		{"salt length", with(func(p *Params) { p.SaltLength = 32 }), true},
		{"key length", with(func(p *Params) { p.KeyLength = 64 }), true},
		{"default", DefaultParams(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := NewHasher(tt.p, Limit{}).NeedsRehash(enc); got != tt.want {
				t.Errorf("NeedsRehash(%q) with %+v = %v, want %v", enc, tt.p, got, tt.want)
			}
		})
	}
}

func TestNewHasherRejectsInvalidParams(t *testing.T) {
	with := func(f func(*Params)) Params { p := FastParams(); f(&p); return p }
	tests := []struct {
		name string
		p    Params
	}{
		{"zero", Params{}},
		{"no iterations", with(func(p *Params) { p.Iterations = 0 })},
		{"no parallelism", with(func(p *Params) { p.Parallelism = 0 })},
		{"memory below 8 per lane", with(func(p *Params) { p.Memory, p.Parallelism = 31, 4 })},
		{"memory over limit", with(func(p *Params) { p.Memory = maxMemory + 1 })},
		{"short salt", with(func(p *Params) { p.SaltLength = 4 })},
		{"short key", with(func(p *Params) { p.KeyLength = 8 })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("NewHasher(%+v) did not panic", tt.p)
				}
			}()
			NewHasher(tt.p, Limit{})
		})
	}
}

// The dummy must cost what a real hash costs, so it must carry h's params.
func TestVerifyDummy(t *testing.T) {
	for _, p := range []Params{FastParams(), DefaultParams()} {
		h := NewHasher(p, Limit{})
		if h.NeedsRehash(h.dummy) {
			t.Errorf("dummy %q was not made with %+v", h.dummy, p)
		}
		if ok, err := h.Verify(t.Context(), "x", h.dummy); ok || err != nil {
			t.Errorf("Verify(x, dummy) = %v, %v; want false, nil", ok, err)
		}
		h.VerifyDummy(t.Context(), "x")
	}
}

func TestConcurrent(t *testing.T) {
	h := NewHasher(FastParams(), Limit{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			plain := strings.Repeat("p", i+1)
			enc, err := h.Hash(t.Context(), plain)
			if err != nil {
				t.Errorf("Hash: %v", err)
				return
			}
			if ok, err := h.Verify(t.Context(), plain, enc); !ok || err != nil {
				t.Errorf("Verify(%q, %q) = %v, %v; want true, nil", plain, enc, ok, err)
			}
			h.VerifyDummy(t.Context(), plain)
		})
	}
	wg.Wait()
}

func BenchmarkHash(b *testing.B) {
	h := NewHasher(DefaultParams(), Limit{})
	for b.Loop() {
		if _, err := h.Hash(b.Context(), "correct-horse-battery-staple"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h := NewHasher(DefaultParams(), Limit{})
	enc := mustHash(b, h, "correct-horse-battery-staple")
	for b.Loop() {
		if ok, err := h.Verify(b.Context(), "correct-horse-battery-staple", enc); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

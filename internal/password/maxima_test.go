package password

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
)

// Fixtures in the right shape with arbitrary costs: they are refused before anything is
// hashed, so their salts and keys need not match any password.
const (
	fixtureSalt   = "c2FsdHNhbHRzYWx0c2FsdA"                      // 16 bytes
	fixtureKey    = "a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U" // 32 bytes
	fixtureSHA256 = "JgZryXe2Ga8ysg6XbzkLpTdyPQrHqsinbL9BnnhgX4A="
	fixtureBcrypt = "abcdefghijklmnopqrstuuanVo7Xut1CH8VGIGlz1JovQh9GJbbtG" // salt and hash
)

func argonWith(m, t, p int) string {
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", m, t, p, fixtureSalt, fixtureKey)
}

// A hash whose costs are above the maxima is refused with ErrCostTooHigh before a hashing slot
// is taken, so nothing is hashed however costly it claims to be: the review's
// m=1048576,t=100,p=255 took 145 s and 1 GiB a check.
func TestVerifyCostMaxima(t *testing.T) {
	over := []struct{ name, encoded string }{
		{"review's argon2id", argonWith(1048576, 100, 255)},
		{"argon2id memory", argonWith(4*19456+1, 1, 1)},
		{"argon2id passes", argonWith(64, 9, 1)},
		{"argon2id lanes", argonWith(64, 1, 5)},
		{"pbkdf2_sha256", "pbkdf2_sha256$2000001$seasalt$" + fixtureSHA256},
		{"pbkdf2_sha256 review's 10M", "pbkdf2_sha256$10000000$seasalt$" + fixtureSHA256},
		{"pbkdf2_sha1", "pbkdf2_sha1$2000001$seasalt$ljleU4wBmTtz/MoG5YTwxpM0d7I="},
		{"bcrypt cost 14", "$2b$14$" + fixtureBcrypt},
		{"bcrypt cost 16", "$2b$16$" + fixtureBcrypt},
		{"django bcrypt cost 14", "bcrypt$$2b$14$" + fixtureBcrypt},
		{"django bcrypt_sha256 cost 14", "bcrypt_sha256$$2b$14$" + fixtureBcrypt},
	}
	h := NewHasher(FastParams(), Limit{})
	var slots atomic.Int64
	h.onSlot = func(held bool) {
		if held {
			slots.Add(1)
		}
	}
	for _, tt := range over {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.Verify(t.Context(), "pw", tt.encoded)
			if got || !errors.Is(err, ErrCostTooHigh) || !errors.Is(err, ErrUnknownFormat) {
				t.Errorf("Verify = %v, %v; want false, ErrCostTooHigh", got, err)
			}
			if err := CheckFormat(tt.encoded); !errors.Is(err, ErrCostTooHigh) {
				t.Errorf("CheckFormat = %v, want ErrCostTooHigh", err)
			}
		})
	}
	if n := slots.Load(); n != 0 {
		t.Errorf("%d hashing slots taken for hashes above the maxima, want 0", n)
	}

	// At the maxima, the format is accepted (checking these would take the time the maxima allow).
	for _, encoded := range []string{
		argonWith(4*19456, 8, 4),
		"pbkdf2_sha256$2000000$seasalt$" + fixtureSHA256,
		"$2b$13$" + fixtureBcrypt,
		"bcrypt_sha256$$2b$13$" + fixtureBcrypt,
	} {
		if err := CheckFormat(encoded); err != nil {
			t.Errorf("CheckFormat(%.40q) = %v, want nil", encoded, err)
		}
	}
}

// The argon2id maxima follow the configured costs, so a Hasher configured above the defaults
// still verifies its own hashes, and never fall below the defaults' (hashes made before a
// change to lower costs keep working).
func TestArgon2MaximaFollowConfiguredCosts(t *testing.T) {
	if got, want := Argon2Maxima(DefaultParams()), (Params{Memory: 4 * 19456, Iterations: 8, Parallelism: 4}); got != want {
		t.Errorf("Argon2Maxima(DefaultParams()) = %+v, want %+v", got, want)
	}
	if got := Argon2Maxima(FastParams()); got != Argon2Maxima(DefaultParams()) {
		t.Errorf("Argon2Maxima(FastParams()) = %+v, want the defaults' %+v", got, Argon2Maxima(DefaultParams()))
	}
	p := DefaultParams()
	p.Memory, p.Iterations = 1<<20, 100 // the most Check allows
	if got, want := Argon2Maxima(p), (Params{Memory: 4 << 20, Iterations: 400, Parallelism: 4}); got != want {
		t.Errorf("Argon2Maxima(%+v) = %+v, want %+v", p, got, want)
	}

	// More passes than the defaults' maxima: its own hashes verify, and the maxima grow with it.
	p = FastParams()
	p.Iterations = 12
	h := NewHasher(p, Limit{})
	own := mustHash(t, h, "pw")
	if ok, err := h.Verify(t.Context(), "pw", own); !ok || err != nil {
		t.Errorf("Verify(own hash at t=12) = %v, %v; want true, nil", ok, err)
	}
	if err := CheckFormat(own); !errors.Is(err, ErrCostTooHigh) {
		t.Errorf("CheckFormat(t=12) = %v, want ErrCostTooHigh at the defaults' maxima", err)
	}
	if _, err := h.Verify(t.Context(), "pw", argonWith(64, 49, 1)); !errors.Is(err, ErrCostTooHigh) {
		t.Errorf("Verify(t=49) with t=12 configured = %v, want ErrCostTooHigh", err)
	}
	if _, err := h.parse(argonWith(64, 48, 1)); err != nil {
		t.Errorf("parse(t=48) with t=12 configured = %v, want nil", err)
	}
	if !strings.Contains(fmt.Sprint(CheckFormat(argonWith(64, 9, 1))), "above m=77824,t=8,p=4") {
		t.Errorf("CheckFormat(t=9) = %v, want the maxima named", CheckFormat(argonWith(64, 9, 1)))
	}
}

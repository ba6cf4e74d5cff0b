package password

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// Vectors made outside Go, so that a shared misreading of a format cannot
// pass. PBKDF2 with Python's hashlib, formatted as Django's
// PBKDF2PasswordHasher.encode does:
//
//	python3 -c 'import hashlib,base64,sys; a,pw,salt,n=sys.argv[1:]; n=int(n);
//	  print("pbkdf2_%s$%d$%s$%s" % (a, n, salt, base64.b64encode(
//	  hashlib.pbkdf2_hmac(a, pw.encode(), salt.encode(), n)).decode()))' \
//	  sha256 super_secret_password seasalt 260000
//
// bcrypt with Python's crypt module, which calls the system's libxcrypt, not
// golang.org/x/crypto; bcrypt_sha256 as Django's BCryptSHA256PasswordHasher:
//
//	python3 -W ignore -c 'import crypt; print(crypt.crypt("lètmein", "$2b$04$abcdefghijklmnopqrstuu"))'
//	python3 -W ignore -c 'import crypt,hashlib; print("bcrypt_sha256$" + crypt.crypt(
//	  hashlib.sha256("lètmein".encode()).hexdigest(), "$2b$04$ZYXWVUTSRQPONMLKJIHGFe"))'
const (
	// Django 4.2's iteration count; 870000 (Django 5.0) takes over 2s under -race.
	djangoSHA256    = "pbkdf2_sha256$260000$seasalt$hPREbs2Sm5HX/rfOe4v/1CGykFH35/38WvqD+1FCaqE="              // super_secret_password
	django870000    = "pbkdf2_sha256$870000$seasalt$aONL5PZuFP+ARTzCHEyRELcQ8fpaT+Vwjvo9xQDG6Qw="              // super_secret_password
	pbkdf2SHA256    = "pbkdf2_sha256$1000$seasalt$JgZryXe2Ga8ysg6XbzkLpTdyPQrHqsinbL9BnnhgX4A="                // lètmein
	pbkdf2SHA256Dj  = "pbkdf2_sha256$1000$Zy8qXlOAmcYbJ3gNhCqLx1$LyNmA+Pl5XmuincI0fxGfZBsgNhErsSLkPz1ca1PcYY=" // correct horse, 22-char salt
	pbkdf2SHA1      = "pbkdf2_sha1$1000$seasalt$ljleU4wBmTtz/MoG5YTwxpM0d7I="                                  // lètmein
	bcrypt2b        = "$2b$04$abcdefghijklmnopqrstuuanVo7Xut1CH8VGIGlz1JovQh9GJbbtG"                           // lètmein
	bcrypt2a        = "$2a$04$abcdefghijklmnopqrstuuanVo7Xut1CH8VGIGlz1JovQh9GJbbtG"                           // lètmein
	bcrypt2y        = "$2y$04$abcdefghijklmnopqrstuuanVo7Xut1CH8VGIGlz1JovQh9GJbbtG"                           // lètmein
	djangoBcrypt    = "bcrypt$$2b$05$ZYXWVUTSRQPONMLKJIHGFe6xZCgbBIrVJSYvseiyFTp3cYYPY0RXK"                    // lètmein
	djangoBcryptSHA = "bcrypt_sha256$$2b$04$ZYXWVUTSRQPONMLKJIHGFegf84gzfNLiNDQpDtSUYQ.bm2KuoYtAq"             // lètmein
)

func mustBcrypt(t testing.TB, plain string) string {
	t.Helper()
	b, err := bcrypt.GenerateFromPassword([]byte(plain), bcrypt.MinCost)
	if err != nil {
		t.Fatalf("bcrypt.GenerateFromPassword(%q): %v", plain, err)
	}
	return string(b)
}

func hexSHA256(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// flip replaces the character at i (negative counts from the end) with
// another from the same alphabet, so the string stays well formed.
func flip(s string, i int) string {
	if i < 0 {
		i += len(s)
	}
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

func TestVerifyImported(t *testing.T) {
	const long = "0123456789012345678901234567890123456789012345678901234567890123456789ab" // 72 bytes
	genRaw := mustBcrypt(t, "correct horse")
	genLong := mustBcrypt(t, long)
	tests := []struct {
		name, plain, encoded string
		want                 bool
	}{
		{"django pbkdf2_sha256 260000", "super_secret_password", djangoSHA256, true},
		{"pbkdf2_sha256", "lètmein", pbkdf2SHA256, true},
		{"pbkdf2_sha256 22-char salt", "correct horse", pbkdf2SHA256Dj, true},
		{"pbkdf2_sha1", "lètmein", pbkdf2SHA1, true},
		{"pbkdf2_sha256 wrong", "letmein", pbkdf2SHA256, false},
		{"pbkdf2_sha256 empty password", "", pbkdf2SHA256, false},
		{"pbkdf2_sha1 wrong", "letmein", pbkdf2SHA1, false},
		{"pbkdf2 tampered hash", "lètmein", flip(pbkdf2SHA256, -10), false},
		{"pbkdf2 tampered salt", "lètmein", strings.Replace(pbkdf2SHA256, "seasalt", "seasalu", 1), false},
		{"pbkdf2 tampered iterations", "lètmein", strings.Replace(pbkdf2SHA256, "$1000$", "$1001$", 1), false},

		{"$2b$ python", "lètmein", bcrypt2b, true},
		{"$2a$ python", "lètmein", bcrypt2a, true},
		{"$2y$ python", "lètmein", bcrypt2y, true},
		{"$2b$ wrong", "letmein", bcrypt2b, false},
		{"$2b$ tampered hash", "lètmein", flip(bcrypt2b, -1), false},
		{"$2b$ tampered salt", "lètmein", flip(bcrypt2b, 8), false},
		{"$2b$ tampered cost", "lètmein", strings.Replace(bcrypt2b, "$04$", "$05$", 1), false},
		{"django bcrypt", "lètmein", djangoBcrypt, true},
		{"django bcrypt wrong", "letmein", djangoBcrypt, false},
		{"django bcrypt_sha256", "lètmein", djangoBcryptSHA, true},
		{"django bcrypt_sha256 wrong", "letmein", djangoBcryptSHA, false},
		// The label decides what bcrypt is given; swapping labels must not match.
		{"bcrypt hash labelled bcrypt_sha256", "lètmein", "bcrypt_sha256$" + bcrypt2b, false},
		{"bcrypt_sha256 hash labelled bcrypt", "lètmein", strings.TrimPrefix(djangoBcryptSHA, "bcrypt_sha256$"), false},

		{"generated raw", "correct horse", genRaw, true},
		{"generated raw wrong", "correct horsE", genRaw, false},
		{"generated django bcrypt", "correct horse", "bcrypt$" + genRaw, true},
		{"generated bcrypt_sha256", "correct horse", "bcrypt_sha256$" + mustBcrypt(t, hexSHA256("correct horse")), true},
		{"generated bcrypt_sha256 wrong", "correct horsE", "bcrypt_sha256$" + mustBcrypt(t, hexSHA256("correct horse")), false},
		// bcrypt reads 72 bytes, as every implementation does; bcrypt_sha256 exists for this.
		{"bcrypt ignores bytes after 72", long + "zzz", genLong, true},
		{"bcrypt_sha256 reads them", long + "zzz", "bcrypt_sha256$" + mustBcrypt(t, hexSHA256(long)), false},
	}
	h := NewHasher(FastParams(), Limit{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.Verify(t.Context(), tt.plain, tt.encoded)
			if err != nil || got != tt.want {
				t.Errorf("Verify(%q, %q) = %v, %v; want %v, nil", tt.plain, tt.encoded, got, err, tt.want)
			}
			if !h.NeedsRehash(tt.encoded) {
				t.Errorf("NeedsRehash(%q) = false, want true", tt.encoded)
			}
		})
	}
}

func TestVerifyImportedMalformed(t *testing.T) {
	const (
		sha256Key = "JgZryXe2Ga8ysg6XbzkLpTdyPQrHqsinbL9BnnhgX4A=" // 32 bytes
		sha1Key   = "ljleU4wBmTtz/MoG5YTwxpM0d7I="                 // 20 bytes
	)
	pb := func(iter, salt, key string) string { return "pbkdf2_sha256$" + iter + "$" + salt + "$" + key }
	bc := bcrypt2b[7:] // salt and hash
	tests := []struct{ name, encoded string }{
		{"empty", ""},
		{"dollar only", "$"},
		{"plain text", "lètmein"},
		{"django md5", "md5$seasalt$f5531bef9f3687d0ccf0f617f0e25573"},
		{"django sha1", "sha1$seasalt$cff36ea83f5706ce9aa7454e63e431fc726b2dc8"},
		{"django unsalted_md5", "unsalted_md5$$5f4dcc3b5aa765d61d8327deb882cf99"},
		{"django argon2", "argon2$argon2id$v=19$m=102400,t=2,p=8$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5"},
		{"django scrypt", "scrypt$seasalt$16384$8$1$" + sha256Key},
		{"django unusable", "!UXZ7PbQtJ5wCbqFy5AxSoqvb2MpXv2X0C6fnNpwu"},
		{"pbkdf2_sha512", "pbkdf2_sha512$1000$seasalt$" + sha256Key},
		{"PBKDF2_SHA256 upper case", "PBKDF2_SHA256$1000$seasalt$" + sha256Key},
		{"pbkdf2 no fields", "pbkdf2_sha256$"},
		{"pbkdf2 two fields", "pbkdf2_sha256$1000$seasalt"},
		{"pbkdf2 four fields", pb("1000", "seasalt", sha256Key) + "$x"},
		{"pbkdf2 dollar in salt", pb("1000", "sea$salt", sha256Key)},
		{"pbkdf2 empty salt", pb("1000", "", sha256Key)},
		{"pbkdf2 iterations empty", pb("", "seasalt", sha256Key)},
		{"pbkdf2 iterations not numeric", pb("many", "seasalt", sha256Key)},
		{"pbkdf2 iterations hex", pb("0x3e8", "seasalt", sha256Key)},
		{"pbkdf2 iterations signed", pb("+1000", "seasalt", sha256Key)},
		{"pbkdf2 iterations negative", pb("-1000", "seasalt", sha256Key)},
		{"pbkdf2 iterations leading zero", pb("01000", "seasalt", sha256Key)},
		{"pbkdf2 iterations spaces", pb(" 1000", "seasalt", sha256Key)},
		{"pbkdf2 iterations zero", pb("0", "seasalt", sha256Key)},
		{"pbkdf2 iterations just over limit", pb("10000001", "seasalt", sha256Key)},
		{"pbkdf2 iterations above uint32", pb("4294967296", "seasalt", sha256Key)},
		{"pbkdf2 iterations huge", pb("99999999999999999999999", "seasalt", sha256Key)},
		{"pbkdf2 hash empty", pb("1000", "seasalt", "")},
		{"pbkdf2 hash bad base64", pb("1000", "seasalt", "!!!!"+sha256Key[4:])},
		{"pbkdf2 hash url base64", pb("1000", "seasalt", "-_"+sha256Key[2:])},
		{"pbkdf2 hash unpadded", pb("1000", "seasalt", strings.TrimSuffix(sha256Key, "="))},
		{"pbkdf2 hash with newline", pb("1000", "seasalt", sha256Key[:20]+"\n"+sha256Key[20:])},
		{"pbkdf2 hash non-canonical bits", pb("1000", "seasalt", sha256Key[:42]+"B=")},
		{"pbkdf2 hash too short", pb("1000", "seasalt", sha1Key)},
		{"pbkdf2 hash too long", pb("1000", "seasalt", sha256Key+sha256Key)},
		{"pbkdf2_sha1 with sha256 hash", "pbkdf2_sha1$1000$seasalt$" + sha256Key},
		{"pbkdf2 huge salt", pb("1000", strings.Repeat("s", 1<<20), sha256Key)},

		{"bcrypt $2x$", "$2x$04$" + bc},
		{"bcrypt $2$", "$2$04$" + bc},
		{"bcrypt $3a$", "$3a$04$" + bc},
		{"bcrypt cost 3", "$2b$03$" + bc},
		{"bcrypt cost 17", "$2b$17$" + bc},
		{"bcrypt cost 31", "$2b$31$" + bc},
		{"bcrypt cost one digit", "$2b$4$" + bc},
		{"bcrypt cost not numeric", "$2b$0x$" + bc},
		{"bcrypt truncated", bcrypt2b[:59]},
		{"bcrypt trailing text", bcrypt2b + "x"},
		{"bcrypt bad alphabet", bcrypt2b[:59] + "+"},
		{"bcrypt no dollar after cost", "$2b$04" + bc + "x"},
		{"django bcrypt empty", "bcrypt$"},
		{"django bcrypt single dollar", "bcrypt" + bcrypt2b[1:]},
		{"django bcrypt holding pbkdf2", "bcrypt$" + pbkdf2SHA256},
		{"django bcrypt_sha256 garbage", "bcrypt_sha256$garbage"},
		{"django bcrypt_sha256 cost 20", "bcrypt_sha256$$2b$20$" + bc},
	}
	h := NewHasher(FastParams(), Limit{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := h.Verify(t.Context(), "lètmein", tt.encoded)
			if got || !errors.Is(err, ErrUnknownFormat) {
				t.Errorf("Verify(%.80q) = %v, %v; want false, ErrUnknownFormat", tt.encoded, got, err)
			}
			if !h.NeedsRehash(tt.encoded) {
				t.Errorf("NeedsRehash(%.80q) = false, want true", tt.encoded)
			}
		})
	}
}

// The login flow: an imported hash verifies, asks for a rehash, and the new
// argon2id hash verifies and asks for none.
func TestImportedRehash(t *testing.T) {
	h := NewHasher(FastParams(), Limit{})
	for _, enc := range []string{pbkdf2SHA256, pbkdf2SHA1, bcrypt2b, djangoBcrypt, djangoBcryptSHA} {
		if ok, err := h.Verify(t.Context(), "lètmein", enc); !ok || err != nil {
			t.Fatalf("Verify(%q) = %v, %v; want true, nil", enc, ok, err)
		}
		if !h.NeedsRehash(enc) {
			t.Fatalf("NeedsRehash(%q) = false, want true", enc)
		}
		fresh := mustHash(t, h, "lètmein")
		if ok, err := h.Verify(t.Context(), "lètmein", fresh); !ok || err != nil {
			t.Errorf("Verify(rehash of %q) = %v, %v; want true, nil", enc, ok, err)
		}
		if h.NeedsRehash(fresh) {
			t.Errorf("NeedsRehash(%q) = true, want false", fresh)
		}
	}
}

// FuzzVerify checks that no input panics and that the results agree: an
// error always wraps ErrUnknownFormat and never comes with true. Under plain
// go test only the seeds run.
func FuzzVerify(f *testing.F) {
	for _, s := range []string{
		"", "$", "$$", "!", pbkdf2SHA256, pbkdf2SHA1, bcrypt2b, djangoBcrypt, djangoBcryptSHA,
		"pbkdf2_sha256$1$s$", "bcrypt_sha256$$2b$", "$argon2id$v=19$m=64,t=1,p=1$$",
	} {
		f.Add("lètmein", s)
	}
	h := NewHasher(FastParams(), Limit{})
	f.Fuzz(func(t *testing.T, plain, encoded string) {
		ok, err := h.Verify(t.Context(), plain, encoded)
		if err != nil && (ok || !errors.Is(err, ErrUnknownFormat)) {
			t.Errorf("Verify(%q, %q) = %v, %v; want false and ErrUnknownFormat with an error", plain, encoded, ok, err)
		}
	})
}

func BenchmarkVerifyPBKDF2(b *testing.B) {
	h := NewHasher(FastParams(), Limit{})
	for b.Loop() {
		if ok, err := h.Verify(b.Context(), "super_secret_password", django870000); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// CheckFormat accepts what Verify reads and refuses, with the reason, what it cannot, without
// hashing: the importer decides with it which accounts could ever log in.
func TestCheckFormat(t *testing.T) {
	argon, err := NewHasher(FastParams(), Limit{}).Hash(t.Context(), "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	for _, encoded := range []string{argon, djangoSHA256, django870000, pbkdf2SHA1, bcrypt2b, bcrypt2y, djangoBcrypt, djangoBcryptSHA} {
		if err := CheckFormat(encoded); err != nil {
			t.Errorf("CheckFormat(%.30q…) = %v, want nil", encoded, err)
		}
	}
	tests := []struct{ name, encoded, reason string }{
		{"empty", "", "empty"},
		{"unusable", "!Zk3lTmG8Q2yO8vM1xBUu0c1pJQqDp5kR8nD4tQxW", "unusable"},
		{"django argon2", "argon2$argon2id$v=19$m=102400,t=2,p=8$c29tZXNhbHQ$aGFzaA", "unsupported Django hasher"},
		{"md5", "md5$seasalt$0123456789abcdef0123456789abcdef", "unsupported Django hasher"},
		{"pbkdf2 short hash", "pbkdf2_sha256$1000$seasalt$AAAA", "bytes"},
		{"pbkdf2 too many iterations", "pbkdf2_sha256$20000000$seasalt$hPREbs2Sm5HX/rfOe4v/1CGykFH35/38WvqD+1FCaqE=", "iterations"},
		{"bcrypt cost", "$2b$31$abcdefghijklmnopqrstuuanVo7Xut1CH8VGIGlz1JovQh9GJbbtG", "cost"},
		{"argon2id costs", "$argon2id$v=19$m=1,t=1,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", ""},
		{"garbage", "plaintext password", "unrecognized"},
	}
	for _, tt := range tests {
		err := CheckFormat(tt.encoded)
		if !errors.Is(err, ErrUnknownFormat) || !strings.Contains(err.Error(), tt.reason) {
			t.Errorf("%s: CheckFormat = %v, want ErrUnknownFormat saying %q", tt.name, err, tt.reason)
		}
	}
}

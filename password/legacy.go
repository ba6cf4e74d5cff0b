package password

import (
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

// Limits on the costs read from an imported hash. At the maximum, one Verify
// takes a few seconds; a crafted hash cannot make it take longer.
const (
	maxPBKDF2Iterations = 10_000_000 // Django 5 writes 870000 to 1200000
	maxBcryptCost       = 16         // 2^16 rounds; Django's default is 12
)

// djangoUnsupported are Django hashers Verify recognizes by name but does
// not accept, so the error can say which one a stored hash uses.
var djangoUnsupported = map[string]bool{
	"argon2": true, "scrypt": true, "crypt": true,
	"sha1": true, "md5": true, "unsalted_sha1": true, "unsalted_md5": true,
}

// verifyImported checks plain against a hash imported from elsewhere:
// Django's pbkdf2_sha256, pbkdf2_sha1, bcrypt and bcrypt_sha256 formats, and
// raw bcrypt ($2a$, $2b$, $2y$). Errors do not quote the hash.
func verifyImported(plain, encoded string) (bool, error) {
	alg, rest, _ := strings.Cut(encoded, "$")
	switch alg {
	case "":
		if encoded == "" {
			return false, fmt.Errorf("%w: empty", ErrUnknownFormat)
		}
		return verifyBcrypt([]byte(plain), encoded)
	case "pbkdf2_sha256":
		return verifyPBKDF2(sha256.New, plain, rest)
	case "pbkdf2_sha1":
		return verifyPBKDF2(sha1.New, plain, rest)
	case "bcrypt":
		return verifyBcrypt([]byte(plain), rest)
	case "bcrypt_sha256":
		// Django hashes first so that bcrypt's 72-byte limit does not
		// truncate the password; bcrypt sees the lowercase hex digest.
		sum := sha256.Sum256([]byte(plain))
		return verifyBcrypt([]byte(hex.EncodeToString(sum[:])), rest)
	}
	switch {
	case strings.HasPrefix(encoded, "!"):
		return false, fmt.Errorf("%w: Django unusable password", ErrUnknownFormat)
	case djangoUnsupported[alg]:
		return false, fmt.Errorf("%w: unsupported Django hasher %q", ErrUnknownFormat, alg)
	}
	return false, fmt.Errorf("%w: unrecognized", ErrUnknownFormat)
}

// verifyPBKDF2 checks plain against Django's "<iterations>$<salt>$<hash>",
// the part after "pbkdf2_sha256$" or "pbkdf2_sha1$": PBKDF2-HMAC with the
// UTF-8 salt and a key as long as the digest, in padded standard base64.
// Like Django, which re-encodes and compares strings, it accepts only the
// canonical spelling of the iterations and the hash.
func verifyPBKDF2(newHash func() hash.Hash, plain, fields string) (bool, error) {
	f := strings.Split(fields, "$")
	if len(f) != 3 {
		return false, fmt.Errorf("%w: pbkdf2: want <iterations>$<salt>$<hash>", ErrUnknownFormat)
	}
	n, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil || strconv.FormatUint(n, 10) != f[0] {
		return false, fmt.Errorf("%w: pbkdf2: iterations not a canonical decimal", ErrUnknownFormat)
	}
	if n < 1 || n > maxPBKDF2Iterations {
		return false, fmt.Errorf("%w: pbkdf2: iterations %d not in [1, %d]", ErrUnknownFormat, n, maxPBKDF2Iterations)
	}
	salt := f[1]
	if salt == "" {
		return false, fmt.Errorf("%w: pbkdf2: empty salt", ErrUnknownFormat)
	}
	size := newHash().Size()
	want, err := base64.StdEncoding.DecodeString(f[2])
	switch {
	case err != nil:
		return false, fmt.Errorf("%w: pbkdf2: hash: %w", ErrUnknownFormat, err)
	case base64.StdEncoding.EncodeToString(want) != f[2]:
		// DecodeString skips newlines and ignores trailing bits.
		return false, fmt.Errorf("%w: pbkdf2: hash not canonical base64", ErrUnknownFormat)
	case len(want) != size:
		return false, fmt.Errorf("%w: pbkdf2: hash is %d bytes, want %d", ErrUnknownFormat, len(want), size)
	}
	got, err := pbkdf2.Key(newHash, plain, []byte(salt), int(n), size)
	if err != nil {
		// Only in FIPS 140-only mode, which refuses SHA-1 and short salts.
		return false, fmt.Errorf("pbkdf2: %w", err)
	}
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// bcryptHash is the modular crypt format: variant, two-digit cost, then a
// 22-character salt and a 31-character hash in bcrypt's base64 alphabet.
// $2x$ (crypt_blowfish's buggy variant) and the bare $2$ are refused, and so
// is trailing text, which the bcrypt package would silently ignore.
var bcryptHash = regexp.MustCompile(`^\$2[aby]\$([0-9]{2})\$[./A-Za-z0-9]{53}$`)

// verifyBcrypt checks pw against a raw bcrypt hash. Like every bcrypt, it
// uses only the first 72 bytes of pw.
func verifyBcrypt(pw []byte, encoded string) (bool, error) {
	m := bcryptHash.FindStringSubmatch(encoded)
	if m == nil {
		return false, fmt.Errorf("%w: not a $2a$, $2b$ or $2y$ bcrypt hash", ErrUnknownFormat)
	}
	if cost, _ := strconv.Atoi(m[1]); cost < bcrypt.MinCost || cost > maxBcryptCost {
		return false, fmt.Errorf("%w: bcrypt: cost %d not in [%d, %d]", ErrUnknownFormat, cost, bcrypt.MinCost, maxBcryptCost)
	}
	// CompareHashAndPassword compares in constant time.
	err := bcrypt.CompareHashAndPassword([]byte(encoded), pw)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return false, nil
	}
	return false, fmt.Errorf("%w: bcrypt: %w", ErrUnknownFormat, err)
}

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

// The maxima on the costs of an imported hash: about twice what current Django writes, so
// that a crafted hash cannot make one check take seconds (10,000,000 PBKDF2 iterations took
// 1.7 s, bcrypt cost 16 3.8 s). A hash above them is refused with ErrCostTooHigh before
// anything is hashed.
const (
	// MaxPBKDF2Iterations bounds pbkdf2_sha256 and pbkdf2_sha1; Django 5.2 writes 1,000,000.
	MaxPBKDF2Iterations = 2_000_000
	// MaxBcryptCost bounds bcrypt's cost (2^cost rounds); Django writes 12.
	MaxBcryptCost = 13
)

// djangoUnsupported are Django hashers Verify recognizes by name but does
// not accept, so the error can say which one a stored hash uses.
var djangoUnsupported = map[string]bool{
	"argon2": true, "scrypt": true, "crypt": true,
	"sha1": true, "md5": true, "unsalted_sha1": true, "unsalted_md5": true,
}

// parseImported reads a hash imported from elsewhere: Django's pbkdf2_sha256, pbkdf2_sha1,
// bcrypt and bcrypt_sha256 formats, and raw bcrypt ($2a$, $2b$, $2y$). It returns the check of
// a password against it, which does the costly hashing, or an error wrapping
// ErrUnknownFormat. Errors do not quote the hash.
func parseImported(encoded string) (check func(plain string) (bool, error), err error) {
	alg, rest, _ := strings.Cut(encoded, "$")
	switch alg {
	case "":
		if encoded == "" {
			return nil, fmt.Errorf("%w: empty", ErrUnknownFormat)
		}
		return parseBcrypt(encoded, func(plain string) []byte { return []byte(plain) })
	case "pbkdf2_sha256":
		return parsePBKDF2(sha256.New, rest)
	case "pbkdf2_sha1":
		return parsePBKDF2(sha1.New, rest)
	case "bcrypt":
		return parseBcrypt(rest, func(plain string) []byte { return []byte(plain) })
	case "bcrypt_sha256":
		// Django hashes first so that bcrypt's 72-byte limit does not
		// truncate the password; bcrypt sees the lowercase hex digest.
		return parseBcrypt(rest, func(plain string) []byte {
			sum := sha256.Sum256([]byte(plain))
			return []byte(hex.EncodeToString(sum[:]))
		})
	}
	switch {
	case strings.HasPrefix(encoded, "!"):
		return nil, fmt.Errorf("%w: Django unusable password", ErrUnknownFormat)
	case djangoUnsupported[alg]:
		return nil, fmt.Errorf("%w: unsupported Django hasher %q", ErrUnknownFormat, alg)
	}
	return nil, fmt.Errorf("%w: unrecognized", ErrUnknownFormat)
}

// parsePBKDF2 reads Django's "<iterations>$<salt>$<hash>", the part after "pbkdf2_sha256$"
// or "pbkdf2_sha1$": PBKDF2-HMAC with the UTF-8 salt and a key as long as the digest, in
// padded standard base64. Like Django, which re-encodes and compares strings, it accepts only
// the canonical spelling of the iterations and the hash.
func parsePBKDF2(newHash func() hash.Hash, fields string) (func(plain string) (bool, error), error) {
	f := strings.Split(fields, "$")
	if len(f) != 3 {
		return nil, fmt.Errorf("%w: pbkdf2: want <iterations>$<salt>$<hash>", ErrUnknownFormat)
	}
	n, err := strconv.ParseUint(f[0], 10, 32)
	if err != nil || strconv.FormatUint(n, 10) != f[0] {
		return nil, fmt.Errorf("%w: pbkdf2: iterations not a canonical decimal", ErrUnknownFormat)
	}
	if n < 1 {
		return nil, fmt.Errorf("%w: pbkdf2: iterations 0", ErrUnknownFormat)
	}
	if n > MaxPBKDF2Iterations {
		return nil, fmt.Errorf("%w: pbkdf2: %d iterations, above %d", ErrCostTooHigh, n, MaxPBKDF2Iterations)
	}
	salt := f[1]
	if salt == "" {
		return nil, fmt.Errorf("%w: pbkdf2: empty salt", ErrUnknownFormat)
	}
	size := newHash().Size()
	want, err := base64.StdEncoding.DecodeString(f[2])
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: pbkdf2: hash: %w", ErrUnknownFormat, err)
	case base64.StdEncoding.EncodeToString(want) != f[2]:
		// DecodeString skips newlines and ignores trailing bits.
		return nil, fmt.Errorf("%w: pbkdf2: hash not canonical base64", ErrUnknownFormat)
	case len(want) != size:
		return nil, fmt.Errorf("%w: pbkdf2: hash is %d bytes, want %d", ErrUnknownFormat, len(want), size)
	}
	return func(plain string) (bool, error) {
		got, err := pbkdf2.Key(newHash, plain, []byte(salt), int(n), size)
		if err != nil {
			// Only in FIPS 140-only mode, which refuses SHA-1 and short salts.
			return false, fmt.Errorf("pbkdf2: %w", err)
		}
		return subtle.ConstantTimeCompare(got, want) == 1, nil
	}, nil
}

// bcryptHash is the modular crypt format: variant, two-digit cost, then a
// 22-character salt and a 31-character hash in bcrypt's base64 alphabet.
// $2x$ (crypt_blowfish's buggy variant) and the bare $2$ are refused, and so
// is trailing text, which the bcrypt package would silently ignore.
var bcryptHash = regexp.MustCompile(`^\$2[aby]\$([0-9]{2})\$[./A-Za-z0-9]{53}$`)

// parseBcrypt reads a raw bcrypt hash; the check compares the bytes password gives for the
// plain password. Like every bcrypt, it uses only their first 72 bytes.
func parseBcrypt(encoded string, password func(plain string) []byte) (func(plain string) (bool, error), error) {
	m := bcryptHash.FindStringSubmatch(encoded)
	if m == nil {
		return nil, fmt.Errorf("%w: not a $2a$, $2b$ or $2y$ bcrypt hash", ErrUnknownFormat)
	}
	cost, _ := strconv.Atoi(m[1])
	if cost < bcrypt.MinCost {
		return nil, fmt.Errorf("%w: bcrypt: cost %d below %d", ErrUnknownFormat, cost, bcrypt.MinCost)
	}
	if cost > MaxBcryptCost {
		return nil, fmt.Errorf("%w: bcrypt: cost %d, above %d", ErrCostTooHigh, cost, MaxBcryptCost)
	}
	return func(plain string) (bool, error) {
		// CompareHashAndPassword compares in constant time.
		err := bcrypt.CompareHashAndPassword([]byte(encoded), password(plain))
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
			return false, nil
		}
		return false, fmt.Errorf("%w: bcrypt: %w", ErrUnknownFormat, err)
	}, nil
}

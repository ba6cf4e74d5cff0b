// Package password hashes passwords with argon2id and checks them against the password policy.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// ErrUnknownFormat is returned by Verify for an encoded hash it cannot use:
// in no format it reads, malformed, or with costs outside the accepted limits.
var ErrUnknownFormat = errors.New("unknown password hash format")

// Params are argon2id costs. Memory in KiB.
type Params struct {
	Memory      uint32
	Iterations  uint32
	Parallelism uint8
	SaltLength  uint32
	KeyLength   uint32
}

// DefaultParams are OWASP's: 19 MiB (19456 KiB), 2 passes, 1 lane, 16-byte salt, 32-byte key.
func DefaultParams() Params {
	return Params{Memory: 19456, Iterations: 2, Parallelism: 1, SaltLength: 16, KeyLength: 32}
}

// FastParams are for tests only: tiny memory, 1 pass.
func FastParams() Params {
	return Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
}

// Limits on the costs read back from a stored hash, so that a crafted hash
// in the database cannot make one Verify take minutes or gigabytes.
const (
	maxMemory     = 1 << 20 // KiB, 1 GiB
	maxIterations = 100
	minSaltLength = 8
	maxSaltLength = 64
	minKeyLength  = 16
	maxKeyLength  = 64
	maxEncodedLen = 512 // far above any hash within the limits above
)

// Check reports whether p is within the limits Verify accepts; NewHasher panics otherwise,
// so callers taking costs from configuration check them first.
func (p Params) Check() error {
	switch {
	case p.Iterations < 1 || p.Iterations > maxIterations:
		return fmt.Errorf("iterations %d not in [1, %d]", p.Iterations, maxIterations)
	case p.Parallelism < 1:
		return errors.New("parallelism 0")
	case p.Memory < 8*uint32(p.Parallelism) || p.Memory > maxMemory:
		// argon2 needs at least 8 KiB per lane (RFC 9106, 3.1).
		return fmt.Errorf("memory %d KiB not in [%d, %d]", p.Memory, 8*uint32(p.Parallelism), maxMemory)
	case p.SaltLength < minSaltLength || p.SaltLength > maxSaltLength:
		return fmt.Errorf("salt length %d not in [%d, %d]", p.SaltLength, minSaltLength, maxSaltLength)
	case p.KeyLength < minKeyLength || p.KeyLength > maxKeyLength:
		return fmt.Errorf("key length %d not in [%d, %d]", p.KeyLength, minKeyLength, maxKeyLength)
	}
	return nil
}

// Hasher hashes and verifies passwords. It is safe for concurrent use.
type Hasher struct {
	params Params
	dummy  string // a hash made with params, for VerifyDummy
}

// NewHasher returns a Hasher that hashes with p and precomputes a dummy hash
// with p. It panics if p is outside the limits Verify accepts, since hashes
// made with such params could never be verified again.
func NewHasher(p Params) *Hasher {
	if err := p.Check(); err != nil {
		panic("password: invalid params: " + err.Error())
	}
	h := &Hasher{params: p}
	dummy, err := h.Hash("dummy password for unknown users")
	if err != nil {
		panic("password: " + err.Error())
	}
	h.dummy = dummy
	return h
}

// Hash returns a PHC string: $argon2id$v=19$m=19456,t=2,p=1$<b64 salt no padding>$<b64 hash no padding>
func (h *Hasher) Hash(plain string) (string, error) {
	p := h.params
	salt := make([]byte, p.SaltLength)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read salt: %w", err)
	}
	key := argon2.IDKey([]byte(plain), salt, p.Iterations, p.Memory, p.Parallelism, p.KeyLength)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Iterations, p.Parallelism,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// Verify reports whether plain matches encoded, comparing in constant time.
// It uses the params stored in encoded, not h's. Besides h's own argon2id
// PHC strings it reads hashes imported from Django: pbkdf2_sha256$...,
// pbkdf2_sha1$..., bcrypt$... and bcrypt_sha256$..., and raw $2a$, $2b$ and
// $2y$ bcrypt hashes; NeedsRehash is true for all of those. An encoding that
// is in none of these formats, malformed, or has costs outside the accepted
// limits gives false and an error wrapping ErrUnknownFormat.
func (h *Hasher) Verify(plain, encoded string) (bool, error) {
	if len(encoded) > maxEncodedLen {
		return false, fmt.Errorf("%w: longer than %d bytes", ErrUnknownFormat, maxEncodedLen)
	}
	if !strings.HasPrefix(encoded, "$argon2") {
		return verifyImported(plain, encoded)
	}
	d, err := decode(encoded)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey([]byte(plain), d.salt, d.params.Iterations, d.params.Memory, d.params.Parallelism, d.params.KeyLength)
	return subtle.ConstantTimeCompare(key, d.key) == 1, nil
}

// VerifyDummy spends the same time as a Verify against a real hash, so
// unknown usernames take as long as wrong passwords.
func (h *Hasher) VerifyDummy(plain string) {
	_, _ = h.Verify(plain, h.dummy)
}

// NeedsRehash reports whether encoded was made with params other than h's
// or is not argon2id (an imported Django or bcrypt hash, say), so the
// caller can rehash after a successful login.
func (h *Hasher) NeedsRehash(encoded string) bool {
	d, err := decode(encoded)
	return err != nil || d.params != h.params
}

// b64 is PHC's encoding: standard alphabet, no padding; Strict rejects
// non-canonical trailing bits so one hash has one spelling.
var b64 = base64.RawStdEncoding.Strict()

type decoded struct {
	params    Params
	salt, key []byte
}

// decode parses a PHC argon2id string and checks its costs against the limits.
func decode(encoded string) (decoded, error) {
	var d decoded
	if len(encoded) > maxEncodedLen {
		return d, fmt.Errorf("%w: longer than %d bytes", ErrUnknownFormat, maxEncodedLen)
	}
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	f := strings.Split(encoded, "$")
	if len(f) != 6 || f[0] != "" || f[1] != "argon2id" {
		return d, fmt.Errorf("%w: not a PHC argon2id string", ErrUnknownFormat)
	}
	if f[2] != "v="+strconv.Itoa(argon2.Version) {
		return d, fmt.Errorf("%w: unsupported version %q", ErrUnknownFormat, f[2])
	}
	m, t, p, err := parseCosts(f[3])
	if err != nil {
		return d, fmt.Errorf("%w: %w", ErrUnknownFormat, err)
	}
	if d.salt, err = b64.DecodeString(f[4]); err != nil {
		return d, fmt.Errorf("%w: salt: %w", ErrUnknownFormat, err)
	}
	if d.key, err = b64.DecodeString(f[5]); err != nil {
		return d, fmt.Errorf("%w: key: %w", ErrUnknownFormat, err)
	}
	d.params = Params{
		Memory:      m,
		Iterations:  t,
		Parallelism: p,
		SaltLength:  uint32(len(d.salt)),
		KeyLength:   uint32(len(d.key)),
	}
	if err := d.params.Check(); err != nil {
		return d, fmt.Errorf("%w: %w", ErrUnknownFormat, err)
	}
	return d, nil
}

// parseCosts parses "m=<uint32>,t=<uint32>,p=<uint8>" in that order, as the
// reference implementation writes it.
func parseCosts(s string) (m, t uint32, p uint8, err error) {
	kv := strings.Split(s, ",")
	if len(kv) != 3 {
		return 0, 0, 0, fmt.Errorf("costs %q: want m=,t=,p=", s)
	}
	var v [3]uint64
	for i, name := range [3]string{"m", "t", "p"} {
		val, ok := strings.CutPrefix(kv[i], name+"=")
		if !ok {
			return 0, 0, 0, fmt.Errorf("costs %q: want %s= at position %d", s, name, i+1)
		}
		bits := 32
		if name == "p" {
			bits = 8
		}
		if v[i], err = strconv.ParseUint(val, 10, bits); err != nil {
			return 0, 0, 0, fmt.Errorf("costs %q: %s: %w", s, name, err)
		}
	}
	return uint32(v[0]), uint32(v[1]), uint8(v[2]), nil
}

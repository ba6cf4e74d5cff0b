// Package password hashes passwords with argon2id and checks them against the password policy.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/sync/semaphore"
)

// ErrUnknownFormat is returned by Verify for an encoded hash it cannot use:
// in no format it reads, malformed, or with costs outside the accepted limits.
var ErrUnknownFormat = errors.New("unknown password hash format")

// ErrCostTooHigh is returned by Verify and CheckFormat for a hash whose costs are above the
// maxima (MaxPBKDF2Iterations, MaxBcryptCost, and for argon2id Argon2Maxima), before anything
// is hashed. It wraps ErrUnknownFormat: such a hash matches no password.
var ErrCostTooHigh = fmt.Errorf("%w: costs above the maxima", ErrUnknownFormat)

// ErrBusy is returned by Hash, Verify and VerifyDummy when no hashing slot came
// free within the Hasher's wait, or ctx ended first. Nothing was hashed or
// checked; the caller may try again later.
var ErrBusy = errors.New("password hasher busy")

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

// Limits on the costs authapi may be configured to hash with (see Check), and on the shape
// of a stored hash. The costs Verify accepts are lower still: see Argon2Maxima.
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

// Argon2CostFactor is how many times the costs a Hasher writes (or DefaultParams', if larger)
// an argon2id hash it verifies may have: see Argon2Maxima.
const Argon2CostFactor = 4

// Argon2Maxima returns the largest argon2id costs a Hasher that hashes with p verifies:
// Argon2CostFactor times the larger of p's and DefaultParams' memory, passes and lanes (at
// DefaultParams, 76 MiB, 8 passes, 4 lanes). So the Hasher always verifies its own hashes and
// those made at the defaults, and a crafted hash cannot make one check take much more
// memory or time than a login normally does.
func Argon2Maxima(p Params) Params {
	def := DefaultParams()
	return Params{
		Memory:      Argon2CostFactor * max(p.Memory, def.Memory),
		Iterations:  Argon2CostFactor * max(p.Iterations, def.Iterations),
		Parallelism: uint8(min(Argon2CostFactor*uint(max(p.Parallelism, def.Parallelism)), 255)),
	}
}

// checkArgon2Costs refuses costs above maxima (see Argon2Maxima) with ErrCostTooHigh.
func checkArgon2Costs(p, maxima Params) error {
	if p.Memory > maxima.Memory || p.Iterations > maxima.Iterations || p.Parallelism > maxima.Parallelism {
		return fmt.Errorf("%w: argon2id m=%d,t=%d,p=%d, above m=%d,t=%d,p=%d", ErrCostTooHigh,
			p.Memory, p.Iterations, p.Parallelism, maxima.Memory, maxima.Iterations, maxima.Parallelism)
	}
	return nil
}

// DefaultWait is how long a call waits for a hashing slot unless Limit says otherwise.
const DefaultWait = time.Second

// DefaultConcurrency is how many hashes and verifies run at once unless Limit
// says otherwise: two per CPU the Go scheduler uses (GOMAXPROCS).
func DefaultConcurrency() int { return 2 * runtime.GOMAXPROCS(0) }

// Limit bounds the hashing a Hasher does at once. Each hash or verify holds a
// slot while it runs, so memory in use for hashing stays within the number of
// slots times the argon2id memory cost (19 MiB at DefaultParams), however many
// requests arrive together.
type Limit struct {
	// Slots holds one slot per hash or verify that may run at once. Nil
	// means a new semaphore of DefaultConcurrency slots. Hashers that share
	// one share the bound.
	Slots *semaphore.Weighted
	// Wait is the longest a call waits for a slot before it gives up with
	// ErrBusy; 0 means DefaultWait.
	Wait time.Duration
	// ObserveWait, if set, is told how long each call waited for a slot (0 when one was free
	// at once; the whole wait when it gave up), for metrics.
	ObserveWait func(time.Duration)
}

// Hasher hashes and verifies passwords within a Limit. It is safe for concurrent use.
type Hasher struct {
	params Params
	maxima Params // Argon2Maxima(params): the costs Verify accepts
	dummy  string // a hash made with params, for VerifyDummy
	slots  *semaphore.Weighted
	wait   time.Duration
	// observeWait is Limit.ObserveWait.
	observeWait func(time.Duration)
	onSlot      func(held bool) // tests only: called after taking a slot (true) and before giving it back
}

// NewHasher returns a Hasher that hashes with p within the limit l (the zero
// Limit for the defaults) and precomputes a dummy hash with p. It panics if p
// is outside the limits Verify accepts, since hashes made with such params
// could never be verified again.
func NewHasher(p Params, l Limit) *Hasher {
	if err := p.Check(); err != nil {
		panic("password: invalid params: " + err.Error())
	}
	h := &Hasher{params: p, maxima: Argon2Maxima(p), slots: l.Slots, wait: l.Wait, observeWait: l.ObserveWait}
	if h.slots == nil {
		h.slots = semaphore.NewWeighted(int64(DefaultConcurrency()))
	}
	if h.wait <= 0 {
		h.wait = DefaultWait
	}
	// Made without a slot: a Hasher under construction is not yet shared, and
	// a slot could be held elsewhere for longer than anyone would wait here.
	dummy, err := h.hash("dummy password for unknown users")
	if err != nil {
		panic("password: " + err.Error())
	}
	h.dummy = dummy
	return h
}

// Wait is the longest a call waits for a slot, so a caller refused with
// ErrBusy can say when to try again.
func (h *Hasher) Wait() time.Duration { return h.wait }

// acquire takes a slot, waiting at most h.wait; the caller must call release. A free slot
// is taken at once, however short the wait; a caller whose ctx has ended gets none.
func (h *Hasher) acquire(ctx context.Context) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBusy, err)
	}
	if !h.slots.TryAcquire(1) {
		if err := h.waitForSlot(ctx); err != nil {
			return nil, err
		}
	} else if h.observeWait != nil {
		h.observeWait(0)
	}
	if h.onSlot == nil {
		return func() { h.slots.Release(1) }, nil
	}
	h.onSlot(true)
	return func() { h.onSlot(false); h.slots.Release(1) }, nil
}

// waitForSlot takes a slot once one comes free, within h.wait.
func (h *Hasher) waitForSlot(ctx context.Context) error {
	// start before the deadline is set, so a call that gave up observes at least h.wait.
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, h.wait)
	defer cancel()
	err := h.slots.Acquire(wctx, 1)
	if h.observeWait != nil {
		h.observeWait(time.Since(start))
	}
	if err != nil {
		return fmt.Errorf("%w: no slot within %v: %w", ErrBusy, h.wait, err)
	}
	return nil
}

// Hash returns a PHC string: $argon2id$v=19$m=19456,t=2,p=1$<b64 salt no padding>$<b64 hash no padding>.
// It returns ErrBusy when no slot comes free in time.
func (h *Hasher) Hash(ctx context.Context, plain string) (string, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return h.hash(plain)
}

func (h *Hasher) hash(plain string) (string, error) {
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
// is in none of these formats or malformed gives false and an error wrapping
// ErrUnknownFormat; one whose costs are above the maxima gives false and
// ErrCostTooHigh. Both are found before a slot is taken, and nothing is hashed.
// When no slot comes free in time it returns false and ErrBusy.
func (h *Hasher) Verify(ctx context.Context, plain, encoded string) (bool, error) {
	check, err := h.parse(encoded)
	if err != nil {
		return false, err
	}
	release, err := h.acquire(ctx)
	if err != nil {
		return false, err
	}
	defer release()
	return check(plain)
}

// parse reads encoded and returns the check of a password against it, which does the costly
// hashing, or why it cannot: ErrUnknownFormat, or ErrCostTooHigh against h's maxima.
func (h *Hasher) parse(encoded string) (func(plain string) (bool, error), error) {
	return parse(encoded, h.maxima)
}

// parse is Hasher.parse with the argon2id maxima given.
func parse(encoded string, maxima Params) (func(plain string) (bool, error), error) {
	if len(encoded) > maxEncodedLen {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrUnknownFormat, maxEncodedLen)
	}
	if !strings.HasPrefix(encoded, "$argon2") {
		return parseImported(encoded)
	}
	d, err := decode(encoded)
	if err != nil {
		return nil, err
	}
	if err := checkArgon2Costs(d.params, maxima); err != nil {
		return nil, err
	}
	return func(plain string) (bool, error) {
		key := argon2.IDKey([]byte(plain), d.salt, d.params.Iterations, d.params.Memory, d.params.Parallelism, d.params.KeyLength)
		return subtle.ConstantTimeCompare(key, d.key) == 1, nil
	}, nil
}

// VerifyDummy spends the same time and takes a slot the same way as a Verify
// against a real hash, so unknown usernames take as long as wrong passwords
// and are refused with ErrBusy alike. Its only error is ErrBusy.
func (h *Hasher) VerifyDummy(ctx context.Context, plain string) error {
	_, err := h.Verify(ctx, plain, h.dummy)
	if errors.Is(err, ErrBusy) {
		return err
	}
	return nil
}

// CheckFormat reports whether Verify can read encoded, without hashing anything: nil for an
// argon2id PHC string or an imported format Verify reads, else an error wrapping
// ErrUnknownFormat that says why not (a Django unusable password, an unsupported hasher, a
// malformed hash), or ErrCostTooHigh for costs above the maxima (for argon2id, those of a
// Hasher at DefaultParams). Errors do not quote the hash.
func CheckFormat(encoded string) error {
	_, err := parse(encoded, Argon2Maxima(DefaultParams()))
	return err
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

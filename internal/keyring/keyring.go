// Package keyring keeps the signing keys: it creates, lists and rotates them in the store
// (with the publish-ahead schedule that logs nobody out), encrypts them at rest, and loads the
// ones in use into the token Manager, reloading them so that every instance sharing the
// database follows a rotation.
package keyring

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
)

// Signing key lifecycle
//
// Keys live in the store, so every instance sharing the database signs and
// verifies alike. A key added by Rotate is published at once (in every
// instance's JWKS within one reload interval) but signs only from
// CreatedAt + Options.PublishAhead: by then every instance has loaded it
// and every relying party's cached JWKS (JWKSCacheTime) has expired, so no
// token of it is ever rejected for an unknown kid. The oldest key signs at
// once (so if instances starting on an empty store each create a first key,
// they all sign with the same one).
//
// A key added by RotateNow instead stores when it signs, its CreatedAt:
// each instance signs with it as soon as it loads it, within one reload
// interval, and an instance that meets a token naming a kid it has not
// loaded reloads at once (at most once per DemandReloadGap), so instances
// never refuse each other's tokens. Relying parties whose cached JWKS lacks
// it see an unknown kid until they refetch; that is the price of not
// waiting PublishAhead, paid when a key is compromised.
//
// The newest key whose time has come signs. The keys before it are
// superseded; each keeps verifying, and stays in the JWKS, until every token
// it signed has expired. The last of those may be signed when the first newer
// key takes over on every instance: at its SignsFrom, or one ReloadInterval
// after its creation if that is later (every instance must have loaded it).
// So a superseded key verifies until then plus Options.Retention (the
// longest token lifetime) plus keyClockSkew. After that it is expired: left
// out of the token.Manager and deleted by the next rotation. A key that was
// still pending when a later RotateNow key took over never signs on an
// instance that loaded both, but one that loaded it alone may have signed
// with it, so it verifies on the same terms.
//
// A Ring reloads the keys every ReloadInterval (DefaultReloadInterval),
// which is how a rotation made by another process reaches a running server.
// Every instance derives the same schedule from the stored CreatedAt and
// SignsFrom, given the same Retention and ReloadInterval.

// DefaultReloadInterval is how often a Ring reloads the signing keys
// when Options.ReloadInterval is zero.
const DefaultReloadInterval = 30 * time.Second

// keyClockSkew allows for clocks that differ between instances and the host
// running "authapi keys rotate".
const keyClockSkew = time.Minute

// JWKSCacheTime is how long relying parties may cache the JWKS: the server
// sends it as the max-age of GET /.well-known/jwks.json. A new key is
// published longer than that before it signs.
const JWKSCacheTime = 5 * time.Minute

// Options configure the signing keys of New, List and
// Rotate. Give every instance and the CLI the same Retention and
// ReloadInterval: they decide when a key signs and when it may be dropped.
type Options struct {
	// Algorithm is that of the key New creates on an empty store and
	// of the key Rotate adds: token.EdDSA (the default), ES256 or RS256.
	Algorithm string
	// Secret, if set, encrypts new private keys at rest (see token.SealKey)
	// and is required to read encrypted ones. Plaintext keys stay readable.
	Secret []byte
	// Retention is the longest lifetime of a token: a token signed at t
	// expires by t + Retention. Required.
	Retention time.Duration
	// ReloadInterval is how often Ring.Run reloads; zero means
	// DefaultReloadInterval.
	ReloadInterval time.Duration
	// Now is the clock; nil means the token.Config's clock, else time.Now.
	Now func() time.Time
	// Logger receives reload failures and key changes; nil discards.
	Logger *slog.Logger
}

func (o Options) withDefaults() (Options, error) {
	o.Algorithm = cmp.Or(o.Algorithm, token.EdDSA)
	if !token.ValidAlgorithm(o.Algorithm) {
		return o, fmt.Errorf("unknown signing algorithm %q", o.Algorithm)
	}
	if len(o.Secret) > 0 && len(o.Secret) < token.MinSecretSize {
		return o, fmt.Errorf("secret key is %d bytes, want at least %d", len(o.Secret), token.MinSecretSize)
	}
	if o.Retention <= 0 {
		return o, errors.New("key retention must be positive")
	}
	if o.ReloadInterval < 0 {
		return o, errors.New("key reload interval must not be negative")
	}
	o.ReloadInterval = cmp.Or(o.ReloadInterval, DefaultReloadInterval)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// PublishAhead is how long a rotated key is published before it signs: one
// reload interval for every instance to load it, the JWKS cache lifetime
// for relying parties to see it, and a minute of clock skew.
func (o Options) PublishAhead() time.Duration {
	return cmp.Or(o.ReloadInterval, DefaultReloadInterval) + JWKSCacheTime + keyClockSkew
}

// retain is how long a superseded key keeps verifying.
func (o Options) retain() time.Duration {
	return o.Retention + keyClockSkew
}

// State is where a key is in its life.
type State string

// Key states.
const (
	KeyPending   State = "pending"   // published and verifying; signs from SignsFrom
	KeySigning   State = "signing"   // the newest key whose SignsFrom has come
	KeyVerifying State = "verifying" // superseded: verifies until VerifiesUntil
	KeyExpired   State = "expired"   // past VerifiesUntil: unused, deleted by the next rotation
)

// Info describes a stored signing key, without its private part.
type Info struct {
	ID, Algorithm string
	CreatedAt     time.Time
	// SignsFrom is when it begins to sign: as stored for a key of RotateNow
	// (its CreatedAt), else zero for the first key and CreatedAt +
	// PublishAhead for the others. A key superseded while pending never signs.
	SignsFrom     time.Time
	State         State
	VerifiesUntil time.Time // set once superseded (KeyVerifying, KeyExpired)
	Encrypted     bool      // the private key is encrypted at rest
}

// classify sorts stored oldest first and tells each key's schedule and state
// at now.
func classify(stored []store.SigningKey, now time.Time, opts Options) []Info {
	stored = slices.Clone(stored)
	slices.SortFunc(stored, func(a, b store.SigningKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	infos := make([]Info, len(stored))
	signer := 0
	for i, k := range stored {
		infos[i] = Info{ID: k.ID, Algorithm: k.Algorithm, CreatedAt: k.CreatedAt, Encrypted: token.Sealed(tokenKey(k))}
		switch {
		case k.SignsFrom != nil:
			infos[i].SignsFrom = *k.SignsFrom
		case i > 0:
			infos[i].SignsFrom = k.CreatedAt.Add(opts.PublishAhead())
		}
		// The newest key whose time has come signs, as in token.Manager. A
		// stored SignsFrom may come before that of an older pending key,
		// which then never signs.
		if !infos[i].SignsFrom.After(now) {
			signer = i
		}
	}
	// handover is when the first key newer than i has taken over on every
	// instance: the last moment one may sign with i.
	var handover time.Time
	for i := len(infos) - 1; i >= 0; i-- {
		switch {
		case i > signer:
			infos[i].State = KeyPending
		case i == signer:
			infos[i].State = KeySigning
		default:
			infos[i].VerifiesUntil = handover.Add(opts.retain())
			infos[i].State = KeyVerifying
			if !now.Before(infos[i].VerifiesUntil) {
				infos[i].State = KeyExpired
			}
		}
		loaded := infos[i].CreatedAt.Add(cmp.Or(opts.ReloadInterval, DefaultReloadInterval))
		if h := later(infos[i].SignsFrom, loaded); i == len(infos)-1 || h.Before(handover) {
			handover = h
		}
	}
	return infos
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func tokenKey(k store.SigningKey) token.Key {
	return token.Key{ID: k.ID, Algorithm: k.Algorithm, Private: k.Private, CreatedAt: k.CreatedAt}
}

func storeKey(k token.Key) store.SigningKey {
	return store.SigningKey{ID: k.ID, Algorithm: k.Algorithm, Private: k.Private, CreatedAt: k.CreatedAt}
}

// newKey generates a key for alg, encrypted under secret if there is one,
// and stores it, with the audit events, if any, of its creation; if immediate, with its
// CreatedAt as the time it signs from.
func newKey(ctx context.Context, st *store.Store, alg string, secret []byte, now time.Time, immediate bool, events ...store.AuditEvent) (token.Key, error) {
	// The store keeps microseconds: create the key with the time it will read back.
	k, err := token.GenerateKey(alg, now.UTC().Truncate(time.Microsecond))
	if err != nil {
		return token.Key{}, fmt.Errorf("generate signing key: %w", err)
	}
	sealed := k
	if len(secret) > 0 {
		if sealed, err = token.SealKey(secret, k); err != nil {
			return token.Key{}, err
		}
	}
	sk := storeKey(sealed)
	if immediate {
		sk.SignsFrom = &sk.CreatedAt
	}
	if err := st.CreateSigningKey(ctx, sk, events...); err != nil {
		return token.Key{}, fmt.Errorf("save signing key: %w", err)
	}
	return k, nil
}

// storedKeys reads the keys, creating the first on an empty store.
func storedKeys(ctx context.Context, st *store.Store, alg string, secret []byte, now time.Time) ([]store.SigningKey, error) {
	stored, err := st.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	if len(stored) > 0 {
		return stored, nil
	}
	if _, err := newKey(ctx, st, alg, secret, now, false); err != nil {
		return nil, err
	}
	// Read back: another instance may have created a key at the same moment.
	if stored, err = st.SigningKeys(ctx); err != nil {
		return nil, fmt.Errorf("load signing keys: %w", err)
	}
	return stored, nil
}

// SigningKeys loads every signing key from the database, creating the first key for alg on an
// empty database. It neither drops expired keys nor reads encrypted ones: servers use
// New, which does both and follows rotations.
func SigningKeys(ctx context.Context, st *store.Store, alg string, now time.Time) ([]token.Key, error) {
	stored, err := storedKeys(ctx, st, alg, nil, now)
	if err != nil {
		return nil, err
	}
	keys := make([]token.Key, 0, len(stored))
	for _, k := range stored {
		tk, err := token.OpenKey(nil, tokenKey(k))
		if err != nil {
			return nil, err
		}
		keys = append(keys, tk)
	}
	return keys, nil
}

// List returns every stored key, oldest first, with its state now. It
// reads no private key, so it needs no Secret.
func List(ctx context.Context, st *store.Store, opts Options) ([]Info, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	stored, err := st.SigningKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	return classify(stored, opts.Now(), opts), nil
}

// Rotation is what Rotate or RotateNow did.
type Rotation struct {
	New       Info     // the new key: KeyPending unless it is the first or of RotateNow
	Encrypted []string // IDs of plaintext keys it encrypted at rest
	Deleted   []string // IDs of expired keys it deleted
}

// Rotate adds a new signing key for opts.Algorithm. Instances publish it
// within ReloadInterval and sign with it from New.SignsFrom (PublishAhead
// later); tokens of the older keys keep verifying until they expire. With a
// Secret, the new key is encrypted at rest and so are plaintext keys still in
// use. Expired keys are deleted.
//
// Rotate first checks that every key in use can be read: without a
// Secret it refuses to add a plaintext key beside encrypted ones
// (token.ErrSecretRequired), and it rejects a Secret that does not open them
// (token.ErrWrongSecret), since servers could not read the new key either.
//
// events are the audit events of the rotation (audit.KeyRotated), written with the new key
// in one transaction; the store sets their KeyID.
func Rotate(ctx context.Context, st *store.Store, opts Options, events ...store.AuditEvent) (Rotation, error) {
	return rotateKey(ctx, st, opts, false, events)
}

// RotateNow is Rotate for a key that signs at once, as when the signing
// key is compromised: every instance signs with it from its next reload,
// within ReloadInterval, instead of after PublishAhead. Until a relying party
// refetches the JWKS it may find the new kid unknown (clients such as jose's
// createRemoteJWKSet refetch when they meet one). The older keys keep
// verifying until every token they signed has expired, as after Rotate:
// nobody is logged out, and nothing is revoked.
func RotateNow(ctx context.Context, st *store.Store, opts Options, events ...store.AuditEvent) (Rotation, error) {
	return rotateKey(ctx, st, opts, true, events)
}

func rotateKey(ctx context.Context, st *store.Store, opts Options, immediate bool, events []store.AuditEvent) (Rotation, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Rotation{}, err
	}
	stored, err := st.SigningKeys(ctx)
	if err != nil {
		return Rotation{}, fmt.Errorf("rotate signing key: %w", err)
	}
	now := opts.Now()
	infos := classify(stored, now, opts)
	byID := make(map[string]store.SigningKey, len(stored))
	for _, k := range stored {
		byID[k.ID] = k
	}
	var plaintext []token.Key
	for _, info := range infos {
		if info.State == KeyExpired {
			continue
		}
		k, err := token.OpenKey(opts.Secret, tokenKey(byID[info.ID]))
		if err != nil {
			return Rotation{}, fmt.Errorf("rotate signing key: %w", err)
		}
		if len(opts.Secret) > 0 && !info.Encrypted {
			plaintext = append(plaintext, k)
		}
	}

	k, err := newKey(ctx, st, opts.Algorithm, opts.Secret, now, immediate, events...)
	if err != nil {
		return Rotation{}, fmt.Errorf("rotate signing key: %w", err)
	}
	rot := Rotation{New: Info{
		ID: k.ID, Algorithm: k.Algorithm, CreatedAt: k.CreatedAt, State: KeySigning, Encrypted: len(opts.Secret) > 0,
	}}
	switch {
	case immediate:
		rot.New.SignsFrom = k.CreatedAt
	case len(stored) > 0:
		rot.New.SignsFrom, rot.New.State = k.CreatedAt.Add(opts.PublishAhead()), KeyPending
	}
	for _, k := range plaintext {
		sealed, err := token.SealKey(opts.Secret, k)
		if err != nil {
			return rot, fmt.Errorf("encrypt signing key %q: %w", k.ID, err)
		}
		err = st.SetSigningKeyPrivate(ctx, k.ID, sealed.Private)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile by another rotation
		}
		if err != nil {
			return rot, fmt.Errorf("encrypt signing key %q: %w", k.ID, err)
		}
		rot.Encrypted = append(rot.Encrypted, k.ID)
	}
	for _, info := range infos {
		if info.State != KeyExpired {
			continue
		}
		err := st.DeleteSigningKey(ctx, info.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return rot, fmt.Errorf("delete expired signing key %q: %w", info.ID, err)
		}
		rot.Deleted = append(rot.Deleted, info.ID)
	}
	return rot, nil
}

// Ring keeps a token.Manager's keys in step with the store: the keys not
// expired, decrypted, each with its SignFrom. It is safe for concurrent use.
type Ring struct {
	st      *store.Store
	opts    Options
	manager *token.Manager

	mu         sync.Mutex  // serialises reloads, guards what follows
	loaded     []string    // IDs of the keys in the Manager, oldest first
	signsFrom  []time.Time // when each of them signs from
	lastReload time.Time   // of the last successful load, on opts.Now

	demandMu   sync.Mutex // serialises reloads for unknown kids
	lastDemand time.Time  // when the last of them ran

	set atomic.Pointer[token.SETSigner] // the SET key, once loaded (see set.go)
}

// DemandReloadGap is how often, at most, a token naming an unknown kid makes a Ring reload
// its keys before its next scheduled reload.
const DemandReloadGap = time.Second

// New loads the signing keys, creating the first one for
// opts.Algorithm on an empty store, and returns a Ring whose Manager
// (configured by cfg) holds them. An encrypted key without opts.Secret fails
// with token.ErrSecretRequired, one that the Secret does not open with
// token.ErrWrongSecret. The Manager and the ring share a clock: opts.Now or
// else cfg.Now.
func New(ctx context.Context, st *store.Store, cfg token.Config, opts Options) (*Ring, error) {
	if opts.Now == nil {
		opts.Now = cfg.Now
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg.Now = opts.Now
	r := &Ring{st: st, opts: opts}
	cfg.UnknownKey = r.reloadForUnknown
	stored, err := storedKeys(ctx, st, opts.Algorithm, opts.Secret, opts.Now())
	if err != nil {
		return nil, err
	}
	keys, err := r.inUse(stored)
	if err != nil {
		return nil, err
	}
	if r.manager, err = token.NewManager(cfg, keys); err != nil {
		return nil, err
	}
	r.setLoaded(keys)
	// A restarted instance publishes the SET key at once, not at its first reload: a receiver
	// that fetches the JWKS from it must verify the SETs the other instances sign.
	if _, err := r.loadSET(ctx); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	opts.Logger.Info("signing keys loaded", "kids", r.loaded, "reload_interval", opts.ReloadInterval.String())
	return r, nil
}

// Manager returns the token manager whose keys the ring maintains.
func (r *Ring) Manager() *token.Manager { return r.manager }

// List is List with the ring's options.
func (r *Ring) List(ctx context.Context) ([]Info, error) { return List(ctx, r.st, r.opts) }

// Rotate adds a signing key for alg (the ring's Algorithm when empty) with the ring's
// options, as Rotate does, or as RotateNow does when now is set. It then reloads the ring, so
// that this instance publishes the new key (and, with now, signs with it) at once; the other
// instances follow within their reload interval. A failed reload is logged, not returned:
// the key is stored, and Run reloads again. events are the rotation's audit events, written
// with the new key as Rotate writes them.
func (r *Ring) Rotate(ctx context.Context, alg string, now bool, events ...store.AuditEvent) (Rotation, error) {
	opts := r.opts
	opts.Algorithm = cmp.Or(alg, opts.Algorithm)
	rot, err := rotateKey(ctx, r.st, opts, now, events)
	if rot.New.ID == "" {
		return rot, err
	}
	if rerr := r.Reload(ctx); rerr != nil {
		r.opts.Logger.Error("reload signing keys after a rotation", "kid", rot.New.ID, "err", rerr)
	}
	return rot, err
}

// inUse opens the keys that are not expired.
func (r *Ring) inUse(stored []store.SigningKey) ([]token.Key, error) {
	byID := make(map[string]store.SigningKey, len(stored))
	for _, k := range stored {
		byID[k.ID] = k
	}
	var keys []token.Key
	for _, info := range classify(stored, r.opts.Now(), r.opts) {
		if info.State == KeyExpired {
			continue
		}
		k, err := token.OpenKey(r.opts.Secret, tokenKey(byID[info.ID]))
		if err != nil {
			return nil, fmt.Errorf("load signing keys: %w", err)
		}
		k.SignFrom = info.SignsFrom
		keys = append(keys, k)
	}
	return keys, nil
}

func keyIDs(keys []token.Key) []string {
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return ids
}

// Reload reads the keys from the store and gives the Manager those not
// expired. On error the Manager keeps its keys.
func (r *Ring) Reload(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	stored, err := r.st.SigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("reload signing keys: %w", err)
	}
	if len(stored) == 0 {
		return errors.New("reload signing keys: the store has none")
	}
	keys, err := r.inUse(stored)
	if err != nil {
		return err
	}
	if err := r.manager.SetKeys(keys); err != nil {
		return fmt.Errorf("reload signing keys: %w", err)
	}
	if ids := keyIDs(keys); !slices.Equal(ids, r.loaded) {
		r.opts.Logger.Info("signing keys changed", "kids", ids, "newest_signs_from", keys[len(keys)-1].SignFrom)
	}
	r.setLoaded(keys)
	// The SET key another instance created reaches this one's JWKS here.
	if _, err := r.loadSET(ctx); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// setLoaded records what the Manager now holds; r.mu is held (or r not yet shared).
func (r *Ring) setLoaded(keys []token.Key) {
	r.loaded = keyIDs(keys)
	r.signsFrom = r.signsFrom[:0]
	for _, k := range keys {
		r.signsFrom = append(r.signsFrom, k.SignFrom)
	}
	r.lastReload = r.opts.Now()
}

// Status is what a Ring holds, for monitoring.
type Status struct {
	Loaded int // keys in the Manager: signing, pending and verifying
	// NextSignsFrom is when the next pending key starts signing; zero when none is pending.
	NextSignsFrom time.Time
	LastReload    time.Time // when the keys were last loaded from the store
	Now           time.Time // the ring's clock when Status was taken
}

// Status reports the keys loaded and the next one to sign.
func (r *Ring) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Status{Loaded: len(r.loaded), LastReload: r.lastReload, Now: r.opts.Now()}
	// Only keys newer than the signer will sign (see classify): an older pending key never does.
	signer := 0
	for i, from := range r.signsFrom {
		if !from.After(st.Now) {
			signer = i
		}
	}
	for _, from := range r.signsFrom[signer+1:] {
		if st.NextSignsFrom.IsZero() || from.Before(st.NextSignsFrom) {
			st.NextSignsFrom = from
		}
	}
	return st
}

// reloadForUnknown reloads the keys because a token named a kid the ring has not loaded. After
// "keys rotate --now", the instances that have reloaded sign with the new key while the others
// would refuse its tokens until their next reload; this way they load it at its first token.
// Tokens with made-up kids cost at most one reload per DemandReloadGap: within the gap the
// kid is looked up among the keys as they are.
func (r *Ring) reloadForUnknown(string) {
	r.demandMu.Lock()
	defer r.demandMu.Unlock()
	now := r.opts.Now()
	if !r.lastDemand.IsZero() && now.Sub(r.lastDemand) < DemandReloadGap {
		return
	}
	r.lastDemand = now
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Reload(ctx); err != nil {
		r.opts.Logger.Error("reload signing keys for an unknown kid", "err", err)
	}
}

// Run reloads the keys every ReloadInterval until ctx is done, logging
// failures; the Manager keeps its keys through them. Reloading also drops
// keys as they expire.
func (r *Ring) Run(ctx context.Context) {
	tick := time.NewTicker(r.opts.ReloadInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if err := r.Reload(ctx); err != nil && ctx.Err() == nil {
			r.opts.Logger.Error("reload signing keys", "err", err)
		}
	}
}

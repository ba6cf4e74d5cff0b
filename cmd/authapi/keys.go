package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/keyring"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/token"
)

const keysUsage = `usage: authapi keys <list|rotate|encrypt|reencrypt> [flags]

  list    list the signing keys: kid, algorithm, creation time, whether the
          private key is encrypted at rest, and state: pending (published,
          signs from a time), signing, verifying until a time, or expired
  rotate  add a new signing key (printed as "kid alg" on stdout), encrypt
          plaintext keys in use when AUTHAPI_SECRET_KEY is set, and delete
          expired keys; with --now the new key signs at once
  encrypt   encrypt every plaintext key with AUTHAPI_SECRET_KEY; a second
            run changes nothing
  reencrypt change every key from the old secret (AUTHAPI_OLD_SECRET_KEY or
            --old-secret) to AUTHAPI_SECRET_KEY, all or none; keys already
            under AUTHAPI_SECRET_KEY stay as they are

Running servers reload the keys every --key-reload-interval
(AUTHAPI_KEY_RELOAD_INTERVAL, default 30s). A new key is in every server's
JWKS within that interval, and signs once every server and every JWKS cache
(5 minutes) has it: the reload interval plus 6 minutes after "rotate". The key
it supersedes keeps verifying, and stays in the JWKS, until every token it
signed has expired: for the longest token lifetime plus a minute. Nobody is
logged out. Give these commands the same lifetimes and reload interval as
"authapi serve".

"rotate --now" is for a compromised key, or whenever the new key must sign
at once: every server signs with it from its next reload, within the reload
interval. Relying parties that cached the JWKS before it may reject its
tokens as signed by an unknown kid until they refetch (jose's
createRemoteJWKSet refetches on an unknown kid; others may wait out the 5
minute cache). The older keys still verify until every token they signed has
expired, as above: nobody is logged out, and a compromised key is not
revoked by rotating.

Private keys are encrypted at rest (AES-256-GCM) when AUTHAPI_SECRET_KEY is
set: at least 32 random bytes, e.g. "openssl rand -base64 32". It is read
from the environment only, and needed wherever keys are read (serve, rotate).
Keys stored before it was set stay readable, and serve warns of them at
every start: "encrypt" encrypts them. After "encrypt" or "reencrypt", restart
every server with the new AUTHAPI_SECRET_KEY: a server started without it (or
with the old one) keeps the keys it has loaded but cannot reload them. Tokens
issued before stay valid: the keys are the same.

Run "authapi keys <list|rotate|encrypt|reencrypt> -h" for the flags.
`

// secretEnv holds the secret that encrypts private keys at rest. It has no flag, so that it
// never shows in ps(1) or shell history.
const secretEnv = "AUTHAPI_SECRET_KEY"

// oldSecretEnv is the secret "keys reencrypt" changes the keys from.
const oldSecretEnv = "AUTHAPI_OLD_SECRET_KEY"

// keysCommand runs "authapi keys list" and "authapi keys rotate".
func keysCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysUsage)
		return errUsage
	}
	switch args[0] {
	case "list":
		return keysList(ctx, args[1:], getenv, stdout, stderr)
	case "rotate":
		return keysRotate(ctx, args[1:], getenv, stdout, stderr)
	case "encrypt":
		return keysEncrypt(ctx, args[1:], getenv, stdout, stderr)
	case "reencrypt":
		return keysReencrypt(ctx, args[1:], getenv, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, keysUsage)
		return nil
	}
	fmt.Fprintf(stderr, "authapi keys: unknown subcommand %q\n\n%s", args[0], keysUsage)
	return errUsage
}

// keyFlags are the settings both keys subcommands need to tell a key's state.
type keyFlags struct {
	db                            string
	accessTTL, refreshTTL, reload time.Duration
}

func (k *keyFlags) register(f *flags) {
	f.db(&k.db)
	f.duration(&k.accessTTL, "access-token-lifetime", "AUTHAPI_ACCESS_TOKEN_LIFETIME", 15*time.Minute, "access token lifetime, as given to serve")
	f.duration(&k.refreshTTL, "refresh-token-lifetime", "AUTHAPI_REFRESH_TOKEN_LIFETIME", time.Hour, "refresh token (and session) lifetime, as given to serve")
	keyReloadFlag(f, &k.reload)
}

// keyReloadFlag is --key-reload-interval, for serve and keys alike.
func keyReloadFlag(f *flags, p *time.Duration) {
	f.duration(p, "key-reload-interval", "AUTHAPI_KEY_RELOAD_INTERVAL", keyring.DefaultReloadInterval,
		"how often a server reloads the signing keys, picking up rotations by other processes")
}

// keyOptions are the signing-key settings serve and keys share. alg is the algorithm of a new
// key; the retention is the longest of lifetimes.
func keyOptions(getenv func(string) string, alg string, reload time.Duration, log *slog.Logger, lifetimes ...time.Duration) (keyring.Options, error) {
	if !token.ValidAlgorithm(alg) {
		return keyring.Options{}, fmt.Errorf("unknown signing algorithm %q: want EdDSA, ES256 or RS256", alg)
	}
	if reload <= 0 {
		return keyring.Options{}, fmt.Errorf("key reload interval must be positive, got %v", reload)
	}
	secret := getenv(secretEnv)
	if secret != "" && len(secret) < token.MinSecretSize {
		return keyring.Options{}, fmt.Errorf("%s must be at least %d bytes of random text (e.g. openssl rand -base64 32)", secretEnv, token.MinSecretSize)
	}
	opts := keyring.Options{Algorithm: alg, ReloadInterval: reload, Logger: log}
	if secret != "" {
		opts.Secret = []byte(secret)
	}
	if len(lifetimes) > 0 {
		opts.Retention = slices.Max(lifetimes)
	}
	return opts, nil
}

// keyError names the environment variable to fix when the keys cannot be decrypted.
func keyError(err error) error {
	switch {
	case errors.Is(err, token.ErrSecretRequired):
		return fmt.Errorf("%s is required to read signing keys: %w", secretEnv, err)
	case errors.Is(err, token.ErrWrongSecret):
		return fmt.Errorf("%s does not decrypt the signing keys (it must be the secret they were encrypted with): %w", secretEnv, err)
	}
	return err
}

func keysList(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var k keyFlags
	f := newFlags("keys list", getenv, stderr)
	k.register(f)
	if err := f.parse(args); err != nil {
		return err
	}
	opts, err := keyOptions(getenv, token.EdDSA, k.reload, nil, k.accessTTL, k.refreshTTL)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, k.db)
	if err != nil {
		return err
	}
	defer st.Close()
	infos, err := keyring.List(ctx, st, opts)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "KID\tALG\tCREATED\tAT REST\tSTATE")
	for _, info := range infos {
		rest := "plaintext"
		if info.Encrypted {
			rest = "encrypted"
		}
		state := string(info.State)
		switch info.State {
		case keyring.KeyPending:
			state += ", signs from " + formatTime(info.SignsFrom)
		case keyring.KeyVerifying:
			state += " until " + formatTime(info.VerifiesUntil)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", info.ID, info.Algorithm, formatTime(info.CreatedAt), rest, state)
	}
	return tw.Flush()
}

func keysRotate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var (
		k   keyFlags
		alg string
		now bool
	)
	f := newFlags("keys rotate", getenv, stderr)
	k.register(f)
	f.string(&alg, "alg", "AUTHAPI_SIGNING_ALG", token.EdDSA, "algorithm of the new key: EdDSA, ES256 or RS256")
	// No environment variable: an emergency rotation is asked for each time, never inherited.
	f.BoolVar(&now, "now", false, "sign with the new key as soon as each server reloads, without waiting for JWKS caches to expire\n"+
		"(relying parties may meet an unknown kid until they refetch the JWKS)")
	if err := f.parse(args); err != nil {
		return err
	}
	opts, err := keyOptions(getenv, alg, k.reload, nil, k.accessTTL, k.refreshTTL)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, k.db)
	if err != nil {
		return err
	}
	defer st.Close()
	rotate := keyring.Rotate
	if now {
		rotate = keyring.RotateNow
	}
	rot, err := rotate(ctx, st, opts, audit.CLI("keys rotate").Event(audit.KeyRotated))
	// Report what was done even if a later step failed.
	if rot.New.ID != "" {
		fmt.Fprintf(stdout, "%s %s\n", rot.New.ID, rot.New.Algorithm)
		switch {
		case rot.New.State == keyring.KeyPending:
			fmt.Fprintf(stderr, "created signing key %s (%s): servers publish it within %v and sign with it from %s\n",
				rot.New.ID, rot.New.Algorithm, k.reload, formatTime(rot.New.SignsFrom))
		case now:
			fmt.Fprintf(stderr, "created signing key %s (%s): servers sign with it from their next reload, within %v\n"+
				"note: relying parties that cached the JWKS before now may reject its tokens (unknown kid) until they refetch it;\n"+
				"      the older keys still verify until their tokens expire\n",
				rot.New.ID, rot.New.Algorithm, k.reload)
		default:
			fmt.Fprintf(stderr, "created signing key %s (%s), the first: it signs at once\n", rot.New.ID, rot.New.Algorithm)
		}
	}
	for _, id := range rot.Encrypted {
		fmt.Fprintf(stderr, "encrypted signing key %s at rest\n", id)
	}
	for _, id := range rot.Deleted {
		fmt.Fprintf(stderr, "deleted expired signing key %s\n", id)
	}
	return keyError(err)
}

func keysEncrypt(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var db string
	f := newFlags("keys encrypt", getenv, stderr)
	f.db(&db)
	if err := f.parse(args); err != nil {
		return err
	}
	secret, err := requiredSecret(getenv(secretEnv), secretEnv)
	if err != nil {
		return err
	}
	st, err := openStore(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	printStoreWarnings(stderr, st)
	// A key sealed already must open with the secret: servers given it could not read it
	// otherwise. Refusing it changes no key.
	changed, err := keyring.Encrypt(ctx, st, secret)
	err = keyError(err)
	if err := reportSealed(stdout, stderr, changed, err, "encrypted",
		"restart every server with this "+secretEnv+": one without it keeps its loaded keys but cannot reload them"); err != nil {
		return err
	}
	// The TOTP secrets after the keys: a run again after a failure here skips what is done.
	n, err := keyring.EncryptTOTP(ctx, st, secret)
	return reportTOTPSealed(stdout, n, err, "encrypted")
}

// reportTOTPSealed tells how many TOTP secrets keys encrypt or reencrypt changed.
func reportTOTPSealed(stdout io.Writer, n int, err error, done string) error {
	if err != nil {
		return fmt.Errorf("no TOTP secret changed (run the command again once fixed): %w", err)
	}
	if n > 0 {
		fmt.Fprintf(stdout, "%s %d TOTP secrets with %s\n", done, n, secretEnv)
	}
	return nil
}

// reportSealed tells what keys encrypt or reencrypt did: the keys it changed (done says how),
// or that nothing changed, and what the operator must do next.
func reportSealed(stdout, stderr io.Writer, changed []string, err error, done, next string) error {
	if err != nil {
		return fmt.Errorf("no key changed: %w", err)
	}
	for _, id := range changed {
		fmt.Fprintf(stdout, "%s signing key %s with %s\n", done, id, secretEnv)
	}
	if len(changed) == 0 {
		fmt.Fprintf(stdout, "every signing key is already encrypted with %s: nothing changed\n", secretEnv)
		return nil
	}
	fmt.Fprintln(stderr, next)
	return nil
}

func keysReencrypt(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var db, oldFlag string
	f := newFlags("keys reencrypt", getenv, stderr)
	f.db(&db)
	// The default is not taken from the environment, so that -h never prints the secret.
	f.StringVar(&oldFlag, "old-secret", "", "the secret the keys are encrypted with now (prefer "+oldSecretEnv+": a flag shows in ps(1))")
	if err := f.parse(args); err != nil {
		return err
	}
	secret, err := requiredSecret(getenv(secretEnv), secretEnv)
	if err != nil {
		return err
	}
	old, err := requiredSecret(cmp.Or(oldFlag, getenv(oldSecretEnv)), oldSecretEnv+" (or --old-secret)")
	if err != nil {
		return err
	}
	if string(old) == string(secret) {
		return fmt.Errorf("the old secret and %s are the same: nothing to change", secretEnv)
	}
	st, err := openStore(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	printStoreWarnings(stderr, st)
	changed, err := keyring.Reencrypt(ctx, st, old, secret)
	if neither, ok := errors.AsType[*keyring.NeitherSecretError](err); ok {
		err = fmt.Errorf("signing key %s opens with neither the old secret nor %s", neither.ID, secretEnv)
	}
	if err := reportSealed(stdout, stderr, changed, err, "re-encrypted",
		"restart every server with the new "+secretEnv+": until then they keep their loaded keys but cannot reload them"); err != nil {
		return err
	}
	n, err := keyring.ReencryptTOTP(ctx, st, old, secret)
	return reportTOTPSealed(stdout, n, err, "re-encrypted")
}

// requiredSecret checks that the secret given as name is set and long enough.
func requiredSecret(secret, name string) ([]byte, error) {
	switch {
	case secret == "":
		return nil, fmt.Errorf("%s is not set: give it at least %d random bytes (e.g. openssl rand -base64 32)", name, token.MinSecretSize)
	case len(secret) < token.MinSecretSize:
		return nil, fmt.Errorf("%s must be at least %d bytes of random text (e.g. openssl rand -base64 32)", name, token.MinSecretSize)
	}
	return []byte(secret), nil
}

// tokenKey is the token package's view of a stored key.
func tokenKey(k store.SigningKey) token.Key {
	return token.Key{ID: k.ID, Algorithm: k.Algorithm, Private: k.Private, CreatedAt: k.CreatedAt}
}

// printStoreWarnings shows what store.Open found unsafe but not fatal.
func printStoreWarnings(w io.Writer, st *store.Store) {
	for _, msg := range st.Warnings() {
		fmt.Fprintf(w, "warning: %s\n", msg)
	}
}

// warnPlaintextKeys logs a warning at every start while any stored private key is plaintext.
func warnPlaintextKeys(ctx context.Context, log *slog.Logger, st *store.Store, opts keyring.Options) error {
	plain, err := keyring.Unencrypted(ctx, st, opts)
	if err != nil || len(plain) == 0 {
		return err
	}
	msg := "signing keys are stored unencrypted: anyone who reads the database can forge tokens; set " + secretEnv +
		" (openssl rand -base64 32) and run \"authapi keys encrypt\""
	if len(opts.Secret) > 0 {
		msg = "signing keys stored before " + secretEnv + " was set are unencrypted: run \"authapi keys encrypt\""
	}
	log.Warn(msg, "kids", plain)
	return nil
}

// warnPlaintextTOTP logs a warning at every start while any TOTP secret is stored plaintext,
// as warnPlaintextKeys does for signing keys: a database reader could generate the codes.
func warnPlaintextTOTP(ctx context.Context, log *slog.Logger, st *store.Store, opts keyring.Options) error {
	n, err := st.PlaintextTOTPSecrets(ctx, token.SealedPrefix)
	if err != nil || n == 0 {
		return err
	}
	msg := "TOTP secrets are stored unencrypted: anyone who reads the database can generate the codes; set " + secretEnv +
		" (openssl rand -base64 32) and run \"authapi keys encrypt\""
	if len(opts.Secret) > 0 {
		msg = "TOTP secrets stored before " + secretEnv + " was set are unencrypted: run \"authapi keys encrypt\""
	}
	log.Warn(msg, "count", n)
	return nil
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

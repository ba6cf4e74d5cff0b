package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/app"
	"github.com/authapi/authapi/internal/keyring"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/token"
)

const testSecret = "0123456789abcdef0123456789abcdef"

// keysRun runs "authapi keys args..." with the environment kv (key, value pairs) only.
func keysRun(t *testing.T, kv []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	e := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		e[kv[i]] = kv[i+1]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	code = run(ctx, append([]string{"keys"}, args...), func(k string) string { return e[k] }, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// mustKeysRun is keysRun that fails unless the command exits 0.
func mustKeysRun(t *testing.T, kv []string, args ...string) (stdout, stderr string) {
	t.Helper()
	code, stdout, stderr := keysRun(t, kv, args...)
	if code != 0 {
		t.Fatalf("authapi keys %q exited %d; stderr:\n%s", args, code, stderr)
	}
	return stdout, stderr
}

var rotated = regexp.MustCompile(`^([A-Za-z0-9_-]{22}) (EdDSA|ES256|RS256)\n$`)

// mustRotateCLI runs "keys rotate" and returns the new kid and alg it printed.
func mustRotateCLI(t *testing.T, kv []string, args ...string) (kid, alg string) {
	t.Helper()
	stdout, _ := mustKeysRun(t, kv, append([]string{"rotate"}, args...)...)
	m := rotated.FindStringSubmatch(stdout)
	if m == nil {
		t.Fatalf("keys rotate printed %q, want \"<kid> <alg>\\n\"", stdout)
	}
	return m[1], m[2]
}

// listRows runs "keys list" and returns its rows, header first, split into columns.
func listRows(t *testing.T, kv []string, args ...string) [][]string {
	t.Helper()
	stdout, _ := mustKeysRun(t, kv, append([]string{"list"}, args...)...)
	var rows [][]string
	for line := range strings.Lines(stdout) {
		rows = append(rows, regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1))
	}
	return rows
}

func openTestStore(t *testing.T, dsn string) *store.Store {
	t.Helper()
	st, err := store.Open(dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestKeysRotateAndList(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			db := storetest.DSN(t, backend)
			kv := []string{"AUTHAPI_DB", db}

			first, alg := mustRotateCLI(t, kv)
			if alg != token.EdDSA {
				t.Errorf("default algorithm %s, want EdDSA", alg)
			}
			second, alg := mustRotateCLI(t, append(kv, "AUTHAPI_SIGNING_ALG", token.RS256))
			if alg != token.RS256 {
				t.Errorf("AUTHAPI_SIGNING_ALG=RS256 gave %s", alg)
			}
			third, alg := mustRotateCLI(t, append(kv, "AUTHAPI_SIGNING_ALG", token.RS256), "--alg", token.ES256)
			if alg != token.ES256 {
				t.Errorf("--alg ES256 gave %s, want the flag to beat the environment", alg)
			}

			rows := listRows(t, kv, "--key-reload-interval", "1m")
			want := [][]string{
				{"KID", "ALG", "CREATED", "AT REST", "STATE"},
				{first, "EdDSA", "", "plaintext", "signing"},
				{second, "RS256", "", "plaintext", "pending, signs from "},
				{third, "ES256", "", "plaintext", "pending, signs from "},
			}
			if len(rows) != len(want) {
				t.Fatalf("keys list rows = %q, want %d", rows, len(want))
			}
			for i, w := range want {
				r := rows[i]
				if len(r) != 5 || r[0] != w[0] || r[1] != w[1] || r[3] != w[3] || !strings.HasPrefix(r[4], w[4]) {
					t.Errorf("row %d = %q, want %q", i, r, w)
				}
				if i == 0 {
					continue
				}
				created, err := time.Parse(time.RFC3339, r[2])
				if err != nil {
					t.Errorf("row %d created %q: %v", i, r[2], err)
				}
				// A new key signs after the reload interval, the JWKS cache time and a minute.
				if from, ok := strings.CutPrefix(r[4], w[4]); ok && i > 1 {
					signsFrom, err := time.Parse(time.RFC3339, from)
					if d := signsFrom.Sub(created); err != nil || d < 7*time.Minute-time.Second || d > 7*time.Minute+time.Second {
						t.Errorf("row %d signs from %q, created %v: want 7m later", i, from, created)
					}
				}
			}
		})
	}
}

// "rotate --now" after a pending rotation: the new key signs at once, the older keys verify
// until a reload interval (when every server has switched) plus the retention.
func TestKeysRotateNow(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			db := storetest.DSN(t, backend)
			kv := []string{"AUTHAPI_DB", db, "AUTHAPI_KEY_RELOAD_INTERVAL", "1m"}
			first, _ := mustRotateCLI(t, kv)
			pending, _ := mustRotateCLI(t, kv)

			stdout, stderr := mustKeysRun(t, kv, "rotate", "--now", "--alg", token.ES256)
			m := rotated.FindStringSubmatch(stdout)
			if m == nil || m[2] != token.ES256 {
				t.Fatalf("keys rotate --now printed %q, want \"<kid> ES256\\n\"", stdout)
			}
			now := m[1]
			for _, want := range []string{"created signing key " + now + " (ES256): servers sign with it from their next reload, within 1m0s", "unknown kid"} {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr %q does not say %q", stderr, want)
				}
			}

			rows := listRows(t, kv)
			if len(rows) != 4 {
				t.Fatalf("keys list = %q, want 3 keys", rows)
			}
			created, err := time.Parse(time.RFC3339, rows[3][2])
			if err != nil {
				t.Fatal(err)
			}
			// Every server signs with it within the 1m reload interval; tokens of the older
			// keys live for the refresh token lifetime (1h), and a minute more for clock skew.
			until := "verifying until " + formatTime(created.Add(time.Minute+time.Hour+time.Minute))
			for i, w := range [][]string{{first, until}, {pending, until}, {now, "signing"}} {
				if r := rows[i+1]; r[0] != w[0] || r[4] != w[1] {
					t.Errorf("row %d = %q, want %s %q", i+1, r, w[0], w[1])
				}
			}
		})
	}
}

// keysAt stores EdDSA keys created at the given times, as if rotated then.
func keysAt(t *testing.T, db string, times ...time.Time) []string {
	t.Helper()
	st := openTestStore(t, db)
	if err := st.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, created := range times {
		k, err := token.GenerateKey(token.EdDSA, created)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateSigningKey(context.Background(), store.SigningKey{ID: k.ID, Algorithm: k.Algorithm, Private: k.Private, CreatedAt: created}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	return ids
}

func TestKeysListRetention(t *testing.T) {
	db := storetest.DSN(t, "sqlite")
	now := time.Now().UTC()
	keysAt(t, db, now.Add(-3*time.Hour), now.Add(-time.Hour))
	rows := listRows(t, []string{"AUTHAPI_DB", db, "AUTHAPI_REFRESH_TOKEN_LIFETIME", "2h"})
	if len(rows) != 3 || rows[2][4] != "signing" || !strings.HasPrefix(rows[1][4], "verifying until ") {
		t.Fatalf("keys list = %q, want the older key verifying, the newer signing", rows)
	}
	// Superseded when the newer key began to sign (6m30s after its creation at the default
	// reload interval), it verifies for the refresh token lifetime and a minute more.
	created, _ := time.Parse(time.RFC3339, rows[2][2])
	until, err := time.Parse(time.RFC3339, strings.TrimPrefix(rows[1][4], "verifying until "))
	if want := created.Add(6*time.Minute + 30*time.Second + 2*time.Hour + time.Minute); err != nil || until.Sub(want).Abs() > time.Second {
		t.Errorf("verifying until %v, want %v", until, want)
	}
}

func TestKeysRotateDeletesExpired(t *testing.T) {
	db := storetest.DSN(t, "sqlite")
	long := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	ids := keysAt(t, db, long, long.Add(time.Hour))
	kv := []string{"AUTHAPI_DB", db}
	if rows := listRows(t, kv); len(rows) != 3 || rows[1][4] != "expired" || rows[2][4] != "signing" {
		t.Errorf("keys list = %q, want the older key expired", rows)
	}
	_, stderr := mustKeysRun(t, kv, "rotate")
	if !strings.Contains(stderr, "deleted expired signing key "+ids[0]) {
		t.Errorf("stderr %q does not report deleting %s", stderr, ids[0])
	}
	if rows := listRows(t, kv); len(rows) != 3 || rows[1][0] != ids[1] || rows[1][4] != "signing" || !strings.HasPrefix(rows[2][4], "pending") {
		t.Errorf("keys list after rotate = %q, want %s signing and the new key pending", rows, ids[1])
	}
}

func TestKeysEncryption(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			db := storetest.DSN(t, backend)
			plain := []string{"AUTHAPI_DB", db}
			secret := append(plain, "AUTHAPI_SECRET_KEY", testSecret)

			old, _ := mustRotateCLI(t, plain)
			_, stderr := mustKeysRun(t, secret, "rotate")
			if !strings.Contains(stderr, "encrypted signing key "+old+" at rest") {
				t.Errorf("stderr %q does not report encrypting %s", stderr, old)
			}
			for _, k := range mustKeys(t, db) {
				if !bytes.HasPrefix(k.Private, []byte("enc:v1:")) || bytes.Contains(k.Private, []byte(`"d"`)) {
					t.Errorf("key %s stored as %.30q, want encrypted", k.ID, k.Private)
				}
			}
			for _, row := range listRows(t, plain)[1:] {
				if row[3] != "encrypted" {
					t.Errorf("keys list row %q, want encrypted (list needs no secret)", row)
				}
			}

			for _, tc := range []struct {
				name, secret, want string
			}{
				{"missing", "", "AUTHAPI_SECRET_KEY is required to read signing keys"},
				{"wrong", strings.ToUpper(testSecret), "AUTHAPI_SECRET_KEY does not decrypt the signing keys"},
				{"short", "short", "AUTHAPI_SECRET_KEY must be at least 32 bytes"},
			} {
				code, stdout, stderr := keysRun(t, append(plain, "AUTHAPI_SECRET_KEY", tc.secret), "rotate")
				if code != 1 || stdout != "" || !strings.Contains(stderr, tc.want) {
					t.Errorf("%s secret: exit %d, stdout %q, stderr %q; want 1, nothing, %q", tc.name, code, stdout, stderr, tc.want)
				}
			}
			if n := len(mustKeys(t, db)); n != 2 {
				t.Errorf("%d keys after refused rotations, want 2", n)
			}

			// serve's loader maps the errors the same way.
			st := openTestStore(t, db)
			_, err := openKeyRing(context.Background(), st, token.Config{Issuer: "authapi"}, keyring.Options{Retention: time.Hour})
			if err == nil || !strings.Contains(err.Error(), "AUTHAPI_SECRET_KEY is required to read signing keys") {
				t.Errorf("openKeyRing without the secret: %v", err)
			}
			getenv := func(k string) string { return map[string]string{"AUTHAPI_SECRET_KEY": testSecret}[k] }
			opts, err := keyOptions(getenv, token.EdDSA, time.Second, nil, time.Minute, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if opts.Retention != time.Hour || string(opts.Secret) != testSecret {
				t.Errorf("keyOptions = %+v, want retention 1h (the longest lifetime) and the secret", opts)
			}
			if _, err := openKeyRing(context.Background(), st, token.Config{Issuer: "authapi"}, opts); err != nil {
				t.Errorf("openKeyRing with the secret: %v", err)
			}
		})
	}
}

func mustKeys(t *testing.T, db string) []store.SigningKey {
	t.Helper()
	keys, err := openTestStore(t, db).SigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func TestKeysUsage(t *testing.T) {
	db := storetest.DSN(t, "sqlite")
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{nil, 2, "usage: authapi keys"},
		{[]string{"bogus"}, 2, `unknown subcommand "bogus"`},
		{[]string{"-h"}, 0, ""},
		{[]string{"rotate", "--db", db, "--alg", "HS256"}, 1, `unknown signing algorithm "HS256"`},
		{[]string{"list", "--db", db, "extra"}, 1, "unexpected arguments"},
		{[]string{"list", "--db", db, "--key-reload-interval", "0s"}, 1, "key reload interval must be positive"},
		{[]string{"list", "--nope"}, 2, "flag provided but not defined"},
	} {
		code, _, stderr := keysRun(t, nil, tc.args...)
		if code != tc.code || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("keys %q: exit %d, stderr %q; want %d and %q", tc.args, code, stderr, tc.code, tc.stderr)
		}
	}
	if _, err := os.Stat(db); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("failed commands touched the database: stat %s: %v", db, err)
	}
}

// A running server publishes a key rotated by another process within its reload interval,
// serves it encrypted at rest, and keeps accepting the tokens it issued before.
func TestServeFollowsRotation(t *testing.T) {
	t.Parallel()
	dsn := storetest.DSN(t, "sqlite")
	e := testEnv(
		"AUTHAPI_BOOTSTRAP_USERNAME", "alice", "AUTHAPI_BOOTSTRAP_PASSWORD", bootstrapPassword,
		"AUTHAPI_SECRET_KEY", testSecret, "AUTHAPI_KEY_RELOAD_INTERVAL", "20ms",
	)
	srv := startServe(t, e, "--db", dsn)
	client := &http.Client{}
	base := "http://" + srv.addr
	srv.waitHealthy(t, client, base)
	access := mustLogin(t, client, base, "alice", bootstrapPassword)

	kid, _ := mustRotateCLI(t, []string{"AUTHAPI_DB", dsn, "AUTHAPI_SECRET_KEY", testSecret})
	srv.waitFor(t, "the rotated key in the JWKS", func() bool {
		resp, err := client.Get(base + "/.well-known/jwks.json")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var set struct{ Keys []struct{ Kid string } }
		err = json.NewDecoder(resp.Body).Decode(&set)
		return err == nil && len(set.Keys) == 2 && slices.ContainsFunc(set.Keys, func(k struct{ Kid string }) bool { return k.Kid == kid })
	})
	if got := mustWelcome(t, client, base, access).Name; got == "" {
		t.Error("token issued before the rotation no longer works")
	}
	for _, k := range mustKeys(t, dsn) {
		if bytes.Contains(k.Private, []byte(`"d"`)) {
			t.Errorf("key %s stored in plaintext", k.ID)
		}
	}
	if code := srv.stop(t); code != 0 {
		t.Fatalf("serve exit code = %d; stderr:\n%s", code, srv.stderr.String())
	}
}

func TestRunKeyRingStops(t *testing.T) {
	st := storetest.Open(t, "sqlite")
	opts, err := keyOptions(func(string) string { return "" }, token.ES256, time.Millisecond, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	ring, err := openKeyRing(context.Background(), st, token.Config{Issuer: "authapi"}, opts)
	if err != nil {
		t.Fatal(err)
	}
	stop := app.RunInBackground(context.Background(), ring.Run)
	time.Sleep(10 * time.Millisecond) // a few reloads
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute): // a hang, not a loaded machine
		t.Fatal("stop did not return within a minute")
	}
}

// openKeyRing loads the signing keys as serve does: keyring.New (inside app.Start), its error
// through keyError.
func openKeyRing(ctx context.Context, st *store.Store, cfg token.Config, opts keyring.Options) (*keyring.Ring, error) {
	ring, err := keyring.New(ctx, st, cfg, opts)
	return ring, keyError(err)
}

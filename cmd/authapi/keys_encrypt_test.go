package main

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/testbin"
	"github.com/authapi/authapi/internal/token"
)

const (
	oldSecret   = "old-secret-0123456789abcdef-0123456789"
	otherSecret = "some-other-secret-0123456789abcdef-0123"
)

// mustStoreKey generates a key created at created, stored sealed under secret (plaintext if
// secret is empty), and returns it in plaintext.
func mustStoreKey(t *testing.T, st *store.Store, secret string, created time.Time) token.Key {
	t.Helper()
	k, err := token.GenerateKey(token.EdDSA, created.UTC().Truncate(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	stored := k
	if secret != "" {
		if stored, err = token.SealKey([]byte(secret), k); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateSigningKey(context.Background(), store.SigningKey{ID: k.ID, Algorithm: k.Algorithm, Private: stored.Private, CreatedAt: k.CreatedAt}); err != nil {
		t.Fatal(err)
	}
	return k
}

// wantKeysUnder checks that every stored key is sealed, opens with secret to the plaintext in
// want (by kid), and does not open with notSecret.
func wantKeysUnder(t *testing.T, db, secret, notSecret string, want map[string]token.Key) {
	t.Helper()
	keys := mustKeys(t, db)
	if len(keys) != len(want) {
		t.Fatalf("%d keys stored, want %d", len(keys), len(want))
	}
	for _, sk := range keys {
		k := tokenKey(sk)
		if !token.Sealed(k) {
			t.Errorf("key %s is plaintext, want it sealed", k.ID)
			continue
		}
		opened, err := token.OpenKey([]byte(secret), k)
		if err != nil || !bytes.Equal(opened.Private, want[k.ID].Private) {
			t.Errorf("key %s does not open with the current secret to the same key: %v", k.ID, err)
		}
		if _, err := token.OpenKey([]byte(notSecret), k); err == nil {
			t.Errorf("key %s still opens with the old secret", k.ID)
		}
	}
}

func sameKeys(t *testing.T, db string, before []store.SigningKey) {
	t.Helper()
	after := mustKeys(t, db)
	if len(after) != len(before) {
		t.Fatalf("%d keys, want the %d there were", len(after), len(before))
	}
	for i := range before {
		if after[i].ID != before[i].ID || !bytes.Equal(after[i].Private, before[i].Private) {
			t.Errorf("key %s changed, want every key as it was", before[i].ID)
		}
	}
}

// "keys encrypt" and "keys reencrypt" change every key or none: a key that does not open with
// the secret they need stops them before any key is written.
func TestKeysEncryptAndReencryptAllOrNothing(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			db := storetest.DSN(t, backend)
			st, err := openStore(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			t0 := time.Now().Add(-time.Hour)
			plain := map[string]token.Key{}
			for i, secret := range []string{"", oldSecret, oldSecret} {
				k := mustStoreKey(t, st, secret, t0.Add(time.Duration(i)*time.Second))
				plain[k.ID] = k
			}
			before := mustKeys(t, db)

			dbEnv := []string{"AUTHAPI_DB", db}
			withSecrets := func(current, old string) []string {
				return append(dbEnv, "AUTHAPI_SECRET_KEY", current, "AUTHAPI_OLD_SECRET_KEY", old)
			}
			for _, tc := range []struct {
				name string
				kv   []string
				args []string
				want string
			}{
				{"encrypt without a secret", dbEnv, []string{"encrypt"}, "AUTHAPI_SECRET_KEY is not set"},
				{"encrypt with a short secret", withSecrets("short", ""), []string{"encrypt"}, "AUTHAPI_SECRET_KEY must be at least 32 bytes"},
				// Two keys are sealed under another secret: the plaintext one stays as it is too.
				{"encrypt with another secret", withSecrets(testSecret, ""), []string{"encrypt"}, "no key changed: "},
				{"reencrypt without a secret", withSecrets("", oldSecret), []string{"reencrypt"}, "AUTHAPI_SECRET_KEY is not set"},
				{"reencrypt without the old secret", withSecrets(testSecret, ""), []string{"reencrypt"}, "AUTHAPI_OLD_SECRET_KEY (or --old-secret) is not set"},
				{"reencrypt to the same secret", withSecrets(oldSecret, oldSecret), []string{"reencrypt"}, "the old secret and AUTHAPI_SECRET_KEY are the same"},
				{"reencrypt from a wrong secret", withSecrets(testSecret, otherSecret), []string{"reencrypt"}, "opens with neither the old secret nor AUTHAPI_SECRET_KEY"},
				{"reencrypt from a wrong --old-secret", withSecrets(testSecret, oldSecret), []string{"reencrypt", "--old-secret", otherSecret}, "no key changed: "},
			} {
				code, stdout, stderr := keysRun(t, tc.kv, tc.args...)
				if code != 1 || stdout != "" || !strings.Contains(stderr, tc.want) {
					t.Errorf("%s: exit %d, stdout %q, stderr %q; want 1, nothing, %q", tc.name, code, stdout, stderr, tc.want)
				}
				sameKeys(t, db, before)
			}

			// One key under a third secret, the newest, stops the change of the three before it.
			stray := mustStoreKey(t, st, otherSecret, t0.Add(time.Minute))
			code, _, stderr := keysRun(t, withSecrets(testSecret, oldSecret), "reencrypt")
			if code != 1 || !strings.Contains(stderr, "signing key "+stray.ID+" opens with neither") {
				t.Errorf("reencrypt with a stray key: exit %d, stderr %q; want 1 naming %s", code, stderr, stray.ID)
			}
			sameKeys(t, db, append(before, mustKeys(t, db)[3]))
			if err := st.DeleteSigningKey(ctx, stray.ID); err != nil {
				t.Fatal(err)
			}

			stdout, _ := mustKeysRun(t, withSecrets(testSecret, oldSecret), "reencrypt")
			for id := range plain {
				if !strings.Contains(stdout, "re-encrypted signing key "+id+" with AUTHAPI_SECRET_KEY\n") {
					t.Errorf("reencrypt stdout %q does not report %s", stdout, id)
				}
			}
			wantKeysUnder(t, db, testSecret, oldSecret, plain)

			// A second run finds nothing to do, and says so.
			after := mustKeys(t, db)
			stdout, _ = mustKeysRun(t, withSecrets(testSecret, oldSecret), "reencrypt")
			if stdout != "every signing key is already encrypted with AUTHAPI_SECRET_KEY: nothing changed\n" {
				t.Errorf("second reencrypt printed %q, want nothing changed", stdout)
			}
			sameKeys(t, db, after)

			// And back with --old-secret, which beats the environment.
			stdout, _ = mustKeysRun(t, withSecrets(oldSecret, otherSecret), "reencrypt", "--old-secret", testSecret)
			if n := strings.Count(stdout, "re-encrypted signing key "); n != 3 {
				t.Errorf("reencrypt --old-secret printed %q, want 3 keys changed", stdout)
			}
			wantKeysUnder(t, db, oldSecret, testSecret, plain)
		})
	}
}

func TestKeysReencryptHelpHidesTheOldSecret(t *testing.T) {
	code, stdout, stderr := keysRun(t, []string{"AUTHAPI_OLD_SECRET_KEY", oldSecret, "AUTHAPI_SECRET_KEY", testSecret}, "reencrypt", "-h")
	if code != 2 || !strings.Contains(stderr, "-old-secret") {
		t.Errorf("keys reencrypt -h: exit %d, stderr %q; want 2 and the flags", code, stderr)
	}
	if strings.Contains(stdout+stderr, oldSecret) || strings.Contains(stdout+stderr, testSecret) {
		t.Errorf("keys reencrypt -h printed a secret:\n%s%s", stdout, stderr)
	}
}

// wantPlaintextWarning checks serve's log for the WARN about plaintext keys.
func wantPlaintextWarning(t *testing.T, srv *serveRun, want bool) {
	t.Helper()
	var found []string
	for _, l := range logLines(t, srv.stdout.String()) {
		if msg, _ := l["msg"].(string); l["level"] == "WARN" && strings.Contains(msg, "unencrypted") {
			found = append(found, msg)
			if !strings.Contains(msg, "AUTHAPI_SECRET_KEY") || !strings.Contains(msg, "authapi keys encrypt") {
				t.Errorf("warning %q names neither AUTHAPI_SECRET_KEY nor authapi keys encrypt", msg)
			}
		}
	}
	if want && len(found) != 1 {
		t.Errorf("serve logged %d warnings of plaintext keys, want 1:\n%s", len(found), srv.stdout.String())
	}
	if !want && len(found) != 0 {
		t.Errorf("serve warned of plaintext keys %q, want no warning", found)
	}
}

// An operator who started without a secret sets one and runs "keys encrypt"; later changes it
// with "keys reencrypt". serve warns at each start while a key is plaintext, and the tokens
// issued before every change still work after it, as do new logins.
func TestServeAfterKeysEncryptAndReencrypt(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			db := storetest.DSN(t, backend)
			client := &http.Client{}
			boot := []string{"AUTHAPI_BOOTSTRAP_USERNAME", "alice", "AUTHAPI_BOOTSTRAP_PASSWORD", bootstrapPassword}
			serveWith := func(secret string, wantWarning bool) (*serveRun, string) {
				t.Helper()
				// One public URL for every run: the default follows the port, which changes.
				srv := startServe(t, testEnv(append(boot, "AUTHAPI_SECRET_KEY", secret)...), "--db", db, "--public-url", "http://authapi.test")
				base := "http://" + srv.addr
				srv.waitHealthy(t, client, base)
				wantPlaintextWarning(t, srv, wantWarning)
				return srv, base
			}
			stop := func(srv *serveRun) {
				t.Helper()
				if code := srv.stop(t); code != 0 {
					t.Fatalf("serve exit code = %d; stderr:\n%s", code, srv.stderr.String())
				}
			}

			srv, base := serveWith("", true)
			first := mustLogin(t, client, base, "alice", bootstrapPassword)
			stop(srv)
			// Setting the secret does not encrypt the keys: serve still warns, now to run encrypt.
			srv, _ = serveWith(testSecret, true)
			stop(srv)

			stdout, _ := mustKeysRun(t, []string{"AUTHAPI_DB", db, "AUTHAPI_SECRET_KEY", testSecret}, "encrypt")
			if !strings.HasPrefix(stdout, "encrypted signing key ") {
				t.Errorf("keys encrypt printed %q", stdout)
			}
			stdout, _ = mustKeysRun(t, []string{"AUTHAPI_DB", db, "AUTHAPI_SECRET_KEY", testSecret}, "encrypt")
			if stdout != "every signing key is already encrypted with AUTHAPI_SECRET_KEY: nothing changed\n" {
				t.Errorf("second keys encrypt printed %q, want nothing changed", stdout)
			}

			srv, base = serveWith(testSecret, false)
			mustWelcome(t, client, base, first)
			second := mustLogin(t, client, base, "alice", bootstrapPassword)
			mustWelcome(t, client, base, second)
			stop(srv)

			mustKeysRun(t, []string{"AUTHAPI_DB", db, "AUTHAPI_SECRET_KEY", otherSecret, "AUTHAPI_OLD_SECRET_KEY", testSecret}, "reencrypt")
			srv, base = serveWith(otherSecret, false)
			mustWelcome(t, client, base, first)
			mustWelcome(t, client, base, second)
			mustWelcome(t, client, base, mustLogin(t, client, base, "alice", bootstrapPassword))
			stop(srv)

			// The former secret no longer reads the keys.
			code := run(context.Background(), []string{"serve", "--addr", testbin.FreeAddr(t), "--db", db},
				testEnv("AUTHAPI_SECRET_KEY", testSecret).get, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
			if code != 1 {
				t.Errorf("serve with the former secret exited %d, want 1", code)
			}
		})
	}
}

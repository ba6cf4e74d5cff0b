package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/authapi/authapi/internal/store"
)

// runClients runs "authapi clients args..." on db and returns the exit code and output.
func runClients(t *testing.T, db string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), append([]string{"clients"}, args...), testEnv("AUTHAPI_DB", db).get, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestClientsCommand: the lifecycle of an API client through the CLI, audited as the CLI's,
// with the secret printed once and never stored or audited.
func TestClientsCommand(t *testing.T) {
	t.Parallel()
	db := filepath.Join(t.TempDir(), "authapi.db")
	code, out, errOut := runClients(t, db, "create", "--name", "orders", "--scopes", "introspect,revoke", "--json")
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, errOut)
	}
	var created struct{ ClientID, ClientSecret string }
	if err := json.Unmarshal([]byte(strings.ReplaceAll(strings.ReplaceAll(out, "client_id", "ClientID"), "client_secret", "ClientSecret")), &created); err != nil || !strings.HasPrefix(created.ClientID, "ac_") || len(created.ClientSecret) != 43 {
		t.Fatalf("create printed %q (%v)", out, err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"list"}, 0, "introspect,revoke"},
		{[]string{"show", created.ClientID}, 0, "name:       orders"},
		{[]string{"disable", created.ClientID}, 0, "state:      disabled"},
		{[]string{"enable", created.ClientID}, 0, "state:      enabled"},
		{[]string{"rotate", created.ClientID, "--overlap", "1h"}, 0, "previous secret until"},
		{[]string{"create", "--name", "x", "--scopes", "admin"}, 1, `"admin" is not a known scope`},
		{[]string{"create"}, 1, "name: This field may not be blank."},
		{[]string{"show"}, 2, "the client id comes first"},
		{[]string{"show", "ac_nobody"}, 1, `no API client "ac_nobody"`},
		{[]string{"delete", created.ClientID}, 0, "deleted " + created.ClientID},
		{[]string{"delete", created.ClientID}, 1, "no API client"},
	} {
		code, out, errOut := runClients(t, db, tc.args...)
		if code != tc.code || !strings.Contains(out+errOut, tc.want) {
			t.Errorf("clients %v: exit %d, output %q %q; want exit %d with %q", tc.args, code, out, errOut, tc.code, tc.want)
		}
	}

	st, err := store.Open(db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	events, _, err := st.AuditEvents(context.Background(), store.AuditFilter{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range events {
		if e.ClientID != created.ClientID || !strings.HasPrefix(e.UserAgent, "authapi clients") {
			t.Errorf("event %+v: want the client and the CLI", e)
		}
		if strings.Contains(e.UserAgent+strings.Join(e.Fields, ","), created.ClientSecret) {
			t.Error("the secret is in the audit log")
		}
		actions = append(actions, e.Action)
	}
	if got := strings.Join(actions, " "); got != "client.deleted client.secret_rotated client.updated client.updated client.created" {
		t.Errorf("audit actions %q", got)
	}
}

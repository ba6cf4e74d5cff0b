package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
)

// TestCommandsAudited: the commands that change security state record it as made by the CLI.
func TestCommandsAudited(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dsn := storetest.DSN(t, backend)
			r := runCLI(t, testEnv("AUTHAPI_SUPERUSER_PASSWORD", "correct horse battery staple"), "", "createsuperuser", "--db", dsn, "--no-input",
				"--username", "root", "--email", "root@example.com", "--first-name", "R", "--last-name", "S")
			if r.code != 0 {
				t.Fatalf("createsuperuser: %d %s", r.code, r.stderr)
			}
			if r := runCLI(t, testEnv(), "", "keys", "rotate", "--db", dsn); r.code != 0 {
				t.Fatalf("keys rotate: %d %s", r.code, r.stderr)
			}
			kid, _, _ := strings.Cut(strings.TrimSpace(runCLI(t, testEnv(), "", "keys", "rotate", "--db", dsn, "--now").stdout), " ")
			events, _, err := audit.List(context.Background(), mustOpenStore(t, dsn), audit.Query{})
			if err != nil {
				t.Fatal(err)
			}
			if len(events) != 3 {
				t.Fatalf("events %+v, want 3", events)
			}
			for i, want := range []struct {
				action audit.Action
				agent  string
			}{{audit.KeyRotated, "authapi keys rotate"}, {audit.KeyRotated, "authapi keys rotate"}, {audit.UserCreated, "authapi createsuperuser"}} {
				e := events[i]
				if e.Action != string(want.action) || e.UserAgent != want.agent || e.ActorID != 0 || e.IP != "" || e.Outcome != string(audit.Success) {
					t.Errorf("event %d: %+v, want %s by %q", i, e, want.action, want.agent)
				}
			}
			if events[0].KeyID != kid || events[1].KeyID == "" || events[1].KeyID == kid || events[2].TargetID == 0 {
				t.Errorf("events %+v: want the keys' IDs (newest %s) and the superuser's", events, kid)
			}
		})
	}
}

// TestFlushPrunesAuditEvents: the flush job deletes events past AUTHAPI_AUDIT_RETENTION (or
// the flag), keeps the rest, keeps all with 0s, and refuses a negative retention.
func TestFlushPrunesAuditEvents(t *testing.T) {
	for _, backend := range storetest.Backends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			dsn := storetest.DSN(t, backend)
			if r := runCLI(t, testEnv(), "", "migrate", "--db", dsn); r.code != 0 {
				t.Fatalf("migrate: %d %s", r.code, r.stderr)
			}
			ctx := context.Background()
			st := mustOpenStore(t, dsn)
			now := time.Now()
			for _, age := range []time.Duration{100 * 24 * time.Hour, 91 * 24 * time.Hour, 89 * 24 * time.Hour, 2 * time.Hour, time.Minute} {
				if err := st.RecordAuditEvents(ctx, store.AuditEvent{At: now.Add(-age), Action: string(audit.Logout), Outcome: string(audit.Success)}); err != nil {
					t.Fatal(err)
				}
			}
			left := func() int64 {
				_, n, err := st.AuditEvents(ctx, store.AuditFilter{})
				if err != nil {
					t.Fatal(err)
				}
				return n
			}
			for _, tc := range []struct {
				env     env
				args    []string
				deleted string
				left    int64
			}{
				{testEnv("AUTHAPI_AUDIT_RETENTION", "0s"), nil, "Deleted 0 audit events.", 5},
				{testEnv(), nil, "Deleted 2 audit events.", 3}, // the default, 90 days
				{testEnv("AUTHAPI_AUDIT_RETENTION", "1h"), nil, "Deleted 2 audit events.", 1},
				// The flag wins: the environment's hour would keep the last event.
				{testEnv("AUTHAPI_AUDIT_RETENTION", "1h"), []string{"--audit-retention", "30s"}, "Deleted 1 audit events.", 0},
			} {
				r := runCLI(t, tc.env, "", append([]string{"flushexpiredtokens", "--db", dsn}, tc.args...)...)
				if r.code != 0 || !strings.Contains(r.stdout, tc.deleted) || left() != tc.left {
					t.Fatalf("flush %v %v: %d %q %q; want %q and %d left, have %d", tc.env, tc.args, r.code, r.stdout, r.stderr, tc.deleted, tc.left, left())
				}
			}
			for _, cmd := range []string{"flushexpiredtokens", "serve"} {
				r := runCLI(t, testEnv("AUTHAPI_AUDIT_RETENTION", "-1h"), "", cmd, "--db", dsn)
				if r.code == 0 || !strings.Contains(r.stderr, "audit-retention") {
					t.Errorf("%s with a negative retention: %d %q", cmd, r.code, r.stderr)
				}
			}
		})
	}
}

package main

import (
	"bytes"
	"runtime/debug"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		r := runCLI(t, testEnv(), "", args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "authapi ") || !strings.Contains(r.stdout, "\ncommit:   ") || r.stderr != "" {
			t.Errorf("authapi %q: exit %d, stdout %q, stderr %q; want 0 and the version", args, r.code, r.stdout, r.stderr)
		}
	}

	for _, tc := range []struct {
		name string
		info *debug.BuildInfo
		ok   bool
		want string
	}{
		{"no build info", nil, false, "authapi (devel)\ncommit:   unknown\ntime:     unknown\nmodified: unknown\ngo:       unknown\n"},
		{"go test", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "authapi"}}, true,
			"authapi (devel)\ncommit:   unknown\ntime:     unknown\nmodified: unknown\ngo:       go1.26.8\n"},
		{"go build in a checkout", &debug.BuildInfo{
			GoVersion: "go1.26.8",
			Main:      debug.Module{Path: "authapi", Version: "v1.2.3"},
			Settings: []debug.BuildSetting{
				{Key: "vcs", Value: "git"},
				{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
				{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
				{Key: "vcs.modified", Value: "true"},
			},
		}, true, "authapi v1.2.3\ncommit:   0123456789abcdef0123456789abcdef01234567\ntime:     2026-12-01T10:00:00Z\nmodified: true\ngo:       go1.26.8\n"},
	} {
		var out bytes.Buffer
		printVersion(&out, tc.info, tc.ok)
		if out.String() != tc.want {
			t.Errorf("%s: printed\n%s\nwant\n%s", tc.name, out.String(), tc.want)
		}
	}
}

package main

import (
	"io"
	"net"
	"slices"
	"testing"
)

// TestIssuerConfig: the issuer defaults to the public URL, which defaults to the address
// listened on; the previous issuers default to the old issuer "authapi".
func TestIssuerConfig(t *testing.T) {
	bound := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 41234}
	for _, tc := range []struct {
		name                   string
		args, env              []string
		wantPublic, wantIssuer string
		wantPrevious, wantAud  []string
	}{
		{"defaults", nil, nil, "http://127.0.0.1:8000", "http://127.0.0.1:8000", []string{"authapi"}, nil},
		{"port 0 is the bound port", []string{"--addr", "127.0.0.1:0"}, nil, "http://127.0.0.1:41234", "http://127.0.0.1:41234", []string{"authapi"}, nil},
		{"every interface is localhost", []string{"--addr", ":8000"}, nil, "http://localhost:8000", "http://localhost:8000", []string{"authapi"}, nil},
		{"IPv6 any", []string{"--addr", "[::]:8000"}, nil, "http://localhost:8000", "http://localhost:8000", []string{"authapi"}, nil},
		{"IPv6 loopback", []string{"--addr", "[::1]:8000"}, nil, "http://[::1]:8000", "http://[::1]:8000", []string{"authapi"}, nil},
		{"public URL", []string{"--public-url", "https://auth.example.com"}, nil, "https://auth.example.com", "https://auth.example.com", []string{"authapi"}, nil},
		{"issuer kept", []string{"--issuer", "authapi"}, nil, "http://127.0.0.1:8000", "authapi", []string{"authapi"}, nil},
		{"no previous issuers", []string{"--previous-issuers="}, nil, "http://127.0.0.1:8000", "http://127.0.0.1:8000", nil, nil},
		{"from the environment", nil, []string{"AUTHAPI_PUBLIC_URL", "https://a.example/auth", "AUTHAPI_PREVIOUS_ISSUERS", "x, y", "AUTHAPI_AUDIENCE", "api1,api2"},
			"https://a.example/auth", "https://a.example/auth", []string{"x", "y"}, []string{"api1", "api2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for i := 0; i+1 < len(tc.env); i += 2 {
				env[tc.env[i]] = tc.env[i+1]
			}
			cfg, _, err := parseServeConfig(tc.args, func(k string) string { return env[k] }, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			cfg.resolveIssuer(bound)
			if cfg.publicURL != tc.wantPublic || cfg.issuer != tc.wantIssuer || !slices.Equal(cfg.previousIssuers, tc.wantPrevious) || !slices.Equal(cfg.audience, tc.wantAud) {
				t.Errorf("public %q issuer %q previous %q audience %q, want %q %q %q %q",
					cfg.publicURL, cfg.issuer, cfg.previousIssuers, cfg.audience, tc.wantPublic, tc.wantIssuer, tc.wantPrevious, tc.wantAud)
			}
		})
	}
	t.Run("TLS", func(t *testing.T) {
		if got := defaultPublicURL("127.0.0.1:8443", bound, true); got != "https://127.0.0.1:8443" {
			t.Errorf("got %q", got)
		}
	})
	for _, bad := range []string{"auth.example.com", "https://auth.example.com/", "ftp://x", "https://x?a=1", "https://x#f", "https://u:p@x", "https://"} {
		if _, _, err := parseServeConfig([]string{"--public-url", bad}, func(string) string { return "" }, io.Discard); err == nil {
			t.Errorf("--public-url %q accepted", bad)
		}
	}
}

package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// trustingClient trusts only the certificate in certPEM and checks it for serverName.
func trustingClient(t *testing.T, certPEM []byte, serverName string) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatalf("no certificate in %q", certPEM)
	}
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:   &tls.Config{RootCAs: pool, ServerName: serverName},
			DisableKeepAlives: true,
		},
	}
}

// Not parallel: t.Chdir changes the process's working directory.
func TestServeDevTLS(t *testing.T) {
	t.Chdir(t.TempDir())
	db := filepath.Join(t.TempDir(), "authapi.db")
	certFile := filepath.Join(devCertDir, "cert.crt")
	keyFile := filepath.Join(devCertDir, "cert.key")

	var firstCert, firstKey []byte
	for i, start := range []struct {
		env  env
		args []string
	}{
		{testEnv(), []string{"--db", db, "--dev-tls"}},
		{testEnv("AUTHAPI_DEV_TLS", "true"), []string{"--db", db}}, // the restart: the certificate is reused
	} {
		srv := startServe(t, start.env, start.args...)
		// serve logs "serving" once the certificate is in place and it listens.
		srv.waitFor(t, `the "serving" log line`, func() bool {
			return strings.Contains(srv.stdout.String(), `"msg":"serving"`)
		})
		certPEM, err := os.ReadFile(certFile)
		if err != nil {
			t.Fatal(err)
		}
		keyPEM, err := os.ReadFile(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(keyFile)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("run %d: %s mode = %v, want 0600", i+1, keyFile, got)
		}
		if i == 0 {
			firstCert, firstKey = certPEM, keyPEM
		} else {
			if !bytes.Equal(certPEM, firstCert) {
				t.Errorf("restart wrote a new %s, want the first one reused", certFile)
			}
			if !bytes.Equal(keyPEM, firstKey) {
				t.Errorf("restart wrote a new %s, want the first one reused", keyFile)
			}
		}
		block, _ := pem.Decode(certPEM)
		if block == nil || block.Type != "CERTIFICATE" {
			t.Fatalf("%s holds no PEM CERTIFICATE block", certFile)
		}

		// 127.0.0.1 is checked against the IP SAN, localhost against the DNS SAN.
		for _, serverName := range []string{"", "localhost"} {
			client := trustingClient(t, certPEM, serverName)
			base := "https://" + srv.addr
			srv.waitHealthy(t, client, base)
			resp := mustGet(t, client, base+"/healthz")
			if resp.TLS == nil || len(resp.TLS.PeerCertificates) == 0 {
				t.Fatalf("run %d, server name %q: /healthz answered without TLS", i+1, serverName)
			}
			if !bytes.Equal(resp.TLS.PeerCertificates[0].Raw, block.Bytes) {
				t.Errorf("run %d, server name %q: server presented a certificate other than %s", i+1, serverName, certFile)
			}
		}
		if code := srv.stop(t); code != 0 {
			t.Fatalf("run %d: serve exit code = %d, want 0; stderr:\n%s", i+1, code, srv.stderr.String())
		}
		if _, ok := findLog(logLines(t, srv.stdout.String()), map[string]any{"msg": "serving", "url": "https://" + srv.addr + "/api/v1/"}); !ok {
			t.Errorf("run %d: no https serving log line in stdout:\n%s", i+1, srv.stdout.String())
		}
	}
}

package ssf_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/ssf"
	"github.com/authapi/authapi/internal/store"
)

// TestCAEPInteropProfile checks the transmitter MUSTs of the OpenID CAEP Interoperability
// Profile 1.0 (openid/sharedsignals openid-caep-interoperability-profile-1_0.md), one row per
// requirement, named by its section. The HTTP-level MUSTs (bearer tokens in the header only,
// ssf.manage / ssf.read scopes, RFC 6750 errors) are in the server's SSF tests; TLS is the
// deployment's (AllowHTTPPush is off by default: push endpoints must be https).
func TestCAEPInteropProfile(t *testing.T) {
	in := newEnv(t, "sqlite", ssf.Config{})
	ctx := context.Background()
	cfg := in.svc.Configuration()
	u := in.user(t, "dana@example.test")

	// One stream per subject format the profile names, and events of both use cases.
	byFormat := map[string]ssf.Stream{}
	for _, f := range []string{ssf.FormatEmail, ssf.FormatIssSub} {
		byFormat[f] = in.stream(t, "rp", ssf.StreamInput{Format: ptr(f)})
	}
	s := in.session(t, u)
	if _, err := in.st.RevokeSession(ctx, s.ID, time.Now(), audit.Source{ActorID: u.ID}.Event(audit.Logout)); err != nil {
		t.Fatal(err)
	}
	if _, err := in.st.UpdateUser(ctx, u.ID, func(x *store.User) error { x.PasswordHash = "new"; return nil }, true, time.Now(), audit.Source{}.UserUpdate()); err != nil {
		t.Fatal(err)
	}
	if err := in.svc.Verify(ctx, "rp", byFormat[ssf.FormatIssSub].ID, "state-1"); err != nil {
		t.Fatal(err)
	}
	sets := map[string][]decoded{}
	for f, st := range byFormat {
		sets[f] = in.drain(t, "rp", st.ID)
	}
	all := slices.Concat(sets[ssf.FormatEmail], sets[ssf.FormatIssSub])
	ofType := func(typ string) []decoded {
		var out []decoded
		for _, d := range all {
			if d.typ == typ {
				out = append(out, d)
			}
		}
		return out
	}

	tests := []struct {
		section string
		check   func(t *testing.T)
	}{
		{"2.3.1 Spec Version: spec_version is 1_0", func(t *testing.T) {
			if cfg.SpecVersion != "1_0" {
				t.Errorf("spec_version %q", cfg.SpecVersion)
			}
		}},
		{"2.3.2 Delivery Method: delivery_methods_supported present", func(t *testing.T) {
			if !slices.Contains(cfg.DeliveryMethodsSupported, ssf.MethodPush) || !slices.Contains(cfg.DeliveryMethodsSupported, ssf.MethodPoll) {
				t.Errorf("delivery_methods_supported %v", cfg.DeliveryMethodsSupported)
			}
		}},
		{"2.3.3 JWKS URI: jwks_uri present and provides the current signing key", func(t *testing.T) {
			if cfg.JWKSURI != issuer+"/.well-known/jwks.json" {
				t.Errorf("jwks_uri %q", cfg.JWKSURI)
			}
			for _, d := range all {
				if !hasKey(t, in.jwks(t), d.header["kid"].(string)) {
					t.Fatalf("the JWKS lacks the SETs' kid %v", d.header["kid"])
				}
			}
		}},
		{"2.3.4 Configuration Endpoint: present, POST creates a stream", func(t *testing.T) {
			if cfg.ConfigurationEndpoint != issuer+"/ssf/streams" {
				t.Errorf("configuration_endpoint %q", cfg.ConfigurationEndpoint)
			}
			if len(byFormat) != 2 {
				t.Error("streams not created")
			}
		}},
		{"2.3.5 Status Endpoint: present; enabled, paused, disabled accepted", func(t *testing.T) {
			if cfg.StatusEndpoint != issuer+"/ssf/status" {
				t.Errorf("status_endpoint %q", cfg.StatusEndpoint)
			}
			st := in.stream(t, "rp", ssf.StreamInput{})
			for _, status := range []string{"paused", "disabled", "enabled"} {
				got, err := in.svc.SetStreamStatus(ctx, "rp", st.ID, status, "")
				if err != nil || got.Status != status {
					t.Errorf("update status %s: %v, %v", status, got, err)
				}
				read, err := in.svc.StreamStatus(ctx, "rp", st.ID)
				if err != nil || read.Status != status {
					t.Errorf("read status after %s: %v, %v", status, read, err)
				}
			}
		}},
		{"2.3.6 Verification Endpoint: present, sends a verification event", func(t *testing.T) {
			if cfg.VerificationEndpoint != issuer+"/ssf/verify" {
				t.Errorf("verification_endpoint %q", cfg.VerificationEndpoint)
			}
			v := ofType(ssf.TypeVerification)
			if len(v) != 1 || v[0].event["state"] != "state-1" {
				t.Fatalf("verification events %v", v)
			}
		}},
		{"2.3.7 Authorization Schemes: urn:ietf:rfc:6749", func(t *testing.T) {
			if !slices.Contains(cfg.AuthorizationSchemes, "urn:ietf:rfc:6749") {
				t.Errorf("authorization_schemes %v", cfg.AuthorizationSchemes)
			}
		}},
		{"2.3.8.1 Delivery: push and poll streams created, delivery present with its method", func(t *testing.T) {
			for _, d := range []ssf.Delivery{{Method: ssf.MethodPoll}, {Method: ssf.MethodPush, EndpointURL: "https://rp.example.test/events"}} {
				st, err := in.svc.CreateStream(ctx, "rp2", ssf.StreamInput{Delivery: &d})
				if err != nil || st.Delivery.Method != d.Method || st.Delivery.EndpointURL == "" {
					t.Errorf("create %s stream: %+v, %v", d.Method, st, err)
				}
			}
		}},
		{"2.3.8.2 Stream Control: create, read configuration, read status, verify", func(t *testing.T) {
			st := byFormat[ssf.FormatIssSub]
			if got, err := in.svc.Stream(ctx, "rp", st.ID); err != nil || got.ID != st.ID {
				t.Errorf("read: %v, %v", got, err)
			}
			if got, err := in.svc.StreamStatus(ctx, "rp", st.ID); err != nil || got.Status != "enabled" {
				t.Errorf("status: %v, %v", got, err)
			}
		}},
		{"2.5 Event Subjects: email, iss_sub, and opaque for verification", func(t *testing.T) {
			for _, d := range sets[ssf.FormatEmail] {
				if d.typ != ssf.TypeVerification && (d.subID["format"] != "email" || d.subID["email"] != "dana@example.test") {
					t.Errorf("email stream sub_id %v", d.subID)
				}
			}
			for _, d := range sets[ssf.FormatIssSub] {
				want := "iss_sub"
				if d.typ == ssf.TypeVerification {
					want = "opaque"
				}
				if d.subID["format"] != want {
					t.Errorf("%s sub_id %v, want format %s", d.typ, d.subID, want)
				}
			}
		}},
		{"2.6 Event Signatures: RS256 with a key of at least 2048 bits", func(t *testing.T) {
			for _, d := range all {
				if d.header["alg"] != "RS256" || d.header["typ"] != "secevent+jwt" {
					t.Errorf("header %v", d.header)
				}
				if bits := modulusBits(t, in.jwks(t), d.header["kid"].(string)); bits < 2048 {
					t.Errorf("key of %d bits", bits)
				}
			}
		}},
		{"2.8.1 The events claim: exactly one event", func(t *testing.T) {
			for _, d := range all {
				if n := len(d.claims["events"].(map[string]any)); n != 1 {
					t.Errorf("%d events in one SET", n)
				}
			}
		}},
		{"3.1 Session Revocation: session-revoked with a non-empty reason_admin", func(t *testing.T) {
			got := ofType(ssf.TypeSessionRevoked)
			if len(got) != 2 { // the logout, on two streams (the reset found no live session)
				t.Fatalf("%d session-revoked SETs, want 2", len(got))
			}
			for _, d := range got {
				if r, _ := d.event["reason_admin"].(map[string]any); len(r) == 0 || r["en"] == "" {
					t.Errorf("reason_admin %v", d.event["reason_admin"])
				}
			}
		}},
		{"3.2 Credential Change: change_type, credential_type, non-empty reason_admin", func(t *testing.T) {
			got := ofType(ssf.TypeCredentialChange)
			if len(got) != 2 {
				t.Fatalf("%d credential-change SETs, want 2", len(got))
			}
			for _, d := range got {
				if d.event["change_type"] != "update" || d.event["credential_type"] != "password" {
					t.Errorf("credential-change %v", d.event)
				}
				if r, _ := d.event["reason_admin"].(map[string]any); len(r) == 0 || r["en"] == "" {
					t.Errorf("reason_admin %v", d.event["reason_admin"])
				}
			}
		}},
		{"SSF 1.0 4.1: iss matches, no sub, no exp, aud is the stream's", func(t *testing.T) {
			for f, ds := range sets {
				for _, d := range ds {
					if d.claims["iss"] != issuer || d.claims["aud"] != byFormat[f].Audience[0] {
						t.Errorf("iss %v aud %v", d.claims["iss"], d.claims["aud"])
					}
				}
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.section, tc.check)
	}
}

// jwk finds key kid in the JWK set.
func jwk(t *testing.T, jwks []byte, kid string) map[string]any {
	t.Helper()
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		if k["kid"] == kid {
			return k
		}
	}
	return nil
}

func hasKey(t *testing.T, jwks []byte, kid string) bool { return jwk(t, jwks, kid) != nil }

func modulusBits(t *testing.T, jwks []byte, kid string) int {
	t.Helper()
	k := jwk(t, jwks, kid)
	n, err := base64.RawURLEncoding.DecodeString(k["n"].(string))
	if err != nil || k["kty"] != "RSA" {
		t.Fatalf("SET key %v", k)
	}
	return len(n) * 8
}

package interop_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"
	"github.com/golang-jwt/jwt/v5"

	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/app"
	"github.com/authapi/authapi/internal/keyring"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/store/storetest"
	"github.com/authapi/authapi/internal/testclock"
	"github.com/authapi/authapi/internal/token"
)

const (
	accessLifetime = 15 * time.Minute
	userPassword   = "a Passw0rd for interop"
)

// authapi is a running server, as serve assembles it, whose issuer is its own URL.
type authapi struct {
	issuer string
	clock  *testclock.Clock
	api    *client.ClientWithResponses
}

func startAuthapi(t *testing.T, backend, alg string) *authapi {
	t.Helper()
	ctx := context.Background()
	ts := httptest.NewUnstartedServer(nil)
	t.Cleanup(ts.Close)
	issuer := "http://" + ts.Listener.Addr().String()
	clk := testclock.New(time.Now().UTC().Truncate(time.Second))
	hasher := password.NewHasher(password.FastParams(), password.Limit{Wait: time.Minute})
	a, err := app.Start(ctx, ctx, app.Config{
		DSN:      storetest.DSN(t, backend),
		Server:   server.Config{AccessTokenLifetime: accessLifetime, RefreshTokenLifetime: time.Hour, RotateRefreshTokens: true, Now: clk.Now},
		Token:    token.Config{Issuer: issuer},
		Keys:     keyring.Options{Algorithm: alg, Retention: time.Hour, Now: clk.Now},
		CacheOff: true, Hasher: hasher,
		Init: func(ctx context.Context, st *store.Store) error {
			hash, err := hasher.Hash(ctx, userPassword)
			if err != nil {
				return err
			}
			return st.CreateUser(ctx, &store.User{Username: "alice", Email: "alice@example.com", PasswordHash: hash, IsActive: true, DateJoined: clk.Now()})
		},
	})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = a.Close() })
	ts.Config.Handler = a.Server
	ts.Start()
	api, err := client.NewClientWithResponses(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	return &authapi{issuer: issuer, clock: clk, api: api}
}

func (s *authapi) login(t *testing.T) client.TokenPair {
	t.Helper()
	r, err := s.api.ObtainTokenWithResponse(context.Background(), client.TokenObtainRequest{Username: "alice", Password: userPassword})
	if err != nil || r.JSON200 == nil {
		t.Fatalf("login: %v %d %s", err, r.StatusCode(), r.Body)
	}
	return *r.JSON200
}

// discover is what a resource server configured with the issuer URL does: read the
// metadata at <issuer>/.well-known/openid-configuration, check it names the same issuer,
// and take its jwks_uri.
func discover(t *testing.T, issuer string) (jwksURI string) {
	t.Helper()
	resp, err := http.Get(issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&meta); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("discovery: %d %v", resp.StatusCode, err)
	}
	if meta.Issuer != issuer || meta.JWKSURI == "" {
		t.Fatalf("discovery names issuer %q, jwks_uri %q; want issuer %q", meta.Issuer, meta.JWKSURI, issuer)
	}
	return meta.JWKSURI
}

// verifier is a third-party library verifying an access token for audience.
type verifier func(raw, audience string) error

// keyfuncVerifier is MicahParks/keyfunc (the JWKS, fetched and refreshed by the library) with
// golang-jwt/jwt: signature, iss, aud and exp (required), as its README configures it.
func keyfuncVerifier(t *testing.T, issuer string) verifier {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	kf, err := keyfunc.NewDefaultCtx(ctx, []string{discover(t, issuer)})
	if err != nil {
		t.Fatal(err)
	}
	return func(raw, audience string) error {
		_, err := jwt.Parse(raw, kf.Keyfunc, jwt.WithIssuer(issuer), jwt.WithAudience(audience),
			jwt.WithExpirationRequired(), jwt.WithValidMethods([]string{"EdDSA", "ES256", "RS256"}))
		return err
	}
}

// errWrongTyp is the RFC 9068 section 4 check a go-jose user writes: go-jose leaves typ to
// its caller.
var errWrongTyp = errors.New("typ is not at+jwt")

// goJoseVerifier is go-jose: the JWKS fetched once, the signature by the key the kid names,
// the header typ (RFC 9068), then iss, aud and the times.
func goJoseVerifier(t *testing.T, issuer string) verifier {
	resp, err := http.Get(discover(t, issuer))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	var set jose.JSONWebKeySet
	if err != nil || json.Unmarshal(body, &set) != nil {
		t.Fatalf("jwks: %v %s", err, body)
	}
	return func(raw, audience string) error {
		tok, err := josejwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.EdDSA, jose.ES256, jose.RS256})
		if err != nil {
			return err
		}
		keys := set.Key(tok.Headers[0].KeyID)
		if len(keys) != 1 {
			return fmt.Errorf("kid %q: %d keys", tok.Headers[0].KeyID, len(keys))
		}
		var c josejwt.Claims
		if err := tok.Claims(keys[0].Key, &c); err != nil {
			return err
		}
		if typ, _ := tok.Headers[0].ExtraHeaders[jose.HeaderType].(string); typ != "at+jwt" {
			return fmt.Errorf("%w: %q", errWrongTyp, typ)
		}
		return c.ValidateWithLeeway(josejwt.Expected{Issuer: issuer, AnyAudience: []string{audience}}, 0)
	}
}

// TestThirdPartyVerifiers: configured with the issuer URL and the audience only, keyfunc +
// golang-jwt and go-jose accept a fresh access token and refuse an expired, tampered,
// wrong-audience or refresh token, each for its reason; with every signing algorithm.
func TestThirdPartyVerifiers(t *testing.T) {
	for _, alg := range []string{token.EdDSA, token.ES256, token.RS256} {
		for _, backend := range storetest.Backends {
			t.Run(alg+"/"+backend, func(t *testing.T) {
				t.Parallel()
				srv := startAuthapi(t, backend, alg)
				fresh := srv.login(t)
				// Expired by the libraries' own clocks (they are not told of the server's): issued
				// an hour ago, it expired 45 minutes ago.
				now := srv.clock.Now()
				srv.clock.Set(now.Add(-time.Hour))
				expired := srv.login(t).Access
				srv.clock.Set(now)

				audience := srv.issuer // --audience defaults to the issuer
				cases := []struct {
					name, raw, audience string
					jwtErr, joseErr     error // nil: accepted
				}{
					{"fresh access token", fresh.Access, audience, nil, nil},
					{"expired access token", expired, audience, jwt.ErrTokenExpired, josejwt.ErrExpired},
					{"tampered access token", tamper(t, fresh.Access), audience, jwt.ErrTokenSignatureInvalid, jose.ErrCryptoFailure},
					{"access token for another audience", fresh.Access, "https://other-api.example", jwt.ErrTokenInvalidAudience, josejwt.ErrInvalidAudience},
					// A refresh token has no aud (golang-jwt, told an audience, requires one) and says typ JWT
					// (go-jose, checking typ first as RFC 9068 asks, refuses it for that).
					{"refresh token", fresh.Refresh, audience, jwt.ErrTokenRequiredClaimMissing, errWrongTyp},
				}
				verifiers := []struct {
					name   string
					verify verifier
					want   func(jwtErr, joseErr error) error
				}{
					{"keyfunc+golang-jwt", keyfuncVerifier(t, srv.issuer), func(e, _ error) error { return e }},
					{"go-jose", goJoseVerifier(t, srv.issuer), func(_, e error) error { return e }},
				}
				for _, v := range verifiers {
					for _, tc := range cases {
						err := v.verify(tc.raw, tc.audience)
						want := v.want(tc.jwtErr, tc.joseErr)
						switch {
						case want == nil && err != nil:
							t.Errorf("%s refused the %s: %v", v.name, tc.name, err)
						case want != nil && err == nil:
							t.Errorf("%s accepted the %s", v.name, tc.name)
						case want != nil && !errors.Is(err, want):
							t.Errorf("%s refused the %s with %v, want %v", v.name, tc.name, err, want)
						}
					}
				}
			})
		}
	}
}

// tamper changes the payload's sub and user_id, keeping the header and signature.
func tamper(t *testing.T, raw string) string {
	t.Helper()
	seg := strings.Split(raw, ".")
	payload, err := base64.RawURLEncoding.DecodeString(seg[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	c["sub"], c["user_id"] = "2", 2
	changed, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	return seg[0] + "." + base64.RawURLEncoding.EncodeToString(changed) + "." + seg[2]
}

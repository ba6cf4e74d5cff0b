package server_test

// Fuzz targets for the HTTP server: request bodies of every operation that takes one, and
// the Authorization header. Each target builds one real server (SQLite) per process and
// checks every answer: never a 5xx, every 4xx the spec's Error body, every status one the
// spec declares for the operation. Seeds only, they run as ordinary tests; fuzz with, e.g.:
//
//	go test -run='^$' -fuzz='^FuzzRequestBodies$' -fuzztime=20s ./server/
//
// The signing key is fixed so that tokens in the committed corpus (testdata/fuzz/) verify;
// their sessions do not exist, so they reach the database and are refused there.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/server"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/testbin"
	"github.com/authapi/authapi/internal/token"
)

// fuzzSigningKey is a fixed Ed25519 key with kid "fuzz".
func fuzzSigningKey(tb testing.TB) token.Key {
	tb.Helper()
	seed := sha256.Sum256([]byte("authapi server fuzz signing key"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	jwk, err := json.Marshal(map[string]string{
		"kty": "OKP", "crv": "Ed25519", "d": b64url(priv.Seed()), "x": b64url(priv.Public().(ed25519.PublicKey)),
		"kid": "fuzz", "alg": token.EdDSA,
	})
	if err != nil {
		tb.Fatal(err)
	}
	return token.Key{ID: "fuzz", Algorithm: token.EdDSA, Private: jwk, CreatedAt: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// fuzzServer is one server shared by every input of a fuzz target.
type fuzzServer struct {
	e      *testEnv
	http   *http.Client
	log    *testbin.Buffer
	auth   string // Authorization of a superuser session nothing fuzzed can end
	target int64  // the user PUT and PATCH change
}

func newFuzzServer(tb testing.TB) *fuzzServer {
	tb.Helper()
	log := &testbin.Buffer{}
	e := newKeyedEnv(tb, "sqlite", fuzzSigningKey(tb), func(c *server.Config) {
		c.Logger = slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelWarn}))
		// Throttled logins would hide the login path after a few dozen inputs.
		c.LoginFailuresPerAccount, c.LoginFailuresPerIP = -1, -1
	})
	fs := &fuzzServer{e: e, log: log, http: &http.Client{Timeout: 30 * time.Second}}
	fuzzUser(tb, e, "root", superRole)
	fs.target = fuzzUser(tb, e, "target", regular).ID
	fs.auth = "Bearer " + fuzzLogin(tb, e, "root").Access
	return fs
}

// fuzzUser is mustUser for testing.TB.
func fuzzUser(tb testing.TB, e *testEnv, username string, r role) store.User {
	tb.Helper()
	hash, err := e.hasher.Hash(context.Background(), demoPassword)
	if err != nil {
		tb.Fatal(err)
	}
	u := store.User{
		Username: username, FirstName: "Fuzz", LastName: "Seed", Email: username + "@example.com", PasswordHash: hash,
		IsActive: true, IsStaff: r >= staffRole, IsSuperuser: r == superRole, DateJoined: e.clock.Now(),
	}
	if err := e.store.CreateUser(context.Background(), &u); err != nil {
		tb.Fatalf("create user %s: %v", username, err)
	}
	return u
}

// fuzzLogin is mustLogin for testing.TB.
func fuzzLogin(tb testing.TB, e *testEnv, username string) client.TokenPair {
	tb.Helper()
	resp, err := e.client.ObtainTokenWithResponse(context.Background(), client.TokenObtainRequest{Username: username, Password: demoPassword})
	if err != nil {
		tb.Fatal(err)
	}
	if resp.JSON200 == nil {
		tb.Fatalf("login %s: status %d, body %s", username, resp.StatusCode(), resp.Body)
	}
	return *resp.JSON200
}

// specStatuses lists the status codes the spec declares for method and path.
func specStatuses(tb testing.TB, method, path string) []int {
	tb.Helper()
	spec, err := gen.GetSpec()
	if err != nil {
		tb.Fatal(err)
	}
	item := spec.Paths.Value(path)
	if item == nil || item.GetOperation(method) == nil {
		tb.Fatalf("spec has no %s %s", method, path)
	}
	var codes []int
	for code := range item.GetOperation(method).Responses.Map() {
		n, err := strconv.Atoi(code)
		if err != nil {
			tb.Fatalf("%s %s: response %q is not a status code", method, path, code)
		}
		codes = append(codes, n)
	}
	return codes
}

// check sends req and holds the answer to the rules every operation keeps.
func (fs *fuzzServer) check(t *testing.T, what string, req *http.Request, declared []int) (int, []byte) {
	t.Helper()
	r, err := fs.http.Do(req)
	if err != nil {
		t.Fatalf("%s: %v\nserver log:\n%s", what, err, fs.log.String())
	}
	defer r.Body.Close()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatalf("%s: reading body: %v", what, err)
	}
	if r.StatusCode >= 500 {
		t.Fatalf("%s: status %d, body %s\nserver log:\n%s", what, r.StatusCode, body, fs.log.String())
	}
	if !slices.Contains(declared, r.StatusCode) {
		t.Fatalf("%s: status %d is not in the spec (%v); body %s", what, r.StatusCode, declared, body)
	}
	if r.StatusCode >= 400 {
		if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("%s: status %d with Content-Type %q; body %s", what, r.StatusCode, ct, body)
		}
		var e client.Error
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil || e.Code == "" || e.Detail == "" {
			t.Fatalf("%s: status %d, not the Error schema (%v): %s", what, r.StatusCode, err, body)
		}
	} else if len(body) > 0 && !json.Valid(body) {
		t.Fatalf("%s: status %d, body is not JSON: %s", what, r.StatusCode, body)
	}
	return r.StatusCode, body
}

// bodyOps are the operations that take a request body, as the spec names their paths.
var bodyOps = []struct{ method, path string }{
	{http.MethodPost, "/api/v1/auth/token/"},
	{http.MethodPost, "/api/v1/auth/token/refresh/"},
	{http.MethodPost, "/api/v1/auth/token/verify/"},
	{http.MethodPost, "/api/v1/auth/logout/"},
	{http.MethodPost, "/api/v1/account/management/create/"},
	{http.MethodPut, "/api/v1/account/management/{id}/update/"},
	{http.MethodPatch, "/api/v1/account/management/{id}/update/"},
	{http.MethodPost, "/api/v1/account/password/"},
}

const (
	opLogin = iota
	opRefresh
	opVerify
	opLogout
	opCreate
	opPut
	opPatch
	opPassword
)

var fuzzContentTypes = []string{
	"application/json",
	"application/x-www-form-urlencoded",
	"application/json; charset=utf-8",
	"",
	"text/plain",
	"multipart/form-data; boundary=x",
	"APPLICATION/JSON",
	"application/json; charset=utf-16",
	"application/merge-patch+json",
	"application/json;;",
	"application/x-www-form-urlencoded; charset=utf-8",
}

// FuzzRequestBodies sends (body, content type, operation) as a superuser.
func FuzzRequestBodies(f *testing.F) {
	fs := newFuzzServer(f)
	declared := make([][]int, len(bodyOps))
	for i, op := range bodyOps {
		declared[i] = specStatuses(f, op.method, op.path)
	}
	// Tokens for the seeds, each from a root session of its own: the logout and refresh seeds
	// end or rotate theirs, never the one fs.auth uses.
	verify := fuzzLogin(f, fs.e, "root")
	refresh := fuzzLogin(f, fs.e, "root")
	logout := fuzzLogin(f, fs.e, "root")
	jsonOf := func(v any) []byte { b, _ := json.Marshal(v); return b }
	for _, s := range []struct {
		op, ct int
		body   []byte
	}{
		{opLogin, 0, jsonOf(client.TokenObtainRequest{Username: "root", Password: demoPassword})},
		{opLogin, 1, []byte("username=target&password=" + demoPassword)},
		{opLogin, 0, []byte(`{"username":"root","password":"wrong"}`)},
		{opLogin, 1, []byte("username=%zz&password=")},
		{opRefresh, 0, jsonOf(client.TokenRefreshRequest{Refresh: refresh.Refresh})},
		{opRefresh, 0, jsonOf(client.TokenRefreshRequest{Refresh: verify.Access})},
		{opVerify, 0, jsonOf(client.TokenVerifyRequest{Token: verify.Access})},
		{opVerify, 0, jsonOf(client.TokenVerifyRequest{Token: verify.Refresh})},
		{opVerify, 0, []byte(`{"token":"a.b.c"}`)},
		{opLogout, 0, jsonOf(client.LogoutRequest{Refresh: logout.Refresh})},
		{opCreate, 0, []byte(`{"username":"newuser","password":"correct horse battery staple 42","email":"n@example.com","first_name":"N","last_name":"U"}`)},
		{opCreate, 0, []byte(`{"username":"nul","password":"correct horse battery staple 42","email":"z@example.com","first_name":"\u0000","last_name":"\ud800"}`)},
		{opCreate, 0, []byte(`{"username":"` + strings.Repeat("é", 200) + `","password":"p"}`)},
		{opPut, 0, []byte(`{"username":"target","first_name":"T","last_name":"U","email":"t@example.com","is_active":true,"is_staff":false}`)},
		{opPatch, 0, []byte(`{"first_name":"Changed"}`)},
		{opPatch, 0, []byte(`{"password":"another long passphrase 77","is_staff":true}`)},
		{opPatch, 2, []byte(`{"email":null}`)},
		{opPatch, 0, []byte(`{"username":1e400}`)},
		{opPut, 0, []byte(`{"username":"root"}`)},
		{opPassword, 0, []byte(`{"old_password":"wrong","new_password":"1234"}`)},
		{opPassword, 0, []byte(`{"old_password":"` + demoPassword + `","new_password":"another long passphrase 78"}`)},
		{opPassword, 0, []byte(`{"old_password":"\u0000","new_password":"\ud800\ud800\ud800\ud800\ud800\ud800\ud800\ud800"}`)},
		{opCreate, 3, nil},
		{opVerify, 4, []byte(`hello`)},
		{opLogin, 5, []byte("--x\r\nContent-Disposition: form-data; name=\"username\"\r\n\r\nroot\r\n--x--\r\n")},
	} {
		f.Add(s.body, uint8(s.ct), uint8(s.op))
	}
	f.Fuzz(func(t *testing.T, body []byte, ctIndex, opIndex uint8) {
		op := bodyOps[int(opIndex)%len(bodyOps)]
		ct := fuzzContentTypes[int(ctIndex)%len(fuzzContentTypes)]
		path := strings.Replace(op.path, "{id}", fmt.Sprint(fs.target), 1)
		req, err := http.NewRequest(op.method, fs.e.url+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		req.Header.Set("Authorization", fs.auth)
		fs.check(t, fmt.Sprintf("%s %s (%s, %q)", op.method, path, ct, body), req, declared[int(opIndex)%len(bodyOps)])
	})
}

// validHeaderValue reports whether net/http will send v as a header value.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// FuzzAuthorizationHeader sends the Authorization header of GET /api/v1/: only a well-formed
// Bearer header with a token Parse accepts gets in; everything else is a 401 Error body.
func FuzzAuthorizationHeader(f *testing.F) {
	fs := newFuzzServer(f)
	declared := specStatuses(f, http.MethodGet, "/api/v1/")
	pair := fuzzLogin(f, fs.e, "root")
	for _, h := range []string{
		fs.auth, "Bearer " + pair.Access, "Bearer " + pair.Refresh, "Bearer  " + pair.Access + " ", "bearer " + pair.Access,
		"Bearer\t" + pair.Access, "", "Bearer", "Bearer ", "Bearer a b", "Basic cm9vdDpwdw==", "Token abc",
		"Bearer " + strings.Replace(pair.Access, ".", "..", 1), "Bearer " + pair.Access + ".",
		"Bearer eyJhbGciOiJub25lIn0.eyJ1c2VyX2lkIjoxfQ.", "Bearer " + strings.Repeat("A", 9000),
	} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, header string) {
		if !validHeaderValue(header) {
			return // net/http would refuse to send it
		}
		req, err := http.NewRequest(http.MethodGet, fs.e.url+"/api/v1/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if header != "" {
			req.Header.Set("Authorization", header)
		}
		status, body := fs.check(t, fmt.Sprintf("Authorization %q", header), req, declared)
		switch status {
		case http.StatusOK:
			fields := strings.Fields(header)
			if len(fields) != 2 || fields[0] != "Bearer" {
				t.Fatalf("Authorization %q let in", header)
			}
			if _, err := fs.e.tokens.Parse(fields[1], token.Access); err != nil {
				t.Fatalf("Authorization %q let in, but Parse says %v", header, err)
			}
		case http.StatusUnauthorized:
			var e client.Error
			_ = json.Unmarshal(body, &e)
			if !slices.Contains([]client.ErrorCode{"not_authenticated", "bad_authorization_header", "token_not_valid", "user_not_found", "user_inactive"}, e.Code) {
				t.Fatalf("Authorization %q: 401 code %q", header, e.Code)
			}
		default:
			t.Fatalf("Authorization %q: status %d, body %s", header, status, body)
		}
	})
}

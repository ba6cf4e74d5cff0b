package server

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzRefuseRepeated pins refuseRepeated, which unescapes only the names, to url.ParseQuery:
// it refuses exactly the bodies ParseQuery refuses or in which it finds a name twice, and
// leaves the body for the next reader.
func FuzzRefuseRepeated(f *testing.F) {
	for _, s := range []string{
		"", "token=a.b.c", "token=a&token=b", "token=a&to%6Ben=b", "token=%zz", "token=%4", "token=%41",
		"to%ken=a", "a=1;b=2", "a=1&&b=2", "=x&=y", "a&a", "a+b=1&a%20b=2", "token=a%2", "x=%%41",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		form, perr := url.ParseQuery(body)
		wantRefused := perr != nil
		for _, v := range form {
			wantRefused = wantRefused || len(v) > 1
		}
		req, _ := http.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		err := refuseRepeated(req)
		var oe *oauthError
		if err != nil && !errors.As(err, &oe) {
			t.Fatalf("%q: %v, want an OAuth error", body, err)
		}
		if (err != nil) != wantRefused {
			t.Fatalf("%q: refused = %v, url.ParseQuery says %v (err %v, form %v)", body, err != nil, wantRefused, perr, form)
		}
		if rest, _ := io.ReadAll(req.Body); string(rest) != body {
			t.Fatalf("%q: the body left is %q", body, rest)
		}
	})
}

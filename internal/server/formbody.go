package server

import (
	"bytes"
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
)

const formMediaType = "application/x-www-form-urlencoded"

// anyFormConforms reports whether every well-formed form conforms to op's form body: its
// schema is an object of strings with no constraint at all (no required member, length,
// pattern, format, enum; unknown members allowed). Such a body (the OAuth endpoints') only
// needs to be well-formed, which wellFormedForm checks for a fraction of the validator's cost.
// Anything else in the schema, known or not, keeps the full validation.
func anyFormConforms(op *openapi3.Operation) bool {
	if op.RequestBody == nil || op.RequestBody.Value == nil {
		return false
	}
	mt := op.RequestBody.Value.Content.Get(formMediaType)
	if mt == nil || len(mt.Encoding) > 0 || mt.Schema == nil || mt.Schema.Value == nil {
		return false
	}
	s := mt.Schema.Value
	if !only(s, "type", "properties") || !s.Type.Is("object") {
		return false
	}
	for _, p := range s.Properties {
		if p.Value == nil || !only(p.Value, "type") || !p.Value.Type.Is("string") {
			return false
		}
	}
	return true
}

// only reports whether s says nothing but keys, descriptions, examples and extensions.
func only(s *openapi3.Schema, keys ...string) bool {
	b, err := json.Marshal(s)
	if err != nil {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil {
		return false
	}
	for k := range m {
		switch {
		case strings.HasPrefix(k, "x-"), k == "description", k == "title", k == "example", k == "examples":
		case !slices.Contains(keys, k):
			return false
		}
	}
	return true
}

// wellFormedForm reports whether req's body is a form url.ParseQuery accepts, and puts the
// body back. Values are scanned, not decoded.
func wellFormedForm(req *http.Request) (bool, error) {
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != formMediaType {
		return false, nil
	}
	b, err := io.ReadAll(req.Body)
	if err != nil {
		return false, err
	}
	req.Body = io.NopCloser(bytes.NewReader(b))
	for pair := range strings.SplitSeq(string(b), "&") {
		if strings.Contains(pair, ";") || !validEscapes(pair) {
			return false, nil
		}
	}
	return true, nil
}

// validEscapes reports whether url.QueryUnescape would accept s: every % starts two hex
// digits.
func validEscapes(s string) bool {
	for i := strings.IndexByte(s, '%'); i >= 0; i = strings.IndexByte(s, '%') {
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return false
		}
		s = s[i+3:]
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/authapi/authapi/gen/client"
)

// jsonBinder decodes request bodies strictly: JSON only, unknown fields refused, one value
// only. The generated strict handlers call it for every JSON body; parameters are bound by the
// generated wrappers, not here.
type jsonBinder struct{}

func (jsonBinder) Bind(i any, c echo.Context) error {
	req := c.Request()
	if req.ContentLength == 0 {
		return nil
	}
	mediaType, _, err := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	if err != nil || mediaType != echo.MIMEApplicationJSON {
		return errUnsupportedMediaType(req.Header.Get(echo.HeaderContentType))
	}
	dec := json.NewDecoder(req.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(i); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty body: the handler reports the missing fields
		}
		if specFieldErrors(req.Context()) != nil && fieldError(err) {
			// The spec validation found these members invalid and the handler reports them;
			// the decoder skipped them and decoded the others, which the handler checks.
			return nil
		}
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return parseError("unexpected data after the JSON value")
	}
	return nil
}

// decodeError turns encoding/json's errors into the spec's Error body.
func decodeError(err error) error {
	var (
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
		tooLarge  *echo.HTTPError
	)
	switch {
	case errors.As(err, &tooLarge):
		return err
	case errors.As(err, &syntaxErr):
		return parseError(fmt.Sprintf("%s (at byte %d)", syntaxErr.Error(), syntaxErr.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return parseError("unexpected end of JSON input")
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return parseError(fmt.Sprintf("expected a JSON %s, got %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value))
		}
		return errInvalid(map[string][]string{typeErr.Field: {mustBe(jsonKind(typeErr.Type.Kind().String()))}})
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return errInvalid(map[string][]string{strings.Trim(field, `"`): {"Unknown field."}})
	}
	return parseError(err.Error())
}

// fieldError reports whether err, from a decoder that went on to the end of the value, is
// about one member: a wrong type or an unknown name.
func fieldError(err error) bool {
	var typeErr *json.UnmarshalTypeError
	return errors.As(err, &typeErr) && typeErr.Field != "" || strings.HasPrefix(err.Error(), "json: unknown field ")
}

func parseError(detail string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: client.ErrorCodeParseError, Detail: "JSON parse error - " + detail}
}

// mustBe says which JSON type a value must have: "Must be an object."
func mustBe(kind string) string {
	if strings.ContainsRune("aeiou", rune(kind[0])) {
		return "Must be an " + kind + "."
	}
	return "Must be a " + kind + "."
}

// jsonKind names a Go kind the way a JSON client thinks of it.
func jsonKind(kind string) string {
	switch kind {
	case "string":
		return "string"
	case "bool":
		return "boolean"
	case "struct", "map":
		return "object"
	case "slice", "array":
		return "list"
	default:
		if strings.HasPrefix(kind, "int") || strings.HasPrefix(kind, "uint") || strings.HasPrefix(kind, "float") {
			return "number"
		}
		return "value"
	}
}

package server

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/oasdiff/yaml"
	"github.com/swaggest/swgui"
	"github.com/swaggest/swgui/v5emb"

	"github.com/authapi/authapi/gen"
)

const (
	swaggerUIPath = "/api/v1/swagger/ui/"
	specJSONPath  = "/api/v1/openapi.json"
	specYAMLPath  = "/api/v1/openapi.yaml"
)

// registerDocs serves the embedded spec and Swagger UI. The UI's assets are embedded in the
// binary (swgui), so the page works offline.
func registerDocs(e *echo.Echo, title string) error {
	specYAML := gen.SpecYAML
	specJSON, err := yaml.YAMLToJSON(specYAML)
	if err != nil {
		return fmt.Errorf("spec to json: %w", err)
	}
	e.GET(specJSONPath, func(c echo.Context) error { return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, specJSON) })
	e.GET(specYAMLPath, func(c echo.Context) error { return c.Blob(http.StatusOK, "application/yaml", specYAML) })

	ui := v5emb.NewHandlerWithConfig(swgui.Config{
		Title:       title,
		SwaggerJSON: specJSONPath,
		BasePath:    swaggerUIPath,
		// A pasted token lives in the page only: persisted, it would outlive the browser in
		// localStorage on the console's origin.
		SettingsUI: map[string]string{"persistAuthorization": "false"},
	})
	csp, err := pageCSP(ui, swaggerUIPath)
	if err != nil {
		return err
	}
	page := echo.WrapHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(echo.HeaderContentSecurityPolicy, csp)
		ui.ServeHTTP(w, r)
	}))
	e.GET(swaggerUIPath, page)
	e.GET(swaggerUIPath+"*", page)
	return nil
}

var (
	inlineScript = regexp.MustCompile(`(?s)<script>(.*?)</script>`)
	inlineStyle  = regexp.MustCompile(`(?s)<style>(.*?)</style>`)
)

// pageCSP is a strict Content Security Policy for the HTML page that h serves at path: scripts
// and styles from this origin, plus the page's own inline blocks by hash, which it renders
// once here (the page is the same on every request); nothing else runs.
func pageCSP(h http.Handler, path string) (string, error) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		return "", fmt.Errorf("render %s for its CSP: status %d", path, rec.Code)
	}
	page := rec.Body.String()
	hashes := func(re *regexp.Regexp) string {
		var out strings.Builder
		for _, m := range re.FindAllStringSubmatch(page, -1) {
			sum := sha256.Sum256([]byte(m[1]))
			fmt.Fprintf(&out, " 'sha256-%s'", base64.StdEncoding.EncodeToString(sum[:]))
		}
		return out.String()
	}
	return "default-src 'none'; script-src 'self'" + hashes(inlineScript) +
		"; style-src 'self'" + hashes(inlineStyle) +
		"; img-src 'self' data:; font-src 'self' data:; connect-src 'self'" +
		"; base-uri 'none'; form-action 'none'; frame-ancestors 'none'", nil
}

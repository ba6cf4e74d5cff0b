package server

import (
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/oasdiff/yaml"
	"github.com/swaggest/swgui"
	"github.com/swaggest/swgui/v5emb"

	"authapi/gen"
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
		SettingsUI:  map[string]string{"persistAuthorization": "true"},
	})
	e.GET(swaggerUIPath, echo.WrapHandler(ui))
	e.GET(swaggerUIPath+"*", echo.WrapHandler(ui))
	return nil
}

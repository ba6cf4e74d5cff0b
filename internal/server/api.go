package server

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/keyring"
)

// jwksMaxAge lets resource servers cache the key set for keyring.JWKSCacheTime; a new key is
// published longer than that before it signs (keyring.Options.PublishAhead), so caches never
// miss a kid.
var jwksMaxAge = fmt.Sprintf("public, max-age=%d", int(keyring.JWKSCacheTime.Seconds()))

// Welcome answers the API ping.
func (h handlers) Welcome(context.Context, gen.WelcomeRequestObject) (gen.WelcomeResponseObject, error) {
	return gen.Welcome200JSONResponse{Name: h.cfg.APIName, ApiVersion: "v1", Message: "Welcome!"}, nil
}

// GetJWKS publishes the public signing keys.
func (h handlers) GetJWKS(ctx context.Context, _ gen.GetJWKSRequestObject) (gen.GetJWKSResponseObject, error) {
	raw, err := h.cfg.Keys.JWKS(ctx)
	if err != nil {
		return nil, fmt.Errorf("build jwks: %w", err)
	}
	var set client.JWKS
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("decode jwks: %w", err)
	}
	return gen.GetJWKS200JSONResponse{Body: set, Headers: gen.GetJWKS200ResponseHeaders{CacheControl: jwksMaxAge}}, nil
}

// GetHealth answers while the process serves requests.
func (h handlers) GetHealth(context.Context, gen.GetHealthRequestObject) (gen.GetHealthResponseObject, error) {
	return gen.GetHealth200JSONResponse{Status: "ok"}, nil
}

// GetReady answers 200 when the server takes requests: it is not draining (see Drain) and the
// database answers. (Until New, Starting answers 503 in its place.)
func (h handlers) GetReady(ctx context.Context, _ gen.GetReadyRequestObject) (gen.GetReadyResponseObject, error) {
	if h.draining.Load() {
		return gen.GetReady503JSONResponse{Code: client.ErrorCodeUnavailable, Detail: msgShuttingDown}, nil
	}
	if err := h.store.Ping(ctx); err != nil {
		h.log.WarnContext(ctx, "readiness check failed", "err", err)
		return gen.GetReady503JSONResponse{Code: client.ErrorCodeUnavailable, Detail: msgDatabaseDown}, nil
	}
	return gen.GetReady200JSONResponse{Status: "ok"}, nil
}

// GetAccount returns the caller's own account.
func (h handlers) GetAccount(ctx context.Context, _ gen.GetAccountRequestObject) (gen.GetAccountResponseObject, error) {
	caller, _ := principalFromContext(ctx)
	return gen.GetAccount200JSONResponse(toAPIAccount(caller.User)), nil
}

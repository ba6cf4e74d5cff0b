package server

import (
	"context"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/clients"
)

// discoveryMaxAge lets the metadata be cached: it changes only with the configuration, that
// is, with a restart.
const discoveryMaxAge = "public, max-age=300"

// serverMetadata is the authorization server metadata (RFC 8414) of issuer: only what authapi
// implements. The endpoints are under the issuer, which must be the public URL.
func serverMetadata(issuer string) gen.ServerMetadataJSONResponse {
	secretMethods := []string{"client_secret_basic", "client_secret_post"}
	return gen.ServerMetadataJSONResponse{
		Body: client.AuthorizationServerMetadata{
			Issuer:                            issuer,
			JwksUri:                           issuer + "/.well-known/jwks.json",
			TokenEndpoint:                     issuer + "/oauth/token",
			IntrospectionEndpoint:             issuer + "/oauth/introspect",
			RevocationEndpoint:                issuer + "/oauth/revoke",
			GrantTypesSupported:               []string{"client_credentials"},
			ResponseTypesSupported:            []string{}, // required by RFC 8414; there is no authorization endpoint
			TokenEndpointAuthMethodsSupported: secretMethods,
			IntrospectionEndpointAuthMethodsSupported: secretMethods,
			// "none": the first-party public client revokes its own tokens (RFC 7009 2.1).
			RevocationEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post", "none"},
			ScopesSupported:                        clients.Scopes,
			// An OpenID member, as RFC 8414 has none for the tokens' algorithms:
			// express-oauth2-jwt-bearer, configured with the issuer alone, accepts exactly the
			// algorithms listed here. Every algorithm a key of authapi's may have.
			IdTokenSigningAlgValuesSupported: []client.SigningAlgorithm{client.EdDSA, client.ES256, client.RS256},
		},
		Headers: gen.ServerMetadataResponseHeaders{CacheControl: discoveryMaxAge},
	}
}

// GetAuthorizationServerMetadata publishes the metadata (RFC 8414).
func (h handlers) GetAuthorizationServerMetadata(context.Context, gen.GetAuthorizationServerMetadataRequestObject) (gen.GetAuthorizationServerMetadataResponseObject, error) {
	return gen.GetAuthorizationServerMetadata200JSONResponse{ServerMetadataJSONResponse: h.metadata}, nil
}

// GetOpenIDConfiguration publishes the same metadata where OpenID Connect Discovery looks.
func (h handlers) GetOpenIDConfiguration(context.Context, gen.GetOpenIDConfigurationRequestObject) (gen.GetOpenIDConfigurationResponseObject, error) {
	return gen.GetOpenIDConfiguration200JSONResponse{ServerMetadataJSONResponse: h.metadata}, nil
}

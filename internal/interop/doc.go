// Package interop holds only tests: third-party resource-server libraries, configured with
// nothing but authapi's issuer URL (discovery, then jwks_uri), verify its access tokens and
// refuse what they must. No authapi code is on the verifying side.
package interop

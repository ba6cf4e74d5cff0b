package server

import (
	"context"
	"encoding/json"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/auth"
)

// toAPICredential is a WebAuthn credential as the API lists it: a factor.
func toAPICredential(c auth.WebAuthnCredential) client.MfaFactor {
	return client.MfaFactor{Type: client.MfaFactorTypeWebauthn, Active: true, CreatedAt: c.CreatedAt,
		Id: &c.ID, Name: &c.Name, Passkey: &c.Passkey, Synced: &c.Synced, LastUsedAt: c.LastUsedAt}
}

func toAPICeremony(c auth.Ceremony) client.WebauthnCeremony {
	return client.WebauthnCeremony{Ceremony: c.Token, Options: c.Options}
}

// credentialJSON is the authenticator's answer as the relying party reads it: JSON again.
// The validator made sure it is an object.
func credentialJSON(v map[string]any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	return json.Marshal(v)
}

// BeginWebauthnRegistration starts the registration of a security key or passkey.
func (h handlers) BeginWebauthnRegistration(ctx context.Context, req gen.BeginWebauthnRegistrationRequestObject) (gen.BeginWebauthnRegistrationResponseObject, error) {
	asPasskey := req.Body != nil && req.Body.Passkey != nil && *req.Body.Passkey
	c, err := h.auth.BeginWebAuthnRegistration(ctx, callerFromContext(ctx), asPasskey)
	if err != nil {
		return nil, err
	}
	return gen.BeginWebauthnRegistration200JSONResponse(toAPICeremony(c)), nil
}

// FinishWebauthnRegistration stores the credential the authenticator made.
func (h handlers) FinishWebauthnRegistration(ctx context.Context, req gen.FinishWebauthnRegistrationRequestObject) (gen.FinishWebauthnRegistrationResponseObject, error) {
	var in auth.WebAuthnRegistration
	if req.Body != nil {
		var err error
		in = auth.WebAuthnRegistration{Ceremony: req.Body.Ceremony, Name: req.Body.Name}
		if in.Credential, err = credentialJSON(req.Body.Credential); err != nil {
			return nil, err
		}
	}
	c, codes, err := h.auth.FinishWebAuthnRegistration(ctx, callerFromContext(ctx), in)
	if err != nil {
		return nil, err
	}
	f := toAPICredential(c)
	out := gen.FinishWebauthnRegistration201JSONResponse{Type: client.WebauthnRegisteredType(f.Type), Active: f.Active, CreatedAt: f.CreatedAt,
		Id: f.Id, Name: f.Name, Passkey: f.Passkey, Synced: f.Synced, LastUsedAt: f.LastUsedAt}
	if codes != nil {
		out.RecoveryCodes = &codes
	}
	return out, nil
}

// RenameWebauthnCredential renames one of the caller's credentials.
func (h handlers) RenameWebauthnCredential(ctx context.Context, req gen.RenameWebauthnCredentialRequestObject) (gen.RenameWebauthnCredentialResponseObject, error) {
	var name string
	if req.Body != nil {
		name = req.Body.Name
	}
	c, err := h.auth.RenameWebAuthnCredential(ctx, callerFromContext(ctx), req.Id, name)
	if err != nil {
		return nil, err
	}
	return gen.RenameWebauthnCredential200JSONResponse(toAPICredential(c)), nil
}

// RemoveWebauthnCredential removes one of the caller's credentials.
func (h handlers) RemoveWebauthnCredential(ctx context.Context, req gen.RemoveWebauthnCredentialRequestObject) (gen.RemoveWebauthnCredentialResponseObject, error) {
	if err := h.auth.RemoveWebAuthnCredential(ctx, callerFromContext(ctx), req.Id); err != nil {
		return nil, err
	}
	return gen.RemoveWebauthnCredential204Response{}, nil
}

// BeginWebauthnReauthentication starts a re-authentication of the caller's session with a
// security key or passkey.
func (h handlers) BeginWebauthnReauthentication(ctx context.Context, _ gen.BeginWebauthnReauthenticationRequestObject) (gen.BeginWebauthnReauthenticationResponseObject, error) {
	c, err := h.auth.BeginWebAuthnReauthentication(ctx, callerFromContext(ctx))
	if err != nil {
		return nil, err
	}
	return gen.BeginWebauthnReauthentication200JSONResponse(toAPICeremony(c)), nil
}

// BeginPasskeyLogin starts a passkey login.
func (h handlers) BeginPasskeyLogin(ctx context.Context, _ gen.BeginPasskeyLoginRequestObject) (gen.BeginPasskeyLoginResponseObject, error) {
	c, err := h.auth.BeginPasskeyLogin(ctx)
	if err != nil {
		return nil, err
	}
	return gen.BeginPasskeyLogin200JSONResponse(toAPICeremony(c)), nil
}

// FinishPasskeyLogin completes a passkey login.
func (h handlers) FinishPasskeyLogin(ctx context.Context, req gen.FinishPasskeyLoginRequestObject) (gen.FinishPasskeyLoginResponseObject, error) {
	in := auth.PasskeyLogin{Client: clientFromContext(ctx)}
	if req.Body != nil {
		var err error
		in.Ceremony = req.Body.Ceremony
		if in.Credential, err = credentialJSON(req.Body.Credential); err != nil {
			return nil, err
		}
	}
	pair, err := h.auth.FinishPasskeyLogin(ctx, in)
	if err != nil {
		return nil, err
	}
	return gen.FinishPasskeyLogin200JSONResponse(toAPIPair(pair)), nil
}

package server

import (
	"context"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/auth"
)

// AnswerMfaChallenge completes a login with its second factor.
func (h handlers) AnswerMfaChallenge(ctx context.Context, req gen.AnswerMfaChallengeRequestObject) (gen.AnswerMfaChallengeResponseObject, error) {
	var in auth.ChallengeAnswer
	if req.Body != nil {
		in = auth.ChallengeAnswer{Challenge: req.Body.Challenge, Method: string(req.Body.Method)}
		if req.Body.Code != nil {
			in.Code = *req.Body.Code
		}
		if req.Body.Credential != nil {
			var err error
			if in.Credential, err = credentialJSON(*req.Body.Credential); err != nil {
				return nil, err
			}
		}
	}
	in.Client = clientFromContext(ctx)
	pair, err := h.auth.AnswerChallenge(ctx, in)
	if err != nil {
		return nil, err
	}
	return gen.AnswerMfaChallenge200JSONResponse(toAPIPair(pair)), nil
}

// ListMfaFactors lists the caller's second factors.
func (h handlers) ListMfaFactors(ctx context.Context, _ gen.ListMfaFactorsRequestObject) (gen.ListMfaFactorsResponseObject, error) {
	f, err := h.auth.FactorsOf(ctx, callerFromContext(ctx).UserID)
	if err != nil {
		return nil, err
	}
	return gen.ListMfaFactors200JSONResponse(toAPIFactors(f)), nil
}

// toAPIFactors is a user's factors on the wire: no secrets.
func toAPIFactors(f auth.Factors) client.MfaFactors {
	out := client.MfaFactors{Factors: []client.MfaFactor{}, RecoveryCodesLeft: f.RecoveryCodesLeft, EnrolmentRequired: f.EnrolmentRequired}
	if f.TOTP != nil {
		out.Factors = append(out.Factors, client.MfaFactor{Type: client.MfaFactorTypeTotp, Active: f.TOTP.Active, CreatedAt: f.TOTP.CreatedAt})
	}
	for _, c := range f.WebAuthn {
		out.Factors = append(out.Factors, toAPICredential(c))
	}
	return out
}

// EnrolTotp makes a pending TOTP factor for the caller.
func (h handlers) EnrolTotp(ctx context.Context, _ gen.EnrolTotpRequestObject) (gen.EnrolTotpResponseObject, error) {
	e, err := h.auth.EnrolTOTP(ctx, callerFromContext(ctx), h.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	return gen.EnrolTotp201JSONResponse{Secret: e.Secret, OtpauthUri: e.URI, QrSvg: e.QRSVG}, nil
}

// ActivateTotp activates the caller's pending TOTP factor and returns the recovery codes.
func (h handlers) ActivateTotp(ctx context.Context, req gen.ActivateTotpRequestObject) (gen.ActivateTotpResponseObject, error) {
	var code string
	if req.Body != nil {
		code = req.Body.Code
	}
	codes, err := h.auth.ActivateTOTP(ctx, callerFromContext(ctx), code)
	if err != nil {
		return nil, err
	}
	return gen.ActivateTotp200JSONResponse{Codes: codes}, nil
}

// RemoveTotp removes the caller's TOTP factor, confirmed by their password.
func (h handlers) RemoveTotp(ctx context.Context, req gen.RemoveTotpRequestObject) (gen.RemoveTotpResponseObject, error) {
	var password string
	if req.Body != nil {
		password = req.Body.Password
	}
	if err := h.auth.RemoveTOTP(ctx, callerFromContext(ctx), password); err != nil {
		return nil, err
	}
	return gen.RemoveTotp204Response{}, nil
}

// RegenerateRecoveryCodes replaces the caller's recovery codes.
func (h handlers) RegenerateRecoveryCodes(ctx context.Context, _ gen.RegenerateRecoveryCodesRequestObject) (gen.RegenerateRecoveryCodesResponseObject, error) {
	codes, err := h.auth.RegenerateRecoveryCodes(ctx, callerFromContext(ctx))
	if err != nil {
		return nil, err
	}
	return gen.RegenerateRecoveryCodes200JSONResponse{Codes: codes}, nil
}

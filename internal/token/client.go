package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Client is the token_type of a client token: the client credentials grant's access token,
// which names an API client and its scopes, and no user or session.
const Client Type = "client"

// ClientClaims are the claims of a client token: sub and client_id are the client's id, aud
// the issuer, scope its scopes space-separated.
type ClientClaims struct {
	ClientID  string
	Scopes    []string
	ID        string // jti
	IssuedAt  time.Time
	ExpiresAt time.Time
}

type wireClientClaims struct {
	TokenType Type   `json:"token_type"`
	Issuer    string `json:"iss"`
	Subject   string `json:"sub"`
	ClientID  string `json:"client_id"`
	Audience  string `json:"aud"`
	Scope     string `json:"scope,omitempty"`
	ExpiresAt int64  `json:"exp"`
	IssuedAt  int64  `json:"iat"`
	ID        string `json:"jti"`
}

// SignClient issues a client token for c, signed with the newest key, its header typ at+jwt
// (RFC 9068, as user access tokens).
// A random jti is used if c.ID is empty.
func (m *Manager) SignClient(c ClientClaims) (string, error) {
	switch {
	case c.ClientID == "":
		return "", errors.New("sign client token: empty client ID")
	case c.IssuedAt.IsZero() || !c.ExpiresAt.After(c.IssuedAt):
		return "", errors.New("sign client token: expiry must be after issue time")
	}
	if c.ID == "" {
		c.ID = fmt.Sprintf("%x", randomBytes(16))
	}
	payload, err := json.Marshal(wireClientClaims{
		TokenType: Client, Issuer: m.cfg.Issuer, Subject: c.ClientID, ClientID: c.ClientID,
		Audience: m.cfg.Issuer, Scope: strings.Join(c.Scopes, " "),
		ExpiresAt: c.ExpiresAt.Unix(), IssuedAt: c.IssuedAt.Unix(), ID: c.ID,
	})
	if err != nil {
		return "", fmt.Errorf("sign client token: %w", err)
	}
	tok, err := m.ring.Load().signer(m.cfg.Now()).sign(typAccess, payload)
	if err != nil {
		return "", fmt.Errorf("sign client token: %w", err)
	}
	return string(tok), nil
}

// ParseClient verifies raw as a client token: header typ at+jwt, a key held, its signature,
// exp, iat, nbf, iss and aud (the issuer), token_type client. It returns ErrWrongType for a
// valid at+jwt token of another type, an error wrapping ErrInvalid for anything else.
func (m *Manager) ParseClient(raw string) (ClientClaims, error) {
	payload, typ, _, err := m.verifySignature(raw)
	if err != nil {
		return ClientClaims{}, err
	}
	if typ != typAccess {
		return ClientClaims{}, invalid("typ %q, want %s", typ, typAccess)
	}
	return m.clientClaims(payload)
}

// clientClaims checks the verified payload of a client token.
func (m *Manager) clientClaims(payload []byte) (ClientClaims, error) {
	c, err := decodeObject(payload)
	if err != nil {
		return ClientClaims{}, invalid("payload: %v", err)
	}
	now := m.cfg.Now()
	exp, ok := numericDate(c["exp"])
	if !ok {
		return ClientClaims{}, invalid("exp missing or not an integer")
	}
	if !now.Before(exp.Add(m.cfg.Leeway)) {
		return ClientClaims{}, invalid("expired")
	}
	if v, present := c["nbf"]; present {
		nbf, ok := numericDate(v)
		if !ok || now.Add(m.cfg.Leeway).Before(nbf) {
			return ClientClaims{}, invalid("nbf not reached or not an integer")
		}
	}
	iat, ok := numericDate(c["iat"])
	if !ok || now.Add(m.cfg.Leeway).Before(iat) {
		return ClientClaims{}, invalid("iat missing, not an integer or in the future")
	}
	if iss, _ := c["iss"].(string); iss != m.cfg.Issuer {
		return ClientClaims{}, invalid("iss %q, want %q", iss, m.cfg.Issuer)
	}
	if aud, _ := c["aud"].(string); aud != m.cfg.Issuer {
		return ClientClaims{}, invalid("aud is not the issuer")
	}
	jti, _ := c["jti"].(string)
	if jti == "" {
		return ClientClaims{}, invalid("jti missing")
	}
	if typ, _ := c["token_type"].(string); Type(typ) != Client {
		return ClientClaims{}, ErrWrongType
	}
	id, _ := c["client_id"].(string)
	if sub, _ := c["sub"].(string); id == "" || sub != id {
		return ClientClaims{}, invalid("client_id missing or not the sub")
	}
	scope, _ := c["scope"].(string)
	return ClientClaims{ClientID: id, Scopes: strings.Fields(scope), ID: jti, IssuedAt: iat.UTC(), ExpiresAt: exp.UTC()}, nil
}

// Issuer is the iss of the tokens the Manager signs.
func (m *Manager) Issuer() string { return m.cfg.Issuer }

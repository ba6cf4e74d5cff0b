package server

import (
	"context"
	"time"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/clients"
	"github.com/authapi/authapi/internal/store"
)

// toAPIClient converts a stored client, leaving its secret hashes behind.
func (s *Server) toAPIClient(c store.APIClient) client.APIClient {
	out := client.APIClient{
		ClientId: c.ID, Name: c.Name, Scopes: make([]client.ClientScope, len(c.Scopes)),
		Created: c.CreatedAt, Updated: c.UpdatedAt, LastUsed: c.LastUsedAt, Disabled: c.Disabled,
		SecretSet: c.SecretSetAt,
	}
	for i, sc := range c.Scopes {
		out.Scopes[i] = client.ClientScope(sc)
	}
	if c.CreatedBy != 0 {
		out.CreatedBy = &c.CreatedBy
	}
	if c.PreviousExpiresAt != nil && s.now().Before(*c.PreviousExpiresAt) {
		out.PreviousSecretExpires = c.PreviousExpiresAt
	}
	return out
}

func scopeStrings(in []client.ClientScope) []string {
	out := make([]string, len(in))
	for i, sc := range in {
		out[i] = string(sc)
	}
	return out
}

func (h handlers) ListClients(ctx context.Context, _ gen.ListClientsRequestObject) (gen.ListClientsResponseObject, error) {
	list, err := h.clients.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make(gen.ListClients200JSONResponse, len(list))
	for i, c := range list {
		out[i] = h.toAPIClient(c)
	}
	return out, nil
}

func (h handlers) CreateClient(ctx context.Context, req gen.CreateClientRequestObject) (gen.CreateClientResponseObject, error) {
	var name string
	var scopes []string
	if req.Body != nil {
		name = req.Body.Name
		if req.Body.Scopes != nil {
			scopes = scopeStrings(*req.Body.Scopes)
		}
	}
	created, err := h.clients.Create(ctx, h.auditSource(ctx), name, scopes)
	if err != nil {
		return nil, err
	}
	return gen.CreateClient201JSONResponse{Client: h.toAPIClient(created.Client), ClientSecret: created.Secret}, nil
}

func (h handlers) GetClient(ctx context.Context, req gen.GetClientRequestObject) (gen.GetClientResponseObject, error) {
	c, err := h.clients.Get(ctx, req.ClientId)
	if err != nil {
		return nil, err
	}
	return gen.GetClient200JSONResponse(h.toAPIClient(c)), nil
}

func (h handlers) UpdateClient(ctx context.Context, req gen.UpdateClientRequestObject) (gen.UpdateClientResponseObject, error) {
	var u clients.Update
	if b := req.Body; b != nil {
		u.Name, u.Disabled = b.Name, b.Disabled
		if b.Scopes != nil {
			sc := scopeStrings(*b.Scopes)
			u.Scopes = &sc
		}
	}
	c, err := h.clients.Update(ctx, h.auditSource(ctx), req.ClientId, u)
	if err != nil {
		return nil, err
	}
	return gen.UpdateClient200JSONResponse(h.toAPIClient(c)), nil
}

func (h handlers) DeleteClient(ctx context.Context, req gen.DeleteClientRequestObject) (gen.DeleteClientResponseObject, error) {
	if err := h.clients.Delete(ctx, h.auditSource(ctx), req.ClientId); err != nil {
		return nil, err
	}
	return gen.DeleteClient204Response{}, nil
}

func (h handlers) RotateClientSecret(ctx context.Context, req gen.RotateClientSecretRequestObject) (gen.RotateClientSecretResponseObject, error) {
	overlap := clients.DefaultRotateOverlap
	if req.Body != nil && req.Body.OverlapSeconds != nil {
		overlap = time.Duration(*req.Body.OverlapSeconds) * time.Second
	}
	rotated, err := h.clients.Rotate(ctx, h.auditSource(ctx), req.ClientId, overlap)
	if err != nil {
		return nil, err
	}
	return gen.RotateClientSecret200JSONResponse{Client: h.toAPIClient(rotated.Client), ClientSecret: rotated.Secret}, nil
}

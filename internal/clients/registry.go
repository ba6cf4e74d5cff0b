package clients

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/userfields"
)

// WithSecret is a client with its new secret, which is shown once and never stored.
type WithSecret struct {
	Client store.APIClient
	Secret string
}

// Update is a change of a client; nil members stay as they are.
type Update struct {
	Name     *string
	Scopes   *[]string
	Disabled *bool
}

// Create registers a client named name with scopes, made by src. Refusals: *userfields.Errors
// (name, scopes).
func (s *Service) Create(ctx context.Context, src audit.Source, name string, scopes []string) (WithSecret, error) {
	name, scopes, err := checkFields(&name, &scopes)
	if err != nil {
		return WithSecret{}, err
	}
	now := s.now()
	secret := newSecret()
	c := store.APIClient{
		ID: newID(), Name: name, Scopes: scopes, CreatedAt: now, CreatedBy: src.ActorID, UpdatedAt: now,
		SecretHash: hashSecret(secret), SecretSetAt: now,
	}
	ev := src.Event(audit.ClientCreated)
	ev.Fields = []string{"name", "scopes"}
	if err := s.store.CreateAPIClient(ctx, c, ev); err != nil {
		return WithSecret{}, fmt.Errorf("create api client: %w", err)
	}
	return WithSecret{Client: c, Secret: secret}, nil
}

// List returns every client, oldest first.
func (s *Service) List(ctx context.Context) ([]store.APIClient, error) {
	return s.store.APIClients(ctx)
}

// Get returns client id. Refusals: ErrNotFound.
func (s *Service) Get(ctx context.Context, id string) (store.APIClient, error) {
	c, err := s.store.APIClientByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.APIClient{}, ErrNotFound
	}
	return c, err
}

// Update changes client id's name, scopes or disabled flag, made by src; a disabled client and
// its tokens are refused from the next request on, on every instance. Refusals: ErrNotFound,
// *userfields.Errors.
func (s *Service) Update(ctx context.Context, src audit.Source, id string, u Update) (store.APIClient, error) {
	name, scopes, err := checkFields(u.Name, u.Scopes)
	if err != nil {
		return store.APIClient{}, err
	}
	c, err := s.store.UpdateAPIClient(ctx, id, func(c *store.APIClient) ([]store.AuditEvent, error) {
		var fields []string
		if u.Name != nil && name != c.Name {
			c.Name, fields = name, append(fields, "name")
		}
		if u.Scopes != nil && strings.Join(scopes, " ") != strings.Join(c.Scopes, " ") {
			c.Scopes, fields = scopes, append(fields, "scopes")
		}
		if u.Disabled != nil && *u.Disabled != c.Disabled {
			c.Disabled, fields = *u.Disabled, append(fields, "disabled")
		}
		if len(fields) == 0 {
			return nil, nil
		}
		c.UpdatedAt = s.now()
		ev := src.Event(audit.ClientUpdated)
		ev.Fields = fields
		return []store.AuditEvent{ev}, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.APIClient{}, ErrNotFound
	}
	return c, err
}

// Rotate gives client id a new secret, made by src. The current one stays valid for overlap
// (0: it stops now), and so do the tokens issued with it; a secret rotated out before is
// forgotten. Refusals: ErrNotFound, *userfields.Errors (an overlap out of bounds).
func (s *Service) Rotate(ctx context.Context, src audit.Source, id string, overlap time.Duration) (WithSecret, error) {
	if overlap < 0 || overlap > MaxRotateOverlap {
		return WithSecret{}, userfields.Invalid(map[string][]string{"overlap_seconds": {
			fmt.Sprintf("Ensure this value is between 0 and %d.", int64(MaxRotateOverlap/time.Second))}})
	}
	secret := newSecret()
	c, err := s.store.UpdateAPIClient(ctx, id, func(c *store.APIClient) ([]store.AuditEvent, error) {
		now := s.now()
		expires := now.Add(overlap)
		c.PreviousSecretHash, c.PreviousExpiresAt = c.SecretHash, &expires
		c.SecretHash, c.SecretSetAt, c.UpdatedAt = hashSecret(secret), now, now
		ev := src.Event(audit.ClientSecretRotated)
		ev.Fields = []string{"secret"}
		return []store.AuditEvent{ev}, nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return WithSecret{}, ErrNotFound
	}
	if err != nil {
		return WithSecret{}, err
	}
	return WithSecret{Client: c, Secret: secret}, nil
}

// Delete removes client id, made by src: its secrets and tokens stop working at once.
// Refusals: ErrNotFound.
func (s *Service) Delete(ctx context.Context, src audit.Source, id string) error {
	err := s.store.DeleteAPIClient(ctx, id, src.Event(audit.ClientDeleted))
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	return err
}

// checkFields checks a client's name and scopes, where given, and returns them normalized.
func checkFields(name *string, scopes *[]string) (string, []string, error) {
	fields := map[string][]string{}
	var n string
	var sc []string
	if name != nil {
		n = strings.TrimSpace(*name)
		switch {
		case n == "":
			fields["name"] = []string{userfields.MsgBlank}
		case !userfields.Storable(n):
			fields["name"] = []string{userfields.MsgNullCharacters}
		case len([]rune(n)) > maxNameLength:
			fields["name"] = []string{fmt.Sprintf("Ensure this field has no more than %d characters.", maxNameLength)}
		}
	}
	if scopes != nil {
		var bad []string
		sc, bad = normalizeScopes(*scopes)
		if len(bad) > 0 {
			fields["scopes"] = []string{fmt.Sprintf("%q is not a known scope.", bad[0])}
		}
	}
	if len(fields) > 0 {
		return "", nil, userfields.Invalid(fields)
	}
	if sc == nil {
		sc = []string{}
	}
	return n, sc, nil
}

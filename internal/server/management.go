package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/metrics"
	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/store"
)

const (
	defaultPageSize = 100
	maxPageSize     = 1000
	managementPath  = "/api/v1/account/management/"
)

// maxSearchWords bounds the conditions one search adds to the query.
const maxSearchWords = 8

// ListUsers returns a page of user previews, searched, filtered and ordered as asked.
func (h handlers) ListUsers(ctx context.Context, req gen.ListUsersRequestObject) (gen.ListUsersResponseObject, error) {
	p := req.Params
	q := store.UserQuery{
		Limit: defaultPageSize, IsActive: p.IsActive, IsStaff: p.IsStaff, IsSuperuser: p.IsSuperuser,
	}
	offset := int64(0)
	if p.Limit != nil {
		q.Limit = *p.Limit
	}
	if p.Offset != nil {
		offset = *p.Offset
	}
	if p.Search != nil {
		q.Search = *p.Search
	}
	if p.Ordering != nil {
		q.OrderBy, q.Descending = userOrder(*p.Ordering)
	}
	// The spec bounds limit and offset; these checks keep the handler safe on its own.
	fields := map[string][]string{}
	if q.Limit < 1 || q.Limit > maxPageSize {
		fields["limit"] = []string{fmt.Sprintf("Ensure this value is between 1 and %d.", maxPageSize)}
	}
	if offset < 0 {
		fields["offset"] = []string{"Ensure this value is greater than or equal to 0."}
	}
	switch {
	case !utf8.ValidString(q.Search):
		fields["search"] = []string{"Enter valid UTF-8 text."}
	case strings.ContainsRune(q.Search, 0):
		fields["search"] = []string{msgNullCharacters}
	case len(strings.Fields(q.Search)) > maxSearchWords:
		fields["search"] = []string{fmt.Sprintf("Ensure this value has no more than %d words.", maxSearchWords)}
	}
	if len(fields) > 0 {
		return gen.ListUsers400JSONResponse{BadRequestJSONResponse: badRequest(errInvalid(fields))}, nil
	}
	q.Offset = int(min(offset, math.MaxInt))
	users, total, err := h.store.ListUsers(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := make([]client.UserPreview, 0, len(users))
	for _, u := range users {
		out = append(out, toAPIPreview(u))
	}
	resp := gen.ListUsers200JSONResponse{Body: out, Headers: gen.ListUsers200ResponseHeaders{XTotalCount: total}}
	if next := offset + int64(len(users)); len(users) > 0 && next < total {
		link := fmt.Sprintf(`<%s?%s>; rel="next"`, managementPath, pageQuery(p, q.Limit, next).Encode())
		resp.Headers.Link = &link
	}
	return resp, nil
}

// userOrder maps the spec's ordering ("-last_login") to the store's order and direction.
func userOrder(o client.UserOrdering) (store.UserOrder, bool) {
	field, desc := strings.CutPrefix(string(o), "-")
	return store.UserOrder(field), desc
}

// pageQuery is the query string of the page at offset with the search, filters and ordering
// of p, so that following Link walks the same list.
func pageQuery(p client.ListUsersParams, limit int, offset int64) url.Values {
	v := url.Values{}
	v.Set("limit", strconv.Itoa(limit))
	v.Set("offset", strconv.FormatInt(offset, 10))
	if p.Search != nil && *p.Search != "" {
		v.Set("search", *p.Search)
	}
	for name, flag := range map[string]*bool{"is_active": p.IsActive, "is_staff": p.IsStaff, "is_superuser": p.IsSuperuser} {
		if flag != nil {
			v.Set(name, strconv.FormatBool(*flag))
		}
	}
	if p.Ordering != nil && *p.Ordering != client.OrderByID { // the validator fills in the default
		v.Set("ordering", string(*p.Ordering))
	}
	return v
}

// GetUser returns one user's preview.
func (h handlers) GetUser(ctx context.Context, req gen.GetUserRequestObject) (gen.GetUserResponseObject, error) {
	u, err := h.store.UserByID(ctx, req.Id)
	if errors.Is(err, store.ErrNotFound) {
		return gen.GetUser404JSONResponse{NotFoundJSONResponse: notFound()}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get user %d: %w", req.Id, err)
	}
	return gen.GetUser200JSONResponse(toAPIPreview(u)), nil
}

// CreateUser creates a user; superusers cannot be made through the API.
func (h handlers) CreateUser(ctx context.Context, req gen.CreateUserRequestObject) (gen.CreateUserResponseObject, error) {
	var in client.UserCreate
	if req.Body != nil {
		in = *req.Body
	}
	u := store.User{IsActive: true}
	ch := userChanges{
		Username: orNil(in.Username), FirstName: orNil(in.FirstName), LastName: orNil(in.LastName),
		Email: orNil(in.Email), Password: orNil(in.Password), IsActive: in.IsActive, IsStaff: in.IsStaff,
		Invalid: specFieldErrors(ctx),
	}
	if err := applyChanges(ctx, h.hasher, &u, ch, required{profile: true, password: true}); err != nil {
		if errors.Is(err, password.ErrBusy) {
			return gen.CreateUser503JSONResponse{BusyJSONResponse: busy(h.hasher.Wait())}, nil
		}
		return createUserError(withTakenUsername(ctx, h.store, err, ch, 0))
	}
	if err := h.store.CreateUser(ctx, &u, h.auditSource(ctx).Event(audit.UserCreated)); err != nil {
		return createUserError(storeUserError(err))
	}
	return gen.CreateUser201JSONResponse(toAPIPreview(u)), nil
}

func createUserError(err error) (gen.CreateUserResponseObject, error) {
	var e *apiError
	if errors.As(err, &e) {
		return gen.CreateUser400JSONResponse{BadRequestJSONResponse: badRequest(e)}, nil
	}
	return nil, fmt.Errorf("create user: %w", err)
}

// UpdateUser replaces a user's details (PUT).
func (h handlers) UpdateUser(ctx context.Context, req gen.UpdateUserRequestObject) (gen.UpdateUserResponseObject, error) {
	var in client.UserUpdate
	if req.Body != nil {
		in = *req.Body
	}
	ch := userChanges{
		Username: orNil(in.Username), FirstName: orNil(in.FirstName), LastName: orNil(in.LastName),
		Email: orNil(in.Email), Password: in.Password, IsActive: in.IsActive, IsStaff: in.IsStaff,
		Invalid: specFieldErrors(ctx),
	}
	u, err := h.update(ctx, req.Id, ch, required{profile: true})
	var e *apiError
	switch {
	case errors.As(err, &e) && e.Status == http.StatusNotFound:
		return gen.UpdateUser404JSONResponse{NotFoundJSONResponse: notFound()}, nil
	case errors.As(err, &e):
		return gen.UpdateUser400JSONResponse{BadRequestJSONResponse: badRequest(e)}, nil
	case errors.Is(err, password.ErrBusy):
		return gen.UpdateUser503JSONResponse{BusyJSONResponse: busy(h.hasher.Wait())}, nil
	case err != nil:
		return nil, err
	}
	return gen.UpdateUser200JSONResponse(toAPIPreview(u)), nil
}

// PartialUpdateUser changes some of a user's details (PATCH).
func (h handlers) PartialUpdateUser(ctx context.Context, req gen.PartialUpdateUserRequestObject) (gen.PartialUpdateUserResponseObject, error) {
	var in client.UserPatch
	if req.Body != nil {
		in = *req.Body
	}
	ch := userChanges{
		Username: in.Username, FirstName: in.FirstName, LastName: in.LastName, Email: in.Email,
		Password: in.Password, IsActive: in.IsActive, IsStaff: in.IsStaff, Invalid: specFieldErrors(ctx),
	}
	u, err := h.update(ctx, req.Id, ch, required{})
	var e *apiError
	switch {
	case errors.As(err, &e) && e.Status == http.StatusNotFound:
		return gen.PartialUpdateUser404JSONResponse{NotFoundJSONResponse: notFound()}, nil
	case errors.As(err, &e):
		return gen.PartialUpdateUser400JSONResponse{BadRequestJSONResponse: badRequest(e)}, nil
	case errors.Is(err, password.ErrBusy):
		return gen.PartialUpdateUser503JSONResponse{BusyJSONResponse: busy(h.hasher.Wait())}, nil
	case err != nil:
		return nil, err
	}
	return gen.PartialUpdateUser200JSONResponse(toAPIPreview(u)), nil
}

// update applies ch to user id on its current data, in one transaction that changes only what
// ch sets, so a concurrent edit neither undoes ch nor is undone by it. A new password or a
// deactivation revokes every session of the user in the same transaction.
func (h handlers) update(ctx context.Context, id int64, ch userChanges, req required) (store.User, error) {
	notFound := &apiError{Status: http.StatusNotFound, Code: "not_found", Detail: msgNotFound}
	// Check ch against the user as they are now, so that a refused request costs no hash, and
	// hash before the transaction: hashing is slow and must not hold the user's row.
	cur, err := h.store.UserByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, notFound
	}
	if err != nil {
		return store.User{}, fmt.Errorf("get user %d: %w", id, err)
	}
	if err := checkOwnChanges(ctx, cur, ch); err != nil {
		return store.User{}, err
	}
	if err := checkChanges(cur, ch, req); err != nil {
		return store.User{}, withTakenUsername(ctx, h.store, err, ch, id)
	}
	hash, err := hashPassword(ctx, h.hasher, ch)
	if err != nil {
		return store.User{}, err
	}
	checked := policyAttributes(cur, ch)
	revoke := ch.Password != nil || ch.IsActive != nil && !*ch.IsActive
	u, err := h.store.UpdateUser(ctx, id, func(u *store.User) error {
		// The fields were checked on their own; the password policy depends on the user's
		// details too, so check it again if a concurrent edit changed them (rare).
		if ch.Password != nil && policyAttributes(*u, ch) != checked {
			if err := checkChanges(*u, ch, req); err != nil {
				return err
			}
		}
		setChanges(u, ch, hash)
		return nil
	}, revoke, h.now(), h.auditSource(ctx).UserUpdate())
	if errors.Is(err, store.ErrNotFound) {
		return store.User{}, notFound
	}
	if err != nil {
		return store.User{}, storeUserError(fmt.Errorf("update user %d: %w", id, err))
	}
	if ch.Password != nil {
		h.metrics.Revoked(metrics.RevokePasswordChange)
	}
	if ch.IsActive != nil && !*ch.IsActive && cur.IsActive {
		h.metrics.Revoked(metrics.RevokeDeactivation)
	}
	return u, nil
}

// Why a superuser may not set their own password or deactivate themselves here.
const (
	msgOwnPassword   = "Change your own password with POST /api/v1/account/password/, which asks for the current one."
	msgOwnDeactivate = "You cannot deactivate your own account."
)

// checkOwnChanges refuses what would let a stolen access token lock the caller out of their
// own account for good: setting their password without the current one, or deactivating
// themselves (both end every session of theirs).
func checkOwnChanges(ctx context.Context, cur store.User, ch userChanges) error {
	caller, _ := principalFromContext(ctx)
	if caller.user.ID != cur.ID {
		return nil
	}
	fields := map[string][]string{}
	if ch.Password != nil {
		fields["password"] = []string{msgOwnPassword}
	}
	if ch.IsActive != nil && !*ch.IsActive {
		fields["is_active"] = []string{msgOwnDeactivate}
	}
	if len(fields) > 0 {
		return errInvalid(fields)
	}
	return nil
}

// DeleteUser deletes a user and their sessions.
func (h handlers) DeleteUser(ctx context.Context, req gen.DeleteUserRequestObject) (gen.DeleteUserResponseObject, error) {
	err := h.store.DeleteUser(ctx, req.Id, h.auditSource(ctx).Event(audit.UserDeleted))
	var e *apiError
	switch {
	case err == nil:
		h.metrics.Revoked(metrics.RevokeDeletion)
		return gen.DeleteUser204Response{}, nil
	case errors.Is(err, store.ErrNotFound):
		return gen.DeleteUser404JSONResponse{NotFoundJSONResponse: notFound()}, nil
	case errors.As(storeUserError(err), &e):
		return gen.DeleteUser400JSONResponse{BadRequestJSONResponse: badRequest(e)}, nil
	}
	return nil, fmt.Errorf("delete user %d: %w", req.Id, err)
}

// orNil treats an empty required field as missing: the generated types hold required fields
// by value, so a missing one and an empty one look alike.
func orNil(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

func toAPIPreview(u store.User) client.UserPreview {
	return client.UserPreview{
		Id: u.ID, Username: u.Username, FirstName: u.FirstName, LastName: u.LastName,
		Email: u.Email, IsActive: u.IsActive, IsStaff: u.IsStaff, IsSuperuser: u.IsSuperuser,
		LastLogin: u.LastLogin, DateJoined: u.DateJoined,
	}
}

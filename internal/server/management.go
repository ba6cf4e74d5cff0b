package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/authapi/authapi/gen"
	"github.com/authapi/authapi/gen/client"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/users"
)

const managementPath = "/api/v1/account/management/"

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
	fields := map[string][]string{}
	pageFields(fields, q.Limit, offset)
	switch {
	case !utf8.ValidString(q.Search):
		fields["search"] = []string{"Enter valid UTF-8 text."}
	case strings.ContainsRune(q.Search, 0):
		fields["search"] = []string{msgNullCharacters}
	case len(strings.Fields(q.Search)) > maxSearchWords:
		fields["search"] = []string{fmt.Sprintf("Ensure this value has no more than %d words.", maxSearchWords)}
	}
	if len(fields) > 0 {
		return nil, errInvalid(fields)
	}
	q.Offset = int(min(offset, math.MaxInt))
	page, err := h.store.ListUsers(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	out := make([]client.UserPreview, 0, len(page.Users))
	for _, u := range page.Users {
		out = append(out, toAPIPreview(u))
	}
	resp := gen.ListUsers200JSONResponse{Body: out, Headers: gen.ListUsers200ResponseHeaders{XTotalCount: page.Total}}
	if page.Estimated {
		resp.Headers.XTotalCountEstimated = &page.Estimated
	}
	resp.Headers.Link = nextPage(managementPath, len(page.Users), offset, page.More, func(next int64) url.Values {
		return pageQuery(p, q.Limit, next)
	})
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
		return nil, users.ErrNotFound
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
	u, err := h.users.Create(ctx, createChanges(ctx, in), h.auditSource(ctx))
	if err != nil {
		return nil, fmt.Errorf("create user: %w", err)
	}
	return gen.CreateUser201JSONResponse(toAPIPreview(u)), nil
}

// UpdateUser replaces a user's details (PUT).
func (h handlers) UpdateUser(ctx context.Context, req gen.UpdateUserRequestObject) (gen.UpdateUserResponseObject, error) {
	var in client.UserUpdate
	if req.Body != nil {
		in = *req.Body
	}
	u, err := h.users.Replace(ctx, req.Id, updateChanges(ctx, in), h.auditSource(ctx))
	if err != nil {
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
	u, err := h.users.Patch(ctx, req.Id, patchChanges(ctx, in), h.auditSource(ctx))
	if err != nil {
		return nil, err
	}
	return gen.PartialUpdateUser200JSONResponse(toAPIPreview(u)), nil
}

// DeleteUser deletes a user and their sessions.
func (h handlers) DeleteUser(ctx context.Context, req gen.DeleteUserRequestObject) (gen.DeleteUserResponseObject, error) {
	if err := h.users.Delete(ctx, req.Id, h.auditSource(ctx)); err != nil {
		return nil, err
	}
	return gen.DeleteUser204Response{}, nil
}

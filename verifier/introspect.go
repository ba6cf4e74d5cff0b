package verifier

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// introspectTimeout bounds one introspection request.
const introspectTimeout = 5 * time.Second

// introspect asks the issuer (RFC 7662) whether raw is active. Its other answers are not
// needed: the claims come from the verified token.
func (v *Verifier) introspect(ctx context.Context, raw string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, introspectTimeout)
	defer cancel()
	var answer struct {
		Active bool `json:"active"`
	}
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	status, err := v.postForm(ctx, v.meta.IntrospectionEndpoint, form, &answer)
	if err != nil {
		return false, fmt.Errorf("introspect: %w", err)
	}
	if status != http.StatusOK {
		return false, fmt.Errorf("introspect: status %d", status)
	}
	return answer.Active, nil
}

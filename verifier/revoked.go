package verifier

import (
	"sync"
	"time"
)

// revocations remembers revoked sessions and users for as long as a token issued before the
// revocation can live (MaxTokenLifetime plus leeway), then forgets them.
type revocations struct {
	mu       sync.RWMutex
	sessions map[string]time.Time      // sid -> when to forget it
	users    map[string]userRevocation // sub -> revocation
}

// userRevocation refuses a user's tokens issued before notBefore.
type userRevocation struct {
	notBefore time.Time
	forget    time.Time
}

func newRevocations() *revocations {
	return &revocations{sessions: map[string]time.Time{}, users: map[string]userRevocation{}}
}

func (r *revocations) revokeSession(sid string, forget time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if forget.After(r.sessions[sid]) {
		r.sessions[sid] = forget
	}
}

func (r *revocations) revokeUser(sub string, notBefore, forget time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.users[sub]
	if notBefore.After(old.notBefore) {
		old.notBefore = notBefore
	}
	if forget.After(old.forget) {
		old.forget = forget
	}
	r.users[sub] = old
}

// refuses reports whether c belongs to a revoked session, or to a revoked user and was issued
// before that revocation.
func (r *revocations) refuses(c *Claims, now time.Time) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if c.SessionID != "" {
		if forget, ok := r.sessions[c.SessionID]; ok && now.Before(forget) {
			return true
		}
	}
	u, ok := r.users[c.Subject]
	return ok && now.Before(u.forget) && c.IssuedAt.Before(u.notBefore)
}

// prune forgets what no live token can need any more.
func (r *revocations) prune(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for sid, forget := range r.sessions {
		if !now.Before(forget) {
			delete(r.sessions, sid)
		}
	}
	for sub, u := range r.users {
		if !now.Before(u.forget) {
			delete(r.users, sub)
		}
	}
}

func (r *revocations) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions) + len(r.users)
}

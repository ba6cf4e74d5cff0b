package djangoimport

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/store"
	"github.com/authapi/authapi/internal/userfields"
)

// Outcome is what the import did, or would do, with one Django user.
type Outcome string

// Outcomes.
const (
	// Imported: the user was new and was created with its Django ID.
	Imported Outcome = "imported"
	// Unchanged: a user with the same ID and username is here already (an earlier import),
	// and is left as it is.
	Unchanged Outcome = "unchanged"
	// Clashed: the username (ignoring case) or the ID belongs to another user here; the two
	// are not merged.
	Clashed Outcome = "clashed"
	// Skipped: the user could never log in here (an unusable or unsupported password hash, or
	// one whose costs are above the maxima), or a field breaks a rule of user creation here
	// (see fieldProblems).
	Skipped Outcome = "skipped"
)

// Result is one Django user's outcome.
type Result struct {
	ID       int64  // the Django ID
	Username string // as in Django; imported NFKC-normalised (see userfields.Username)
	Outcome  Outcome
	Reason   string // why, for Clashed and Skipped
}

// Report is what an import did (or, in a dry run, would do).
type Report struct {
	Table   string
	DryRun  bool
	Results []Result // in the Django table's ID order
}

// Count returns how many users had outcome o.
func (r Report) Count(o Outcome) int {
	n := 0
	for _, res := range r.Results {
		if res.Outcome == o {
			n++
		}
	}
	return n
}

// Options tune Import.
type Options struct {
	// Table is the Django user table; empty finds it (see Source.UserTable).
	Table string
	// DryRun decides every outcome but writes nothing.
	DryRun bool
	// Events are the audit events written for each imported user (the store sets the user
	// as their target), in the import's transaction.
	Events []store.AuditEvent
}

// ErrRaced means a user was created here while the import ran, taking an ID or a username it
// was about to import; nothing was imported, and a new run sorts it out.
var ErrRaced = errors.New("a user was created meanwhile with an ID or username being imported; nothing was imported: run the import again")

// Import reads the users of the Django database src and creates in st those that are new, each
// with its Django ID, username, names, email, flags, dates and password hash as they are, all
// in one transaction with their audit events (opts.Events). It is idempotent: a user imported before (same ID and username) is
// Unchanged, never updated. A user whose username equals another's ignoring case (here, or
// earlier in the Django table), or whose ID is taken here by another user, is Clashed and left
// out. Users whose password hash authapi cannot verify are Skipped.
func Import(ctx context.Context, src *Source, st *store.Store, opts Options) (Report, error) {
	table, err := src.UserTable(ctx, opts.Table)
	if err != nil {
		return Report{}, err
	}
	users, err := src.Users(ctx, table)
	if err != nil {
		return Report{}, err
	}
	rep := Report{Table: table, DryRun: opts.DryRun, Results: make([]Result, len(users))}

	ids := make([]int64, len(users))
	names := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.ID
		names[i], _ = userfields.Username(u.Username)
	}
	byID, byKey, err := existing(ctx, st, ids, names)
	if err != nil {
		return Report{}, err
	}
	firstByKey := map[string]User{} // the Django users seen so far, by username key
	var create []store.User
	for i, u := range users {
		res := Result{ID: u.ID, Username: u.Username}
		res.Outcome, res.Reason = decide(u, byID, byKey, firstByKey)
		rep.Results[i] = res
		if res.Outcome == Imported {
			create = append(create, store.User{
				ID: u.ID, Username: names[i], FirstName: u.FirstName, LastName: u.LastName, Email: u.Email,
				PasswordHash: u.Password, IsActive: u.IsActive, IsStaff: u.IsStaff, IsSuperuser: u.IsSuperuser,
				DateJoined: u.DateJoined, LastLogin: u.LastLogin,
			})
		}
	}
	if opts.DryRun {
		return rep, nil
	}
	if err := st.ImportUsers(ctx, create, opts.Events...); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return Report{}, ErrRaced
		}
		return Report{}, err
	}
	return rep, nil
}

// existing returns the users here that have one of ids, and those whose username equals one
// of names ignoring case, by username key.
func existing(ctx context.Context, st *store.Store, ids []int64, names []string) (map[int64]store.User, map[string]store.User, error) {
	found, err := st.UsersByIDs(ctx, ids)
	if err != nil {
		return nil, nil, err
	}
	byID := make(map[int64]store.User, len(found))
	for _, u := range found {
		byID[u.ID] = u
	}
	if found, err = st.UsersByUsernames(ctx, names); err != nil {
		return nil, nil, err
	}
	byKey := make(map[string]store.User, len(found))
	for _, u := range found {
		byKey[store.UsernameKey(u.Username)] = u
	}
	return byID, byKey, nil
}

// decide is one Django user's outcome, given the users here and the Django users before it.
func decide(u User, byID map[int64]store.User, byKey map[string]store.User, firstByKey map[string]User) (Outcome, string) {
	if problems := fieldProblems(u); problems != "" {
		return Skipped, "refused as a new user would be here: " + problems
	}
	name, _ := userfields.Username(u.Username)
	key := store.UsernameKey(name)
	if prev, ok := firstByKey[key]; ok {
		return Clashed, fmt.Sprintf("its username equals that of Django user %q (id %d) ignoring case and width, and usernames are unique ignoring case and width here", prev.Username, prev.ID)
	}
	firstByKey[key] = u
	if here, ok := byID[u.ID]; ok && (here.Username == name || here.Username == u.Username) {
		return Unchanged, ""
	}
	if here, ok := byKey[key]; ok {
		if here.Username == name {
			return Clashed, fmt.Sprintf("a different user %q (id %d) exists here; not merged", here.Username, here.ID)
		}
		return Clashed, fmt.Sprintf("its username equals that of user %q (id %d) here ignoring case and width; not merged", here.Username, here.ID)
	}
	if here, ok := byID[u.ID]; ok {
		return Clashed, fmt.Sprintf("its id %d belongs to user %q here (import into a database that has no users: run \"authapi migrate\", then the import, then \"authapi serve\")", u.ID, here.Username)
	}
	if err := password.CheckFormat(u.Password); err != nil {
		return Skipped, fmt.Sprintf("it could never log in here: %v", err)
	}
	return Imported, ""
}

// fieldProblems says which of u's fields break the rules a user created here must follow
// (package userfields), each with the API's message, or "" when none does. As in Django, names
// and email may be blank; a username may not.
func fieldProblems(u User) string {
	var problems []string
	add := func(field, msg string) {
		if msg != "" {
			problems = append(problems, field+": "+msg)
		}
	}
	if u.Username == "" {
		add("username", userfields.MsgBlank)
	} else {
		_, msg := userfields.Username(u.Username)
		add("username", msg)
	}
	for _, f := range []struct {
		name, value string
		check       func(string) string
	}{{"first_name", u.FirstName, userfields.Name}, {"last_name", u.LastName, userfields.Name}, {"email", u.Email, userfields.Email}} {
		if f.value != "" {
			add(f.name, f.check(f.value))
		}
	}
	return strings.Join(problems, "; ")
}

package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/pressly/goose/v3"
)

// usernameKeysVersion is the migration that recomputes every user's keys with foldCase, which
// since then NFKC-normalises: a Go migration, since the keys are Go's folding, which neither
// database has. It is the same on both backends.
const usernameKeysVersion = 9

// UsernameCollision is a set of users whose usernames are one once folded (see foldCase), such
// as "admin" and the fullwidth "ａｄｍｉｎ", stored before usernames were NFKC-normalised.
// Migration 00009 left their keys as they were rather than merge them or fail: logging in as
// either name reaches the user whose key is the folded form. Rename all but one.
type UsernameCollision struct {
	Key   string // the folded form they share
	Users []User // ID and Username only, in ID order
	// Holder is the ID of the user whose key is Key, whom a login as any of the usernames
	// reaches; 0 if none.
	Holder int64
}

// String describes c for an operator, in one line.
func (c UsernameCollision) String() string {
	names := make([]string, len(c.Users))
	for i, u := range c.Users {
		names[i] = fmt.Sprintf("%q (id %d)", u.Username, u.ID)
	}
	reach := "none of them can log in by name"
	if c.Holder != 0 {
		reach = fmt.Sprintf("logging in as any of them reaches id %d", c.Holder)
	}
	return fmt.Sprintf("usernames %s are one once NFKC-normalised ignoring case (%q), and were left as they are: %s; rename all but one",
		strings.Join(names, ", "), c.Key, reach)
}

// keyRow is a user's keys and the fields they are made from.
type keyRow struct {
	ID                                  int64
	Username, UsernameKey               string
	FirstName, LastName, Email          string
	EmailKey, SearchKey                 string
	newUsernameKey, newEmail, newSearch string
}

// keyPlan is what recomputing the keys of rows would do: rows to update (their new keys set),
// and the collisions left as they are.
type keyPlan struct {
	update     []keyRow
	collisions []UsernameCollision
}

// planKeys computes each row's keys with foldCase. A row whose username key would equal another
// row's (the old key of a row left as it is, or the new key of another) keeps its username key
// and is reported in a collision; its other keys, which no index keeps unique, are updated.
func planKeys(rows []keyRow) keyPlan {
	byNew := map[string][]int{}
	for i := range rows {
		r := &rows[i]
		u := User{Username: r.Username, FirstName: r.FirstName, LastName: r.LastName, Email: r.Email}
		r.newUsernameKey, r.newEmail, r.newSearch = usernameKey(r.Username), foldCase(r.Email), searchKey(&u)
		byNew[r.newUsernameKey] = append(byNew[r.newUsernameKey], i)
	}
	kept := map[int]bool{}       // rows whose username key stays as it is
	groups := map[string][]int{} // collisions by folded key
	for key, idx := range byNew {
		if len(idx) > 1 {
			groups[key] = idx
			for _, i := range idx {
				kept[i] = true
			}
		}
	}
	// A row moving to a key that a kept row still holds must stay too; repeat until no more do.
	for changed := true; changed; {
		changed = false
		held := map[string]int{}
		for i := range kept {
			held[rows[i].UsernameKey] = i
		}
		for i := range rows {
			if kept[i] || rows[i].newUsernameKey == rows[i].UsernameKey {
				continue
			}
			if j, ok := held[rows[i].newUsernameKey]; ok {
				kept[i], changed = true, true
				key := rows[i].newUsernameKey
				groups[key] = append(groups[key], i, j)
			}
		}
	}
	var plan keyPlan
	for i, r := range rows {
		if kept[i] {
			r.newUsernameKey = r.UsernameKey
		}
		if r.newUsernameKey != r.UsernameKey || r.newEmail != r.EmailKey || r.newSearch != r.SearchKey {
			plan.update = append(plan.update, r)
		}
	}
	for key, idx := range groups {
		c := UsernameCollision{Key: key}
		for _, i := range idx {
			if rows[i].UsernameKey == key {
				c.Holder = rows[i].ID
			}
			if !slices.ContainsFunc(c.Users, func(u User) bool { return u.ID == rows[i].ID }) {
				c.Users = append(c.Users, User{ID: rows[i].ID, Username: rows[i].Username})
			}
		}
		slices.SortFunc(c.Users, func(a, b User) int { return cmp.Compare(a.ID, b.ID) })
		plan.collisions = append(plan.collisions, c)
	}
	slices.SortFunc(plan.collisions, func(a, b UsernameCollision) int { return cmp.Compare(a.Users[0].ID, b.Users[0].ID) })
	return plan
}

const keyColumns = "id, username, username_key, first_name, last_name, email, email_key, search_key"

func scanKeyRows(rows *sql.Rows) ([]keyRow, error) {
	defer rows.Close()
	var out []keyRow
	for rows.Next() {
		var r keyRow
		if err := rows.Scan(&r.ID, &r.Username, &r.UsernameKey, &r.FirstName, &r.LastName, &r.Email, &r.EmailKey, &r.SearchKey); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// usernameKeysMigration is migration 00009: it recomputes every user's keys with foldCase and
// records in s the collisions it left (see RekeyCollisions).
func (s *Store) usernameKeysMigration() *goose.Migration {
	m := goose.NewGoMigration(usernameKeysVersion, &goose.GoFunc{RunTx: func(ctx context.Context, tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, "SELECT "+keyColumns+" FROM users ORDER BY id")
		if err != nil {
			return err
		}
		all, err := scanKeyRows(rows)
		if err != nil {
			return err
		}
		plan := planKeys(all)
		if err := s.writeKeys(ctx, tx, plan.update); err != nil {
			return err
		}
		s.rekeyCollisions = plan.collisions
		return nil
	}}, nil)
	m.Source = "00009_username_keys.go" // this file
	return m
}

// writeKeys writes the new keys of rows. Username keys move in two steps, through a value no
// folded username has, so that keys trading places never meet in the unique index.
func (s *Store) writeKeys(ctx context.Context, tx *sql.Tx, rows []keyRow) error {
	p := func(n int) string { return "?" }
	if s.dialect == dialectPostgres {
		p = func(n int) string { return "$" + strconv.Itoa(n) }
	}
	for _, r := range rows {
		if r.newUsernameKey == r.UsernameKey {
			continue
		}
		if _, err := tx.ExecContext(ctx, "UPDATE users SET username_key = "+p(1)+" WHERE id = "+p(2),
			"\x01rekey\x01"+strconv.FormatInt(r.ID, 10), r.ID); err != nil {
			return fmt.Errorf("user %d: %w", r.ID, err)
		}
	}
	for _, r := range rows {
		if _, err := tx.ExecContext(ctx, "UPDATE users SET username_key = "+p(1)+", email_key = "+p(2)+", search_key = "+p(3)+" WHERE id = "+p(4),
			r.newUsernameKey, r.newEmail, r.newSearch, r.ID); err != nil {
			return fmt.Errorf("user %d: %w", r.ID, err)
		}
	}
	return nil
}

// RekeyCollisions returns the collisions migration 00009 left when this Store's Migrate (or
// Init) applied it, for the caller to log; nil otherwise. UsernameCollisions finds them later.
func (s *Store) RekeyCollisions() []UsernameCollision { return s.rekeyCollisions }

// UsernameCollisions returns the sets of users whose usernames are one once folded (see
// UsernameCollision), in order of their first user's ID. It reads every user. It returns no
// sentinels.
func (s *Store) UsernameCollisions(ctx context.Context) ([]UsernameCollision, error) {
	rows, err := s.read.WithContext(ctx).Raw("SELECT " + keyColumns + " FROM users ORDER BY id").Rows()
	if err != nil {
		return nil, fmt.Errorf("username collisions: %w", err)
	}
	all, err := scanKeyRows(rows)
	if err != nil {
		return nil, fmt.Errorf("username collisions: %w", err)
	}
	return planKeys(all).collisions, nil
}

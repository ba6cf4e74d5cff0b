package main

import (
	"context"
	"fmt"
	"io"

	"github.com/authapi/authapi/internal/store"
)

// openStore connects with the default options and brings the schema up to date.
func openStore(ctx context.Context, dsn string) (*store.Store, error) {
	st, err := store.Open(dsn)
	if err != nil {
		return nil, err
	}
	if err := st.Migrate(ctx); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

func migrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var db string
	f := newFlags("migrate", getenv, stderr)
	f.db(&db)
	if err := f.parse(args); err != nil {
		return err
	}
	st, err := openStore(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	states, err := st.MigrationStatus(ctx)
	if err != nil {
		return err
	}
	for _, s := range states {
		fmt.Fprintf(stdout, "%05d %-8s %s\n", s.Version, map[bool]string{true: "applied", false: "pending"}[s.Applied], s.Source)
	}
	// Found again on every run (it reads every user), so that a second run checks the renames.
	collisions, err := st.UsernameCollisions(ctx)
	if err != nil {
		return err
	}
	for _, c := range collisions {
		fmt.Fprintf(stderr, "warning: %s\n", c)
	}
	return nil
}

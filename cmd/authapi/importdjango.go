package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/djangoimport"
	"github.com/authapi/authapi/internal/store"
)

// importDjango imports the users of the demo's Django database (see package djangoimport).
func importDjango(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var db, from, table string
	var dryRun bool
	f := newFlags("import-django", getenv, stderr)
	f.db(&db)
	f.string(&from, "from", "AUTHAPI_DJANGO_DB", "", "the Django database: its SQLite file (db.sqlite3) or a postgres:// URL")
	f.StringVar(&table, "table", "", "the Django user table (default: the one table with a Django user's columns, e.g. account_user or auth_user)")
	f.BoolVar(&dryRun, "dry-run", false, "print what would be imported, and write nothing")
	if err := f.parse(args); err != nil {
		return err
	}
	if from == "" {
		return errors.New("--from is required: the Django database to import from")
	}
	src, err := djangoimport.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	st, err := openStore(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, err := djangoimport.Import(ctx, src, st, djangoimport.Options{
		Table: table, DryRun: dryRun, Events: []store.AuditEvent{audit.CLI("import-django").Event(audit.UserCreated)},
	})
	if err != nil {
		return err
	}
	printImport(stdout, src.Name(), rep)
	return nil
}

// printImport prints one line per user that was not already here, then the counts.
func printImport(w io.Writer, from string, rep djangoimport.Report) {
	imported := "imported"
	if rep.DryRun {
		imported = "would import"
	}
	fmt.Fprintf(w, "Users of table %s in %s:\n", rep.Table, from)
	for _, r := range rep.Results {
		switch r.Outcome {
		case djangoimport.Imported:
			fmt.Fprintf(w, "  %s %q (id %d)\n", imported, r.Username, r.ID)
		case djangoimport.Clashed, djangoimport.Skipped:
			fmt.Fprintf(w, "  %s %q (id %d): %s\n", r.Outcome, r.Username, r.ID, r.Reason)
		}
	}
	fmt.Fprintf(w, "%s %d, unchanged %d, clashed %d, skipped %d.\n", imported,
		rep.Count(djangoimport.Imported), rep.Count(djangoimport.Unchanged), rep.Count(djangoimport.Clashed), rep.Count(djangoimport.Skipped))
	switch {
	case rep.DryRun:
		fmt.Fprintln(w, "Dry run: nothing was written.")
	case rep.Count(djangoimport.Imported) == 0:
		fmt.Fprintln(w, "Nothing changed: every importable user is here already.")
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/authapi/authapi/internal/audit"
	"github.com/authapi/authapi/internal/clients"
	"github.com/authapi/authapi/internal/store"
)

const clientsUsage = `usage: authapi clients <subcommand> [id] [flags]

subcommands:
  create   register an API client: --name N [--scopes introspect,revoke,ssf.read,ssf.manage]; prints its secret once
  list     list the API clients
  show     show one client: authapi clients show <id>
  rotate   give a client a new secret: authapi clients rotate <id> [--overlap 24h]; prints it once
  disable  refuse a client and its tokens at once: authapi clients disable <id>
  enable   accept a disabled client again
  delete   delete a client: authapi clients delete <id>

Every subcommand takes --db (AUTHAPI_DB); create and rotate take --json to print
{"client_id", "client_secret"} for scripts.
`

// clientsCommand runs "authapi clients ...": the registry of API clients, as the superuser
// API at /api/v1/clients/ manages it, audited as made by the CLI.
func clientsCommand(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, clientsUsage)
		return errUsage
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, clientsUsage)
		return nil
	case "create", "list":
	case "show", "rotate", "disable", "enable", "delete":
		if len(rest) == 0 || strings.HasPrefix(rest[0], "-") {
			if len(rest) > 0 && (rest[0] == "-h" || rest[0] == "--help") {
				break
			}
			fmt.Fprintf(stderr, "authapi clients %s: the client id comes first\n\n%s", sub, clientsUsage)
			return errUsage
		}
	default:
		fmt.Fprintf(stderr, "authapi clients: unknown subcommand %q\n\n%s", sub, clientsUsage)
		return errUsage
	}
	var id string
	if sub != "create" && sub != "list" && len(rest) > 0 && !strings.HasPrefix(rest[0], "-") {
		id, rest = rest[0], rest[1:]
	}
	var (
		db, name string
		scopes   []string
		overlap  time.Duration
		asJSON   bool
	)
	f := newFlags("clients "+sub, getenv, stderr)
	f.db(&db)
	switch sub {
	case "create":
		f.StringVar(&name, "name", "", "the client's name (required)")
		f.Func("scopes", "its scopes, comma-separated: introspect, revoke, ssf.read, ssf.manage", func(v string) error {
			scopes = splitList(v)
			return nil
		})
		f.BoolVar(&asJSON, "json", false, `print {"client_id", "client_secret"} as JSON`)
	case "rotate":
		f.DurationVar(&overlap, "overlap", clients.DefaultRotateOverlap, "how long the replaced secret, and tokens issued with it, keep working; 0 stops them at once")
		f.BoolVar(&asJSON, "json", false, `print {"client_id", "client_secret"} as JSON`)
	}
	if err := f.parse(rest); err != nil {
		return err
	}
	st, err := openStore(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	svc := clients.New(clients.Config{}, st, nil)
	src := audit.CLI("clients " + sub)

	var c store.APIClient
	switch sub {
	case "create":
		created, err := svc.Create(ctx, src, name, scopes)
		if err != nil {
			return err
		}
		return printSecret(stdout, created, asJSON)
	case "list":
		list, err := svc.List(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "CLIENT ID\tNAME\tSCOPES\tCREATED\tLAST USED\tSTATE")
		for _, c := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, strings.Join(c.Scopes, ","), formatTime(c.CreatedAt),
				optionalTime(c.LastUsedAt), clientState(c, time.Now()))
		}
		return tw.Flush()
	case "show":
		c, err = svc.Get(ctx, id)
	case "rotate":
		rotated, err := svc.Rotate(ctx, src, id, overlap)
		if err != nil {
			return clientError(err, id)
		}
		return printSecret(stdout, rotated, asJSON)
	case "disable", "enable":
		disabled := sub == "disable"
		c, err = svc.Update(ctx, src, id, clients.Update{Disabled: &disabled})
	case "delete":
		if err := svc.Delete(ctx, src, id); err != nil {
			return clientError(err, id)
		}
		fmt.Fprintf(stdout, "deleted %s\n", id)
		return nil
	}
	if err != nil {
		return clientError(err, id)
	}
	printClient(stdout, c)
	return nil
}

func clientError(err error, id string) error {
	if err == clients.ErrNotFound {
		return fmt.Errorf("no API client %q", id)
	}
	return err
}

// clientState is how list shows a client: enabled or disabled, and a rotation's overlap.
func clientState(c store.APIClient, now time.Time) string {
	state := "enabled"
	if c.Disabled {
		state = "disabled"
	}
	if c.PreviousExpiresAt != nil && now.Before(*c.PreviousExpiresAt) {
		state += ", previous secret until " + formatTime(*c.PreviousExpiresAt)
	}
	return state
}

func optionalTime(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return formatTime(*t)
}

func printClient(w io.Writer, c store.APIClient) {
	fmt.Fprintf(w, "client_id:  %s\nname:       %s\nscopes:     %s\ncreated:    %s\nlast used:  %s\nsecret set: %s\nstate:      %s\n",
		c.ID, c.Name, strings.Join(c.Scopes, ","), formatTime(c.CreatedAt), optionalTime(c.LastUsedAt),
		formatTime(c.SecretSetAt), clientState(c, time.Now()))
}

// printSecret shows a new secret, the only time it is shown.
func printSecret(w io.Writer, c clients.WithSecret, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(map[string]string{"client_id": c.Client.ID, "client_secret": c.Secret})
	}
	printClient(w, c.Client)
	fmt.Fprintf(w, "client_secret: %s\n(shown this once: only its hash is stored)\n", c.Secret)
	return nil
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"golang.org/x/term"

	"github.com/authapi/authapi/internal/password"
	"github.com/authapi/authapi/internal/userfields"
	"github.com/authapi/authapi/internal/users"
)

// createSuperuser works like Django's: flags give what they give, the rest is asked for, the
// password hidden and twice. With --no-input the password comes from AUTHAPI_SUPERUSER_PASSWORD.
func createSuperuser(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	var db string
	var in users.NewUser
	var noInput bool
	var argonMemory, argonIter uint
	f := newFlags("createsuperuser", getenv, stderr)
	f.db(&db)
	f.StringVar(&in.Username, "username", "", "username")
	f.StringVar(&in.Email, "email", "", "email address")
	f.StringVar(&in.FirstName, "first-name", "", "first name")
	f.StringVar(&in.LastName, "last-name", "", "last name")
	f.BoolVar(&noInput, "no-input", false, "never prompt; the password comes from AUTHAPI_SUPERUSER_PASSWORD")
	p := password.DefaultParams()
	f.uint(&argonMemory, "argon2-memory", "AUTHAPI_ARGON2_MEMORY_KIB", uint(p.Memory), "argon2id memory cost in KiB")
	f.uint(&argonIter, "argon2-iterations", "AUTHAPI_ARGON2_ITERATIONS", uint(p.Iterations), "argon2id passes")
	if err := f.parse(args); err != nil {
		return err
	}
	hasher, err := newHasher(argonMemory, argonIter, password.Limit{})
	if err != nil {
		return err
	}
	st, err := openStore(ctx, db)
	if err != nil {
		return err
	}
	defer st.Close()
	svc := users.New(st, hasher, users.Config{})

	if noInput {
		in.Password = getenv("AUTHAPI_SUPERUSER_PASSWORD")
		if in.Password == "" {
			return errors.New("--no-input needs AUTHAPI_SUPERUSER_PASSWORD")
		}
		u, err := svc.CreateSuperuser(ctx, in)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Superuser %q created (id %d).\n", u.Username, u.ID)
		return nil
	}

	pr := &prompter{in: bufio.NewReader(stdin), out: stdout, stdin: stdin}
	for {
		for _, q := range []struct {
			label string
			v     *string
		}{{"Username", &in.Username}, {"Email address", &in.Email}, {"First name", &in.FirstName}, {"Last name", &in.LastName}} {
			for *q.v == "" {
				if *q.v, err = pr.line(q.label + ": "); err != nil {
					return err
				}
			}
		}
		if in.Password == "" {
			if in.Password, err = pr.newPassword(); err != nil {
				return err
			}
		}
		u, err := svc.CreateSuperuser(ctx, in)
		var invalid *userfields.Errors
		if errors.As(err, &invalid) {
			// Ask again for what was refused, keeping the rest.
			for _, name := range slices.Sorted(maps.Keys(invalid.Fields)) {
				fmt.Fprintf(stderr, "Error: %s: %s\n", name, strings.Join(invalid.Fields[name], " "))
				switch name {
				case "username":
					in.Username = ""
				case "email":
					in.Email = ""
				case "first_name":
					in.FirstName = ""
				case "last_name":
					in.LastName = ""
				case "password":
					in.Password = ""
				default:
					return err // nothing to ask again: asking would loop forever
				}
			}
			continue
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "Superuser %q created (id %d).\n", u.Username, u.ID)
		return nil
	}
}

type prompter struct {
	in    *bufio.Reader
	out   io.Writer
	stdin io.Reader
}

func (p *prompter) line(prompt string) (string, error) {
	fmt.Fprint(p.out, prompt)
	s, err := p.in.ReadString('\n')
	if err != nil && (s == "" || !errors.Is(err, io.EOF)) {
		if errors.Is(err, io.EOF) {
			return "", errors.New("input ended before the superuser was complete")
		}
		return "", err
	}
	return strings.TrimSpace(s), nil
}

// secret reads without echo on a terminal, and a plain line otherwise (tests, pipes).
func (p *prompter) secret(prompt string) (string, error) {
	if f, ok := p.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(p.out, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(p.out)
		return string(b), err
	}
	s, err := p.line(prompt)
	return s, err
}

func (p *prompter) newPassword() (string, error) {
	for {
		first, err := p.secret("Password: ")
		if err != nil {
			return "", err
		}
		second, err := p.secret("Password (again): ")
		if err != nil {
			return "", err
		}
		switch {
		case first == "":
			fmt.Fprintln(p.out, "Error: Blank passwords aren't allowed.")
		case first != second:
			fmt.Fprintln(p.out, "Error: Your passwords didn't match.")
		default:
			return first, nil
		}
	}
}

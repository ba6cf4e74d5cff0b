package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"time"
)

// errUsage means the flag package has already told the user what was wrong.
var errUsage = errors.New("usage")

// flags wraps a FlagSet whose defaults come from AUTHAPI_* environment variables, so every
// setting can be given either way; a flag wins over the environment.
type flags struct {
	*flag.FlagSet
	getenv func(string) string
	errs   []error
}

func newFlags(name string, getenv func(string) string, stderr io.Writer) *flags {
	fs := flag.NewFlagSet("authapi "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return &flags{FlagSet: fs, getenv: getenv}
}

func (f *flags) string(p *string, name, env, def, usage string) {
	if v := f.getenv(env); v != "" {
		def = v
	}
	f.StringVar(p, name, def, usage+" ("+env+")")
}

func (f *flags) duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	if v := f.getenv(env); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s: %w", env, err))
		}
		def = d
	}
	f.DurationVar(p, name, def, usage+" ("+env+")")
}

func (f *flags) uint(p *uint, name, env string, def uint, usage string) {
	if v := f.getenv(env); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s: %w", env, err))
		}
		def = uint(n)
	}
	f.UintVar(p, name, def, usage+" ("+env+")")
}

func (f *flags) parse(args []string) error {
	if err := f.Parse(args); err != nil {
		return errUsage
	}
	if f.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", f.Args())
	}
	return errors.Join(f.errs...)
}

// dbFlag is shared by every command.
func (f *flags) db(p *string) {
	f.string(p, "db", "AUTHAPI_DB", "./authapi.db", "SQLite file path or postgres:// URL")
}

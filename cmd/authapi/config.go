package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"strings"
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

// fromEnv returns env's value parsed, or def when env is unset. A value that does not parse
// is reported by parse, naming the variable.
func fromEnv[T any](f *flags, env string, def T, parse func(string) (T, error)) T {
	v := f.getenv(env)
	if v == "" {
		return def
	}
	x, err := parse(v)
	if err != nil {
		f.errs = append(f.errs, fmt.Errorf("%s: %w", env, err))
		return def
	}
	return x
}

func (f *flags) duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	f.DurationVar(p, name, fromEnv(f, env, def, time.ParseDuration), usage+" ("+env+")")
}

func (f *flags) bool(p *bool, name, env string, def bool, usage string) {
	f.BoolVar(p, name, fromEnv(f, env, def, strconv.ParseBool), usage+" ("+env+")")
}

func (f *flags) int(p *int, name, env string, def int, usage string) {
	f.IntVar(p, name, fromEnv(f, env, def, strconv.Atoi), usage+" ("+env+")")
}

func (f *flags) uint(p *uint, name, env string, def uint, usage string) {
	parse := func(v string) (uint, error) {
		n, err := strconv.ParseUint(v, 10, 32)
		return uint(n), err
	}
	f.UintVar(p, name, fromEnv(f, env, def, parse), usage+" ("+env+")")
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

// db is shared by every command.
func (f *flags) db(p *string) {
	f.string(p, "db", "AUTHAPI_DB", "./authapi.db", "SQLite file path or postgres:// URL")
}

// list is a comma-separated string flag.
func (f *flags) list(p *[]string, name, env, usage string) {
	f.Func(name, usage+", comma-separated ("+env+")", func(v string) error {
		*p = splitList(v)
		return nil
	})
	*p = splitList(f.getenv(env))
}

// listDefault is list with a default for when neither the flag nor env is given; the flag
// given empty (--name=) clears it.
func (f *flags) listDefault(p *[]string, name, env string, def []string, usage string) {
	*p = def
	if v := f.getenv(env); v != "" {
		*p = splitList(v)
	}
	f.Var((*listValue)(p), name, usage+", comma-separated ("+env+")")
}

// listValue is a comma-separated flag.Value whose default shows in the usage.
type listValue []string

func (l *listValue) String() string     { return strings.Join(*l, ",") }
func (l *listValue) Set(v string) error { *l = splitList(v); return nil }

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// parsePrefixes reads CIDRs; a bare IP is a single-address prefix.
func parsePrefixes(values []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(values))
	for _, v := range values {
		if p, err := netip.ParsePrefix(v); err == nil {
			out = append(out, p)
			continue
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: not an IP or CIDR", v)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

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

func (f *flags) bool(p *bool, name, env string, def bool, usage string) {
	if v := f.getenv(env); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s: %w", env, err))
		}
		def = b
	}
	f.BoolVar(p, name, def, usage+" ("+env+")")
}

func (f *flags) int(p *int, name, env string, def int, usage string) {
	if v := f.getenv(env); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			f.errs = append(f.errs, fmt.Errorf("%s: %w", env, err))
		}
		def = n
	}
	f.IntVar(p, name, def, usage+" ("+env+")")
}

// list is a comma-separated string flag.
func (f *flags) list(p *[]string, name, env, usage string) {
	f.Func(name, usage+", comma-separated ("+env+")", func(v string) error {
		*p = splitList(v)
		return nil
	})
	*p = splitList(f.getenv(env))
}

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

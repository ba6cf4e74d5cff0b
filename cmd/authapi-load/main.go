// Command authapi-load is the load benchmark behind `make load`: it measures `authapi serve`
// against a bare Echo handler that returns the same welcome JSON, on the same machine, under
// the same closed-loop load.
//
// It seeds a fresh SQLite database (and, when AUTHAPI_TEST_POSTGRES_DSN is set, a fresh
// PostgreSQL schema) with 10,000 users, starts the servers as child processes on 127.0.0.1,
// logs every connection in through the generated client, and then drives each scenario with
// vegeta: one single-worker attacker per connection (so a connection can carry its own token
// chain), 32 connections, keep-alive, as fast as the server answers. Systems are interleaved
// (bare, sqlite, postgres; next scenario; next round), so that every ratio compares runs seconds
// apart on a machine whose load may drift. It prints a table of medians over the rounds and
// writes every run as JSON.
//
//	authapi-load -bin bin/authapi [-duration 5s] [-warmup 1s] [-rounds 2] [-conns 32] [-scenarios welcome,login] [-out bin/load-results.json] [-pprof]
//	authapi-load bare -addr 127.0.0.1:8001   (the reference handler; started by the benchmark itself)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "bare" {
		err = serveBare(ctx, os.Args[2:])
	} else {
		err = benchmark(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "authapi-load:", err)
		os.Exit(1)
	}
}

// options are the benchmark's flags.
type options struct {
	bin         string
	duration    time.Duration
	warmup      time.Duration
	rounds      int
	conns       int
	users       int
	scenarios   []scenario
	out         string
	postgresDSN string
	timeout     time.Duration
	keep        bool
	pprof       bool
	serverEnv   []string // added to every authapi's environment
	tokens      int      // distinct access tokens of the many-tokens scenario
	generator   string   // generatorWrk or generatorVegeta
	wrk         string   // wrk's path
}

// Bounds that keep a mistyped flag from running for hours or opening thousands of sockets.
const (
	maxDuration = 2 * time.Minute
	maxRounds   = 10
	maxConns    = 256
	maxTokens   = 1_000_000
)

func parseOptions(args []string, getenv func(string) string, stderr io.Writer) (options, error) {
	var o options
	var names string
	fs := flag.NewFlagSet("authapi-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.bin, "bin", "bin/authapi", "the authapi binary to measure")
	fs.DurationVar(&o.duration, "duration", 5*time.Second, "length of each run")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured load before each run, so that a run starts from the steady state (GC, caches, memory the previous scenario left for the runtime to return)")
	fs.IntVar(&o.rounds, "rounds", 2, "rounds over every scenario and system")
	fs.IntVar(&o.conns, "conns", 32, "concurrent keep-alive connections (closed loop: each sends its next request when the last is answered)")
	fs.IntVar(&o.users, "users", 10000, "users in the database, of which the staff list reads the first 100")
	fs.StringVar(&names, "scenarios", "", "comma-separated scenarios to run (default all: "+strings.Join(scenarioNames(), ",")+")")
	fs.StringVar(&o.out, "out", "bin/load-results.json", "where to write every run as JSON")
	fs.StringVar(&o.postgresDSN, "postgres", getenv("AUTHAPI_TEST_POSTGRES_DSN"), "PostgreSQL database to create a fresh schema in, dropped afterwards (AUTHAPI_TEST_POSTGRES_DSN); empty measures SQLite only")
	fs.DurationVar(&o.timeout, "timeout", 20*time.Minute, "give up after this long")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (databases, server logs)")
	fs.BoolVar(&o.pprof, "pprof", false, "start every authapi with --debug-addr on a loopback port and print its profile URL, to run go tool pprof during a run")
	var generator, serverEnv string
	fs.StringVar(&serverEnv, "server-env", "", "comma-separated NAME=value settings added to every authapi under test, e.g. AUTHAPI_AUTH_CACHE_ENTRIES=-1 to measure the uncached path; GOMEMLIMIT and GOGC are passed too")
	fs.StringVar(&generator, "generator", "auto", "load generator: wrk, vegeta, or auto (wrk when installed, else vegeta; logout-login always runs on vegeta)")
	fs.IntVar(&o.tokens, "tokens", 100_000, "distinct access tokens the many-tokens scenario sends in turn (size the cache for them with -server-env AUTHAPI_AUTH_CACHE_MIB=..., about 1.9 KB each; -warmup long enough for one pass)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	switch {
	case o.warmup < 0 || o.warmup > maxDuration:
		return o, fmt.Errorf("-warmup %s not in [0, %s]", o.warmup, maxDuration)
	case o.duration <= 0 || o.duration > maxDuration:
		return o, fmt.Errorf("-duration %s not in (0, %s]", o.duration, maxDuration)
	case o.rounds < 1 || o.rounds > maxRounds:
		return o, fmt.Errorf("-rounds %d not in [1, %d]", o.rounds, maxRounds)
	case o.conns < 1 || o.conns > maxConns:
		return o, fmt.Errorf("-conns %d not in [1, %d]", o.conns, maxConns)
	}
	var err error
	for kv := range strings.SplitSeq(serverEnv, ",") {
		if kv = strings.TrimSpace(kv); kv != "" {
			name, _, ok := strings.Cut(kv, "=")
			// The Go runtime's memory settings too: the RSS a cache bound holds depends on them.
			if !ok || !strings.HasPrefix(name, "AUTHAPI_") && name != "GOMEMLIMIT" && name != "GOGC" {
				return o, fmt.Errorf("-server-env %q: want AUTHAPI_NAME=value, GOMEMLIMIT=value or GOGC=value", kv)
			}
			o.serverEnv = append(o.serverEnv, kv)
		}
	}
	if o.generator, o.wrk, err = chooseGenerator(generator); err != nil {
		return o, err
	}
	if o.scenarios, err = selectScenarios(names); err != nil {
		return o, err
	}
	for _, sc := range o.scenarios {
		if sc.many && (o.generator != generatorWrk || o.tokens < 1 || o.tokens > maxTokens) {
			return o, fmt.Errorf("scenario %s needs wrk and -tokens in [1, %d]", sc.name, maxTokens)
		}
	}
	// Every scenario's connections log in as users of their own, so that the per-account
	// login limit (attempts in flight count) never throttles a run.
	if need := len(allScenarios)*o.conns + 100; o.users < need {
		return o, fmt.Errorf("-users %d: need at least %d for %d connections", o.users, need, o.conns)
	}
	return o, nil
}

func benchmark(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, getenv, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	b, err := newBench(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	rep, err := b.run(ctx)
	if err != nil {
		b.failed = true
		return err
	}
	if err := writeJSON(o.out, rep); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	renderTable(stdout, rep)
	fmt.Fprintf(stdout, "\nEvery run: %s\n", o.out)
	return nil
}

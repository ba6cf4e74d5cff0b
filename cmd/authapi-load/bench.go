package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// system is one authapi under test: its database, its servers and every scenario's
// connections, logged in before the first run.
type system struct {
	name   string
	env    []string // besides authapiEnv's
	writes bool     // runs only the scenarios that write
	// receivers, when set, is how many Shared Signals poll receivers follow the main
	// server during every run; such a system runs only the scenarios marked signals.
	receivers int
	servers   map[string]*process // by role
	conns     map[string][]*conn  // by scenario name
	client    apiClient           // made for the introspect and verifier scenarios
	tokens    string              // the many-tokens scenario's tokens file
	stop      func()              // stops the receivers
}

// runs reports whether s measures sc.
func (s *system) runs(sc scenario) bool {
	switch {
	case s.receivers > 0:
		return sc.signals
	case s.writes:
		return sc.writes
	}
	return true
}

func (s *system) server(sc scenario) *process { return s.servers[cmp.Or(sc.server, roleMain)] }

type bench struct {
	o       options
	dir     string
	log     io.Writer
	bare    *process
	systems []*system
	procs   []*process
	cleanup []func() error
	stops   []func()     // before the processes stop: what follows them
	failed  bool         // keep the directory, logs and all, for a look
	client  *http.Client // setup logins and recoveries
	wrk     string       // wrk's path, when it generates the load
}

func newBench(ctx context.Context, o options, log io.Writer) (_ *bench, err error) {
	bin, err := filepath.Abs(o.bin)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("authapi binary: %w (run `make build`, or use `make load`)", err)
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "authapi-load-")
	if err != nil {
		return nil, err
	}
	b := &bench{o: o, dir: dir, log: log, client: &http.Client{Timeout: 30 * time.Second}, wrk: o.wrk}
	defer func() {
		if err != nil {
			b.close()
		}
	}()

	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	if b.bare, err = startProcess(ctx, "bare", addr, filepath.Join(dir, "bare.log"), "/", []string{}, self, "bare", "-addr", addr); err != nil {
		return nil, err
	}
	b.procs = append(b.procs, b.bare)

	// SQLite twice: as it runs by default, and syncing the WAL at every commit (which only
	// writes can tell apart).
	systems := []*system{
		{name: "sqlite"},
		{name: "sqlite-full", env: []string{"AUTHAPI_SQLITE_SYNCHRONOUS=full"}, writes: true},
		{name: "sqlite+ssf", receivers: signalReceivers},
	}
	dsns := []string{filepath.Join(dir, "authapi.db"), filepath.Join(dir, "authapi-full.db"), filepath.Join(dir, "authapi-ssf.db")}
	if o.postgresDSN != "" {
		for _, s := range []*system{{name: "postgres"}, {name: "postgres+ssf", receivers: signalReceivers}} {
			dsn, drop, err := postgresSchema(ctx, o.postgresDSN)
			if err != nil {
				return nil, err
			}
			b.cleanup = append(b.cleanup, drop)
			systems, dsns = append(systems, s), append(dsns, dsn)
		}
	}
	for i, s := range systems {
		if !slices.ContainsFunc(o.scenarios, s.runs) {
			continue
		}
		if err := b.startSystem(ctx, bin, s, dsns[i]); err != nil {
			return nil, err
		}
		b.systems = append(b.systems, s)
	}
	return b, nil
}

// startSystem seeds the database, starts its servers and logs every connection in.
func (b *bench) startSystem(ctx context.Context, bin string, s *system, dsn string) error {
	name := s.name
	start := time.Now()
	var err error
	if err = seed(ctx, dsn, b.o.users); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintf(b.log, "%s: seeded %d users in %s\n", name, b.o.users, time.Since(start).Round(time.Millisecond))
	if s.client, err = createClient(ctx, bin, dsn); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	s.servers, s.conns = map[string]*process{}, map[string][]*conn{}
	need := map[string]bool{roleLogin: true} // the setup logins
	for _, sc := range b.o.scenarios {
		if s.runs(sc) {
			need[cmp.Or(sc.server, roleMain)] = true
		}
	}
	if need[roleVerifier] {
		need[roleMain] = true // the issuer it follows
	}
	addrs := map[string]string{}
	for _, role := range roles {
		if need[role] {
			if addrs[role], err = freeAddr(); err != nil {
				return err
			}
		}
	}
	// Every server of the system issues tokens as the main one, so that each accepts the
	// others' and a resource server following the main one accepts them all.
	issuer := "http://" + addrs[roleMain]
	if addrs[roleMain] == "" {
		issuer = "http://" + addrs[roleLogin]
	}
	for _, role := range roles {
		if !need[role] {
			continue
		}
		addr := addrs[role]
		procName := name
		if role != roleMain {
			procName += "-" + role
		}
		if role == roleVerifier {
			p, err := b.startVerifier(ctx, s, procName, addr)
			if err != nil {
				return err
			}
			s.servers[role] = p
			continue
		}
		env := append(authapiEnv(dsn, addr, role != roleFixedRefresh), "AUTHAPI_ISSUER="+issuer)
		env = append(env, s.env...)
		env = append(env, b.o.serverEnv...)
		var debugAddr string
		if b.o.pprof {
			if debugAddr, err = freeAddr(); err != nil {
				return err
			}
			env = append(env, "AUTHAPI_DEBUG_ADDR="+debugAddr)
		}
		p, err := startProcess(ctx, procName, addr, filepath.Join(b.dir, procName+".log"), "/readyz", env, bin, "serve")
		if err != nil {
			return err
		}
		if debugAddr != "" {
			fmt.Fprintf(b.log, "%s: go tool pprof 'http://%s/debug/pprof/profile?seconds=10'\n", procName, debugAddr)
		}
		b.procs = append(b.procs, p)
		s.servers[role] = p
	}
	for _, sc := range b.o.scenarios {
		if sc.many && s.runs(sc) {
			start := time.Now()
			s.tokens = filepath.Join(b.dir, name+"-tokens.txt")
			if err := mintTokens(ctx, dsn, issuer, b.o.tokens, b.o.users, s.tokens); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			fmt.Fprintf(b.log, "%s: made %d sessions and access tokens in %s\n", name, b.o.tokens, time.Since(start).Round(time.Millisecond))
		}
	}
	start = time.Now()
	for _, sc := range b.o.scenarios {
		if !s.runs(sc) {
			continue
		}
		conns, err := b.connect(ctx, s.server(sc), s.servers[roleLogin], sc)
		if err != nil {
			return fmt.Errorf("%s, %s: %w", name, sc.name, err)
		}
		for _, c := range conns {
			c.clientAuth = s.client.basic()
		}
		s.conns[sc.name] = conns
	}
	fmt.Fprintf(b.log, "%s: logged in the connections in %s\n", name, time.Since(start).Round(time.Millisecond))
	if s.receivers > 0 {
		if s.stop, err = startReceivers(ctx, s.servers[roleMain].base, s.client, s.receivers); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		b.stops = append(b.stops, s.stop)
		fmt.Fprintf(b.log, "%s: %d Shared Signals receivers following %s\n", name, s.receivers, s.servers[roleMain].base)
	}
	return nil
}

// authapiEnv is the whole environment of a server under test: nothing is inherited. Throttles
// that would refuse the benchmark's own traffic (every request comes from 127.0.0.1) are off;
// the per-account login limit stays on, and every connection logs in as a user of its own.
func authapiEnv(dsn, addr string, rotate bool) []string {
	return []string{
		"AUTHAPI_DB=" + dsn,
		"AUTHAPI_ADDR=" + addr,
		"AUTHAPI_ROTATE_REFRESH_TOKENS=" + strconv.FormatBool(rotate),
		"AUTHAPI_REFRESH_REUSE_GRACE=0s",
		"AUTHAPI_REFRESHES_PER_IP_PER_MINUTE=-1",
		"AUTHAPI_LOGIN_FAILURES_PER_IP=-1",
		"AUTHAPI_ACCESS_TOKEN_LIFETIME=1h",
		"AUTHAPI_REFRESH_TOKEN_LIFETIME=2h",
		"AUTHAPI_FLUSH_INTERVAL=0s",
		"AUTHAPI_SHUTDOWN_DRAIN=0s", // no load balancer to tell: stop at once between runs
	}
}

// connect makes the scenario's connections to p: each logs in as a user of its own (the staff
// user for list-users) through login, two logins at a time.
func (b *bench) connect(ctx context.Context, p, login *process, sc scenario) ([]*conn, error) {
	k := indexOf(sc)
	n := b.o.conns
	if b.o.generator == generatorWrk && sc.refresh {
		// A token more per wrk thread: wrk 4.1 asks each thread's script for a request
		// before its connections start and throws it away (see wrkScript).
		n += wrkThreads
	}
	conns := make([]*conn, n)
	for i := range conns {
		conns[i] = &conn{base: p.base, username: userName(1 + k*b.o.conns + i)}
		if sc.staff {
			conns[i].username = staffUser
		}
	}
	if sc.noSession {
		return conns, nil
	}
	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	sem := make(chan struct{}, 2)
	for i, c := range conns {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = c.login(ctx, b.client, login.base)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return conns, nil
}

func indexOf(sc scenario) int {
	for i, s := range allScenarios {
		if s.name == sc.name {
			return i
		}
	}
	panic("unknown scenario " + sc.name)
}

func (b *bench) close() {
	for _, stop := range b.stops {
		stop()
	}
	for _, p := range b.procs {
		p.stop()
	}
	for _, f := range b.cleanup {
		if err := f(); err != nil {
			fmt.Fprintln(b.log, "cleanup:", err)
		}
	}
	if b.o.keep || b.failed {
		fmt.Fprintln(b.log, "kept", b.dir)
		return
	}
	os.RemoveAll(b.dir)
}

// run measures every scenario on every system, round after round: bare, sqlite, postgres.
func (b *bench) run(ctx context.Context) (*report, error) {
	rep := &report{
		Generator: b.o.generator,
		Started:   time.Now().UTC(), Duration: b.o.duration.String(), Rounds: b.o.rounds, Conns: b.o.conns,
		Users: b.o.users, CPUs: numCPU(), Scenarios: map[string]string{},
	}
	for _, sc := range b.o.scenarios {
		rep.Scenarios[sc.name] = sc.what
	}
	// The reference answers the same authenticated GET in every scenario: its run next to the
	// scenario's gives the ratio on the machine as it was at that moment.
	bareScenario, bareConns := allScenarios[0], make([]*conn, b.o.conns)
	for i := range bareConns {
		bareConns[i] = &conn{base: b.bare.base, access: b.accessToken()}
	}
	for round := 1; round <= b.o.rounds; round++ {
		for _, sc := range b.o.scenarios {
			bare, err := b.measure(ctx, round, sc.name, "bare", bareScenario, b.bare, bareConns, "")
			if err != nil {
				return nil, err
			}
			rep.Runs = append(rep.Runs, bare)
			for _, s := range b.systems {
				if !s.runs(sc) {
					continue
				}
				r, err := b.measure(ctx, round, sc.name, s.name, sc, s.server(sc), s.conns[sc.name], s.tokens)
				if err != nil {
					return nil, err
				}
				if bare.RPS > 0 {
					r.RatioToBare = r.RPS / bare.RPS
				}
				rep.Runs = append(rep.Runs, r)
			}
			if sc.name == "login" {
				// The login scenario's ceiling, measured next to it on the machine as it is.
				rate, err := hashAloneRate(ctx, b.o.duration)
				if err != nil {
					return nil, fmt.Errorf("hash alone: %w", err)
				}
				fmt.Fprintf(b.log, "round %d %-14s %-8s %8.0f checks/s\n", round, sc.name, hashAloneSystem, rate)
				rep.Runs = append(rep.Runs, run{Round: round, Scenario: sc.name, System: hashAloneSystem, RPS: rate, Errors: map[string]int{}})
			}
		}
	}
	for _, s := range b.systems {
		for _, role := range roles {
			p := s.servers[role]
			if p == nil {
				continue
			}
			errorLines, status5xx := p.logProblems()
			rep.ServerLogs = append(rep.ServerLogs, serverLog{Server: p.name, ErrorLines: errorLines, Status5xx: status5xx})
		}
	}
	rep.Summary = summarize(rep.Runs)
	for _, s := range rep.Summary {
		if s.System == hashAloneSystem {
			rep.HashAloneRPS = s.RPS
		}
	}
	return rep, nil
}

// accessToken is a real access token, for the reference's requests to carry the same bearer
// header as authapi's.
func (b *bench) accessToken() string {
	for _, sc := range b.o.scenarios {
		for _, c := range b.systems[0].conns[sc.name] {
			if c.access != "" {
				return c.access
			}
		}
	}
	return "no-token"
}

// measure runs one scenario against one server for the configured duration.
func (b *bench) measure(ctx context.Context, round int, scenarioName, systemName string, sc scenario, p *process, conns []*conn, tokensFile string) (run, error) {
	if err := ctx.Err(); err != nil {
		return run{}, err
	}
	if err := p.exitError(); err != nil {
		return run{}, err
	}
	relogin := func(c *conn) error { return c.login(ctx, b.client, c.base) }
	useWrk := b.o.generator == generatorWrk && wrkCan(sc)
	drive := func(d time.Duration) (attackResult, error) {
		if !useWrk {
			return attack(ctx, sc, conns, d, relogin), nil
		}
		relogins := 0
		for _, c := range conns {
			if sc.refresh && c.refresh == "" { // its chain ended with the last run's requests in flight
				if err := retry(ctx, func() error { return relogin(c) }); err != nil {
					return attackResult{}, err
				}
				relogins++
			}
		}
		res, err := b.attackWrk(ctx, sc, conns, tokensFile, d)
		res.relogins = relogins
		return res, err
	}
	if b.o.warmup > 0 {
		if _, err := drive(b.o.warmup); err != nil {
			return run{}, err
		}
	}
	pid := p.pid()
	rssNote := ""
	if err := resetPeakRSS(pid); err != nil {
		rssNote = "peak since start: " + err.Error()
	}
	srv0, err := readUsage(pid)
	if err != nil {
		return run{}, cmp.Or(p.exitError(), fmt.Errorf("%s: %w", p.name, err))
	}
	self0, err := readUsage("self")
	if err != nil {
		return run{}, err
	}
	start := time.Now()
	res, err := drive(b.o.duration)
	if err != nil {
		return run{}, err
	}
	wall := time.Since(start)
	if err := p.exitError(); err != nil {
		return run{}, err
	}
	srv1, err := readUsage(pid)
	if err != nil {
		return run{}, cmp.Or(p.exitError(), fmt.Errorf("%s: %w", p.name, err))
	}
	self1, err := readUsage("self")
	if err != nil {
		return run{}, err
	}
	var r run
	if res.wrk != nil {
		r = newWrkRun(round, scenarioName, systemName, res)
	} else {
		r = newRun(round, scenarioName, systemName, res)
	}
	r.Generator = generatorVegeta
	if res.wrk != nil {
		r.Generator = generatorWrk
	}
	r.PeakRSSMiB = float64(srv1.peakRSS) / (1 << 20)
	r.PeakRSSNote = rssNote
	r.FileRSSMiB = float64(srv1.fileRSS) / (1 << 20)
	r.ServerCPUSeconds = (srv1.cpu - srv0.cpu).Seconds()
	r.ServerCores = r.ServerCPUSeconds / wall.Seconds()
	r.LoadCores = (self1.cpu - self0.cpu + res.childCPU).Seconds() / wall.Seconds()
	fmt.Fprintf(b.log, "round %d %-14s %-8s %8.0f req/s  p50 %6.2f ms  p99 %7.2f ms  errors %s\n",
		round, scenarioName, systemName, r.RPS, r.P50Ms, r.P99Ms, formatErrors(r.Errors))
	return r, nil
}

// retry runs f up to 5 times, a second apart, until it succeeds: a login between runs may
// meet a server still catching up with the run before.
func retry(ctx context.Context, f func() error) error {
	var err error
	for range 5 {
		if err = f(); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return err
}

// attackResult is what one run's connections saw.
type attackResult struct {
	metrics   vegeta.Metrics
	transport map[string]int // transport errors (no HTTP status) by message
	relogins  int
	wrk       *wrkOut       // the run's figures when wrk drove it
	childCPU  time.Duration // wrk's CPU time (user + system)
}

// attack drives the connections for d, each with a single-worker vegeta attacker at an
// unbounded rate: a closed loop in which a connection sends its next request as soon as the
// last one is answered and its state updated. A connection whose state is lost logs in again
// through relogin before its next request.
func attack(ctx context.Context, sc scenario, conns []*conn, d time.Duration, relogin func(*conn) error) attackResult {
	var (
		mu  sync.Mutex
		out = attackResult{transport: map[string]int{}}
		wg  sync.WaitGroup
	)
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := make(chan vegeta.Target, 1)
			next <- sc.next(c)
			targeter := func(t *vegeta.Target) error { *t = <-next; return nil }
			a := vegeta.NewAttacker(
				vegeta.Workers(1), vegeta.MaxWorkers(1), vegeta.Connections(1), vegeta.MaxConnections(1),
				vegeta.KeepAlive(true), vegeta.Redirects(vegeta.NoFollow), vegeta.Timeout(30*time.Second),
			)
			stop := context.AfterFunc(ctx, func() { a.Stop() })
			defer stop()
			for r := range a.Attack(targeter, vegeta.Rate{}, d, sc.name) {
				ok := sc.observe == nil || sc.observe(c, r)
				mu.Lock()
				out.metrics.Add(r)
				if r.Code == 0 {
					out.transport[r.Error]++
				}
				mu.Unlock()
				if !ok && relogin(c) == nil {
					mu.Lock()
					out.relogins++
					mu.Unlock()
				}
				next <- sc.next(c)
			}
		}()
	}
	wg.Wait()
	out.metrics.Close()
	return out
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// The load generators: wrk (C, event loop, a fraction of a core for what vegeta needs a
// core for) when it is installed, vegeta as a library otherwise.
const (
	generatorWrk    = "wrk"
	generatorVegeta = "vegeta"
)

// wrkThreads is wrk's -t: one thread per core of this 2-core machine's class; each thread
// carries conns/wrkThreads connections.
const wrkThreads = 2

// chooseGenerator resolves -generator: "auto" is wrk when its binary is on PATH.
func chooseGenerator(name string) (generator, wrkPath string, err error) {
	switch name {
	case "auto", generatorWrk:
		p, lookErr := exec.LookPath("wrk")
		if lookErr == nil {
			return generatorWrk, p, nil
		}
		if name == generatorWrk {
			return "", "", fmt.Errorf("-generator wrk: %w", lookErr)
		}
		return generatorVegeta, "", nil
	case generatorVegeta:
		return generatorVegeta, "", nil
	}
	return "", "", fmt.Errorf("-generator %q: want auto, wrk or vegeta", name)
}

// wrkCan reports whether wrk can drive sc: every scenario whose connections carry no state
// between requests, and the refresh chains (the script keeps each thread's refresh tokens in
// a queue: a request takes one, its answer puts the new one back). logout-login alternates
// per connection, which wrk's script cannot tie to a connection: vegeta drives it.
func wrkCan(sc scenario) bool { return sc.observe == nil || sc.refresh }

// wrkScript is the Lua wrk runs. Static scenarios answer, per thread, the connections' raw
// requests in turn (made by the benchmark, so exactly what vegeta would send); refresh
// scenarios build each request from the queue of refresh tokens, which done() writes back.
// Debian's wrk 4.1 calls request() once per thread before the connections start and drops
// what it answers: the refresh scenarios have a token more per thread than connections (see
// connect), so that the queue never runs dry.
var wrkScript = template.Must(template.New("wrk").Parse(`
local threads = {}
local n = 0
function setup(thread)
  thread:set("id", n)
  n = n + 1
  table.insert(threads, thread)
end

local reqs = { {{range .Requests}}[==[{{.}}]==],
{{end}} }
queue = { {{range .Tokens}}"{{.}}",
{{end}} }
codes = {}
local i = 0

{{if .Many}}
local toks = {}
function init(args)
  local k = 0
  for line in io.lines("{{.TokensFile}}") do
    if k % {{.Threads}} == id then table.insert(toks, "Bearer " .. line) end
    k = k + 1
  end
end
function request()
  i = i + 1
  if i > #toks then i = 1 end
  return wrk.format("GET", "/api/v1/", { Authorization = toks[i] })
end
{{else}}
function init(args)
  local mine, q = {}, {}
  for k, r in ipairs(reqs) do
    if (k - 1) % {{.Threads}} == id then table.insert(mine, r) end
  end
  for k, t in ipairs(queue) do
    if (k - 1) % {{.Threads}} == id then table.insert(q, t) end
  end
  reqs = mine
  queue = q
end
{{end}}

{{if .Refresh}}
local headers = { ["Content-Type"] = "application/json" }
function request()
  local t = table.remove(queue, 1)
  if t == nil then t = "lost" end
  return wrk.format("POST", "{{.Path}}", headers, '{"refresh":"' .. t .. '"}')
end

function response(status, headers, body)
  codes[status] = (codes[status] or 0) + 1
  if status == 200 then
    local t = string.match(body, '"refresh"%s*:%s*"([^"]+)"')
    if t ~= nil then table.insert(queue, t) end
  end
end
{{else if not .Many}}
function request()
  i = i + 1
  if i > #reqs then i = 1 end
  return reqs[i]
end
{{end}}

function done(summary, latency, requests)
  local all = {}
  local tokens = {}
  for _, t in ipairs(threads) do
    local c = t:get("codes")
    if c ~= nil then
      for k, v in pairs(c) do all[tostring(k)] = (all[tostring(k)] or 0) + v end
    end
    local q = t:get("queue")
    if q ~= nil then
      for _, tok in ipairs(q) do table.insert(tokens, '"' .. tok .. '"') end
    end
  end
  local parts = {}
  for k, v in pairs(all) do table.insert(parts, '"' .. k .. '":' .. v) end
  local e = summary.errors
  io.write(string.format('\nWRKJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"codes":{%s},"tokens":[%s]}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, table.concat(parts, ","), table.concat(tokens, ",")))
end
`))

// wrkOut is what the script's done() prints.
type wrkOut struct {
	Requests   uint64         `json:"requests"`
	DurationUs int64          `json:"duration_us"`
	P50Us      int64          `json:"p50_us"`
	P99Us      int64          `json:"p99_us"`
	MaxUs      int64          `json:"max_us"`
	Connect    int            `json:"connect"`
	Read       int            `json:"read"`
	Write      int            `json:"write"`
	Status     int            `json:"status"`
	Timeout    int            `json:"timeout"`
	Codes      map[string]int `json:"codes"`
	Tokens     []string       `json:"tokens"`
}

// rawRequest is t as HTTP/1.1 bytes, as wrk sends them.
func rawRequest(t vegeta.Target) (string, error) {
	u, err := url.Parse(t.URL)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", t.Method, u.RequestURI(), u.Host)
	for k, vs := range t.Header {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	if len(t.Body) > 0 || t.Method == http.MethodPost {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(t.Body))
	}
	b.WriteString("\r\n")
	b.Write(t.Body)
	s := b.String()
	if strings.Contains(s, "]==]") {
		return "", fmt.Errorf("request to %s cannot be quoted in Lua", t.URL)
	}
	return s, nil
}

// attackWrk drives conns with wrk for d: -t2, one wrk connection per conn, and for the
// refresh scenarios carries the chains over: conns' refresh tokens are the queue's at the end.
func (b *bench) attackWrk(ctx context.Context, sc scenario, conns []*conn, tokensFile string, d time.Duration) (attackResult, error) {
	// A server that does not rotate answers no new refresh token: its requests are static.
	chains := sc.refresh && sc.server != roleFixedRefresh
	data := struct {
		Requests, Tokens []string
		Threads          int
		Refresh, Many    bool
		Path, TokensFile string
	}{Threads: wrkThreads, Refresh: chains, Many: sc.many, TokensFile: tokensFile, Path: "/api/v1/auth/token/refresh/"}
	for _, c := range conns {
		if sc.many {
			continue
		}
		if chains {
			data.Tokens = append(data.Tokens, c.refresh)
			continue
		}
		r, err := rawRequest(sc.next(c))
		if err != nil {
			return attackResult{}, err
		}
		data.Requests = append(data.Requests, r)
	}
	var script bytes.Buffer
	if err := wrkScript.Execute(&script, data); err != nil {
		return attackResult{}, err
	}
	path := filepath.Join(b.dir, "wrk-"+sc.name+".lua")
	if err := os.WriteFile(path, script.Bytes(), 0o600); err != nil {
		return attackResult{}, err
	}
	threads := min(wrkThreads, len(conns))
	secs := max(int(d.Round(time.Second)/time.Second), 1)
	cmd := exec.CommandContext(ctx, b.wrk, "-t", strconv.Itoa(threads), "-c", strconv.Itoa(min(len(conns), b.o.conns)),
		"-d", strconv.Itoa(secs)+"s", "--timeout", "30s", "-s", path, conns[0].base)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return attackResult{}, fmt.Errorf("wrk: %w: %s", err, stderr.String())
	}
	var out wrkOut
	found := false
	sc2 := bufio.NewScanner(&stdout)
	sc2.Buffer(make([]byte, 1<<20), 1<<24)
	for sc2.Scan() {
		if rest, ok := strings.CutPrefix(sc2.Text(), "WRKJSON "); ok {
			if err := json.Unmarshal([]byte(rest), &out); err != nil {
				return attackResult{}, fmt.Errorf("wrk output: %w", err)
			}
			found = true
		}
	}
	if !found {
		return attackResult{}, fmt.Errorf("wrk printed no summary: %s %s", stdout.String(), stderr.String())
	}
	if chains {
		// The chains go on from the tokens the queue holds; a connection whose chain broke
		// logs in again before the next run.
		for i, c := range conns {
			c.refresh = ""
			if i < len(out.Tokens) {
				c.refresh = out.Tokens[i]
			}
		}
	}
	res := wrkResult(out)
	res.childCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	return res, nil
}

// wrkResult is out as the figures vegeta's runs give.
func wrkResult(out wrkOut) attackResult {
	res := attackResult{transport: map[string]int{}, wrk: &out}
	for k, n := range map[string]int{"connect": out.Connect, "read": out.Read, "write": out.Write, "timeout": out.Timeout} {
		if n > 0 {
			res.transport[k] = n
		}
	}
	return res
}

// newWrkRun is newRun for a wrk run.
func newWrkRun(round int, scenarioName, systemName string, res attackResult) run {
	out := res.wrk
	r := run{
		Round: round, Scenario: scenarioName, System: systemName,
		Requests: out.Requests, Seconds: float64(out.DurationUs) / 1e6,
		P50Ms: float64(out.P50Us) / 1e3, P99Ms: float64(out.P99Us) / 1e3, MaxMs: float64(out.MaxUs) / 1e3,
		Errors: map[string]int{}, Relogins: res.relogins,
	}
	if r.Seconds > 0 {
		r.RPS = float64(out.Requests) / r.Seconds
	}
	if len(out.Codes) > 0 {
		for code, n := range out.Codes {
			if !strings.HasPrefix(code, "2") {
				r.Errors[code] += n
			}
		}
	} else if out.Status > 0 {
		r.Errors["4xx/5xx"] = out.Status // wrk counts statuses >= 400 without telling them apart
	}
	for _, n := range res.transport {
		r.Errors["transport"] += n
	}
	if len(res.transport) > 0 {
		r.TransportErrors = res.transport
	}
	return r
}

package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// report is everything one benchmark measured; it is what -out holds.
type report struct {
	// Generator is the load generator of the runs it could drive: wrk or vegeta (see Runs'
	// own, logout-login always runs on vegeta).
	Generator string            `json:"generator"`
	Started   time.Time         `json:"started"`
	Duration  string            `json:"duration_per_run"`
	Rounds    int               `json:"rounds"`
	Conns     int               `json:"connections"`
	Users     int               `json:"users"`
	CPUs      int               `json:"cpus"`
	Scenarios map[string]string `json:"scenarios"`
	Summary   []summary         `json:"summary"`
	// HashAloneRPS is the login scenario's ceiling: password checks a second on every CPU with
	// nothing else running (0 when login was not measured).
	HashAloneRPS float64     `json:"hash_alone_rps,omitempty"`
	Runs         []run       `json:"runs"`
	ServerLogs   []serverLog `json:"server_logs"`
}

// run is one scenario on one system for one duration.
type run struct {
	Round    int    `json:"round"`
	Scenario string `json:"scenario"`
	System   string `json:"system"`
	// Generator is wrk or vegeta.
	Generator string  `json:"generator"`
	Requests  uint64  `json:"requests"`
	Seconds   float64 `json:"seconds"` // from the first request sent to the last answer
	RPS       float64 `json:"rps"`
	// RatioToBare is RPS over the reference's in the same round and scenario (0 for bare).
	RatioToBare float64 `json:"ratio_to_bare,omitempty"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	MaxMs       float64 `json:"max_ms"`
	// Errors counts answers that were not 2xx by status; "transport" counts requests that got
	// no answer (their messages are in TransportErrors).
	Errors          map[string]int `json:"errors"`
	TransportErrors map[string]int `json:"transport_errors,omitempty"`
	Relogins        int            `json:"relogins,omitempty"`
	PeakRSSMiB      float64        `json:"peak_rss_mib"`
	PeakRSSNote     string         `json:"peak_rss_note,omitempty"`
	// FileRSSMiB is the part of the RSS that maps files (the binary's code and read-only
	// data, shared with the page cache) at the end of the run; the rest is the heap and stacks.
	FileRSSMiB       float64 `json:"file_rss_mib"`
	ServerCPUSeconds float64 `json:"server_cpu_seconds"`
	ServerCores      float64 `json:"server_cores"` // CPU seconds per second of the run
	LoadCores        float64 `json:"load_generator_cores"`
}

// summary is one scenario on one system over every round: medians, except errors (summed)
// and peak RSS (the highest).
type summary struct {
	Scenario    string         `json:"scenario"`
	System      string         `json:"system"`
	RPS         float64        `json:"rps"`
	RatioToBare float64        `json:"ratio_to_bare,omitempty"`
	P50Ms       float64        `json:"p50_ms"`
	P99Ms       float64        `json:"p99_ms"`
	Errors      map[string]int `json:"errors"`
	PeakRSSMiB  float64        `json:"peak_rss_mib"`
	FileRSSMiB  float64        `json:"file_rss_mib"`
	ServerCores float64        `json:"server_cores"`
	LoadCores   float64        `json:"load_generator_cores"`
}

// serverLog is what a server under test logged as wrong over the whole benchmark.
type serverLog struct {
	Server     string `json:"server"`
	ErrorLines int    `json:"error_lines"`
	Status5xx  int    `json:"status_5xx"`
}

func numCPU() int { return runtime.NumCPU() }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func newRun(round int, scenarioName, systemName string, res attackResult) run {
	m := res.metrics
	r := run{
		Round: round, Scenario: scenarioName, System: systemName,
		Requests: m.Requests, Seconds: (m.Duration + m.Wait).Seconds(),
		P50Ms: ms(m.Latencies.P50), P99Ms: ms(m.Latencies.P99), MaxMs: ms(m.Latencies.Max),
		Errors: map[string]int{}, Relogins: res.relogins,
	}
	if r.Seconds > 0 {
		r.RPS = float64(m.Requests) / r.Seconds
	}
	for code, n := range m.StatusCodes {
		switch {
		case code == "0":
			r.Errors["transport"] += n
		case !strings.HasPrefix(code, "2"):
			r.Errors[code] += n
		}
	}
	if len(res.transport) > 0 {
		r.TransportErrors = res.transport
	}
	return r
}

// summarize folds the rounds of each scenario and system into one summary, in the order the
// runs were made.
func summarize(runs []run) []summary {
	type key struct{ scenario, system string }
	var order []key
	groups := map[key][]run{}
	for _, r := range runs {
		k := key{r.Scenario, r.System}
		if _, seen := groups[k]; !seen {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	out := make([]summary, 0, len(order))
	for _, k := range order {
		g := groups[k]
		s := summary{Scenario: k.scenario, System: k.system, Errors: map[string]int{}}
		s.RPS = median(g, func(r run) float64 { return r.RPS })
		s.RatioToBare = median(g, func(r run) float64 { return r.RatioToBare })
		s.P50Ms = median(g, func(r run) float64 { return r.P50Ms })
		s.P99Ms = median(g, func(r run) float64 { return r.P99Ms })
		s.ServerCores = median(g, func(r run) float64 { return r.ServerCores })
		s.LoadCores = median(g, func(r run) float64 { return r.LoadCores })
		for _, r := range g {
			s.PeakRSSMiB = max(s.PeakRSSMiB, r.PeakRSSMiB)
			s.FileRSSMiB = max(s.FileRSSMiB, r.FileRSSMiB)
			for code, n := range r.Errors {
				s.Errors[code] += n
			}
		}
		out = append(out, s)
	}
	return out
}

// median of f over runs; the mean of the middle two for an even count.
func median(runs []run, f func(run) float64) float64 {
	if len(runs) == 0 {
		return 0
	}
	xs := make([]float64, len(runs))
	for i, r := range runs {
		xs[i] = f(r)
	}
	slices.Sort(xs)
	n := len(xs)
	if n%2 == 1 {
		return xs[n/2]
	}
	return (xs[n/2-1] + xs[n/2]) / 2
}

// formatErrors is "0", or counts by status such as "401:3 transport:1", statuses in order.
func formatErrors(errs map[string]int) string {
	var parts []string
	// Statuses in order; "transport" (no status) sorts after them.
	for _, code := range slices.SortedFunc(maps.Keys(errs), func(a, b string) int {
		return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b))
	}) {
		if errs[code] > 0 {
			parts = append(parts, fmt.Sprintf("%s:%d", code, errs[code]))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, " ")
}

// renderTable writes the summary as a Markdown table, then what the servers logged as wrong.
func renderTable(w io.Writer, rep *report) {
	fmt.Fprintf(w, "%d connections, %s per run, median of %d rounds; %d CPUs; load generator %s; started %s\n\n",
		rep.Conns, rep.Duration, rep.Rounds, rep.CPUs, cmp.Or(rep.Generator, generatorVegeta), rep.Started.Format(time.RFC3339))
	tw := tabwriter.NewWriter(w, 0, 0, 1, ' ', 0)
	row := func(cells ...string) { fmt.Fprintln(tw, "| "+strings.Join(cells, "\t| ")+"\t|") }
	row("scenario", "system", "req/s", "× bare", "p50 ms", "p99 ms", "errors", "peak RSS MiB", "of it files MiB", "server cores", "load cores")
	row("---", "---", "---:", "---:", "---:", "---:", "---", "---:", "---:", "---:", "---:")
	for _, s := range rep.Summary {
		ratio := "1"
		if s.System == hashAloneSystem {
			ratio = "-"
		} else if s.System != "bare" {
			ratio = fmt.Sprintf("%.3f", s.RatioToBare)
		}
		row(s.Scenario, s.System, fmt.Sprintf("%.0f", s.RPS), ratio, fmt.Sprintf("%.2f", s.P50Ms), fmt.Sprintf("%.2f", s.P99Ms),
			formatErrors(s.Errors), fmt.Sprintf("%.0f", s.PeakRSSMiB), fmt.Sprintf("%.0f", s.FileRSSMiB), fmt.Sprintf("%.2f", s.ServerCores), fmt.Sprintf("%.2f", s.LoadCores))
	}
	tw.Flush()
	if rep.HashAloneRPS > 0 {
		fmt.Fprintf(w, "\nThe password hash alone: %.0f checks/s on %d CPUs.", rep.HashAloneRPS, rep.CPUs)
		for _, s := range rep.Summary {
			if s.Scenario == "login" && s.System != "bare" && s.System != hashAloneSystem {
				fmt.Fprintf(w, " login on %s: %.2f of it.", s.System, s.RPS/rep.HashAloneRPS)
			}
		}
		fmt.Fprintln(w)
	}
	for _, l := range rep.ServerLogs {
		if l.ErrorLines > 0 || l.Status5xx > 0 {
			fmt.Fprintf(w, "\n%s logged %d ERROR lines and %d requests with a 5xx status", l.Server, l.ErrorLines, l.Status5xx)
		}
	}
	fmt.Fprintln(w)
}

// writeJSON writes rep to path, creating its directory.
func writeJSON(path string, rep *report) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

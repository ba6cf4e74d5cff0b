package main

// The documentation's drift checks: the configuration reference against each command's flags,
// the systemd unit and the nginx example against serve's settings (and their own tools, when
// installed), and every relative link and anchor of README.md and docs/.

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
)

// repoRoot is where README.md and docs/ are, seen from this package's directory.
const repoRoot = "../.."

// documentedCommands are the commands with flags, as configuration.md names them in its
// "## `authapi <command>`" headings.
var documentedCommands = []string{
	"serve", "migrate", "createsuperuser", "keys list", "keys rotate", "keys encrypt", "keys reencrypt",
	"flushexpiredtokens", "import-django",
}

// cliFlag is one flag as "authapi <command> -h" describes it.
type cliFlag struct {
	name, kind, env, def string // kind is the flag package's type name ("" for a bool)
}

var (
	helpHeader  = regexp.MustCompile(`^  -(\S+)(?: (\S+))?$`)
	helpDefault = regexp.MustCompile(` \(default (.*)\)$`)
	helpEnv     = regexp.MustCompile(`\((AUTHAPI_[A-Z0-9_]+)\)$`)
)

// commandFlags runs "authapi <command> -h" and reads the flags it lists: what a user sees is
// what the reference must say.
func commandFlags(t *testing.T, command string) map[string]cliFlag {
	t.Helper()
	var stderr bytes.Buffer
	args := append(strings.Fields(command), "-h")
	if code := run(context.Background(), args, env{}.get, strings.NewReader(""), io.Discard, &stderr); code != 2 {
		t.Fatalf("authapi %s -h: exit %d, want 2 (usage)\n%s", command, code, stderr.String())
	}
	flags := map[string]cliFlag{}
	var cur *cliFlag
	var usage []string
	finish := func() {
		if cur == nil {
			return
		}
		text := strings.Join(usage, " ")
		if m := helpDefault.FindStringSubmatch(text); m != nil {
			cur.def = m[1]
			if u, err := strconv.Unquote(m[1]); err == nil {
				cur.def = u
			}
			text = strings.TrimSuffix(text, m[0])
		}
		if m := helpEnv.FindStringSubmatch(text); m != nil {
			cur.env = m[1]
		}
		flags[cur.name] = *cur
		cur, usage = nil, nil
	}
	for _, line := range strings.Split(stderr.String(), "\n") {
		if m := helpHeader.FindStringSubmatch(line); m != nil {
			finish()
			cur = &cliFlag{name: m[1], kind: m[2]}
			continue
		}
		if cur != nil && strings.HasPrefix(line, "    \t") {
			usage = append(usage, strings.TrimPrefix(line, "    \t"))
		}
	}
	finish()
	if len(flags) == 0 {
		t.Fatalf("authapi %s -h listed no flags:\n%s", command, stderr.String())
	}
	return flags
}

// docRow is one row of a command's table in configuration.md.
type docRow struct {
	flag, env, def string // def is the Default cell as written
	line           int
}

var (
	commandHeading = regexp.MustCompile("^## `authapi ([a-z -]+)`$")
	codeSpan       = regexp.MustCompile("`([^`]*)`")
)

// readConfigReference returns configuration.md's rows by command.
func readConfigReference(t *testing.T) map[string][]docRow {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]docRow{}
	command := ""
	for i, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "## ") {
			command = ""
			if m := commandHeading.FindStringSubmatch(line); m != nil {
				command = m[1]
				out[command] = out[command][:0:0]
			}
			continue
		}
		if command == "" || !strings.HasPrefix(line, "| ") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if c := strings.TrimSpace(cells[0]); c == "Flag" || strings.HasPrefix(c, "---") {
			continue
		}
		if len(cells) != 4 {
			t.Fatalf("configuration.md:%d: want a row of 4 cells (flag, variable, default, meaning), got %q", i+1, line)
		}
		first := func(cell string) string {
			if m := codeSpan.FindStringSubmatch(cell); m != nil {
				return m[1]
			}
			return ""
		}
		out[command] = append(out[command], docRow{
			flag: strings.TrimPrefix(first(cells[0]), "--"), env: first(cells[1]), def: strings.TrimSpace(cells[2]), line: i + 1,
		})
	}
	return out
}

// sameDefault tells whether a documented Default cell states the flag's default.
func sameDefault(f cliFlag, cell string) bool {
	doc := ""
	if m := codeSpan.FindStringSubmatch(cell); m != nil {
		doc = m[1]
	}
	switch f.kind {
	case "duration":
		parse := func(s string) (time.Duration, error) {
			if s == "" {
				return 0, nil
			}
			return time.ParseDuration(s)
		}
		a, errA := parse(f.def)
		b, errB := parse(doc)
		return errA == nil && errB == nil && a == b
	case "int", "uint":
		return cmpOr(f.def, "0") == cmpOr(doc, "0")
	case "":
		return cmpOr(f.def, "false") == cmpOr(doc, "false")
	}
	return f.def == doc
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// computedDefaults are flags whose default depends on the machine: the reference states the
// rule, and the test checks the rule.
var computedDefaults = map[string]struct{ rule, value string }{
	"max-concurrent-hashes": {"2 × GOMAXPROCS", strconv.Itoa(2 * runtime.GOMAXPROCS(0))},
}

var envLiteral = regexp.MustCompile(`"(AUTHAPI_[A-Z0-9_]+)"`)

// envOnlyVariables are the AUTHAPI_* names the commands' code spells out: the variables read
// without a flag (secrets, the bootstrap superuser) besides the flags' own.
func envOnlyVariables(t *testing.T) map[string]bool {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range envLiteral.FindAllStringSubmatch(string(data), -1) {
			names[m[1]] = true
		}
	}
	return names
}

// TestConfigurationReference fails when docs/configuration.md and the commands disagree: a
// flag or variable missing from the reference, one documented that the code lacks, or another
// default.
func TestConfigurationReference(t *testing.T) {
	doc := readConfigReference(t)
	literals := envOnlyVariables(t)
	documentedEnv := map[string]bool{}
	for _, command := range documentedCommands {
		rows, ok := doc[command]
		if !ok {
			t.Errorf("configuration.md has no section \"## `authapi %s`\"", command)
			continue
		}
		code := commandFlags(t, command)
		seen := map[string]bool{}
		for _, r := range rows {
			documentedEnv[r.env] = true
			if r.flag == "" {
				if !literals[r.env] {
					t.Errorf("configuration.md:%d: authapi %s: %s is documented, but no command reads it", r.line, command, r.env)
				}
				continue
			}
			f, ok := code[r.flag]
			if !ok {
				t.Errorf("configuration.md:%d: authapi %s has no flag --%s", r.line, command, r.flag)
				continue
			}
			if seen[r.flag] {
				t.Errorf("configuration.md:%d: authapi %s: --%s is documented twice", r.line, command, r.flag)
			}
			seen[r.flag] = true
			if r.env != f.env {
				t.Errorf("configuration.md:%d: authapi %s --%s: variable %q documented, the code reads %q", r.line, command, r.flag, r.env, f.env)
			}
			if c, ok := computedDefaults[r.flag]; ok {
				if !strings.Contains(r.def, c.rule) || f.def != c.value {
					t.Errorf("configuration.md:%d: authapi %s --%s: default %q documented, the code has %q (want the rule %q, %s here)", r.line, command, r.flag, r.def, f.def, c.rule, c.value)
				}
			} else if !sameDefault(f, r.def) {
				t.Errorf("configuration.md:%d: authapi %s --%s: default %q documented, the code has %q", r.line, command, r.flag, r.def, f.def)
			}
		}
		for name, f := range code {
			if !seen[name] {
				t.Errorf("configuration.md: authapi %s: flag --%s (%s) is not documented", command, name, f.env)
			}
		}
	}
	for name := range literals {
		if !documentedEnv[name] {
			t.Errorf("configuration.md: %s is read by a command but not documented", name)
		}
	}
}

// unit is a systemd unit file: section -> key -> values, in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = strings.Trim(line, "[]")
			if u[section] != nil {
				t.Fatalf("%s:%d: section [%s] twice", path, n, section)
			}
			u[section] = map[string][]string{}
		default:
			key, value, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, `\`) {
				t.Fatalf("%s:%d: want key=value inside a section, got %q", path, n, line)
			}
			key = strings.TrimSpace(key)
			u[section][key] = append(u[section][key], strings.TrimSpace(value))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// serveVariables are the variables serve reads: its flags' and those configuration.md documents
// for it without a flag (which TestConfigurationReference checks against the code).
func serveVariables(t *testing.T) (flags map[string]cliFlag, vars map[string]cliFlag) {
	t.Helper()
	flags = commandFlags(t, "serve")
	vars = map[string]cliFlag{}
	for _, f := range flags {
		if f.env != "" {
			vars[f.env] = f
		}
	}
	literals := envOnlyVariables(t)
	for _, r := range readConfigReference(t)["serve"] {
		if r.flag == "" && literals[r.env] {
			vars[r.env] = cliFlag{env: r.env}
		}
	}
	return flags, vars
}

const systemdUnit = "../../examples/systemd/authapi.service"

// TestSystemdUnit checks that the example unit runs "authapi serve" with settings serve has,
// and gives serve time to drain and finish before systemd kills it; and that systemd-analyze,
// when installed, finds nothing wrong with it.
func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t, systemdUnit)
	for _, s := range []string{"Unit", "Service", "Install"} {
		if u[s] == nil {
			t.Fatalf("%s: no [%s] section", systemdUnit, s)
		}
	}
	svc := u["Service"]
	flags, vars := serveVariables(t)
	argv := strings.Fields(strings.Join(svc["ExecStart"], " "))
	if len(svc["ExecStart"]) != 1 || len(argv) < 2 || !filepath.IsAbs(argv[0]) || filepath.Base(argv[0]) != "authapi" || argv[1] != "serve" {
		t.Fatalf("%s: ExecStart=%q, want one /absolute/path/authapi serve [flags]", systemdUnit, svc["ExecStart"])
	}
	for _, arg := range argv[2:] {
		name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if _, ok := flags[name]; !strings.HasPrefix(arg, "-") || !ok {
			t.Errorf("%s: ExecStart argument %q is not a flag of authapi serve", systemdUnit, arg)
		}
	}
	settings := map[string]string{}
	for _, e := range svc["Environment"] {
		for _, kv := range strings.Fields(e) {
			k, v, ok := strings.Cut(strings.Trim(kv, `"`), "=")
			if _, known := vars[k]; !ok || !known {
				t.Errorf("%s: Environment=%s: authapi serve reads no %s", systemdUnit, kv, k)
			}
			settings[k] = v
		}
	}
	// serve exits within the drain plus the shutdown timeout: systemd must wait longer.
	setting := func(env string) time.Duration {
		v := cmpOr(settings[env], vars[env].def)
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("%s: %s=%q: %v", systemdUnit, env, v, err)
		}
		return d
	}
	bound := setting("AUTHAPI_SHUTDOWN_DRAIN") + setting("AUTHAPI_SHUTDOWN_TIMEOUT")
	stop, err := time.ParseDuration(strings.Join(svc["TimeoutStopSec"], ""))
	if err != nil || stop <= bound {
		t.Errorf("%s: TimeoutStopSec=%q, want a duration longer than the drain plus the shutdown timeout (%v)", systemdUnit, svc["TimeoutStopSec"], bound)
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed: checked the unit's structure only")
		return
	}
	// systemd-analyze wants the program to exist: this test's binary stands in for authapi.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(systemdUnit)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "authapi.service")
	if err := os.WriteFile(tmp, bytes.ReplaceAll(data, []byte(argv[0]), []byte(self)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", tmp).CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("authapi.service")) {
		t.Errorf("systemd-analyze verify %s: %v\n%s", systemdUnit, err, out)
	}
}

const nginxExample = "../../examples/nginx/authapi.conf"

var nginxDirective = regexp.MustCompile(`(?m)^\s*([a-z_0-9]+)\s+([^;{]*?)\s*[;{]`)

// TestNginxExample checks that the example proxies to the address the systemd unit serves on,
// from an address the unit trusts, passing what authapi reads (the client's address, the
// request id); and that nginx, when installed, accepts it ("nginx -t").
func TestNginxExample(t *testing.T) {
	data, err := os.ReadFile(nginxExample)
	if err != nil {
		t.Fatal(err)
	}
	directives := map[string][]string{}
	for _, m := range nginxDirective.FindAllStringSubmatch(string(data), -1) {
		directives[m[1]] = append(directives[m[1]], m[2])
	}
	env := map[string]string{}
	for _, e := range parseUnit(t, systemdUnit)["Service"]["Environment"] {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	if want := "server " + env["AUTHAPI_ADDR"]; !slices.Contains(directives["server"], env["AUTHAPI_ADDR"]) {
		t.Errorf("%s: no upstream %q: the systemd unit serves on AUTHAPI_ADDR=%s", nginxExample, want, env["AUTHAPI_ADDR"])
	}
	if !slices.Contains(strings.Split(env["AUTHAPI_TRUSTED_PROXIES"], ","), "127.0.0.1") {
		t.Errorf("%s: AUTHAPI_TRUSTED_PROXIES=%q does not trust nginx on 127.0.0.1", systemdUnit, env["AUTHAPI_TRUSTED_PROXIES"])
	}
	for _, header := range []string{"X-Forwarded-For $proxy_add_x_forwarded_for", "X-Request-ID $request_id"} {
		if !slices.Contains(directives["proxy_set_header"], header) {
			t.Errorf("%s: want proxy_set_header %s", nginxExample, header)
		}
	}

	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Log("nginx is not installed: checked the example's directives only")
		return
	}
	// nginx -t reads the certificate files: a development certificate stands in for them.
	dir := t.TempDir()
	cert, key, err := ensureDevCertificate(filepath.Join(dir, "certs"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	conf := string(data)
	for _, d := range []struct{ name, file string }{{"ssl_certificate", cert}, {"ssl_certificate_key", key}} {
		re := regexp.MustCompile(`(?m)^(\s*` + d.name + `\s+)\S+;`)
		if !re.MatchString(conf) {
			t.Fatalf("%s: no %s", nginxExample, d.name)
		}
		conf = re.ReplaceAllString(conf, "${1}"+d.file+";")
	}
	if err := os.WriteFile(filepath.Join(dir, "authapi.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	main := fmt.Sprintf("pid %[1]s/nginx.pid;\nerror_log %[1]s/error.log;\nevents {}\nhttp { include %[1]s/authapi.conf; }\n", dir)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(main), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(nginx, "-t", "-p", dir+"/", "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log")).CombinedOutput()
	if err != nil || bytes.Contains(out, []byte("[warn]")) || bytes.Contains(out, []byte("[emerg]")) {
		t.Errorf("nginx -t on %s: %v\n%s", nginxExample, err, out)
	}
}

// docFiles are the documents whose links must resolve.
func docFiles(t *testing.T) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
	if err != nil || len(docs) == 0 {
		t.Fatalf("no docs/*.md: %v", err)
	}
	return append([]string{filepath.Join(repoRoot, "README.md")}, docs...)
}

var (
	fence        = regexp.MustCompile("(?ms)^```.*?^```")
	inlineCode   = regexp.MustCompile("`[^`\n]*`")
	markdownLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading      = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t]*$`)
)

// prose is a Markdown text without its code blocks, where a heading or a link is only text.
func prose(md string) string {
	return fence.ReplaceAllString(md, "")
}

// anchors are the ids GitHub gives a document's headings: lowercase, spaces to hyphens,
// punctuation other than - and _ dropped, and -1, -2... on repeats.
func anchors(md string) map[string]bool {
	out := map[string]bool{}
	count := map[string]int{}
	for _, m := range heading.FindAllStringSubmatch(prose(md), -1) {
		var b strings.Builder
		for _, r := range strings.ToLower(m[1]) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteByte('-')
			}
		}
		id := b.String()
		if n := count[id]; n > 0 {
			id = fmt.Sprintf("%s-%d", id, n)
		}
		count[b.String()]++
		out[id] = true
	}
	return out
}

// TestDocsLinks fails on a relative link of README.md or docs/*.md whose file, or whose
// #anchor in a Markdown file, does not exist.
func TestDocsLinks(t *testing.T) {
	files := docFiles(t)
	links := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range markdownLink.FindAllStringSubmatch(inlineCode.ReplaceAllString(prose(string(data)), "``"), -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			links++
			path, anchor, _ := strings.Cut(target, "#")
			dest := file
			if path != "" {
				dest = filepath.Join(filepath.Dir(file), path)
				if _, err := os.Stat(dest); err != nil {
					t.Errorf("%s: link %q: %v", file, target, err)
					continue
				}
			}
			if anchor == "" {
				continue
			}
			if filepath.Ext(dest) != ".md" {
				t.Errorf("%s: link %q: an anchor into a file that is not Markdown", file, target)
				continue
			}
			md, err := os.ReadFile(dest)
			if err != nil {
				t.Errorf("%s: link %q: %v", file, target, err)
				continue
			}
			if !anchors(string(md))[anchor] {
				t.Errorf("%s: link %q: %s has no heading with the anchor #%s", file, target, dest, anchor)
			}
		}
	}
	if links == 0 {
		t.Fatal("found no relative links: the link parser is broken")
	}
}

// TestDocsVariables fails when the documents name an AUTHAPI_* variable that nothing in the
// repository reads any more.
func TestDocsVariables(t *testing.T) {
	read := map[string]bool{}
	err := filepath.WalkDir(repoRoot, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != repoRoot && (strings.HasPrefix(name, ".") && name != ".ci" || name == "node_modules" || name == "docs" || name == "bin" || name == "dist") {
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(name) {
		case ".go", ".ts", ".sh", ".yaml", ".service", ".conf", "":
		default:
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, v := range regexp.MustCompile(`AUTHAPI_[A-Z0-9_]+`).FindAllString(string(data), -1) {
			read[v] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range docFiles(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range regexp.MustCompile(`AUTHAPI_[A-Z0-9_]+`).FindAllString(string(data), -1) {
			if !read[v] && v != "AUTHAPI_BOOTSTRAP_" {
				t.Errorf("%s names %s, which nothing in the repository reads", file, v)
			}
		}
	}
}

// TestReadmeIsShort keeps README.md an entrance: what authapi is, the quick start, a taste and
// links. Everything else belongs in docs/.
func TestReadmeIsShort(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte("\n")); n > 100 {
		t.Errorf("README.md has %d lines, want at most 100: move the details into docs/ and link to them", n)
	}
}

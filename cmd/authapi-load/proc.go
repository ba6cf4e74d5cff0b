package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is a server under test: a child process listening on a loopback port, its output
// in a log file.
type process struct {
	name    string
	base    string // http://127.0.0.1:port
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startProcess runs argv with exactly env (nothing inherited, so a developer's AUTHAPI_*
// settings never leak into a measurement), its stdout and stderr in logPath, and waits until
// GET base+readyPath answers 200.
func startProcess(ctx context.Context, name, addr, logPath, readyPath string, env []string, argv ...string) (*process, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child holds its own descriptor
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the benchmark
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, base: "http://" + addr, logPath: logPath, cmd: cmd, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(p.exited)
	}()
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := client.Get(p.base + readyPath)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p, nil
			}
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("%s exited before it was ready (%s); its log, %s:\n%s", name, cmd.ProcessState, logPath, tail(logPath, 2000))
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s not ready after 30s; its log, %s:\n%s", name, logPath, tail(logPath, 2000))
		}
	}
}

// exitError is nil while the process runs, and after it exited says how, with the end of its log.
func (p *process) exitError() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited during the benchmark (%s); the end of its log, %s:\n%s", p.name, p.cmd.ProcessState, p.logPath, tail(p.logPath, 2000))
	default:
		return nil
	}
}

// stop asks the process to shut down and kills it if it has not within 10s.
func (p *process) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
}

func tail(path string, n int) string {
	b, _ := os.ReadFile(path)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// usage is what a process has used so far: CPU time, and the peak resident set since the
// last resetPeakRSS.
type usage struct {
	cpu     time.Duration // user + system
	peakRSS int64         // bytes (VmHWM)
	fileRSS int64         // bytes now resident of mapped files, mostly the binary's own code (RssFile)
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat: 100 on every Linux
// architecture Go supports.
const clockTick = 10 * time.Millisecond

// readUsage reads /proc/<pid>/stat and /proc/<pid>/status; pid "self" is the benchmark.
func readUsage(pid string) (usage, error) {
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return usage{}, err
	}
	cpu, err := parseStatCPU(stat)
	if err != nil {
		return usage{}, err
	}
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return usage{}, err
	}
	rss, err := parseStatusKiB(status, "VmHWM")
	if err != nil {
		return usage{}, err
	}
	fileRSS, err := parseStatusKiB(status, "RssFile")
	if err != nil {
		return usage{}, err
	}
	return usage{cpu: cpu, peakRSS: rss * 1024, fileRSS: fileRSS * 1024}, nil
}

// parseStatCPU returns utime + stime from the contents of /proc/<pid>/stat. The command name
// (field 2) is in parentheses and may hold spaces, so fields are counted after the last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc stat %.40q: no command name", stat)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc stat %.40q: %d fields after the name, want at least 13", stat, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// parseStatusKiB returns the "kB" value of field in the contents of /proc/<pid>/status.
func parseStatusKiB(status []byte, field string) (int64, error) {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(field) + `:\s+(\d+) kB$`).FindSubmatch(status)
	if m == nil {
		return 0, fmt.Errorf("/proc status: no %s", field)
	}
	return strconv.ParseInt(string(m[1]), 10, 64)
}

// resetPeakRSS sets the process's VmHWM back to its current RSS (proc(5), clear_refs "5"),
// so that the next readUsage reports the peak of one run.
func resetPeakRSS(pid string) error {
	return os.WriteFile("/proc/"+pid+"/clear_refs", []byte("5"), 0)
}

func (p *process) pid() string { return strconv.Itoa(p.cmd.Process.Pid) }

// logProblems counts the lines of the process's log at level ERROR and the requests it
// logged with a 5xx status, except the readiness probes the benchmark sent while the server
// was starting: /readyz answers 503 until it is ready, by design.
func (p *process) logProblems() (errorLines, status5xx int) {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return 0, 0
	}
	for line := range bytes.Lines(b) {
		if bytes.Contains(line, []byte(`"level":"ERROR"`)) {
			errorLines++
		}
		if status5xxRE.Match(line) && !bytes.Contains(line, []byte(`"path":"/readyz"`)) {
			status5xx++
		}
	}
	return errorLines, status5xx
}

var status5xxRE = regexp.MustCompile(`"status":5\d\d\b`)

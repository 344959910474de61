package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/testkit"
	"github.com/meteorpush/meteor/internal/version"
)

const wait = 10 * time.Second

// binary is meteord built once for the process tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "meteord-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "meteord")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestHelpAndVersion(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"-help"}, []string{"SubscriberPort", "MaxMessagesPerChannel", "PingInterval"}},
		{[]string{"-version"}, []string{"meteord " + version.Get().String() + "\n"}},
		{[]string{"-v"}, []string{"meteord " + version.Get().String() + "\n"}},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tt.args, &stdout, &stderr); code != 0 || stderr.Len() != 0 {
			t.Errorf("run(%q) = %d, stderr %q", tt.args, code, stderr.String())
		}
		for _, w := range tt.want {
			if !strings.Contains(stdout.String(), w) {
				t.Errorf("run(%q) printed %.200q, want it to contain %q", tt.args, stdout.String(), w)
			}
		}
	}
	// The binary too: -version on stdout, exit status 0.
	out, err := exec.Command(binary, "-version").Output()
	if err != nil || !strings.HasPrefix(string(out), "meteord "+config.Version+" (commit ") {
		t.Errorf("meteord -version: %q, %v", out, err)
	}
}

func TestUnknownSetting(t *testing.T) {
	file := filepath.Join(t.TempDir(), "meteord.conf")
	os.WriteFile(file, []byte("MaxMessageAge 10\nFrobnicate 3\n"), 0o644)
	for _, tt := range []struct {
		args []string
		name string
	}{
		{[]string{"-Bogus", "1", "-ConfigFileLocation", ""}, "Bogus"},
		{[]string{"-ConfigFileLocation", file}, "Frobnicate"},
		{[]string{"-ConfigFileLocation", filepath.Join(t.TempDir(), "missing.conf")}, "missing.conf"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tt.args, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), tt.name) {
			t.Errorf("run(%q) = %d, stderr %q; want a failure naming %s", tt.args, code, stderr.String(), tt.name)
		}
	}
	cmd := exec.Command(binary, "-Bogus", "1", "-ConfigFileLocation", "")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() == 0 || !strings.Contains(stderr.String(), "Bogus") {
		t.Errorf("meteord -Bogus 1: %v, stderr %q", err, stderr.String())
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// proc is a running meteord.
type proc struct {
	t       *testing.T
	cmd     *exec.Cmd
	sub     string
	ctl     string
	api     string
	mu      sync.Mutex
	stderr  bytes.Buffer
	exited  chan struct{}
	waitErr error
}

func startProc(t *testing.T, conf string, extra ...string) *proc {
	t.Helper()
	return startProcEnv(t, nil, conf, extra...)
}

// startProcEnv is startProc with env added to meteord's environment.
func startProcEnv(t *testing.T, env []string, conf string, extra ...string) *proc {
	t.Helper()
	return startProcPorts(t, env, conf, freePort(t), freePort(t), freePort(t), extra...)
}

// startProcPorts is startProcEnv on the given ports (shared between
// processes with ReusePort).
func startProcPorts(t *testing.T, env []string, conf string, subPort, ctlPort, apiPort int, extra ...string) *proc {
	t.Helper()
	p := &proc{t: t, exited: make(chan struct{})}
	p.sub = net.JoinHostPort("127.0.0.1", strconv.Itoa(subPort))
	p.ctl = net.JoinHostPort("127.0.0.1", strconv.Itoa(ctlPort))
	p.api = net.JoinHostPort("127.0.0.1", strconv.Itoa(apiPort))
	args := append([]string{
		"-ConfigFileLocation", conf,
		"-SubscriberIP", "127.0.0.1", "-SubscriberPort", strconv.Itoa(subPort),
		"-ControllerIP", "127.0.0.1", "-ControllerPort", strconv.Itoa(ctlPort),
		"-AdminPort", strconv.Itoa(apiPort),
		"-SubscriberDocumentRoot", "",
	}, extra...)
	p.cmd = exec.Command(binary, args...)
	if env != nil {
		p.cmd.Env = append(os.Environ(), env...)
	}
	errPipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(errPipe)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("meteord stderr:\n%s", p.log())
		}
	})
	p.waitLog("listening")
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// waitLog waits until stderr has a line containing s, counted from the
// n-th occurrence (n = how many there must be).
func (p *proc) waitLogN(s string, n int) {
	p.t.Helper()
	deadline := time.Now().Add(wait)
	for strings.Count(p.log(), s) < n {
		select {
		case <-p.exited:
			p.t.Fatalf("meteord exited (%v) before logging %q", p.waitErr, s)
		default:
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("meteord did not log %q", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) waitLog(s string) { p.t.Helper(); p.waitLogN(s, 1) }

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatal(err)
	}
}

// ctlCmd runs one controller command on a fresh connection and returns the
// reply up to its end.
func (p *proc) ctlCmd(line string) string {
	p.t.Helper()
	nc, err := net.Dial("tcp", p.ctl)
	if err != nil {
		p.t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(wait))
	io.WriteString(nc, line+"\nQUIT\n")
	b, err := io.ReadAll(nc)
	if err != nil {
		p.t.Fatalf("%s: %v", line, err)
	}
	return strings.TrimSuffix(string(b), "OK\r\n")
}

type sub struct {
	t  *testing.T
	nc net.Conn
}

func (p *proc) subscribe(path string) *sub {
	p.t.Helper()
	nc, err := net.Dial("tcp", p.sub)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { nc.Close() })
	io.WriteString(nc, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
	return &sub{p.t, nc}
}

func (s *sub) expect(want string) {
	s.t.Helper()
	s.nc.SetReadDeadline(time.Now().Add(wait))
	b := make([]byte, len(want))
	n, err := io.ReadFull(s.nc, b)
	if err != nil || string(b) != want {
		s.t.Fatalf("got %q (%v), want %q", b[:n], err, want)
	}
}

func (s *sub) expectEOF() {
	s.t.Helper()
	s.nc.SetReadDeadline(time.Now().Add(wait))
	b, err := io.ReadAll(s.nc)
	if err != nil || len(b) != 0 {
		s.t.Fatalf("want EOF, got %q, %v", b, err)
	}
}

// TestSignals runs meteord and sends it HUP, USR1 and TERM.
func TestSignals(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "meteord.conf")
	writeConf := func(tag string) {
		t.Helper()
		body := "# test configuration\nShutdownTimeout 3\nPingInterval 0\n\n[mine]\nPersist 1\nHeaderTemplate H\\n~channelinfo~\n" +
			"ChannelInfoTemplate ~name~=~lastMsgID~\\n\nMessageTemplate " + tag + ":~id~:~text~\\n\nSubscriberShutdownMsg bye\\n\n"
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("A")
	p := startProc(t, conf)

	s1 := p.subscribe("/push/one/mine/c")
	s1.expect("H\nc=0\n")
	testkit.EventuallyWithin(t, wait, "the first subscriber", func() bool { return p.ctlCmd("COUNTSUBSCRIBERS c") == "OK 1\r\n" })

	// HUP: new connections get the new templates; s1 keeps its own.
	writeConf("B")
	p.signal(syscall.SIGHUP)
	p.waitLog("configuration reloaded")
	s2 := p.subscribe("/push/two/mine/c")
	s2.expect("H\nc=0\n")
	testkit.EventuallyWithin(t, wait, "two subscribers", func() bool { return p.ctlCmd("COUNTSUBSCRIBERS c") == "OK 2\r\n" })
	got := p.ctlCmd("ADDMESSAGE c hello")
	id, ok := strings.CutSuffix(strings.TrimPrefix(got, "OK\t"), "\r\n")
	if n, err := strconv.ParseUint(id, 10, 64); !ok || err != nil || n < uint64(time.Now().Add(-time.Hour).UnixMicro()) {
		// Ids come from the clock (microseconds), so that they keep
		// growing across a restart.
		t.Fatalf("ADDMESSAGE: %q, want OK and an id of the clock's microseconds", got)
	}
	s1.expect("A:" + id + ":hello\n")
	s2.expect("B:" + id + ":hello\n")

	// A reload that fails keeps the running configuration.
	os.WriteFile(conf, []byte("NoSuchSetting 1\n"), 0o644)
	p.signal(syscall.SIGHUP)
	p.waitLog("reload refused")
	s3 := p.subscribe("/push/three/mine/c.h")
	s3.expect("H\nc=" + id + "\nB:" + id + ":hello\n")
	writeConf("B")

	// USR1: histories cleared, subscribers stay.
	if got := p.ctlCmd("LISTCHANNELS"); got != "OK\r\nc(1/3)\r\n--EOT--\r\n" {
		t.Fatalf("LISTCHANNELS: %q", got)
	}
	p.signal(syscall.SIGUSR1)
	testkit.EventuallyWithin(t, wait, "histories to clear", func() bool { return p.ctlCmd("LISTCHANNELS") == "OK\r\nc(0/3)\r\n--EOT--\r\n" })

	// TERM: shutdown messages, EOF, exit status 0 within ShutdownTimeout.
	t0 := time.Now()
	p.signal(syscall.SIGTERM)
	for _, s := range []*sub{s1, s2, s3} {
		s.expect("bye\n")
		s.expectEOF()
	}
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		t.Fatalf("meteord still running %v after TERM", time.Since(t0))
	}
	if p.waitErr != nil {
		t.Errorf("meteord exited with %v after TERM, want status 0", p.waitErr)
	}
	if !strings.Contains(p.log(), "stopped") {
		t.Errorf("no 'stopped' log line")
	}
}

// TestTermWithStuckSubscriber: TERM gives up on a subscriber that never
// reads after ShutdownTimeout, and exits.
func TestTermWithStuckSubscriber(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "meteord.conf")
	os.WriteFile(conf, []byte("ShutdownTimeout 1\nPingInterval 0\nMaxPendingBytes 67108864\n"), 0o644)
	p := startProc(t, conf)
	s := p.subscribe("/push/stuck/iframe/c")
	if tc, ok := s.nc.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	testkit.EventuallyWithin(t, wait, "the subscriber", func() bool { return p.ctlCmd("COUNTSUBSCRIBERS c") == "OK 1\r\n" })
	nc, err := net.Dial("tcp", p.ctl)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	text := strings.Repeat("z", 60000)
	var cmds bytes.Buffer
	for range 200 {
		cmds.WriteString("ADDMESSAGE c " + text + "\n")
	}
	cmds.WriteString("QUIT\n")
	nc.SetDeadline(time.Now().Add(wait))
	go nc.Write(cmds.Bytes())
	if _, err := io.Copy(io.Discard, nc); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	p.signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		t.Fatalf("meteord still running %v after TERM", time.Since(t0))
	}
	if d := time.Since(t0); d > 3*time.Second || d < 900*time.Millisecond {
		t.Errorf("exit took %v with ShutdownTimeout 1 and a subscriber that never reads", d)
	}
	var ee *exec.ExitError
	if !errors.As(p.waitErr, &ee) || ee.ExitCode() != 1 || !strings.Contains(p.log(), "shutdown incomplete") {
		t.Errorf("exit %v, want status 1 and a warning that shutdown was incomplete", p.waitErr)
	}
}

// TestApplyGCPercent: GCPercent sets the collector's target; 0 gives back
// the one the process started with (GOGC, else 100).
func TestApplyGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	for _, tt := range []struct{ set, want int }{{37, 37}, {0, startGCPercent}, {250, 250}} {
		if got := applyGCPercent(&config.Config{GCPercent: tt.set}); got != tt.want {
			t.Errorf("applyGCPercent(%d) = %d, want %d", tt.set, got, tt.want)
		}
		if got := debug.SetGCPercent(100); got != tt.want {
			t.Errorf("after applyGCPercent(%d) the runtime's target is %d, want %d", tt.set, got, tt.want)
		}
	}
}

// gogc returns the collector's target that meteord reports in /metrics.
func (p *proc) gogc() string {
	p.t.Helper()
	resp, err := http.Get("http://" + p.api + "/metrics")
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "go_gc_gogc_percent "); ok {
			return v
		}
	}
	p.t.Fatalf("no go_gc_gogc_percent in /metrics")
	return ""
}

// TestGCPercent: the running server's collector target follows GCPercent
// at start and on HUP, and 0 leaves it to GOGC in the environment.
func TestGCPercent(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "meteord.conf")
	os.WriteFile(conf, []byte("GCPercent 37\n"), 0o644)
	p := startProcEnv(t, []string{"GOGC=80"}, conf)
	p.waitLog("GCPercent=37")
	if got := p.gogc(); got != "37" {
		t.Errorf("target %s at start with GCPercent 37, want 37", got)
	}
	os.WriteFile(conf, []byte("GCPercent 0\n"), 0o644)
	p.signal(syscall.SIGHUP)
	p.waitLog("GCPercent=80")
	if got := p.gogc(); got != "80" {
		t.Errorf("target %s after a reload to GCPercent 0 with GOGC=80, want 80", got)
	}
	os.WriteFile(conf, []byte("\n"), 0o644)
	p.signal(syscall.SIGHUP)
	p.waitLogN("configuration reloaded", 2)
	testkit.EventuallyWithin(t, wait, "the default target", func() bool { return p.gogc() == "50" })
}

// TestReusePortRefusedWithMemory: the real binary refuses ReusePort 1 with
// the default Engine memory at start-up, with exit status 2 and a message
// that names both settings.
func TestReusePortRefusedWithMemory(t *testing.T) {
	cmd := exec.Command(binary, "-ConfigFileLocation", "", "-ReusePort", "1",
		"-SubscriberPort", "0", "-ControllerPort", "0", "-AdminPort", "0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	msg := stderr.String()
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(msg, "ReusePort") || !strings.Contains(msg, "Engine redis") {
		t.Errorf("meteord -ReusePort 1: %v, stderr %q; want exit status 2 naming ReusePort and Engine redis", err, msg)
	}
}

// TestShutdownBound: TERM gives ShutdownTimeout, and DrainTime before it
// when ReusePort drains for a restart.
func TestShutdownBound(t *testing.T) {
	cfg := config.Defaults()
	if got := shutdownBound(cfg); got != 10*time.Second {
		t.Errorf("without ReusePort: %v, want ShutdownTimeout 10 s", got)
	}
	cfg.ReusePort, cfg.DrainTime = true, 20
	if got := shutdownBound(cfg); got != 30*time.Second {
		t.Errorf("with ReusePort: %v, want DrainTime 20 s + ShutdownTimeout 10 s", got)
	}
}

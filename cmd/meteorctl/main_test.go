package main

// The tests build meteorctl and meteord once, start real meteord
// processes on loopback ports below the ephemeral range (a restarted
// server comes back on the same ports), and run the meteorctl binary as a
// user would: its arguments, environment, standard input, output and exit
// code.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/testkit"
)

// Binaries built once by TestMain.
var ctlBin, meteordBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "meteorctl-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ctlBin = filepath.Join(dir, "meteorctl")
	meteordBin = filepath.Join(dir, "meteord")
	ctlArgs := []string{"build", "-o", ctlBin}
	if raceEnabled {
		ctlArgs = append(ctlArgs, "-race")
	}
	for _, args := range [][]string{append(ctlArgs, "."), {"build", "-o", meteordBin, "../meteord"}} {
		if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "go %s: %v\n%s", strings.Join(args, " "), err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is a running meteord of a test.
type server struct {
	t                *testing.T
	extra            []string
	subPort, apiPort int
	ctlPort          int
	mu               sync.Mutex
	log              bytes.Buffer // guarded by mu
	cmd              *exec.Cmd
	exited           chan struct{}
}

// startServer starts meteord on free loopback ports below 32768, with
// extra settings, and waits until it listens. It is killed when the test
// ends.
func startServer(t *testing.T, extra ...string) *server {
	t.Helper()
	s := &server{t: t, extra: extra}
	for range 10 {
		s.subPort, s.ctlPort, s.apiPort = testkit.FreeLowPort(t), testkit.FreeLowPort(t), testkit.FreeLowPort(t)
		if s.start() {
			t.Cleanup(s.kill)
			return s
		}
	}
	t.Fatalf("meteord did not start:\n%s", s.logText())
	return nil
}

// start starts the process on s's ports and reports whether it listens.
func (s *server) start() bool {
	s.t.Helper()
	s.mu.Lock()
	s.log.Reset()
	s.mu.Unlock()
	args := append([]string{
		"-ConfigFileLocation", "",
		"-SubscriberIP", "127.0.0.1", "-SubscriberPort", strconv.Itoa(s.subPort),
		"-ControllerIP", "127.0.0.1", "-ControllerPort", strconv.Itoa(s.ctlPort),
		"-AdminIP", "127.0.0.1", "-AdminPort", strconv.Itoa(s.apiPort),
		"-SubscriberDocumentRoot", "", "-ShutdownTimeout", "1",
	}, s.extra...)
	cmd := exec.Command(meteordBin, args...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			s.mu.Lock()
			s.log.WriteString(sc.Text() + "\n")
			s.mu.Unlock()
		}
		cmd.Wait()
		close(exited)
	}()
	deadline := time.Now().Add(testkit.Wait)
	for !strings.Contains(s.logText(), "msg=listening") {
		select {
		case <-exited:
			return false // a port was taken meanwhile
		default:
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			s.t.Fatalf("meteord did not listen within %v:\n%s", testkit.Wait, s.logText())
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.cmd, s.exited = cmd, exited
	return true
}

// kill stops the process with SIGKILL and waits for it.
func (s *server) kill() {
	if s.cmd != nil {
		s.cmd.Process.Kill()
		<-s.exited
		s.cmd = nil
	}
}

// restart kills the server and starts another on the same ports; with the
// memory engine it comes back empty.
func (s *server) restart() {
	s.t.Helper()
	s.kill()
	if !s.start() {
		s.t.Fatalf("meteord did not start again on its ports:\n%s", s.logText())
	}
}

func (s *server) logText() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// API and URL are the server's bases for -api and -url.
func (s *server) API() string { return "http://127.0.0.1:" + strconv.Itoa(s.apiPort) }
func (s *server) URL() string { return "http://127.0.0.1:" + strconv.Itoa(s.subPort) }

// env returns the environment of meteorctl for s: METEOR_API and
// METEOR_URL, then more.
func (s *server) env(more ...string) []string {
	return append([]string{"METEOR_API=" + s.API(), "METEOR_URL=" + s.URL()}, more...)
}

// result is what one run of meteorctl did.
type result struct {
	code           int
	stdout, stderr string
}

// ctl runs meteorctl with env (the METEOR_ variables of the test's
// environment left out), stdin and args, and returns what it did.
func ctl(t *testing.T, env []string, stdin io.Reader, args ...string) result {
	t.Helper()
	cmd := exec.Command(ctlBin, args...)
	cmd.Env = append(baseEnv(), env...)
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(testkit.Wait):
		cmd.Process.Kill()
		<-done
		t.Fatalf("meteorctl %q did not end within %v; stdout %q, stderr %q", args, testkit.Wait, stdout.String(), stderr.String())
	}
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("meteorctl %q: %v", args, err)
	}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic") || strings.Contains(r.stderr, "DATA RACE") {
		t.Errorf("meteorctl %q printed a Go stack, a panic or a race:\n%s", args, r.stderr)
	}
	return r
}

// baseEnv is the test's environment without METEOR_ variables, and
// without the second the race detector waits at a successful exit.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "METEOR_") && !strings.HasPrefix(kv, "GORACE=") {
			env = append(env, kv)
		}
	}
	return append(env, "GORACE=atexit_sleep_ms=0")
}

// want fails t unless r exited with code and its stderr holds every
// string of inStderr.
func (r result) want(t *testing.T, what string, code int, inStderr ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("%s: exit code %d, want %d; stdout %q, stderr %q", what, r.code, code, r.stdout, r.stderr)
		return
	}
	for _, s := range inStderr {
		if !strings.Contains(r.stderr, s) {
			t.Errorf("%s: stderr %q, want it to contain %q", what, r.stderr, s)
		}
	}
}

// lines are the non-empty lines of s.
func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// decode decodes each line of s as JSON into a new T.
func decode[T any](t *testing.T, s string) []T {
	t.Helper()
	var out []T
	for _, l := range lines(s) {
		var v T
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %q is not the JSON expected: %v", l, err)
		}
		out = append(out, v)
	}
	return out
}

// freeClosedPort is a loopback port where nothing listens.
func freeClosedPort(t *testing.T) int {
	t.Helper()
	return testkit.FreeLowPort(t)
}

// tail is a meteorctl tail running in the background.
type tail struct {
	t      *testing.T
	cmd    *exec.Cmd
	mu     sync.Mutex
	stdout bytes.Buffer // guarded by mu
	stderr bytes.Buffer // guarded by mu
	done   chan error
}

// lockedWriter appends to a buffer under a mutex.
type lockedWriter struct {
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// startTail runs meteorctl with env and args in the background; it is
// killed when the test ends if it still runs.
func startTail(t *testing.T, env []string, args ...string) *tail {
	t.Helper()
	return startCtl(t, env, nil, args...)
}

// startCtl is startTail with stdin: nil for none, an *os.File to pass
// its descriptor itself.
func startCtl(t *testing.T, env []string, stdin *os.File, args ...string) *tail {
	t.Helper()
	tl := &tail{t: t, done: make(chan error, 1)}
	tl.cmd = exec.Command(ctlBin, args...)
	if stdin != nil {
		tl.cmd.Stdin = stdin
	}
	tl.cmd.Env = append(baseEnv(), env...)
	tl.cmd.Stdout = lockedWriter{&tl.mu, &tl.stdout}
	tl.cmd.Stderr = lockedWriter{&tl.mu, &tl.stderr}
	if err := tl.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { tl.done <- tl.cmd.Wait() }()
	t.Cleanup(func() {
		tl.cmd.Process.Kill()
		<-tl.done
		tl.done <- nil
		if strings.Contains(tl.errText(), "DATA RACE") {
			t.Errorf("tail reported a race:\n%s", tl.errText())
		}
		if t.Failed() {
			t.Logf("tail stdout:\n%s\ntail stderr:\n%s", tl.out(), tl.errText())
		}
	})
	return tl
}

func (tl *tail) out() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.stdout.String()
}

func (tl *tail) errText() string {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	return tl.stderr.String()
}

// waitOut waits until stdout holds n lines and returns them.
func (tl *tail) waitOut(what string, n int) []string {
	tl.t.Helper()
	testkit.Eventually(tl.t, what, func() bool { return len(lines(tl.out())) >= n })
	return lines(tl.out())
}

// waitErr waits until stderr holds s n times.
func (tl *tail) waitErr(s string, n int) {
	tl.t.Helper()
	testkit.Eventually(tl.t, fmt.Sprintf("%q %d times on tail's stderr", s, n), func() bool {
		return strings.Count(tl.errText(), s) >= n
	})
}

// stop sends sig and returns the exit code.
func (tl *tail) stop(sig syscall.Signal) int {
	tl.t.Helper()
	tl.cmd.Process.Signal(sig)
	select {
	case err := <-tl.done:
		tl.done <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			tl.t.Fatal(err)
		}
		return 0
	case <-time.After(testkit.Wait):
		tl.t.Fatalf("meteorctl %q did not end within %v of %v", tl.cmd.Args[1:], testkit.Wait, sig)
		return -1
	}
}

// subscribers returns the channel's subscriber count through the API.
func (s *server) subscribers(t *testing.T, channel string) int {
	t.Helper()
	r := ctl(t, s.env(), nil, "-json", "presence", channel)
	if r.code != 0 {
		t.Fatalf("presence %s: %+v", channel, r)
	}
	return len(lines(r.stdout))
}

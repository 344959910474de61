package web_test

// A real meteord process for the tests that restart it by a signal.

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/testkit"
)

var meteordBinary struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// buildMeteord builds cmd/meteord once for the package's tests.
func buildMeteord(t *testing.T) string {
	t.Helper()
	meteordBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "meteord-web-")
		if err != nil {
			meteordBinary.err = err
			return
		}
		meteordBinary.path = filepath.Join(dir, "meteord")
		meteordBinary.out, meteordBinary.err = exec.Command("go", "build", "-o", meteordBinary.path, "../cmd/meteord").CombinedOutput()
	})
	if meteordBinary.err != nil {
		t.Fatalf("go build ../cmd/meteord: %v\n%s", meteordBinary.err, meteordBinary.out)
	}
	return meteordBinary.path
}

// freePorts returns n loopback ports below the ephemeral range that were
// free a moment ago: a restarted meteord binds them again, so an outgoing
// connection must not take one meanwhile.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for len(ports) < n {
		p := testkit.FreeLowPort(t)
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	return ports
}

// process is a meteord process on fixed ports.
type process struct {
	*meteord
	cmd  *exec.Cmd
	done chan struct{}
}

// startProcess runs meteord on the subscriber, controller and API ports
// given, with heartbeats every second, and waits until it listens. It is
// killed when the test ends.
func startProcess(t *testing.T, ports []int) *process {
	t.Helper()
	cmd := exec.Command(buildMeteord(t),
		"-ConfigFileLocation", "",
		"-SubscriberIP", "127.0.0.1", "-SubscriberPort", strconv.Itoa(ports[0]),
		"-ControllerIP", "127.0.0.1", "-ControllerPort", strconv.Itoa(ports[1]),
		"-AdminIP", "127.0.0.1", "-AdminPort", strconv.Itoa(ports[2]),
		"-SubscriberDocumentRoot", "", "-HeartbeatInterval", "1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	listening := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			if strings.Contains(sc.Text(), "listening") {
				once.Do(func() { close(listening) })
			}
		}
		cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-p.done
	})
	select {
	case <-listening:
	case <-p.done:
		t.Fatal("meteord exited before it listened")
	case <-time.After(waitTimeout):
		t.Fatal("meteord did not listen in time")
	}
	p.meteord = &meteord{
		base: "http://127.0.0.1:" + strconv.Itoa(ports[0]),
		ctl:  "127.0.0.1:" + strconv.Itoa(ports[1]),
	}
	return p
}

// kill ends the process with sig and waits for it.
func (p *process) kill(t *testing.T, sig syscall.Signal) {
	t.Helper()
	p.mu.Lock()
	if p.conn != nil {
		p.conn.Close()
		p.conn = nil
	}
	p.mu.Unlock()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(waitTimeout):
		t.Fatal("meteord still running after the signal")
	}
}

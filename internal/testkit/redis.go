package testkit

import (
	"bufio"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Redis is a redis-server of a test's own, on a loopback port below the
// ephemeral range, without persistence, with the DEBUG command enabled
// (for DEBUG SLEEP). It stops with the test.
type Redis struct {
	t    testing.TB
	Port int
	dir  string

	mu  sync.Mutex
	cmd *exec.Cmd // guarded by mu; nil while stopped
}

// StartRedis starts a redis-server for t, or fails t when there is none
// (scripts/test installs it).
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is not installed (scripts/test installs it): %v", err)
	}
	r := &Redis{t: t, dir: t.TempDir()}
	var err error
	for range 20 {
		r.Port = FreeLowPort(t)
		if err = r.start(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("redis-server: %v", err)
	}
	t.Cleanup(r.Stop)
	return r
}

// Addr is the server's host:port.
func (r *Redis) Addr() string { return "127.0.0.1:" + strconv.Itoa(r.Port) }

// URL is the server's redis:// URL.
func (r *Redis) URL() string { return "redis://" + r.Addr() + "/0" }

func (r *Redis) start() error {
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--enable-debug-command", "yes",
		"--dir", r.dir, "--logfile", filepath.Join(r.dir, "redis.log"))
	if err := cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := r.do("PING"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			return fmt.Errorf("redis-server on port %d did not answer: %s", r.Port, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.mu.Lock()
	r.cmd = cmd
	r.mu.Unlock()
	return nil
}

// Restart starts the server again on the same port after Stop or a
// SHUTDOWN; it comes back empty.
func (r *Redis) Restart() {
	r.t.Helper()
	r.Stop()
	if err := r.start(); err != nil {
		r.t.Fatalf("redis-server restart: %v", err)
	}
}

// Stop kills the server (as a crash would) and waits for it.
func (r *Redis) Stop() {
	r.mu.Lock()
	cmd := r.cmd
	r.cmd = nil
	r.mu.Unlock()
	if cmd != nil {
		cmd.Process.Kill()
		cmd.Wait()
	}
}

// Do runs one command on a connection of its own and returns the reply's
// first line (a simple string, an error, an integer or a bulk string's
// content). It fails the test on a network error.
func (r *Redis) Do(args ...string) string {
	r.t.Helper()
	s, err := r.do(args...)
	if err != nil {
		r.t.Fatalf("redis %v: %v", args, err)
	}
	return s
}

func (r *Redis) do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", r.Addr(), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	rd := bufio.NewReader(c)
	line, err := rd.ReadString('\n')
	if err != nil {
		if len(args) > 0 && strings.EqualFold(args[0], "SHUTDOWN") {
			return "", nil // the server went away, as asked
		}
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return line, nil
	case '$':
		n, _ := strconv.Atoi(line[1:])
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return line, nil
}

// FreeLowPort returns a loopback TCP port below the ephemeral range
// (32768 and up) that is free now: a port a test binds again later (a
// restarted server, processes sharing it) must not be one that an
// outgoing connection can take meanwhile.
func FreeLowPort(t testing.TB) int {
	t.Helper()
	for range 200 {
		p := 10000 + rand.IntN(20000)
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err == nil {
			ln.Close()
			return p
		}
	}
	t.Fatal("no free port below 32768")
	return 0
}

// Package testkit holds what the tests of several packages share: a
// configuration on loopback ports that the kernel picks, a log sink that
// is safe for concurrent use, Eventually, a controller client, and dense
// ids for tests that compare ids with numbers. Only tests import it.
package testkit

import (
	"bufio"
	"bytes"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/memory"
)

// Config returns the built-in configuration with every listener on
// 127.0.0.1 and a port the kernel picks, no document root on disk (the
// built-in files only), and no pings or heartbeats: tests that want them
// set them.
func Config() *config.Config {
	cfg := config.Defaults()
	cfg.SubscriberIP, cfg.SubscriberPort = "127.0.0.1", 0
	cfg.ControllerIP, cfg.ControllerPort = "127.0.0.1", 0
	cfg.AdminIP, cfg.AdminPort = "127.0.0.1", 0
	cfg.UDPIP = "127.0.0.1" // UDPPort, when a test sets it, must be on loopback
	cfg.SubscriberDocumentRoot = ""
	cfg.HeartbeatInterval = 0
	cfg.Default.PingInterval = 0
	for _, m := range cfg.Modes {
		m.PingInterval = 0
	}
	return cfg
}

// Log is a log sink safe for concurrent use, for a test to read what the
// server logged.
type Log struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *Log) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Logger returns a text logger at debug level that writes to l.
func (l *Log) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// DenseIDs makes eng, a memory engine, number each channel's messages 1,
// 2, 3, so that a test can compare ids with literal numbers. Real servers
// draw ids from the clock (engine.NextID); the tests of that, and of ids
// across a restart, leave it alone.
func DenseIDs(eng engine.Engine) {
	eng.(*memory.Engine).SetDenseIDs()
}

// Wait bounds each wait of the tests that use the kit: a reply, a
// condition that Eventually polls.
const Wait = 5 * time.Second

// Eventually polls cond every few milliseconds until it holds, and fails
// t, saying what it waited for, when Wait passes first.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, Wait, what, cond)
}

// EventuallyWithin is Eventually with another bound.
func EventuallyWithin(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Controller is a test's connection to a controller port.
type Controller struct {
	t  testing.TB
	mu sync.Mutex
	nc net.Conn
	r  *bufio.Reader
}

// DialController connects to the controller at addr; the connection is
// closed when the test ends.
func DialController(t testing.TB, addr string) *Controller {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial controller: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	return &Controller{t: t, nc: nc, r: bufio.NewReader(nc)}
}

// Conn returns the connection, for tests that write raw bytes.
func (c *Controller) Conn() (net.Conn, *bufio.Reader) { return c.nc, c.r }

// Close closes the connection.
func (c *Controller) Close() error { return c.nc.Close() }

// Cmd sends one command line and returns the reply's lines without their
// CRLF; the replies of LISTCHANNELS and SHOWSTATS are read up to --EOT--.
func (c *Controller) Cmd(line string) []string {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.nc.SetDeadline(time.Now().Add(Wait))
	if _, err := io.WriteString(c.nc, line+"\n"); err != nil {
		c.t.Fatalf("controller write %.40q: %v", line, err)
	}
	multi := line == "LISTCHANNELS" || line == "SHOWSTATS"
	var out []string
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			c.t.Fatalf("controller reply to %.40q: %v (so far %q)", line, err, out)
		}
		if !strings.HasSuffix(l, "\r\n") {
			c.t.Fatalf("controller reply line %q does not end in CRLF", l)
		}
		l = strings.TrimSuffix(l, "\r\n")
		out = append(out, l)
		if !multi || l == "--EOT--" {
			return out
		}
	}
}

// Publish adds a message with ADDMESSAGE and returns its id.
func (c *Controller) Publish(channel, text string) uint64 {
	c.t.Helper()
	r := c.Cmd("ADDMESSAGE " + channel + " " + text)
	id, ok := strings.CutPrefix(r[0], "OK\t")
	n, err := strconv.ParseUint(id, 10, 64)
	if !ok || err != nil {
		c.t.Fatalf("ADDMESSAGE %s: got %q", channel, r)
	}
	return n
}

package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/memory"
	"github.com/meteorpush/meteor/internal/testkit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// wait bounds every read and poll in these tests.
const wait = 5 * time.Second

// testServer is a running server and what a test needs to talk to it.
type testServer struct {
	*Server
	t    *testing.T
	cfg  *config.Config
	log  *testkit.Log
	ctl  *testkit.Controller
	once sync.Once
}

// testConfig is the built-in configuration on loopback ports chosen by the
// kernel, with no document root on disk and no pings (tests that want pings
// set them).
func testConfig() *config.Config { return testkit.Config() }

// start runs a server on cfg (testConfig when nil, changed by edit) and
// shuts it down when the test ends.
func start(t *testing.T, edit func(*config.Config)) *testServer {
	t.Helper()
	return startOn(t, nil, edit)
}

// startOn is start on eng (nil: the memory engine, numbering 1, 2, 3).
func startOn(t *testing.T, eng engine.Engine, edit func(*config.Config)) *testServer {
	t.Helper()
	cfg := testConfig()
	if edit != nil {
		edit(cfg)
	}
	buf := &testkit.Log{}
	logger := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if eng == nil {
		m := memory.New(engine.Limits{MaxMessages: cfg.MaxMessagesPerChannel, MaxAge: time.Duration(cfg.MaxMessageAge) * time.Second})
		m.SetDenseIDs()
		eng = m
	}
	srv, err := NewOn(eng, cfg, logger)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	ts := &testServer{Server: srv, t: t, cfg: cfg, log: buf}
	t.Cleanup(func() {
		ts.shutdown(wait)
		if t.Failed() {
			t.Logf("server log:\n%s", buf.String())
		}
	})
	return ts
}

// shutdown shuts the server down once, and returns Shutdown's error and how
// long it took.
func (ts *testServer) shutdown(d time.Duration) (took time.Duration, err error) {
	ts.once.Do(func() {
		if ts.ctl != nil {
			ts.ctl.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		t0 := time.Now()
		err = ts.Shutdown(ctx)
		took = time.Since(t0)
	})
	return took, err
}

// controller returns the test's controller connection, dialling it once.
func (ts *testServer) controller() *testkit.Controller {
	ts.t.Helper()
	if ts.ctl == nil {
		ts.ctl = testkit.DialController(ts.t, ts.ControllerAddr().String())
	}
	return ts.ctl
}

// publish adds a message through the controller and returns its id.
func (ts *testServer) publish(channel, text string) uint64 {
	ts.t.Helper()
	return ts.controller().Publish(channel, text)
}

// count returns COUNTSUBSCRIBERS channel.
func (ts *testServer) count(channel string) int {
	ts.t.Helper()
	r := ts.controller().Cmd("COUNTSUBSCRIBERS " + channel)
	n, err := strconv.Atoi(strings.TrimPrefix(r[0], "OK "))
	if err != nil || !strings.HasPrefix(r[0], "OK ") {
		ts.t.Fatalf("COUNTSUBSCRIBERS %s: got %q", channel, r)
	}
	return n
}

// list returns LISTCHANNELS' channel lines.
func (ts *testServer) list() []string {
	ts.t.Helper()
	r := ts.controller().Cmd("LISTCHANNELS")
	if r[0] != "OK" {
		ts.t.Fatalf("LISTCHANNELS: got %q", r)
	}
	return r[1 : len(r)-1]
}

// waitCount polls COUNTSUBSCRIBERS until it is n.
func (ts *testServer) waitCount(channel string, n int) {
	ts.t.Helper()
	var got int
	testkit.Eventually(ts.t, fmt.Sprintf("COUNTSUBSCRIBERS %s = %d", channel, n), func() bool {
		got = ts.count(channel)
		return got == n
	})
}

// client is a raw subscriber connection.
type client struct {
	t  *testing.T
	nc net.Conn
}

// dial opens a connection to the subscriber port.
func (ts *testServer) dial() *client {
	ts.t.Helper()
	nc, err := net.Dial("tcp", ts.SubscriberAddr().String())
	if err != nil {
		ts.t.Fatalf("dial subscriber: %v", err)
	}
	ts.t.Cleanup(func() { nc.Close() })
	return &client{t: ts.t, nc: nc}
}

// get sends a GET for path and returns the connection.
func (ts *testServer) get(path string) *client {
	ts.t.Helper()
	c := ts.dial()
	c.send("GET " + path + " HTTP/1.1\r\nHost: test\r\nUser-Agent: test\r\n\r\n")
	return c
}

func (c *client) send(s string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// expect reads exactly len(want) bytes and compares them with want.
func (c *client) expect(want string) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(wait))
	got := make([]byte, len(want))
	n, err := io.ReadFull(c.nc, got)
	if err != nil || string(got) != want {
		c.t.Fatalf("read %d bytes (err %v):\n got %q\nwant %q", n, err, got[:n], want)
	}
}

// expectEOF checks that the server closed the connection with nothing
// more to read.
func (c *client) expectEOF() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(wait))
	var b [256]byte
	n, err := c.nc.Read(b[:])
	if n != 0 || !errors.Is(err, io.EOF) {
		c.t.Fatalf("want EOF, got %q, %v", b[:n], err)
	}
}

// readAll reads until the server closes the connection.
func (c *client) readAll() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(wait))
	b, err := io.ReadAll(c.nc)
	if err != nil {
		c.t.Fatalf("read to EOF: %v (got %q)", err, b)
	}
	return string(b)
}

// quiet checks that nothing arrives within d.
func (c *client) quiet(d time.Duration) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(d))
	var b [256]byte
	n, err := c.nc.Read(b[:])
	var ne net.Error
	if n != 0 || !errors.As(err, &ne) || !ne.Timeout() {
		c.t.Fatalf("want nothing for %v, got %q, %v", d, b[:n], err)
	}
}

// Expected output, rendered from the configuration's templates by plain
// string replacement, independently of the server's template code.

func header(m *config.Mode, status, info string) string {
	return strings.NewReplacer("~status~", status, "~server~", "meteord", "~channelinfo~", info).Replace(m.HeaderTemplate)
}

func chinfo(m *config.Mode, name string, last uint64) string {
	return strings.NewReplacer("~name~", name, "~lastMsgID~", strconv.FormatUint(last, 10)).Replace(m.ChannelInfoTemplate)
}

// readLine reads up to and without the next LF.
func (c *client) readLine() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(wait))
	var b []byte
	var one [1]byte
	for {
		if _, err := c.nc.Read(one[:]); err != nil {
			c.t.Fatalf("read line: %v (got %q)", err, b)
		}
		if one[0] == '\n' {
			return string(b)
		}
		b = append(b, one[0])
	}
}

// readN reads exactly n bytes.
func (c *client) readN(n int) []byte {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(wait))
	b := make([]byte, n)
	if m, err := io.ReadFull(c.nc, b); err != nil {
		c.t.Fatalf("read %d bytes: %v (got %q)", n, err, b[:m])
	}
	return b
}

// readUntilEOF reads to EOF and checks that everything read is repeats of
// unit (pings, say).
func (c *client) readUntilEOF(t *testing.T, unit string) {
	t.Helper()
	got := c.readAll()
	if strings.ReplaceAll(got, unit, "") != "" {
		t.Errorf("want only %q before EOF, got %q", unit, got)
	}
}

// readUntil reads repeats of unit (pings, say), then want.
func (c *client) readUntil(t *testing.T, unit, want string) {
	t.Helper()
	for {
		b := c.readN(min(len(unit), len(want)))
		if string(b) == unit[:len(b)] && len(b) == len(unit) {
			continue
		}
		rest := ""
		if len(want) > len(b) {
			rest = string(c.readN(len(want) - len(b)))
		}
		if got := string(b) + rest; got != want {
			t.Fatalf("got %q, want %q after pings", got, want)
		}
		return
	}
}

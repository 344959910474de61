package controller

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/stats"
	"github.com/meteorpush/meteor/internal/testkit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// fakeBackend stands in for the hub. Publish panics on channel "panic" and
// fails on channel "fail".
type fakeBackend struct {
	mu     sync.Mutex
	nextID uint64
	calls  int
	msgs   map[string][][]byte
	subs   map[string]int
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{msgs: map[string][][]byte{}, subs: map[string]int{}}
}

func (b *fakeBackend) Publish(ctx context.Context, pubs []engine.Publication) ([]*engine.Message, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls++
	var out []*engine.Message
	for _, p := range pubs {
		switch p.Channel {
		case "panic":
			panic("fake backend panics on purpose")
		case "fail":
			return out, errors.New("store full\r\ntry later")
		case "down":
			return out, fmt.Errorf("redis: %w", engine.ErrUnavailable)
		}
		id := b.nextID
		b.nextID++
		b.msgs[p.Channel] = append(b.msgs[p.Channel], []byte(p.Text))
		out = append(out, &engine.Message{Channel: p.Channel, ID: id, Text: p.Text})
	}
	return out, nil
}

// publishCalls returns the number of Publish calls so far.
func (b *fakeBackend) publishCalls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls
}

func (b *fakeBackend) CountSubscribers(channel string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.subs[channel]
}

func (b *fakeBackend) ListChannels() ([]ChannelInfo, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []ChannelInfo
	for name, m := range b.msgs {
		out = append(out, ChannelInfo{Name: name, Messages: len(m), Subscribers: b.subs[name]})
	}
	for name, n := range b.subs {
		if _, ok := b.msgs[name]; !ok {
			out = append(out, ChannelInfo{Name: name, Subscribers: n})
		}
	}
	slices.SortFunc(out, func(a, b ChannelInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

func (b *fakeBackend) texts(channel string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, m := range b.msgs[channel] {
		out = append(out, string(m))
	}
	return out
}

func testLogger(buf *testkit.Log) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// start serves srv on a fresh 127.0.0.1 port and returns the address. The
// server is shut down at the end of the test, and Serve must then return
// ErrServerClosed.
func start(t *testing.T, srv *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-errc; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

func newServer(be Backend) *Server {
	return &Server{Backend: be, Stats: stats.New()}
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func send(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatalf("write %q: %v", s, err)
	}
}

// expect reads exactly len(want) bytes and compares them with want.
func expect(t *testing.T, c net.Conn, want string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(want))
	n, err := io.ReadFull(c, got)
	if err != nil || string(got) != want {
		t.Fatalf("read %q (err %v), want %q", got[:n], err, want)
	}
}

// expectEOF checks that the server closes c without sending more, then
// closes c.
func expectEOF(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	rest, err := io.ReadAll(c)
	if err != nil || len(rest) != 0 {
		t.Fatalf("read %q (err %v) where the server should have closed the connection", rest, err)
	}
	c.Close()
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCommands(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		out   string
		texts []string // messages stored in channel demo afterwards
	}{
		{name: "addmessage", in: "ADDMESSAGE demo hello\r\n", out: "OK\t0\r\n", texts: []string{"hello"}},
		{name: "addmessage LF", in: "ADDMESSAGE demo hello\n", out: "OK\t0\r\n", texts: []string{"hello"}},
		{name: "spaces in text", in: "ADDMESSAGE demo  hello \"big\"  world \r\n", out: "OK\t0\r\n", texts: []string{` hello "big"  world `}},
		{name: "empty message", in: "ADDMESSAGE demo \r\n", out: "OK\t0\r\n", texts: []string{""}},
		{name: "empty message LF", in: "ADDMESSAGE demo \n", out: "OK\t0\r\n", texts: []string{""}},
		{name: "tabs", in: "ADDMESSAGE\t\tdemo\ta\tb\n", out: "OK\t0\r\n", texts: []string{"a\tb"}},
		{name: "CR inside", in: "ADDMESSAGE demo a\rb\r\r\n", out: "OK\t0\r\n", texts: []string{"a\rb\r"}},
		{name: "no text", in: "ADDMESSAGE demo\r\n", out: "ERR Invalid command syntax\r\n"},
		{name: "no channel", in: "ADDMESSAGE\r\n", out: "ERR Invalid command syntax\r\n"},
		{name: "lower case", in: "addmessage demo x\r\n", out: "ERR Invalid command syntax\r\n"},
		{name: "glued", in: "ADDMESSAGEdemo x\r\n", out: "ERR Invalid command syntax\r\n"},
		{name: "bad channel", in: "ADDMESSAGE de.mo x\r\n", out: "ERR Invalid channel name\r\n"},
		{name: "backend error", in: "ADDMESSAGE fail x\r\n", out: "ERR store full  try later\r\n"},
		{name: "store unavailable", in: "ADDMESSAGE down x\r\n", out: "ERR store unavailable\r\n"},
		{name: "count", in: "COUNTSUBSCRIBERS watched\r\n", out: "OK 3\r\n"},
		{name: "count unknown", in: "COUNTSUBSCRIBERS demo\n", out: "OK 0\r\n"},
		{name: "count two words", in: "COUNTSUBSCRIBERS a b\r\n", out: "ERR Invalid command syntax\r\n"},
		{name: "count trailing space", in: "COUNTSUBSCRIBERS demo \r\n", out: "ERR Invalid command syntax\r\n"},
		{name: "count bare", in: "COUNTSUBSCRIBERS\r\n", out: "ERR Invalid command syntax\r\n"},
		{name: "count bad channel", in: "COUNTSUBSCRIBERS a/b\r\n", out: "ERR Invalid channel name\r\n"},
		{name: "list", in: "LISTCHANNELS\r\n", out: "OK\r\nwatched(0/3)\r\n--EOT--\r\n"},
		{name: "list after add", in: "ADDMESSAGE demo x\nADDMESSAGE demo y\nLISTCHANNELS\n",
			out: "OK\t0\r\nOK\t1\r\nOK\r\ndemo(2/0)\r\nwatched(0/3)\r\n--EOT--\r\n", texts: []string{"x", "y"}},
		{name: "list trailing", in: "LISTCHANNELS x\r\n", out: "ERR Invalid command syntax\r\n"},
		{name: "list trailing space", in: "LISTCHANNELS \r\n", out: "ERR Invalid command syntax\r\n"},
		{name: "quit trailing", in: "QUIT now\r\n", out: "ERR Invalid command syntax\r\n"},
		{name: "empty line", in: "\r\n\n", out: "ERR Invalid command syntax\r\nERR Invalid command syntax\r\n"},
		{name: "unknown", in: "PUBLISH demo x\r\n", out: "ERR Invalid command syntax\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			be := newFakeBackend()
			be.subs["watched"] = 3
			addr := start(t, newServer(be))
			c := dial(t, addr)
			send(t, c, tt.in)
			expect(t, c, tt.out)
			// Nothing more than the expected reply: QUIT's OK comes next.
			send(t, c, "QUIT\r\n")
			expect(t, c, "OK\r\n")
			expectEOF(t, c)
			if got := be.texts("demo"); !slices.Equal(got, tt.texts) {
				t.Errorf("messages in demo = %q, want %q", got, tt.texts)
			}
			if chans, _ := be.ListChannels(); tt.name == "count unknown" && len(chans) != 1 {
				t.Errorf("COUNTSUBSCRIBERS created a channel: %v", chans)
			}
		})
	}
}

func TestListChannelsEmpty(t *testing.T) {
	c := dial(t, start(t, newServer(newFakeBackend())))
	send(t, c, "LISTCHANNELS\n")
	expect(t, c, "OK\r\n--EOT--\r\n")
}

var uptimeRE = regexp.MustCompile(`^OK\r\nuptime: (\d+)\r\n`)

func TestShowStats(t *testing.T) {
	be := newFakeBackend()
	srv := newServer(be)
	c := dial(t, start(t, srv))

	add := "ADDMESSAGE demo hi\r\n"
	send(t, c, add)
	expect(t, c, "OK\t0\r\n")
	show := "SHOWSTATS and anything\n"
	send(t, c, show)

	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.HasSuffix(got, []byte("--EOT--\r\n")) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("read %q: %v", got, err)
		}
	}
	m := uptimeRE.FindSubmatch(got)
	if m == nil {
		t.Fatalf("SHOWSTATS reply %q does not start with OK and uptime", got)
	}
	want := "OK\r\nuptime: " + string(m[1]) + "\r\n" +
		"channel_count: 1\r\n" +
		"total_requests: 1\r\n" +
		"current_controllers: 1\r\n" +
		"controller_connections_accepted: 1\r\n" +
		fmt.Sprintf("total_inbound_bytes: %d\r\n", len(add)+len(show)) +
		"total_outbound_bytes: 6\r\n" +
		"--EOT--\r\n"
	if string(got) != want {
		t.Fatalf("SHOWSTATS reply\n%q\nwant\n%q", got, want)
	}
	waitFor(t, "total_outbound_bytes to count the SHOWSTATS reply", func() bool {
		return srv.Stats.Get(stats.TotalOutboundBytes) == int64(6+len(got))
	})
}

func TestShowStatsChannelCount(t *testing.T) {
	srv := newServer(newFakeBackend())
	srv.ChannelCount = func() int { return 42 }
	c := dial(t, start(t, srv))
	send(t, c, "SHOWSTATS\r\n")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.HasSuffix(got, []byte("--EOT--\r\n")) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("read %q: %v", got, err)
		}
	}
	if !bytes.Contains(got, []byte("\r\nchannel_count: 42\r\ntotal_requests: 1\r\n")) {
		t.Fatalf("SHOWSTATS reply %q lacks channel_count 42", got)
	}
}

func TestNilStatsAndLogger(t *testing.T) {
	c := dial(t, start(t, &Server{Backend: newFakeBackend()}))
	send(t, c, "ADDMESSAGE demo x\nSHOWSTATS\n")
	expect(t, c, "OK\t0\r\nOK\r\nuptime: 0\r\nchannel_count: 1\r\ntotal_requests: 1\r\n")
}

const script = "ADDMESSAGE demo hello world\r\n" +
	"COUNTSUBSCRIBERS demo\n" +
	"LISTCHANNELS\r\n" +
	"NOPE\n" +
	"ADDMESSAGE demo \r\n" +
	"QUIT\r\n" +
	"ADDMESSAGE demo after quit\r\n"

const scriptReply = "OK\t0\r\n" +
	"OK 0\r\n" +
	"OK\r\ndemo(1/0)\r\n--EOT--\r\n" +
	"ERR Invalid command syntax\r\n" +
	"OK\t1\r\n" +
	"OK\r\n"

func TestPipelined(t *testing.T) {
	be := newFakeBackend()
	c := dial(t, start(t, newServer(be)))
	send(t, c, script)
	expect(t, c, scriptReply)
	expectEOF(t, c)
	if got, want := be.texts("demo"), []string{"hello world", ""}; !slices.Equal(got, want) {
		t.Fatalf("messages = %q, want %q", got, want)
	}
}

// TestSplitAtEveryByte sends the script in two writes, split at every
// position, and makes sure the server has read the first part before the
// second is sent.
func TestSplitAtEveryByte(t *testing.T) {
	for i := 1; i < len(script); i++ {
		be := newFakeBackend()
		srv := newServer(be)
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- srv.Serve(ln) }()
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		send(t, c, script[:i])
		waitFor(t, fmt.Sprintf("server to read %d bytes", i), func() bool {
			return srv.Stats.Get(stats.TotalInboundBytes) >= int64(i)
		})
		send(t, c, script[i:])
		expect(t, c, scriptReply)
		expectEOF(t, c)
		c.Close()
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve returned %v", err)
		}
		if got, want := be.texts("demo"), []string{"hello world", ""}; !slices.Equal(got, want) {
			t.Fatalf("split at %d: messages = %q, want %q", i, got, want)
		}
	}
}

// TestByteByByte sends the script one byte per write.
func TestByteByByte(t *testing.T) {
	srv := newServer(newFakeBackend())
	c := dial(t, start(t, srv))
	for i := range len(script) - len("ADDMESSAGE demo after quit\r\n") {
		send(t, c, script[i:i+1])
		waitFor(t, "server to read", func() bool {
			return srv.Stats.Get(stats.TotalInboundBytes) >= int64(i+1)
		})
	}
	expect(t, c, scriptReply)
	expectEOF(t, c)
}

func TestLineTooLong(t *testing.T) {
	var logs testkit.Log
	be := newFakeBackend()
	srv := newServer(be)
	srv.MaxLine = 32
	srv.Logger = testLogger(&logs)
	addr := start(t, srv)

	other := dial(t, addr)
	send(t, other, "ADDMESSAGE demo before\r\n")
	expect(t, other, "OK\t0\r\n")

	// Exactly MaxLine bytes, with either line ending, is accepted.
	exact := "ADDMESSAGE demo " + strings.Repeat("x", 32-len("ADDMESSAGE demo "))
	c := dial(t, addr)
	send(t, c, exact+"\r\n"+exact+"\n")
	expect(t, c, "OK\t1\r\nOK\t2\r\n")

	// One more byte is not, and ends the connection.
	send(t, c, exact+"y\r\nADDMESSAGE demo lost\r\n")
	expect(t, c, "ERR Line too long\r\n")
	expectEOF(t, c)

	// A line that never ends is cut off as well.
	c2 := dial(t, addr)
	send(t, c2, strings.Repeat("z", 5000))
	expect(t, c2, "ERR Line too long\r\n")
	expectEOF(t, c2)

	send(t, other, "ADDMESSAGE demo after\r\n")
	expect(t, other, "OK\t3\r\n")
	if got := be.texts("demo"); len(got) != 4 || got[3] != "after" {
		t.Fatalf("messages = %q", got)
	}
	if !strings.Contains(logs.String(), "line too long") {
		t.Errorf("log lacks the line too long warning:\n%s", logs.String())
	}
}

// TestLongLines exercises lines longer than the read buffer.
func TestLongLines(t *testing.T) {
	be := newFakeBackend()
	srv := newServer(be)
	srv.MaxLine = 3 * ioBufferSize
	c := dial(t, start(t, srv))
	text := strings.Repeat("0123456789", 3*ioBufferSize/10)[:3*ioBufferSize-len("ADDMESSAGE demo ")]
	send(t, c, "ADDMESSAGE demo "+text+"\r\nADDMESSAGE demo short\r\n")
	expect(t, c, "OK\t0\r\nOK\t1\r\n")
	if got := be.texts("demo"); len(got) != 2 || got[0] != text || got[1] != "short" {
		t.Fatalf("long message not stored intact (%d messages)", len(got))
	}
	send(t, c, "ADDMESSAGE demo "+text+"!\n")
	expect(t, c, "ERR Line too long\r\n")
	expectEOF(t, c)
}

func TestManyControllers(t *testing.T) {
	const clients, perClient = 20, 50
	be := newFakeBackend()
	srv := newServer(be)
	addr := start(t, srv)

	var wg sync.WaitGroup
	ids := make([][]string, clients)
	errs := make(chan error, clients)
	for i := range clients {
		c := dial(t, addr)
		wg.Go(func() {
			c.SetDeadline(time.Now().Add(10 * time.Second))
			ch := fmt.Sprintf("ch%d", i)
			r := bufio.NewReader(c)
			for j := range perClient {
				if _, err := fmt.Fprintf(c, "ADDMESSAGE %s m%d\r\n", ch, j); err != nil {
					errs <- err
					return
				}
				reply, err := r.ReadString('\n')
				if err != nil {
					errs <- err
					return
				}
				ids[i] = append(ids[i], reply)
			}
			if _, err := io.WriteString(c, "QUIT\r\n"); err != nil {
				errs <- err
				return
			}
			if rest, err := io.ReadAll(r); err != nil || string(rest) != "OK\r\n" {
				errs <- fmt.Errorf("after QUIT read %q, %v", rest, err)
			}
			c.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, got := range ids {
		for _, r := range got {
			if !strings.HasPrefix(r, "OK\t") || !strings.HasSuffix(r, "\r\n") || seen[r] {
				t.Fatalf("client %d got reply %q", i, r)
			}
			seen[r] = true
		}
		want := make([]string, perClient)
		for j := range want {
			want[j] = fmt.Sprintf("m%d", j)
		}
		if got := be.texts(fmt.Sprintf("ch%d", i)); !slices.Equal(got, want) {
			t.Fatalf("channel ch%d holds %q", i, got)
		}
	}
	if n := srv.Stats.Get(stats.ControllerConnectionsAccepted); n != clients {
		t.Errorf("controller_connections_accepted = %d, want %d", n, clients)
	}
	waitFor(t, "current_controllers to drop to 0", func() bool {
		return srv.Stats.Get(stats.CurrentControllers) == 0
	})
}

func TestQuit(t *testing.T) {
	srv := newServer(newFakeBackend())
	c := dial(t, start(t, srv))
	send(t, c, "QUIT\r\n")
	expect(t, c, "OK\r\n")
	expectEOF(t, c)
	waitFor(t, "current_controllers to drop to 0", func() bool {
		return srv.Stats.Get(stats.CurrentControllers) == 0
	})
	if n := srv.Stats.Get(stats.TotalRequests); n != 1 {
		t.Errorf("total_requests = %d, want 1", n)
	}
}

func TestShutdown(t *testing.T) {
	be := newFakeBackend()
	srv := newServer(be)
	srv.ShutdownMsg = "BYE\r\n"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	idle := dial(t, addr)
	busy := dial(t, addr)
	send(t, idle, "ADDMESSAGE demo x\n")
	expect(t, idle, "OK\t0\r\n")
	send(t, busy, "ADDMESSAGE demo partial")
	waitFor(t, "the partial line to be read", func() bool {
		return srv.Stats.Get(stats.TotalInboundBytes) == int64(len("ADDMESSAGE demo x\nADDMESSAGE demo partial"))
	})

	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	expect(t, idle, "BYE\r\n")
	expectEOF(t, idle)
	expect(t, busy, "BYE\r\n")
	expectEOF(t, busy)
	err = <-errc
	if !errors.Is(err, ErrServerClosed) || !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Serve returned %v, want ErrServerClosed wrapping net.ErrClosed", err)
	}
	if got := be.texts("demo"); !slices.Equal(got, []string{"x"}) {
		t.Fatalf("messages = %q; the partial line must not be published", got)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Fatal("the listener still accepts after Shutdown")
	}
	if n := srv.Stats.Get(stats.CurrentControllers); n != 0 {
		t.Errorf("current_controllers = %d after Shutdown", n)
	}

	// Serving again after Shutdown fails at once.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Serve(ln2); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown returned %v", err)
	}
	if _, err := net.Dial("tcp", ln2.Addr().String()); err == nil {
		t.Fatal("Serve after Shutdown left its listener open")
	}
	// A second Shutdown is harmless.
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}

func TestShutdownNoMessage(t *testing.T) {
	srv := newServer(newFakeBackend())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	c := dial(t, ln.Addr().String())
	send(t, c, "ADDMESSAGE demo x\n")
	expect(t, c, "OK\t0\r\n")
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	expectEOF(t, c)
	<-errc
}

func TestPanicRecovery(t *testing.T) {
	var logs testkit.Log
	be := newFakeBackend()
	srv := newServer(be)
	srv.Logger = testLogger(&logs)
	addr := start(t, srv)

	good := dial(t, addr)
	bad := dial(t, addr)
	send(t, bad, "ADDMESSAGE panic boom\r\n")
	expectEOF(t, bad)

	send(t, good, "ADDMESSAGE demo fine\r\n")
	expect(t, good, "OK\t0\r\n")
	waitFor(t, "current_controllers to drop to 1", func() bool {
		return srv.Stats.Get(stats.CurrentControllers) == 1
	})
	log := logs.String()
	if !strings.Contains(log, "fake backend panics on purpose") || !strings.Contains(log, "goroutine ") {
		t.Fatalf("log lacks the panic and its stack:\n%s", log)
	}
}

func TestUDP(t *testing.T) {
	var logs testkit.Log
	be := newFakeBackend()
	srv := newServer(be)
	srv.Logger = testLogger(&logs)
	srv.MaxLine = 1000
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeUDP(pc) }()

	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, d := range []string{
		"ADDMESSAGE demo hello\n",
		"ADDMESSAGE demo  two words\r\n",
		"ADDMESSAGE demo \n",
		"ADDMESSAGE demo no newline",
		"ADDMESSAGE demo\n",       // syntax error: dropped
		"ADDMESSAGE b!d x\n",      // bad channel: dropped
		"COUNTSUBSCRIBERS demo\n", // ignored
		"QUIT\n",                  // ignored
		"ADDMESSAGE panic x\n",    // recovered
		"ADDMESSAGE fail x\n",     // backend error: logged
		"ADDMESSAGE demo " + strings.Repeat("x", 1000) + "\n", // too long
		"ADDMESSAGE demo last\n",
	} {
		if _, err := io.WriteString(c, d); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the last datagram", func() bool {
		got := be.texts("demo")
		return len(got) > 0 && got[len(got)-1] == "last"
	})
	want := []string{"hello", " two words", "", "no newline", "last"}
	if got := be.texts("demo"); !slices.Equal(got, want) {
		t.Fatalf("messages = %q, want %q", got, want)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("ServeUDP returned %v, want ErrServerClosed", err)
	}
	log := logs.String()
	for _, s := range []string{"bad udp datagram", "panic serving udp datagram", "udp publish failed"} {
		if !strings.Contains(log, s) {
			t.Errorf("log lacks %q:\n%s", s, log)
		}
	}
	if n := srv.Stats.Get(stats.CurrentControllers); n != 0 {
		t.Errorf("UDP touched current_controllers: %d", n)
	}
}

// pipeListener hands out the server ends of net.Pipe connections: a write
// on a pipe blocks until the other end reads it, which makes write timing
// visible to a test.
type pipeListener struct {
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *pipeListener) Addr() net.Addr { return &net.UnixAddr{Name: "pipe", Net: "pipe"} }

func (l *pipeListener) dial(t *testing.T) net.Conn {
	client, server := net.Pipe()
	select {
	case l.conns <- server:
	case <-time.After(10 * time.Second):
		t.Fatal("pipe listener: no Accept")
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func servePipe(t *testing.T, srv *Server) *pipeListener {
	ln := newPipeListener()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Shutdown(context.Background())
		<-errc
	})
	return ln
}

// TestBatchOneWrite checks that the replies to a pipelined batch leave in one
// write.
func TestBatchOneWrite(t *testing.T) {
	ln := servePipe(t, newServer(newFakeBackend()))
	c := ln.dial(t)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	send(t, c, "ADDMESSAGE a 1\nADDMESSAGE a 2\nCOUNTSUBSCRIBERS a\nLISTCHANNELS\n")
	buf := make([]byte, 4096)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	if want := "OK\t0\r\nOK\t1\r\nOK 0\r\nOK\r\na(2/0)\r\n--EOT--\r\n"; string(buf[:n]) != want {
		t.Fatalf("first read %q, want all replies %q", buf[:n], want)
	}
}

// TestWriteTimeout checks that a controller that does not read its replies
// is disconnected.
func TestWriteTimeout(t *testing.T) {
	srv := newServer(newFakeBackend())
	srv.WriteTimeout = 20 * time.Millisecond
	ln := servePipe(t, srv)
	c := ln.dial(t)
	send(t, c, "LISTCHANNELS\n")
	waitFor(t, "the connection to be dropped", func() bool {
		return srv.Stats.Get(stats.ControllerConnectionsAccepted) == 1 &&
			srv.Stats.Get(stats.CurrentControllers) == 0
	})
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 10)); err == nil {
		t.Fatalf("read %d bytes from a connection that should be closed", n)
	}
}

// TestShutdownDeadline checks that Shutdown gives up on a connection that
// does not read, closes it, and still waits for its goroutine.
func TestShutdownDeadline(t *testing.T) {
	srv := newServer(newFakeBackend())
	srv.ShutdownMsg = "BYE\r\n"
	ln := servePipe(t, srv)
	c := ln.dial(t)
	send(t, c, "LISTCHANNELS\n") // the reply blocks: nobody reads it
	waitFor(t, "the connection to be counted", func() bool {
		return srv.Stats.Get(stats.TotalInboundBytes) == int64(len("LISTCHANNELS\n"))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown returned %v, want context.DeadlineExceeded", err)
	}
	if n := srv.Stats.Get(stats.CurrentControllers); n != 0 {
		t.Fatalf("current_controllers = %d after Shutdown returned", n)
	}
}

// TestPipelinedPublishOneCall: ADDMESSAGE lines that arrive together are
// published in one Backend call, and the replies keep the order of the
// lines, a COUNTSUBSCRIBERS among them included; a failed batch fails its
// lines, not the ones before it.
func TestPipelinedPublishOneCall(t *testing.T) {
	be := newFakeBackend()
	addr := start(t, newServer(be))
	c := dial(t, addr)
	send(t, c, "ADDMESSAGE a 1\r\nADDMESSAGE b 2\r\nADDMESSAGE a 3\r\nCOUNTSUBSCRIBERS a\r\nADDMESSAGE a 4\r\n")
	expect(t, c, "OK\t0\r\nOK\t1\r\nOK\t2\r\nOK 0\r\nOK\t3\r\n")
	if n := be.publishCalls(); n != 2 {
		t.Errorf("%d Publish calls for two runs of pipelined lines, want 2", n)
	}
	if got := be.texts("a"); !slices.Equal(got, []string{"1", "3", "4"}) {
		t.Errorf("a holds %q", got)
	}
	send(t, c, "ADDMESSAGE a 5\r\nADDMESSAGE down x\r\nADDMESSAGE a 6\r\n")
	expect(t, c, "OK\t4\r\nERR store unavailable\r\nERR store unavailable\r\n")
}

// TestUDPLogsEachKind: a datagram too long and a malformed one sent
// within the same second are both logged: one kind never hides the other
// behind a shared rate limit.
func TestUDPLogsEachKind(t *testing.T) {
	var logs testkit.Log
	be := newFakeBackend()
	srv := newServer(be)
	srv.Logger = testLogger(&logs)
	srv.MaxLine = 100
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeUDP(pc) }()
	c, err := net.Dial("udp", pc.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, d := range []string{
		"ADDMESSAGE demo " + strings.Repeat("x", 200) + "\n", // too long
		"ADDMESSAGE b!d x\n", // malformed
		"ADDMESSAGE demo done\n",
	} {
		io.WriteString(c, d)
	}
	waitFor(t, "the last datagram", func() bool {
		got := be.texts("demo")
		return len(got) > 0 && got[len(got)-1] == "done"
	})
	srv.Shutdown(context.Background())
	<-errc
	log := logs.String()
	for _, s := range []string{"udp datagram too long", "bad udp datagram"} {
		if !strings.Contains(log, s) {
			t.Errorf("log lacks %q:\n%s", s, log)
		}
	}
}

package subscriber

// Tests of the accept loop: request reading (limits, malformed input, slow
// clients), panic recovery, shutdown while requests are being read, and
// accept errors. They run a bare subscriber Server on 127.0.0.1:0 with the
// memory engine and speak raw HTTP over net.Dial.

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/memory"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/outq"
	"github.com/meteorpush/meteor/internal/rawhttp"
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/stats"
	"github.com/meteorpush/meteor/internal/testkit"
)

// aWait bounds every read and poll in these tests.
const aWait = 5 * time.Second

// acceptServer is a running subscriber Server.
type acceptServer struct {
	*Server
	t      *testing.T
	ln     net.Listener
	log    *testkit.Log
	served chan error // Serve's result
	down   bool       // Shutdown has run
}

// startAccept serves a subscriber Server on ln (nil: a new loopback
// listener) with the given request timeout and header limit, and shuts it
// down when the test ends.
func startAccept(t *testing.T, ln net.Listener, requestTimeout time.Duration, maxHeader int) *acceptServer {
	t.Helper()
	return startAcceptWith(t, ln, requestTimeout, maxHeader, nil)
}

// startAcceptWith is startAccept with edit run on the Server before Serve.
func startAcceptWith(t *testing.T, ln net.Listener, requestTimeout time.Duration, maxHeader int, edit func(*Server)) *acceptServer {
	t.Helper()
	cfg := testkit.Config()
	set, err := NewSettings(cfg, nil)
	if err != nil {
		t.Fatalf("NewSettings: %v", err)
	}
	eng := memory.New(engine.Limits{MaxMessages: 10})
	h := hub.New(eng, hub.Options{})
	h.Start()
	if err := eng.Start(context.Background(), h); err != nil {
		t.Fatalf("engine start: %v", err)
	}
	lg := &testkit.Log{}
	s, err := New(h, stats.New(), slog.New(slog.NewTextHandler(lg, &slog.HandlerOptions{Level: slog.LevelDebug})), set, requestTimeout, maxHeader)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if ln == nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatalf("listen: %v", err)
		}
	}
	if edit != nil {
		edit(s)
	}
	ts := &acceptServer{Server: s, t: t, ln: ln, log: lg, served: make(chan error, 1)}
	go func() { ts.served <- s.Serve(ln) }()
	t.Cleanup(func() {
		if !ts.down {
			ts.shutdown(aWait)
		}
		h.Close()
		eng.Close(context.Background())
		if t.Failed() {
			t.Logf("server log:\n%s", lg.String())
		}
	})
	return ts
}

// shutdown runs Shutdown with the given bound and checks that it and Serve
// return nil.
func (ts *acceptServer) shutdown(bound time.Duration) time.Duration {
	ts.t.Helper()
	ts.down = true
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	t0 := time.Now()
	if err := ts.Shutdown(ctx); err != nil {
		ts.t.Errorf("Shutdown: %v", err)
	}
	took := time.Since(t0)
	select {
	case err := <-ts.served:
		if err != nil {
			ts.t.Errorf("Serve = %v after Shutdown, want nil", err)
		}
	case <-time.After(aWait):
		ts.t.Errorf("Serve did not return after Shutdown")
	}
	return took
}

func (ts *acceptServer) dial() net.Conn {
	ts.t.Helper()
	nc, err := net.Dial("tcp", ts.ln.Addr().String())
	if err != nil {
		ts.t.Fatalf("dial: %v", err)
	}
	ts.t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(aWait))
	return nc
}

// exchange sends req on a new connection and returns all the server wrote
// until it closed.
func (ts *acceptServer) exchange(req string) string {
	ts.t.Helper()
	nc := ts.dial()
	if _, err := io.WriteString(nc, req); err != nil {
		ts.t.Fatalf("write: %v", err)
	}
	b, err := io.ReadAll(nc)
	if err != nil && !isReset(err) {
		ts.t.Fatalf("read: %v (after %q)", err, b)
	}
	return string(b)
}

func isReset(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection reset") || strings.Contains(err.Error(), "broken pipe"))
}

// waitCurrent waits until current_subscribers is n.
func (ts *acceptServer) waitCurrent(n int64) {
	ts.t.Helper()
	testkit.Eventually(ts.t, "current_subscribers to settle", func() bool { return ts.stats.Get(stats.CurrentSubscribers) == n })
}

// simplepoll is the whole answer to GET /push/h/simplepoll/c with no
// message: the built-in header template and the channel info.
const simplepollPrefix = "HTTP/1.1 200 OK\r\n"

// TestAcceptHeaderLimit: a header of exactly MaxHeaderBytes is read, one
// byte more is answered with net/http's 431, byte for byte, and read to
// the end by a client that sent far more; the server carries on.
func TestAcceptHeaderLimit(t *testing.T) {
	const limit = 1024
	ts := startAccept(t, nil, aWait, limit)
	pad := func(n int) string {
		head := "GET /push/h/simplepoll/c HTTP/1.1\r\nHost: x\r\nX-Pad: "
		return head + strings.Repeat("a", n-len(head)-len("\r\n\r\n")) + "\r\n\r\n"
	}
	if got := ts.exchange(pad(limit)); !strings.HasPrefix(got, simplepollPrefix) {
		t.Errorf("a header of %d bytes: got %q, want the answer", limit, got)
	}
	const want431 = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n431 Request Header Fields Too Large"
	if got := ts.exchange(pad(limit + 1)); got != want431 {
		t.Errorf("a header of %d bytes: got %q, want %q", limit+1, got, want431)
	}
	// A client still sending when it is refused gets the whole answer.
	nc := ts.dial()
	var wg sync.WaitGroup
	wg.Go(func() {
		io.WriteString(nc, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("b", 64<<10)+"\r\n\r\n")
	})
	got, err := io.ReadAll(nc)
	wg.Wait()
	if string(got) != want431 {
		t.Errorf("a 64 KiB header: got %q (%v), want the 431", got, err)
	}
	if got := ts.exchange("GET /push/h/simplepoll/c HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(got, simplepollPrefix) {
		t.Errorf("after the 431s: %q", got)
	}
	ts.waitCurrent(0)
}

// TestAcceptMalformed: a request that breaks HTTP/1.1 is answered 400 with
// the reason in plain text; one the server reads is routed.
func TestAcceptMalformed(t *testing.T) {
	ts := startAccept(t, nil, aWait, 8192)
	for _, tt := range []struct {
		request, reason string // reason "": routed
	}{
		{"HELLO\r\n\r\n", "malformed request"},
		{"GET /push/h/simplepoll/c HTTP/1.1 extra\r\nHost: x\r\n\r\n", "malformed request"},
		{"GET /push/h/simplepoll/c HTTP/x\r\nHost: x\r\n\r\n", "malformed request"},
		{"G(T /push/h/simplepoll/c HTTP/1.1\r\nHost: x\r\n\r\n", "malformed request"},
		{"GET push HTTP/1.1\r\nHost: x\r\n\r\n", "malformed request target"},
		{"GET /push/h/simplepoll/c HTTP/1.1\r\nHost: x\r\nNo colon\r\n\r\n", "malformed header"},
		{"GET /push/h/simplepoll/c HTTP/1.1\r\nHost: x\r\nX: a\x01b\r\n\r\n", "malformed header"},
		{"GET /push/h/simplepoll/c HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", "malformed request"},
		{"GET /push/h/simplepoll/c HTTP/1.1\r\n\r\n", "missing required Host header"},
		{"GET /push/h/simplepoll/c HTTP/1.1\r\nHost: a b\r\n\r\n", "malformed Host header"},
		{"GET /push/h/simplepoll/c HTTP/2.0\r\nHost: x\r\n\r\n", "unsupported protocol version"},
		{"GET /push/h/simplepoll/c HTTP/1.0\r\n\r\n", ""},
		{"\r\nGET /push/h/simplepoll/c HTTP/1.1\r\nHost: x\r\n\r\n", "malformed request"},
	} {
		got := ts.exchange(tt.request)
		if tt.reason == "" {
			if !strings.HasPrefix(got, simplepollPrefix) {
				t.Errorf("%q: got %q, want it routed", tt.request, got)
			}
			continue
		}
		want := string(badRequestResponse(tt.reason))
		if got != want {
			t.Errorf("%q:\n got %q\nwant %q", tt.request, got, want)
		}
	}
	ts.waitCurrent(0)
	if n := ts.stats.Get(stats.SubscriberConnectionsAccepted); n != 13 {
		t.Errorf("subscriber_connections_accepted = %d, want 13", n)
	}
}

// TestAcceptByteByByte: a request sent one byte per segment, and one split
// at every position, is read as a whole; input after it is ignored.
func TestAcceptByteByByte(t *testing.T) {
	ts := startAccept(t, nil, aWait, 8192)
	req := "GET /push/h/simplepoll/c HTTP/1.1\r\nHost: x\r\nUser-Agent: test\r\n\r\n"
	want := ts.exchange(req)
	if !strings.HasPrefix(want, simplepollPrefix) {
		t.Fatalf("got %q", want)
	}
	nc := ts.dial()
	nc.(*net.TCPConn).SetNoDelay(true)
	for i := range len(req) {
		if _, err := nc.Write([]byte{req[i]}); err != nil {
			t.Fatalf("write byte %d: %v", i, err)
		}
		time.Sleep(time.Millisecond)
	}
	if got, _ := io.ReadAll(nc); string(got) != want {
		t.Errorf("byte by byte: got %q, want %q", got, want)
	}
	for i := 1; i < len(req); i++ {
		nc := ts.dial()
		nc.(*net.TCPConn).SetNoDelay(true)
		io.WriteString(nc, req[:i])
		time.Sleep(time.Millisecond)
		io.WriteString(nc, req[i:]+"GET /trailing HTTP/1.1\r\n")
		if got, _ := io.ReadAll(nc); string(got) != want {
			t.Errorf("split at %d: got %q, want %q", i, got, want)
		}
	}
}

// TestAcceptSlowClients: a client that sends nothing, one that stops
// halfway and one that sends a byte now and then are closed once
// RequestTimeout has passed since they connected, without an answer.
func TestAcceptSlowClients(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ts := startAccept(t, nil, timeout, 8192)
	silent, partial, drip := ts.dial(), ts.dial(), ts.dial()
	io.WriteString(partial, "GET /push/h/xhrinteractive/c HTTP/1.1\r\nHost:")
	t0 := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if _, err := drip.Write([]byte{"GET /push/h/xhrinteractive/c HTTP/1.1\r\nX: "[min(i, 40)]}); err != nil {
				return
			}
		}
	})
	for name, nc := range map[string]net.Conn{"silent": silent, "partial": partial, "drip": drip} {
		b, err := io.ReadAll(nc)
		if err != nil && !isReset(err) {
			t.Errorf("%s: read: %v", name, err)
		}
		if len(b) > 0 {
			t.Errorf("%s: got %q, want no answer", name, b)
		}
	}
	close(stop)
	wg.Wait()
	if d := time.Since(t0); d < timeout-50*time.Millisecond || d > timeout+time.Second {
		t.Errorf("closed after %v, want about %v", d, timeout)
	}
	ts.waitCurrent(0)
	if n := ts.hub.CountSubscribers("c"); n != 0 {
		t.Errorf("%d subscribers on c", n)
	}
}

// TestAcceptPanic: a panic while one connection is served is logged with
// its stack and closes that connection alone.
func TestAcceptPanic(t *testing.T) {
	rawhttp.TestHookRequest = func(r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("test panic")
		}
	}
	t.Cleanup(func() { rawhttp.TestHookRequest = nil })
	ts := startAccept(t, nil, aWait, 8192)
	stream := ts.dial()
	io.WriteString(stream, "GET /push/s/xhrinteractive/c HTTP/1.1\r\nHost: x\r\n\r\n")
	testkit.Eventually(t, "the stream to subscribe", func() bool { return ts.hub.CountSubscribers("c") == 1 })
	if got := ts.exchange("GET /panic HTTP/1.1\r\nHost: x\r\n\r\n"); got != "" {
		t.Errorf("the panicking request got %q, want the connection closed", got)
	}
	log := ts.log.String()
	if !strings.Contains(log, "panic serving a subscriber connection") || !strings.Contains(log, "test panic") ||
		!strings.Contains(log, "serveConn") {
		t.Errorf("log %q: want the panic with its stack", log)
	}
	if got := ts.exchange("GET /push/h/simplepoll/c HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(got, simplepollPrefix) {
		t.Errorf("after the panic: %q", got)
	}
	if n := ts.hub.CountSubscribers("c"); n != 1 {
		t.Errorf("the open stream was closed too: %d subscribers", n)
	}
	ts.waitCurrent(1)
}

// TestAcceptShutdown: Shutdown closes the connections still sending their
// request at once, stops accepting, and drains the subscribers.
func TestAcceptShutdown(t *testing.T) {
	ts := startAccept(t, nil, time.Minute, 8192)
	stream := ts.dial()
	io.WriteString(stream, "GET /push/s/xhrinteractive/c HTTP/1.1\r\nHost: x\r\n\r\n")
	testkit.Eventually(t, "the stream to subscribe", func() bool { return ts.hub.CountSubscribers("c") == 1 })
	var slow []net.Conn
	for i := range 5 {
		nc := ts.dial()
		io.WriteString(nc, "GET /push/h/xhrinteractive/c HTTP/1.1\r\n"[:i*5])
		slow = append(slow, nc)
	}
	testkit.Eventually(t, "every connection to be accepted", func() bool { return ts.stats.Get(stats.CurrentSubscribers) == 6 })
	if took := ts.shutdown(aWait); took > time.Second {
		t.Errorf("Shutdown took %v with clients sending their request", took)
	}
	for i, nc := range slow {
		if b, err := io.ReadAll(nc); len(b) > 0 || err != nil && !isReset(err) {
			t.Errorf("slow client %d: got %q (%v), want the connection closed", i, b, err)
		}
	}
	if b, err := io.ReadAll(stream); err != nil || !bytes.Contains(b, []byte("200 OK")) {
		t.Errorf("the stream got %q (%v), want its header and the end", b, err)
	}
	if nc, err := net.DialTimeout("tcp", ts.ln.Addr().String(), time.Second); err == nil {
		nc.Close()
		t.Errorf("the listener still accepts after Shutdown")
	}
	if n := ts.stats.Get(stats.CurrentSubscribers); n != 0 {
		t.Errorf("current_subscribers = %d after Shutdown", n)
	}
}

// flakyListener fails its first accepts as a process out of files does.
type flakyListener struct {
	net.Listener
	mu    sync.Mutex
	fails int
}

func (l *flakyListener) Accept() (net.Conn, error) {
	l.mu.Lock()
	if l.fails > 0 {
		l.fails--
		l.mu.Unlock()
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	l.mu.Unlock()
	return l.Listener.Accept()
}

// TestAcceptTemporaryErrors: accept failures for want of files are retried
// after a pause, logged once, and the listener goes on.
func TestAcceptTemporaryErrors(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ts := startAccept(t, &flakyListener{Listener: inner, fails: 4}, aWait, 8192)
	if got := ts.exchange("GET /push/h/simplepoll/c HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(got, simplepollPrefix) {
		t.Errorf("after failed accepts: %q", got)
	}
	log := ts.log.String()
	if n := strings.Count(log, "subscriber accept failed"); n != 1 {
		t.Errorf("log %q: want one line for the failures, got %d", log, n)
	}
	if !strings.Contains(log, "failures=4") {
		t.Errorf("log %q: want the recovery with the count", log)
	}
}

// TestAcceptPanicAfterOpen: a panic once the route has made the
// connection's output queue (its descriptor detached from the net.Conn)
// shuts that socket down, so that the watcher closes it by the usual path:
// the client sees the end, and the counters and the hub let it go.
func TestAcceptPanicAfterOpen(t *testing.T) {
	testHookOpened = func(c conn, _ *outq.Conn) {
		if cl, ok := c.(*client); ok && cl.hostID == "boom" {
			panic("test panic after open")
		}
	}
	t.Cleanup(func() { testHookOpened = nil })
	ts := startAccept(t, nil, aWait, 8192)
	nc := ts.dial()
	io.WriteString(nc, "GET /push/boom/xhrinteractive/c HTTP/1.1\r\nHost: x\r\n\r\n")
	nc.SetReadDeadline(time.Now().Add(aWait))
	if b, err := io.ReadAll(nc); err != nil {
		t.Errorf("the client read %q and %v, want the end of the stream", b, err)
	}
	if !strings.Contains(ts.log.String(), "test panic after open") {
		t.Errorf("the panic was not logged")
	}
	ts.waitCurrent(0)
	if n := ts.hub.CountSubscribers("c"); n != 0 {
		t.Errorf("%d subscribers on c after the panic", n)
	}
}

// TestWebSocketClosedBeforeRegistered: a WebSocket whose connection closes
// between its output queue and its registration (a reset right after the
// 101) does not stay registered: Shutdown does not wait for it.
func TestWebSocketClosedBeforeRegistered(t *testing.T) {
	var ts *acceptServer
	testHookOpened = func(c conn, q *outq.Conn) {
		if _, ok := c.(*wsConn); ok {
			q.Close(reason.RemoteClosed)
			// Let its close hook run before the route registers it.
			deadline := time.Now().Add(aWait)
			for ts.stats.Get(stats.CurrentSubscribers) != 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
	}
	t.Cleanup(func() { testHookOpened = nil })
	ts = startAccept(t, nil, aWait, 8192)
	nc := ts.dial()
	io.WriteString(nc, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	nc.SetReadDeadline(time.Now().Add(aWait))
	io.ReadAll(nc)
	ts.waitCurrent(0)
	testkit.Eventually(t, "no registered connection", func() bool {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		return len(ts.conns) == 0
	})
}

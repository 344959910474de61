package outq

import (
	"bytes"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"go.uber.org/goleak"

	"github.com/meteorpush/meteor/internal/reason"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const wait = 5 * time.Second

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (server, client net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return server, client
}

// closes records OnClose calls.
type closes struct {
	n      atomic.Int32
	reason atomic.Uint32
	bytes  atomic.Int64
	done   chan struct{}
}

func newCloses() *closes { return &closes{done: make(chan struct{}, 16)} }

func (c *closes) fn(r reason.Reason, written int64) {
	c.n.Add(1)
	c.reason.Store(uint32(r))
	c.bytes.Store(written)
	c.done <- struct{}{}
}

func (c *closes) wait(t *testing.T, want reason.Reason) {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(wait):
		t.Fatalf("OnClose not called; want %v", want)
	}
	if got := reason.Reason(c.reason.Load()); got != want {
		t.Fatalf("closed as %v, want %v", got, want)
	}
}

// waitGroup reports whether wg reaches zero within d.
func waitGroup(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// sides runs f on both kinds of Conn: one that stays a net.Conn in Go's
// network poller (no Watcher), and one whose descriptor is detached and
// watched by a Watcher's epoll set (Linux), which writes, flushes and
// closes by other code.
func sides(t *testing.T, f func(t *testing.T, w *Watcher)) {
	t.Run("net", func(t *testing.T) { f(t, nil) })
	t.Run("detached", func(t *testing.T) { f(t, newWatcher(t)) })
}

// newWatcher returns a Watcher that is closed when the test ends.
func newWatcher(t *testing.T) *Watcher {
	t.Helper()
	w, err := NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// checkSide fails when q is not the kind of Conn that sides asked for.
func checkSide(t *testing.T, q *Conn, w *Watcher) {
	t.Helper()
	if detached := q.net == nil; detached != (w != nil && runtime.GOOS == "linux") {
		t.Fatalf("detached = %v with Watcher %v", detached, w != nil)
	}
}

func TestDirectWrite(t *testing.T) { sides(t, testDirectWrite) }

func testDirectWrite(t *testing.T, w *Watcher) {
	s, c := tcpPair(t)
	var g sync.WaitGroup
	cl := newCloses()
	q := New(s, Options{Group: &g, OnClose: cl.fn, Watcher: w})
	checkSide(t, q, w)
	if !q.Write([]byte("hello ")) || !q.Write(nil) || !q.Write([]byte("world")) {
		t.Fatal("Write refused on an open connection")
	}
	// Small writes go straight to the socket: no flusher goroutine. (Read
	// the flag rather than wait on g: a waiter left running would race
	// with the Add of the close below.)
	q.mu.Lock()
	flushing := q.flushing
	q.mu.Unlock()
	if flushing {
		t.Errorf("a flusher is running after small writes")
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 11)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello world" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if q.Closed() || q.Reason() != reason.None {
		t.Errorf("Closed %v, Reason %v on an open connection", q.Closed(), q.Reason())
	}
	q.CloseAfter([]byte("!"), reason.ResponseComplete)
	cl.wait(t, reason.ResponseComplete)
	if b, err := io.ReadAll(c); err != nil || string(b) != "!" {
		t.Errorf("after CloseAfter read %q, %v", b, err)
	}
	if cl.bytes.Load() != 12 {
		t.Errorf("OnClose written = %d, want 12", cl.bytes.Load())
	}
	if q.Write([]byte("late")) {
		t.Errorf("Write after close accepted")
	}
	if !waitGroup(&g, wait) {
		t.Errorf("goroutines still running")
	}
}

// fill writes chunks of size until Write refuses or total bytes were
// written, and returns what was accepted.
func fill(q *Conn, size, total int) []byte {
	var all []byte
	for i := 0; len(all) < total; i++ {
		b := bytes.Repeat([]byte{byte('a' + i%26)}, size)
		if !q.Write(b) {
			break
		}
		all = append(all, b...)
	}
	return all
}

func TestQueueWhenPeerDoesNotRead(t *testing.T) { sides(t, testQueueWhenPeerDoesNotRead) }

func testQueueWhenPeerDoesNotRead(t *testing.T, w *Watcher) {
	s, c := tcpPair(t)
	var g sync.WaitGroup
	cl := newCloses()
	q := New(s, Options{Limit: 64 << 20, Group: &g, OnClose: cl.fn, Watcher: w})
	checkSide(t, q, w)
	t0 := time.Now()
	sent := fill(q, 64<<10, 24<<20)
	if len(sent) != 24<<20 {
		t.Fatalf("Write refused after %d bytes", len(sent))
	}
	if d := time.Since(t0); d > 2*time.Second {
		t.Errorf("writing into a full socket took %v: Write blocked", d)
	}
	if waitGroup(&g, 50*time.Millisecond) {
		t.Errorf("no flusher running while the queue is full")
	}
	q.CloseAfter([]byte("end"), reason.MaxMessagesReached)
	c.SetReadDeadline(time.Now().Add(wait))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, append(sent, "end"...)) {
		t.Fatalf("peer read %d bytes (err %v), want %d in order", len(got), err, len(sent)+3)
	}
	cl.wait(t, reason.MaxMessagesReached)
	if n := cl.bytes.Load(); n != int64(len(sent)+3) {
		t.Errorf("written = %d, want %d", n, len(sent)+3)
	}
	if !waitGroup(&g, wait) {
		t.Errorf("flusher still running")
	}
}

// TestWriteCopyReusedBuffer writes with WriteCopy from one buffer that is
// overwritten after every call, into a socket that fills up: what the
// peer reads must be what each call was given, so the part that was
// queued must have been copied.
func TestWriteCopyReusedBuffer(t *testing.T) { sides(t, testWriteCopyReusedBuffer) }

func testWriteCopyReusedBuffer(t *testing.T, w *Watcher) {
	s, c := tcpPair(t)
	var g sync.WaitGroup
	q := New(s, Options{Limit: 64 << 20, Group: &g, Watcher: w})
	checkSide(t, q, w)
	buf := make([]byte, 64<<10)
	var sent []byte
	for i := 0; len(sent) < 16<<20; i++ {
		for k := range buf {
			buf[k] = byte('a' + i%26)
		}
		if !q.WriteCopy(buf) {
			t.Fatalf("WriteCopy refused after %d bytes", len(sent))
		}
		sent = append(sent, buf...)
	}
	if waitGroup(&g, 50*time.Millisecond) {
		t.Fatalf("no flusher running: the socket never filled, nothing was queued")
	}
	for k := range buf {
		buf[k] = '!'
	}
	q.CloseAfter(nil, reason.MaxMessagesReached)
	c.SetReadDeadline(time.Now().Add(wait))
	got, err := io.ReadAll(c)
	if err != nil || !bytes.Equal(got, sent) {
		i := 0
		for i < len(got) && i < len(sent) && got[i] == sent[i] {
			i++
		}
		t.Fatalf("peer read %d bytes (err %v), want %d; first difference at %d", len(got), err, len(sent), i)
	}
	if !waitGroup(&g, wait) {
		t.Errorf("flusher still running")
	}
}

func TestSlowConsumer(t *testing.T) { sides(t, testSlowConsumer) }

func testSlowConsumer(t *testing.T, w *Watcher) {
	s, _ := tcpPair(t)
	var g sync.WaitGroup
	cl := newCloses()
	q := New(s, Options{Limit: 1 << 20, Group: &g, OnClose: cl.fn, Watcher: w})
	checkSide(t, q, w)
	sent := fill(q, 32<<10, 256<<20)
	if len(sent) >= 256<<20 {
		t.Fatalf("never refused")
	}
	cl.wait(t, reason.SlowConsumer)
	if q.Reason() != reason.SlowConsumer || !q.Closed() {
		t.Errorf("Reason %v", q.Reason())
	}
	q.Close(reason.WriteFailed)
	q.CloseAfter(nil, reason.ResponseComplete)
	if !waitGroup(&g, wait) {
		t.Errorf("goroutines still running")
	}
	if n := cl.n.Load(); n != 1 {
		t.Errorf("OnClose ran %d times", n)
	}
}

func TestWriteTimeout(t *testing.T) { sides(t, testWriteTimeout) }

func testWriteTimeout(t *testing.T, w *Watcher) {
	s, _ := tcpPair(t)
	var g sync.WaitGroup
	cl := newCloses()
	q := New(s, Options{Limit: 256 << 20, Timeout: 300 * time.Millisecond, Group: &g, OnClose: cl.fn, Watcher: w})
	checkSide(t, q, w)
	t0 := time.Now()
	fill(q, 64<<10, 32<<20)
	cl.wait(t, reason.WriteStuck)
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("closed after %v with a 300 ms timeout", d)
	}
	if !waitGroup(&g, wait) {
		t.Errorf("goroutines still running")
	}
}

// TestCloseAfterStuck: CloseAfter on a peer that never reads closes after
// the write timeout rather than never.
func TestCloseAfterStuck(t *testing.T) { sides(t, testCloseAfterStuck) }

func testCloseAfterStuck(t *testing.T, w *Watcher) {
	s, _ := tcpPair(t)
	var g sync.WaitGroup
	cl := newCloses()
	q := New(s, Options{Limit: 256 << 20, Timeout: 200 * time.Millisecond, Group: &g, OnClose: cl.fn, Watcher: w})
	checkSide(t, q, w)
	fill(q, 64<<10, 32<<20)
	q.CloseAfter([]byte("bye"), reason.ServerShutdown)
	cl.wait(t, reason.WriteStuck)
	if !waitGroup(&g, wait) {
		t.Errorf("goroutines still running")
	}
}

func TestOnCloseOnce(t *testing.T) {
	s, c := tcpPair(t)
	var g sync.WaitGroup
	cl := newCloses()
	w := newWatcher(t)
	q := New(s, Options{Group: &g, OnClose: cl.fn, Watcher: w})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch i % 3 {
			case 0:
				q.Close(reason.ServerShutdown)
			case 1:
				q.CloseAfter([]byte("x"), reason.ResponseComplete)
			case 2:
				q.Write([]byte("y"))
			}
		}()
	}
	c.Close()
	wg.Wait()
	if !waitGroup(&g, wait) {
		t.Fatalf("goroutines still running")
	}
	if n := cl.n.Load(); n != 1 {
		t.Errorf("OnClose ran %d times", n)
	}
}

// TestWatcherRemoteClose: a peer that hangs up is noticed without a write.
func TestWatcherRemoteClose(t *testing.T) {
	w := newWatcher(t)
	var g sync.WaitGroup
	type pair struct {
		q  *Conn
		c  net.Conn
		cl *closes
	}
	var ps []pair
	for range 5 {
		s, c := tcpPair(t)
		cl := newCloses()
		ps = append(ps, pair{New(s, Options{Group: &g, OnClose: cl.fn, Watcher: w}), c, cl})
	}
	// Closing one peer closes that Conn only.
	ps[2].c.Close()
	ps[2].cl.wait(t, reason.RemoteClosed)
	for i, p := range ps {
		if i != 2 && p.q.Closed() {
			t.Errorf("conn %d closed too", i)
		}
	}
	// A peer that sends data is not taken for one that hung up.
	ps[0].c.Write([]byte("GET / HTTP/1.1\r\n\r\n"))
	time.Sleep(50 * time.Millisecond) // nothing must happen: give it the chance
	if ps[0].q.Closed() {
		t.Errorf("conn closed on input")
	}
	// Conns closed by the server end their watch; the fd may be reused.
	for _, p := range ps {
		p.q.Close(reason.ServerShutdown)
	}
	if !waitGroup(&g, wait) {
		t.Errorf("goroutines still running")
	}
	for i, p := range ps {
		if i != 2 && p.cl.n.Load() != 1 {
			t.Errorf("conn %d: OnClose ran %d times", i, p.cl.n.Load())
		}
	}
}

// TestNoFileDescriptor: a net.Conn without one (net.Pipe) goes through the
// flusher and the reading watcher.
func TestNoFileDescriptor(t *testing.T) {
	s, c := net.Pipe()
	defer c.Close()
	w := newWatcher(t)
	var g sync.WaitGroup
	cl := newCloses()
	q := New(s, Options{Group: &g, OnClose: cl.fn, Watcher: w, Timeout: time.Second})
	q.Write([]byte("abc"))
	q.Write([]byte("def"))
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 6)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "abcdef" {
		t.Fatalf("read %q, %v", buf, err)
	}
	c.Close()
	cl.wait(t, reason.RemoteClosed)
	if !waitGroup(&g, wait) {
		t.Errorf("goroutines still running")
	}
}

// TestOpenShared: Conns opened on one Options share it, and its
// OnOwnerClose is told, once, which owner's connection closed.
func TestOpenShared(t *testing.T) {
	sides(t, func(t *testing.T, w *Watcher) {
		var g sync.WaitGroup
		var mu sync.Mutex
		got := map[any]reason.Reason{}
		n := 0
		opts := &Options{Group: &g, Watcher: w, OnOwnerClose: func(owner any, r reason.Reason, _ int64) {
			mu.Lock()
			got[owner] = r
			n++
			mu.Unlock()
		}}
		s1, _ := tcpPair(t)
		s2, c2 := tcpPair(t)
		a, b := Open(s1, opts, "a"), Open(s2, opts, "b")
		checkSide(t, a, w)
		if a.opts != opts || b.opts != opts {
			t.Errorf("Open copied its Options")
		}
		a.Close(reason.ServerShutdown)
		a.Close(reason.WriteFailed)
		b.Close(reason.SlowConsumer)
		c2.Close()
		if !waitGroup(&g, wait) {
			t.Fatal("goroutines still running")
		}
		mu.Lock()
		defer mu.Unlock()
		if n != 2 || got["a"] != reason.ServerShutdown || got["b"] != reason.SlowConsumer {
			t.Errorf("OnOwnerClose calls %d: %v", n, got)
		}
	})
}

// TestIdleFootprint: an idle Conn stays within its size class; the queue
// and the flusher's state are in backlog, made only when the socket fills.
func TestIdleFootprint(t *testing.T) {
	if n := unsafe.Sizeof(Conn{}); n > 80 {
		t.Errorf("Conn is %d bytes, more than 80", n)
	}
	s, c := tcpPair(t)
	q := New(s, Options{})
	defer q.Close(reason.ServerShutdown)
	q.Write([]byte("x"))
	c.SetReadDeadline(time.Now().Add(wait))
	io.ReadFull(c, make([]byte, 1))
	q.mu.Lock()
	b := q.b
	q.mu.Unlock()
	if b != nil {
		t.Errorf("a backlog was made for a write the socket took whole")
	}
}

//go:build linux

package outq

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/reason"
)

// openFiles returns the number of open descriptors of the process.
func openFiles(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip(err)
	}
	return len(ents)
}

// TestDetached: a watched connection leaves Go's network poller: the
// net.Conn is closed at once, the socket stays open through one
// descriptor (no more than before), and writes and the close still reach
// the peer.
func TestDetached(t *testing.T) {
	s, c := tcpPair(t)
	w := newWatcher(t)
	var g sync.WaitGroup
	cl := newCloses()
	before := openFiles(t)
	q := New(s, Options{Group: &g, OnClose: cl.fn, Watcher: w})
	if q.net != nil || q.fd < 0 {
		t.Fatalf("not detached: net %v, fd %d", q.net, q.fd)
	}
	if _, err := s.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("the net.Conn still writes after Open (err %v): it was not closed", err)
	}
	if n := openFiles(t); n != before {
		t.Errorf("%d open descriptors after Open, %d before", n, before)
	}
	if !q.Write([]byte("hello")) {
		t.Fatal("Write refused")
	}
	q.CloseAfter([]byte(" bye"), reason.ResponseComplete)
	c.SetReadDeadline(time.Now().Add(wait))
	if b, err := io.ReadAll(c); err != nil || string(b) != "hello bye" {
		t.Errorf("peer read %q, %v; want the bytes and then EOF", b, err)
	}
	cl.wait(t, reason.ResponseComplete)
	if !waitGroup(&g, wait) {
		t.Errorf("goroutines still running")
	}
	if n := openFiles(t); n != before-1 {
		t.Errorf("%d open descriptors after the close, want %d", n, before-1)
	}
}

// TestHangUpAfterFlush: once a flusher has drained a full socket, the
// registration asks for hang-ups again (EPOLLONESHOT disarms it after the
// writability event), so a peer that then hangs up is still noticed.
func TestHangUpAfterFlush(t *testing.T) {
	s, c := tcpPair(t)
	// A fixed receive buffer: with autotuning (net.ipv4.tcp_rmem up to 32
	// MiB here) the peer's buffer grows after round 0 until round 1's 16
	// MiB fit in it and the socket never fills.
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetReadBuffer(256 << 10)
	}
	w := newWatcher(t)
	var g sync.WaitGroup
	cl := newCloses()
	q := New(s, Options{Limit: 64 << 20, Group: &g, OnClose: cl.fn, Watcher: w})
	checkSide(t, q, w)
	for round := range 2 {
		sent := fill(q, 64<<10, 16<<20)
		q.mu.Lock()
		flushing := q.flushing
		q.mu.Unlock()
		if !flushing {
			t.Fatalf("round %d: no flusher: the socket never filled", round)
		}
		c.SetReadDeadline(time.Now().Add(wait))
		if _, err := io.ReadFull(c, make([]byte, len(sent))); err != nil {
			t.Fatalf("round %d: peer read: %v", round, err)
		}
		deadline := time.Now().Add(wait)
		for {
			q.mu.Lock()
			flushing = q.flushing
			q.mu.Unlock()
			if !flushing {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("round %d: flusher still running with everything read", round)
			}
			time.Sleep(time.Millisecond)
		}
	}
	c.Close()
	cl.wait(t, reason.RemoteClosed)
	if !waitGroup(&g, wait) {
		t.Errorf("goroutines still running")
	}
}

// TestHangUpWhileFlushing: a peer that hangs up while its queue waits for
// room ends the flusher at once, not after the write timeout.
func TestHangUpWhileFlushing(t *testing.T) {
	s, c := tcpPair(t)
	w := newWatcher(t)
	var g sync.WaitGroup
	cl := newCloses()
	q := New(s, Options{Limit: 64 << 20, Timeout: time.Minute, Group: &g, OnClose: cl.fn, Watcher: w})
	checkSide(t, q, w)
	fill(q, 64<<10, 16<<20)
	c.Close()
	select {
	case <-cl.done:
	case <-time.After(wait):
		t.Fatal("not closed after the peer hung up")
	}
	if r := q.Reason(); r != reason.RemoteClosed && r != reason.WriteFailed {
		t.Errorf("closed as %v", r)
	}
	if !waitGroup(&g, wait) {
		t.Errorf("flusher still running")
	}
}

// TestStaleEvent: an event for a descriptor that was closed and then
// reused by another connection does not reach the new one.
func TestStaleEvent(t *testing.T) {
	w := newWatcher(t)
	s1, _ := tcpPair(t)
	a := New(s1, Options{Watcher: w})
	fd, gen := a.fd, a.gen
	a.Close(reason.ServerShutdown)
	s2, _ := tcpPair(t)
	b := New(s2, Options{Watcher: w})
	defer b.Close(reason.ServerShutdown)
	if b.fd != fd {
		t.Skipf("the descriptor was not reused (%d, then %d)", fd, b.fd)
	}
	w.mu.Lock()
	stale, current := w.lookup(fd, gen), w.lookup(fd, b.gen)
	w.mu.Unlock()
	if stale != nil || current != b || b.gen == gen {
		t.Errorf("lookup(old) = %p, lookup(new) = %p (b %p); generations %d, %d", stale, current, b, gen, b.gen)
	}
}

// TestShutdownSeenAsHangUp: Shutdown leaves the Conn open; its watcher
// closes it as a hang-up, once.
func TestShutdownSeenAsHangUp(t *testing.T) {
	s, c := tcpPair(t)
	w := newWatcher(t)
	var g sync.WaitGroup
	cl := newCloses()
	q := New(s, Options{Group: &g, OnClose: cl.fn, Watcher: w})
	checkSide(t, q, w)
	q.Write([]byte("a"))
	q.Shutdown()
	cl.wait(t, reason.RemoteClosed)
	c.SetReadDeadline(time.Now().Add(wait))
	if b, _ := io.ReadAll(c); !bytes.Equal(b, []byte("a")) {
		t.Errorf("peer read %q", b)
	}
	if !waitGroup(&g, wait) {
		t.Errorf("goroutines still running")
	}
	if n := cl.n.Load(); n != 1 {
		t.Errorf("OnClose ran %d times", n)
	}
}

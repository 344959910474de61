//go:build linux

package outq

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/reason"
)

// Registration masks as /proc reports them (the kernel adds EPOLLHUP and
// EPOLLERR to every registration), without EPOLLONESHOT.
const (
	maskFatal  = syscall.EPOLLHUP | syscall.EPOLLERR
	maskHangup = maskFatal | syscall.EPOLLRDHUP
	maskRead   = maskHangup | syscall.EPOLLIN
	maskOut    = syscall.EPOLLOUT
)

// epollEvents returns what q's registration with w asks for now, from the
// epoll set's fdinfo, without EPOLLONESHOT: 0 when an event disarmed it.
func epollEvents(t *testing.T, w *Watcher, q *Conn) uint32 {
	t.Helper()
	q.mu.Lock()
	fd := q.fd
	q.mu.Unlock()
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", w.epfd))
	if err != nil {
		t.Skip(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "tfd:" && f[1] == strconv.Itoa(int(fd)) && f[2] == "events:" {
			v, err := strconv.ParseUint(f[3], 16, 32)
			if err != nil {
				t.Fatalf("fdinfo line %q: %v", line, err)
			}
			return uint32(v) &^ syscall.EPOLLONESHOT
		}
	}
	t.Fatalf("descriptor %d not in the epoll set", fd)
	return 0
}

// wantEvents fails when q's registration does not ask for want.
func wantEvents(t *testing.T, w *Watcher, q *Conn, want uint32, when string) {
	t.Helper()
	if got := epollEvents(t, w, q); got != want {
		t.Fatalf("%s: registration asks for %#x, want %#x", when, got, want)
	}
}

// waitFor waits until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// locked returns f's result under q.mu.
func locked[T any](q *Conn, f func() T) T {
	q.mu.Lock()
	defer q.mu.Unlock()
	return f()
}

// TestReadableEvents: the registration asks for input from Open, for the
// fatal events only while the owner holds an input event, and for input
// again after WatchRead; without OnReadable it asks for hang-ups as before.
func TestReadableEvents(t *testing.T) {
	w := newWatcher(t)
	s0, _ := tcpPair(t)
	q0 := New(s0, Options{Watcher: w})
	defer q0.Close(reason.ServerShutdown)
	wantEvents(t, w, q0, maskHangup, "without OnReadable")

	s, c := tcpPair(t)
	var g sync.WaitGroup
	rd := newReadiness()
	q := New(s, Options{Group: &g, OnReadable: rd.fn, Watcher: w})
	checkSide(t, q, w)
	wantEvents(t, w, q, maskRead, "after Open")
	c.Write([]byte("x"))
	rd.wait(t)
	// Re-armed by the loop before OnReadable started.
	wantEvents(t, w, q, maskFatal, "in OnReadable")
	if got, err := readAvailable(q); err != ErrWouldBlock || string(got) != "x" {
		t.Fatalf("read %q, %v", got, err)
	}
	if err := q.WatchRead(); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, w, q, maskRead, "after WatchRead")
	q.Close(reason.ServerShutdown)
	if !waitGroup(&g, wait) {
		t.Errorf("goroutines still running")
	}
}

// TestReadableReset: a peer that resets the connection closes it as
// reason.RemoteClosed, whether the owner waits for input or holds some
// it has not re-armed from yet.
func TestReadableReset(t *testing.T) {
	for _, input := range []bool{false, true} {
		t.Run(fmt.Sprintf("input=%v", input), func(t *testing.T) {
			s, c := tcpPair(t)
			w := newWatcher(t)
			var g sync.WaitGroup
			cl := newCloses()
			rd := newReadiness()
			q := New(s, Options{Group: &g, OnClose: cl.fn, OnReadable: rd.fn, Watcher: w})
			checkSide(t, q, w)
			if input {
				c.Write([]byte("x"))
				rd.wait(t)
			}
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
			cl.wait(t, reason.RemoteClosed)
			if !input && rd.n.Load() != 0 {
				t.Errorf("OnReadable called for a reset")
			}
			if _, err := q.Read(make([]byte, 8)); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Read after the reset = %v, want net.ErrClosed", err)
			}
			if !waitGroup(&g, wait) {
				t.Errorf("goroutines still running")
			}
		})
	}
}

// TestReadableShutdown: Shutdown still closes a Conn with OnReadable as a
// hang-up, also while its owner holds an input event.
func TestReadableShutdown(t *testing.T) {
	s, c := tcpPair(t)
	w := newWatcher(t)
	var g sync.WaitGroup
	cl := newCloses()
	rd := newReadiness()
	q := New(s, Options{Group: &g, OnClose: cl.fn, OnReadable: rd.fn, Watcher: w})
	checkSide(t, q, w)
	c.Write([]byte("x"))
	rd.wait(t)
	q.Shutdown()
	cl.wait(t, reason.RemoteClosed)
	if !waitGroup(&g, wait) {
		t.Errorf("goroutines still running")
	}
}

// TestReadableWhileFlushing: one registration carries both the owner's
// read interest and the flusher's write interest. Input is reported while
// the flusher waits for room, re-arming keeps asking for room, and the
// flusher gets its room after WatchRead in between.
func TestReadableWhileFlushing(t *testing.T) {
	s, c := tcpPair(t)
	w := newWatcher(t)
	var g sync.WaitGroup
	cl := newCloses()
	rd := newReadiness()
	q := New(s, Options{Limit: 64 << 20, Timeout: time.Minute, Group: &g, OnClose: cl.fn, OnReadable: rd.fn, Watcher: w})
	checkSide(t, q, w)
	sent := fill(q, 64<<10, 16<<20)
	if len(sent) != 16<<20 {
		t.Fatalf("Write refused after %d bytes", len(sent))
	}
	waitFor(t, "the flusher waits for room", func() bool { return locked(q, func() bool { return q.outWait }) })
	wantEvents(t, w, q, maskRead|maskOut, "flusher waiting")

	for _, in := range []string{"ping", "pong"} {
		c.Write([]byte(in))
		rd.wait(t)
		wantEvents(t, w, q, maskFatal|maskOut, "input held by the owner")
		if got, err := readFor(t, q, rd, len(in)); err != nil || string(got) != in {
			t.Fatalf("read %q, %v", got, err)
		}
		if err := q.WatchRead(); err != nil {
			t.Fatal(err)
		}
		wantEvents(t, w, q, maskRead|maskOut, "after WatchRead")
		if !locked(q, func() bool { return q.flushing }) {
			t.Fatal("the flusher ended with the peer not reading")
		}
	}

	// The peer reads: the flusher is told of room and writes the rest, in
	// well under its minute of timeout.
	c.SetReadDeadline(time.Now().Add(wait))
	got := make([]byte, len(sent))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, sent) {
		t.Fatalf("peer read: %v (equal %v)", err, bytes.Equal(got, sent))
	}
	waitFor(t, "the flusher ends", func() bool { return !locked(q, func() bool { return q.flushing }) })
	wantEvents(t, w, q, maskRead, "flusher done")

	c.Close()
	rd.wait(t)
	if got, err := readFor(t, q, rd, 1); err != io.EOF || len(got) != 0 {
		t.Fatalf("read %q, %v; want io.EOF", got, err)
	}
	q.Close(reason.RemoteClosed)
	cl.wait(t, reason.RemoteClosed)
	if n := cl.bytes.Load(); n != int64(len(sent)) {
		t.Errorf("written = %d, want %d", n, len(sent))
	}
	if !waitGroup(&g, wait) {
		t.Errorf("goroutines still running")
	}
}

// TestReadableWithRoom: an event with both input and room does both: it
// starts OnReadable and wakes the flusher, which re-arms for room, and not
// for input, which the owner now holds. (The event is made up: the loop's
// handler is called as the loop calls it.)
func TestReadableWithRoom(t *testing.T) {
	s, _ := tcpPair(t)
	w := newWatcher(t)
	var g sync.WaitGroup
	rd := newReadiness()
	q := New(s, Options{Limit: 64 << 20, Timeout: time.Minute, Group: &g, OnReadable: rd.fn, Watcher: w})
	checkSide(t, q, w)
	fill(q, 64<<10, 16<<20)
	waitFor(t, "the flusher waits for room", func() bool { return locked(q, func() bool { return q.outWait }) })
	q.readable(true)
	rd.wait(t)
	if locked(q, func() bool { return q.readArmed }) {
		t.Errorf("still armed for input after OnReadable")
	}
	waitFor(t, "the flusher re-arms without input", func() bool { return epollEvents(t, w, q) == maskFatal|maskOut })
	q.Close(reason.ServerShutdown)
	if !waitGroup(&g, wait) {
		t.Errorf("goroutines still running")
	}
}

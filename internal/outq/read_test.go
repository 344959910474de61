package outq

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/reason"
)

// readiness records the OnReadable calls of one Conn.
type readiness struct {
	n  atomic.Int32
	ch chan struct{}
}

func newReadiness() *readiness { return &readiness{ch: make(chan struct{}, 64)} }

func (r *readiness) fn(any) {
	r.n.Add(1)
	r.ch <- struct{}{}
}

// wait waits for the next OnReadable.
func (r *readiness) wait(t *testing.T) {
	t.Helper()
	select {
	case <-r.ch:
	case <-time.After(wait):
		t.Fatal("OnReadable not called")
	}
}

// none fails when OnReadable is called within a short while.
func (r *readiness) none(t *testing.T, why string) {
	t.Helper()
	select {
	case <-r.ch:
		t.Fatalf("OnReadable called %s", why)
	case <-time.After(50 * time.Millisecond): // nothing must happen: give it the chance
	}
}

// readAvailable reads q, in small reads, until Read returns an error,
// which it returns with the bytes.
func readAvailable(q *Conn) ([]byte, error) {
	var got []byte
	buf := make([]byte, 3)
	for {
		n, err := q.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return got, err
		}
	}
}

// readFor reads q as an owner does after an OnReadable, until n bytes came
// or Read returned an error other than ErrWouldBlock: on ErrWouldBlock it
// calls WatchRead and waits for the next OnReadable. It returns the bytes,
// and nil once n came (then without calling WatchRead) or the error.
func readFor(t *testing.T, q *Conn, rd *readiness, n int) ([]byte, error) {
	t.Helper()
	var got []byte
	for {
		b, err := readAvailable(q)
		got = append(got, b...)
		if err != ErrWouldBlock {
			return got, err
		}
		if len(got) >= n {
			return got, nil
		}
		if err := q.WatchRead(); err != nil {
			t.Fatalf("WatchRead: %v", err)
		}
		rd.wait(t)
	}
}

// TestReadReady: input is reported once, read without waiting, and
// reported again only after WatchRead.
func TestReadReady(t *testing.T) { sides(t, testReadReady) }

func testReadReady(t *testing.T, w *Watcher) {
	s, c := tcpPair(t)
	var g sync.WaitGroup
	cl := newCloses()
	rd := newReadiness()
	q := New(s, Options{Group: &g, OnClose: cl.fn, OnReadable: rd.fn, Watcher: w})
	checkSide(t, q, w)
	rd.none(t, "with no input")
	if n, err := q.Read(make([]byte, 8)); n != 0 || err != ErrWouldBlock {
		t.Fatalf("Read with no input = %d, %v; want ErrWouldBlock", n, err)
	}
	if n, err := q.Read(nil); n != 0 || err != nil {
		t.Errorf("Read(nil) = %d, %v", n, err)
	}

	// Input is reported once until WatchRead, however much more comes.
	c.Write([]byte("hello "))
	rd.wait(t)
	c.Write([]byte("world"))
	rd.none(t, "twice without WatchRead")
	if got, err := readFor(t, q, rd, 11); err != nil || string(got) != "hello world" {
		t.Fatalf("read %q, %v", got, err)
	}
	if _, err := q.Read(make([]byte, 8)); err != ErrWouldBlock {
		t.Fatalf("Read after all input = %v, want ErrWouldBlock", err)
	}

	// Armed with nothing to read: quiet until input comes.
	if err := q.WatchRead(); err != nil {
		t.Fatal(err)
	}
	if err := q.WatchRead(); err != nil {
		t.Fatal(err)
	}
	rd.none(t, "after WatchRead with no input")
	c.Write([]byte("again"))
	rd.wait(t)
	if got, err := readFor(t, q, rd, 5); err != nil || string(got) != "again" {
		t.Fatalf("read %q, %v", got, err)
	}

	// Input left unread is reported again at WatchRead.
	if err := q.WatchRead(); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("x"))
	rd.wait(t)
	if err := q.WatchRead(); err != nil {
		t.Fatal(err)
	}
	rd.wait(t)
	if got, err := readFor(t, q, rd, 1); err != nil || string(got) != "x" {
		t.Fatalf("read %q, %v", got, err)
	}

	// Writes are not disturbed.
	if !q.Write([]byte("out")) {
		t.Fatal("Write refused")
	}
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 3)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "out" {
		t.Fatalf("peer read %q, %v", buf, err)
	}

	q.Close(reason.ServerShutdown)
	cl.wait(t, reason.ServerShutdown)
	if _, err := q.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Read after Close = %v, want net.ErrClosed", err)
	}
	if err := q.WatchRead(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("WatchRead after Close = %v, want net.ErrClosed", err)
	}
	if !waitGroup(&g, wait) {
		t.Errorf("goroutines still running")
	}
}

// TestReadEOF: input followed by the peer's FIN is read whole, then Read
// returns io.EOF; the Conn stays open until its owner closes it.
func TestReadEOF(t *testing.T) {
	sides(t, func(t *testing.T, w *Watcher) {
		for _, early := range []bool{false, true} {
			name := "after Open"
			if early {
				name = "before Open"
			}
			t.Run(name, func(t *testing.T) { testReadEOF(t, w, early) })
		}
	})
}

// testReadEOF: early sends the input and the FIN before Open, so that the
// first event carries both.
func testReadEOF(t *testing.T, w *Watcher, early bool) {
	s, c := tcpPair(t)
	var g sync.WaitGroup
	cl := newCloses()
	rd := newReadiness()
	send := func() {
		c.Write([]byte("last words"))
		c.Close()
	}
	if early {
		send()
		time.Sleep(20 * time.Millisecond) // let both reach s
	}
	q := New(s, Options{Group: &g, OnClose: cl.fn, OnReadable: rd.fn, Watcher: w})
	checkSide(t, q, w)
	if !early {
		send()
	}
	rd.wait(t)
	got, err := readFor(t, q, rd, 1<<20)
	if err != io.EOF || string(got) != "last words" {
		t.Fatalf("read %q, %v; want the input, then io.EOF", got, err)
	}
	if _, err := q.Read(make([]byte, 8)); err != io.EOF {
		t.Errorf("Read again = %v, want io.EOF", err)
	}
	// The end of the input is reported again, like input not read.
	if err := q.WatchRead(); err != nil {
		t.Fatal(err)
	}
	rd.wait(t)
	time.Sleep(20 * time.Millisecond)
	if q.Closed() || cl.n.Load() != 0 {
		t.Fatalf("closed (%v) at the peer's FIN: the owner closes", q.Reason())
	}
	q.Close(reason.RemoteClosed)
	cl.wait(t, reason.RemoteClosed)
	if !waitGroup(&g, wait) {
		t.Errorf("goroutines still running")
	}
}

// TestReadWithoutOnReadable: Read and WatchRead are refused on a Conn
// opened without OnReadable.
func TestReadWithoutOnReadable(t *testing.T) {
	sides(t, func(t *testing.T, w *Watcher) {
		s, _ := tcpPair(t)
		q := New(s, Options{Watcher: w})
		defer q.Close(reason.ServerShutdown)
		if _, err := q.Read(make([]byte, 8)); err == nil || err == ErrWouldBlock {
			t.Errorf("Read = %v, want an error", err)
		}
		if err := q.WatchRead(); err == nil {
			t.Errorf("WatchRead = nil, want an error")
		}
	})
}

// TestReadOwner: an owner that reads in OnReadable, as a WebSocket one
// does, gets a stream of small writes whole and in order, is never called
// again before it has re-armed, and closes at the end of the input.
func TestReadOwner(t *testing.T) { sides(t, testReadOwner) }

func testReadOwner(t *testing.T, w *Watcher) {
	s, c := tcpPair(t)
	var g sync.WaitGroup
	type owner struct {
		q      atomic.Pointer[Conn]
		inside atomic.Int32
		mu     sync.Mutex
		got    []byte
		done   chan struct{}
	}
	o := &owner{done: make(chan struct{})}
	opts := &Options{Group: &g, Watcher: w}
	opts.OnReadable = func(v any) {
		if v != o {
			t.Errorf("OnReadable got owner %v", v)
			return
		}
		if o.inside.Add(1) != 1 {
			t.Errorf("OnReadable called again before WatchRead")
		}
		q := o.q.Load()
		buf := make([]byte, 700)
		for {
			n, err := q.Read(buf)
			o.mu.Lock()
			o.got = append(o.got, buf[:n]...)
			o.mu.Unlock()
			switch {
			case err == ErrWouldBlock:
				o.inside.Add(-1)
				if err := q.WatchRead(); err != nil {
					t.Errorf("WatchRead: %v", err)
				}
				return
			case err == io.EOF:
				o.inside.Add(-1)
				q.Close(reason.RemoteClosed)
				close(o.done)
				return
			case err != nil:
				t.Errorf("Read: %v", err)
				return
			}
		}
	}
	q := Open(s, opts, o)
	o.q.Store(q)
	checkSide(t, q, w)

	var sent []byte
	for i := 0; len(sent) < 256<<10; i++ {
		b := bytes.Repeat([]byte{byte('a' + i%26)}, 1+rand.IntN(3000))
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, b...)
		if i%16 == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	c.(*net.TCPConn).CloseWrite()
	select {
	case <-o.done:
	case <-time.After(wait):
		t.Fatal("the owner never read the end of the input")
	}
	o.mu.Lock()
	got := o.got
	o.mu.Unlock()
	if !bytes.Equal(got, sent) {
		t.Errorf("owner read %d bytes, want the %d sent in order", len(got), len(sent))
	}
	if q.Reason() != reason.RemoteClosed {
		t.Errorf("closed as %v", q.Reason())
	}
	if !waitGroup(&g, wait) {
		t.Errorf("goroutines still running")
	}
}

// TestReadNoFileDescriptor: a net.Conn without one (net.Pipe), watched,
// is read by a goroutine for OnReadable instead of being discarded, and
// its end is the owner's to see.
func TestReadNoFileDescriptor(t *testing.T) {
	s, c := net.Pipe()
	defer c.Close()
	w := newWatcher(t)
	var g sync.WaitGroup
	cl := newCloses()
	rd := newReadiness()
	q := New(s, Options{Group: &g, OnClose: cl.fn, OnReadable: rd.fn, Watcher: w})
	if q.net == nil || q.net.r == nil {
		t.Fatal("no reading goroutine")
	}
	go c.Write([]byte("abc")) // a pipe's Write waits for the read
	rd.wait(t)
	if got, err := readFor(t, q, rd, 3); err != nil || string(got) != "abc" {
		t.Fatalf("read %q, %v", got, err)
	}
	c.Close()
	if err := q.WatchRead(); err != nil {
		t.Fatal(err)
	}
	rd.wait(t)
	if _, err := q.Read(make([]byte, 8)); err != io.EOF {
		t.Fatalf("Read after the peer closed = %v, want io.EOF", err)
	}
	if q.Closed() {
		t.Fatalf("closed as %v at the end of the input", q.Reason())
	}
	q.Close(reason.RemoteClosed)
	cl.wait(t, reason.RemoteClosed)
	if !waitGroup(&g, wait) {
		t.Errorf("goroutines still running")
	}
}

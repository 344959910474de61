// Package outq gives each subscriber connection a bounded output queue that
// never blocks the goroutine that writes into it.
//
// A write goes straight to the socket with a non-blocking system call when
// nothing is queued, which is the common case: the kernel's send buffer takes
// it and no goroutine or buffer is held for the connection. Only when the
// socket is full does the connection get a flusher goroutine, which drains
// the queue with a write deadline and exits when the queue is empty. A queue
// that grows past its byte bound, or a write that makes no progress within
// the deadline, closes that connection alone with a named Reason.
package outq

import (
	"bytes"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"
)

// Options configure a Conn.
type Options struct {
	// Limit bounds the bytes queued and not yet written; past it the
	// connection is closed as a SlowConsumer. Zero means 1 MiB.
	Limit int
	// Timeout bounds how long a write may make no progress before the
	// connection is closed as WriteStuck. Zero means 120 seconds.
	Timeout time.Duration
	// OnClose runs once, after the socket is closed, with the reason and the
	// number of bytes written. It must not block.
	OnClose func(r Reason, written int64)
	// Group, when set, tracks the flusher goroutines so that their owner
	// can wait for them.
	Group *sync.WaitGroup
	// Watcher, when set, closes the connection as RemoteClosed when the
	// peer hangs up, without a goroutine per connection.
	Watcher *Watcher
}

type state uint8

const (
	open     state = iota
	draining       // close once the queue is written
	closed
)

// Conn is one subscriber connection's output side. It is safe for
// concurrent use.
type Conn struct {
	nc   net.Conn
	rc   syscall.RawConn // nil when nc has no file descriptor
	opts Options
	stop func() // cancels the hang-up watch

	mu       sync.Mutex
	queue    net.Buffers // guarded by mu; not yet handed to the flusher
	pending  int         // guarded by mu; bytes queued or being flushed
	flushing bool        // guarded by mu; a flusher goroutine owns the socket
	state    state       // guarded by mu
	written  int64       // guarded by mu
	reason   Reason      // guarded by mu
}

// New wraps nc. The caller gives up nc: Conn closes it.
func New(nc net.Conn, opts Options) *Conn {
	if opts.Limit <= 0 {
		opts.Limit = 1 << 20
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 120 * time.Second
	}
	c := &Conn{nc: nc, opts: opts}
	if sc, ok := nc.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			c.rc = rc
		}
	}
	if opts.Watcher != nil {
		// The watch may fire before Watch returns (a peer that has already
		// hung up); holding mu makes its Close wait until stop is set.
		c.mu.Lock()
		c.stop = opts.Watcher.Watch(nc, c.rc, func() { c.Close(RemoteClosed) })
		c.mu.Unlock()
	}
	return c
}

// NetConn returns the underlying connection, for its addresses.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Write queues b for the connection and returns at once. b must not be
// modified afterwards: frames are shared between connections. Write reports
// whether the connection is still open to writes.
func (c *Conn) Write(b []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != open {
		return false
	}
	return c.writeLocked(b, false)
}

// WriteCopy is Write for a b that the caller reuses once WriteCopy
// returns (a pooled buffer): what the socket does not take at once is
// copied into the queue.
func (c *Conn) WriteCopy(b []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != open {
		return false
	}
	return c.writeLocked(b, true)
}

// writeLocked writes or queues b, a copy of it when borrowed. The caller
// holds c.mu.
func (c *Conn) writeLocked(b []byte, borrowed bool) bool {
	if len(b) == 0 {
		return true
	}
	if !c.flushing && c.rc != nil {
		// A non-blocking write cannot wait, so holding mu across it is
		// safe; it keeps frames in order without a second queue.
		n, err := c.tryWrite(b)
		c.written += int64(n)
		if err != nil {
			c.closeLocked(WriteFailed)
			return false
		}
		if n == len(b) {
			return true
		}
		b = b[n:]
	}
	if borrowed {
		b = bytes.Clone(b)
	}
	c.queue = append(c.queue, b)
	c.pending += len(b)
	if c.pending > c.opts.Limit {
		c.closeLocked(SlowConsumer)
		return false
	}
	if !c.flushing {
		c.flushing = true
		if c.opts.Group != nil {
			c.opts.Group.Add(1)
		}
		go c.flush()
	}
	return true
}

// tryWrite writes as much of b as the socket takes now.
func (c *Conn) tryWrite(b []byte) (int, error) {
	w := rawWriters.Get().(*rawWriter)
	w.b, w.n, w.err = b, 0, nil
	err := c.rc.Write(w.fn)
	n, werr := w.n, w.err
	w.b, w.err = nil, nil
	rawWriters.Put(w)
	if err != nil {
		return n, err
	}
	return n, werr
}

// rawWriter is the state of one non-blocking write. RawConn.Write takes a
// function; a closure over the write's variables would be allocated on
// every write, once per delivery, so pooled writers carry a function bound
// to them once.
type rawWriter struct {
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool
}

var rawWriters = sync.Pool{New: func() any {
	w := &rawWriter{}
	w.fn = w.write
	return w
}}

// write writes w.b[w.n:] to fd until the socket is full, and reports true:
// a non-blocking write never waits for the socket to become writable.
func (w *rawWriter) write(fd uintptr) bool {
	for {
		m, e := syscall.Write(int(fd), w.b[w.n:])
		if m > 0 {
			w.n += m
		}
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return true
		case e != nil:
			w.err = e
			return true
		case w.n == len(w.b) || m == 0:
			return true
		}
	}
}

// flush drains the queue with blocking writes bounded by the timeout.
func (c *Conn) flush() {
	if c.opts.Group != nil {
		defer c.opts.Group.Done()
	}
	for {
		c.mu.Lock()
		if c.state == closed {
			c.flushing = false
			c.mu.Unlock()
			return
		}
		if len(c.queue) == 0 {
			c.flushing = false
			if c.state == draining {
				c.closeLocked(c.reason)
			}
			c.mu.Unlock()
			return
		}
		bufs := c.queue
		c.queue = nil
		c.mu.Unlock()

		// A reader that keeps taking bytes is slow, not stuck: when the
		// deadline passes after some progress, the rest gets a new
		// deadline. Only Timeout without a single byte taken is stuck.
		var err error
		for len(bufs) > 0 && err == nil {
			var n int64
			c.nc.SetWriteDeadline(time.Now().Add(c.opts.Timeout))
			n, err = bufs.WriteTo(c.nc)
			c.mu.Lock()
			c.written += n
			c.pending -= int(n)
			c.mu.Unlock()
			var ne net.Error
			if n > 0 && errors.As(err, &ne) && ne.Timeout() {
				err = nil
			}
		}
		if err != nil {
			c.mu.Lock()
			c.flushing = false
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.closeLocked(WriteStuck)
			} else {
				c.closeLocked(WriteFailed)
			}
			c.mu.Unlock()
			return
		}
	}
}

// CloseAfter queues final (which may be empty) and closes the connection
// with reason r once everything queued has been written, or after the write
// timeout. Writes after CloseAfter are refused.
func (c *Conn) CloseAfter(final []byte, r Reason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != open {
		return
	}
	c.reason = r
	if !c.writeLocked(final, false) {
		return
	}
	if c.flushing {
		c.state = draining
		return
	}
	c.closeLocked(r)
}

// Close closes the connection at once with reason r, dropping what is queued.
func (c *Conn) Close(r Reason) {
	c.mu.Lock()
	c.closeLocked(r)
	c.mu.Unlock()
}

// closeLocked closes the socket. The caller holds c.mu.
func (c *Conn) closeLocked(r Reason) {
	if c.state == closed {
		return
	}
	c.state = closed
	c.reason = r
	c.queue = nil
	if c.stop != nil {
		c.stop()
	}
	if tc, ok := c.nc.(*net.TCPConn); ok && r != SlowConsumer && r != WriteStuck {
		// Send FIN after the data so that the client reads the end of
		// the stream rather than a reset.
		tc.CloseWrite()
	}
	c.nc.Close()
	if c.opts.OnClose != nil {
		// OnClose runs on its own goroutine: Write is called by fan-out
		// with hub locks held, and OnClose unsubscribes from the hub.
		written := c.written
		if c.opts.Group != nil {
			c.opts.Group.Add(1)
		}
		go func() {
			if c.opts.Group != nil {
				defer c.opts.Group.Done()
			}
			c.opts.OnClose(r, written)
		}()
	}
}

// Closed reports whether the connection is closed or closing.
func (c *Conn) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state != open
}

// Reason returns why the connection closed, or ReasonNone while it is open.
func (c *Conn) Reason() Reason {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == closed {
		return c.reason
	}
	return ReasonNone
}

// Package outq gives each subscriber connection a bounded output queue that
// never blocks the goroutine that writes into it.
//
// A write goes straight to the socket with a non-blocking system call when
// nothing is queued, which is the common case: the kernel's send buffer takes
// it and no goroutine or buffer is held for the connection. Only when the
// socket is full does the connection get a flusher goroutine, which drains
// the queue with a write deadline and exits when the queue is empty. A queue
// that grows past its byte bound, or a write that makes no progress within
// the deadline, closes that connection alone with a named reason (package reason).
//
// A connection watched by a Watcher (on Linux) also leaves Go's network
// poller: Conn keeps the bare file descriptor, the Watcher's epoll set
// reports both hang-ups and, for a flusher, room in the socket. An idle
// subscriber then costs no runtime poll descriptor, no net.Conn and no
// addresses, only its Conn.
//
// A connection opened with Options.OnReadable can also be read without a
// goroutine or a buffer of its own while idle: the Watcher reports input,
// OnReadable tells the owner, which reads with Conn.Read until
// ErrWouldBlock and asks for the next report with Conn.WatchRead.
package outq

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/meteorpush/meteor/internal/reason"
)

// Options configure a Conn.
type Options struct {
	// Limit bounds the bytes queued and not yet written; past it the
	// connection is closed as a reason.SlowConsumer. Zero means 1 MiB.
	Limit int
	// Timeout bounds how long a write may make no progress before the
	// connection is closed as reason.WriteStuck. Zero means 120 seconds.
	Timeout time.Duration
	// OnClose runs once, after the socket is closed, with the reason and the
	// number of bytes written. It must not block.
	OnClose func(r reason.Reason, written int64)
	// OnOwnerClose is OnClose for the connections that share these Options
	// (Open): it is told which one closed by the owner that Open was given.
	// It must not block.
	OnOwnerClose func(owner any, r reason.Reason, written int64)
	// Group, when set, tracks the flusher goroutines and the close hooks so
	// that their owner can wait for them.
	Group *sync.WaitGroup
	// Watcher, when set, closes the connection as reason.RemoteClosed when the
	// peer hangs up, without a goroutine per connection. On Linux a
	// connection with a file descriptor then leaves Go's network poller:
	// the Conn keeps a duplicate of the descriptor and closes nc.
	Watcher *Watcher
	// OnReadable, when set, is told (with the owner that Open was given)
	// that the connection has input to read, or that its input ended: the
	// owner then calls Conn.Read until it returns ErrWouldBlock (or an
	// error) and Conn.WatchRead to be told again. It is called once per
	// WatchRead: once after Open, then at most once after each WatchRead,
	// as soon as there is input (at once if input is already waiting).
	//
	// It runs on a goroutine of its own (tracked by Group), never with the
	// Conn's lock held, possibly before Open has returned: an owner that
	// needs the Conn in OnReadable must publish it with synchronisation of
	// its own. It may read, write and close the Conn; it should not block
	// for long, since Group waits for it. The connection may close while
	// it runs (OnOwnerClose may run concurrently): Read and WatchRead then
	// return net.ErrClosed.
	//
	// With OnReadable the peer's FIN is input, not a hang-up: Read returns
	// what was sent before it and then io.EOF, and the connection stays
	// open until the owner closes it. On a detached descriptor (Watcher,
	// Linux) a reset or a socket error still closes the connection as
	// reason.RemoteClosed, dropping input not read yet. On a Conn that
	// keeps its net.Conn a goroutine reads into a 512-byte buffer for the
	// owner, and every end of the input, a reset too, reaches the owner as
	// Read's error.
	OnReadable func(owner any)
}

func (o *Options) limit() int {
	if o.Limit <= 0 {
		return 1 << 20
	}
	return o.Limit
}

func (o *Options) timeout() time.Duration {
	if o.Timeout <= 0 {
		return 120 * time.Second
	}
	return o.Timeout
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
	opts  *Options // shared by the Conns of one owner; never modified
	owner any      // handed to OnOwnerClose
	// net is the connection while it is in Go's network poller; nil once
	// its descriptor is detached.
	net *netSide
	fd  int32 // the detached descriptor; -1 once closed
	// gen identifies fd's registration with opts.Watcher, so that an event
	// for a descriptor that was closed and reused is not taken for this
	// Conn's; 0 while not registered. Guarded by the Watcher's mu.
	gen uint32

	mu       sync.Mutex
	b        *backlog      // guarded by mu; made when the socket first fills
	written  int64         // guarded by mu
	flushing bool          // guarded by mu; a flusher goroutine owns the socket
	state    state         // guarded by mu
	reason   reason.Reason // guarded by mu
	// readArmed is set while the owner waits for input (OnReadable, a
	// detached descriptor): from Open and from each WatchRead until the
	// Watcher hands an input event to OnReadable. The registration asks
	// for EPOLLIN exactly while it is set. Guarded by mu.
	readArmed bool
	// outWait is set while the flusher of a detached descriptor waits for
	// room in the socket: the registration asks for EPOLLOUT exactly
	// while it is set. Guarded by mu.
	outWait bool
}

// backlog is the part of a Conn that only one whose socket has filled up
// uses: an idle connection, or one that keeps up, does not carry it.
type backlog struct {
	queue   net.Buffers   // not yet written
	pending int           // bytes queued or being flushed
	wake    chan struct{} // detached: the flusher's
}

// netSide is the state of a Conn whose socket stays a net.Conn: one that
// is not watched, one without a descriptor, or one outside Linux.
type netSide struct {
	nc   net.Conn
	rc   syscall.RawConn // nil when nc has no file descriptor
	stop func()          // ends a watch by reading; nil when not watched
	r    *reader         // reads for OnReadable; nil without it
}

// reader is the state of the goroutine that reads a net.Conn for
// OnReadable. Its fields are guarded by the Conn's mu.
type reader struct {
	pending []byte // read and not yet taken by Read; within the goroutine's buffer
	err     error  // the error that ended the input, returned once pending is taken
	armed   bool   // the owner waits for OnReadable: set by WatchRead, cleared when told
	wake    chan struct{}
}

// New wraps nc. The caller gives up nc: Conn closes it (or, when it
// detaches nc's descriptor, at once).
func New(nc net.Conn, opts Options) *Conn {
	return Open(nc, &opts, nil)
}

// Open is New for connections that share opts, which must not change once
// in use: a Conn keeps only a pointer to them. owner is passed to
// opts.OnOwnerClose when the connection closes.
func Open(nc net.Conn, opts *Options, owner any) *Conn {
	c := &Conn{opts: opts, owner: owner, fd: -1}
	var rc syscall.RawConn
	if sc, ok := nc.(syscall.Conn); ok {
		if r, err := sc.SyscallConn(); err == nil {
			rc = r
		}
	}
	w := opts.Watcher
	if w != nil && rc != nil {
		if fd, ok := detach(rc); ok {
			// The Watcher's event may fire before add returns (a peer
			// that has already hung up); holding mu makes its Close wait
			// until the registration is complete.
			c.mu.Lock()
			c.fd = int32(fd)
			c.readArmed = opts.OnReadable != nil
			err := w.add(c)
			if err != nil {
				c.readArmed = false
			}
			c.mu.Unlock()
			if err == nil {
				// The socket stays open through fd: closing nc only
				// drops Go's poll descriptor, netFD and addresses.
				nc.Close()
				return c
			}
			syscall.Close(fd)
			c.fd = -1
		}
	}
	c.net = &netSide{nc: nc, rc: rc}
	switch {
	case opts.OnReadable != nil:
		r := &reader{armed: true, wake: make(chan struct{}, 1)}
		c.net.r = r
		c.net.stop = r.signal
		if opts.Group != nil {
			opts.Group.Add(1)
		}
		go c.readNet(nc, r)
	case w != nil:
		c.mu.Lock()
		c.net.stop = watchByReading(nc, func() { c.Close(reason.RemoteClosed) })
		c.mu.Unlock()
	}
	return c
}

// ErrWouldBlock is returned by Conn.Read when there is no input to read
// now: the owner calls Conn.WatchRead to be told when there is.
var ErrWouldBlock = errors.New("outq: read would block")

// errNotReadable is returned by Read and WatchRead on a Conn whose Options
// have no OnReadable.
var errNotReadable = errors.New("outq: connection opened without OnReadable")

// Read reads input that has arrived into p without waiting for more. It
// returns ErrWouldBlock when there is none, io.EOF once the peer has
// ended its input and everything before was read, another error from the
// socket, or net.ErrClosed once the Conn is closed. It is for the
// connections opened with Options.OnReadable (on others it returns an
// error); when it returns ErrWouldBlock the owner calls WatchRead.
func (c *Conn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == closed {
		return 0, net.ErrClosed
	}
	if c.opts.OnReadable == nil {
		return 0, errNotReadable
	}
	if len(p) == 0 {
		return 0, nil
	}
	if c.net != nil {
		r := c.net.r
		if len(r.pending) > 0 {
			n := copy(p, r.pending)
			r.pending = r.pending[n:]
			if len(r.pending) == 0 {
				r.pending = nil
			}
			return n, nil
		}
		if r.err != nil {
			return 0, r.err
		}
		return 0, ErrWouldBlock
	}
	// A non-blocking read does not wait, and mu keeps the descriptor
	// from being closed (and reused) under it.
	for {
		n, err := syscall.Read(int(c.fd), p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			return 0, ErrWouldBlock
		case err != nil:
			return 0, err
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// WatchRead asks for the next OnReadable: once there is input to read (at
// once if some is waiting) or the input has ended. The owner calls it
// after Read returned ErrWouldBlock; until then OnReadable is not called
// again. Calling it while already watching does nothing. It returns
// net.ErrClosed once the Conn is closed, and an error when the Watcher
// can no longer watch the connection (it was closed).
func (c *Conn) WatchRead() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == closed {
		return net.ErrClosed
	}
	if c.opts.OnReadable == nil {
		return errNotReadable
	}
	if c.net != nil {
		r := c.net.r
		if !r.armed {
			r.armed = true
			r.signal()
		}
		return nil
	}
	if c.readArmed {
		return nil
	}
	c.readArmed = true
	if err := c.opts.Watcher.arm(c); err != nil {
		c.readArmed = false
		return err
	}
	return nil
}

// signal wakes the reading goroutine: it was armed or its Conn closed.
func (r *reader) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// readNet reads nc for OnReadable, one buffer at a time: it reads when the
// owner waits for input and what it read has been taken, keeps what it
// read (or the error) for Read, and tells the owner. It ends when the Conn
// closes, which closes nc and signals r.
func (c *Conn) readNet(nc net.Conn, r *reader) {
	if c.opts.Group != nil {
		defer c.opts.Group.Done()
	}
	buf := make([]byte, 512)
	for {
		c.mu.Lock()
		for !r.armed && c.state != closed {
			c.mu.Unlock()
			<-r.wake
			c.mu.Lock()
		}
		if c.state == closed {
			c.mu.Unlock()
			return
		}
		// Like a level-triggered poller: input not taken yet, or the end
		// of it, is reported again without reading.
		if len(r.pending) == 0 && r.err == nil {
			// Not under mu: this read waits. Read does not touch buf
			// while pending is empty, and only this goroutine fills it.
			c.mu.Unlock()
			n, err := nc.Read(buf)
			c.mu.Lock()
			if c.state == closed {
				c.mu.Unlock()
				return
			}
			if n > 0 {
				r.pending = buf[:n:n]
			}
			r.err = err
			if n == 0 && err == nil {
				c.mu.Unlock()
				continue
			}
		}
		r.armed = false
		c.mu.Unlock()
		c.opts.OnReadable(c.owner)
	}
}

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
	if !c.flushing && (c.net == nil || c.net.rc != nil) {
		// A non-blocking write cannot wait, so holding mu across it is
		// safe; it keeps frames in order without a second queue.
		n, err := c.tryWrite(b)
		c.written += int64(n)
		if err != nil {
			c.closeLocked(reason.WriteFailed)
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
	if c.b == nil {
		c.b = &backlog{}
	}
	c.b.queue = append(c.b.queue, b)
	c.b.pending += len(b)
	if c.b.pending > c.opts.limit() {
		c.closeLocked(reason.SlowConsumer)
		return false
	}
	if !c.flushing {
		c.flushing = true
		if c.opts.Group != nil {
			c.opts.Group.Add(1)
		}
		if c.net == nil {
			if c.b.wake == nil {
				c.b.wake = make(chan struct{}, 1)
			}
			go c.flushFD()
		} else {
			go c.flush()
		}
	}
	return true
}

// tryWrite writes as much of b as the socket takes now.
func (c *Conn) tryWrite(b []byte) (int, error) {
	if c.net == nil {
		return writeFD(int(c.fd), b)
	}
	w := rawWriters.Get().(*rawWriter)
	w.b, w.n, w.err = b, 0, nil
	err := c.net.rc.Write(w.fn)
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

// write writes w.b to fd until the socket is full, and reports true: a
// non-blocking write never waits for the socket to become writable.
func (w *rawWriter) write(fd uintptr) bool {
	w.n, w.err = writeFD(int(fd), w.b)
	return true
}

// writeFD writes b to the non-blocking descriptor fd until it is written
// or the socket is full.
func writeFD(fd int, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, e := syscall.Write(fd, b[n:])
		if m > 0 {
			n += m
		}
		switch {
		case e == syscall.EINTR:
			continue
		case e == syscall.EAGAIN:
			return n, nil
		case e != nil:
			return n, e
		case m == 0:
			return n, nil
		}
	}
	return n, nil
}

// flush drains the queue of a net.Conn with blocking writes bounded by the
// timeout.
func (c *Conn) flush() {
	if c.opts.Group != nil {
		defer c.opts.Group.Done()
	}
	nc := c.net.nc
	for {
		c.mu.Lock()
		if c.state == closed {
			c.flushing = false
			c.mu.Unlock()
			return
		}
		if len(c.b.queue) == 0 {
			c.flushing = false
			if c.state == draining {
				c.closeLocked(c.reason)
			}
			c.mu.Unlock()
			return
		}
		bufs := c.b.queue
		c.b.queue = nil
		c.mu.Unlock()

		// A reader that keeps taking bytes is slow, not stuck: when the
		// deadline passes after some progress, the rest gets a new
		// deadline. Only Timeout without a single byte taken is stuck.
		var err error
		for len(bufs) > 0 && err == nil {
			var n int64
			nc.SetWriteDeadline(time.Now().Add(c.opts.timeout()))
			n, err = bufs.WriteTo(nc)
			c.mu.Lock()
			c.written += n
			c.b.pending -= int(n)
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
				c.closeLocked(reason.WriteStuck)
			} else {
				c.closeLocked(reason.WriteFailed)
			}
			c.mu.Unlock()
			return
		}
	}
}

// flushFD drains the queue of a detached descriptor: it writes what the
// socket takes, holding mu (a non-blocking write does not wait, and the
// descriptor cannot be closed under it), then waits for the Watcher to
// report room. Timeout without a single byte taken is stuck.
func (c *Conn) flushFD() {
	if c.opts.Group != nil {
		defer c.opts.Group.Done()
	}
	timeout := c.opts.timeout()
	t := time.NewTimer(timeout)
	defer t.Stop()
	progress := time.Now()
	for {
		c.mu.Lock()
		if c.state == closed {
			c.flushing = false
			c.mu.Unlock()
			return
		}
		n, err := c.writeQueueLocked()
		now := time.Now()
		if n > 0 {
			progress = now
		}
		switch {
		case err != nil:
			c.flushing = false
			c.closeLocked(reason.WriteFailed)
		case len(c.b.queue) == 0:
			c.flushing = false
			c.outWait = false
			if c.state == draining {
				c.closeLocked(c.reason)
			} else if err := c.opts.Watcher.arm(c); err != nil {
				c.closeLocked(reason.WriteFailed)
			}
		case now.Sub(progress) >= timeout:
			c.flushing = false
			c.closeLocked(reason.WriteStuck)
		default:
			// The registration also carries the read interest (arm
			// asks for the union): waiting for room must keep it.
			c.outWait = true
			if err := c.opts.Watcher.arm(c); err != nil {
				c.outWait = false
				c.flushing = false
				c.closeLocked(reason.WriteFailed)
				break
			}
			wake := c.b.wake
			c.mu.Unlock()
			t.Reset(progress.Add(timeout).Sub(now))
			select {
			case <-wake:
			case <-t.C:
			}
			continue
		}
		c.mu.Unlock()
		return
	}
}

// maxIovecs bounds the buffers of one writev.
const maxIovecs = 64

// writeQueueLocked writes the queue to the detached descriptor until it is
// empty or the socket is full, and returns the bytes written. The caller
// holds c.mu.
func (c *Conn) writeQueueLocked() (int, error) {
	total := 0
	for len(c.b.queue) > 0 {
		n, err := writev(int(c.fd), c.b.queue, maxIovecs)
		total += n
		c.written += int64(n)
		c.b.pending -= n
		c.consume(n)
		if err != nil {
			if err == syscall.EAGAIN {
				return total, nil
			}
			return total, err
		}
		if n == 0 {
			return total, nil
		}
	}
	return total, nil
}

// consume drops the first n bytes of the queue.
func (c *Conn) consume(n int) {
	for n > 0 && len(c.b.queue) > 0 {
		if n < len(c.b.queue[0]) {
			c.b.queue[0] = c.b.queue[0][n:]
			return
		}
		n -= len(c.b.queue[0])
		c.b.queue[0] = nil
		c.b.queue = c.b.queue[1:]
	}
	if len(c.b.queue) == 0 {
		c.b.queue = nil
	}
}

// writable wakes the flusher of a detached descriptor: the socket has room.
func (c *Conn) writable() {
	c.mu.Lock()
	c.wakeFlusherLocked()
	c.mu.Unlock()
}

// wakeFlusherLocked wakes the flusher of a detached descriptor, if any.
// The caller holds c.mu.
func (c *Conn) wakeFlusherLocked() {
	if c.b != nil && c.b.wake != nil {
		select {
		case c.b.wake <- struct{}{}:
		default:
		}
	}
}

// CloseAfter queues final (which may be empty) and closes the connection
// with reason r once everything queued has been written, or after the write
// timeout. Writes after CloseAfter are refused.
func (c *Conn) CloseAfter(final []byte, r reason.Reason) {
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
func (c *Conn) Close(r reason.Reason) {
	c.mu.Lock()
	c.closeLocked(r)
	c.mu.Unlock()
}

// Shutdown shuts the socket down in both directions without closing it or
// the Conn: a watched connection then sees a hang-up and closes as
// reason.RemoteClosed by its own path (one with OnReadable that keeps its
// net.Conn: its owner reads io.EOF). It is for a caller that cannot know how far
// the connection's owner got (a recovered panic).
func (c *Conn) Shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == closed {
		return
	}
	if c.net == nil {
		syscall.Shutdown(int(c.fd), syscall.SHUT_RDWR)
		return
	}
	if tc, ok := c.net.nc.(*net.TCPConn); ok {
		tc.CloseRead()
		tc.CloseWrite()
	}
}

// closeLocked closes the socket. The caller holds c.mu.
func (c *Conn) closeLocked(r reason.Reason) {
	if c.state == closed {
		return
	}
	c.state = closed
	c.reason = r
	if c.b != nil {
		c.b.queue = nil
		// The flusher of a detached descriptor ends.
		c.wakeFlusherLocked()
	}
	// Send FIN after the data so that the client reads the end of the
	// stream rather than a reset; a stuck or slow one is cut off.
	fin := r != reason.SlowConsumer && r != reason.WriteStuck
	if c.net == nil {
		c.opts.Watcher.remove(c)
		if fin {
			syscall.Shutdown(int(c.fd), syscall.SHUT_WR)
		}
		if r.Lingers() {
			lingerClose(int(c.fd), c.opts.Group)
		} else {
			syscall.Close(int(c.fd))
		}
		c.fd = -1
	} else {
		if c.net.stop != nil {
			c.net.stop()
		}
		if tc, ok := c.net.nc.(*net.TCPConn); ok && fin {
			tc.CloseWrite()
		}
		c.net.nc.Close()
	}
	o := c.opts
	if o.OnClose == nil && o.OnOwnerClose == nil {
		return
	}
	// The hook runs on its own goroutine: Write is called by fan-out with
	// hub locks held, and the hook unsubscribes from the hub.
	written := c.written
	if o.Group != nil {
		o.Group.Add(1)
	}
	go func() {
		if o.Group != nil {
			defer o.Group.Done()
		}
		if o.OnClose != nil {
			o.OnClose(r, written)
		}
		if o.OnOwnerClose != nil {
			o.OnOwnerClose(c.owner, r, written)
		}
	}()
}

// Closed reports whether the connection is closed or closing.
func (c *Conn) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.state != open
}

// Reason returns why the connection closed, or reason.None while it is open.
func (c *Conn) Reason() reason.Reason {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == closed {
		return c.reason
	}
	return reason.None
}

// lingerTime and lingerBytes bound the drain of a lingering close.
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 1 << 20
)

// lingerClose takes over fd, already half-closed, for a lingering close
// (reason.Reason.Lingers): a goroutine, counted in group when it is not
// nil, reads and drops what the client still sends, for at most
// lingerTime and lingerBytes, then closes it. When Go's poller cannot take
// the descriptor it is closed at once.
func lingerClose(fd int, group *sync.WaitGroup) {
	f := os.NewFile(uintptr(fd), "")
	nc, err := net.FileConn(f) // a duplicate of fd, in Go's poller
	f.Close()
	if err != nil {
		return
	}
	if group != nil {
		group.Add(1)
	}
	go func() {
		if group != nil {
			defer group.Done()
		}
		nc.SetReadDeadline(time.Now().Add(lingerTime))
		io.CopyN(io.Discard, nc, lingerBytes)
		nc.Close()
	}()
}

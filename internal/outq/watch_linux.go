//go:build linux

package outq

import (
	"sync"
	"syscall"
	"unsafe"

	"github.com/meteorpush/meteor/internal/reason"
)

// Watcher reports peers that hang up, for every watched connection, with
// one epoll set and one goroutine, so that an idle subscriber needs no
// goroutine of its own. The connections it watches have left Go's network
// poller (their descriptor is detached); for the flusher of one whose
// socket is full it also reports room in the socket, and for one opened
// with Options.OnReadable, input to read.
//
// A registration is the Conn itself, found by its descriptor: the epoll
// event carries the descriptor and the registration's generation, so an
// event for a descriptor that has since been closed and reused by another
// connection is recognised as stale.
type Watcher struct {
	epfd   int
	wake   [2]int // a pipe whose read end wakes the loop on Close
	mu     sync.Mutex
	conns  []*Conn // guarded by mu; the registered Conns by descriptor
	gen    uint32  // guarded by mu; the last generation given
	closed bool    // guarded by mu
	done   chan struct{}
}

// The events of a registration. Hang-ups are the peer's FIN (EPOLLRDHUP),
// a reset or a descriptor shut down both ways (EPOLLHUP), a socket error
// (EPOLLERR); the last two are fatal (epoll reports them whether asked for
// or not). Events come one at a time (EPOLLONESHOT: after an event the
// whole registration stays quiet until it is armed again).
const (
	fatalEvents  = syscall.EPOLLHUP | syscall.EPOLLERR
	hangupEvents = syscall.EPOLLRDHUP | fatalEvents
	readEvents   = syscall.EPOLLIN | syscall.EPOLLRDHUP
)

// events returns what c's registration asks for now. The caller holds
// c.mu.
//
// One registration per descriptor carries every interest: the hang-ups,
// the owner's read interest (readArmed) and the flusher's write interest
// (outWait). The invariant, kept by computing each EPOLL_CTL_ADD and
// EPOLL_CTL_MOD from this union under c.mu: while the Conn is open its
// registration is either armed with events() or disarmed by an event
// (EPOLLONESHOT) that its handler has not re-armed from yet, and each
// event's handler re-arms, so that no interest is dropped:
//
//   - a fatal event or a hang-up closes the Conn: nothing to re-arm;
//   - EPOLLOUT while the flusher waits wakes the flusher, which re-arms
//     (with EPOLLOUT again or, its queue written, without); one found
//     once the flusher no longer waits came before the flusher's last
//     arm, which re-armed;
//   - any other event (input, with or without EPOLLOUT) is re-armed by
//     the loop at once, after clearing readArmed if it hands the input
//     to OnReadable; input found with readArmed clear is stale (it came
//     before such a re-arm) and is only re-armed again.
//
// Without OnReadable the registration always asks for the hang-ups, as
// before. With it the peer's FIN is input (Read returns io.EOF), so
// EPOLLRDHUP is asked for only with EPOLLIN: between an OnReadable and
// the next WatchRead the registration asks only for the fatal events (and
// EPOLLOUT for a flusher), so a FIN, or more input, is not reported
// twice.
func (c *Conn) events() uint32 {
	ev := uint32(fatalEvents | syscall.EPOLLONESHOT)
	if c.readArmed {
		ev |= readEvents
	} else if c.opts.OnReadable == nil {
		ev |= syscall.EPOLLRDHUP
	}
	if c.outWait {
		ev |= syscall.EPOLLOUT
	}
	return ev
}

// wakeFd marks the wake pipe's events.
const wakeFd = -1

// NewWatcher starts a Watcher.
func NewWatcher() (*Watcher, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	w := &Watcher{epfd: epfd, done: make(chan struct{})}
	if err := syscall.Pipe2(w.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: wakeFd}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, w.wake[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(w.wake[0])
		syscall.Close(w.wake[1])
		return nil, err
	}
	go w.loop()
	return w, nil
}

// detach returns a duplicate of rc's descriptor (close-on-exec; it shares
// the original's non-blocking mode), so that the net.Conn can be closed
// while the socket stays open.
func detach(rc syscall.RawConn) (int, bool) {
	nfd := -1
	var derr syscall.Errno
	err := rc.Control(func(fd uintptr) {
		r, _, e := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_DUPFD_CLOEXEC, 0)
		nfd, derr = int(r), e
	})
	if err != nil || derr != 0 {
		return -1, false
	}
	return nfd, true
}

// add registers c's detached descriptor for events(). The caller holds
// c.mu.
func (w *Watcher) add(c *Conn) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return syscall.EBADF
	}
	fd := int(c.fd)
	w.gen++
	if w.gen == 0 {
		w.gen = 1
	}
	c.gen = w.gen
	ev := c.event(c.events())
	if err := syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		c.gen = 0
		return err
	}
	if fd >= len(w.conns) {
		w.conns = append(w.conns, make([]*Conn, fd+1-len(w.conns))...)
	}
	w.conns[fd] = c
	return nil
}

// event returns the epoll event of c's registration.
func (c *Conn) event(events uint32) syscall.EpollEvent {
	return syscall.EpollEvent{Events: events, Fd: c.fd, Pad: int32(c.gen)}
}

// arm asks for c's next event: a hang-up, and input or room in the socket
// as c.events() says. The caller holds c.mu.
func (w *Watcher) arm(c *Conn) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || c.gen == 0 {
		return syscall.EBADF
	}
	ev := c.event(c.events())
	return syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_MOD, int(c.fd), &ev)
}

// remove ends c's registration; call it before closing the descriptor.
// The caller holds c.mu.
func (w *Watcher) remove(c *Conn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if c.gen == 0 {
		return
	}
	fd := int(c.fd)
	if fd < len(w.conns) && w.conns[fd] == c {
		w.conns[fd] = nil
	}
	c.gen = 0
	if !w.closed {
		// Under mu: Close closes epfd only once closed is set, so this
		// never reaches a descriptor that has been reused.
		syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
	}
}

// lookup returns the Conn registered on fd with generation gen, or nil.
// The caller holds w.mu.
func (w *Watcher) lookup(fd int32, gen uint32) *Conn {
	if fd < 0 || int(fd) >= len(w.conns) {
		return nil
	}
	if c := w.conns[fd]; c != nil && c.gen == gen {
		return c
	}
	return nil
}

// readEvent is an event with input for a Conn with OnReadable.
type readEvent struct {
	c   *Conn
	out bool // with room in the socket
}

func (w *Watcher) loop() {
	defer close(w.done)
	events := make([]syscall.EpollEvent, 128)
	var hungUp, writable []*Conn
	var readable []readEvent
	for {
		n, err := syscall.EpollWait(w.epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return
		}
		w.mu.Lock()
		for _, ev := range events[:n] {
			if ev.Fd == wakeFd {
				if w.closed {
					w.mu.Unlock()
					return
				}
				continue
			}
			c := w.lookup(ev.Fd, uint32(ev.Pad))
			if c == nil {
				continue // stale: that descriptor has been closed since
			}
			// c.opts never changes: no need for c.mu to read it.
			switch {
			case c.opts.OnReadable == nil && ev.Events&hangupEvents != 0,
				ev.Events&fatalEvents != 0:
				hungUp = append(hungUp, c)
			case c.opts.OnReadable != nil && ev.Events&readEvents != 0:
				readable = append(readable, readEvent{c, ev.Events&syscall.EPOLLOUT != 0})
			case ev.Events&syscall.EPOLLOUT != 0:
				writable = append(writable, c)
			}
		}
		w.mu.Unlock()
		// Outside w.mu: the Conns take their own mu, which is held
		// around add, arm and remove.
		for i, c := range hungUp {
			c.Close(reason.RemoteClosed)
			hungUp[i] = nil
		}
		for i, c := range writable {
			c.writable()
			writable[i] = nil
		}
		for i, e := range readable {
			e.c.readable(e.out)
			readable[i] = readEvent{}
		}
		hungUp, writable, readable = hungUp[:0], writable[:0], readable[:0]
	}
}

// readable handles an event with input (or the peer's FIN) for a Conn with
// OnReadable, with room in the socket too when out is set: it starts
// OnReadable if the owner waits for it, wakes the flusher, and re-arms
// what the event disarmed (see events).
func (c *Conn) readable(out bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == closed {
		return
	}
	o := c.opts
	if c.readArmed {
		// Not a stale event: hand it to the owner, once until WatchRead.
		c.readArmed = false
		// Under mu, with the Conn open: the Add comes before the close
		// that comes before the owner's Wait, as for the flusher.
		if o.Group != nil {
			o.Group.Add(1)
		}
		go func() {
			if o.Group != nil {
				defer o.Group.Done()
			}
			o.OnReadable(c.owner)
		}()
	}
	if out && c.outWait {
		// The flusher re-arms, with the read interest as events says.
		c.wakeFlusherLocked()
		return
	}
	// An error leaves the hang-ups and a flusher unwatched: the flusher
	// then closes as reason.WriteStuck after its timeout, and the owner's
	// WatchRead returns the error.
	o.Watcher.arm(c)
}

// Close stops the watcher's goroutine and waits for it. Watched
// connections are not closed, and are no longer watched.
func (w *Watcher) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	syscall.Write(w.wake[1], []byte{0})
	<-w.done
	syscall.Close(w.epfd)
	syscall.Close(w.wake[0])
	syscall.Close(w.wake[1])
	return nil
}

// writev writes bufs (at most max of them) to fd with one system call.
func writev(fd int, bufs [][]byte, max int) (int, error) {
	var iov [maxIovecs]syscall.Iovec
	n := 0
	for _, b := range bufs {
		if n == max || n == len(iov) {
			break
		}
		if len(b) == 0 {
			continue
		}
		iov[n].Base = &b[0]
		iov[n].SetLen(len(b))
		n++
	}
	if n == 0 {
		return 0, nil
	}
	for {
		r, _, e := syscall.Syscall(syscall.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(n))
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, e
		}
		return int(r), nil
	}
}

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
// socket is full it also reports room in the socket.
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

// The events a registration asks for: hang-ups (the peer's FIN, a reset,
// an error), one at a time (EPOLLONESHOT: after an event the registration
// stays quiet until it is armed again).
const (
	hangupEvents = syscall.EPOLLRDHUP | syscall.EPOLLHUP | syscall.EPOLLERR
	watchEvents  = hangupEvents | syscall.EPOLLONESHOT
)

// events returns what c's registration asks for now: the hang-ups, and
// room in the socket while the flusher waits for it (outWait). The caller
// holds c.mu. Every EPOLL_CTL_ADD and EPOLL_CTL_MOD of the descriptor asks
// for events(), so that each arm keeps every interest of the one
// registration, whoever arms.
func (c *Conn) events() uint32 {
	ev := uint32(watchEvents)
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

// add registers c's detached descriptor for hang-ups. The caller holds
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

// arm asks for c's next event, as c.events() says. The caller holds c.mu.
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

func (w *Watcher) loop() {
	defer close(w.done)
	events := make([]syscall.EpollEvent, 128)
	var hungUp, writable []*Conn
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
			if ev.Events&hangupEvents != 0 {
				hungUp = append(hungUp, c)
			} else if ev.Events&syscall.EPOLLOUT != 0 {
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
		hungUp, writable = hungUp[:0], writable[:0]
	}
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

//go:build linux

package outq

import (
	"net"
	"sync"
	"syscall"
)

// Watcher reports peers that hang up, for every watched connection, with
// one epoll set and one goroutine, so that an idle subscriber needs no
// goroutine of its own. The Go runtime keeps its own registration of the
// same sockets; a socket may sit in several epoll sets.
type Watcher struct {
	epfd   int
	wake   [2]int // a pipe whose read end wakes the loop on Close
	mu     sync.Mutex
	fns    map[uint64]func() // guarded by mu; by token
	next   uint64            // guarded by mu
	closed bool              // guarded by mu
	done   chan struct{}
}

// NewWatcher starts a Watcher.
func NewWatcher() (*Watcher, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	w := &Watcher{epfd: epfd, fns: make(map[uint64]func()), done: make(chan struct{})}
	if err := syscall.Pipe2(w.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, err
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, w.wake[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(w.wake[0])
		syscall.Close(w.wake[1])
		return nil, err
	}
	w.next = 1 // token 0 is the wake pipe
	go w.loop()
	return w, nil
}

// Watch calls fn once when the peer of nc hangs up (or the socket errs).
// rc is nc's raw connection, or nil. The returned stop function ends the
// watch; call it before closing nc. When nc cannot be watched by epoll, a
// goroutine that reads and discards nc's input watches it instead.
func (w *Watcher) Watch(nc net.Conn, rc syscall.RawConn, fn func()) (stop func()) {
	if rc == nil {
		return watchByReading(nc, fn)
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return func() {}
	}
	tok := w.next
	w.next++
	w.fns[tok] = fn
	w.mu.Unlock()

	var cerr error
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLRDHUP | syscall.EPOLLHUP | syscall.EPOLLERR | syscall.EPOLLONESHOT,
		Fd:     int32(uint32(tok)),
		Pad:    int32(uint32(tok >> 32)),
	}
	err := rc.Control(func(fd uintptr) {
		cerr = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
	})
	if err == nil {
		err = cerr
	}
	if err != nil {
		w.mu.Lock()
		delete(w.fns, tok)
		w.mu.Unlock()
		return watchByReading(nc, fn)
	}
	return func() {
		w.mu.Lock()
		delete(w.fns, tok)
		w.mu.Unlock()
		rc.Control(func(fd uintptr) {
			syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
		})
	}
}

func (w *Watcher) loop() {
	defer close(w.done)
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(w.epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return
		}
		var fire []func()
		w.mu.Lock()
		for _, ev := range events[:n] {
			tok := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if tok == 0 {
				if w.closed {
					w.mu.Unlock()
					return
				}
				continue
			}
			if fn := w.fns[tok]; fn != nil {
				delete(w.fns, tok)
				fire = append(fire, fn)
			}
		}
		w.mu.Unlock()
		for _, fn := range fire {
			fn()
		}
	}
}

// Close stops the watcher's goroutine and waits for it. Watched
// connections are not closed.
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

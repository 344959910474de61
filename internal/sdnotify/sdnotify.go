// Package sdnotify tells systemd how the service is doing, as
// sd_notify(3) does, for units of Type=notify: readiness (READY=1), a
// reload (RELOADING=1), the stop (STOPPING=1) and the watchdog's
// keep-alive (WATCHDOG=1). Each state is one datagram to the unix socket
// named by $NOTIFY_SOCKET (a path, or an abstract name starting with
// '@'). Without $NOTIFY_SOCKET, not run by systemd, every call does
// nothing.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// The states meteord sends. A datagram may carry several, one per line.
const (
	Ready     = "READY=1"
	Reloading = "RELOADING=1"
	Stopping  = "STOPPING=1"
	Watchdog  = "WATCHDOG=1"
)

// ErrSocket reports a $NOTIFY_SOCKET that this package cannot use (not a
// path, not an abstract name: systemd's vsock: addresses, for one).
var ErrSocket = errors.New("sdnotify: unsupported NOTIFY_SOCKET")

// Notifier sends states to one notification socket. The zero value and a
// nil *Notifier send nothing. It is safe for concurrent use.
type Notifier struct {
	addr *net.UnixAddr // nil: not under systemd
}

// FromEnv returns the Notifier for $NOTIFY_SOCKET: one that sends nothing
// when the variable is unset or empty, ErrSocket when it names something
// other than a unix socket.
func FromEnv() (*Notifier, error) {
	return New(os.Getenv("NOTIFY_SOCKET"))
}

// New returns the Notifier for the socket named by socket, as
// $NOTIFY_SOCKET names it: an absolute path, or '@' and an abstract name
// (Linux), or "" for none.
func New(socket string) (*Notifier, error) {
	if socket == "" {
		return &Notifier{}, nil
	}
	if socket[0] != '/' && socket[0] != '@' {
		return nil, fmt.Errorf("%w: %q", ErrSocket, socket)
	}
	// Go's unix addresses already map a leading '@' to the abstract
	// namespace (a NUL first byte), as systemd means it.
	return &Notifier{addr: &net.UnixAddr{Name: socket, Net: "unixgram"}}, nil
}

// Enabled reports whether n sends anywhere.
func (n *Notifier) Enabled() bool { return n != nil && n.addr != nil }

// Notify sends states, each a "NAME=value" line, in one datagram. The
// socket is opened for each call, as sd_notify does, so that nothing is
// held between a rare call and the next.
func (n *Notifier) Notify(states ...string) error {
	if !n.Enabled() || len(states) == 0 {
		return nil
	}
	var msg []byte
	for i, s := range states {
		if i > 0 {
			msg = append(msg, '\n')
		}
		msg = append(msg, s...)
	}
	c, err := net.DialUnix("unixgram", nil, n.addr)
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write(msg); err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	return nil
}

// WatchdogInterval returns how often to send WATCHDOG=1: half of
// $WATCHDOG_USEC, as sd_watchdog_enabled(3) advises, or 0 when systemd
// watches no process or another one than this ($WATCHDOG_PID).
func WatchdogInterval() (time.Duration, error) {
	return watchdogInterval(os.Getenv("WATCHDOG_USEC"), os.Getenv("WATCHDOG_PID"), os.Getpid())
}

func watchdogInterval(usec, pid string, self int) (time.Duration, error) {
	if usec == "" {
		return 0, nil
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil || p <= 0 {
			return 0, fmt.Errorf("sdnotify: WATCHDOG_PID %q is not a process id", pid)
		}
		if p != self {
			return 0, nil
		}
	}
	us, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || us == 0 {
		return 0, fmt.Errorf("sdnotify: WATCHDOG_USEC %q is not a positive number of microseconds", usec)
	}
	return time.Duration(us) * time.Microsecond / 2, nil
}

// Pinger sends WATCHDOG=1 at an interval from a goroutine of its own,
// until Stop.
type Pinger struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// StartWatchdog sends WATCHDOG=1 every interval until the Pinger is
// stopped; onErr, when not nil, hears of each failed send (the sends go
// on). It returns nil, a Pinger that Stop ignores, when n sends nowhere
// or interval is not positive.
func (n *Notifier) StartWatchdog(interval time.Duration, onErr func(error)) *Pinger {
	if !n.Enabled() || interval <= 0 {
		return nil
	}
	p := &Pinger{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				if err := n.Notify(Watchdog); err != nil && onErr != nil {
					onErr(err)
				}
			}
		}
	}()
	return p
}

// Stop ends the pings and returns once the goroutine has: no ping is sent
// after Stop returns. It may be called more than once.
func (p *Pinger) Stop() {
	if p == nil {
		return
	}
	p.once.Do(func() { close(p.stop) })
	<-p.done
}

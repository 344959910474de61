package main

import (
	"errors"
	"net"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// notifySocket is a fake systemd: a real unixgram socket that records what
// meteord sends to $NOTIFY_SOCKET.
type notifySocket struct {
	t    *testing.T
	conn *net.UnixConn
	path string
}

func newNotifySocket(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &notifySocket{t: t, conn: c, path: path}
}

// next returns the next datagram, or "" when none comes within d.
func (s *notifySocket) next(d time.Duration) string {
	s.t.Helper()
	buf := make([]byte, 4096)
	s.conn.SetReadDeadline(time.Now().Add(d))
	n, err := s.conn.Read(buf)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return ""
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return string(buf[:n])
}

// expect skips watchdog pings until want arrives, and fails after wait.
func (s *notifySocket) expect(want string) {
	s.t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		got := s.next(time.Until(deadline))
		if got == want {
			return
		}
		if got != "WATCHDOG=1" {
			s.t.Fatalf("notification %q, want %q", got, want)
		}
	}
	s.t.Fatalf("no notification %q within %v", want, wait)
}

// TestSystemdNotify runs meteord as systemd runs a Type=notify unit with
// WatchdogSec: READY=1 once it listens, WATCHDOG=1 at half the watchdog's
// time, RELOADING=1 and READY=1 around a HUP, STOPPING=1 on TERM, and
// nothing once it has exited.
func TestSystemdNotify(t *testing.T) {
	sock := newNotifySocket(t)
	// 200 ms: a ping every 100 ms.
	p := startProcEnv(t, []string{"NOTIFY_SOCKET=" + sock.path, "WATCHDOG_USEC=200000"}, restartConf(t))
	if got := sock.next(wait); got != "READY=1\nSTATUS=listening" {
		t.Fatalf("first notification %q, want READY=1 and the status", got)
	}
	p.waitLog("msg=\"systemd watchdog\" interval=100ms")
	// About ten pings a second: count them over one (a few may have
	// queued up before, none may be missing for long).
	n := 0
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		switch got := sock.next(time.Until(end)); got {
		case "":
		case "WATCHDOG=1":
			n++
		default:
			t.Fatalf("notification %q while running, want WATCHDOG=1", got)
		}
	}
	if n < 4 || n > 14 {
		t.Errorf("%d pings in a second, want about 10 (one every 100ms)", n)
	}

	p.signal(syscall.SIGHUP)
	sock.expect("RELOADING=1")
	sock.expect("READY=1")

	p.signal(syscall.SIGTERM)
	sock.expect("STOPPING=1")
	select {
	case <-p.exited:
	case <-time.After(wait):
		t.Fatal("meteord did not exit on TERM")
	}
	if p.waitErr != nil {
		t.Errorf("meteord exited with %v", p.waitErr)
	}
	// Pings sent while it shut down are queued already; then silence.
	for sock.next(10*time.Millisecond) == "WATCHDOG=1" {
	}
	if got := sock.next(300 * time.Millisecond); got != "" {
		t.Errorf("after exit: %q", got)
	}
}

// TestSystemdOtherWatchdogPID: a watchdog meant for another process
// (WATCHDOG_PID) gets no pings from this one, but READY=1 still.
func TestSystemdOtherWatchdogPID(t *testing.T) {
	sock := newNotifySocket(t)
	p := startProcEnv(t, []string{"NOTIFY_SOCKET=" + sock.path, "WATCHDOG_USEC=200000", "WATCHDOG_PID=1"}, restartConf(t))
	if got := sock.next(wait); got != "READY=1\nSTATUS=listening" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	if got := sock.next(400 * time.Millisecond); got != "" {
		t.Errorf("notification %q for another process's watchdog", got)
	}
	p.signal(syscall.SIGTERM)
	sock.expect("STOPPING=1")
}

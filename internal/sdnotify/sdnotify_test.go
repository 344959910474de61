package sdnotify

import (
	"errors"
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// listen opens a fake systemd notification socket: a real unixgram
// socket at a path, or in the abstract namespace when name starts with
// '@'.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// read returns the next datagram, or "" when none comes within d.
func read(t *testing.T, c *net.UnixConn, d time.Duration) string {
	t.Helper()
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(d))
	n, err := c.Read(buf)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return ""
		}
		t.Fatal(err)
	}
	return string(buf[:n])
}

func TestNotify(t *testing.T) {
	for _, name := range []string{
		filepath.Join(t.TempDir(), "notify"),
		"@meteord-sdnotify-test-" + strconv.FormatInt(time.Now().UnixNano(), 36),
	} {
		ln := listen(t, name)
		t.Setenv("NOTIFY_SOCKET", name)
		n, err := FromEnv()
		if err != nil || !n.Enabled() {
			t.Fatalf("FromEnv with %q = %v, %v", name, n, err)
		}
		if err := n.Notify(Ready, "STATUS=listening"); err != nil {
			t.Fatalf("Notify to %q: %v", name, err)
		}
		if got := read(t, ln, 5*time.Second); got != "READY=1\nSTATUS=listening" {
			t.Errorf("%q received %q, want READY=1 and the status on two lines", name, got)
		}
		if err := n.Notify(Stopping); err != nil {
			t.Fatal(err)
		}
		if got := read(t, ln, 5*time.Second); got != "STOPPING=1" {
			t.Errorf("%q received %q, want STOPPING=1", name, got)
		}
	}
}

func TestNotifyNowhere(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n, err := FromEnv()
	if err != nil || n.Enabled() {
		t.Fatalf("FromEnv without NOTIFY_SOCKET = %v, %v; want a Notifier that sends nothing", n, err)
	}
	if err := n.Notify(Ready); err != nil {
		t.Errorf("Notify without a socket: %v", err)
	}
	var nilN *Notifier
	if err := nilN.Notify(Ready); err != nil || nilN.Enabled() {
		t.Errorf("nil Notifier: %v", err)
	}
	if p := n.StartWatchdog(time.Millisecond, nil); p != nil {
		t.Error("a watchdog without a socket started")
	}
	(*Pinger)(nil).Stop()

	if _, err := New("vsock:2:1234"); !errors.Is(err, ErrSocket) {
		t.Errorf("New(vsock) = %v, want ErrSocket", err)
	}
	// A socket nobody listens on: the error says so, nothing panics.
	n, _ = New(filepath.Join(t.TempDir(), "gone"))
	if err := n.Notify(Ready); err == nil {
		t.Error("Notify to a missing socket succeeded")
	}
}

func TestWatchdogInterval(t *testing.T) {
	for _, tt := range []struct {
		usec, pid string
		want      time.Duration
		err       bool
	}{
		{"", "", 0, false},
		{"30000000", "", 15 * time.Second, false},
		{"30000000", "42", 15 * time.Second, false},
		{"30000000", "41", 0, false}, // another process is watched
		{"0", "", 0, true},
		{"soon", "", 0, true},
		{"30000000", "x", 0, true},
	} {
		got, err := watchdogInterval(tt.usec, tt.pid, 42)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("watchdogInterval(%q, %q) = %v, %v; want %v, error %v", tt.usec, tt.pid, got, err, tt.want, tt.err)
		}
	}
}

// TestWatchdog checks that the pings come at the interval and stop, with
// their goroutine, when the Pinger does.
func TestWatchdog(t *testing.T) {
	defer goleak.VerifyNone(t)
	name := filepath.Join(t.TempDir(), "notify")
	ln := listen(t, name)
	n, _ := New(name)
	var errs []error
	p := n.StartWatchdog(20*time.Millisecond, func(err error) { errs = append(errs, err) })
	start := time.Now()
	for i := range 3 {
		if got := read(t, ln, 5*time.Second); got != Watchdog {
			t.Fatalf("ping %d = %q, want %q", i, got, Watchdog)
		}
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Errorf("3 pings in %v, faster than every 20ms", d)
	}
	p.Stop()
	p.Stop()
	// Pings sent before Stop returned are already queued on the socket
	// (a unix datagram is delivered by the send): take them, then expect
	// silence.
	for read(t, ln, 10*time.Millisecond) != "" {
	}
	if got := read(t, ln, 100*time.Millisecond); got != "" {
		t.Errorf("a ping after Stop: %q", got)
	}
	if len(errs) != 0 {
		t.Errorf("send errors: %v", errs)
	}
}

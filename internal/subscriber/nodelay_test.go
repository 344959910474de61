package subscriber

import (
	"net"
	"syscall"
	"testing"

	"github.com/meteorpush/meteor/internal/rawhttp"
)

func noDelay(t *testing.T, c *net.TCPConn) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	rc.Control(func(fd uintptr) { v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_NODELAY) })
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// TestSetNoDelay: SubscriberNoDelay 0 turns TCP_NODELAY off on the
// accepted socket; 1 leaves Go's default, on.
func TestSetNoDelay(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, on := range []bool{true, false} {
		cl, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		rawhttp.SetNoDelay(sc, on)
		want := 0
		if on {
			want = 1
		}
		if got := noDelay(t, sc.(*net.TCPConn)); (got != 0) != (want != 0) {
			t.Errorf("on=%v: TCP_NODELAY = %d, want %d", on, got, want)
		}
		sc.Close()
		cl.Close()
	}
}

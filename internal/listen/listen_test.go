package listen

import (
	"context"
	"errors"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func skipOffLinux(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("ReusePort is Linux only")
	}
}

// TestTCPReusePortShares: two listeners bound to one port with ReusePort
// both accept connections (the kernel spreads new ones over the group by
// their flow hash, so a few dials reach both), and a listener without it
// cannot join the group.
func TestTCPReusePortShares(t *testing.T) {
	skipOffLinux(t)
	ctx := context.Background()
	a, err := TCP(ctx, "127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	addr := a.Addr().String()
	b, err := TCP(ctx, addr, true)
	if err != nil {
		t.Fatalf("second listener with ReusePort on %s: %v", addr, err)
	}
	defer b.Close()
	if _, err := TCP(ctx, addr, false); !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("a listener without ReusePort joined the group: %v", err)
	}

	var counts [2]atomic.Int64
	var wg sync.WaitGroup
	for i, ln := range []net.Listener{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				counts[i].Add(1)
				c.Close()
			}
		}()
	}
	defer func() { a.Close(); b.Close(); wg.Wait() }()
	// Each dial has a new source port, so a new hash: the chance that 400
	// all go to one listener is 2^-399.
	for i := 0; i < 400 && (counts[0].Load() == 0 || counts[1].Load() == 0); i++ {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		c.Close()
	}
	deadline := time.Now().Add(5 * time.Second)
	for (counts[0].Load() == 0 || counts[1].Load() == 0) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if counts[0].Load() == 0 || counts[1].Load() == 0 {
		t.Fatalf("accepted %d and %d: both listeners should have accepted connections", counts[0].Load(), counts[1].Load())
	}
}

// TestUDPReusePortShares: two UDP sockets on one port with ReusePort both
// receive datagrams sent from different source ports.
func TestUDPReusePortShares(t *testing.T) {
	skipOffLinux(t)
	ctx := context.Background()
	a, err := UDP(ctx, "127.0.0.1:0", true)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	addr := a.LocalAddr().String()
	b, err := UDP(ctx, addr, true)
	if err != nil {
		t.Fatalf("second UDP socket with ReusePort on %s: %v", addr, err)
	}
	defer b.Close()
	var counts [2]atomic.Int64
	var wg sync.WaitGroup
	for i, pc := range []net.PacketConn{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64)
			for {
				if _, _, err := pc.ReadFrom(buf); err != nil {
					return
				}
				counts[i].Add(1)
			}
		}()
	}
	defer func() { a.Close(); b.Close(); wg.Wait() }()
	for i := 0; i < 400 && (counts[0].Load() == 0 || counts[1].Load() == 0); i++ {
		c, err := net.Dial("udp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("ADDMESSAGE x y\n"))
		c.Close()
		if i%50 == 49 {
			time.Sleep(10 * time.Millisecond) // let the readers catch up
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for (counts[0].Load() == 0 || counts[1].Load() == 0) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if counts[0].Load() == 0 || counts[1].Load() == 0 {
		t.Fatalf("received %d and %d: both sockets should have received datagrams", counts[0].Load(), counts[1].Load())
	}
}

// TestWithoutReusePort: without the option a second bind of the port
// fails, as it always did.
func TestWithoutReusePort(t *testing.T) {
	ctx := context.Background()
	a, err := TCP(ctx, "127.0.0.1:0", false)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if b, err := TCP(ctx, a.Addr().String(), false); err == nil {
		b.Close()
		t.Fatal("two listeners without ReusePort on one port")
	}
}

func TestConnectionCap(t *testing.T) {
	for _, tc := range []struct {
		limit uint64
		want  int
	}{
		{0, 0},
		{1 << 40, 0}, // unlimited
		{20000, 19000},
		{4096, 3840},
		{1024, 768},
		{512, 256},
		{300, 150}, // half of a small limit
		{1, 1},
		{100000, 95000},
	} {
		if got := ConnectionCap(tc.limit); got != tc.want {
			t.Errorf("ConnectionCap(%d) = %d, want %d", tc.limit, got, tc.want)
		}
	}
	if MaxConnections(7) != 7 {
		t.Error("a MaxConnections setting is not kept")
	}
	if lim := OpenFilesLimit(); lim > 0 && MaxConnections(0) != ConnectionCap(lim) {
		t.Errorf("MaxConnections(0) = %d with a limit of %d", MaxConnections(0), lim)
	}
}

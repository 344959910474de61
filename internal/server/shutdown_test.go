package server

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/config"
)

// TestShutdown: persistent subscribers get their mode's shutdown message and
// EOF; the controller connection is closed; the listeners stop.
func TestShutdown(t *testing.T) {
	ts := start(t, nil)
	ts.publish("c", "m")
	i := ts.get("/push/i/iframe/c")
	i.expect(header(ts.cfg.Mode("iframe"), "200 OK", scriptInfo("c", 1)))
	f := ts.get("/push/f/flash/c.h")
	f.expect("CH/c/1\x001/c/m\x00")
	lp := ts.get("/push/l/longpoll/c")
	lp.expect(httpHeader + scriptInfo("c", 1))
	ts.waitCount("c", 3)
	subAddr := ts.SubscriberAddr().String()
	if took, err := ts.shutdown(wait); err != nil || took > 2*time.Second {
		t.Errorf("Shutdown = %v after %v", err, took)
	}
	i.expect(scriptEOF)
	i.expectEOF()
	f.expect("x\x00")
	f.expectEOF()
	lp.expect(scriptEOF)
	lp.expectEOF()
	if nc, err := net.DialTimeout("tcp", subAddr, time.Second); err == nil {
		nc.Close()
		t.Errorf("the subscriber port still accepts after Shutdown")
	}
}

// TestShutdownStuckSubscriber: Shutdown keeps to its bound even when a
// subscriber never reads.
func TestShutdownStuckSubscriber(t *testing.T) {
	ts := start(t, func(cfg *config.Config) { cfg.MaxPendingBytes = 64 << 20 })
	stuck := ts.get("/push/stuck/iframe/c")
	if tc, ok := stuck.nc.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	ts.waitCount("c", 1)
	text := strings.Repeat("y", 60000)
	for range 200 {
		ts.publish("c", text)
	}
	// An idle client that has not sent its request yet.
	ts.dial()
	took, err := ts.shutdown(1500 * time.Millisecond)
	if err == nil {
		t.Errorf("Shutdown returned nil with a subscriber that never read")
	}
	if took > 2500*time.Millisecond {
		t.Errorf("Shutdown took %v, bound 1.5 s", took)
	}
}

// TestShutdownIdle: a server with no client at all stops at once.
func TestShutdownIdle(t *testing.T) {
	ts := start(t, nil)
	if took, err := ts.shutdown(wait); err != nil || took > time.Second {
		t.Errorf("Shutdown = %v after %v", err, took)
	}
}

package subscriber_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/testkit"
)

// getFrom is ts.get from the loopback address src (127.0.0.2, ...).
func (ts *mServer) getFrom(src, target string) *mConn {
	ts.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: mWait}
	nc, err := d.Dial("tcp", ts.SubscriberAddr().String())
	if err != nil {
		ts.t.Fatalf("dial subscriber from %s: %v", src, err)
	}
	ts.t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(mWait))
	if _, err := io.WriteString(nc, "GET "+target+" HTTP/1.1\r\nHost: meteor.test\r\n\r\n"); err != nil {
		ts.t.Fatalf("write request: %v", err)
	}
	return &mConn{t: ts.t, nc: nc, r: bufio.NewReader(nc)}
}

// TestMaxConnectionsPerIP: an address holds at most MaxConnectionsPerIP
// subscriptions, over every transport together; one more is a 429 that
// says why; another address, and a static file, are not affected; a
// closed subscription frees its place.
func TestMaxConnectionsPerIP(t *testing.T) {
	ts := mStart(t, func(c *config.Config) { c.MaxConnectionsPerIP = 2 })
	sse := ts.get("/sse/a")
	sse.header()
	legacy := ts.get("/push/h1/xhrinteractive/a")
	legacy.header()
	ts.waitSubscribers("a", 2)

	for _, target := range []string{"/sse/a", "/ndjson/a", "/push/h2/xhrinteractive/a", "/poll/a?since=a:0", "/ws"} {
		c := ts.get(target)
		h := c.header()
		if !strings.HasPrefix(h, "HTTP/1.1 429 Too Many Requests\r\n") || !strings.Contains(h, "Retry-After: 1\r\n") {
			t.Fatalf("%s as the third subscription of 127.0.0.1: %q, want 429", target, h)
		}
		if body := c.body(); !strings.Contains(body, "too many connections from 127.0.0.1: at most 2 (MaxConnectionsPerIP)") {
			t.Errorf("%s: body %q", target, body)
		}
	}
	if h := ts.get("/meteor.js").header(); !strings.HasPrefix(h, "HTTP/1.1 200 OK") {
		t.Errorf("a static file at the limit: %q", h)
	}
	other := ts.getFrom("127.0.0.2", "/sse/a")
	if h := other.header(); !strings.HasPrefix(h, "HTTP/1.1 200 OK") {
		t.Fatalf("another address: %q", h)
	}
	ts.waitSubscribers("a", 3)

	sse.nc.Close()
	ts.waitSubscribers("a", 2)
	testkit.Eventually(t, "a place freed", func() bool {
		c := ts.get("/sse/a")
		ok := strings.HasPrefix(c.header(), "HTTP/1.1 200 OK")
		c.nc.Close()
		return ok
	})
	if !strings.Contains(ts.log.String(), `msg="subscriber request refused" ip=127.0.0.1 limit=maxConnectionsPerIP`) {
		t.Errorf("no log line for the refusal:\n%s", ts.log.String())
	}
}

// TestConnectionRatePerIP: an address may make ConnectionBurstPerIP
// requests at once, then ConnectionRatePerIP a second; past that a 429
// says why; another address has its own bucket.
func TestConnectionRatePerIP(t *testing.T) {
	ts := mStart(t, func(c *config.Config) { c.ConnectionRatePerIP, c.ConnectionBurstPerIP = 1, 3 })
	for i := range 3 {
		if h := ts.get("/meteor.js").header(); !strings.HasPrefix(h, "HTTP/1.1 200 OK") {
			t.Fatalf("request %d of the burst: %q", i+1, h)
		}
	}
	c := ts.get("/meteor.js")
	if h := c.header(); !strings.HasPrefix(h, "HTTP/1.1 429 Too Many Requests\r\n") {
		t.Fatalf("the fourth request at once: %q, want 429", h)
	}
	if body := c.body(); !strings.Contains(body, "too many requests from 127.0.0.1: at most 1 a second (ConnectionRatePerIP)") {
		t.Errorf("body %q", body)
	}
	if h := ts.getFrom("127.0.0.3", "/meteor.js").header(); !strings.HasPrefix(h, "HTTP/1.1 200 OK") {
		t.Errorf("another address: %q", h)
	}
	testkit.Eventually(t, "the bucket refilled", func() bool {
		c := ts.get("/meteor.js")
		ok := strings.HasPrefix(c.header(), "HTTP/1.1 200 OK")
		c.nc.Close()
		return ok
	})
}

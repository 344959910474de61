package server

// Tests of several processes per box: listeners that share their ports
// (ReusePort), the cap on subscriber connections, and the drain for a
// restart. The servers run in this process on loopback ports; ReusePort
// needs Engine redis in the configuration, so each one gets its own memory
// engine through NewOn (startOn), which is enough for what the listeners
// and the drain do.

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/listen"
	"github.com/meteorpush/meteor/internal/stats"
	"github.com/meteorpush/meteor/internal/testkit"
)

func skipOffLinux(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("ReusePort is Linux only")
	}
}

// reuse turns ReusePort on, on the engine it needs.
func reuse(cfg *config.Config) {
	cfg.ReusePort = true
	cfg.Engine = "redis"
}

// TestReusePortNeedsRedis: a configuration with ReusePort and Engine
// memory does not start, and says why; the server still shuts down.
func TestReusePortNeedsRedis(t *testing.T) {
	cfg := testConfig()
	cfg.ReusePort = true
	srv, err := New(cfg, (&testkit.Log{}).Logger())
	if err != nil {
		t.Fatal(err)
	}
	err = srv.Start()
	if !errors.Is(err, config.ErrConflict) || !strings.Contains(err.Error(), "Engine redis") {
		t.Errorf("Start = %v, want the ReusePort/Engine conflict", err)
	}
	if srv.subLn != nil || srv.ctlLn != nil || srv.apiLn != nil {
		t.Errorf("listeners opened for a refused configuration")
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown after a refused start: %v", err)
	}
}

// TestReusePortTwoServers: two servers on the same subscriber, controller,
// UDP and API ports both start, and the kernel gives both of them
// subscriber and controller connections.
func TestReusePortTwoServers(t *testing.T) {
	skipOffLinux(t)
	a := startOn(t, nil, func(cfg *config.Config) {
		reuse(cfg)
		cfg.UDPPort = freeUDPPort(t)
	})
	b := startOn(t, nil, func(cfg *config.Config) {
		reuse(cfg)
		cfg.SubscriberPort = a.SubscriberAddr().(*net.TCPAddr).Port
		cfg.ControllerPort = a.ControllerAddr().(*net.TCPAddr).Port
		cfg.AdminPort = a.AdminAddr().(*net.TCPAddr).Port
		cfg.UDPPort = a.UDPAddr().(*net.UDPAddr).Port
	})
	if b.SubscriberAddr().String() != a.SubscriberAddr().String() || b.AdminAddr().String() != a.AdminAddr().String() {
		t.Fatalf("b listens on %v and %v, a on %v and %v", b.SubscriberAddr(), b.AdminAddr(), a.SubscriberAddr(), a.AdminAddr())
	}
	for _, port := range []struct {
		addr    string
		counter stats.Counter
	}{
		{a.SubscriberAddr().String(), stats.SubscriberConnectionsAccepted},
		{a.ControllerAddr().String(), stats.ControllerConnectionsAccepted},
	} {
		both := func() bool { return a.Stats().Get(port.counter) > 0 && b.Stats().Get(port.counter) > 0 }
		// Each dial hashes anew; 400 all on one server: 2^-399.
		for i := 0; i < 400 && !both(); i++ {
			nc, err := net.DialTimeout("tcp", port.addr, wait)
			if err != nil {
				t.Fatalf("dial %s: %v", port.addr, err)
			}
			nc.Close()
			if i%20 == 19 {
				time.Sleep(5 * time.Millisecond) // let the accept loops count
			}
		}
		testkit.Eventually(t, port.counter.String()+" on both servers", both)
	}
}

// freeUDPPort returns a UDP port that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// TestMaxConnectionsServer: MaxConnections reaches the accept loop and
// the metrics: with a cap of 2, a third connection is answered 503 at once
// and counted; with 0, the cap is derived from the open-files limit.
func TestMaxConnectionsServer(t *testing.T) {
	ts := start(t, func(cfg *config.Config) { cfg.MaxConnections = 2 })
	s1 := ts.get("/push/a/xhrinteractive/c")
	s2 := ts.get("/push/b/xhrinteractive/c")
	ts.waitCount("c", 2)
	third := ts.dial()
	if got := third.readAll(); !strings.HasPrefix(got, "HTTP/1.1 503 ") || !strings.Contains(got, "Retry-After: 1\r\n") {
		t.Errorf("the third connection got %q, want a 503 with Retry-After", got)
	}
	if v := metricValue(t, ts, "meteor_subscriber_refused_total"); v != 1 {
		t.Errorf("meteor_subscriber_refused_total = %v, want 1", v)
	}
	if v := metricValue(t, ts, "meteor_subscriber_max_connections"); v != 2 {
		t.Errorf("meteor_subscriber_max_connections = %v, want 2", v)
	}
	s1.nc.Close()
	s2.nc.Close()

	// A reload moves the cap.
	next := *ts.cfg
	next.MaxConnections = 5
	if err := ts.Reload(&next); err != nil {
		t.Fatal(err)
	}
	if v := metricValue(t, ts, "meteor_subscriber_max_connections"); v != 5 {
		t.Errorf("meteor_subscriber_max_connections = %v after a reload to 5", v)
	}

	d := start(t, nil)
	if v, want := metricValue(t, d, "meteor_subscriber_max_connections"), float64(listen.ConnectionCap(listen.OpenFilesLimit())); v != want {
		t.Errorf("derived cap %v, want %v", v, want)
	}
}

// metricValue reads a counter's or gauge's value from the server's
// registry.
func metricValue(t *testing.T, ts *testServer, name string) float64 {
	t.Helper()
	return testkit.Metric(t, ts.Metrics(), name)
}

// ended is how one subscriber's connection ended: what it read and when.
type ended struct {
	name string
	got  string
	at   time.Time
	code int // the WebSocket's close code
}

// TestDrainForRestart: with ReusePort, TERM closes the listeners before
// anything else, so that while the subscribers are drained every new
// connection goes to the other process of the port (here a bare listener
// in its group); then it closes the subscribers of every transport
// gradually over DrainTime with the reason restart (WebSocket 1012, the
// close event of SSE and NDJSON, the poll's "closed"), and the 1.06
// streams end without eof(), so that their pages reconnect.
func TestDrainForRestart(t *testing.T) {
	skipOffLinux(t)
	const drain = time.Second
	ts := startOn(t, nil, func(cfg *config.Config) {
		reuse(cfg)
		cfg.DrainTime = int(drain / time.Second)
	})
	addr := ts.SubscriberAddr().String()

	var (
		mu     sync.Mutex
		ends   []ended
		closed = make(chan struct{}, 16) // one per ended subscriber
	)
	record := func(e ended) {
		e.at = time.Now()
		mu.Lock()
		ends = append(ends, e)
		mu.Unlock()
		closed <- struct{}{}
	}
	var bg sync.WaitGroup // the readers and the sibling's accept loop
	defer bg.Wait()
	// A raw subscriber that reads until the server closes it.
	raw := func(name, path string) {
		c := ts.get(path)
		bg.Go(func() {
			c.nc.SetReadDeadline(time.Now().Add(2*wait + drain))
			b, _ := io.ReadAll(c.nc)
			record(ended{name: name, got: string(b)})
		})
	}
	raw("xhrinteractive", "/push/h1/xhrinteractive/c")
	raw("iframe", "/push/h2/iframe/c")
	raw("sse", "/sse/c")
	raw("ndjson", "/ndjson/c")
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(2*wait + drain))
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","channel":"c"}`)); err != nil {
		t.Fatal(err)
	}
	bg.Go(func() {
		var got strings.Builder
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				e := ended{name: "websocket", got: got.String()}
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					e.code, e.got = ce.Code, ce.Text
				}
				record(e)
				return
			}
			got.Write(b)
		}
	})
	ts.waitCount("c", 5)
	// The long poll last: it has no byte to show until it is answered.
	poll := ts.get("/poll/c?timeout=30")
	bg.Go(func() {
		poll.nc.SetReadDeadline(time.Now().Add(2*wait + drain))
		b, _ := io.ReadAll(poll.nc)
		record(ended{name: "longpoll", got: string(b)})
	})
	testkit.Eventually(t, "the long poll held", func() bool { return ts.Hub().CountSubscribers("c") == 6 })
	const n = 6
	accepted := ts.Stats().Get(stats.SubscriberConnectionsAccepted)

	// The other process of the port.
	sibling, err := listen.TCP(context.Background(), addr, true)
	if err != nil {
		t.Fatalf("a sibling listener in the group of %s: %v", addr, err)
	}
	var siblingAccepted atomic.Int64
	bg.Go(func() {
		for {
			nc, err := sibling.Accept()
			if err != nil {
				return
			}
			siblingAccepted.Add(1)
			nc.Close()
		}
	})
	defer sibling.Close()

	t0 := time.Now()
	var shutErr error
	var down sync.WaitGroup
	down.Go(func() { _, shutErr = ts.shutdown(drain + wait) })

	// Once the drain has closed its first subscriber, no new connection
	// reaches this server: every dial goes to the sibling. Had the
	// listener stayed open through the drain, about half would come here.
	select {
	case <-closed:
	case <-time.After(drain + wait):
		t.Fatal("no subscriber was closed by the drain")
	}
	for i := range 40 {
		nc, err := net.DialTimeout("tcp", addr, wait)
		if err != nil {
			t.Fatalf("dial %d during the drain: %v", i, err)
		}
		nc.Close()
	}
	if open := ts.Stats().Get(stats.CurrentSubscribers); open == 0 {
		t.Errorf("the drain was over before the dials: the test proves nothing (raise DrainTime)")
	}
	if got := ts.Stats().Get(stats.SubscriberConnectionsAccepted); got != accepted {
		t.Errorf("the draining server accepted %d connections after its drain began; its listener must close first", got-accepted)
	}
	testkit.Eventually(t, "the sibling to take the dials", func() bool { return siblingAccepted.Load() >= 40 })

	down.Wait()
	if shutErr != nil {
		t.Errorf("Shutdown: %v", shutErr)
	}
	testkit.Eventually(t, "every subscriber to end", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ends) == n
	})
	mu.Lock()
	defer mu.Unlock()
	var at []time.Duration
	for _, e := range ends {
		at = append(at, e.at.Sub(t0))
		switch e.name {
		case "xhrinteractive", "iframe":
			if strings.Contains(e.got, "eof()") || !strings.HasPrefix(e.got, "HTTP/1.1 200 OK") {
				t.Errorf("%s: a 1.06 stream drained for a restart must end without eof(): %q", e.name, e.got)
			}
		case "sse":
			if !strings.Contains(e.got, "event: close\ndata: {\"reason\":\"restart\",\"code\":1012,\"reconnect\":true}") {
				t.Errorf("sse ended with %q, want the close event restart", e.got)
			}
		case "ndjson":
			if !strings.Contains(e.got, `{"type":"close","reason":"restart","code":1012,"reconnect":true}`) {
				t.Errorf("ndjson ended with %q, want the close line restart", e.got)
			}
		case "longpoll":
			if !strings.Contains(e.got, `"closed":"restart"`) {
				t.Errorf("the long poll was answered %q, want closed restart", e.got)
			}
		case "websocket":
			if e.code != 1012 || e.got != "restart" {
				t.Errorf("websocket closed with %d %q, want 1012 restart", e.code, e.got)
			}
		}
	}
	// Gradual: the drain closes the k-th of n no earlier than k/n of
	// DrainTime after it began (lower bounds only, which a slow machine
	// cannot break); all at once would end them together.
	slices.Sort(at)
	for k, a := range at {
		if earliest := drain * time.Duration(k+1) / n; a < earliest {
			t.Errorf("subscriber %d of %d ended %v after TERM, before %v: not drained gradually", k+1, n, a, earliest)
		}
	}
}

package subscriber_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/stats"
	"github.com/meteorpush/meteor/internal/testkit"
	"github.com/meteorpush/meteor/internal/wire"
)

// wsWait bounds every read and poll in these tests.
const wsWait = 5 * time.Second

// wsServer is a running server with a controller connection to publish:
// the same as the other transports' tests use.
type wsServer struct{ *mServer }

// wsStart runs a server on loopback ports with the built-in configuration,
// changed by edit, and shuts it down when the test ends.
func wsStart(t *testing.T, edit func(*config.Config)) *wsServer {
	t.Helper()
	return &wsServer{mStart(t, edit)}
}

// waitCount polls the hub until channel has n subscribers.
func (ts *wsServer) waitCount(channel string, n int) {
	ts.t.Helper()
	testkit.Eventually(ts.t, fmt.Sprintf("%d subscribers on %s", n, channel), func() bool {
		return ts.Hub().CountSubscribers(channel) == n
	})
}

// wsClient is a WebSocket client connection.
type wsClient struct {
	t *testing.T
	*websocket.Conn
	// wantEpoch are the channels subscribed while they had no message:
	// their first message must come after an epoch frame.
	wantEpoch map[string]bool
}

// dial opens a WebSocket to /ws with the given request header.
func (ts *wsServer) dial(h http.Header) *wsClient {
	ts.t.Helper()
	c, err := ts.tryDial(h, nil)
	if err != nil {
		ts.t.Fatalf("dial /ws: %v", err)
	}
	return c
}

func (ts *wsServer) tryDial(h http.Header, d *websocket.Dialer) (*wsClient, error) {
	if d == nil {
		d = &websocket.Dialer{HandshakeTimeout: wsWait}
	}
	ws, resp, err := d.Dial("ws://"+ts.SubscriberAddr().String()+"/ws", h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w (status %d)", err, resp.StatusCode)
		}
		return nil, err
	}
	ts.t.Cleanup(func() { ws.Close() })
	return &wsClient{t: ts.t, Conn: ws}, nil
}

// send writes one text message.
func (c *wsClient) send(s string) {
	c.t.Helper()
	c.SetWriteDeadline(time.Now().Add(wsWait))
	if err := c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		c.t.Fatalf("send %s: %v", s, err)
	}
}

// next reads one text message.
func (c *wsClient) next() string {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(wsWait))
	typ, p, err := c.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		c.t.Fatalf("got a message of type %d, want text", typ)
	}
	return masked(string(p))
}

// expect reads one text message and compares it with want exactly.
func (c *wsClient) expect(want string) {
	c.t.Helper()
	if got := c.next(); got != want {
		c.t.Fatalf("got %s\nwant %s", got, want)
	}
	if m := subscribedEmptyFrame.FindStringSubmatch(want); m != nil {
		if c.wantEpoch == nil {
			c.wantEpoch = map[string]bool{}
		}
		c.wantEpoch[m[1]] = true
	}
}

var subscribedEmptyFrame = regexp.MustCompile(`^\{"type":"subscribed","channel":"([^"]*)","lastId":0,"epoch":""\}$`)

// expectEpoch reads the epoch frame of channel.
func (c *wsClient) expectEpoch(channel string) {
	c.t.Helper()
	if got, want := c.next(), `{"type":"epoch","channel":"`+channel+`",`+EJ+`}`; got != want {
		c.t.Fatalf("got %s\nwant %s (the first message of a channel subscribed empty)", got, want)
	}
	delete(c.wantEpoch, channel)
}

var msgObject = regexp.MustCompile(`^\{"type":"message","id":(\d+),"channel":"([^"]*)","text":"((?:[^"\\]|\\.)*)","time":(\d+)\}$`)

// expectMsg reads a message object and checks every field exactly, the
// time to be within the test's run.
func (c *wsClient) expectMsg(id uint64, channel, text string) {
	c.t.Helper()
	if c.wantEpoch[channel] {
		c.expectEpoch(channel)
	}
	got := c.next()
	m := msgObject.FindStringSubmatch(got)
	if m == nil || m[1] != strconv.FormatUint(id, 10) || m[2] != channel || m[3] != text {
		c.t.Fatalf("got %s\nwant message %d on %s: %s", got, id, channel, text)
	}
	ms, _ := strconv.ParseInt(m[4], 10, 64)
	if d := time.Since(time.UnixMilli(ms)); d < -time.Second || d > time.Minute {
		c.t.Fatalf("message time %d is %v away from now", ms, d)
	}
}

// expectClose reads until the server's close frame and checks its code.
func (c *wsClient) expectClose(code int) {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(wsWait))
	for {
		_, p, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("read: %v (last message %s), want close %d", err, p, code)
		}
		if ce.Code != code {
			c.t.Fatalf("closed with %d %q, want %d", ce.Code, ce.Text, code)
		}
		return
	}
}

// quiet checks that nothing arrives for d.
func (c *wsClient) quiet(d time.Duration) {
	c.t.Helper()
	c.SetReadDeadline(time.Now().Add(d))
	_, p, err := c.ReadMessage()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		c.t.Fatalf("got %s, %v; want nothing", p, err)
	}
}

// subscribed is the subscribed frame of a channel whose stream has begun
// (a masked epoch); subscribedEmpty that of one with no message yet.
func subscribed(ch string, last uint64) string {
	return fmt.Sprintf(`{"type":"subscribed","channel":"%s","lastId":%d,%s}`, ch, last, EJ)
}

func subscribedEmpty(ch string) string {
	return fmt.Sprintf(`{"type":"subscribed","channel":"%s","lastId":0,"epoch":""}`, ch)
}

func TestWebSocketChannels(t *testing.T) {
	ts := wsStart(t, nil)
	a1 := ts.publish("a", "one")
	a2 := ts.publish("a", "two")
	b1 := ts.publish("b", "three")
	b2 := ts.publish("b", "four")

	c := ts.dial(nil)
	c.send(`{"op":"subscribe","channel":"a","history":"all"}`)
	c.expect(subscribed("a", a2))
	c.expectMsg(a1, "a", "one")
	c.expectMsg(a2, "a", "two")
	c.send(`{"op":"subscribe","channel":"b","since":` + strconv.FormatUint(b1, 10) + `}`)
	c.expect(subscribed("b", b2))
	c.expectMsg(b2, "b", "four")
	c.send(`{"op":"subscribe","channel":"c"}`)
	c.expect(subscribedEmpty("c"))
	c.send(`{"op":"subscribe","channel":"d","last":1}`)
	c.expect(subscribedEmpty("d"))
	for _, ch := range []string{"a", "b", "c", "d"} {
		ts.waitCount(ch, 1)
	}

	c1 := ts.publish("c", `say "hi" <b>`)
	c.expectMsg(c1, "c", `say \"hi\" \u003cb\u003e`)
	a3 := ts.publish("a", "five")
	c.expectMsg(a3, "a", "five")

	c.send(`{"op":"unsubscribe","channel":"b"}`)
	c.expect(`{"type":"unsubscribed","channel":"b"}`)
	ts.waitCount("b", 0)
	ts.publish("b", "unseen")
	b4 := ts.publish("b", "unseen2")
	d1 := ts.publish("d", "six")
	c.expectMsg(d1, "d", "six")

	// Rejoin b from where it left: the two it missed, then live.
	c.send(`{"op":"subscribe","channel":"b","since":` + strconv.FormatUint(b2, 10) + `}`)
	c.expect(subscribed("b", b4))
	c.expectMsg(b4-1, "b", "unseen")
	c.expectMsg(b4, "b", "unseen2")

	st := ts.Stats()
	if got := st.Get(stats.CurrentSubscribers); got != 1 {
		t.Fatalf("CurrentSubscribers %d while one WebSocket is open, want 1", got)
	}
	// A delivery is counted once queued, which may be after the client
	// read it.
	testkit.Eventually(t, "MessagesServed to reach 8", func() bool { return st.Get(stats.MessagesServed) == 8 })
	c.Close()
	for _, ch := range []string{"a", "b", "c", "d"} {
		ts.waitCount(ch, 0)
	}
	testkit.Eventually(t, "CurrentSubscribers 0", func() bool { return st.Get(stats.CurrentSubscribers) == 0 })
	if st.Get(stats.TotalOutboundBytes) == 0 {
		t.Fatalf("TotalOutboundBytes not counted")
	}
}

// TestWebSocketResume: a client that reconnects with the last id it saw
// gets every message published while it was away, once.
func TestWebSocketResume(t *testing.T) {
	ts := wsStart(t, nil)
	c := ts.dial(nil)
	c.send(`{"op":"subscribe","channel":"demo"}`)
	c.expect(subscribedEmpty("demo"))
	ts.waitCount("demo", 1)
	var last uint64
	for i := range 3 {
		last = ts.publish("demo", fmt.Sprint("live", i))
		c.expectMsg(last, "demo", fmt.Sprint("live", i))
	}
	c.Close()
	ts.waitCount("demo", 0)
	var away []uint64
	for i := range 4 {
		away = append(away, ts.publish("demo", fmt.Sprint("away", i)))
	}

	c = ts.dial(nil)
	c.send(fmt.Sprintf(`{"op":"subscribe","channel":"demo","since":%d}`, last))
	c.expect(subscribed("demo", away[3]))
	for i, id := range away {
		c.expectMsg(id, "demo", fmt.Sprint("away", i))
	}
	next := ts.publish("demo", "after")
	c.expectMsg(next, "demo", "after")
	c.quiet(100 * time.Millisecond)
}

// TestWebSocketGap: resuming from a position older than the history kept
// tells the client what it missed.
func TestWebSocketGap(t *testing.T) {
	ts := wsStart(t, func(cfg *config.Config) { cfg.MaxMessagesPerChannel = 3 })
	var ids []uint64
	for i := range 6 {
		ids = append(ids, ts.publish("demo", fmt.Sprint("m", i)))
	}
	c := ts.dial(nil)
	c.send(fmt.Sprintf(`{"op":"subscribe","channel":"demo","since":%d}`, ids[0]))
	c.expect(subscribed("demo", ids[5]))
	c.expect(fmt.Sprintf(`{"type":"gap","channel":"demo","since":%d,"trimmed":%d,`+EJ+`}`, ids[0], ids[2]))
	for i := 3; i < 6; i++ {
		c.expectMsg(ids[i], "demo", fmt.Sprint("m", i))
	}
	// A position past every id the channel handed out belongs to a stream
	// that was lost (a restart): a reset gap.
	c.send(fmt.Sprintf(`{"op":"subscribe","channel":"other","since":%d}`, ids[5]))
	c.expect(subscribedEmpty("other"))
	c.expect(fmt.Sprintf(`{"type":"gap","channel":"other","since":%d,"trimmed":0,"epoch":"","reset":true}`, ids[5]))
	// No gap when the position is still covered.
	c.send(`{"op":"unsubscribe","channel":"demo"}`)
	c.expect(`{"type":"unsubscribed","channel":"demo"}`)
	c.send(fmt.Sprintf(`{"op":"subscribe","channel":"demo","since":%d}`, ids[2]))
	c.expect(subscribed("demo", ids[5]))
	c.expectMsg(ids[3], "demo", "m3")
}

func TestWebSocketBadOps(t *testing.T) {
	ts := wsStart(t, func(cfg *config.Config) { cfg.MaxChannelsPerRequest = 2 })
	c := ts.dial(nil)
	for _, tt := range []struct{ in, err string }{
		{`hello`, "message must be one JSON object"},
		{`{"op":"dance"}`, "unknown op"},
		{`{"op":"subscribe","channel":"demo","extra":1}`, "unknown field"},
		{`{"op":"subscribe","channel":"de mo"}`, "bad channel: channel names are letters, digits, _, % and -"},
		{`{"op":"subscribe","channel":"demo","since":1,"last":1}`, "since, last and history exclude each other"},
		{`{"op":"unsubscribe","channel":"demo"}`, "not subscribed"},
	} {
		c.send(tt.in)
		c.expect(`{"type":"error","error":"` + tt.err + `"}`)
	}
	c.send(`{"op":"subscribe","channel":"demo"}`)
	c.expect(subscribedEmpty("demo"))
	c.send(`{"op":"subscribe","channel":"demo"}`)
	c.expect(`{"type":"error","error":"already subscribed"}`)
	c.send(`{"op":"subscribe","channel":"two"}`)
	c.expect(subscribedEmpty("two"))
	c.send(`{"op":"subscribe","channel":"three"}`)
	c.expect(`{"type":"error","error":"too many channels: at most 2 per connection"}`)
	c.SetWriteDeadline(time.Now().Add(wsWait))
	c.WriteMessage(websocket.BinaryMessage, []byte(`{"op":"ping"}`))
	c.expect(`{"type":"error","error":"binary messages are not accepted"}`)
	// Still open and working after nine refusals.
	c.send(`{"op":"ping"}`)
	c.expect(`{"type":"pong"}`)
	id := ts.publish("demo", "still here")
	c.expectMsg(id, "demo", "still here")

	// Abuse: the tenth refusal within a minute closes with 1008.
	c.send(`nope`)
	c.expect(`{"type":"error","error":"message must be one JSON object"}`)
	c.expectClose(websocket.ClosePolicyViolation)
	ts.waitCount("demo", 0)
}

func TestWebSocketTooBig(t *testing.T) {
	ts := wsStart(t, nil)
	c := ts.dial(nil)
	c.send(`{"op":"subscribe","channel":"demo"}`)
	c.expect(subscribedEmpty("demo"))
	c.send(`{"op":"ping","pad":"` + strings.Repeat("x", wire.MaxClientMessage) + `"}`)
	c.expectClose(websocket.CloseMessageTooBig)
	ts.waitCount("demo", 0)
	// The leave record is written after the hub lets the client go.
	testkit.Eventually(t, "the close logged as messageTooBig", func() bool {
		return strings.Contains(ts.log.String(), "reason=messageTooBig")
	})
}

func TestWebSocketPing(t *testing.T) {
	ts := wsStart(t, nil)
	c := ts.dial(nil)
	pong := make(chan string, 1)
	c.SetPongHandler(func(data string) error { pong <- data; return nil })
	c.WriteControl(websocket.PingMessage, []byte("tick-42"), time.Now().Add(wsWait))
	c.send(`{"op":"ping"}`)
	c.expect(`{"type":"pong"}`) // the protocol pong is handled while reading
	select {
	case got := <-pong:
		if got != "tick-42" {
			t.Fatalf("pong carries %q, want tick-42", got)
		}
	default:
		t.Fatalf("no pong before the reply that followed the ping")
	}
}

func TestWebSocketHeartbeat(t *testing.T) {
	ts := wsStart(t, func(cfg *config.Config) { cfg.HeartbeatInterval = 1 })
	c := ts.dial(nil)
	t0 := time.Now()
	c.expect(`{"type":"ping"}`)
	c.expect(`{"type":"ping"}`)
	if d := time.Since(t0); d < 1500*time.Millisecond || d > 3500*time.Millisecond {
		t.Fatalf("two heartbeats took %v, want about 2s", d)
	}
}

func TestWebSocketShutdown(t *testing.T) {
	ts := wsStart(t, nil)
	c := ts.dial(nil)
	c.send(`{"op":"subscribe","channel":"demo"}`)
	c.expect(subscribedEmpty("demo"))
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), wsWait)
		defer cancel()
		done <- ts.Shutdown(ctx)
	}()
	c.expectClose(websocket.CloseGoingAway)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

func TestWebSocketKick(t *testing.T) {
	ts := wsStart(t, nil)
	c := ts.dial(nil)
	c.send(`{"op":"subscribe","channel":"demo"}`)
	c.expect(subscribedEmpty("demo"))
	other := ts.dial(nil)
	other.send(`{"op":"subscribe","channel":"calm"}`)
	other.expect(subscribedEmpty("calm"))
	if n, _ := ts.Hub().Kick(t.Context(), "demo"); n != 1 {
		t.Fatalf("Kick reached %d clients, want 1", n)
	}
	c.expectClose(4000)
	ts.waitCount("demo", 0)
	id := ts.publish("calm", "unaffected")
	other.expectMsg(id, "calm", "unaffected")
	testkit.Eventually(t, "CurrentSubscribers 1", func() bool { return ts.Stats().Get(stats.CurrentSubscribers) == 1 })
}

// TestWebSocketClientClose: the server answers a client's close frame with
// the same code.
func TestWebSocketClientClose(t *testing.T) {
	ts := wsStart(t, nil)
	c := ts.dial(nil)
	c.send(`{"op":"subscribe","channel":"demo"}`)
	c.expect(subscribedEmpty("demo"))
	c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye"), time.Now().Add(wsWait))
	c.expectClose(websocket.CloseNormalClosure)
	ts.waitCount("demo", 0)
}

func TestWebSocketOrigin(t *testing.T) {
	ts := wsStart(t, func(cfg *config.Config) { cfg.CORSOrigins = "https://a.example, https://b.example" })
	host := ts.SubscriberAddr().String()
	for _, tt := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{"http://" + host, true},
		{"https://b.example", true},
		{"https://evil.example", false},
		{"https://a.example.evil", false},
	} {
		h := http.Header{}
		if tt.origin != "" {
			h.Set("Origin", tt.origin)
		}
		c, err := ts.tryDial(h, nil)
		if (err == nil) != tt.ok {
			t.Fatalf("origin %q: err %v, want allowed %v", tt.origin, err, tt.ok)
		}
		if err == nil {
			c.Close()
		} else if !strings.Contains(err.Error(), "status 403") {
			t.Fatalf("origin %q: %v, want 403", tt.origin, err)
		}
	}
	testkit.Eventually(t, "CurrentSubscribers 0", func() bool { return ts.Stats().Get(stats.CurrentSubscribers) == 0 })
}

// TestWebSocketSlowConsumer: a client that never reads is closed when its
// queue passes MaxPendingBytes, while another gets every message and the
// publisher never waits.
func TestWebSocketSlowConsumer(t *testing.T) {
	ts := wsStart(t, func(cfg *config.Config) { cfg.MaxPendingBytes = 256 << 10 })
	small := &websocket.Dialer{HandshakeTimeout: wsWait, NetDial: func(network, addr string) (net.Conn, error) {
		d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
			return rc.Control(func(fd uintptr) {
				syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
		}}
		return d.Dial(network, addr)
	}}
	stuck, err := ts.tryDial(nil, small)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	stuck.send(`{"op":"subscribe","channel":"c"}`)
	good := ts.dial(nil)
	good.send(`{"op":"subscribe","channel":"c"}`)
	good.expect(subscribedEmpty("c"))
	ts.waitCount("c", 2)

	const n, size = 300, 60000
	text := strings.Repeat("x", size)
	var wg sync.WaitGroup
	var got int
	var readErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		good.SetReadDeadline(time.Now().Add(4 * wsWait))
		if _, p, err := good.ReadMessage(); err != nil || !strings.Contains(string(p), `"type":"epoch"`) {
			readErr = fmt.Errorf("first frame %.80s, %v: want the epoch frame", p, err)
			return
		}
		for got < n {
			_, p, err := good.ReadMessage()
			if err != nil {
				readErr = err
				return
			}
			if !strings.Contains(string(p), text) {
				readErr = fmt.Errorf("message %d: %.80s", got, p)
				return
			}
			got++
		}
	}()
	t0 := time.Now()
	for range n {
		ts.publish("c", text)
	}
	if d := time.Since(t0); d > 2*wsWait {
		t.Fatalf("publishing took %v: the publisher waited", d)
	}
	wg.Wait()
	if readErr != nil || got != n {
		t.Fatalf("good subscriber got %d of %d: %v", got, n, readErr)
	}
	ts.waitCount("c", 1)
	testkit.Eventually(t, "the stuck subscriber closed as slowConsumer", func() bool {
		return strings.Contains(ts.log.String(), "reason=slowConsumer")
	})
}

var (
	wsIdle     = flag.Int("ws.idle", 0, "open this many idle WebSocket connections and report the memory each costs")
	wsIdleBare = flag.Bool("ws.idle.bare", false, "with -ws.idle: connections that never send an operation")
)

// TestWebSocketIdleMemory measures what an idle WebSocket connection costs
// the server, each subscribed to one channel:
//
//	go test -run IdleMemory -v ./internal/subscriber/ -args -ws.idle=2000
//
// The clients are raw sockets in the same process; their few hundred bytes
// each are included in the figure. Without -ws.idle it opens 200 and
// checks that the read loops kept small stacks: a subscribe runs on a
// goroutine of its own (onOwnStack), so the loop's stack stays at 4 KB
// instead of growing to 8 KB (not checked under the race detector, whose
// goroutines need larger stacks).
func TestWebSocketIdleMemory(t *testing.T) {
	n, check := *wsIdle, false
	if n == 0 {
		n, check = 200, !raceEnabled
	}
	ts := wsStart(t, func(cfg *config.Config) { cfg.HeartbeatInterval = 0 })
	ts.publish("idle", "warm")
	measure := func() (heap, stack uint64) {
		for range 4 { // each GC halves an oversized stack at most once
			runtime.GC()
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse, m.StackInuse
	}
	h0, s0 := measure()
	g0 := runtime.NumGoroutine()
	// Clients: raw connections that did the handshake and sent a
	// subscribe, so that the client side holds only a socket and a buffer.
	conns := make([]net.Conn, 0, n)
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	req := "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	sub := maskedText(`{"op":"subscribe","channel":"idle"}`)
	buf := make([]byte, 4096)
	for range n {
		nc, err := net.Dial("tcp", ts.SubscriberAddr().String())
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		conns = append(conns, nc)
		nc.SetDeadline(time.Now().Add(wsWait))
		io.WriteString(nc, req)
		if _, err := nc.Read(buf); err != nil || !strings.HasPrefix(string(buf), "HTTP/1.1 101") {
			t.Fatalf("handshake: %v %.40q", err, buf)
		}
		if !*wsIdleBare {
			nc.Write(sub)
		}
	}
	if !*wsIdleBare {
		ts.waitCount("idle", n)
	} else {
		time.Sleep(time.Second)
	}
	h1, s1 := measure()
	per := func(a, b uint64) float64 { return float64(int64(b)-int64(a)) / float64(n) }
	t.Logf("%d idle WebSocket connections: heap %.0f B, stacks %.0f B, total %.0f B per connection (client sockets included; goroutines %d)",
		n, per(h0, h1), per(s0, s1), per(h0+s0, h1+s1), runtime.NumGoroutine())
	// An idle WebSocket holds no goroutine: its input is read on epoll
	// readiness (outq.Options.OnReadable). Allow for the test's own.
	if g := runtime.NumGoroutine() - g0; g > 5 {
		t.Errorf("%d more goroutines with %d idle WebSocket connections, want none per connection", g, n)
	}
	if stacks := per(s0, s1); check && stacks > 1<<10 {
		t.Errorf("stacks take %.0f B per idle connection, want none: a goroutine per connection", stacks)
	}
}

// maskedText is a client text frame (masked with a zero key).
func maskedText(s string) []byte {
	return append([]byte{0x81, 0x80 | byte(len(s)), 0, 0, 0, 0}, s...)
}

// TestWebSocketProtocolError: gorilla's own close frame for a broken frame
// (here an unmasked client frame) reaches the client through the queue.
func TestWebSocketProtocolError(t *testing.T) {
	ts := wsStart(t, nil)
	nc, err := net.Dial("tcp", ts.SubscriberAddr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(wsWait))
	io.WriteString(nc, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	r := bufio.NewReader(nc)
	resp, err := http.ReadResponse(r, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	nc.Write([]byte{0x81, 2, 'h', 'i'}) // unmasked
	got, err := io.ReadAll(r)
	if len(got) < 4 || got[0] != 0x88 || int(got[2])<<8|int(got[3]) != websocket.CloseProtocolError {
		t.Fatalf("got % x, %v; want a 1002 close frame then the end", got, err)
	}
	testkit.Eventually(t, "CurrentSubscribers 0", func() bool { return ts.Stats().Get(stats.CurrentSubscribers) == 0 })
}

// maskedFrame is a client frame of opcode op (fin set when fin) carrying p.
func maskedFrame(op byte, fin bool, p []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0, 0x80 | byte(len(p)), 7, 7, 7, 7}
	for _, c := range p {
		b = append(b, c^7)
	}
	return b
}

// TestWebSocketReadOnReadiness: what the client sends is read whenever it
// comes, however the bytes are split: a subscribe sent one byte at a time,
// a message in three fragments with a ping between them, and two
// operations in one write, each answered in order.
func TestWebSocketReadOnReadiness(t *testing.T) {
	ts := wsStart(t, nil)
	nc, err := net.Dial("tcp", ts.SubscriberAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(wsWait))
	io.WriteString(nc, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
	r := bufio.NewReader(nc)
	if resp, err := http.ReadResponse(r, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	next := func() string {
		t.Helper()
		h := make([]byte, 2)
		if _, err := io.ReadFull(r, h); err != nil {
			t.Fatalf("read: %v", err)
		}
		n := int(h[1] & 0x7f)
		if n == 126 {
			ext := make([]byte, 2)
			io.ReadFull(r, ext)
			n = int(ext[0])<<8 | int(ext[1])
		}
		p := make([]byte, n)
		io.ReadFull(r, p)
		return masked(string(p))
	}
	for _, b := range maskedText(`{"op":"subscribe","channel":"a"}`) {
		nc.Write([]byte{b})
		time.Sleep(time.Millisecond)
	}
	if got := next(); got != subscribedEmpty("a") {
		t.Fatalf("got %s after a subscribe sent byte by byte", got)
	}
	nc.Write(maskedFrame(0x1, false, []byte(`{"op":"subs`)))
	nc.Write(maskedFrame(0x0, false, []byte(`cribe","chan`)))
	nc.Write(maskedFrame(0x9, true, []byte("between")))
	nc.Write(maskedFrame(0x0, true, []byte(`nel":"b"}`)))
	if got := next(); got != "between" {
		t.Fatalf("got %q, want the pong of the ping between fragments", got)
	}
	if got := next(); got != subscribedEmpty("b") {
		t.Fatalf("got %s after a fragmented subscribe", got)
	}
	nc.Write(append(maskedText(`{"op":"ping"}`), maskedText(`{"op":"unsubscribe","channel":"a"}`)...))
	if got := next(); got != `{"type":"pong"}` {
		t.Fatalf("got %s, want the pong", got)
	}
	if got := next(); got != `{"type":"unsubscribed","channel":"a"}` {
		t.Fatalf("got %s, want unsubscribed", got)
	}
	// Several frames past the first read's 512 bytes, in one write.
	var many []byte
	long := strings.Repeat("l", 80) // each frame under 126 bytes (maskedText)
	for i := range 5 {
		many = append(many, maskedText(fmt.Sprintf(`{"op":"subscribe","channel":"%s%d"}`, long, i))...)
	}
	nc.Write(many)
	for i := range 5 {
		if got := next(); got != subscribedEmpty(fmt.Sprintf("%s%d", long, i)) {
			t.Fatalf("got %s, want subscribed %d of five in one write", got, i)
		}
	}
	nc.Write(maskedFrame(0x2, true, []byte("bin")))
	if got := next(); !strings.Contains(got, "binary messages are not accepted") {
		t.Fatalf("got %s, want the binary refusal", got)
	}
	ts.waitCount("b", 1)
}

// TestWebSocketBadCloseFrame: a close frame with a code a client may not
// send (1005, 999) or a one-byte payload is answered 1002.
func TestWebSocketBadCloseFrame(t *testing.T) {
	ts := wsStart(t, nil)
	for _, payload := range [][]byte{{0x03, 0xed}, {0x03, 0xe7}, {0x03}} {
		nc, err := net.Dial("tcp", ts.SubscriberAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(wsWait))
		io.WriteString(nc, "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		r := bufio.NewReader(nc)
		if resp, err := http.ReadResponse(r, nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("handshake: %v %v", resp, err)
		}
		nc.Write(maskedFrame(0x8, true, payload))
		got, _ := io.ReadAll(r)
		if len(got) < 4 || got[0] != 0x88 || int(got[2])<<8|int(got[3]) != websocket.CloseProtocolError {
			t.Errorf("close payload % x: got % x, want a 1002 close frame", payload, got)
		}
		nc.Close()
	}
}

// TestPolicyCloseWhileSending: a client closed for bad input while it is
// still sending is not reset: the server half-closes after the 1008 close
// frame and reads what still comes for a moment before it closes the
// socket. Closed at once, the next segment the client sends is answered
// with a reset, and a client whose write fails before it has read the close
// frame (a browser) reports 1006 instead of 1008, and reconnects. Here the
// client keeps writing, a message a millisecond, for 20 ms after it has read
// the close frame: none of those writes may fail, in 20 tries.
func TestPolicyCloseWhileSending(t *testing.T) {
	ts := wsStart(t, nil)
	payload := `{"op":"nonsense","pad":"` + strings.Repeat("x", 400) + `"}`
	// One masked text frame (mask key 0), written to the socket itself: the
	// client library refuses to write once it has a close frame.
	bad := append([]byte{0x81, 0x80 | 126, byte(len(payload) >> 8), byte(len(payload)), 0, 0, 0, 0}, payload...)
	failed := 0
	for try := range 20 {
		c := ts.dial(nil)
		c.SetCloseHandler(func(int, string) error { return nil }) // no close reply
		nc := c.NetConn()
		stop := make(chan struct{})
		werr := make(chan error, 1)
		go func() {
			for {
				select {
				case <-stop:
					werr <- nil
					return
				case <-time.After(time.Millisecond):
				}
				nc.SetWriteDeadline(time.Now().Add(wsWait))
				if _, err := nc.Write(bad); err != nil {
					werr <- err
					return
				}
			}
		}()
		var err error
		c.SetReadDeadline(time.Now().Add(wsWait))
		for err == nil {
			_, _, err = c.ReadMessage()
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.ClosePolicyViolation {
			t.Fatalf("try %d: %v, want close 1008", try, err)
		}
		time.Sleep(20 * time.Millisecond)
		close(stop)
		if err := <-werr; err != nil {
			failed++
			t.Logf("try %d: a write within 20 ms of the close frame: %v", try, err)
		}
		c.Close()
	}
	if failed > 0 {
		t.Errorf("%d of 20 connections closed for bad input reset the client's writes", failed)
	}
}

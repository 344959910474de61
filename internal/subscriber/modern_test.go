package subscriber_test

// Helpers of the SSE, NDJSON and long-poll tests: a real server on
// loopback ports, publishing over the controller socket, and raw HTTP over
// net.Dial so that every byte the server writes is seen.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/server"
	"github.com/meteorpush/meteor/internal/stats"
	"github.com/meteorpush/meteor/internal/testkit"
	"github.com/meteorpush/meteor/internal/wire"
)

// mWait bounds every read and poll in these tests.
const mWait = 5 * time.Second

// mServer is a running server with a controller connection to publish.
type mServer struct {
	*server.Server
	t    *testing.T
	once sync.Once
	ctl  *testkit.Controller // dialled on first use; safe for several goroutines
	log  *testkit.Log
}

// decodeJSON decodes one JSON value strictly into v.
func decodeJSON(t *testing.T, s string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
}

// mStart runs a server on loopback ports with the built-in configuration,
// no heartbeats and no retry hint, changed by edit, and shuts it down when
// the test ends.
func mStart(t *testing.T, edit func(*config.Config)) *mServer {
	t.Helper()
	cfg := testkit.Config()
	cfg.SSERetry = 0
	if edit != nil {
		edit(cfg)
	}
	return mStartConfig(t, cfg)
}

// mStartConfig runs a server with cfg, and shuts it down when the test
// ends.
func mStartConfig(t *testing.T, cfg *config.Config) *mServer {
	t.Helper()
	lg := &testkit.Log{}
	srv, err := server.New(cfg, slog.New(slog.NewTextHandler(lg, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	testkit.DenseIDs(srv.Engine())
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	ts := &mServer{Server: srv, t: t, log: lg}
	t.Cleanup(func() {
		if ts.ctl != nil {
			ts.ctl.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), mWait)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", lg.String())
		}
	})
	return ts
}

// publish adds a message over the controller socket and returns its id.
func (ts *mServer) publish(channel, text string) uint64 {
	ts.t.Helper()
	ts.once.Do(func() { ts.ctl = testkit.DialController(ts.t, ts.ControllerAddr().String()) })
	return ts.ctl.Publish(channel, text)
}

// waitSubscribers polls the hub until channel has n clients.
func (ts *mServer) waitSubscribers(channel string, n int) {
	ts.t.Helper()
	testkit.Eventually(ts.t, fmt.Sprintf("%d subscribers on %s", n, channel), func() bool {
		return ts.Hub().CountSubscribers(channel) == n
	})
}

// waitIdle polls until no subscriber connection is counted.
func (ts *mServer) waitIdle() {
	ts.t.Helper()
	testkit.Eventually(ts.t, "CurrentSubscribers back to 0", func() bool {
		return ts.Stats().Get(stats.CurrentSubscribers) == 0
	})
}

// mConn is a raw HTTP client connection.
type mConn struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

// get sends a GET (or another method) with the given extra header lines and
// returns the connection, ready to read the response.
func (ts *mServer) request(method, target string, header ...string) *mConn {
	ts.t.Helper()
	nc, err := net.Dial("tcp", ts.SubscriberAddr().String())
	if err != nil {
		ts.t.Fatalf("dial subscriber: %v", err)
	}
	ts.t.Cleanup(func() { nc.Close() })
	req := method + " " + target + " HTTP/1.1\r\nHost: meteor.test\r\n"
	for _, h := range header {
		req += h + "\r\n"
	}
	nc.SetDeadline(time.Now().Add(mWait))
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		ts.t.Fatalf("write request: %v", err)
	}
	return &mConn{t: ts.t, nc: nc, r: bufio.NewReader(nc)}
}

func (ts *mServer) get(target string, header ...string) *mConn {
	ts.t.Helper()
	return ts.request("GET", target, header...)
}

// header reads the response header, exactly as written.
func (c *mConn) header() string {
	c.t.Helper()
	var b strings.Builder
	for {
		l := c.line()
		b.WriteString(l)
		if l == "\r\n" {
			return b.String()
		}
	}
}

// line reads one line, with its line end, epochs masked.
func (c *mConn) line() string {
	c.t.Helper()
	return masked(c.rawLine())
}

// rawLine reads one line as it came.
func (c *mConn) rawLine() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(mWait))
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read: %v (after %q)", err, l)
	}
	return l
}

// rawEvent reads one SSE block as it came.
func (c *mConn) rawEvent() string {
	c.t.Helper()
	var b strings.Builder
	for {
		l := c.rawLine()
		b.WriteString(l)
		if l == "\n" {
			return b.String()
		}
	}
}

// epochs finds the stream epochs in what the server sends: in cursors
// (@<epoch>) and JSON objects ("epoch":"<epoch>"). They are random, so
// masked replaces each with as many stars, which keeps lengths (expect
// reads len(want) bytes) and still shows where an epoch was sent.
var epochs = regexp.MustCompile(`@[0-9a-z]{8}\b|"epoch":"[0-9a-z]{8}"`)

// E is a masked epoch in a cursor, EJ one in a JSON object.
const (
	E  = "@********"
	EJ = `"epoch":"********"`
)

func masked(s string) string {
	return epochs.ReplaceAllStringFunc(s, func(m string) string {
		if m[0] == '@' {
			return E
		}
		return EJ
	})
}

// expect reads len(want) bytes and fails unless they are want.
func (c *mConn) expect(want string) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(mWait))
	got := make([]byte, len(want))
	n, err := io.ReadFull(c.r, got)
	got = []byte(masked(string(got)))
	if err != nil || string(got) != want {
		c.t.Fatalf("read %q (%v), want %q", got[:n], err, want)
	}
}

// event reads one SSE block, up to and including its blank line.
func (c *mConn) event() string {
	c.t.Helper()
	var b strings.Builder
	for {
		l := c.line()
		b.WriteString(l)
		if l == "\n" {
			return b.String()
		}
	}
}

// eof expects the server to close the connection with nothing more.
func (c *mConn) eof() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(mWait))
	rest, err := io.ReadAll(c.r)
	if err != nil || len(rest) > 0 {
		c.t.Fatalf("read %q (%v), want the end of the stream", rest, err)
	}
}

// body reads the rest of a response until the server closes.
func (c *mConn) body() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(mWait))
	b, err := io.ReadAll(c.r)
	if err != nil {
		c.t.Fatalf("read body: %v (after %q)", err, b)
	}
	return masked(string(b))
}

// streamHeader is the exact header of an SSE or NDJSON response.
func streamHeader(contentType string, cors ...string) string {
	return "HTTP/1.1 200 OK\r\nServer: meteord\r\nContent-Type: " + contentType +
		"\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nX-Accel-Buffering: no\r\n" +
		strings.Join(cors, "") + "Connection: close\r\n\r\n"
}

// shutdown stops the server while the test's connections are open.
func (ts *mServer) shutdown() {
	ts.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), mWait)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		ts.t.Fatalf("Shutdown: %v", err)
	}
}

// TestModernBadRequests: a bad channel, cursor, callback, timeout or event
// option is refused with 400 and the reason, before any subscription.
func TestModernBadRequests(t *testing.T) {
	ts := mStart(t, func(c *config.Config) { c.MaxChannelsPerRequest = 2 })
	for _, tc := range []struct{ target, header, reason string }{
		{"/sse/a.x", "", "bad channel"},
		{"/sse/a%2Fb!", "", "bad channel"},
		{"/ndjson/a/b/c", "", "too many channels"},
		{"/sse/a?since=a:01", "", "bad cursor"},
		{"/sse/a", "Last-Event-ID: a:1,a:2", "bad cursor"},
		{"/sse/a?lastEventId=a", "", "bad cursor"},
		{"/sse/a?event=name", "", "event must be"},
		{"/ndjson/a?since=a:-1", "", "bad cursor"},
		{"/poll/a?since=:1", "", "bad cursor"},
		{"/poll/a?timeout=-1", "", "timeout must be"},
		{"/poll/a?timeout=1.5", "", "timeout must be"},
		{"/poll/a?callback=alert(1)", "", "callback must be"},
		{"/poll/a?callback=", "", "callback must be"},
	} {
		var hdr []string
		if tc.header != "" {
			hdr = append(hdr, tc.header)
		}
		c := ts.get(tc.target, hdr...)
		h := c.header()
		if !strings.HasPrefix(h, "HTTP/1.1 400 Bad Request\r\n") || !strings.Contains(h, "Content-Type: text/plain") {
			t.Errorf("GET %s: header %q, want a 400 in plain text", tc.target, h)
			continue
		}
		if body := c.body(); !strings.Contains(body, tc.reason) {
			t.Errorf("GET %s: body %q, want the reason %q", tc.target, body, tc.reason)
		}
	}
	if n := ts.Hub().CountSubscribers("a"); n != 0 {
		t.Errorf("%d subscribers on a after refused requests", n)
	}
	ts.waitIdle()
}

// TestSameMessageEveryTransport: one message reaches a legacy
// xhrinteractive stream, an SSE stream, an NDJSON stream and a held long
// poll, at once, with the same id and text.
func TestSameMessageEveryTransport(t *testing.T) {
	ts := mStart(t, nil)
	legacy := ts.get("/push/h1/xhrinteractive/all")
	legacy.header()
	sse := ts.get("/sse/all")
	sse.header()
	sse.event() // the starting cursor
	nd := ts.get("/ndjson/all")
	nd.header()
	nd.line() // subscribed
	poll := ts.get("/poll/all?timeout=10")
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+ts.SubscriberAddr().String()+"/ws", nil)
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	defer ws.Close()
	ws.SetReadDeadline(time.Now().Add(mWait))
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","channel":"all"}`)); err != nil {
		t.Fatal(err)
	}
	if _, b, err := ws.ReadMessage(); err != nil || !strings.Contains(string(b), `"subscribed"`) {
		t.Fatalf("websocket: %q, %v; want subscribed", b, err)
	}
	ts.waitSubscribers("all", 5)

	text := `same <b>"text"</b> & more`
	id := ts.publish("all", text)

	wantLegacy := fmt.Sprintf(`<script>p(%d,"all","same \u003cb\u003e\"text\"\u003c/b\u003e \u0026 more");</script>`, id)
	for {
		l := legacy.line()
		if strings.Contains(l, "<script>p(") {
			if !strings.Contains(l, wantLegacy) {
				t.Errorf("legacy: %q, want %q", l, wantLegacy)
			}
			break
		}
	}
	if got, want := sse.event(), fmt.Sprintf("id: all:%d"+E+"\ndata: %s\n\n", id, text); got != want {
		t.Errorf("sse: %q, want %q", got, want)
	}
	var m struct {
		Type, Channel, Text string
		ID                  uint64
		Time                int64
	}
	if l := nd.line(); !strings.HasPrefix(l, `{"type":"epoch"`) {
		t.Errorf("ndjson: %q, want the epoch line first", l)
	}
	decodeJSON(t, nd.line(), &m)
	if m.Type != "message" || m.ID != id || m.Text != text || m.Channel != "all" {
		t.Errorf("ndjson: %+v, want message %d %q", m, id, text)
	}
	if _, b, err := ws.ReadMessage(); err != nil || !strings.HasPrefix(string(b), `{"type":"epoch"`) {
		t.Fatalf("websocket: %s, %v; want the epoch frame first", b, err)
	}
	_, b, err := ws.ReadMessage()
	if err != nil {
		t.Fatalf("websocket: %v", err)
	}
	if want := string(wire.JSONFormat.Encode(&engine.Message{ID: m.ID, Channel: "all", Text: text, Time: time.UnixMilli(m.Time)})); string(b) != want {
		t.Errorf("websocket: %s, want the NDJSON object %s", b, want)
	}
	poll.header()
	var p struct {
		Messages []struct {
			Type, Channel, Text string
			ID                  uint64
			Time                int64
		}
		Cursor string
	}
	decodeJSON(t, poll.body(), &p)
	if len(p.Messages) != 1 || p.Messages[0].ID != id || p.Messages[0].Text != text || p.Cursor != fmt.Sprintf("all:%d"+E, id) {
		t.Errorf("poll: %+v, want message %d %q", p, id, text)
	}
}

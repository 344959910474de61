package server

// What each edge answers when the engine's store cannot be reached or
// answers too late: the engine is a memory engine behind an
// enginetest.Wrapper that makes its calls fail or hang.

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/enginetest"
	"github.com/meteorpush/meteor/internal/engine/memory"
)

// secret is the engine's own text in the injected errors: it goes to the
// log, never to a client.
const secret = "10.0.0.7:6379 connection refused"

func faultyServer(t *testing.T, edit func(*config.Config)) (*testServer, *enginetest.Wrapper) {
	t.Helper()
	m := memory.New(engine.Limits{MaxMessages: 100})
	m.SetDenseIDs()
	w := enginetest.Wrap(m, enginetest.WrapOptions{})
	return startOn(t, w, edit), w
}

var retryAfter = regexp.MustCompile(`\r\nRetry-After: (\d+)\r\n`)

// check503 checks a raw response: 503, a Retry-After of 2 to 6 seconds,
// the reason's name as the body, no engine text.
func check503(t *testing.T, what, resp string) {
	t.Helper()
	if !strings.HasPrefix(resp, "HTTP/1.1 503 Service Unavailable\r\n") {
		t.Fatalf("%s: %q, want 503", what, resp)
	}
	m := retryAfter.FindStringSubmatch(resp)
	if n, _ := strconv.Atoi(m[1]); m == nil || n < 2 || n > 6 {
		t.Errorf("%s: Retry-After %v, want 2 to 6 seconds", what, m)
	}
	if !strings.HasSuffix(resp, "\r\n\r\nstoreUnavailable\n") || strings.Contains(resp, "6379") {
		t.Errorf("%s: body of %q, want storeUnavailable and no engine text", what, resp)
	}
}

// TestStoreUnavailableSubscribers: while the store cannot be read, every
// HTTP transport answers 503 with Retry-After and the reason; the log
// says why (with the engine's text); once the store is back the same
// requests succeed.
func TestStoreUnavailableSubscribers(t *testing.T) {
	ts, w := faultyServer(t, nil)
	ts.publish("c", "before")
	paths := []string{"/push/h1/xhrinteractive/c", "/push/h2/simplepoll/c.h", "/sse/c", "/ndjson/c", "/poll/c?timeout=0"}
	w.Fail(enginetest.OpHistory, enginetest.Unavailable(secret))
	for _, p := range paths {
		check503(t, p, ts.get(p).readAll())
	}
	ts.waitCount("c", 0)
	if !strings.Contains(ts.log.String(), "reason=storeUnavailable") || !strings.Contains(ts.log.String(), "6379") {
		t.Errorf("the log does not say storeUnavailable with the engine's text:\n%s", ts.log.String())
	}
	w.Fail(enginetest.OpHistory, nil)
	if got := ts.get("/push/h2/simplepoll/c.h").readAll(); !strings.HasPrefix(got, "HTTP/1.1 200 OK") || !strings.Contains(got, "before") {
		t.Errorf("after the store came back: %q", got)
	}
	if got := ts.get("/poll/c.h?timeout=0").readAll(); !strings.Contains(got, `"text":"before"`) {
		t.Errorf("poll after the store came back: %q", got)
	}
}

// TestSubscribeTimeout: an engine that does not answer is given up on
// after SubscribeTimeout, with the same 503.
func TestSubscribeTimeout(t *testing.T) {
	ts, w := faultyServer(t, func(c *config.Config) { c.SubscribeTimeout = 1 })
	w.Hang(enginetest.OpHistory, true)
	start := time.Now()
	check503(t, "/sse/c", ts.get("/sse/c").readAll())
	if d := time.Since(start); d < 900*time.Millisecond || d > 4*time.Second {
		t.Errorf("answered after %v, want about SubscribeTimeout (1 s)", d)
	}
	w.Hang(enginetest.OpHistory, false)
}

// TestStoreUnavailableWebSocket: a subscription that fails gets an error
// frame for its channel only; the connection and its other channel go
// on, and the channel can be subscribed again once the store is back.
func TestStoreUnavailableWebSocket(t *testing.T) {
	ts, w := faultyServer(t, nil)
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+ts.SubscriberAddr().String()+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	next := func() map[string]any {
		t.Helper()
		ws.SetReadDeadline(time.Now().Add(wait))
		_, b, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		return m
	}
	send := func(s string) {
		t.Helper()
		if err := ws.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	send(`{"op":"subscribe","channel":"a"}`)
	if m := next(); m["type"] != "subscribed" || m["channel"] != "a" {
		t.Fatalf("got %v, want subscribed a", m)
	}
	w.Fail(enginetest.OpHistory, enginetest.Unavailable(secret))
	send(`{"op":"subscribe","channel":"b"}`)
	m := next()
	if m["type"] != "error" || m["op"] != "subscribe" || m["channel"] != "b" || m["error"] != "storeUnavailable" {
		t.Fatalf("got %v, want a subscribe error for b", m)
	}
	if n, _ := m["retryAfter"].(float64); n < 2 || n > 6 {
		t.Errorf("retryAfter %v, want 2 to 6", m["retryAfter"])
	}
	w.Fail(enginetest.OpHistory, nil)
	id := ts.publish("a", "still here")
	if m := next(); m["type"] != "epoch" || m["channel"] != "a" {
		t.Fatalf("got %v, want the epoch of a's stream (a had no message when subscribed)", m)
	}
	if m := next(); m["type"] != "message" || m["channel"] != "a" || uint64(m["id"].(float64)) != id {
		t.Fatalf("got %v, want message %d of a", m, id)
	}
	send(`{"op":"subscribe","channel":"b"}`)
	if m := next(); m["type"] != "subscribed" || m["channel"] != "b" {
		t.Fatalf("got %v, want subscribed b", m)
	}
	if n := ts.count("b"); n != 1 {
		t.Errorf("COUNTSUBSCRIBERS b = %d, want 1", n)
	}
}

// TestStoreUnavailablePublishers: the controller answers ERR store
// unavailable (each pipelined line, and past PublishTimeout), the API a
// 503 JSON without the engine's text; nothing is stored meanwhile.
func TestStoreUnavailablePublishers(t *testing.T) {
	ts, w := faultyServer(t, func(c *config.Config) { c.PublishTimeout = 1 })
	w.Fail(enginetest.OpPublish, enginetest.Unavailable(secret))
	ctl := ts.controller()
	if r := ctl.Cmd("ADDMESSAGE c x"); r[0] != "ERR store unavailable" {
		t.Errorf("ADDMESSAGE = %q, want ERR store unavailable", r)
	}
	// Two lines in one write: two replies, in order.
	nc, rd := ctl.Conn()
	nc.SetDeadline(time.Now().Add(wait))
	io.WriteString(nc, "ADDMESSAGE c y\r\nADDMESSAGE c z\r\n")
	for range 2 {
		if l, err := rd.ReadString('\n'); err != nil || l != "ERR store unavailable\r\n" {
			t.Errorf("pipelined reply %q, %v", l, err)
		}
	}

	url := "http://" + ts.AdminAddr().String()
	resp, err := http.Post(url+"/api/channels/c/messages", "text/plain", strings.NewReader("hi"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if n, _ := strconv.Atoi(resp.Header.Get("Retry-After")); resp.StatusCode != 503 || n < 2 || n > 6 {
		t.Errorf("API publish: %d, Retry-After %q, want 503 and 2 to 6", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if strings.Contains(string(body), "6379") || !strings.Contains(string(body), `"reason":"storeUnavailable"`) {
		t.Errorf("API body %s: want storeUnavailable and no engine text", body)
	}

	// A store that does not answer: given up after PublishTimeout.
	w.Fail(enginetest.OpPublish, nil)
	w.Hang(enginetest.OpPublish, true)
	start := time.Now()
	if r := ctl.Cmd("ADDMESSAGE c late"); r[0] != "ERR store unavailable" {
		t.Errorf("ADDMESSAGE to a hanging store = %q", r)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 4*time.Second {
		t.Errorf("answered after %v, want about PublishTimeout (1 s)", d)
	}
	w.Hang(enginetest.OpPublish, false)
	if got := ts.get("/push/h/simplepoll/c.h").readAll(); strings.Contains(got, "p(") {
		t.Errorf("a message was stored while the store failed: %q", got)
	}
	if id := ts.publish("c", "back"); id != 1 {
		t.Errorf("first stored id %d, want 1", id)
	}
}

// TestReadyzAsksEngine: /readyz is 503 while the engine's health check
// fails, 200 again once it passes.
func TestReadyzAsksEngine(t *testing.T) {
	ts, w := faultyServer(t, nil)
	url := "http://" + ts.AdminAddr().String() + "/readyz"
	status := func() (int, string) {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := status(); code != 200 {
		t.Fatalf("/readyz = %d, want 200", code)
	}
	w.Fail(enginetest.OpReady, enginetest.Unavailable(secret))
	if code, body := status(); code != 503 || strings.Contains(body, "6379") || !strings.Contains(body, "storeUnavailable") {
		t.Errorf("/readyz = %d %s, want 503 storeUnavailable without engine text", code, body)
	}
	w.Fail(enginetest.OpReady, nil)
	if code, _ := status(); code != 200 {
		t.Errorf("/readyz = %d after the engine recovered, want 200", code)
	}
}

// halfway publishes the first message of each batch and fails the rest,
// as a store that goes away in the middle of a batch does.
type halfway struct{ *memory.Engine }

func (h halfway) Publish(ctx context.Context, pubs ...engine.Publication) ([]*engine.Message, error) {
	msgs, err := h.Engine.Publish(ctx, pubs[:1]...)
	if err != nil || len(pubs) == 1 {
		return msgs, err
	}
	return msgs, enginetest.Unavailable(secret)
}

// TestBatchPublishReportsWhatWasPublished: a batch that fails part way
// says which messages it did publish, so that the client retries only
// the others.
func TestBatchPublishReportsWhatWasPublished(t *testing.T) {
	m := memory.New(engine.Limits{MaxMessages: 100})
	m.SetDenseIDs()
	ts := startOn(t, halfway{m}, nil)
	url := "http://" + ts.AdminAddr().String()
	resp, err := http.Post(url+"/api/publish", "application/json", strings.NewReader(`{"messages":[{"channel":"a","text":"1"},{"channel":"b","text":"2"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Published int `json:"published"`
		Results   []struct {
			ID      uint64 `json:"id"`
			Channel string `json:"channel"`
		} `json:"results"`
		Reason string `json:"reason"`
	}
	json.NewDecoder(resp.Body).Decode(&body)
	resp.Body.Close()
	if resp.StatusCode != 503 || body.Published != 1 || len(body.Results) != 1 || body.Results[0].Channel != "a" || body.Reason != "storeUnavailable" {
		t.Errorf("batch: %d %+v, want 503 with a's message published", resp.StatusCode, body)
	}
	if got := ts.get("/push/h/simplepoll/a.h/b.h").readAll(); !strings.Contains(got, `p(1,"a","1")`) || strings.Contains(got, `"b","2"`) {
		t.Errorf("stored: %q, want a's message only", got)
	}
}

// TestLegacyResyncFailureReconnects: a legacy stream whose resync cannot
// read the history (storeUnavailable) ends without the mode's shutdown
// message, which would stop a 1.06 page for good: the page reconnects and
// resumes. A kick (channelClose) still sends it.
func TestLegacyResyncFailureReconnects(t *testing.T) {
	ts, w := faultyServer(t, nil)
	mode := ts.cfg.Mode("xhrinteractive")
	s := ts.get("/push/h1/xhrinteractive/c")
	s.expect(header(mode, "200 OK", chinfo(mode, "c", 0)))
	ts.waitCount("c", 1)
	w.Fail(enginetest.OpHistory, enginetest.Unavailable(secret))
	w.Reset("c")
	if got := s.readAll(); strings.Contains(got, "eof()") {
		t.Errorf("after a failed resync the stream sent %q: eof() stops a 1.06 page", got)
	}
	w.Fail(enginetest.OpHistory, nil)
	k := ts.get("/push/h2/xhrinteractive/c")
	k.expect(header(mode, "200 OK", chinfo(mode, "c", 0)))
	ts.waitCount("c", 1)
	if n, _ := ts.Hub().Kick(t.Context(), "c"); n != 1 {
		t.Fatalf("kicked %d", n)
	}
	if got := k.readAll(); !strings.Contains(got, "eof()") {
		t.Errorf("a kicked stream ended with %q, want the shutdown message", got)
	}
}

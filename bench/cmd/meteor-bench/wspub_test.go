package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// fakeWSPublisherLocation stands in for Nchan's WebSocket publisher
// location (/pub/<channel>): gorilla/websocket reads the client's frames,
// so a frame that is not a well-formed, masked text frame ends the
// connection with an error the test sees. Each message is recorded and,
// after delay, answered with one text frame of channel information, as
// Nchan answers. closeAfter > 0 closes the connection with status 1011,
// as Nchan does when a publish fails, instead of answering that message.
// ping sends a ping before each answer and counts the pongs that come
// back.
type fakeWSPublisherLocation struct {
	t          *testing.T
	delay      time.Duration
	closeAfter atomic.Int64
	ping       atomic.Bool
	pongs      atomic.Int64

	mu       sync.Mutex
	messages map[string][]string // by channel
	readErr  []error             // what ended each connection, other than a close
	conns    atomic.Int64
}

func newFakeWSPublisherLocation(t *testing.T, delay time.Duration) (*fakeWSPublisherLocation, *endpoint) {
	f := &fakeWSPublisherLocation{t: t, delay: delay, messages: map[string][]string{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	e := &endpoint{Kind: targetNchan, Transport: transportStream, Publish: publishWS, PubURL: srv.URL}
	if err := e.check(); err != nil {
		t.Fatal(err)
	}
	return f, e
}

func (f *fakeWSPublisherLocation) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	channel, ok := strings.CutPrefix(r.URL.Path, "/pub/")
	if !ok {
		http.NotFound(w, r)
		return
	}
	up := websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096}
	c, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer c.Close()
	f.conns.Add(1)
	c.SetPongHandler(func(string) error { f.pongs.Add(1); return nil })
	for n := 1; ; n++ {
		op, msg, err := c.ReadMessage()
		if err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				f.mu.Lock()
				f.readErr = append(f.readErr, err)
				f.mu.Unlock()
			}
			return
		}
		if op != websocket.TextMessage {
			f.mu.Lock()
			f.readErr = append(f.readErr, fmt.Errorf("message %d: opcode %d", n, op))
			f.mu.Unlock()
			return
		}
		f.mu.Lock()
		f.messages[channel] = append(f.messages[channel], string(msg))
		f.mu.Unlock()
		if k := f.closeAfter.Load(); k > 0 && int64(n) == k {
			c.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseInternalServerErr, "500 Internal Server Error"))
			return
		}
		time.Sleep(f.delay)
		if f.ping.Load() {
			if err := c.WriteControl(websocket.PingMessage, []byte("p"), time.Now().Add(time.Second)); err != nil {
				return
			}
		}
		info := fmt.Sprintf("queued messages: %d\r\nlast requested: -1 sec. ago\r\nactive subscribers: 0\r\nlast message id: 1764100000:%d", min(n, 250), n-1)
		if err := c.WriteMessage(websocket.TextMessage, []byte(info)); err != nil {
			return
		}
	}
}

// got returns what channel received, and the connections' read errors.
func (f *fakeWSPublisherLocation) got(channel string) ([]string, []error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.messages[channel]...), append([]error(nil), f.readErr...)
}

// checkStamps fails unless msgs are exactly publications 0..n-1 in order,
// each size bytes.
func checkStamps(t *testing.T, msgs []string, n, size int) {
	t.Helper()
	if len(msgs) != n {
		t.Fatalf("the server received %d messages; %d were sent", len(msgs), n)
	}
	for i, m := range msgs {
		seq, _, ok := parseStamp([]byte(m))
		if !ok || seq != i || len(m) != size {
			t.Fatalf("message %d is %q (seq %d, %d bytes); want seq %d, %d bytes", i, m, seq, len(m), i, size)
		}
	}
}

// TestWSPubOpenLoop: a publisher location that answers each message 5 ms
// after the one before (as Nchan answers after the fan-out) still gets
// the 400 a second asked, pipelined on one connection; it receives every
// message once, in order, intact, and every one is acknowledged, late.
func TestWSPubOpenLoop(t *testing.T) {
	f, e := newFakeWSPublisherLocation(t, 5*time.Millisecond)
	lr := openLoopPastSlowServer(t, e, 8, 200)
	msgs, errs := f.got("c")
	if len(errs) > 0 {
		t.Fatalf("the server's reads ended with %v", errs)
	}
	checkStamps(t, msgs, lr.Published, 200)
	if n := f.conns.Load(); n != 1 {
		t.Fatalf("%d connections; the publisher pipelines on one", n)
	}
}

// rawFrame is a frame as the client put it on the wire.
type rawFrame struct {
	fin     bool
	op      byte
	payload []byte
}

// readRawFrame reads one client frame from r, unmasked, so that a test
// sees the frames and not only the messages gorilla's server reassembles.
func readRawFrame(r io.Reader) (rawFrame, error) {
	var h [8]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return rawFrame{}, err
	}
	f := rawFrame{fin: h[0]&0x80 != 0, op: h[0] & 0x0f}
	if h[1]&0x80 == 0 {
		return f, errors.New("an unmasked client frame")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(r, h[:2]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(h[:2]))
	case 127:
		if _, err := io.ReadFull(r, h[:8]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(h[:8])
	}
	var key [4]byte
	if _, err := io.ReadFull(r, key[:]); err != nil {
		return f, err
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r, f.payload); err != nil {
		return f, err
	}
	for i := range f.payload {
		f.payload[i] ^= key[i&3]
	}
	return f, nil
}

// TestWSPubFrameSizes: every message, whatever its size (each WebSocket
// length encoding, beyond gorilla's default write buffer, up to
// wsMaxMessage), goes out as one final text frame, intact, as Nchan needs
// (it closes the connection at a continuation frame), and is
// acknowledged; a larger one is refused.
func TestWSPubFrameSizes(t *testing.T) {
	frames := make(chan rawFrame, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		nc := c.UnderlyingConn() // nothing read past the handshake yet
		for {
			f, err := readRawFrame(nc)
			if err != nil {
				close(frames)
				return
			}
			frames <- f
			if f.op == websocket.CloseMessage {
				close(frames)
				return
			}
			c.WriteMessage(websocket.TextMessage, []byte("queued messages: 1"))
		}
	}))
	defer srv.Close()
	e := &endpoint{Kind: targetNchan, Transport: transportStream, Publish: publishWS, PubURL: srv.URL}
	p, err := dialWSPub(context.Background(), e, "sizes", 16)
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{40, 125, 126, 200, 4096, 4097, 65535, 65536, 200_000, wsMaxMessage}
	var sent []string
	for i, size := range sizes {
		sent = append(sent, stampText(i, time.Now(), size))
		if ok, err := p.trySend(sent[i], time.Now()); !ok || err != nil {
			t.Fatalf("trySend %d: %v %v", i, ok, err)
		}
	}
	if ok, err := p.trySend(stampText(len(sizes), time.Now(), wsMaxMessage+1), time.Now()); ok || err == nil {
		t.Fatalf("trySend of %d bytes: %v, %v; want an error", wsMaxMessage+1, ok, err)
	}
	if err := p.flush(); err != nil {
		t.Fatal(err)
	}
	acks := p.finish(5 * time.Second)
	if acks.Acked != int64(len(sizes)) || acks.Errors != 0 {
		t.Fatalf("acked %d of %d, %d errors (%s)", acks.Acked, len(sizes), acks.Errors, acks.FirstErr)
	}
	i := 0
	for f := range frames {
		if f.op == websocket.CloseMessage {
			break
		}
		if i == len(sent) {
			t.Fatalf("a frame after the %d messages: op %d, %d bytes", len(sent), f.op, len(f.payload))
		}
		if !f.fin || f.op != websocket.TextMessage || string(f.payload) != sent[i] {
			t.Fatalf("frame %d: final %v, op %d, %d bytes %.50q; sent %d bytes %.50q as one text frame", i, f.fin, f.op, len(f.payload), f.payload, len(sent[i]), sent[i])
		}
		i++
	}
	if i != len(sent) {
		t.Fatalf("%d frames before the close; %d messages sent", i, len(sent))
	}
}

// TestWSPubPing: the server's pings are answered (the pong leaves at
// once, not at the next flush) and the replies still count in order.
func TestWSPubPing(t *testing.T) {
	f, e := newFakeWSPublisherLocation(t, 0)
	f.ping.Store(true)
	p, err := dialWSPub(context.Background(), e, "ping", 4)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if ok, err := p.trySend(stampText(i, time.Now(), 50), time.Now()); !ok || err != nil {
			t.Fatalf("trySend %d: %v %v", i, ok, err)
		}
		if err := p.flush(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-p.reply:
		case <-time.After(5 * time.Second):
			t.Fatalf("no reply to message %d", i)
		}
		// The server reads the pong while it waits for the next message,
		// which is not sent yet.
		for deadline := time.Now().Add(5 * time.Second); f.pongs.Load() < int64(i+1); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d pongs after %d pings", f.pongs.Load(), i+1)
			}
		}
	}
	acks := p.finish(5 * time.Second)
	if acks.Acked != 3 || acks.Errors != 0 {
		t.Fatalf("acked %d of 3, %d errors (%s)", acks.Acked, acks.Errors, acks.FirstErr)
	}
	msgs, errs := f.got("ping")
	if len(errs) > 0 {
		t.Fatalf("the server's reads ended with %v", errs)
	}
	checkStamps(t, msgs, 3, 50)
}

// TestWSPubWindow: with a window of 3, a fourth message waits for an
// answer.
func TestWSPubWindow(t *testing.T) {
	_, e := newFakeWSPublisherLocation(t, 200*time.Millisecond)
	p, err := dialWSPub(context.Background(), e, "w", 3)
	if err != nil {
		t.Fatal(err)
	}
	defer p.finish(0)
	for i := range 4 {
		ok, err := p.trySend(stampText(i, time.Now(), 50), time.Now())
		if err != nil || ok != (i < 3) {
			t.Fatalf("trySend %d: %v, %v; want %v", i, ok, err, i < 3)
		}
	}
	p.flush()
	select {
	case <-p.reply:
	case <-time.After(5 * time.Second):
		t.Fatal("no reply")
	}
	if ok, err := p.trySend(stampText(3, time.Now(), 50), time.Now()); !ok || err != nil {
		t.Fatalf("after a reply: %v, %v", ok, err)
	}
}

// TestWSPubServerClose: a close frame (Nchan's answer to a failed publish)
// is an acknowledgement error with its code and reason, the messages
// after it are not acknowledged, and sending again fails.
func TestWSPubServerClose(t *testing.T) {
	f, e := newFakeWSPublisherLocation(t, 0)
	f.closeAfter.Store(3)
	p, err := dialWSPub(context.Background(), e, "x", 100)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		p.trySend(stampText(i, time.Now(), 50), time.Now())
	}
	p.flush()
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		t.Fatal("the reader did not end at the close frame")
	}
	if _, err := p.trySend("s=5 t=0 ", time.Now()); err == nil {
		t.Fatal("trySend after the server closed: no error")
	}
	acks := p.finish(time.Second)
	if acks.Acked != 2 || acks.Errors != 1 || !strings.Contains(acks.FirstErr, "1011 500 Internal Server Error") {
		t.Fatalf("acked %d, %d errors (%s); want 2 and the close", acks.Acked, acks.Errors, acks.FirstErr)
	}
}

// TestWSPubHandshake: a location that does not upgrade is an error at
// once, with its status.
func TestWSPubHandshake(t *testing.T) {
	_, e := newFakeWSPublisherLocation(t, 0)
	e.PubURL += "/nowhere"
	_, err := dialWSPub(context.Background(), e, "c", 1)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("dial: %v; want the 404", err)
	}
}

// TestWSSyncPublisher: the burst scenario's one-at-a-time publisher waits
// for each answer and dials again for another channel.
func TestWSSyncPublisher(t *testing.T) {
	f, e := newFakeWSPublisherLocation(t, 20*time.Millisecond)
	pub, err := e.newPublisher(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for i := range 3 {
		t0 := time.Now()
		if err := pub.Publish("a", stampText(i, t0, 64)); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(t0); d < 20*time.Millisecond {
			t.Fatalf("Publish returned after %v, before the answer (20 ms)", d)
		}
	}
	if err := pub.Publish("b", stampText(0, time.Now(), 64)); err != nil {
		t.Fatal(err)
	}
	a, errs := f.got("a")
	b, _ := f.got("b")
	if len(errs) > 0 {
		t.Fatalf("the server's reads ended with %v", errs)
	}
	checkStamps(t, a, 3, 64)
	checkStamps(t, b, 1, 64)
	f.closeAfter.Store(1) // the next connection's first message fails
	if err := pub.Publish("c", stampText(0, time.Now(), 64)); err == nil || !strings.Contains(err.Error(), "1011") {
		t.Fatalf("a failed publish: %v; want the close", err)
	}
}

// TestPublishWS: the publish scenario over WebSocket counts what was
// acknowledged, which is what each channel received.
func TestPublishWS(t *testing.T) {
	f, e := newFakeWSPublisherLocation(t, 0)
	res, err := publishRun(context.Background(), e, "p", 2, 16, 1, 100, 200*time.Millisecond, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, errs := f.got("p0")
	b, _ := f.got("p1")
	if len(errs) > 0 {
		t.Fatalf("the server's reads ended with %v", errs)
	}
	if res.Errors != 0 || res.Published < 10 || res.Published != int64(len(a)+len(b)) || res.Pipeline != 16 {
		t.Fatalf("%+v; the server received %d + %d", res, len(a), len(b))
	}
	checkStamps(t, a, len(a), 100)
	checkStamps(t, b, len(b), 100)
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-zeromq/zmq4"
)

// fakeZMQPull stands in for Pushpin's PULL socket (a zmq4 PULL socket
// bound to a free port) and records the messages that arrive, each of
// which must be one frame.
type fakeZMQPull struct {
	sock zmq4.Socket
	mu   sync.Mutex
	msgs [][]byte
	errs []string
}

func startFakeZMQPull(t *testing.T) (*fakeZMQPull, string) {
	t.Helper()
	f := &fakeZMQPull{sock: zmq4.NewPull(context.Background())}
	if err := f.sock.Listen("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.sock.Close() })
	go func() {
		for {
			msg, err := f.sock.Recv()
			if errors.Is(err, context.Canceled) {
				return // closed
			}
			if err != nil {
				continue // a connection ended
			}
			f.mu.Lock()
			if len(msg.Frames) != 1 {
				f.errs = append(f.errs, fmt.Sprintf("a message of %d frames", len(msg.Frames)))
			} else {
				f.msgs = append(f.msgs, msg.Frames[0])
			}
			f.mu.Unlock()
		}
	}()
	return f, f.sock.Addr().String()
}

// got returns the messages, each decoded from "J" and the item's JSON.
func (f *fakeZMQPull) got(t *testing.T) (items []map[string]any, errs []string) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, m := range f.msgs {
		var item map[string]any
		if len(m) == 0 || m[0] != 'J' || json.Unmarshal(m[1:], &item) != nil {
			t.Fatalf("message %d: %q is not J and a JSON item", i, m)
		}
		items = append(items, item)
	}
	return items, append([]string(nil), f.errs...)
}

// waitItems waits until f has n messages (or an error, or 5 s) and
// returns them.
func (f *fakeZMQPull) waitItems(t *testing.T, n int) ([]map[string]any, []string) {
	t.Helper()
	var items []map[string]any
	var errs []string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if items, errs = f.got(t); len(items) >= n || len(errs) > 0 {
			break
		}
	}
	return items, errs
}

// texts returns the message texts of items published to channel in
// format, with the transport's prefix and suffix taken off.
func itemTexts(t *testing.T, items []map[string]any, channel, format, prefix, suffix string) []string {
	t.Helper()
	var texts []string
	for i, item := range items {
		formats, _ := item["formats"].(map[string]any)
		f, _ := formats[format].(map[string]any)
		content, _ := f["content"].(string)
		if item["channel"] != channel || len(formats) != 1 || !strings.HasPrefix(content, prefix) || !strings.HasSuffix(content, suffix) {
			t.Fatalf("item %d is %v", i, item)
		}
		texts = append(texts, strings.TrimSuffix(strings.TrimPrefix(content, prefix), suffix))
	}
	return texts
}

// TestZMQPubOpenLoop: the ZeroMQ publisher sends every message once, in
// order, as one frame each (short and long frames), in the transport's
// format, on one connection.
func TestZMQPubOpenLoop(t *testing.T) {
	for _, c := range []struct {
		transport, format, prefix, suffix string
		size                              int
	}{
		{transportStream, "http-stream", "", "\n", 200},
		{transportSSE, "http-stream", "data: ", "\n\n", 300},
		{transportWS, "ws-message", "", "", 40},
	} {
		f, addr := startFakeZMQPull(t)
		e := endpoint{Kind: targetPushpin, Transport: c.transport, Publish: publishZMQ, ZMQ: addr}
		if err := e.defaults(); err != nil {
			t.Fatal(err)
		}
		pub, err := e.newAsyncPublisher(context.Background(), "z", 8)
		if err != nil {
			t.Fatal(err)
		}
		lr, err := openLoop(context.Background(), pub, loopParams{rate: 1000, size: c.size, duration: 200 * time.Millisecond})
		if err != nil {
			_, errs := f.got(t)
			t.Fatalf("%s: %v; the server: %v", c.transport, err, errs)
		}
		if acks := pub.finish(time.Second); acks.Acked != 0 || acks.Errors != 0 {
			t.Fatalf("%s: acknowledgements %+v from a PUSH socket", c.transport, acks)
		}
		if lr.Published < 190 {
			t.Fatalf("%s: published %d of %d", c.transport, lr.Published, lr.Scheduled)
		}
		items, errs := f.waitItems(t, lr.Published)
		if len(errs) > 0 {
			t.Fatalf("%s: %v", c.transport, errs)
		}
		checkStamps(t, itemTexts(t, items, "z", c.format, c.prefix, c.suffix), lr.Published, c.size)
	}
}

// TestZMQSyncPublisher: the burst scenario's publisher sends each message
// as it is published, and dials again for another channel.
func TestZMQSyncPublisher(t *testing.T) {
	f, addr := startFakeZMQPull(t)
	e := endpoint{Kind: targetPushpin, Transport: transportStream, Publish: publishZMQ, ZMQ: addr}
	if err := e.defaults(); err != nil {
		t.Fatal(err)
	}
	pub, err := e.newPublisher(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	for i := range 3 {
		if err := pub.Publish("a", stampText(i, time.Now(), 64)); err != nil {
			t.Fatal(err)
		}
	}
	items, errs := f.waitItems(t, 3)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	checkStamps(t, itemTexts(t, items, "a", "http-stream", "", "\n"), 3, 64)
	if err := pub.Publish("b", stampText(0, time.Now(), 64)); err != nil {
		t.Fatal(err)
	}
	items, errs = f.waitItems(t, 4)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	checkStamps(t, itemTexts(t, items[3:], "b", "http-stream", "", "\n"), 1, 64)
}

// TestZMQPubRefused: a peer that is not there, or not a PULL socket, is
// an error at once (zmq4 would try again ten times, 250 ms apart).
func TestZMQPubRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	nowhere := ln.Addr().String()
	ln.Close()
	push := zmq4.NewPush(context.Background(), zmq4.WithLogger(log.New(io.Discard, "", 0)))
	defer push.Close()
	if err := push.Listen("tcp://127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, addr, want string }{
		{"nothing listening", nowhere, "refused"},
		{"a PUSH socket", push.Addr().String(), "not compatible"},
	} {
		t0 := time.Now()
		_, err := dialZMQPub(context.Background(), c.addr, transportStream, "z")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s: %v; want %q", c.name, err, c.want)
		}
		if d := time.Since(t0); d > time.Second {
			t.Fatalf("%s: the error came after %v", c.name, d)
		}
	}
}

// TestZMQPubPeerClosed: when the PULL socket goes away, a send soon fails
// and every send after it fails too (none is taken and dropped).
func TestZMQPubPeerClosed(t *testing.T) {
	f, addr := startFakeZMQPull(t)
	p, err := dialZMQPub(context.Background(), addr, transportStream, "z")
	if err != nil {
		t.Fatal(err)
	}
	defer p.finish(0)
	if ok, err := p.trySend(stampText(0, time.Now(), 64), time.Now()); !ok || err != nil {
		t.Fatalf("trySend: %v, %v", ok, err)
	}
	if items, errs := f.waitItems(t, 1); len(items) != 1 || len(errs) > 0 {
		t.Fatalf("%d messages, %v", len(items), errs)
	}
	f.sock.Close()
	sent := 1
	for ; sent < 100; sent++ {
		if _, err := p.trySend(stampText(sent, time.Now(), 64), time.Now()); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if sent == 100 {
		t.Fatal("100 sends to a closed peer, no error")
	}
	for i := range 3 {
		if ok, err := p.trySend(stampText(sent+1+i, time.Now(), 64), time.Now()); ok || err == nil {
			t.Fatalf("a send after the error: %v, %v", ok, err)
		}
		if err := p.flush(); err == nil {
			t.Fatal("flush after the error: no error")
		}
	}
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeZMQPull stands in for Pushpin's PULL socket: it checks the client's
// greeting and READY (socket type PUSH), answers with its own (PULL), and
// records the single-frame messages that follow. refuse answers READY
// with an ERROR command instead.
type fakeZMQPull struct {
	refuse bool
	mu     sync.Mutex
	msgs   [][]byte
	errs   []string
}

func startFakeZMQPull(t *testing.T, refuse bool) (*fakeZMQPull, string) {
	t.Helper()
	f := &fakeZMQPull{refuse: refuse}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(nc)
		}
	}()
	return f, ln.Addr().String()
}

func (f *fakeZMQPull) fail(why string) {
	f.mu.Lock()
	f.errs = append(f.errs, why)
	f.mu.Unlock()
}

func (f *fakeZMQPull) serve(nc net.Conn) {
	defer nc.Close()
	br := bufio.NewReader(nc)
	var g [64]byte
	if _, err := br.Read(g[:1]); err != nil {
		return
	}
	if _, err := ioReadFull(br, g[1:]); err != nil {
		f.fail("greeting: " + err.Error())
		return
	}
	if g[0] != 0xff || g[9] != 0x7f || g[10] != 3 || string(g[12:16]) != "NULL" || g[16] != 0 || g[32] != 0 {
		f.fail("bad greeting")
		return
	}
	server := zmtpGreeting()
	server[32] = 1 // as-server
	nc.Write(server)
	flags, body, err := readZMTPFrame(br)
	if err != nil || flags != 0x04 || !strings.HasPrefix(string(body), "\x05READY\x0bSocket-Type\x00\x00\x00\x04PUSH") {
		f.fail("bad READY: " + string(body))
		return
	}
	if f.refuse {
		nc.Write(appendZMTPFrame(nil, 0x04, append([]byte("\x05ERROR"), "\x0cno, thank you"...)))
		return
	}
	nc.Write(zmtpCommand("READY", "Socket-Type", "PULL"))
	for {
		flags, body, err := readZMTPFrame(br)
		if err != nil {
			return
		}
		if flags&^0x02 != 0 { // 0x02: a long frame; a MORE or command flag is wrong here
			f.fail(fmt.Sprintf("a frame with flags %#x", flags))
			return
		}
		f.mu.Lock()
		f.msgs = append(f.msgs, body)
		f.mu.Unlock()
	}
}

func ioReadFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
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
		f, addr := startFakeZMQPull(t, false)
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
		var items []map[string]any
		var errs []string
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if items, errs = f.got(t); len(items) >= lr.Published || len(errs) > 0 {
				break
			}
		}
		if len(errs) > 0 {
			t.Fatalf("%s: %v", c.transport, errs)
		}
		var texts []string
		for i, item := range items {
			formats, _ := item["formats"].(map[string]any)
			format, _ := formats[c.format].(map[string]any)
			content, _ := format["content"].(string)
			if item["channel"] != "z" || len(formats) != 1 || !strings.HasPrefix(content, c.prefix) || !strings.HasSuffix(content, c.suffix) {
				t.Fatalf("%s: item %d is %v", c.transport, i, item)
			}
			texts = append(texts, strings.TrimSuffix(strings.TrimPrefix(content, c.prefix), c.suffix))
		}
		checkStamps(t, texts, lr.Published, c.size)
	}
}

// TestZMQPubRefused: a peer that answers READY with ERROR is an error at
// once, with its reason.
func TestZMQPubRefused(t *testing.T) {
	_, addr := startFakeZMQPull(t, true)
	_, err := dialZMQPub(context.Background(), addr, transportStream, "z")
	if err == nil || !strings.Contains(err.Error(), "no, thank you") {
		t.Fatalf("dial: %v; want the peer's refusal", err)
	}
}

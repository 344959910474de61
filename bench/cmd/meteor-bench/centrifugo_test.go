package main

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

func TestSSEParserCursorIDs(t *testing.T) {
	stream := "id: news:1796276636896880@k2m9x4qa\n\n" + // the starting cursor: no message
		"id: news:1796276636896881@k2m9x4qa\ndata: s=0 t=5 x\n\n" +
		"id: news:7\ndata: s=1 t=6 x\n\n" +
		"data: s=2 t=7 x\n\n"
	checkSplits(t, "sse ids", func() streamParser { return &sseParser{ids: true} }, []byte(stream),
		[]string{`msg 1796276636896881 "s=0 t=5 x"`, `msg 7 "s=1 t=6 x"`, `msg 0 "s=2 t=7 x"`})
	if got := cursorID([]byte("a:1,b:2")); got != 0 {
		t.Fatalf("cursorID of two channels: %d, want 0", got)
	}
}

// centrifugoStream is what a Centrifugo node sends a subscriber: a ping,
// two publications in one message, a join, a disconnect.
func centrifugoStream() []byte {
	var b []byte
	b = append(b, wsServerText([]byte(`{}`))...)
	b = append(b, wsServerText([]byte(`{"push":{"channel":"c","pub":{"data":"s=0 t=5 x","offset":41}}}`+"\n"+
		`{"push":{"channel":"c","pub":{"data":"s=1 t=\u0036 x","offset":42}}}`))...)
	b = append(b, wsServerText([]byte(`{"push":{"channel":"c","join":{"info":{"client":"x"}}}}`))...)
	b = append(b, wsServerText([]byte(`{"push":{"channel":"","disconnect":{"code":3001,"reason":"shutdown"}}}`))...)
	return b
}

func TestCentrifugoParser(t *testing.T) {
	checkSplits(t, "centrifugo", func() streamParser { return &wsParser{body: wsCentrifugo} }, centrifugoStream(),
		[]string{"ping", `msg 41 "s=0 t=5 x"`, `msg 42 "s=1 t=6 x"`, "other", "eof"})
	p := &wsParser{body: wsCentrifugo}
	collect(p, centrifugoStream())
	if n := p.pongs(); n != 1 {
		t.Fatalf("pongs: %d, want 1", n)
	}
	if n := p.pongs(); n != 0 {
		t.Fatalf("pongs again: %d, want 0", n)
	}
}

// TestCentrifugoJoin plays the server's side of the handshake: the
// commands come in one frame; the subscribe reply carries a recovered
// publication and shares its frame with a push, which the stream's
// reader must still get, in order.
func TestCentrifugoJoin(t *testing.T) {
	cli, srv := net.Pipe()
	defer cli.Close()
	go func() {
		defer srv.Close()
		buf := make([]byte, 4096)
		n, err := srv.Read(buf)
		if err != nil {
			return
		}
		var got string
		(&wsParser{}).Feed(unmask(buf[:n]), func(f *frame) { got = string(f.Text) })
		want := `{"id":1,"connect":{}}` + "\n" + `{"id":2,"subscribe":{"channel":"c","epoch":"ep","offset":40,"recover":true}}`
		if got != want {
			t.Errorf("commands %q, want %q", got, want)
		}
		srv.Write(wsServerText([]byte(`{"id":1,"connect":{"client":"x","ping":25,"pong":true}}`)))
		srv.Write(wsServerText([]byte(`{"id":2,"subscribe":{"recoverable":true,"epoch":"ep2","offset":41,"recovered":true,` +
			`"publications":[{"data":"s=0 t=5 x","offset":41}]}}` + "\n" +
			`{"push":{"channel":"c","pub":{"data":"s=1 t=6 x","offset":42}}}`)))
		srv.Write(wsServerText([]byte(`{"push":{"channel":"c","pub":{"data":"s=2 t=7 x","offset":43}}}`)))
	}()
	cli.SetDeadline(time.Now().Add(5 * time.Second))
	body, epoch, err := centrifugoJoin(cli, bufio.NewReader(cli), "c", resumePos{ID: 40, Epoch: "ep"})
	if err != nil {
		t.Fatal(err)
	}
	if epoch != "ep2" {
		t.Fatalf("epoch %q, want ep2", epoch)
	}
	var got []string
	p := &wsParser{body: wsCentrifugo}
	buf := make([]byte, 4096)
	for len(got) < 3 {
		n, err := body.Read(buf)
		got = append(got, collect(p, buf[:n])...)
		if err != nil {
			break
		}
	}
	want := `msg 41 "s=0 t=5 x",msg 42 "s=1 t=6 x",msg 43 "s=2 t=7 x"`
	if strings.Join(got, ",") != want {
		t.Fatalf("got %q, want %s", got, want)
	}
}

func TestCentrifugoJoinError(t *testing.T) {
	cli, srv := net.Pipe()
	defer cli.Close()
	go func() {
		defer srv.Close()
		io.ReadAtLeast(srv, make([]byte, 64), 1)
		srv.Write(wsServerText([]byte(`{"id":1,"connect":{}}` + "\n" + `{"id":2,"error":{"code":103,"message":"permission denied"}}`)))
	}()
	cli.SetDeadline(time.Now().Add(5 * time.Second))
	_, _, err := centrifugoJoin(cli, bufio.NewReader(cli), "c", resumePos{})
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("err %v, want permission denied", err)
	}
}

func TestCentrifugoAPIError(t *testing.T) {
	if err := centrifugoAPIError([]byte(`{"result":{"offset":1,"epoch":"x"}}`)); err != nil {
		t.Fatal(err)
	}
	if err := centrifugoAPIError([]byte(`{"error":{"code":102,"message":"unknown channel"}}`)); err == nil {
		t.Fatal("no error for an error reply")
	}
	if got := centrifugoPublishBody("c", `s=1 "x"`); got != `{"channel":"c","data":"s=1 \"x\""}` {
		t.Fatalf("body %s", got)
	}
}

// unmask returns a client's frames with their payloads unmasked and the
// mask bit cleared, as a server's.
func unmask(b []byte) []byte {
	var out []byte
	for len(b) >= 2 {
		n, hdr := int(b[1]&0x7f), 2
		switch n {
		case 126:
			n, hdr = int(b[2])<<8|int(b[3]), 4
		case 127:
			return out
		}
		key := b[hdr : hdr+4]
		payload := bytes.Clone(b[hdr+4 : hdr+4+n])
		for i := range payload {
			payload[i] ^= key[i%4]
		}
		out = append(out, wsServerText(payload)...)
		b = b[hdr+4+n:]
	}
	return out
}

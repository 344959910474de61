package subscriber

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/outq"
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/wire"
)

// outputPair returns an Output over a loopback TCP connection and a
// goroutine-read copy of everything the peer receives, complete once the
// returned stop function has run.
func outputPair(t *testing.T) (*output, func() []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	q := outq.New(nc, outq.Options{})
	got := make(chan []byte, 1)
	go func() {
		peer.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, _ := io.ReadAll(peer)
		got <- b
	}()
	t.Cleanup(func() { q.Close(reason.ServerShutdown); peer.Close() })
	return &output{Out: q}, func() []byte {
		q.CloseAfter(nil, reason.ServerShutdown)
		return <-got
	}
}

// TestWriteEach checks that a batch goes out as the messages' encodings
// one after the other, and that writing one costs no allocation whether
// it is one message (its shared encoding) or several (a pooled buffer).
func TestWriteEach(t *testing.T) {
	o, stop := outputPair(t)
	var msgs []*engine.Message
	for i := range 5 {
		msgs = append(msgs, &engine.Message{ID: uint64(i + 1), Channel: "c", Text: "text", Time: time.Now()})
	}
	var want []byte
	for _, m := range msgs {
		want = append(want, m.Encoded(wire.NDJSONFormat)...)
	}
	if !o.WriteEach(msgs[:1], wire.NDJSONFormat, true) || !o.WriteEach(msgs[1:], wire.NDJSONFormat, true) {
		t.Fatal("WriteEach refused")
	}
	for name, batch := range map[string][]*engine.Message{"one": msgs[:1], "several": msgs} {
		if raceOn {
			break // sync.Pool drops some Puts under the race detector
		}
		if n := testing.AllocsPerRun(100, func() { o.WriteEach(batch, wire.NDJSONFormat, true) }); n != 0 {
			t.Errorf("WriteEach(%s) allocates %v times per call, want 0", name, n)
		}
	}
	got := stop()
	if !bytes.HasPrefix(got, want) {
		t.Fatalf("peer got %q..., want it to start with %q", got[:min(len(got), len(want))], want)
	}
}

package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/reason"
)

// readFrame decodes one unmasked server frame, as a client would.
func readFrame(t *testing.T, b []byte) (fin bool, opcode byte, payload, rest []byte) {
	t.Helper()
	if len(b) < 2 {
		t.Fatalf("frame of %d bytes", len(b))
	}
	if b[1]&0x80 != 0 {
		t.Fatalf("server frame is masked: % x", b[:2])
	}
	fin, opcode = b[0]&0x80 != 0, b[0]&0x0f
	if b[0]&0x70 != 0 {
		t.Fatalf("reserved bits set: %08b", b[0])
	}
	n, h := uint64(b[1]&0x7f), 2
	switch n {
	case 126:
		n, h = uint64(binary.BigEndian.Uint16(b[2:])), 4
		if n < 126 {
			t.Fatalf("16-bit length %d is not minimal", n)
		}
	case 127:
		n, h = binary.BigEndian.Uint64(b[2:]), 10
		if n <= 0xffff {
			t.Fatalf("64-bit length %d is not minimal", n)
		}
	}
	if uint64(len(b)-h) < n {
		t.Fatalf("frame says %d payload bytes, has %d", n, len(b)-h)
	}
	return fin, opcode, b[h : h+int(n)], b[h+int(n):]
}

func TestAppendFrameLengths(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 70000} {
		payload := bytes.Repeat([]byte{'a'}, n)
		f := AppendFrame([]byte("x"), wsText, payload)
		if f[0] != 'x' {
			t.Fatalf("AppendFrame overwrote its destination")
		}
		fin, op, got, rest := readFrame(t, f[1:])
		if !fin || op != wsText || !bytes.Equal(got, payload) || len(rest) != 0 {
			t.Fatalf("len %d: fin %v op %d payload %d bytes, %d left over", n, fin, op, len(got), len(rest))
		}
	}
}

func TestControlFrames(t *testing.T) {
	for _, tt := range []struct {
		name string
		got  []byte
		want []byte
	}{
		{"close 1001", CloseFrame(1001, ""), []byte{0x88, 2, 0x03, 0xe9}},
		{"close 4000 with name", CloseFrame(reason.ChannelClosed.Code(), "channelClose"), append([]byte{0x88, 14, 0x0f, 0xa0}, "channelClose"...)},
		{"close 4001", CloseFrame(4001, ""), []byte{0x88, 2, 0x0f, 0xa1}},
		{"long name cut to 123 bytes", CloseFrame(4001, strings.Repeat("x", 200))[:4], []byte{0x88, 125, 0x0f, 0xa1}},
		{"empty close", CloseFrame(0, "x"), []byte{0x88, 0}},
		{"pong", PongFrame("abc"), []byte{0x8a, 3, 'a', 'b', 'c'}},
		{"ping object", PingFrame, append([]byte{0x81, 15}, `{"type":"ping"}`...)},
		{"pong object", PongReplyFrame, append([]byte{0x81, 15}, `{"type":"pong"}`...)},
	} {
		if !bytes.Equal(tt.got, tt.want) {
			t.Errorf("%s: got % x, want % x", tt.name, tt.got, tt.want)
		}
	}
}

func TestReplyObjects(t *testing.T) {
	for _, tt := range []struct {
		frame []byte
		want  string
	}{
		{SubscribedFrame("demo", engine.Position{ID: 42, Epoch: "k2x9"}), `{"type":"subscribed","channel":"demo","lastId":42,"epoch":"k2x9"}`},
		{SubscribedFrame("a%20b", engine.Position{}), `{"type":"subscribed","channel":"a%20b","lastId":0,"epoch":""}`},
		{UnsubscribedFrame("demo"), `{"type":"unsubscribed","channel":"demo"}`},
		{GapFrame(Gap{Channel: "demo", Since: 3, Trimmed: 17, Epoch: "e1"}), `{"type":"gap","channel":"demo","since":3,"trimmed":17,"epoch":"e1"}`},
		{GapFrame(Gap{Channel: "demo", Since: 3, Epoch: "e2", Reset: true}), `{"type":"gap","channel":"demo","since":3,"trimmed":0,"epoch":"e2","reset":true}`},
		{EpochFrame("demo", "k2x9ab01"), `{"type":"epoch","channel":"demo","epoch":"k2x9ab01"}`},
		{SubscribeErrorFrame("demo", "storeUnavailable", 3), `{"type":"error","op":"subscribe","channel":"demo","error":"storeUnavailable","retryAfter":3}`},
		{ErrorFrame(`bad "x"`), `{"type":"error","error":"bad \"x\""}`},
	} {
		fin, op, payload, rest := readFrame(t, tt.frame)
		if !fin || op != wsText || len(rest) != 0 || string(payload) != tt.want {
			t.Errorf("got fin %v op %d %q + %d bytes, want text %s", fin, op, payload, len(rest), tt.want)
		}
	}
}

func TestWebSocketFrameEncodesOnce(t *testing.T) {
	m := &engine.Message{ID: 7, Channel: "demo", Text: "h\xffi</script>\u2028", Time: time.UnixMilli(1700000000123)}
	f := m.Encoded(WebSocketFrame)
	if g := m.Encoded(WebSocketFrame); &g[0] != &f[0] {
		t.Fatalf("the frame was rendered twice")
	}
	_, op, payload, _ := readFrame(t, f)
	want := `{"type":"message","id":7,"channel":"demo","text":"h\ufffdi\u003c/script\u003e\u2028","time":1700000000123}`
	if op != wsText || string(payload) != want {
		t.Fatalf("got op %d %s, want %s", op, payload, want)
	}
	if !utf8.Valid(payload) {
		t.Fatalf("text frame payload is not UTF-8")
	}
	if j := m.Encoded(JSONFormat); &j[0] == &payload[0] || !bytes.Equal(j, payload) {
		t.Fatalf("the frame's payload is not the cached JSON object")
	}
}

func TestParseClientMessage(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want ClientMessage
		err  error
	}{
		{`{"op":"ping"}`, ClientMessage{Op: OpPing}, nil},
		{` { "op" : "ping" } `, ClientMessage{Op: OpPing}, nil},
		{`{"op":"auth","token":"a.b.c"}`, ClientMessage{Op: OpAuth, Token: "a.b.c"}, nil},
		{`{"token":"a.b.c","op":"auth"}`, ClientMessage{Op: OpAuth, Token: "a.b.c"}, nil},
		{`{"op":"auth"}`, ClientMessage{}, ErrMissingField},
		{`{"op":"auth","token":""}`, ClientMessage{}, ErrBadField},
		{`{"op":"auth","token":5}`, ClientMessage{}, ErrBadField},
		{`{"op":"auth","token":"t","channel":"demo"}`, ClientMessage{}, ErrUnknownField},
		{`{"op":"auth","token":"t","token":"u"}`, ClientMessage{}, ErrDuplicateField},
		{`{"op":"subscribe","channel":"demo","token":"t"}`, ClientMessage{}, ErrUnknownField},
		{`{"op":"ping","token":"t"}`, ClientMessage{}, ErrUnknownField},
		{`{"op":"subscribe","channel":"demo"}`, ClientMessage{Op: OpSubscribe, Channel: "demo"}, nil},
		{`{"channel":"demo","op":"subscribe"}`, ClientMessage{Op: OpSubscribe, Channel: "demo"}, nil},
		{`{"op":"subscribe","channel":"d\u0065mo"}`, ClientMessage{Op: OpSubscribe, Channel: "demo"}, nil},
		{`{"op":"subscribe","channel":"demo","since":0}`, ClientMessage{Op: OpSubscribe, Channel: "demo", Resume: true,
			Query: engine.Query{Kind: engine.QueryAfter}}, nil},
		{`{"op":"subscribe","channel":"demo","since":41}`, ClientMessage{Op: OpSubscribe, Channel: "demo", Resume: true, Since: engine.Position{ID: 41},
			Query: engine.Query{Kind: engine.QueryAfter, After: engine.Position{ID: 41}}}, nil},
		{`{"op":"subscribe","channel":"demo","since":41,"epoch":"ab12"}`, ClientMessage{Op: OpSubscribe, Channel: "demo", Resume: true, Since: engine.Position{ID: 41, Epoch: "ab12"},
			Query: engine.Query{Kind: engine.QueryAfter, After: engine.Position{ID: 41, Epoch: "ab12"}}}, nil},
		{`{"op":"subscribe","channel":"demo","epoch":"ab12"}`, ClientMessage{}, ErrUnknownField},
		{`{"op":"subscribe","channel":"demo","since":1,"epoch":"AB"}`, ClientMessage{}, ErrBadField},
		{`{"op":"subscribe","channel":"demo","since":1,"epoch":""}`, ClientMessage{}, ErrBadField},
		{`{"op":"subscribe","channel":"demo","last":5}`, ClientMessage{Op: OpSubscribe, Channel: "demo",
			Query: engine.Query{Kind: engine.QueryLast, Last: 5}}, nil},
		{`{"op":"subscribe","channel":"demo","history":"all"}`, ClientMessage{Op: OpSubscribe, Channel: "demo",
			Query: engine.Query{Kind: engine.QueryAll}}, nil},
		{`{"op":"unsubscribe","channel":"demo"}`, ClientMessage{Op: OpUnsubscribe, Channel: "demo"}, nil},

		{``, ClientMessage{}, ErrBadJSON},
		{`[]`, ClientMessage{}, ErrBadJSON},
		{`"ping"`, ClientMessage{}, ErrBadJSON},
		{`{"op":"ping"`, ClientMessage{}, ErrBadJSON},
		{`{"op":"ping",}`, ClientMessage{}, ErrBadJSON},
		{`{"op":"ping"}{}`, ClientMessage{}, ErrBadJSON},
		{`{"op":"ping"} x`, ClientMessage{}, ErrBadJSON},
		{`{'op':'ping'}`, ClientMessage{}, ErrBadJSON},
		{`{}`, ClientMessage{}, ErrMissingField},
		{`{"op":"jump"}`, ClientMessage{}, ErrUnknownOp},
		{`{"op":"PING"}`, ClientMessage{}, ErrUnknownOp},
		{`{"Op":"ping"}`, ClientMessage{}, ErrUnknownField},
		{`{"op":"ping","x":1}`, ClientMessage{}, ErrUnknownField},
		{`{"op":"ping","channel":"demo"}`, ClientMessage{}, ErrUnknownField},
		{`{"op":"unsubscribe","channel":"demo","since":1}`, ClientMessage{}, ErrUnknownField},
		{`{"op":"ping","op":"ping"}`, ClientMessage{}, ErrDuplicateField},
		{`{"op":1}`, ClientMessage{}, ErrBadField},
		{`{"op":null}`, ClientMessage{}, ErrBadField},
		{`{"op":["ping"]}`, ClientMessage{}, ErrBadField},
		{`{"op":{"a":1}}`, ClientMessage{}, ErrBadField},
		{`{"op":"subscribe"}`, ClientMessage{}, ErrMissingField},
		{`{"op":"subscribe","channel":""}`, ClientMessage{}, ErrBadField},
		{`{"op":"subscribe","channel":7}`, ClientMessage{}, ErrBadField},
		{`{"op":"subscribe","channel":"demo","since":-1}`, ClientMessage{}, ErrBadField},
		{`{"op":"subscribe","channel":"demo","since":1.5}`, ClientMessage{}, ErrBadField},
		{`{"op":"subscribe","channel":"demo","since":1e3}`, ClientMessage{}, ErrBadField},
		{`{"op":"subscribe","channel":"demo","since":"4"}`, ClientMessage{}, ErrBadField},
		{`{"op":"subscribe","channel":"demo","since":18446744073709551615}`, ClientMessage{}, ErrBadField},
		{`{"op":"subscribe","channel":"demo","since":18446744073709551616}`, ClientMessage{}, ErrBadField},
		{`{"op":"subscribe","channel":"demo","last":0}`, ClientMessage{}, ErrBadField},
		{`{"op":"subscribe","channel":"demo","last":2147483648}`, ClientMessage{}, ErrBadField},
		{`{"op":"subscribe","channel":"demo","history":"some"}`, ClientMessage{}, ErrBadField},
		{`{"op":"subscribe","channel":"demo","since":1,"last":2}`, ClientMessage{}, ErrHistoryChoice},
		{`{"op":"subscribe","channel":"demo","last":1,"history":"all"}`, ClientMessage{}, ErrHistoryChoice},
		{`{"op":"ping","pad":"` + strings.Repeat("x", MaxClientMessage) + `"}`, ClientMessage{}, ErrBadJSON},
	} {
		got, err := ParseClientMessage([]byte(tt.in))
		if !errors.Is(err, tt.err) || (err == nil && got != tt.want) {
			t.Errorf("%s: got %+v, %v; want %+v, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// FuzzParseClientMessage checks that the parser never panics and that what
// it accepts is a complete operation; the seeds are in
// testdata/fuzz/FuzzParseClientMessage.
func FuzzParseClientMessage(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseClientMessage(b)
		if err != nil {
			if m.Op != 0 && m.Channel != "" && m.Query.Kind != engine.QueryNone {
				t.Fatalf("error %v with a full result %+v", err, m)
			}
			return
		}
		if len(b) > MaxClientMessage {
			t.Fatalf("accepted %d bytes", len(b))
		}
		switch m.Op {
		case OpPing:
			if m.Channel != "" || m.Query != (engine.Query{}) || m.Token != "" {
				t.Fatalf("ping with fields: %+v", m)
			}
		case OpAuth:
			if m.Token == "" || m.Channel != "" || m.Query != (engine.Query{}) {
				t.Fatalf("auth without a token, or with other fields: %+v", m)
			}
		case OpUnsubscribe, OpSubscribe:
			if m.Channel == "" || m.Token != "" {
				t.Fatalf("no channel, or a token: %+v", m)
			}
			if m.Op == OpUnsubscribe && m.Query != (engine.Query{}) {
				t.Fatalf("unsubscribe with history: %+v", m)
			}
			if m.Resume != (m.Query.Kind == engine.QueryAfter) || m.Resume && m.Query.After != m.Since {
				t.Fatalf("resume position inconsistent: %+v", m)
			}
			if m.Query.Kind == engine.QueryLast && (m.Query.Last < 1 || m.Query.Last > MaxLast) {
				t.Fatalf("last out of range: %+v", m)
			}
		default:
			t.Fatalf("accepted unknown op: %+v", m)
		}
	})
}

func BenchmarkWebSocketFrame(b *testing.B) {
	text := strings.Repeat("hello, world ", 10)
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	for i := 0; b.Loop(); i++ {
		m := &engine.Message{ID: uint64(i), Channel: "demo", Text: text, Time: time.Now()}
		m.Encoded(WebSocketFrame)
	}
}

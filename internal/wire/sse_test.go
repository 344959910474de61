package wire_test

import (
	"strings"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/wire"
)

func TestSSEData(t *testing.T) {
	for in, want := range map[string]string{
		"":            "data: \n",
		"one":         "data: one\n",
		"a\nb":        "data: a\ndata: b\n",
		"a\r\nb":      "data: a\ndata: b\n",
		"a\rb":        "data: a\ndata: b\n",
		"a\n\rb":      "data: a\ndata: \ndata: b\n",
		"a\r\r\nb":    "data: a\ndata: \ndata: b\n",
		"end\n":       "data: end\ndata: \n",
		" lead: x":    "data:  lead: x\n",
		"é\x00\u2028": "data: é\x00\u2028\n",
	} {
		if got := string(wire.AppendSSEData(nil, in)); got != want {
			t.Errorf("AppendSSEData(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestSSEEncoders: a message's event lines are rendered once per form and
// shared.
func TestSSEEncoders(t *testing.T) {
	m := &engine.Message{ID: 7, Channel: "c", Text: "x\ny", Time: time.Now()}
	if got, want := string(m.Encoded(wire.SSEData)), "data: x\ndata: y\n\n"; got != want {
		t.Errorf("SSEData = %q, want %q", got, want)
	}
	if got, want := string(m.Encoded(wire.SSENamed)), "event: c\ndata: x\ndata: y\n\n"; got != want {
		t.Errorf("SSENamed = %q, want %q", got, want)
	}
	a, b := m.Encoded(wire.SSEData), m.Encoded(wire.SSEData)
	if &a[0] != &b[0] {
		t.Error("SSEData rendered twice")
	}
	if got, want := string(wire.AppendSSEID(nil, wire.Cursor{pos("a", 1, ""), pos("b", 2, "e9")})), "id: a:1,b:2@e9\n"; got != want {
		t.Errorf("AppendSSEID = %q, want %q", got, want)
	}
	if got, want := string(wire.SSEGap(wire.Gap{Channel: "c", Since: 3, Trimmed: 5, Epoch: "x1"})), "event: gap\ndata: {\"channel\":\"c\",\"since\":3,\"trimmed\":5,\"epoch\":\"x1\"}\n\n"; got != want {
		t.Errorf("SSEGap = %q, want %q", got, want)
	}
	if got, want := string(wire.SSEClose(reason.ServerShutdown)), "event: close\ndata: {\"reason\":\"shutdown\",\"code\":1001,\"reconnect\":true}\n\n"; got != want {
		t.Errorf("SSEClose = %q, want %q", got, want)
	}
}

func TestPollBody(t *testing.T) {
	m := &engine.Message{ID: 7, Channel: "c", Text: "</script>", Time: time.UnixMilli(1700000000123)}
	cur := wire.Cursor{pos("c", 7, "e1"), pos("d", 0, "")}
	got := string(wire.AppendPollBody(nil, []*engine.Message{m}, cur, []wire.Gap{{Channel: "c", Since: 1, Trimmed: 5, Epoch: "e1"}}, reason.None, "cb"))
	want := `/**/cb({"messages":[{"type":"message","id":7,"channel":"c","text":"\u003c/script\u003e","time":1700000000123}],"cursor":"c:7@e1,d:0","gaps":[{"channel":"c","since":1,"trimmed":5,"epoch":"e1"}]});`
	if got != want {
		t.Errorf("AppendPollBody = %s, want %s", got, want)
	}
	if got, want := string(wire.AppendPollBody(nil, nil, cur, nil, reason.ChannelClosed, "")), `{"messages":[],"cursor":"c:7@e1,d:0","closed":"channelClose","code":4000,"reconnect":false}`; got != want {
		t.Errorf("AppendPollBody closed = %s, want %s", got, want)
	}
	if got := string(wire.AppendPollBody(nil, nil, cur, nil, reason.None, "")); got != `{"messages":[],"cursor":"c:7@e1,d:0"}` {
		t.Errorf("empty poll body = %s", got)
	}
}

// BenchmarkSSEDeliver measures what a subscriber costs per message beyond
// the shared event lines: its id line, joined with them in a pooled buffer
// as the SSE transport does (in a reused buffer: no allocation per
// delivery).
func BenchmarkSSEDeliver(b *testing.B) {
	cur := wire.Cursor{pos("news", 123456, "k2x9ab01"), pos("sport", 654321, "k2x9ab02")}
	for _, tc := range benchTexts {
		b.Run(tc.name, func(b *testing.B) {
			m := &engine.Message{ID: 123457, Channel: "news", Text: tc.text, Time: time.Now()}
			ev := m.Encoded(wire.SSEData)
			b.SetBytes(int64(len(ev)))
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				buf = wire.AppendSSEID(buf[:0], cur)
				buf = append(buf, ev...)
			}
		})
	}
}

// BenchmarkSSEEncode renders a new message each iteration: the cost of the
// first SSE subscriber of a message.
func BenchmarkSSEEncode(b *testing.B) {
	for _, tc := range benchTexts {
		text := tc.text
		if strings.HasPrefix(tc.name, "escaped") {
			text = strings.ReplaceAll(text, "<", "\n")
		}
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(text)))
			b.ReportAllocs()
			for b.Loop() {
				m := &engine.Message{ID: 1, Channel: "news", Text: text}
				m.Encoded(wire.SSEData)
			}
		})
	}
}

func pos(name string, id uint64, epoch string) wire.Position {
	return wire.Position{Channel: name, Position: engine.Position{ID: id, Epoch: epoch}}
}

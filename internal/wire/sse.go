package wire

// The Server-Sent Events wire format (text/event-stream). A message is one
// event: its data lines are the text, one per line of it, and its id is the
// connection's resume cursor after the message, so that an EventSource's
// Last-Event-ID resumes every channel of the subscription. The event and
// data lines are the same for every subscriber and are encoded once per
// message; only the id line is the connection's own. The listener side is
// in internal/subscriber/sse.go; docs/transports.md describes the stream.

import (
	"strconv"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/reason"
)

// sseFormat renders the shared part of a message's event: an optional
// "event: <channel>" line, the data lines and the blank line that ends the
// event.
type sseFormat struct{ named bool }

// SSEData is the engine.Encoder of a message as an unnamed event (its type
// is "message", so EventSource's onmessage gets it): the data lines and the
// blank line.
var SSEData engine.Encoder = &sseFormat{}

// SSENamed is SSEData with an "event: <channel>" line first, for clients
// that listen per channel (?event=channel).
var SSENamed engine.Encoder = &sseFormat{named: true}

// Encode implements engine.Encoder.
func (f *sseFormat) Encode(m *engine.Message) []byte {
	b := make([]byte, 0, len(m.Text)+len(m.Channel)+32)
	if f.named {
		b = append(b, "event: "...)
		b = append(b, m.Channel...)
		b = append(b, '\n')
	}
	return append(AppendSSEData(b, m.Text), '\n')
}

// AppendSSEData appends text as data lines: one "data: " line per line of
// text, lines being ended by "\n", "\r\n" or "\r" as an EventSource splits
// them. Empty text is one empty data line, so that the event is still
// dispatched.
func AppendSSEData(b []byte, text string) []byte {
	b = append(b, "data: "...)
	for i := 0; i < len(text); i++ {
		switch c := text[i]; c {
		case '\r':
			if i+1 < len(text) && text[i+1] == '\n' {
				i++
			}
			b = append(b, "\ndata: "...)
		case '\n':
			b = append(b, "\ndata: "...)
		default:
			b = append(b, c)
		}
	}
	return append(b, '\n')
}

// AppendSSEID appends the id line of an event: the cursor after it.
func AppendSSEID(b []byte, c Cursor) []byte {
	b = append(b, "id: "...)
	return append(AppendCursor(b, c), '\n')
}

// SSEHeartbeat is the comment sent every HeartbeatInterval on an idle
// stream: EventSource ignores it, proxies see traffic.
var SSEHeartbeat = []byte(": ping\n\n")

// AppendSSERetry appends the retry field, the reconnection delay in
// milliseconds that an EventSource uses after the stream ends.
func AppendSSERetry(b []byte, ms int64) []byte {
	b = append(b, "retry: "...)
	b = strconv.AppendInt(b, ms, 10)
	return append(b, '\n')
}

// SSEGap returns the gap event (see Gap).
func SSEGap(g Gap) []byte {
	b := make([]byte, 0, len(g.Channel)+100)
	b = append(b, "event: gap\ndata: "...)
	b = appendGapObject(b, g)
	return append(b, "\n\n"...)
}

// SSEClose returns the close event that precedes the end of the stream:
// {"reason":..,"code":..,"reconnect":..} (AppendCloseObject).
func SSEClose(r reason.Reason) []byte {
	b := make([]byte, 0, 96)
	b = append(b, "event: close\ndata: "...)
	b = AppendCloseObject(b, "", r)
	return append(b, "\n\n"...)
}

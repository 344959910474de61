package wire

import (
	"strconv"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/tmpl"
)

// jsonFormat renders a message as the JSON object that the WebSocket,
// NDJSON and JSON long-poll transports share:
//
//	{"type":"message","id":42,"channel":"demo","text":"hello","time":1700000000123}
//
// time is the publication time in Unix milliseconds. The text is escaped so
// that the object is also safe inside an HTML <script> element (JSONP).
type jsonFormat struct{ newline bool }

// JSONFormat is the engine.Encoder of the JSON message object, with no
// trailing newline (WebSocket text frames, long-poll arrays).
var JSONFormat engine.Encoder = &jsonFormat{}

// NDJSONFormat is JSONFormat followed by a newline (NDJSON streams).
var NDJSONFormat engine.Encoder = &jsonFormat{newline: true}

// Encode implements engine.Encoder.
func (f *jsonFormat) Encode(m *engine.Message) []byte {
	b := make([]byte, 0, len(m.Text)+len(m.Channel)+80)
	b = AppendJSONMessage(b, m)
	if f.newline {
		b = append(b, '\n')
	}
	return b
}

// AppendJSONMessage appends m as a JSON message object.
func AppendJSONMessage(b []byte, m *engine.Message) []byte {
	b = append(b, `{"type":"message","id":`...)
	b = strconv.AppendUint(b, m.ID, 10)
	b = append(b, `,"channel":"`...)
	b = tmpl.JSONString(b, m.Channel)
	b = append(b, `","text":"`...)
	b = tmpl.JSONString(b, m.Text)
	b = append(b, `","time":`...)
	b = strconv.AppendInt(b, m.Time.UnixMilli(), 10)
	return append(b, '}')
}

package transport

// The NDJSON stream (application/x-ndjson): one JSON object per line.
// Messages are NDJSONFormat, encoded once per message; the other lines are
// built here. The listener side is in internal/subscriber/ndjson.go.

import (
	"strconv"

	"github.com/meteorpush/meteor/internal/tmpl"
)

// NDJSONPing is the heartbeat line.
var NDJSONPing = []byte(`{"type":"ping"}` + "\n")

// AppendNDJSONSubscribed appends the line that confirms a channel: lastID
// is where the client stands in it before the first message that follows.
func AppendNDJSONSubscribed(b []byte, channel string, lastID uint64) []byte {
	b = append(b, `{"type":"subscribed","channel":"`...)
	b = tmpl.JSONString(b, channel)
	b = append(b, `","lastId":`...)
	b = strconv.AppendUint(b, lastID, 10)
	return append(b, "}\n"...)
}

// AppendNDJSONGap appends the line saying that the messages of channel
// after since, up to and including trimmed, are no longer stored.
func AppendNDJSONGap(b []byte, channel string, since, trimmed uint64) []byte {
	b = append(b, `{"type":"gap",`...)
	b = appendGapFields(b, channel, since, trimmed)
	return append(b, "}\n"...)
}

// NDJSONClose returns the last line of a stream that the server ends;
// reason is an outq.Reason name ("shutdown", "channelClose", ...).
func NDJSONClose(reason string) []byte {
	b := make([]byte, 0, len(reason)+32)
	b = append(b, `{"type":"close","reason":"`...)
	b = tmpl.JSONString(b, reason)
	return append(b, "\"}\n"...)
}

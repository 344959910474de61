package wire

import (
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/reason"
)

// The NDJSON stream (application/x-ndjson): one JSON object per line.
// Messages are NDJSONFormat, encoded once per message; the other lines are
// built here. The listener side is in internal/subscriber/ndjson.go.

// NDJSONPing is the heartbeat line.
var NDJSONPing = []byte(`{"type":"ping"}` + "\n")

// AppendNDJSONSubscribed appends the line that confirms a channel: p is
// where the client stands in it before the first message that follows.
func AppendNDJSONSubscribed(b []byte, channel string, p engine.Position) []byte {
	b = append(b, `{"type":"subscribed",`...)
	b = appendPositionFields(b, channel, p)
	return append(b, "}\n"...)
}

// AppendNDJSONEpoch appends the epoch line (see EpochFrame).
func AppendNDJSONEpoch(b []byte, channel, epoch string) []byte {
	return append(AppendEpochObject(b, channel, epoch), '\n')
}

// AppendNDJSONGap appends the gap line (see Gap).
func AppendNDJSONGap(b []byte, g Gap) []byte {
	b = append(b, `{"type":"gap",`...)
	b = appendGapFields(b, g)
	return append(b, "}\n"...)
}

// NDJSONClose returns the last line of a stream that the server ends:
// {"type":"close","reason":..,"code":..,"reconnect":..}.
func NDJSONClose(r reason.Reason) []byte {
	b := AppendCloseObject(make([]byte, 0, 96), "close", r)
	return append(b, '\n')
}

package wire

// The JSON long-poll answer: every message the poll collected, the cursor
// to poll from next and the gaps found, in one JSON object, optionally
// wrapped for JSONP. The listener side is in internal/subscriber/poll.go.

import (
	"strconv"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/reason"
)

// AppendPollBody appends {"messages":[...],"cursor":"...","gaps":[...]}
// ("gaps" only when there are some). Each message is JSONFormat, encoded
// once per message. When callback is not empty the object is wrapped as
// /**/callback(...); callback must already be checked (ValidCallback in
// package subscriber): it is written as it is.
func AppendPollBody(b []byte, msgs []*engine.Message, cur Cursor, gaps []Gap, closed reason.Reason, callback string) []byte {
	if callback != "" {
		// The leading comment keeps a body that starts with attacker-chosen
		// bytes from being read as another file type (Rosetta Flash).
		b = append(b, "/**/"...)
		b = append(b, callback...)
		b = append(b, '(')
	}
	b = append(b, `{"messages":[`...)
	for i, m := range msgs {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, m.Encoded(JSONFormat)...)
	}
	b = append(b, `],"cursor":"`...)
	b = AppendCursor(b, cur)
	b = append(b, '"')
	if len(gaps) > 0 {
		b = append(b, `,"gaps":[`...)
		for i, g := range gaps {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendGapObject(b, g)
		}
		b = append(b, ']')
	}
	if closed != reason.None {
		// "closed" (the name, as before), with the code and whether to
		// poll again.
		b = append(b, `,"closed":"`...)
		b = append(b, closed.String()...)
		b = append(b, `","code":`...)
		b = strconv.AppendUint(b, uint64(closed.Code()), 10)
		b = append(b, `,"reconnect":`...)
		b = strconv.AppendBool(b, closed.Reconnect())
	}
	b = append(b, '}')
	if callback != "" {
		b = append(b, ");"...)
	}
	return b
}

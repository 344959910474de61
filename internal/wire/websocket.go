package wire

// The WebSocket transport's wire format: server frames built by hand (they
// go through an outq.Conn, never through a WebSocket library's writer), the
// client's JSON operations and the server's JSON replies. The listener side
// (upgrade, read loop) is in internal/subscriber/websocket.go; the protocol
// is described in docs/websocket.md.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"math"
	"strconv"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/tmpl"
)

// WebSocket opcodes (RFC 6455, section 5.2).
const (
	wsText  = 0x1
	wsClose = 0x8
	wsPing  = 0x9
	wsPong  = 0xa
	wsFin   = 0x80
)

// AppendFrame appends one unmasked, final WebSocket frame of the given
// opcode carrying payload: a server frame (RFC 6455, section 5.2).
func AppendFrame(b []byte, opcode byte, payload []byte) []byte {
	n := len(payload)
	switch {
	case n < 126:
		b = append(b, wsFin|opcode, byte(n))
	case n <= math.MaxUint16:
		b = append(b, wsFin|opcode, 126, byte(n>>8), byte(n))
	default:
		b = append(b, wsFin|opcode, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// TextFrame returns payload as one server text frame.
func TextFrame(payload []byte) []byte {
	return AppendFrame(make([]byte, 0, len(payload)+10), wsText, payload)
}

// PongFrame returns the pong that answers a protocol ping carrying data
// (at most 125 bytes, as the ping's was).
func PongFrame(data string) []byte {
	return AppendFrame(make([]byte, 0, len(data)+2), wsPong, []byte(data))
}

// wsFrameFormat frames the JSON message object as a server text frame.
type wsFrameFormat struct{}

// WebSocketFrame is the engine.Encoder of a message as a complete WebSocket
// text frame (header and JSONFormat payload): a message is framed once for
// every WebSocket subscriber.
var WebSocketFrame engine.Encoder = &wsFrameFormat{}

// Encode implements engine.Encoder.
func (*wsFrameFormat) Encode(m *engine.Message) []byte {
	return TextFrame(m.Encoded(JSONFormat))
}

// CloseFrame returns a close frame with code and the UTF-8 text why (at
// most 123 bytes: a reason's log name, which a browser's CloseEvent shows
// as its reason); code 0 gives an empty close frame (the echo of a close
// that carried no code). The codes come from package reason (Reason.Code);
// docs/websocket.md lists them.
func CloseFrame(code uint16, why string) []byte {
	if code == 0 {
		return []byte{wsFin | wsClose, 0}
	}
	why = why[:min(len(why), 123)]
	b := make([]byte, 0, 4+len(why))
	b = append(b, wsFin|wsClose, byte(2+len(why)), byte(code>>8), byte(code))
	return append(b, why...)
}

// Server → client objects that are not messages, framed once.
var (
	// PingFrame is the heartbeat, visible to browser JavaScript (unlike a
	// protocol ping).
	PingFrame = TextFrame([]byte(`{"type":"ping"}`))
	// PongReplyFrame answers the client's {"op":"ping"}.
	PongReplyFrame = TextFrame([]byte(`{"type":"pong"}`))
)

// SubscribedFrame confirms a subscription: p.ID is the newest id the
// channel had handed out when its history was read (0: none), p.Epoch the
// stream's epoch ("" before the channel's first message).
func SubscribedFrame(channel string, p engine.Position) []byte {
	b := make([]byte, 0, len(channel)+80)
	b = append(b, `{"type":"subscribed",`...)
	b = appendPositionFields(b, channel, p)
	return TextFrame(append(b, '}'))
}

// UnsubscribedFrame confirms that no message of channel follows.
func UnsubscribedFrame(channel string) []byte {
	b := make([]byte, 0, len(channel)+48)
	b = append(b, `{"type":"unsubscribed","channel":"`...)
	b = tmpl.JSONString(b, channel)
	return TextFrame(append(b, `"}`...))
}

// GapFrame tells a client that messages of g.Channel it has not seen are
// no longer stored (see Gap).
func GapFrame(g Gap) []byte {
	b := make([]byte, 0, len(g.Channel)+100)
	b = append(b, `{"type":"gap",`...)
	b = appendGapFields(b, g)
	return TextFrame(append(b, '}'))
}

// EpochFrame tells a client the epoch of channel's stream when its first
// message since the subscription comes in a stream the client was not
// told of (the channel had none when it subscribed), so that the client
// can resume in it with "epoch" (a restart since is then a reset gap).
func EpochFrame(channel, epoch string) []byte {
	return TextFrame(AppendEpochObject(make([]byte, 0, len(channel)+48), channel, epoch))
}

// ErrorFrame reports a refused client operation; the connection stays open.
func ErrorFrame(reason string) []byte {
	b := make([]byte, 0, len(reason)+32)
	b = append(b, `{"type":"error","error":"`...)
	b = tmpl.JSONString(b, reason)
	return TextFrame(append(b, `"}`...))
}

// AuthErrorFrame refuses the subscription to channel (an op subscribe)
// for its token: status is 401 (no token, or a bad one: check names the
// check that failed) or 403 (the token does not grant the channel, check
// "channel"). The connection and its other subscriptions stay.
func AuthErrorFrame(channel string, status int, check, why string) []byte {
	b := make([]byte, 0, len(channel)+len(why)+96)
	b = append(b, `{"type":"error","op":"subscribe","channel":"`...)
	b = tmpl.JSONString(b, channel)
	b = append(b, `","status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"reason":"`...)
	b = tmpl.JSONString(b, check)
	b = append(b, `","error":"`...)
	b = tmpl.JSONString(b, why)
	return TextFrame(append(b, `"}`...))
}

// SubscribeErrorFrame reports that the subscription to channel failed
// because the store could not be reached: the connection and its other
// subscriptions stay; the client subscribes again after retryAfter
// seconds. why is a reason's log name ("storeUnavailable").
func SubscribeErrorFrame(channel, why string, retryAfter int) []byte {
	b := make([]byte, 0, len(channel)+96)
	b = append(b, `{"type":"error","op":"subscribe","channel":"`...)
	b = tmpl.JSONString(b, channel)
	b = append(b, `","error":"`...)
	b = tmpl.JSONString(b, why)
	b = append(b, `","retryAfter":`...)
	b = strconv.AppendInt(b, int64(retryAfter), 10)
	return TextFrame(append(b, '}'))
}

// Op is a client operation.
type Op uint8

// The client operations.
const (
	OpSubscribe Op = iota + 1
	OpUnsubscribe
	OpPing
	// OpAuth presents a token ({"op":"auth","token":"<jwt>"}): the first
	// one, or a fresh one before the current one expires.
	OpAuth
)

// ClientMessage is one parsed client → server message.
type ClientMessage struct {
	Op      Op
	Channel string // OpSubscribe, OpUnsubscribe
	// Query is the history a subscription asks for: engine.QueryNone when
	// the message names none (live messages only).
	Query engine.Query
	// Resume is true when the message gave "since"; Since is then where
	// the client stands (the last id it saw, and the epoch of the stream
	// it saw it in when the message gave "epoch"), and Query asks for the
	// messages after it.
	Resume bool
	Since  engine.Position
	// Token is the JWT of OpAuth.
	Token string
}

// MaxClientMessage bounds the size of a client message, in bytes: room for
// an auth op whose RS256 token grants many channels.
const MaxClientMessage = 8192

// MaxLast bounds "last".
const MaxLast = 1<<31 - 1

// Errors of ParseClientMessage. Their text is what the error frame says.
var (
	// ErrBadJSON means the message is not one JSON object.
	ErrBadJSON = errors.New("message must be one JSON object")
	// ErrUnknownOp means "op" names no operation.
	ErrUnknownOp = errors.New("unknown op")
	// ErrUnknownField means the message has a field the op does not take.
	ErrUnknownField = errors.New("unknown field")
	// ErrDuplicateField means a field appears twice.
	ErrDuplicateField = errors.New("duplicate field")
	// ErrBadField means a field has the wrong type or value.
	ErrBadField = errors.New("bad field value")
	// ErrMissingField means the op needs a field that is absent.
	ErrMissingField = errors.New("missing field")
	// ErrHistoryChoice means more than one of since, last and history.
	ErrHistoryChoice = errors.New("since, last and history exclude each other")
)

// ParseClientMessage parses a client message strictly: one JSON object
// whose field names match exactly, each at most once, with the fields its
// op takes and no other. It does not check channel names.
func ParseClientMessage(b []byte) (ClientMessage, error) {
	var m ClientMessage
	if len(b) > MaxClientMessage {
		return m, ErrBadJSON
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return m, ErrBadJSON
	}
	var (
		op, channel, history, epoch, token string
		since, last                        json.Number
		seen                               uint8
	)
	const (
		fOp = 1 << iota
		fChannel
		fSince
		fLast
		fHistory
		fEpoch
		fToken
	)
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return m, ErrBadJSON
		}
		key, _ := t.(string)
		var bit uint8
		switch key {
		case "op":
			bit = fOp
		case "channel":
			bit = fChannel
		case "since":
			bit = fSince
		case "last":
			bit = fLast
		case "history":
			bit = fHistory
		case "epoch":
			bit = fEpoch
		case "token":
			bit = fToken
		default:
			return m, ErrUnknownField
		}
		if seen&bit != 0 {
			return m, ErrDuplicateField
		}
		seen |= bit
		if t, err = dec.Token(); err != nil {
			return m, ErrBadJSON
		}
		var ok bool
		switch bit {
		case fOp:
			op, ok = t.(string)
		case fChannel:
			channel, ok = t.(string)
		case fHistory:
			history, ok = t.(string)
		case fEpoch:
			epoch, ok = t.(string)
		case fToken:
			token, ok = t.(string)
		case fSince:
			since, ok = t.(json.Number)
		case fLast:
			last, ok = t.(json.Number)
		}
		if !ok {
			return m, ErrBadField
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return m, ErrBadJSON
	}
	if _, err := dec.Token(); err != io.EOF {
		return m, ErrBadJSON
	}
	if seen&fOp == 0 {
		return m, ErrMissingField
	}
	switch op {
	case "subscribe":
		m.Op = OpSubscribe
	case "unsubscribe":
		m.Op = OpUnsubscribe
	case "ping":
		m.Op = OpPing
	case "auth":
		m.Op = OpAuth
	default:
		return m, ErrUnknownOp
	}
	if m.Op == OpPing {
		if seen != fOp {
			return m, ErrUnknownField
		}
		return m, nil
	}
	if m.Op == OpAuth {
		switch {
		case seen&fToken == 0:
			return m, ErrMissingField
		case seen != fOp|fToken:
			return m, ErrUnknownField
		case token == "":
			return m, ErrBadField
		}
		m.Token = token
		return m, nil
	}
	if seen&fToken != 0 {
		return m, ErrUnknownField
	}
	if seen&fChannel == 0 {
		return m, ErrMissingField
	}
	if channel == "" {
		return m, ErrBadField
	}
	m.Channel = channel
	if m.Op == OpUnsubscribe {
		if seen != fOp|fChannel {
			return m, ErrUnknownField
		}
		return m, nil
	}
	if seen&fEpoch != 0 {
		if seen&fSince == 0 {
			return m, ErrUnknownField
		}
		if !ValidEpoch(epoch) {
			return m, ErrBadField
		}
	}
	switch seen &^ (fOp | fChannel | fEpoch) {
	case 0:
	case fSince:
		n, err := strconv.ParseUint(string(since), 10, 64)
		if err != nil || n == math.MaxUint64 {
			return m, ErrBadField
		}
		m.Resume, m.Since = true, engine.Position{ID: n, Epoch: epoch}
		m.Query = engine.Query{Kind: engine.QueryAfter, After: m.Since}
	case fLast:
		n, err := strconv.ParseUint(string(last), 10, 64)
		if err != nil || n == 0 || n > MaxLast {
			return m, ErrBadField
		}
		m.Query = engine.Query{Kind: engine.QueryLast, Last: int(n)}
	case fHistory:
		if history != "all" {
			return m, ErrBadField
		}
		m.Query = engine.Query{Kind: engine.QueryAll}
	default:
		return m, ErrHistoryChoice
	}
	return m, nil
}

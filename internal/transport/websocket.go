package transport

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
	"sync"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/outq"
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

// CloseCode is a WebSocket close status code that the server sends. The
// code tells the client whether to reconnect; docs/websocket.md lists them.
type CloseCode uint16

// The close codes the server sends.
const (
	CloseNormal          CloseCode = 1000 // echo of a client's close without a code
	CloseGoingAway       CloseCode = 1001 // server shutdown: reconnect
	CloseProtocolError   CloseCode = 1002 // broken framing: do not reconnect as is
	ClosePolicyViolation CloseCode = 1008 // bad input repeatedly: do not reconnect
	CloseTooBig          CloseCode = 1009 // a client message over the size limit: do not reconnect
	CloseServerError     CloseCode = 1011 // the server failed (the engine): reconnect later
	CloseKicked          CloseCode = 4000 // an administrator closed a channel: do not reconnect automatically
	CloseSlowConsumer    CloseCode = 4001 // fell behind: reconnect and resume
)

// String returns the close reason's name as it appears in logs and metrics;
// codes that mean the same as an outq.Reason have that reason's name.
func (c CloseCode) String() string {
	switch c {
	case ClosePolicyViolation:
		return "policyViolation"
	case CloseTooBig:
		return "messageTooBig"
	case CloseProtocolError:
		return "protocolError"
	case CloseServerError:
		return "serverError"
	}
	return c.Reason().String()
}

// Reason returns the outq.Reason that the close is recorded with, or
// outq.ReasonNone for the codes that only the WebSocket transport has.
func (c CloseCode) Reason() outq.Reason {
	switch c {
	case CloseGoingAway:
		return outq.ServerShutdown
	case CloseKicked:
		return outq.ChannelClosed
	case CloseSlowConsumer:
		return outq.SlowConsumer
	case ClosePolicyViolation, CloseTooBig, CloseProtocolError, CloseServerError:
		return outq.ReasonNone
	}
	return outq.RemoteClosed
}

// CloseFrame returns a close frame with code; code 0 gives an empty close
// frame (the echo of a close that carried no code).
func CloseFrame(code CloseCode) []byte {
	if code == 0 {
		return []byte{wsFin | wsClose, 0}
	}
	return []byte{wsFin | wsClose, 2, byte(code >> 8), byte(code)}
}

// Server → client objects that are not messages, framed once.
var (
	// PingFrame is the heartbeat, visible to browser JavaScript (unlike a
	// protocol ping).
	PingFrame = TextFrame([]byte(`{"type":"ping"}`))
	// PongReplyFrame answers the client's {"op":"ping"}.
	PongReplyFrame = TextFrame([]byte(`{"type":"pong"}`))
)

// SubscribedFrame confirms a subscription; lastID is the newest id the
// channel held when its history was read (0: none).
func SubscribedFrame(channel string, lastID uint64) []byte {
	b := make([]byte, 0, len(channel)+64)
	b = append(b, `{"type":"subscribed","channel":"`...)
	b = tmpl.JSONString(b, channel)
	b = append(b, `","lastId":`...)
	b = strconv.AppendUint(b, lastID, 10)
	return TextFrame(append(b, '}'))
}

// UnsubscribedFrame confirms that no message of channel follows.
func UnsubscribedFrame(channel string) []byte {
	b := make([]byte, 0, len(channel)+48)
	b = append(b, `{"type":"unsubscribed","channel":"`...)
	b = tmpl.JSONString(b, channel)
	return TextFrame(append(b, `"}`...))
}

// GapFrame tells a resuming client that the messages after since, up to
// and including trimmed, are no longer stored.
func GapFrame(channel string, since, trimmed uint64) []byte {
	b := make([]byte, 0, len(channel)+80)
	b = append(b, `{"type":"gap","channel":"`...)
	b = tmpl.JSONString(b, channel)
	b = append(b, `","since":`...)
	b = strconv.AppendUint(b, since, 10)
	b = append(b, `,"trimmed":`...)
	b = strconv.AppendUint(b, trimmed, 10)
	return TextFrame(append(b, '}'))
}

// ErrorFrame reports a refused client operation; the connection stays open.
func ErrorFrame(reason string) []byte {
	b := make([]byte, 0, len(reason)+32)
	b = append(b, `{"type":"error","error":"`...)
	b = tmpl.JSONString(b, reason)
	return TextFrame(append(b, `"}`...))
}

// Op is a client operation.
type Op uint8

// The client operations.
const (
	OpSubscribe Op = iota + 1
	OpUnsubscribe
	OpPing
)

// ClientMessage is one parsed client → server message.
type ClientMessage struct {
	Op      Op
	Channel string // OpSubscribe, OpUnsubscribe
	// Query is the history a subscription asks for: engine.QueryNone when
	// the message names none (live messages only).
	Query engine.Query
	// Resume is true when the message gave "since"; Since is then the
	// last id the client saw, and Query asks for the ids after it.
	Resume bool
	Since  uint64
}

// MaxClientMessage bounds the size of a client message, in bytes.
const MaxClientMessage = 1024

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
		op, channel, history string
		since, last          json.Number
		seen                 uint8
	)
	const (
		fOp = 1 << iota
		fChannel
		fSince
		fLast
		fHistory
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
	default:
		return m, ErrUnknownOp
	}
	if m.Op == OpPing {
		if seen != fOp {
			return m, ErrUnknownField
		}
		return m, nil
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
	switch seen &^ (fOp | fChannel) {
	case 0:
	case fSince:
		n, err := strconv.ParseUint(string(since), 10, 64)
		if err != nil || n == math.MaxUint64 {
			return m, ErrBadField
		}
		m.Resume, m.Since = true, n
		m.Query = engine.Query{Kind: engine.QuerySince, Since: n + 1}
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

// WebSocketClient is one WebSocket connection as the hub sees it. It
// implements hub.Client; every byte it sends goes through Out.
type WebSocketClient struct {
	Output

	mu      sync.Mutex
	sent    int       // guarded by mu; messages written
	closing CloseCode // guarded by mu; the close frame queued, 0 before
}

// Deliver writes msgs, pre-framed and cached on each message, as one write
// when there are several.
func (c *WebSocketClient) Deliver(msgs []*engine.Message, live bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing != 0 || len(msgs) == 0 {
		return c.closing == 0
	}
	if !c.WriteEach(msgs, WebSocketFrame, live) {
		return false
	}
	c.sent += len(msgs)
	return true
}

// Lagged closes the connection as a slow consumer: the client should
// reconnect and resume from the last id it saw.
func (c *WebSocketClient) Lagged() { c.Close(CloseSlowConsumer) }

// Kick closes the connection because an administrator closed one of its
// channels.
func (c *WebSocketClient) Kick() { c.Close(CloseKicked) }

// Close queues a close frame with code and closes the connection once it
// is written. Only the first close frame is sent; when the queue is already
// past its bound the connection closes at once, without one.
func (c *WebSocketClient) Close(code CloseCode) {
	c.closeWith(code, CloseFrame(code), code.Reason())
}

// Echo answers the client's close frame with code (0: the client's frame
// had none) and closes the connection, unless the server already sent its
// own close frame.
func (c *WebSocketClient) Echo(code CloseCode) {
	f := CloseFrame(code)
	if code == 0 {
		code = CloseNormal
	}
	c.closeWith(code, f, outq.RemoteClosed)
}

func (c *WebSocketClient) closeWith(code CloseCode, frame []byte, r outq.Reason) {
	c.mu.Lock()
	if c.closing != 0 {
		c.mu.Unlock()
		return
	}
	c.closing = code
	c.mu.Unlock()
	c.CloseAfter(frame, r)
}

// Closing returns the code of the close frame queued, or 0.
func (c *WebSocketClient) Closing() CloseCode {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// CloseName returns the name of the reason the connection closed for, given
// the reason outq reported: the close code's when outq knew none.
func (c *WebSocketClient) CloseName(r outq.Reason) string {
	if r == outq.ReasonNone {
		if code := c.Closing(); code != 0 {
			return code.String()
		}
	}
	return r.String()
}

// Sent returns the number of messages written.
func (c *WebSocketClient) Sent() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent
}

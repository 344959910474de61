// Package reason names why a connection ended, once for the whole server:
// subscriber connections of every transport and controller connections.
//
// A Reason carries its log name (the names of the legacy reasons are those
// Meteor 1.06 logged), the WebSocket close code that tells a client about
// it, and whether a client told of it should connect again. Logs, metrics,
// the close events of the SSE and NDJSON streams, the long-poll answer and
// WebSocket close frames all come from this table, and the JavaScript
// client decides by the code, never by the name (web/public/meteor.js
// keeps the same table; a browser test compares the two).
package reason

// Reason says why a connection was closed.
type Reason uint8

// The reasons a connection is closed.
const (
	None                    Reason = iota
	ResponseComplete               // a non-persistent response was sent whole
	MaxMessagesReached             // MaxMessages messages were sent
	MaxTimeReached                 // the connection outlived MaxTime
	NewSubscriberWithSameID        // a new persistent subscription took its hostid
	DisconnectRequested            // /disconnect/<hostid> named it
	ServerShutdown                 // the server is stopping
	RemoteClosed                   // the client closed its end
	WriteFailed                    // the socket refused a write
	SlowConsumer                   // it fell behind: its unsent output passed the bound, or the fan-out's queue overflowed
	WriteStuck                     // its output made no progress within the write timeout
	ChannelClosed                  // an administrator closed its channel
	StoreUnavailable               // the engine's store could not be reached
	StreamReset                    // a channel's stream was lost or skipped messages that cannot be recovered
	PolicyViolation                // bad input, repeatedly
	MessageTooBig                  // a client message over the size limit
	ProtocolError                  // broken framing
	ServerError                    // the server failed
	Quit                           // the controller client sent QUIT
	LineTooLong                    // a controller line over MaxControllerLine
	ReadFailed                     // reading from the connection failed
	Panic                          // a panic while serving the connection
	ServerRestart                  // the process is draining for a restart: its siblings on the shared port take the client
	IdleTimeout                    // a controller connection sent no complete line within ControllerIdleTimeout
	AuthFailed                     // a controller connection was refused for authentication three times
	TokenExpired                   // the token or signed URL that admitted a subscriber expired: get a new one, then resume
	numReasons
)

// WebSocket close codes that do not come from a Reason.
const (
	// CodeNormal is a normal closure (RFC 6455, section 7.4.1): the code a
	// reason without a code of its own is sent with.
	CodeNormal uint16 = 1000
)

type info struct {
	name      string
	code      uint16 // WebSocket close code
	reconnect bool   // a client told of it should connect again
}

var table = [numReasons]info{
	None:                    {"none", CodeNormal, true},
	ResponseComplete:        {"responseComplete", CodeNormal, true},
	MaxMessagesReached:      {"maxMessageCountReached", CodeNormal, true},
	MaxTimeReached:          {"maxTime", CodeNormal, true},
	NewSubscriberWithSameID: {"newSubscriberWithSameID", 4005, false},
	DisconnectRequested:     {"disconnectRequested", 4006, false},
	ServerShutdown:          {"shutdown", 1001, true},
	RemoteClosed:            {"remoteClosed", CodeNormal, false},
	WriteFailed:             {"writeError", 1011, true},
	SlowConsumer:            {"slowConsumer", 4001, true},
	WriteStuck:              {"writeTimeout", 4001, true},
	ChannelClosed:           {"channelClose", 4000, false},
	StoreUnavailable:        {"storeUnavailable", 4004, true},
	StreamReset:             {"streamReset", 4002, true},
	PolicyViolation:         {"policyViolation", 1008, false},
	MessageTooBig:           {"messageTooBig", 1009, false},
	ProtocolError:           {"protocolError", 1002, false},
	ServerError:             {"serverError", 1011, true},
	Quit:                    {"quit", CodeNormal, false},
	LineTooLong:             {"lineTooLong", 1009, false},
	ReadFailed:              {"readError", 1011, true},
	Panic:                   {"panic", 1011, true},
	// 1012 is "Service Restart" in the IANA registry of close codes.
	ServerRestart: {"restart", 1012, true},
	// The controller's own: no client of the subscriber port is told of
	// them, so they share the codes of reasons that decide alike.
	IdleTimeout: {"idleTimeout", CodeNormal, true},
	AuthFailed:  {"authFailed", 1008, false},
	// A subscriber told of it connects again with a fresh token (the
	// client's getToken) and resumes where it stood.
	TokenExpired: {"tokenExpired", 4003, true},
}

// String returns the reason's name as it appears in logs, metrics and the
// close events that clients read.
func (r Reason) String() string {
	if r < numReasons {
		return table[r].name
	}
	return "unknown"
}

// Code returns the WebSocket close code (RFC 6455, section 7.4) that tells
// a client of r: 1000-1011 where the protocol has one, 4000-4999 for the
// reasons of this server (docs/websocket.md lists them).
func (r Reason) Code() uint16 {
	if r < numReasons {
		return table[r].code
	}
	return 1011
}

// Reconnect reports whether a client told of r should connect again (and
// resume where it stood). A client must not come back after a reason that
// reports false: an administrator or another subscription ended it, or its
// input is refused.
func (r Reason) Reconnect() bool {
	return r < numReasons && table[r].reconnect
}

// All lists every reason but None, for metrics that report each one and
// for the tests that compare the table with the JavaScript client's.
func All() []Reason {
	out := make([]Reason, 0, numReasons-1)
	for r := ResponseComplete; r < numReasons; r++ {
		out = append(out, r)
	}
	return out
}

// ForCode returns the reason that a WebSocket close code names, and
// whether one does. Several reasons share some codes (1000, 1009, 1011, 4001);
// ForCode returns the first of them.
func ForCode(code uint16) (Reason, bool) {
	for r := ResponseComplete; r < numReasons; r++ {
		if table[r].code == code {
			return r, true
		}
	}
	return None, false
}

// Lingers reports whether a connection closed for r is closed because of
// what the client sent, which it may still be sending: its end is a
// lingering close (half-close, read and drop what still comes for a
// moment, then close), since closing a socket with unread input makes the
// kernel send a reset that can destroy the last frame on its way, the
// close frame that tells the client why. A token that expired or failed
// is among them: the client may be sending its refresh right then.
func (r Reason) Lingers() bool {
	return r == PolicyViolation || r == MessageTooBig || r == ProtocolError || r == AuthFailed || r == TokenExpired
}

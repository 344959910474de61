package outq

// Reason says why a subscriber connection was closed. It appears in the
// leave log record, in statistics and in metrics.
type Reason uint8

// The reasons a subscriber connection is closed. The names of the legacy
// ones are those Meteor 1.06 logged.
const (
	ReasonNone              Reason = iota
	ResponseComplete               // a non-persistent response was sent whole
	MaxMessagesReached             // MaxMessages messages were sent
	MaxTimeReached                 // the connection outlived MaxTime
	NewSubscriberWithSameID        // a new persistent subscription took its hostid
	DisconnectRequested            // /disconnect/<hostid> named it
	ServerShutdown                 // the server is stopping
	RemoteClosed                   // the client closed its end
	WriteFailed                    // the socket refused a write
	SlowConsumer                   // its unsent output passed the byte bound
	WriteStuck                     // its output made no progress within the write timeout
	ChannelClosed                  // an administrator closed its channel
)

var reasonNames = [...]string{
	ReasonNone:              "none",
	ResponseComplete:        "responseComplete",
	MaxMessagesReached:      "maxMessageCountReached",
	MaxTimeReached:          "maxTime",
	NewSubscriberWithSameID: "newSubscriberWithSameID",
	DisconnectRequested:     "disconnectRequested",
	ServerShutdown:          "shutdown",
	RemoteClosed:            "remoteClosed",
	WriteFailed:             "writeError",
	SlowConsumer:            "slowConsumer",
	WriteStuck:              "writeTimeout",
	ChannelClosed:           "channelClose",
}

// String returns the reason's name as it appears in logs and metrics.
func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// Reasons lists every reason, for metrics that report each one.
func Reasons() []Reason {
	out := make([]Reason, 0, len(reasonNames)-1)
	for r := ResponseComplete; int(r) < len(reasonNames); r++ {
		out = append(out, r)
	}
	return out
}

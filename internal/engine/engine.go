// Package engine defines where channel streams live and how a published
// message reaches every node that has subscribers for its channel.
//
// The memory engine (package memory) is the default: one process, one
// store. A cluster engine implements the same interface on a shared store,
// which is remote, can fail and can lose data; the contract is written for
// that store, and the conformance suite (package enginetest) holds every
// engine to it.
//
// # Ids and epochs
//
// Each channel is a stream of messages. A message's ID is unique within
// its channel and never reused: each channel's next ID is
// max(last + 1, now in microseconds), so ids keep growing across a
// restart of the process or of the store, even when the store lost every
// message, and a client that resumes "after N" with only a number (a
// Meteor 1.06 page) still receives every message published since. Ids stay
// below 2^53 (JavaScript's exact integers) until the year 2255. They are
// not dense: nothing may assume that ID+1 is the next message.
//
// Beside the ids, each channel's stream has an Epoch: a random string
// drawn when the stream begins (the channel's first message, or its first
// subscription, in a store that has no record of it). A stream that was
// lost (a restart of the memory engine, a flush of the store) begins again
// with a new epoch, so a client whose position carries the old epoch is
// told that its history is gone (a gap) instead of resuming silently into
// another stream.
package engine

import (
	"context"
	"crypto/rand"
	"errors"
	mrand "math/rand/v2"
	"sync/atomic"
	"time"
)

// Message is one published message. A Message is immutable once the engine
// has handed it out; every subscriber of every transport shares it.
type Message struct {
	Channel string
	// ID identifies the message within its channel; ids increase within a
	// channel and are never reused (see the package documentation).
	ID uint64
	// Epoch is the stream the message belongs to.
	Epoch string
	Text  string
	Time  time.Time // when the engine accepted the message

	enc atomic.Pointer[encoding] // rendered forms, one per Encoder
}

// Position returns where a client stands once it has seen m.
func (m *Message) Position() Position { return Position{ID: m.ID, Epoch: m.Epoch} }

// Encoder renders a message for one wire format. Encoders are compared by
// identity: the same Encoder value always produces the same bytes for the
// same message, so its result is cached on the message.
type Encoder interface {
	Encode(m *Message) []byte
}

type encoding struct {
	enc  Encoder
	b    []byte
	next *encoding
}

// Encoded returns m rendered by e, rendering it on first use only, so that a
// message is encoded once per wire format however many subscribers get it.
// The returned bytes must not be modified.
func (m *Message) Encoded(e Encoder) []byte {
	head := m.enc.Load()
	for n := head; n != nil; n = n.next {
		if n.enc == e {
			return n.b
		}
	}
	b := e.Encode(m)
	for {
		node := &encoding{enc: e, b: b, next: head}
		if m.enc.CompareAndSwap(head, node) {
			return b
		}
		head = m.enc.Load()
		for n := head; n != nil; n = n.next {
			if n.enc == e {
				return n.b
			}
		}
	}
}

// Position is where a client stands in one channel's stream: the last
// message it saw, or chose to skip. Epoch is "" from a client that cannot
// carry one (a Meteor 1.06 page's .r<N>, a cursor written by hand), or
// before the stream began.
type Position struct {
	ID    uint64
	Epoch string
}

// Stream is a channel's state when it was read.
type Stream struct {
	// Epoch identifies the stream; "" when the store has no record of the
	// channel.
	Epoch string
	Count int    // messages stored
	First uint64 // ID of the oldest stored message, 0 when none
	Last  uint64 // ID of the newest stored message, 0 when none
	// Trimmed is the ID of the newest message that the stream no longer
	// holds (dropped by count, age or Clear), 0 when none was dropped.
	Trimmed uint64
}

// Top returns the ID of the newest message the stream has handed out,
// stored or not, 0 when none.
func (s Stream) Top() uint64 { return max(s.Last, s.Trimmed) }

// Gap reports whether a client at p has missed messages that are no longer
// stored: p belongs to another stream (another epoch; or, for a position
// without an epoch, one past the newest id this stream handed out), or
// messages after p were trimmed.
func (s Stream) Gap(p Position) bool {
	if p.Epoch != "" {
		if p.Epoch != s.Epoch {
			return true
		}
	} else if p.ID > s.Top() {
		return true
	}
	return p.ID < s.Trimmed
}

// Reset reports whether p belongs to another stream than s: a gap in which
// nothing can be said of what was lost.
func (s Stream) Reset(p Position) bool {
	if p.Epoch != "" {
		return p.Epoch != s.Epoch
	}
	return p.ID > s.Top()
}

// QueryKind selects which stored messages History returns.
type QueryKind uint8

// The kinds of history query.
const (
	QueryNone  QueryKind = iota // no messages, only the stream's state
	QueryAfter                  // the messages after Query.After
	QueryLast                   // the newest Query.Last messages
	QueryAll                    // every stored message
)

// Query selects stored messages of one channel.
type Query struct {
	Kind QueryKind
	// After is the position a QueryAfter resumes from: the messages whose
	// ID is greater than After.ID, or every stored message when After has
	// an epoch other than the stream's (that position is in another
	// stream, so none of this one's messages has been seen). A position
	// without an epoch past the stream's Top is answered with the
	// messages after it (none): it may be this stream's, rolled back by a
	// store that lost its last writes, whose older messages the client
	// has seen; Stream.Reset still reports it.
	After Position
	Last  int // for QueryLast
}

// HistoryRequest asks for one channel's stored messages.
type HistoryRequest struct {
	Channel string
	Query   Query
}

// History is a channel's stored messages selected by a Query, and the
// channel's stream when they were read: one snapshot.
type History struct {
	Stream   Stream
	Messages []*Message // in ID order
}

// Publication is one message to publish.
type Publication struct {
	Channel string
	Text    string
}

// ChannelInfo describes one channel that holds messages.
type ChannelInfo struct {
	Name     string
	Messages int
	Last     uint64 // ID of the newest stored message
}

// Handler receives what an engine delivers to this node. Its methods
// return promptly: they never wait for a subscriber, a lock held during
// I/O, or the engine.
type Handler interface {
	// HandleMessages is called with messages of one subscribed channel, in
	// ID order, each message once; calls for one channel never overlap,
	// calls for different channels may be concurrent. The handler must
	// not keep msgs (the slice; the messages are its to keep).
	HandleMessages(channel string, msgs []*Message)
	// HandleReset says that the delivery of channels (nil: every channel
	// subscribed) may have skipped messages: a reconnection to the store,
	// a fail-over, a delivery queue that overflowed, a new epoch. It is
	// called in order with HandleMessages: after the calls that came
	// before the skipped messages and before any call with a message that
	// follows them. The handler resynchronises its subscribers of those
	// channels from History. cause says what happened, for the log.
	HandleReset(channels []string, cause error)
}

// Engine stores channel streams and delivers published messages to every
// node subscribed to their channel.
//
// Every method but Start may be called concurrently. Methods that take a
// context give up when it ends, with an error that wraps its cause; a
// store that cannot be reached gives an error that wraps ErrUnavailable.
type Engine interface {
	// Start begins delivery to h and returns once the engine can serve,
	// or the reason it cannot. It is called once, before any other method.
	Start(ctx context.Context, h Handler) error
	// Publish stores pubs and delivers them, in order per channel: storing
	// and delivering a message is one step, so a subscriber that read the
	// stream either finds a message in it or is delivered it. It returns
	// the stored messages, in the order of pubs; on error, those published
	// before it.
	Publish(ctx context.Context, pubs ...Publication) ([]*Message, error)
	// History reads several channels' streams in one round trip; the
	// result has one History per request, in order.
	History(ctx context.Context, reqs ...HistoryRequest) ([]History, error)
	// Subscribe returns once every message published to channels after it
	// returns reaches the Handler, until Unsubscribe. The hub never calls
	// Subscribe and Unsubscribe concurrently for one channel, and never
	// subscribes a channel twice without an Unsubscribe between.
	Subscribe(ctx context.Context, channels ...string) error
	// Unsubscribe ends the delivery of channels' messages to the Handler
	// (an engine may go on delivering them; the hub ignores them).
	Unsubscribe(ctx context.Context, channels ...string) error
	// Clear drops the stored messages of channel ("": every channel). The
	// streams keep their epoch and their newest id, so that a resuming
	// client is told of its gap.
	Clear(ctx context.Context, channel string) error
	// Close stops every goroutine the engine started and waits for them,
	// or until ctx ends. Every method returns ErrClosed after it.
	Close(ctx context.Context) error
}

// Limits bound what each channel's stream keeps.
type Limits struct {
	MaxMessages int           // newest messages kept per channel; <= 0 keeps none
	MaxAge      time.Duration // older messages are dropped; 0 keeps them forever
	// Channel, when set, gives the limits of one channel (those of its
	// namespace), in place of MaxMessages and MaxAge. Engines call it on
	// every publish and history read and for every channel they sweep,
	// from any goroutine, with their own locks held: it returns at once,
	// never blocks and never calls the engine.
	Channel func(channel string) (maxMessages int, maxAge time.Duration)
}

// Of returns the limits of channel: Channel's answer, or MaxMessages and
// MaxAge when Channel is nil.
func (l *Limits) Of(channel string) (maxMessages int, maxAge time.Duration) {
	if l.Channel != nil {
		return l.Channel(channel)
	}
	return l.MaxMessages, l.MaxAge
}

// LimitSetter is the ability to change the limits while running (a
// configuration reload); they apply from the next publish or sweep.
type LimitSetter interface {
	SetLimits(Limits)
}

// ChannelLister is the ability to list the channels that hold messages.
// On a shared store it is expensive: the server calls it on an
// administrator's request, never on the delivery path or a metrics scrape.
type ChannelLister interface {
	// Channels lists the channels that hold messages, sorted by name.
	Channels(ctx context.Context) ([]ChannelInfo, error)
}

// HealthChecker is the ability to say whether the store can be used now.
type HealthChecker interface {
	// Ready returns nil when the engine can serve, otherwise why not (an
	// error wrapping ErrUnavailable, or ErrClosed). An engine on a remote
	// store connects after Start returns, so Ready may report
	// ErrUnavailable for a moment after Start even when the store works.
	Ready(ctx context.Context) error
}

// Presence is the ability to count the subscribers of other nodes. Each
// node reports its own counts; a count of every node is what the others
// reported plus this node's own, which it knows exactly.
type Presence interface {
	// ReportCounts replaces this node's subscriber count per channel. The
	// report lasts ttl unless it is renewed, so that a node that dies
	// stops being counted.
	ReportCounts(ctx context.Context, counts map[string]int, ttl time.Duration) error
	// OtherCounts returns, in the order of channels, the subscribers that
	// the other nodes reported.
	OtherCounts(ctx context.Context, channels ...string) ([]int, error)
}

// CommandKind is what a Command asks the nodes to do.
type CommandKind uint8

// The commands.
const (
	// TakeOver: Node accepted a persistent subscription with HostID; every
	// other node closes its own subscription with that hostid.
	TakeOver CommandKind = iota + 1
	// Disconnect: close the persistent subscription with HostID.
	Disconnect
	// Kick: close every subscriber of Channel.
	Kick
)

// Command is an instruction for every node of a cluster.
type Command struct {
	Kind    CommandKind
	Node    string // the node that sent it
	HostID  string // TakeOver, Disconnect
	Channel string // Kick
}

// ControlHandler receives the commands sent to this node. A Handler that
// implements it is given them by an engine that implements Control.
type ControlHandler interface {
	// HandleControl runs cmd on this node. It returns promptly.
	HandleControl(cmd Command)
}

// Control is the ability to send commands to every node.
type Control interface {
	// Broadcast sends cmd to every node, this one included, through the
	// ControlHandler each gave to Start.
	Broadcast(ctx context.Context, cmd Command) error
}

var (
	// ErrClosed is returned by an engine's methods after Close.
	ErrClosed = errors.New("engine: closed")
	// ErrUnavailable is wrapped by the errors of an engine whose store
	// cannot be reached (or answered too late). The edges answer it with
	// 503 and Retry-After, an ERR line or a WebSocket error, without the
	// engine's text, and close subscribers with reason.StoreUnavailable.
	ErrUnavailable = errors.New("engine: store unavailable")
)

// Unavailable reports whether err means the store cannot serve now: it
// wraps ErrUnavailable, or is a deadline that passed, or the engine is
// closed.
func Unavailable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrClosed)
}

// RetryAfter returns the seconds an edge tells a client to wait before it
// tries again after ErrUnavailable (Retry-After, a WebSocket error's
// retryAfter): 2 to 6 at random, so that the clients of a store that comes
// back do not all return in the same second.
func RetryAfter() int { return 2 + mrand.IntN(5) }

// NextID returns the id that follows last at now: max(last+1, now in
// microseconds since the Unix epoch). Every engine numbers its messages
// with it.
func NextID(last uint64, now time.Time) uint64 {
	us := now.UnixMicro()
	if us > 0 && uint64(us) > last {
		return uint64(us)
	}
	return last + 1
}

// epochAlphabet is the alphabet of epochs: safe in URLs, cursors and JSON
// without escaping.
const epochAlphabet = "0123456789abcdefghijklmnopqrstuvwxyz"

// EpochLen is the length of the epochs NewEpoch draws.
const EpochLen = 8

// NewEpoch draws a new stream identity: EpochLen random characters of
// [0-9a-z] (41 bits).
func NewEpoch() string {
	var b [EpochLen]byte
	rand.Read(b[:])
	for i := range b {
		b[i] = epochAlphabet[int(b[i])%len(epochAlphabet)]
	}
	return string(b[:])
}

// Package engine defines where channel histories live and how a published
// message reaches every hub that has subscribers for its channel.
//
// The memory engine (package memory) is the default: one process, one store.
// A cluster engine implements the same interface on a shared store, so that a
// message published on any node reaches the subscribers of every node.
package engine

import (
	"context"
	"errors"
	"sync/atomic"
	"time"
)

// Message is one published message. A Message is immutable once the engine
// has handed it out; every subscriber of every transport shares it.
type Message struct {
	// ID identifies the message within its channel. IDs increase within a
	// channel; nothing outside an engine may assume more than that.
	ID      uint64
	Channel string
	Text    string
	Time    time.Time // when the engine accepted the message

	enc atomic.Pointer[encoding] // rendered forms, one per Encoder
}

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

// QueryKind selects which stored messages History returns.
type QueryKind uint8

// The kinds of history query.
const (
	QueryNone  QueryKind = iota // no messages, only the channel's state
	QuerySince                  // messages whose ID is >= Query.Since
	QueryLast                   // the newest Query.Last messages
	QueryAll                    // every stored message
)

// Query selects stored messages of one channel.
type Query struct {
	Kind  QueryKind
	Since uint64 // for QuerySince
	Last  int    // for QueryLast
}

// History is a channel's stored messages selected by a Query, and the
// channel's state when they were read.
type History struct {
	Messages []*Message // in ID order
	Count    int        // messages stored in the channel
	FirstID  uint64     // ID of the oldest stored message, 0 when none
	LastID   uint64     // ID of the newest stored message, 0 when none
	// Trimmed is the ID of the newest message that the channel no longer
	// holds (dropped by count, age or Clear), 0 when none was dropped. A
	// client resuming from an id <= Trimmed has missed messages: a gap.
	Trimmed uint64
}

// Gap reports whether a client that asks for the messages from id since on
// has missed some that are no longer stored.
func (h History) Gap(since uint64) bool { return h.Trimmed != 0 && since <= h.Trimmed }

// ChannelInfo describes one channel that holds messages.
type ChannelInfo struct {
	Name     string
	Messages int
	LastID   uint64
}

// Handler receives every message published on a channel the hub subscribed
// to. Engines call it in ID order within a channel; it must not block.
type Handler func(m *Message)

// Engine stores channel histories and delivers published messages.
type Engine interface {
	// Publish stores a message and delivers it to the handlers of every hub
	// subscribed to channel. It returns the stored message.
	Publish(ctx context.Context, channel, text string) (*Message, error)
	// History reads the stored messages of channel selected by q.
	History(ctx context.Context, channel string, q Query) (History, error)
	// Subscribe starts the delivery of channel's messages to this hub's
	// handler; Unsubscribe stops it.
	Subscribe(ctx context.Context, channel string) error
	Unsubscribe(ctx context.Context, channel string) error
	// Channels lists the channels that hold messages.
	Channels(ctx context.Context) ([]ChannelInfo, error)
	// Clear drops the stored messages of channel, or of every channel when
	// channel is "".
	Clear(ctx context.Context, channel string) error
	// Close releases the engine's resources and stops its goroutines.
	Close() error
}

// ErrClosed is returned by an engine's methods after Close.
var ErrClosed = errors.New("engine: closed")

package engine

import (
	"context"
	"errors"
	"time"
)

// Subscriber is one subscription of one channel, on some node, as the
// presence lists show it.
type Subscriber struct {
	// ID is the subscriber's hostid, or its connection's id (unique on its
	// node while it is open) when it has none.
	ID string
	// Node is the node the subscriber is connected to.
	Node string
	// Transport names its transport as the metrics do: legacy, sse,
	// ndjson, longpoll, websocket.
	Transport string
	// Since is when it joined the channel.
	Since time.Time
}

// SubscriberChange is one change of this node's presence entries.
type SubscriberChange struct {
	Channel string
	// Key identifies the entry among this node's entries of Channel; it is
	// never reused while the node runs. Two subscriptions with the same
	// hostid (one taking over from the other) have different keys.
	Key uint64
	// Gone reports a removal; Sub is then ignored.
	Gone bool
	// Sub is the entry added. Its Node is ignored: an entry belongs to
	// the node that reports it.
	Sub Subscriber
}

// ErrPresenceLost is returned by SubscriberLister.ReportSubscribers when
// the store no longer holds the entries this node reported before (it
// counted the node as dead, or lost its data). None of the changes of that
// call were applied; the caller reports every entry it holds again, with
// full set.
var ErrPresenceLost = errors.New("engine: presence entries lost")

// ErrBadCursor is wrapped by the error of SubscriberLister.ListSubscribers
// given a cursor that no call returned.
var ErrBadCursor = errors.New("engine: bad cursor")

// SubscriberLister is the ability to list the subscribers of a channel on
// other nodes. As with Presence, a node knows its own exactly: it reports
// its entries to the store and lists the others'.
//
// A node's entries live as long as the node keeps reporting: an entry of
// a node that made no report for ttl (the last one's) is no longer listed,
// and the store drops it.
type SubscriberLister interface {
	// ReportSubscribers applies changes, in order, to this node's entries
	// and renews the node's liveness for ttl. The caller (the hub, on one
	// goroutine: calls never overlap) batches the changes made since its
	// last call, and calls it with none at least every ttl/3 so that its
	// entries do not expire. With full set, changes hold every entry of
	// this node (additions only) and replace all it reported before. An
	// error other than ErrPresenceLost may have applied some changes: the
	// caller sends them again (additions and removals are idempotent).
	ReportSubscribers(ctx context.Context, changes []SubscriberChange, full bool, ttl time.Duration) error
	// ListSubscribers returns a page of the entries that the other nodes
	// reported for channel and whose report has not expired, and the
	// cursor of the next page ("" after the last). cursor is "" for the
	// first page, then a next that an earlier call returned. limit is a
	// hint: a page may hold fewer entries (even none, with a next that is
	// not "") or, where the store hands out more at once, a few more. An
	// entry present during the whole listing is returned at least once;
	// one added or removed meanwhile may or may not be.
	ListSubscribers(ctx context.Context, channel, cursor string, limit int) (subs []Subscriber, next string, err error)
}

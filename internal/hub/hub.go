// Package hub is the middle of the server: it knows which clients listen to
// which channels on this node, holds this node's interest in each channel
// with the engine, and hands each message that the engine delivers to every
// client of its channel, whatever transport each uses.
//
// # Subscribing without a gap or a repeat
//
// A subscription starts pending: live messages for it are held while its
// history is read from the engine, then the history and the held messages
// are delivered in id order without a gap or a repeat, and the
// subscription turns live. The engine's delivery may run late and on
// another goroutine (a shared store's subscription connection): each
// entry remembers the newest id it was given, and anything at or below it
// is not delivered again. An entry that is held pending longer than it
// may hold messages (maxPending) drops them and catches up from history
// once it is activated, as after a reset below.
//
// The node's interest in a channel (engine.Subscribe) is taken by the
// first client that joins it and given up (engine.Unsubscribe) a while
// after the last one left (Options.UnsubscribeDelay), so that a client
// that reconnects costs the store nothing. For one channel these calls
// never overlap and never overtake each other: a client that joins while
// the Subscribe is in flight waits for it, and a new Subscribe waits for
// an Unsubscribe still in flight. No hub lock is held during an engine
// call. A failed Subscribe fails the joins of that channel only.
//
// # Resets
//
// When the engine reports that its delivery may have skipped messages of
// a channel (HandleReset, which comes before any message that follows the
// skipped ones), every entry of the channel goes pending at once, so that
// nothing later is delivered over the hole; then, on the hub's resync
// goroutine, one history read after the oldest of their positions fills
// each one from its own position, and the messages held meanwhile follow,
// as on joining. An entry whose position is no longer in the stream
// (trimmed, or past its newest id: another stream) is closed with
// reason.StreamReset: its client resumes and is told of its gap. An entry
// still joining gets the history it asked for, then waits pending for
// the resync.
//
// The hub compares ids only, never epochs: ids keep growing from one
// stream to the next (engine.NextID), so a message of a new stream is
// newer than anything a client was given. A transport that carries epochs
// tells its client when the messages it delivers cross into another
// epoch.
//
// # Fan-out
//
// Once Start has run, the clients of each channel are sharded over
// fan-out workers (GOMAXPROCS goroutines by default): a client joins the
// channel's least used shard and stays in it, and shard i belongs to worker
// i mod the number of workers. HandleMessages queues each message once per
// shard that has clients and returns; each worker hands it to its shard's
// clients. So the write system calls of one publication run on every core,
// and each client still gets a channel's messages in id order (one shard,
// one FIFO queue). Channels with fewer than Options.InlineBelow clients are
// delivered on the engine's goroutine when none of their messages is still
// queued: handing a few non-blocking writes to another goroutine costs more
// than making them.
//
// A worker takes what waits in its queue in batches (up to maxBatchJobs
// jobs): the messages of one shard that queued up while the worker was
// busy reach each client in a single Deliver, so a single write. Nothing
// waits for a batch to fill.
//
// HandleMessages never blocks: the engine's delivery (for a shared store,
// the one connection that carries every channel) must not wait for this
// node's fan-out. The queues are bounded in deliveries: Publish on this
// node waits while a worker has more than softQueuedDeliveries queued,
// which is back-pressure on this node's publishers when the fan-out needs
// more CPU than there is (never a wait for a subscriber: deliveries are
// non-blocking writes). Past hardQueuedDeliveries, which only messages
// from other nodes or many publishers at once can reach, a shard that
// cannot be queued closes its clients as slow consumers: they resume from
// where they stood, so nothing is lost silently.
//
// # Admission and conflation
//
// A Policy per channel (SetPolicy; the server derives it from the
// configuration) says what Publish admits, the size of a message and a
// per-channel publish rate (admit.go), and whether this node's
// subscribers of the channel get every message or, conflated, at most
// one per interval, the newest (conflate.go). Both work per channel, not
// per subscriber.
//
// # Presence
//
// The hub reports this node's subscriber counts and entries to an engine
// that keeps them for every node (engine.Presence,
// engine.SubscriberLister), and answers cluster-wide counts and lists as
// this node's plus the others' (presence.go).
//
// docs/LOCKS.md gives the lock order of the whole server.
package hub

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/metrics"
	"github.com/meteorpush/meteor/internal/reason"
)

// Client is one subscriber as the hub sees it: a transport connection.
type Client interface {
	// Deliver hands the client messages of one channel, in id order: live
	// is true for a message as it is published, false for history and for
	// messages held while the history was read. Deliver must not block and
	// must not call back into the hub, and must not keep msgs (the slice,
	// not the messages) after it returns: the hub reuses it. It may be
	// called concurrently for different channels. It reports whether the
	// client still wants messages.
	Deliver(msgs []*engine.Message, live bool) bool
	// Close ends the client's connection with reason r: its transport says
	// so to the client where it can (reason.SlowConsumer, ChannelClosed,
	// StreamReset, StoreUnavailable, ServerError). No Deliver follows. It
	// must not block and must not call back into the hub.
	Close(r reason.Reason)
}

// Sub names one channel of a subscription and the history wanted on joining.
type Sub struct {
	Channel string
	Query   engine.Query
}

// Joined is the outcome of one Sub: the history read, or why the channel
// could not be joined.
type Joined struct {
	History engine.History
	Err     error
}

// Options configure a hub.
type Options struct {
	// Workers is the number of fan-out goroutines; 0 means GOMAXPROCS.
	Workers int
	// InlineBelow is the number of clients below which a channel's
	// messages are delivered on the engine's goroutine; 0 means
	// DefaultInlineBelow, a negative value never.
	InlineBelow int
	// UnsubscribeDelay is how long the node keeps its interest in a
	// channel after its last client left; 0 means
	// DefaultUnsubscribeDelay, a negative value gives it up at once.
	UnsubscribeDelay time.Duration
	// EngineTimeout bounds the engine calls the hub makes on its own (a
	// resync's history read, a delayed Unsubscribe), and a Subscribe whose
	// caller's context has no deadline; 0 means 10 seconds.
	EngineTimeout time.Duration
	// Node names this node in the commands it broadcasts.
	Node string
	// OnControl, when set, is given the commands that another node
	// broadcast about this node's subscriber connections (engine.TakeOver,
	// engine.Disconnect). It must return promptly.
	OnControl func(engine.Command)
	// OnPanic, when set, is told of a panic recovered from a client's
	// Deliver, with the stack; the server logs it.
	OnPanic func(p any, stack []byte)
	// OnReset, when set, is told of each reset the engine reports and of
	// resyncs that failed, for the log.
	OnReset func(channels []string, cause error)

	// PresenceTTL is how long this node's presence reports (counts and
	// entries) last in the engine: the hub renews them every third of it,
	// and the other nodes forget a node that stopped within it. 0 means
	// DefaultPresenceTTL.
	PresenceTTL time.Duration
	// PresenceFlush is how often the changes of this node's counts and
	// entries are reported; 0 means DefaultPresenceFlush.
	PresenceFlush time.Duration
	// CountCache is how long the other nodes' count of a channel is kept
	// for CountSubscribers; 0 means DefaultCountCache.
	CountCache time.Duration
	// OnPresenceError, when set, is told of each presence report the
	// engine failed, for the log.
	OnPresenceError func(err error)

	// Metrics, when set, counts the publications Publish refuses and the
	// messages conflation skips.
	Metrics *metrics.Metrics
}

// DefaultInlineBelow is Options.InlineBelow's default. BenchmarkFanoutTCP
// chose it (bench/results/history.md, "Parallel fan-out"): over real sockets, two
// workers already match the publisher's goroutine at 4 clients and are
// 1.6× faster at 16; below that the hand-off costs more than it saves.
const DefaultInlineBelow = 4

// DefaultUnsubscribeDelay is Options.UnsubscribeDelay's default: a page
// that reloads, or a client that reconnects, comes back within it.
const DefaultUnsubscribeDelay = time.Second

// The bounds of the fan-out's queues and of a pending subscription. They
// are variables so that tests can make them small.
var (
	// softQueuedDeliveries is the backlog of a worker, in deliveries, past
	// which this node's publishers wait: a fraction of a second of writes
	// (a loopback write of a few hundred bytes costs a few µs, and a batch
	// of queued messages goes to a client in one write). It lets several
	// messages of a channel of 20,000 clients wait, so that they can be
	// batched.
	softQueuedDeliveries = 1 << 16
	// hardQueuedDeliveries is the backlog past which a shard's messages
	// are not queued: its clients are closed as slow consumers instead.
	// A job larger than the bound is still queued when the worker has
	// nothing else queued.
	hardQueuedDeliveries = 4 * softQueuedDeliveries
	// maxPending bounds the messages held for one subscription while its
	// history is read; past it the held messages are dropped and the
	// subscription catches up from history (a resync) once activated,
	// rather than growing without limit.
	maxPending = 4096
)

// bucketPrunePeriod is how often the publish-rate buckets that are full
// again are dropped, however few channels come and go.
const bucketPrunePeriod = 10 * time.Second

// maxBatchJobs bounds the jobs one batch takes from a worker's queue.
const maxBatchJobs = 64

// Hub routes messages from the engine to clients. It is the engine's
// Handler and ControlHandler.
type Hub struct {
	eng  engine.Engine
	opts Options // never modified after New

	// ctx ends when Close begins: the engine calls the hub makes on its
	// own derive from it.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.RWMutex
	channels map[string]*channel // guarded by mu; channels joined, or lingering
	// leaving holds, per channel name, a channel closed once the engine's
	// Unsubscribe of that name has returned; guarded by mu.
	leaving   map[string]chan struct{}
	lingering map[*channel]time.Time // guarded by mu; empty channels, since when
	nshards   int                    // guarded by mu; shards of a new channel

	// run is held for reading by HandleMessages and Flush while they
	// queue, and for writing by Start and Close.
	run         sync.RWMutex
	workers     []*worker // guarded by run; nil before Start and after Close
	started     bool      // guarded by run
	closed      bool      // guarded by run
	inlineBelow int       // guarded by run; written by Start only
	wg          sync.WaitGroup

	resyncMu   sync.Mutex
	resyncs    map[string]struct{} // guarded by resyncMu; channels to resync
	resyncAll  bool                // guarded by resyncMu
	resyncWake chan struct{}       // one token: resyncs has work

	resynced  atomic.Int64 // channels resynchronised
	overflows atomic.Int64 // shards closed because their worker's queue was full

	pres *presence // presence.go

	policy  atomic.Pointer[policySet] // SetPolicy's; nil: admit everything (admit.go)
	buckets buckets                   // publish-rate buckets (admit.go)
	conf    conflation                // channels holding a conflated message (conflate.go)
}

var (
	_ engine.Handler        = (*Hub)(nil)
	_ engine.ControlHandler = (*Hub)(nil)
)

// worker is one fan-out goroutine and its queue.
type worker struct {
	wake chan struct{} // one token: jobs has work, or closed

	mu     sync.Mutex
	jobs   []job         // guarded by mu; queued, in order
	spare  []job         // guarded by mu; the other half of the double buffer
	queued int           // guarded by mu; deliveries in jobs and being delivered
	room   chan struct{} // guarded by mu; closed when queued falls to the soft bound
	closed bool          // guarded by mu
}

// job is one message for one shard of a channel, or a Flush barrier.
type job struct {
	sh   *shard
	m    *engine.Message
	n    int           // deliveries counted in worker.queued
	done chan struct{} // set on a barrier only
}

type channel struct {
	name string

	// count is the number of clients, written under mu.
	count atomic.Int32
	// last is the id of the newest message HandleMessages was given.
	last atomic.Uint64
	// inflight counts this channel's queued jobs that no worker has
	// finished. HandleMessages delivers inline only when it is zero, so
	// that an inline delivery never overtakes a queued one.
	inflight atomic.Int64

	// policy caches the channel's Policy (Hub.channelPolicy).
	policy atomic.Pointer[cachedPolicy]
	// conflate is the channel's conflation (conflate.go).
	conflate conflateState

	// ready is closed once the engine's Subscribe has returned, subErr
	// set before.
	ready  chan struct{}
	subErr error
	// after, when not nil, is closed once an Unsubscribe of the same name
	// that was in flight when this channel was made has returned: the
	// Subscribe waits for it.
	after chan struct{}

	mu     sync.Mutex
	index  map[Client]*entry // guarded by mu
	shards []shard           // fixed at creation
	dead   bool              // guarded by mu and Hub.mu; removed from Hub.channels
}

// shard is one worker's share of a channel's clients.
type shard struct {
	ch *channel
	// subs is read without a lock by whoever delivers, and replaced under
	// ch.mu. It only grows in place (a new entry goes past the length any
	// reader holds); a removed entry is marked gone and stays until more
	// than half the entries are gone, when a compacted copy replaces it.
	subs    atomic.Pointer[[]*entry]
	live    int // guarded by ch.mu; entries in subs not gone
	removed int // guarded by ch.mu; entries in subs gone
}

type entry struct {
	c   Client
	key uint64 // the presence entry's key, fixed (presence.nextKey)
	// shard is the index in channel.shards, fixed; an int32 beside closed
	// keeps an entry in the 80-byte size class.
	shard int32

	// closed is set once the client was closed: nothing more is
	// delivered. It is atomic so that an overflow can close a client
	// without waiting for a delivery to it that holds mu.
	closed atomic.Bool

	mu        sync.Mutex
	gone      bool              // guarded by mu and channel.mu: set holding both
	live      bool              // guarded by mu; messages go straight out
	activated bool              // guarded by mu; its join's history was delivered
	stale     bool              // guarded by mu; a reset came: fill it from history before it goes live
	lagged    bool              // guarded by mu; pending overflowed: catch up from history
	last      uint64            // guarded by mu; newest id delivered or not wanted
	pending   []*engine.Message // guarded by mu; held while not live
}

// New returns a hub on eng. Start starts its goroutines; until then it
// delivers on the engine's goroutine.
func New(eng engine.Engine, opts Options) *Hub {
	if opts.EngineTimeout <= 0 {
		opts.EngineTimeout = 10 * time.Second
	}
	if opts.UnsubscribeDelay == 0 {
		opts.UnsubscribeDelay = DefaultUnsubscribeDelay
	}
	if opts.PresenceTTL <= 0 {
		opts.PresenceTTL = DefaultPresenceTTL
	}
	if opts.PresenceFlush <= 0 {
		opts.PresenceFlush = DefaultPresenceFlush
	}
	if opts.CountCache <= 0 {
		opts.CountCache = DefaultCountCache
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Hub{
		eng:        eng,
		opts:       opts,
		ctx:        ctx,
		cancel:     cancel,
		channels:   make(map[string]*channel),
		leaving:    make(map[string]chan struct{}),
		lingering:  make(map[*channel]time.Time),
		nshards:    1,
		resyncs:    make(map[string]struct{}),
		resyncWake: make(chan struct{}, 1),
		pres:       newPresence(eng, opts),
		conf:       conflation{wake: make(chan struct{}, 1), done: make(chan struct{})},
	}
}

// Engine returns the hub's engine.
func (h *Hub) Engine() engine.Engine { return h.eng }

// Start starts the fan-out workers, the resync goroutine and the one that
// gives up the interest in channels left empty. It does nothing after
// Close or a first Start. Close stops them.
func (h *Hub) Start() {
	n := h.opts.Workers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	h.run.Lock()
	defer h.run.Unlock()
	if h.closed || h.started {
		return
	}
	h.started = true
	h.inlineBelow = h.opts.InlineBelow
	if h.inlineBelow == 0 {
		h.inlineBelow = DefaultInlineBelow
	}
	// Channels that exist already keep their shards; shard i goes to
	// worker i mod n either way.
	h.mu.Lock()
	h.nshards = n
	h.mu.Unlock()
	h.workers = make([]*worker, n)
	for i := range h.workers {
		w := &worker{wake: make(chan struct{}, 1)}
		h.workers[i] = w
		h.wg.Add(1)
		go h.work(w)
	}
	h.wg.Add(3)
	go h.resyncLoop()
	go h.lingerLoop()
	go h.conflateLoop()
	if h.pres.counts != nil || h.pres.lister != nil {
		h.wg.Add(1)
		go h.presenceLoop()
	}
}

// Close delivers what is queued, conflated channels' held messages
// included, stops the hub's goroutines and waits for them. Messages
// handled after Close are delivered on the engine's goroutine.
func (h *Hub) Close() {
	h.cancel()
	h.run.RLock()
	started := h.started
	h.run.RUnlock()
	if started {
		// The conflation goroutine ends first: it needs the run lock
		// that is taken below for a send it may be making.
		<-h.conf.done
	}
	h.conf.mu.Lock()
	h.conf.stopped = true
	h.conf.mu.Unlock()
	h.sendAllHeld()
	h.run.Lock()
	defer h.run.Unlock()
	h.closed = true
	for _, w := range h.workers {
		w.mu.Lock()
		w.closed = true
		if w.room != nil {
			close(w.room)
			w.room = nil
		}
		w.mu.Unlock()
		w.signal()
	}
	h.wg.Wait()
	h.workers = nil
}

// signal wakes the worker's goroutine.
func (w *worker) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Flush waits until every message given to HandleMessages before Flush
// was called has been handed to its clients, conflated channels' held
// messages included (sent at once).
func (h *Hub) Flush() {
	h.sendAllHeld()
	h.run.RLock()
	dones := make([]chan struct{}, 0, len(h.workers))
	for _, w := range h.workers {
		d := make(chan struct{})
		w.mu.Lock()
		if !w.closed {
			w.jobs = append(w.jobs, job{done: d})
			dones = append(dones, d)
		}
		w.mu.Unlock()
		w.signal()
	}
	h.run.RUnlock()
	for _, d := range dones {
		<-d
	}
}

// work is a worker's goroutine. It takes what is queued in batches: jobs
// for the same shard that wait in the queue together are handed to each
// client as one Deliver, so that a client gets the messages that piled up
// while the worker was busy in one write rather than one write each.
func (h *Hub) work(w *worker) {
	defer h.wg.Done()
	var b batcher
	for {
		w.mu.Lock()
		for len(w.jobs) == 0 {
			if w.closed {
				w.mu.Unlock()
				return
			}
			w.mu.Unlock()
			<-w.wake
			w.mu.Lock()
		}
		jobs := w.jobs
		w.jobs, w.spare = w.spare[:0], nil
		w.mu.Unlock()

		n := 0
		for i, j := range jobs {
			if j.done != nil {
				// Everything queued before the barrier is delivered.
				h.deliverBatch(&b)
				close(j.done)
			} else {
				b.add(j)
				n += j.n
				if len(b.jobs) == maxBatchJobs {
					h.deliverBatch(&b)
				}
			}
			jobs[i] = job{}
		}
		h.deliverBatch(&b)

		w.mu.Lock()
		w.queued -= n
		if w.queued <= softQueuedDeliveries && w.room != nil {
			close(w.room)
			w.room = nil
		}
		if w.spare == nil {
			w.spare = jobs[:0]
		}
		w.mu.Unlock()
	}
}

// batcher groups the jobs a worker took at once by shard, in queue order.
type batcher struct {
	jobs   []job
	groups []group
	msgs   []*engine.Message // reused for each group's Deliver
}

// group is one shard's jobs within a batch: jobs[i] for i in idx.
type group struct {
	sh  *shard
	idx []int
}

func (b *batcher) add(j job) {
	b.jobs = append(b.jobs, j)
	for i := range b.groups {
		if b.groups[i].sh == j.sh {
			b.groups[i].idx = append(b.groups[i].idx, len(b.jobs)-1)
			return
		}
	}
	if len(b.groups) < cap(b.groups) {
		// Reuse the index slice left in the spare capacity.
		b.groups = b.groups[:len(b.groups)+1]
		g := &b.groups[len(b.groups)-1]
		g.sh, g.idx = j.sh, append(g.idx[:0], len(b.jobs)-1)
		return
	}
	b.groups = append(b.groups, group{sh: j.sh, idx: []int{len(b.jobs) - 1}})
}

// deliverBatch hands each group's messages to its shard's clients.
func (h *Hub) deliverBatch(b *batcher) {
	if len(b.jobs) == 0 {
		return
	}
	for gi := range b.groups {
		g := &b.groups[gi]
		msgs := b.msgs[:0]
		for _, i := range g.idx {
			msgs = append(msgs, b.jobs[i].m)
		}
		if p := g.sh.subs.Load(); p != nil {
			h.deliver(*p, msgs)
		}
		clear(msgs)
		b.msgs = msgs[:0]
		g.sh.ch.inflight.Add(-int64(len(g.idx)))
		g.sh = nil
	}
	clear(b.jobs)
	b.jobs = b.jobs[:0]
	b.groups = b.groups[:0]
}

// enqueue queues j unless the worker's backlog is past the hard bound,
// and reports whether it did.
func (w *worker) enqueue(j job) bool {
	w.mu.Lock()
	if w.closed || w.queued > 0 && w.queued+j.n > hardQueuedDeliveries {
		w.mu.Unlock()
		return false
	}
	w.queued += j.n
	w.jobs = append(w.jobs, j)
	w.mu.Unlock()
	w.signal()
	return true
}

// waitRoom waits until the worker's backlog is at most the soft bound, or
// ctx ends.
func (w *worker) waitRoom(ctx context.Context) error {
	w.mu.Lock()
	if w.queued <= softQueuedDeliveries || w.closed {
		w.mu.Unlock()
		return nil
	}
	if w.room == nil {
		w.room = make(chan struct{})
	}
	room := w.room
	w.mu.Unlock()
	select {
	case <-room:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: the fan-out is behind: %w", engine.ErrUnavailable, ctx.Err())
	}
}

// deliver hands msgs, one channel's messages in id order, to every client
// in subs: to each the ones newer than what it was given.
func (h *Hub) deliver(subs []*entry, msgs []*engine.Message) {
	newest := msgs[len(msgs)-1].ID
	for _, e := range subs {
		e.mu.Lock()
		if e.gone || newest <= e.last || e.closed.Load() {
			e.mu.Unlock()
			continue
		}
		todo := msgs
		for todo[0].ID <= e.last {
			todo = todo[1:]
		}
		if !e.live {
			for _, m := range todo {
				if n := len(e.pending); n > 0 && m.ID <= e.pending[n-1].ID {
					// Older than one already pending (a conflated
					// channel's held message, sent by another goroutine,
					// can come after newer ones): skipped, as a live
					// client skips what is not after its last.
					continue
				}
				if len(e.pending) < maxPending {
					e.pending = append(e.pending, m)
				} else {
					e.lagged = true
				}
			}
		} else {
			e.last = newest
			h.deliverOne(e, todo, true)
		}
		e.mu.Unlock()
	}
}

// deliverOne hands msgs to e's client and reports whether it still wants
// messages; the caller holds e.mu. A panic in the client's code is
// contained: the client gets nothing more and is closed as a server
// error, and the panic is reported, so that one connection's bug neither
// takes the server down nor stops the fan-out to the others.
func (h *Hub) deliverOne(e *entry, msgs []*engine.Message, live bool) (ok bool) {
	defer func() {
		if p := recover(); p != nil {
			e.closed.Store(true)
			ok = false
			if h.opts.OnPanic != nil {
				h.opts.OnPanic(p, debug.Stack())
			}
			defer func() { recover() }()
			e.c.Close(reason.ServerError)
		}
	}()
	return e.c.Deliver(msgs, live)
}

// closeEntry closes e's client with r, unless it is already closed. It
// does not take e.mu: a client's Close is safe beside its Deliver.
func closeEntry(e *entry, r reason.Reason) {
	if !e.closed.CompareAndSwap(false, true) {
		return
	}
	defer func() { recover() }() // a transport's bug must not stop the others' closes
	e.c.Close(r)
}

// Publish stores pubs through the engine, which delivers them back to
// HandleMessages on every node with clients of their channels. It first
// admits them by their channels' Policy (SetPolicy), in order: the first
// one refused, too large or past its channel's publish rate, ends the
// call with a *RefusedError (wrapping ErrRefused), and only the ones
// before it are published. It then waits while this node's fan-out is
// behind (see the package documentation), until ctx ends. On error it
// returns the messages published before it.
func (h *Hub) Publish(ctx context.Context, pubs ...engine.Publication) ([]*engine.Message, error) {
	now := time.Now()
	n, taken, refused := h.admit(pubs, now)
	if n == 0 {
		return nil, refused
	}
	h.run.RLock()
	ws := h.workers
	h.run.RUnlock()
	for _, w := range ws {
		if err := w.waitRoom(ctx); err != nil {
			giveBack(taken, 0, now)
			return nil, err
		}
	}
	msgs, err := h.eng.Publish(ctx, pubs[:n]...)
	if err != nil {
		// What was not published gives its rate token back: a store
		// that was down must not also cost the channel its budget.
		giveBack(taken, len(msgs), now)
	} else {
		err = refused
	}
	return msgs, err
}

// HandleMessages delivers msgs to the clients of channel on this node. It
// is the engine's handler: with workers running it queues the messages for
// them and returns before the writes, and it never waits (see the package
// documentation).
func (h *Hub) HandleMessages(name string, msgs []*engine.Message) {
	if len(msgs) == 0 {
		return
	}
	h.mu.RLock()
	ch := h.channels[name]
	h.mu.RUnlock()
	if ch == nil {
		return
	}
	ch.last.Store(msgs[len(msgs)-1].ID)
	if iv := h.channelPolicy(ch).ConflateInterval; iv > 0 && h.conflating() {
		m := h.conflate(ch, msgs, iv, time.Now())
		if m == nil {
			return
		}
		msgs = []*engine.Message{m}
	}
	h.fanout(ch, msgs)
}

// conflating reports whether the conflation goroutine runs: between Start
// and Close.
func (h *Hub) conflating() bool {
	h.run.RLock()
	defer h.run.RUnlock()
	return h.workers != nil
}

// fanout hands msgs, messages of ch in id order, to ch's clients: queued
// for the workers, or on this goroutine for a channel of few clients.
func (h *Hub) fanout(ch *channel, msgs []*engine.Message) {
	h.run.RLock()
	ws := h.workers
	if ws == nil || int(ch.count.Load()) < h.inlineBelow && ch.inflight.Load() == 0 {
		h.run.RUnlock()
		for i := range ch.shards {
			if p := ch.shards[i].subs.Load(); p != nil {
				h.deliver(*p, msgs)
			}
		}
		return
	}
	for i := range ch.shards {
		sh := &ch.shards[i]
		p := sh.subs.Load()
		if p == nil || len(*p) == 0 {
			continue
		}
		w := ws[i%len(ws)]
		for _, m := range msgs {
			ch.inflight.Add(1)
			if !w.enqueue(job{sh: sh, m: m, n: len(*p)}) {
				ch.inflight.Add(-1)
				h.overflow(*p)
				break
			}
		}
	}
	h.run.RUnlock()
}

// overflow closes the clients of a shard whose messages could not be
// queued, as slow consumers: they resume where they stood.
func (h *Hub) overflow(subs []*entry) {
	h.overflows.Add(1)
	for _, e := range subs {
		closeEntry(e, reason.SlowConsumer)
	}
}

// Subscribe reads the history of each of subs for c. When persist is true
// it also registers c on each channel, pending: c receives nothing until
// the returned activate function runs, which delivers the history and
// what was published meanwhile, then lets live messages through. When
// persist is false, activate only delivers the history. Either way the
// caller writes whatever must precede the messages (a header, say) between
// Subscribe and activate.
//
// The result has one Joined per Sub. A channel that could not be joined
// or read (Joined.Err) leaves c registered on the others: a caller that
// needs all of them unsubscribes c. The engine calls end with ctx.
func (h *Hub) Subscribe(ctx context.Context, c Client, subs []Sub, persist bool) (res []Joined, activate func()) {
	res = make([]Joined, len(subs))
	var entries []joined
	if persist {
		entries = h.join(ctx, c, subs, res)
	}
	var reqs []engine.HistoryRequest
	var which []int
	for i, s := range subs {
		if res[i].Err == nil {
			reqs = append(reqs, engine.HistoryRequest{Channel: s.Channel, Query: s.Query})
			which = append(which, i)
		}
	}
	if len(reqs) > 0 {
		hs, err := h.eng.History(ctx, reqs...)
		if err == nil && len(hs) != len(reqs) {
			err = fmt.Errorf("hub: the engine answered %d history requests with %d", len(reqs), len(hs))
		}
		var failed []string
		for k, i := range which {
			if err != nil {
				res[i].Err = err
				failed = append(failed, subs[i].Channel)
				continue
			}
			res[i].History = hs[k]
		}
		if persist && len(failed) > 0 {
			h.Unsubscribe(c, failed...)
		}
	}
	activate = func() {
		for i := range subs {
			if res[i].Err != nil {
				continue
			}
			hist := res[i].History
			conflated := h.Policy(subs[i].Channel).ConflateInterval > 0
			if !persist {
				if msgs := newestOnly(hist.Messages, conflated); len(msgs) > 0 && !c.Deliver(msgs, false) {
					return
				}
				continue
			}
			ok, resync := h.activate(entries[i].e, hist.Messages, hist.Stream.Last, conflated)
			if resync {
				h.queueResync([]string{subs[i].Channel})
			}
			if !ok {
				return
			}
		}
	}
	return res, activate
}

// joined is where one Sub of a join stands.
type joined struct {
	ch      *channel
	e       *entry
	created bool // this join made the channel and subscribes the engine to it
}

// join registers c, pending, on each channel of subs, subscribes the
// engine to the channels it is the first to join (in one call), and waits
// for the Subscribes that others have in flight. Errors go into res.
func (h *Hub) join(ctx context.Context, c Client, subs []Sub, res []Joined) []joined {
	js := make([]joined, len(subs))
	var created []string
	for i, s := range subs {
		js[i] = h.register(c, s.Channel)
		if js[i].created {
			created = append(created, s.Channel)
		}
	}
	if len(created) > 0 {
		h.subscribeEngine(ctx, js)
	}
	var failed []string
	for i := range js {
		ch := js[i].ch
		select {
		case <-ch.ready:
			if ch.subErr != nil {
				res[i].Err = ch.subErr
			}
		case <-ctx.Done():
			res[i].Err = fmt.Errorf("%w: subscribing: %w", engine.ErrUnavailable, ctx.Err())
			failed = append(failed, subs[i].Channel)
		}
	}
	if len(failed) > 0 {
		h.Unsubscribe(c, failed...)
	}
	return js
}

// register adds c, pending, to the named channel, making the channel when
// there is none.
func (h *Hub) register(c Client, name string) joined {
	for {
		h.mu.RLock()
		ch := h.channels[name]
		h.mu.RUnlock()
		created := false
		if ch == nil {
			h.mu.Lock()
			if ch = h.channels[name]; ch == nil {
				ch = &channel{
					name:   name,
					index:  make(map[Client]*entry),
					shards: make([]shard, h.nshards),
					ready:  make(chan struct{}),
					after:  h.leaving[name],
				}
				for i := range ch.shards {
					ch.shards[i].ch = ch
				}
				h.channels[name] = ch
				created = true
			}
			h.mu.Unlock()
		}
		ch.mu.Lock()
		if ch.dead {
			ch.mu.Unlock()
			continue
		}
		e := ch.index[c]
		if e == nil {
			i := 0
			for k := range ch.shards {
				if ch.shards[k].live < ch.shards[i].live {
					i = k
				}
			}
			// Messages that HandleMessages was given before now may still
			// be queued: they are older than the subscription, not for it.
			e = &entry{c: c, shard: int32(i), key: h.pres.nextKey(), last: ch.last.Load()}
			ch.shards[i].addLocked(e)
			ch.index[c] = e
			ch.count.Add(1)
			h.pres.addedLocked(name, e)
		}
		ch.mu.Unlock()
		return joined{ch: ch, e: e, created: created}
	}
}

// subscribeEngine calls the engine's Subscribe for the channels of js
// that this join made, once for all of them, after any Unsubscribe of
// theirs still in flight, and marks them ready. Channels it failed for
// leave the hub, so that the next join tries again.
func (h *Hub) subscribeEngine(ctx context.Context, js []joined) {
	var names []string
	var chans []*channel
	for _, j := range js {
		if j.created {
			names = append(names, j.ch.name)
			chans = append(chans, j.ch)
		}
	}
	// The call serves every client that joins meanwhile, so it is not
	// cut short by this client going away, only by its deadline and by
	// Close.
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(h.opts.EngineTimeout)
	}
	sctx, cancel := context.WithDeadline(h.ctx, deadline)
	defer cancel()
	var err error
	for _, ch := range chans {
		if ch.after != nil {
			select {
			case <-ch.after:
			case <-sctx.Done():
				err = fmt.Errorf("%w: waiting for an earlier unsubscribe: %w", engine.ErrUnavailable, sctx.Err())
			}
		}
	}
	if err == nil {
		err = h.eng.Subscribe(sctx, names...)
	}
	if err != nil {
		h.mu.Lock()
		for _, ch := range chans {
			ch.mu.Lock()
			if h.channels[ch.name] == ch {
				delete(h.channels, ch.name)
				delete(h.lingering, ch)
			}
			ch.dead = true
			ch.mu.Unlock()
		}
		h.mu.Unlock()
	}
	for _, ch := range chans {
		ch.subErr = err
		close(ch.ready)
		if err == nil && ch.count.Load() == 0 {
			// Its joiners left while the call was in flight.
			h.emptied(ch)
		}
	}
}

// addLocked adds e. The caller holds s.ch.mu.
func (s *shard) addLocked(e *entry) {
	var subs []*entry
	if p := s.subs.Load(); p != nil {
		subs = *p
	}
	// When append writes in place, it writes past every reader's length.
	subs = append(subs, e)
	s.subs.Store(&subs)
	s.live++
}

// removeLocked counts one more entry of s gone, and compacts s when more
// than half are. The caller holds s.ch.mu and has marked the entry gone.
func (s *shard) removeLocked() {
	s.live--
	s.removed++
	if s.removed <= s.live {
		return
	}
	old := *s.subs.Load()
	subs := make([]*entry, 0, s.live+s.live/4)
	for _, e := range old {
		if !e.gone {
			subs = append(subs, e)
		}
	}
	s.subs.Store(&subs)
	s.removed = 0
}

// activate delivers first to e's client, then the messages held while it
// was pending that are newer than top and than what it was given, and
// turns it live. An entry that a reset made stale gets first only and
// stays pending, holding what arrives, until a resync fills it. For a
// conflated channel (conflated set) the client gets only the newest of
// first and of the held messages. It reports whether the client still
// wants messages, and whether the entry waits for a resync (the caller
// queues one).
func (h *Hub) activate(e *entry, first []*engine.Message, top uint64, conflated bool) (ok, resync bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gone || e.closed.Load() {
		return false, false
	}
	if e.lagged {
		// More arrived while it was pending than it may hold (a long
		// history read, a publisher faster than the read): what was held
		// is dropped and the entry catches up from history instead, as
		// after a reset. The store has those messages; closing the
		// client for the engine's pace would only make it come back.
		e.lagged = false
		e.pending = nil
		e.stale = true
	}
	// Messages stored before the history was read are in it, or were
	// older than what the client asked for: skip them, here and when a
	// worker reaches them.
	last := max(e.last, top)
	held := e.pending
	i := 0
	for i < len(held) && held[i].ID <= last {
		i++
	}
	if conflated && !e.stale && i < len(held) {
		// The newest held message replaces the history.
		first = nil
	}
	first = newestOnly(first, conflated)
	ok = true
	if len(first) > 0 {
		ok = h.deliverOne(e, first, false)
	}
	e.activated = true
	if e.stale {
		e.last = last
		return ok, true
	}
	e.pending = nil
	e.live = true
	held = newestOnly(held[i:], conflated)
	if ok && len(held) > 0 {
		ok = h.deliverOne(e, held, false)
		last = held[len(held)-1].ID
	}
	e.last = last
	return ok, false
}

// lookup returns the named channels that exist on this node, or every
// channel when all is set.
func (h *Hub) lookup(names []string, all bool) []*channel {
	var chans []*channel
	h.mu.RLock()
	defer h.mu.RUnlock()
	if all {
		for _, ch := range h.channels {
			chans = append(chans, ch)
		}
		return chans
	}
	for _, n := range names {
		if ch := h.channels[n]; ch != nil {
			chans = append(chans, ch)
		}
	}
	return chans
}

// Unsubscribe removes c from every channel it is registered on, or from
// the named channels only.
func (h *Hub) Unsubscribe(c Client, names ...string) {
	chans := h.lookup(names, len(names) == 0)
	for _, ch := range chans {
		ch.mu.Lock()
		e := ch.index[c]
		if e != nil {
			delete(ch.index, c)
			ch.count.Add(-1)
			h.pres.removedLocked(ch.name, e)
			// After this no delivery reaches c from this channel.
			e.mu.Lock()
			e.gone = true
			e.pending = nil
			e.mu.Unlock()
			ch.shards[e.shard].removeLocked()
		}
		empty := e != nil && len(ch.index) == 0
		ch.mu.Unlock()
		if empty {
			h.emptied(ch)
		}
	}
}

// emptied gives up the interest in ch, which has lost its last client, at
// once or after the unsubscribe delay.
func (h *Hub) emptied(ch *channel) {
	h.run.RLock()
	later := h.started && !h.closed && h.opts.UnsubscribeDelay > 0
	h.run.RUnlock()
	h.mu.Lock()
	if later {
		h.lingering[ch] = time.Now()
		h.mu.Unlock()
		return
	}
	drop := h.dropLocked(ch)
	h.mu.Unlock()
	if drop != nil {
		h.unsubscribeEngine([]*channel{ch}, []chan struct{}{drop})
	}
}

// dropLocked removes ch from the hub if it still has no client and its
// Subscribe succeeded, and returns the channel to close once the engine's
// Unsubscribe has returned (nil: ch stays). The caller holds h.mu.
func (h *Hub) dropLocked(ch *channel) chan struct{} {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	select {
	case <-ch.ready:
	default:
		// Its Subscribe is in flight: the joiner that made it calls
		// emptied again once it returns.
		return nil
	}
	delete(h.lingering, ch)
	if len(ch.index) != 0 || ch.dead || h.channels[ch.name] != ch {
		return nil
	}
	ch.dead = true
	delete(h.channels, ch.name)
	if ch.subErr != nil {
		return nil // the engine was never subscribed
	}
	done := make(chan struct{})
	h.leaving[ch.name] = done
	return done
}

// unsubscribeEngine gives up the engine's interest in chans in one call,
// then lets the Subscribes that wait for it go.
func (h *Hub) unsubscribeEngine(chans []*channel, dones []chan struct{}) {
	names := make([]string, len(chans))
	for i, ch := range chans {
		names[i] = ch.name
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.opts.EngineTimeout)
	err := h.eng.Unsubscribe(ctx, names...)
	cancel()
	if err != nil && h.opts.OnReset != nil && !errors.Is(err, engine.ErrClosed) {
		h.opts.OnReset(names, fmt.Errorf("hub: unsubscribe failed: %w", err))
	}
	h.mu.Lock()
	for i, ch := range chans {
		if h.leaving[ch.name] == dones[i] {
			delete(h.leaving, ch.name)
		}
		close(dones[i])
	}
	h.mu.Unlock()
}

// lingerLoop gives up, a while after their last client left, the
// interest in channels that stayed empty.
func (h *Hub) lingerLoop() {
	defer h.wg.Done()
	period := max(h.opts.UnsubscribeDelay/4, 10*time.Millisecond)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			return
		case now := <-t.C:
			h.buckets.prune(now, bucketPrunePeriod)
			var chans []*channel
			var dones []chan struct{}
			h.mu.Lock()
			for ch, since := range h.lingering {
				if now.Sub(since) < h.opts.UnsubscribeDelay {
					continue
				}
				if d := h.dropLocked(ch); d != nil {
					chans = append(chans, ch)
					dones = append(dones, d)
				}
			}
			h.mu.Unlock()
			if len(chans) > 0 {
				h.unsubscribeEngine(chans, dones)
			}
		}
	}
}

// HandleReset implements engine.Handler: the channels' entries go pending
// now, before the engine delivers anything that follows the messages it
// skipped, and are resynchronised from history on the hub's resync
// goroutine.
func (h *Hub) HandleReset(channels []string, cause error) {
	if h.opts.OnReset != nil {
		h.opts.OnReset(channels, cause)
	}
	chans := h.lookup(channels, channels == nil)
	for _, ch := range chans {
		ch.mu.Lock()
		for _, e := range ch.index {
			e.mu.Lock()
			e.stale, e.live = true, false
			e.mu.Unlock()
		}
		ch.mu.Unlock()
	}
	h.queueResync(channels)
}

// queueResync asks the resync goroutine for channels (nil: every channel).
func (h *Hub) queueResync(channels []string) {
	h.resyncMu.Lock()
	if channels == nil {
		h.resyncAll = true
	}
	for _, c := range channels {
		h.resyncs[c] = struct{}{}
	}
	h.resyncMu.Unlock()
	select {
	case h.resyncWake <- struct{}{}:
	default:
	}
}

// resyncLoop resynchronises the channels queued by resets, one at a time.
func (h *Hub) resyncLoop() {
	defer h.wg.Done()
	for {
		select {
		case <-h.ctx.Done():
			return
		case <-h.resyncWake:
		}
		h.resyncMu.Lock()
		all := h.resyncAll
		names := make([]string, 0, len(h.resyncs))
		for n := range h.resyncs {
			names = append(names, n)
		}
		clear(h.resyncs)
		h.resyncAll = false
		h.resyncMu.Unlock()
		if all {
			names = names[:0]
			h.mu.RLock()
			for n := range h.channels {
				names = append(names, n)
			}
			h.mu.RUnlock()
		}
		sort.Strings(names)
		for _, n := range names {
			if h.ctx.Err() != nil {
				return
			}
			h.resync(n)
		}
	}
}

// resync fills every live entry of the named channel from its position,
// as the package documentation describes.
func (h *Hub) resync(name string) {
	h.mu.RLock()
	ch := h.channels[name]
	h.mu.RUnlock()
	if ch == nil {
		return
	}
	h.resynced.Add(1)
	var todo []*entry
	from := uint64(0)
	ch.mu.Lock()
	for _, e := range ch.index {
		e.mu.Lock()
		// An entry still joining is left to its join, which delivers the
		// history it asked for first and queues another resync.
		if e.stale && e.activated && !e.gone && !e.closed.Load() {
			e.stale = false // a reset during the read sets it again
			if len(todo) == 0 || e.last < from {
				from = e.last
			}
			todo = append(todo, e)
		}
		e.mu.Unlock()
	}
	ch.mu.Unlock()
	if len(todo) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.opts.EngineTimeout)
	hs, err := h.eng.History(ctx, engine.HistoryRequest{Channel: name, Query: engine.Query{
		Kind: engine.QueryAfter, After: engine.Position{ID: from}}})
	cancel()
	if err != nil || len(hs) != 1 {
		if err == nil {
			err = fmt.Errorf("hub: the engine answered one history request with %d", len(hs))
		}
		if h.opts.OnReset != nil {
			h.opts.OnReset([]string{name}, fmt.Errorf("hub: resync failed, its clients are closed: %w", err))
		}
		for _, e := range todo {
			closeEntry(e, reason.StoreUnavailable)
		}
		return
	}
	hist := hs[0]
	s := hist.Stream
	conflated := h.channelPolicy(ch).ConflateInterval > 0
	for _, e := range todo {
		e.mu.Lock()
		last := e.last
		e.mu.Unlock()
		if s.Gap(engine.Position{ID: last}) {
			closeEntry(e, reason.StreamReset)
			continue
		}
		msgs := hist.Messages
		for len(msgs) > 0 && msgs[0].ID <= last {
			msgs = msgs[1:]
		}
		if _, resync := h.activate(e, msgs, s.Last, conflated); resync {
			h.queueResync([]string{name})
		}
	}
}

// HandleControl implements engine.ControlHandler. Commands this node sent
// were carried out here before they were broadcast.
func (h *Hub) HandleControl(cmd engine.Command) {
	if cmd.Node == h.opts.Node {
		return
	}
	switch cmd.Kind {
	case engine.Kick:
		h.kickLocal(cmd.Channel)
	default:
		if h.opts.OnControl != nil {
			h.opts.OnControl(cmd)
		}
	}
}

// Broadcast carries out cmd on this node's own connections through do,
// then, when the engine can, sends it to every other node. It returns
// what do returned.
func (h *Hub) Broadcast(ctx context.Context, cmd engine.Command, do func() int) (int, error) {
	n := do()
	ctl, ok := h.eng.(engine.Control)
	if !ok {
		return n, nil
	}
	cmd.Node = h.opts.Node
	return n, ctl.Broadcast(ctx, cmd)
}

// Kick closes every client of channel, on this node and, through the
// engine's control channel, on the others, and returns how many there
// were on this node.
func (h *Hub) Kick(ctx context.Context, name string) (int, error) {
	return h.Broadcast(ctx, engine.Command{Kind: engine.Kick, Channel: name}, func() int { return h.kickLocal(name) })
}

// kickLocal closes every client of channel on this node as
// reason.ChannelClosed and returns how many there were.
func (h *Hub) kickLocal(name string) int {
	clients := h.Clients(name)
	for _, c := range clients {
		c.Close(reason.ChannelClosed)
	}
	return len(clients)
}

// Clients returns the clients registered on channel on this node.
func (h *Hub) Clients(name string) []Client {
	h.mu.RLock()
	ch := h.channels[name]
	h.mu.RUnlock()
	if ch == nil {
		return nil
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	out := make([]Client, 0, len(ch.index))
	for i := range ch.shards {
		if p := ch.shards[i].subs.Load(); p != nil {
			for _, e := range *p {
				if !e.gone {
					out = append(out, e.c)
				}
			}
		}
	}
	return out
}

// ChannelInfo describes a channel that holds messages or has subscribers.
type ChannelInfo struct {
	Name        string
	Messages    int
	Last        uint64
	Subscribers int // on every node
}

// Channels lists every channel that holds messages (when the engine can
// list them) or has subscribers on this node, sorted by name, with its
// subscribers on every node: this node's plus, in one engine call for
// them all, the others'. A channel without messages whose subscribers
// are all on other nodes is not listed.
func (h *Hub) Channels(ctx context.Context) ([]ChannelInfo, error) {
	var stored []engine.ChannelInfo
	if l, ok := h.eng.(engine.ChannelLister); ok {
		var err error
		if stored, err = l.Channels(ctx); err != nil {
			return nil, err
		}
	}
	out := make([]ChannelInfo, 0, len(stored))
	byName := make(map[string]int, len(stored))
	for _, s := range stored {
		byName[s.Name] = len(out)
		out = append(out, ChannelInfo{Name: s.Name, Messages: s.Messages, Last: s.Last})
	}
	h.mu.RLock()
	for name, ch := range h.channels {
		n := int(ch.count.Load())
		if n == 0 {
			continue
		}
		if i, ok := byName[name]; ok {
			out[i].Subscribers = n
		} else {
			out = append(out, ChannelInfo{Name: name, Subscribers: n})
		}
	}
	h.mu.RUnlock()
	names := make([]string, len(out))
	for i := range out {
		names[i] = out[i].Name
	}
	others, err := h.pres.others(ctx, names)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Subscribers += others[i]
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// LocalChannels returns the number of channels with subscribers on this
// node: cheap, for a metrics scrape.
func (h *Hub) LocalChannels() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, ch := range h.channels {
		if ch.count.Load() > 0 {
			n++
		}
	}
	return n
}

// Resyncs returns the number of channel resynchronisations the hub began.
func (h *Hub) Resyncs() int64 { return h.resynced.Load() }

// Overflows returns the number of shards whose clients were closed
// because the fan-out's queue was full.
func (h *Hub) Overflows() int64 { return h.overflows.Load() }

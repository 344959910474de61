// Package hub is the middle of the server: it knows which clients listen to
// which channels on this node, and hands each message that the engine
// delivers to every client of its channel, whatever transport each uses.
//
// A subscription starts pending: live messages for it are held while its
// history is read from the engine, then the history and the held messages
// are delivered in id order without a gap or a repeat, and the subscription
// turns live. This holds whether the engine is local or shared.
//
// # Fan-out
//
// Once Start has run, the clients of each channel are sharded over
// fan-out workers (GOMAXPROCS goroutines by default): a client joins the
// channel's least used shard and stays in it, and shard i belongs to worker
// i mod the number of workers. Handle, which the engine calls in id order
// under its channel lock, queues the message once per shard that has
// clients and returns; each worker hands it to its shard's clients. So the
// write system calls of one publication run on every core, the publisher's
// acknowledgement does not wait for them, and each client still gets a
// channel's messages in id order (one shard, one FIFO queue). Each entry
// remembers the newest id it was given, so a message that reaches a worker
// after the client's activation delivered it (in the history or among the
// held messages) is not delivered twice.
//
// Channels with fewer than Options.InlineBelow clients are delivered on the
// publisher's goroutine, as before Start, when none of their messages is
// still queued: handing a few writes to another goroutine costs more than
// making them.
//
// A worker takes what waits in its queue in batches (up to maxBatchJobs
// jobs): the messages of one shard that queued up while the worker was
// busy reach each client in a single Deliver, so a single write. Nothing
// waits for a batch to fill; batches form only under load, where they cut
// the write system calls that are most of a fan-out's cost.
//
// The queues are bounded, in jobs and in deliveries (maxQueuedJobs,
// maxQueuedDeliveries per worker). When a worker's queue is full Handle
// blocks, holding the engine's channel lock: that is back-pressure on
// publishers when the fan-out needs more CPU than there is. It is never a
// wait for a subscriber: a delivery is a non-blocking write (outq), and a
// subscriber that does not read is closed as a slow consumer.
//
// Lock order: Hub.mu, then channel.mu, then entry.mu. Workers take only
// entry.mu; Handle takes Hub.mu briefly, then Hub.run (read) and a
// worker's mu.
package hub

import (
	"context"
	"runtime"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/meteorpush/meteor/internal/engine"
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
	// Lagged tells the client that the hub dropped messages meant for it
	// (too many arrived while its history was read). The client must close
	// itself, as a slow consumer, so that the loss is never silent.
	Lagged()
	// Kick closes the client because an administrator closed its channel.
	// It must not block and must not call back into the hub.
	Kick()
}

// Sub names one channel of a subscription and the history wanted on joining.
type Sub struct {
	Channel string
	Query   engine.Query
}

// Options configure the fan-out workers that Start runs.
type Options struct {
	// Workers is the number of fan-out goroutines; 0 means GOMAXPROCS.
	Workers int
	// InlineBelow is the number of clients below which a channel's
	// messages are delivered on the publisher's goroutine; 0 means
	// DefaultInlineBelow, a negative value never.
	InlineBelow int
	// OnPanic, when set, is told of a panic recovered from a client's
	// Deliver, with the stack; the server logs it.
	OnPanic func(p any, stack []byte)
}

// DefaultInlineBelow is Options.InlineBelow's default. BenchmarkFanoutTCP
// chose it (BENCHMARKS.md, "Parallel fan-out"): over real sockets, two
// workers already match the publisher's goroutine at 4 clients and are
// 1.6× faster at 16; below that the hand-off costs more than it saves.
const DefaultInlineBelow = 4

const (
	// maxQueuedJobs bounds each worker's queue in (message, shard) jobs.
	maxQueuedJobs = 4096
	// maxQueuedDeliveries bounds each worker's queue in deliveries, so that
	// a backlog of large channels stays a fraction of a second of writes
	// (a loopback write of a few hundred bytes costs a few µs, and a batch
	// of queued messages goes to a client in one write) rather than
	// maxQueuedJobs whole fan-outs. It lets several messages of a channel
	// of 20,000 clients wait, so that they can be batched. A job larger
	// than the bound is still queued when the worker has nothing else
	// queued.
	maxQueuedDeliveries = 1 << 16
)

// Hub routes messages from the engine to clients.
type Hub struct {
	eng engine.Engine

	mu       sync.RWMutex
	channels map[string]*channel // guarded by mu; channels with clients
	nshards  int                 // guarded by mu; shards of a new channel

	// run is held for reading by Handle and Flush while they queue, and
	// for writing by Start and Close.
	run         sync.RWMutex
	workers     []*worker                 // guarded by run; nil before Start and after Close
	closed      bool                      // guarded by run
	inlineBelow int                       // guarded by run; written by Start only
	onPanic     func(p any, stack []byte) // written by Start only
	wg          sync.WaitGroup
}

// worker is one fan-out goroutine and its queue.
type worker struct {
	q chan job

	mu      sync.Mutex
	space   sync.Cond // signalled when queued shrinks; L is &mu
	queued  int       // guarded by mu; deliveries in q
	waiting int       // guarded by mu; Handles waiting for space
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
	// last is the id of the newest message Handle was given.
	last atomic.Uint64
	// inflight counts this channel's queued jobs that no worker has
	// finished. Handle delivers inline only when it is zero, so that an
	// inline delivery never overtakes a queued one.
	inflight atomic.Int64

	mu     sync.Mutex
	index  map[Client]*entry // guarded by mu
	shards []shard           // fixed at creation
	dead   bool              // guarded by mu; removed from Hub.channels
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
	c     Client
	shard int // index in channel.shards, fixed

	mu      sync.Mutex
	gone    bool              // guarded by mu and channel.mu: set holding both
	live    bool              // guarded by mu; history delivered, messages go straight out
	last    uint64            // guarded by mu; newest id delivered or not wanted
	pending []*engine.Message // guarded by mu; held while not live
	lagged  bool              // guarded by mu; pending overflowed
}

// maxPending bounds the messages held for one subscription while its
// history is read; past it the subscription is dropped as a slow consumer
// would be, rather than growing without limit.
const maxPending = 4096

// New returns a hub that delivers on the publisher's goroutine until Start
// runs. The engine must deliver its messages to h.Publish's counterpart,
// Handle.
func New() *Hub {
	return &Hub{channels: make(map[string]*channel), nshards: 1}
}

// Start starts the fan-out workers. It does nothing after Close or a
// first Start. Close stops them.
func (h *Hub) Start(opts Options) {
	n := opts.Workers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	h.run.Lock()
	defer h.run.Unlock()
	if h.closed || h.workers != nil {
		return
	}
	h.onPanic = opts.OnPanic
	h.inlineBelow = opts.InlineBelow
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
		w := &worker{q: make(chan job, maxQueuedJobs)}
		w.space.L = &w.mu
		h.workers[i] = w
		h.wg.Add(1)
		go h.work(w)
	}
}

// Close delivers what is queued, stops the workers and waits for them.
// Messages handled after Close are delivered on the publisher's goroutine.
func (h *Hub) Close() {
	h.run.Lock()
	defer h.run.Unlock()
	h.closed = true
	for _, w := range h.workers {
		close(w.q)
	}
	h.wg.Wait()
	h.workers = nil
}

// Flush waits until every message given to Handle before Flush was called
// has been handed to its clients.
func (h *Hub) Flush() {
	h.run.RLock()
	dones := make([]chan struct{}, len(h.workers))
	for i, w := range h.workers {
		dones[i] = make(chan struct{})
		w.q <- job{done: dones[i]}
	}
	h.run.RUnlock()
	for _, d := range dones {
		<-d
	}
}

// work is a worker's goroutine. It takes what is queued in batches: jobs
// for the same shard that wait in the queue together are handed to each
// client as one Deliver, so that a client gets the messages that piled up
// while the worker was busy in one write rather than one write each. Under
// light load a batch is one message and nothing waits for a batch to fill;
// under heavy load the write system calls, which are most of the cost of a
// fan-out, fall with the backlog.
func (h *Hub) work(w *worker) {
	defer h.wg.Done()
	var b batcher
	for j := range w.q {
		for {
			if j.done != nil {
				// Everything queued before the barrier is delivered.
				h.deliverBatch(w, &b)
				close(j.done)
			} else {
				b.add(j)
				if len(b.jobs) < maxBatchJobs {
					select {
					case next, ok := <-w.q:
						if ok {
							j = next
							continue
						}
					default:
					}
				}
				h.deliverBatch(w, &b)
			}
			break
		}
	}
	h.deliverBatch(w, &b)
}

// maxBatchJobs bounds the jobs one batch takes from a worker's queue.
const maxBatchJobs = 64

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

// deliverBatch hands each group's messages to its shard's clients, then
// releases the jobs' room in the queue.
func (h *Hub) deliverBatch(w *worker, b *batcher) {
	if len(b.jobs) == 0 {
		return
	}
	n := 0
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
	for i := range b.jobs {
		n += b.jobs[i].n
		b.jobs[i] = job{}
	}
	b.jobs = b.jobs[:0]
	b.groups = b.groups[:0]
	w.mu.Lock()
	w.queued -= n
	if w.waiting > 0 {
		w.space.Broadcast()
	}
	w.mu.Unlock()
}

// enqueue queues j, waiting while the worker has too much queued.
func (w *worker) enqueue(j job) {
	w.mu.Lock()
	for w.queued > 0 && w.queued+j.n > maxQueuedDeliveries {
		w.waiting++
		w.space.Wait()
		w.waiting--
	}
	w.queued += j.n
	w.mu.Unlock()
	w.q <- j
}

// deliver hands msgs, one channel's messages in id order, to every client
// in subs: to each the ones newer than what it was given.
func (h *Hub) deliver(subs []*entry, msgs []*engine.Message) {
	newest := msgs[len(msgs)-1].ID
	for _, e := range subs {
		e.mu.Lock()
		if e.gone || newest <= e.last {
			e.mu.Unlock()
			continue
		}
		todo := msgs
		for todo[0].ID <= e.last {
			todo = todo[1:]
		}
		if !e.live {
			for _, m := range todo {
				if len(e.pending) < maxPending {
					e.pending = append(e.pending, m)
				} else {
					e.lagged = true
				}
			}
		} else {
			e.last = newest
			h.deliverOne(e, todo)
		}
		e.mu.Unlock()
	}
}

// deliverOne hands msgs to e's client; the caller holds e.mu. A panic in the
// client's code is contained: the client gets nothing more and is closed as
// lagged, and the panic is reported, so that one connection's bug neither
// takes the server down nor stops the fan-out to the others.
func (h *Hub) deliverOne(e *entry, msgs []*engine.Message) {
	defer func() {
		if p := recover(); p != nil {
			e.gone = true
			if h.onPanic != nil {
				h.onPanic(p, debug.Stack())
			}
			defer func() { recover() }()
			e.c.Lagged()
		}
	}()
	e.c.Deliver(msgs, true)
}

// SetEngine sets the engine that stores and delivers messages. It must be
// called once, before the hub is used; the engine's handler is h.Handle.
func (h *Hub) SetEngine(e engine.Engine) { h.eng = e }

// Engine returns the hub's engine.
func (h *Hub) Engine() engine.Engine { return h.eng }

// Publish stores a message through the engine, which delivers it back to
// Handle on every node with clients of channel.
func (h *Hub) Publish(ctx context.Context, channel, text string) (*engine.Message, error) {
	return h.eng.Publish(ctx, channel, text)
}

// Handle delivers m to the clients of its channel on this node. It is the
// engine's handler, called in id order within a channel. With workers
// running it queues m for them and returns before the writes; it blocks
// only while a worker's queue is full (see the package documentation).
func (h *Hub) Handle(m *engine.Message) {
	h.mu.RLock()
	ch := h.channels[m.Channel]
	h.mu.RUnlock()
	if ch == nil {
		return
	}
	ch.last.Store(m.ID)
	h.run.RLock()
	ws := h.workers
	if ws == nil || int(ch.count.Load()) < h.inlineBelow && ch.inflight.Load() == 0 {
		h.run.RUnlock()
		one := []*engine.Message{m}
		for i := range ch.shards {
			if p := ch.shards[i].subs.Load(); p != nil {
				h.deliver(*p, one)
			}
		}
		return
	}
	for i := range ch.shards {
		sh := &ch.shards[i]
		if p := sh.subs.Load(); p != nil && len(*p) > 0 {
			ch.inflight.Add(1)
			ws[i%len(ws)].enqueue(job{sh: sh, m: m, n: len(*p)})
		}
	}
	h.run.RUnlock()
}

// Subscribe reads the history of each of subs for c. When persist is true
// it also registers c on each channel, pending: c receives nothing until the
// returned activate function runs, which delivers the history and what was
// published meanwhile, then lets live messages through. When persist is
// false, activate only delivers the history. Either way the caller writes
// whatever must precede the messages (a header, say) between Subscribe and
// activate. On error c is registered nowhere.
func (h *Hub) Subscribe(ctx context.Context, c Client, subs []Sub, persist bool) (hist []engine.History, activate func(), err error) {
	var chans []*channel
	if persist {
		chans = make([]*channel, len(subs))
		for i, s := range subs {
			chans[i] = h.join(ctx, c, s.Channel)
		}
	}
	hist = make([]engine.History, len(subs))
	for i, s := range subs {
		hist[i], err = h.eng.History(ctx, s.Channel, s.Query)
		if err != nil {
			h.Unsubscribe(c)
			return nil, nil, err
		}
	}
	activate = func() {
		for i := range subs {
			if persist {
				if !chans[i].activate(c, hist[i]) {
					return
				}
			} else if len(hist[i].Messages) > 0 && !c.Deliver(hist[i].Messages, false) {
				return
			}
		}
	}
	return hist, activate, nil
}

// join registers c, pending, on the named channel.
func (h *Hub) join(ctx context.Context, c Client, name string) *channel {
	for {
		h.mu.RLock()
		ch := h.channels[name]
		h.mu.RUnlock()
		if ch == nil {
			h.mu.Lock()
			if ch = h.channels[name]; ch == nil {
				ch = &channel{name: name, index: make(map[Client]*entry), shards: make([]shard, h.nshards)}
				for i := range ch.shards {
					ch.shards[i].ch = ch
				}
				h.channels[name] = ch
			}
			h.mu.Unlock()
			// The engine may hold the channel elsewhere (a shared store);
			// its delivery starts before the history is read.
			h.eng.Subscribe(ctx, name)
		}
		ch.mu.Lock()
		if ch.dead {
			ch.mu.Unlock()
			continue
		}
		if _, ok := ch.index[c]; !ok {
			i := 0
			for k := range ch.shards {
				if ch.shards[k].live < ch.shards[i].live {
					i = k
				}
			}
			// Messages that Handle was given before now may still be
			// queued: they are older than the subscription, not for it.
			e := &entry{c: c, shard: i, last: ch.last.Load()}
			ch.shards[i].addLocked(e)
			ch.index[c] = e
			ch.count.Add(1)
		}
		ch.mu.Unlock()
		return ch
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

// activate delivers hist and the held messages to c and turns it live. It
// reports whether c still wants messages.
func (ch *channel) activate(c Client, hist engine.History) bool {
	ch.mu.Lock()
	e := ch.index[c]
	ch.mu.Unlock()
	if e == nil {
		return false
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.gone {
		return false
	}
	if e.lagged {
		c.Lagged()
		return false
	}
	ok := true
	if len(hist.Messages) > 0 {
		ok = c.Deliver(hist.Messages, false)
	}
	// Messages stored before the history was read are in it, or were
	// older than what the client asked for: skip them, here and when a
	// worker reaches them.
	last := max(e.last, hist.LastID)
	held := e.pending
	e.pending = nil
	e.live = true
	for i, m := range held {
		if !ok {
			break
		}
		if m.ID > last {
			ok = c.Deliver(held[i:i+1], false)
			last = m.ID
		}
	}
	e.last = last
	return ok
}

// Unsubscribe removes c from every channel it is registered on, or from
// the named channels only.
func (h *Hub) Unsubscribe(c Client, names ...string) {
	var chans []*channel
	h.mu.RLock()
	if len(names) == 0 {
		for _, ch := range h.channels {
			chans = append(chans, ch)
		}
	} else {
		for _, n := range names {
			if ch := h.channels[n]; ch != nil {
				chans = append(chans, ch)
			}
		}
	}
	h.mu.RUnlock()
	for _, ch := range chans {
		ch.mu.Lock()
		e := ch.index[c]
		if e != nil {
			delete(ch.index, c)
			ch.count.Add(-1)
			// After this no delivery reaches c from this channel.
			e.mu.Lock()
			e.gone = true
			e.pending = nil
			e.mu.Unlock()
			ch.shards[e.shard].removeLocked()
		}
		empty := len(ch.index) == 0
		ch.mu.Unlock()
		if empty {
			h.dropIfEmpty(ch)
		}
	}
}

func (h *Hub) dropIfEmpty(ch *channel) {
	h.mu.Lock()
	ch.mu.Lock()
	drop := len(ch.index) == 0 && !ch.dead && h.channels[ch.name] == ch
	if drop {
		ch.dead = true
		delete(h.channels, ch.name)
	}
	ch.mu.Unlock()
	h.mu.Unlock()
	if drop {
		h.eng.Unsubscribe(context.Background(), ch.name)
	}
}

// CountSubscribers returns the number of clients registered on channel on
// this node.
func (h *Hub) CountSubscribers(name string) int {
	h.mu.RLock()
	ch := h.channels[name]
	h.mu.RUnlock()
	if ch == nil {
		return 0
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	return len(ch.index)
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

// Kick closes every client of channel on this node and returns how many
// there were.
func (h *Hub) Kick(name string) int {
	clients := h.Clients(name)
	for _, c := range clients {
		c.Kick()
	}
	return len(clients)
}

// ChannelInfo describes a channel that holds messages or has subscribers.
type ChannelInfo struct {
	Name        string
	Messages    int
	LastID      uint64
	Subscribers int
}

// Channels lists every channel that holds messages or has subscribers on
// this node, sorted by name.
func (h *Hub) Channels(ctx context.Context) ([]ChannelInfo, error) {
	stored, err := h.eng.Channels(ctx)
	if err != nil {
		return nil, err
	}
	byName := make(map[string]*ChannelInfo, len(stored))
	out := make([]ChannelInfo, 0, len(stored))
	for _, s := range stored {
		out = append(out, ChannelInfo{Name: s.Name, Messages: s.Messages, LastID: s.LastID})
	}
	for i := range out {
		byName[out[i].Name] = &out[i]
	}
	h.mu.RLock()
	var extra []ChannelInfo
	for name, ch := range h.channels {
		ch.mu.Lock()
		n := len(ch.index)
		ch.mu.Unlock()
		if n == 0 {
			continue
		}
		if ci := byName[name]; ci != nil {
			ci.Subscribers = n
		} else {
			extra = append(extra, ChannelInfo{Name: name, Subscribers: n})
		}
	}
	h.mu.RUnlock()
	out = append(out, extra...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

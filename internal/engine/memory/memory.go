// Package memory is the default engine: channel streams in this process's
// memory, for one node.
//
// Each channel numbers its own messages with engine.NextID, so ids keep
// growing across a restart of the process, and each stream draws a new
// epoch when it begins (its first message after the process started, or
// after the channel was forgotten), so that a client resuming into a
// stream that a restart lost is told of its gap.
package memory

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
)

// Engine keeps channel streams in memory.
type Engine struct {
	// now is the clock; tests replace it.
	now func() time.Time
	// dense numbers each channel 1, 2, 3 (SetDenseIDs).
	dense bool

	mu       sync.RWMutex
	handler  engine.Handler        // written by Start
	control  engine.ControlHandler // written by Start; nil when handler is not one
	channels map[string]*channel   // guarded by mu
	limits   engine.Limits         // guarded by mu
	started  bool                  // guarded by mu
	closed   bool                  // guarded by mu
	counts   map[string]int        // guarded by mu; this node's presence report

	stop chan struct{}
	done chan struct{}
}

// channel is one channel's stream, and whether the hub subscribed to it.
type channel struct {
	mu         sync.Mutex
	epoch      string            // guarded by mu; "" until the stream's first message
	msgs       []*engine.Message // guarded by mu; in id order
	top        uint64            // guarded by mu; newest id handed out
	trimmed    uint64            // guarded by mu; newest id dropped
	emptied    time.Time         // guarded by mu; when msgs became empty
	subscribed bool              // guarded by mu; delivered to the handler
}

var (
	_ engine.Engine        = (*Engine)(nil)
	_ engine.ChannelLister = (*Engine)(nil)
	_ engine.HealthChecker = (*Engine)(nil)
	_ engine.Presence      = (*Engine)(nil)
	_ engine.Control       = (*Engine)(nil)
	_ engine.LimitSetter   = (*Engine)(nil)
)

// New returns an engine that keeps what limits allow. Start starts it.
func New(limits engine.Limits) *Engine {
	return &Engine{
		now:      time.Now,
		channels: make(map[string]*channel),
		limits:   limits,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// SetDenseIDs makes the engine number each channel's messages 1, 2, 3...
// (last + 1) instead of engine.NextID's max(last + 1, now in
// microseconds). Dense ids are reused after a restart, so this is for
// tests that compare ids with literal numbers only; no setting reaches
// it. It is called before Start.
func (e *Engine) SetDenseIDs() { e.dense = true }

// Start implements engine.Engine: it starts the goroutine that drops
// messages older than the age limit and forgets empty channels.
func (e *Engine) Start(_ context.Context, h engine.Handler) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return engine.ErrClosed
	}
	if e.started {
		return nil
	}
	e.started = true
	e.handler = h
	e.control, _ = h.(engine.ControlHandler)
	go e.expireLoop()
	return nil
}

// SetLimits implements engine.LimitSetter; the limits apply from the next
// publish or sweep.
func (e *Engine) SetLimits(l engine.Limits) {
	e.mu.Lock()
	e.limits = l
	e.mu.Unlock()
}

// lock returns the named channel, locked, creating it when create is set
// (nil otherwise when it does not exist), with the limits in force. It
// returns engine.ErrClosed after Close.
//
// Lock order: e.mu before channel.mu, everywhere.
func (e *Engine) lock(name string, create bool) (*channel, engine.Limits, error) {
	e.mu.RLock()
	ch := e.channels[name]
	closed, limits := e.closed, e.limits
	if ch != nil || !create || closed {
		if ch != nil && !closed {
			// Holding e.mu while taking ch.mu keeps the sweep from
			// forgetting the channel in between.
			ch.mu.Lock()
		}
		e.mu.RUnlock()
		if closed {
			return nil, limits, engine.ErrClosed
		}
		return ch, limits, nil
	}
	e.mu.RUnlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil, e.limits, engine.ErrClosed
	}
	if ch = e.channels[name]; ch == nil {
		ch = &channel{}
		e.channels[name] = ch
	}
	ch.mu.Lock()
	return ch, e.limits, nil
}

// Publish implements engine.Engine. Consecutive publications to one
// channel are stored and handed to the handler together, in one call,
// under the channel's lock, so that deliveries keep id order.
func (e *Engine) Publish(ctx context.Context, pubs ...engine.Publication) ([]*engine.Message, error) {
	out := make([]*engine.Message, 0, len(pubs))
	for i := 0; i < len(pubs); {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		name := pubs[i].Channel
		j := i + 1
		for j < len(pubs) && pubs[j].Channel == name {
			j++
		}
		var err error
		if out, err = e.publishRun(name, pubs[i:j], out); err != nil {
			return out, err
		}
		i = j
	}
	return out, nil
}

// publishRun stores pubs, all of channel name, appends them to out and
// hands them to the handler, under the channel's lock (released by a
// defer: a panic in the handler must not leave the channel locked).
func (e *Engine) publishRun(name string, pubs []engine.Publication, out []*engine.Message) ([]*engine.Message, error) {
	ch, limits, err := e.lock(name, true)
	if err != nil {
		return out, err
	}
	defer ch.mu.Unlock()
	now := e.now()
	if ch.epoch == "" {
		ch.epoch = engine.NewEpoch()
	}
	first := len(out)
	for _, p := range pubs {
		if e.dense {
			ch.top++
		} else {
			ch.top = engine.NextID(ch.top, now)
		}
		m := &engine.Message{Channel: name, ID: ch.top, Epoch: ch.epoch, Text: p.Text, Time: now}
		ch.msgs = append(ch.msgs, m)
		out = append(out, m)
	}
	maxMessages, _ := limits.Of(name)
	ch.trimCount(maxMessages, now)
	if ch.subscribed && e.handler != nil {
		e.handler.HandleMessages(name, out[first:])
	}
	return out, nil
}

// trimCount drops the oldest messages beyond max. The caller holds c.mu.
func (c *channel) trimCount(max int, now time.Time) {
	if max < 0 {
		max = 0
	}
	if n := len(c.msgs) - max; n > 0 {
		c.drop(n, now)
	}
}

// trimAge drops messages older than cutoff. The caller holds c.mu.
func (c *channel) trimAge(cutoff, now time.Time) {
	n := sort.Search(len(c.msgs), func(i int) bool { return !c.msgs[i].Time.Before(cutoff) })
	if n > 0 {
		c.drop(n, now)
	}
}

// drop drops the n oldest messages. The caller holds c.mu.
func (c *channel) drop(n int, now time.Time) {
	c.trimmed = c.msgs[n-1].ID
	clear(c.msgs[:n])
	c.msgs = c.msgs[n:]
	if len(c.msgs) == 0 {
		c.msgs = nil
		c.emptied = now
	}
}

// stream returns the channel's state. The caller holds c.mu.
func (c *channel) stream() engine.Stream {
	s := engine.Stream{Epoch: c.epoch, Count: len(c.msgs), Trimmed: c.trimmed}
	if n := len(c.msgs); n > 0 {
		s.First, s.Last = c.msgs[0].ID, c.msgs[n-1].ID
	}
	return s
}

// History implements engine.Engine.
func (e *Engine) History(ctx context.Context, reqs ...engine.HistoryRequest) ([]engine.History, error) {
	out := make([]engine.History, len(reqs))
	for i, r := range reqs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ch, limits, err := e.lock(r.Channel, false)
		if err != nil {
			return nil, err
		}
		if ch == nil {
			continue
		}
		if _, maxAge := limits.Of(r.Channel); maxAge > 0 {
			now := e.now()
			ch.trimAge(now.Add(-maxAge), now)
		}
		out[i] = engine.History{Stream: ch.stream(), Messages: ch.selectLocked(r.Query)}
		ch.mu.Unlock()
	}
	return out, nil
}

// selectLocked returns a copy of the stored messages q selects. The
// caller holds c.mu.
func (c *channel) selectLocked(q engine.Query) []*engine.Message {
	msgs := c.msgs
	var sel []*engine.Message
	switch q.Kind {
	case engine.QueryAll:
		sel = msgs
	case engine.QueryLast:
		if q.Last > 0 {
			sel = msgs[max(0, len(msgs)-q.Last):]
		}
	case engine.QueryAfter:
		if q.After.Epoch != "" && q.After.Epoch != c.epoch {
			sel = msgs // another stream: none of these was seen
			break
		}
		i := sort.Search(len(msgs), func(i int) bool { return msgs[i].ID > q.After.ID })
		sel = msgs[i:]
	}
	if len(sel) == 0 {
		return nil
	}
	return append([]*engine.Message(nil), sel...)
}

// Subscribe implements engine.Engine: from now on the channels' messages
// reach the handler.
func (e *Engine) Subscribe(_ context.Context, channels ...string) error {
	return e.setSubscribed(channels, true)
}

// Unsubscribe implements engine.Engine.
func (e *Engine) Unsubscribe(_ context.Context, channels ...string) error {
	return e.setSubscribed(channels, false)
}

func (e *Engine) setSubscribed(channels []string, on bool) error {
	for _, name := range channels {
		ch, _, err := e.lock(name, on)
		if err != nil {
			return err
		}
		if ch != nil {
			ch.subscribed = on
			ch.mu.Unlock()
		}
	}
	return nil
}

// Channels implements engine.ChannelLister.
func (e *Engine) Channels(context.Context) ([]engine.ChannelInfo, error) {
	names, chans, err := e.snapshot()
	if err != nil {
		return nil, err
	}
	out := make([]engine.ChannelInfo, 0, len(names))
	for i, c := range chans {
		c.mu.Lock()
		if n := len(c.msgs); n > 0 {
			out = append(out, engine.ChannelInfo{Name: names[i], Messages: n, Last: c.msgs[n-1].ID})
		}
		c.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// snapshot returns the channels known now, with their names.
func (e *Engine) snapshot() ([]string, []*channel, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return nil, nil, engine.ErrClosed
	}
	names := make([]string, 0, len(e.channels))
	chans := make([]*channel, 0, len(e.channels))
	for n, c := range e.channels {
		names = append(names, n)
		chans = append(chans, c)
	}
	return names, chans, nil
}

// Clear implements engine.Engine. The channels stay known, empty, with
// their epoch and newest id, so that a client resuming into them is told
// of its gap.
func (e *Engine) Clear(_ context.Context, name string) error {
	names, chans, err := e.snapshot()
	if err != nil {
		return err
	}
	now := e.now()
	for i, c := range chans {
		if name != "" && names[i] != name {
			continue
		}
		c.mu.Lock()
		if len(c.msgs) > 0 {
			c.drop(len(c.msgs), now)
		}
		c.mu.Unlock()
	}
	return nil
}

// Ready implements engine.HealthChecker: a memory engine is ready until
// it is closed.
func (e *Engine) Ready(context.Context) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return engine.ErrClosed
	}
	return nil
}

// ReportCounts implements engine.Presence for one node: it keeps the
// report, which no other node reads.
func (e *Engine) ReportCounts(_ context.Context, counts map[string]int, _ time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return engine.ErrClosed
	}
	e.counts = counts
	return nil
}

// OtherCounts implements engine.Presence for one node: there are no other
// nodes, so every count is 0.
func (e *Engine) OtherCounts(_ context.Context, channels ...string) ([]int, error) {
	if err := e.Ready(context.Background()); err != nil {
		return nil, err
	}
	return make([]int, len(channels)), nil
}

// Broadcast implements engine.Control for one node: this node is every
// node, so cmd goes to its own ControlHandler, before Broadcast returns.
func (e *Engine) Broadcast(_ context.Context, cmd engine.Command) error {
	e.mu.RLock()
	h, closed := e.control, e.closed
	e.mu.RUnlock()
	if closed {
		return engine.ErrClosed
	}
	if h != nil {
		h.HandleControl(cmd)
	}
	return nil
}

// Close implements engine.Engine: it stops the expiry goroutine and waits
// for it.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	started := e.started
	e.mu.Unlock()
	if !started {
		return nil
	}
	close(e.stop)
	select {
	case <-e.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sweepPeriod is how often the expiry goroutine runs.
const sweepPeriod = time.Second

// expireLoop drops messages older than the age limit once a second, and
// forgets channels that have been empty for long enough.
func (e *Engine) expireLoop() {
	defer close(e.done)
	t := time.NewTicker(sweepPeriod)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			e.expire(e.now())
		}
	}
}

// tombstoneTTL is how long an emptied channel remembers its epoch and the
// newest id it dropped, when messages never expire by age: long enough
// for a client to come back and be told of its gap. A client that comes
// back later with the epoch is told of a gap too (the channel is unknown);
// one without an epoch is not.
const tombstoneTTL = 2 * time.Hour

// stale reports whether a channel may be forgotten: nothing stored, nobody
// subscribed, and no trimmed id to remember, or remembered for keep
// already. The caller holds c.mu.
func (c *channel) stale(now time.Time, keep time.Duration) bool {
	return len(c.msgs) == 0 && !c.subscribed && (c.trimmed == 0 || now.Sub(c.emptied) >= keep)
}

// expire drops each channel's messages older than its age limit, and
// forgets the channels that stayed empty for that age (tombstoneTTL when
// their messages never expire).
func (e *Engine) expire(now time.Time) {
	names, chans, err := e.snapshot()
	if err != nil {
		return
	}
	e.mu.RLock()
	limits := e.limits
	e.mu.RUnlock()
	type staleChannel struct {
		i    int
		keep time.Duration
	}
	var stale []staleChannel
	for i, c := range chans {
		_, maxAge := limits.Of(names[i])
		keep := maxAge
		if keep <= 0 {
			keep = tombstoneTTL
		}
		c.mu.Lock()
		if maxAge > 0 {
			c.trimAge(now.Add(-maxAge), now)
		}
		if c.stale(now, keep) {
			stale = append(stale, staleChannel{i, keep})
		}
		c.mu.Unlock()
	}
	if len(stale) == 0 {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, st := range stale {
		c := chans[st.i]
		if e.channels[names[st.i]] != c {
			continue
		}
		c.mu.Lock()
		if c.stale(now, st.keep) {
			delete(e.channels, names[st.i])
		}
		c.mu.Unlock()
	}
}

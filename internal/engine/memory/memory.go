// Package memory is the default engine: channel histories in this process's
// memory, ids from one counter shared by all channels (as Meteor 1.06 did).
package memory

import (
	"context"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
)

// Options bound what each channel keeps.
type Options struct {
	MaxMessages int           // newest messages kept per channel; <= 0 keeps none
	MaxAge      time.Duration // older messages are dropped; 0 keeps them forever
}

// Engine keeps channel histories in memory.
type Engine struct {
	handler engine.Handler

	mu       sync.RWMutex
	channels map[string]*channel // guarded by mu; only channels holding messages
	opts     Options             // guarded by mu
	closed   bool                // guarded by mu
	lastID   atomic.Uint64       // the newest id handed out; ids start at 1

	stop chan struct{}
	done chan struct{}
}

type channel struct {
	mu      sync.Mutex
	msgs    []*engine.Message // guarded by mu; in id order
	trimmed uint64            // guarded by mu; newest id dropped
	emptied time.Time         // guarded by mu; when msgs became empty
}

var _ engine.Engine = (*Engine)(nil)

// New returns an engine that delivers every published message to h, and
// starts the goroutine that drops messages older than opts.MaxAge.
func New(opts Options, h engine.Handler) *Engine {
	e := &Engine{
		handler:  h,
		channels: make(map[string]*channel),
		opts:     opts,
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	go e.expireLoop()
	return e
}

// SetOptions changes the limits; they apply from the next publish or sweep.
func (e *Engine) SetOptions(opts Options) {
	e.mu.Lock()
	e.opts = opts
	e.mu.Unlock()
}

// Publish implements engine.Engine. The handler runs before Publish returns,
// under the channel's lock, so that deliveries keep id order.
//
// Lock order: e.mu before channel.mu, everywhere.
func (e *Engine) Publish(_ context.Context, name, text string) (*engine.Message, error) {
	e.mu.RLock()
	ch := e.channels[name]
	closed, opts := e.closed, e.opts
	if ch == nil {
		e.mu.RUnlock()
		e.mu.Lock()
		if ch = e.channels[name]; ch == nil {
			ch = &channel{}
			e.channels[name] = ch
		}
		closed, opts = e.closed, e.opts
		ch.mu.Lock()
		e.mu.Unlock()
	} else {
		// Holding e.mu while taking ch.mu keeps dropIfEmpty from removing
		// the channel in between.
		ch.mu.Lock()
		e.mu.RUnlock()
	}
	defer ch.mu.Unlock()
	if closed {
		return nil, engine.ErrClosed
	}
	m := &engine.Message{ID: e.lastID.Add(1), Channel: name, Text: text, Time: time.Now()}
	ch.msgs = append(ch.msgs, m)
	ch.trimCount(opts.MaxMessages)
	if e.handler != nil {
		e.handler(m)
	}
	return m, nil
}

// trimCount drops the oldest messages beyond max. The caller holds c.mu.
func (c *channel) trimCount(max int) {
	if max < 0 {
		max = 0
	}
	if n := len(c.msgs) - max; n > 0 {
		c.drop(n)
	}
}

// trimAge drops messages older than cutoff. The caller holds c.mu.
func (c *channel) trimAge(cutoff time.Time) {
	n := sort.Search(len(c.msgs), func(i int) bool { return !c.msgs[i].Time.Before(cutoff) })
	if n > 0 {
		c.drop(n)
	}
}

// drop drops the n oldest messages. The caller holds c.mu.
func (c *channel) drop(n int) {
	c.trimmed = c.msgs[n-1].ID
	clear(c.msgs[:n])
	c.msgs = c.msgs[n:]
	if len(c.msgs) == 0 {
		c.emptied = time.Now()
	}
}

func (e *Engine) channel(name string, create bool) *channel {
	e.mu.RLock()
	ch := e.channels[name]
	e.mu.RUnlock()
	if ch != nil || !create {
		return ch
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if ch = e.channels[name]; ch == nil {
		ch = &channel{}
		e.channels[name] = ch
	}
	return ch
}

// tombstoneTTL is how long an emptied channel remembers the newest id it
// dropped, when messages never expire by age: long enough for a client to
// come back and be told of its gap.
const tombstoneTTL = 2 * time.Hour

// stale reports whether an empty channel may be forgotten. The caller holds
// c.mu.
func (c *channel) stale(now time.Time, keep time.Duration) bool {
	return len(c.msgs) == 0 && (c.trimmed == 0 || now.Sub(c.emptied) >= keep)
}

// dropIfStale removes ch from the map if it may be forgotten.
func (e *Engine) dropIfStale(name string, ch *channel, now time.Time, keep time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.channels[name] != ch {
		return
	}
	ch.mu.Lock()
	if ch.stale(now, keep) {
		delete(e.channels, name)
	}
	ch.mu.Unlock()
}

// History implements engine.Engine.
func (e *Engine) History(_ context.Context, name string, q engine.Query) (engine.History, error) {
	e.mu.RLock()
	closed, maxAge := e.closed, e.opts.MaxAge
	e.mu.RUnlock()
	if closed {
		return engine.History{}, engine.ErrClosed
	}
	ch := e.channel(name, false)
	if ch == nil {
		return engine.History{}, nil
	}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	if maxAge > 0 {
		ch.trimAge(time.Now().Add(-maxAge))
	}
	msgs := ch.msgs
	h := engine.History{Count: len(msgs), Trimmed: ch.trimmed}
	if len(msgs) == 0 {
		return h, nil
	}
	h.FirstID, h.LastID = msgs[0].ID, msgs[len(msgs)-1].ID
	var sel []*engine.Message
	switch q.Kind {
	case engine.QueryAll:
		sel = msgs
	case engine.QueryLast:
		if q.Last > 0 {
			sel = msgs[max(0, len(msgs)-q.Last):]
		}
	case engine.QuerySince:
		i := sort.Search(len(msgs), func(i int) bool { return msgs[i].ID >= q.Since })
		sel = msgs[i:]
	}
	if len(sel) > 0 {
		h.Messages = append([]*engine.Message(nil), sel...)
	}
	return h, nil
}

// Subscribe implements engine.Engine. Every message reaches the handler in
// this engine, so there is nothing to do.
func (e *Engine) Subscribe(context.Context, string) error { return nil }

// Unsubscribe implements engine.Engine.
func (e *Engine) Unsubscribe(context.Context, string) error { return nil }

// Channels implements engine.Engine.
func (e *Engine) Channels(context.Context) ([]engine.ChannelInfo, error) {
	e.mu.RLock()
	names := make([]string, 0, len(e.channels))
	chans := make([]*channel, 0, len(e.channels))
	for n, c := range e.channels {
		names = append(names, n)
		chans = append(chans, c)
	}
	e.mu.RUnlock()
	out := make([]engine.ChannelInfo, 0, len(names))
	for i, c := range chans {
		c.mu.Lock()
		if n := len(c.msgs); n > 0 {
			out = append(out, engine.ChannelInfo{Name: names[i], Messages: n, LastID: c.msgs[n-1].ID})
		}
		c.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Clear implements engine.Engine. The channels stay known, empty, so that
// a client resuming into them is told of its gap.
func (e *Engine) Clear(_ context.Context, name string) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	for n, c := range e.channels {
		if name != "" && n != name {
			continue
		}
		c.mu.Lock()
		if len(c.msgs) > 0 {
			c.drop(len(c.msgs))
		}
		c.mu.Unlock()
	}
	return nil
}

// Close implements engine.Engine: it stops the expiry goroutine.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	close(e.stop)
	<-e.done
	return nil
}

// expireLoop drops messages older than MaxAge once a second, and forgets
// channels that have been empty for long enough.
func (e *Engine) expireLoop() {
	defer close(e.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case now := <-t.C:
			e.expire(now)
		}
	}
}

func (e *Engine) expire(now time.Time) {
	e.mu.RLock()
	maxAge := e.opts.MaxAge
	names := make([]string, 0, len(e.channels))
	chans := make([]*channel, 0, len(e.channels))
	for n, c := range e.channels {
		names = append(names, n)
		chans = append(chans, c)
	}
	e.mu.RUnlock()
	keep := maxAge
	if keep <= 0 {
		keep = tombstoneTTL
	}
	for i, c := range chans {
		c.mu.Lock()
		if maxAge > 0 {
			c.trimAge(now.Add(-maxAge))
		}
		stale := c.stale(now, keep)
		c.mu.Unlock()
		if stale {
			e.dropIfStale(names[i], c, now, keep)
		}
	}
}

package hub

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
)

// Presence: what this node tells the engine of its subscribers, and the
// cluster-wide counts and lists built from it.
//
// A subscriber is what it has always been here: a client registered on a
// channel (a persistent subscription of any transport). This node knows
// its own exactly; the engine (engine.Presence, engine.SubscriberLister)
// knows what the others reported. The presence goroutine reports this
// node's counts when they changed (every Options.PresenceFlush at most)
// and at least every PresenceTTL/3, and its entries (one per client and
// channel) in batches of the additions and removals made since the last
// report, off the delivery path and with no hub lock held during the
// engine call. A node that stops reporting is forgotten by the others
// within PresenceTTL.
//
// A cluster-wide count is this node's count plus the others', which are
// cached for Options.CountCache: COUNTSUBSCRIBERS and ~subscriberCount~
// cost at most one engine call per channel and CountCache, however many
// ask (one call in flight per channel; the others wait for it). So a
// count is exact for this node and up to CountCache plus the other
// nodes' report delay (PresenceFlush, and the store's round trip) stale
// for the others.

// The presence defaults.
const (
	// DefaultPresenceTTL is Options.PresenceTTL's default (the
	// PresenceTTL setting's).
	DefaultPresenceTTL = 60 * time.Second
	// DefaultPresenceFlush is Options.PresenceFlush's default.
	DefaultPresenceFlush = 250 * time.Millisecond
	// DefaultCountCache is Options.CountCache's default.
	DefaultCountCache = time.Second
)

// maxChanges bounds the entry changes waiting for a report; past it (a
// store down for long under churn) they are dropped and the next report
// is a full one.
var maxChanges = 1 << 16

// Describer is a Client that says who it is, for the presence lists. A
// Client that is not one is listed by a number of the hub's, without a
// transport.
type Describer interface {
	// Describe returns the client's hostid, or its connection's id when it
	// has none, and its transport's name (as the metrics name it). The
	// hub calls it on its own goroutines, with no lock held, possibly
	// after the client left: its answers never change.
	Describe() (id, transport string)
}

// presence is the hub's side of presence.
type presence struct {
	counts engine.Presence         // nil: the engine counts no other node
	lister engine.SubscriberLister // nil: the engine lists no other node
	ttl    time.Duration
	flush  time.Duration
	cached time.Duration

	lastKey atomic.Uint64 // the newest entry key
	dirty   atomic.Bool   // a count changed since the last report
	// listed says which channels' subscribers are listed (SetPresence);
	// nil: every channel's.
	listed atomic.Pointer[func(channel string) bool]

	mu      sync.Mutex // leaf: taken under a hub channel.mu
	changes []change   // guarded by mu; since the last report
	full    bool       // guarded by mu; the next report is a full one

	cacheMu sync.Mutex             // leaf
	cache   map[string]*otherCount // guarded by cacheMu
}

// change is one entry's addition (c set) or removal (c nil), queued. The
// client is described on the presence goroutine, off the subscribe path.
type change struct {
	channel string
	key     uint64
	c       Client
}

// entryChange returns ch as the engine takes it.
func (ch change) entryChange() engine.SubscriberChange {
	if ch.c == nil {
		return engine.SubscriberChange{Channel: ch.channel, Key: ch.key, Gone: true}
	}
	id, tr := describe(ch.c, ch.key)
	return engine.SubscriberChange{Channel: ch.channel, Key: ch.key, Sub: engine.Subscriber{ID: id, Transport: tr, Since: since(ch.key)}}
}

// otherCount is the other nodes' count of one channel, as last read.
type otherCount struct {
	n  int       // guarded by presence.cacheMu
	at time.Time // guarded by presence.cacheMu; when n was read
	// fetching is closed once the read in flight is done; nil when none
	// is. Guarded by presence.cacheMu.
	fetching chan struct{}
}

func newPresence(eng engine.Engine, opts Options) *presence {
	p := &presence{ttl: opts.PresenceTTL, flush: opts.PresenceFlush, cached: opts.CountCache, full: true, cache: make(map[string]*otherCount)}
	p.counts, _ = eng.(engine.Presence)
	p.lister, _ = eng.(engine.SubscriberLister)
	return p
}

// nextKey returns a new entry key: max(last+1, now in µs), so that keys
// are unique, never reused while the node runs, and tell when the entry
// was made.
func (p *presence) nextKey() uint64 {
	for {
		last := p.lastKey.Load()
		k := engine.NextID(last, time.Now())
		if p.lastKey.CompareAndSwap(last, k) {
			return k
		}
	}
}

// since returns when the entry with key was made.
func since(key uint64) time.Time { return time.UnixMicro(int64(key)) }

// describe returns how c is listed.
func describe(c Client, key uint64) (id, transport string) {
	if d, ok := c.(Describer); ok {
		return d.Describe()
	}
	return strconv.FormatUint(key, 10), ""
}

// SetPresence says which channels' subscribers are listed: those for
// which listed returns true (nil: every channel; the Presence setting of
// each channel's namespace). The subscribers of another channel are
// counted but not listed: ListSubscribers returns none of them, and this
// node reports no entries of them to the engine. listed is called with
// a hub lock held: it returns at once and calls nothing of the hub's. A
// change takes effect at once for new entries and listings; the next
// report to the engine is a full one, so the entries of channels no
// longer listed leave the store.
func (h *Hub) SetPresence(listed func(channel string) bool) {
	p := h.pres
	if listed == nil {
		p.listed.Store(nil)
	} else {
		p.listed.Store(&listed)
	}
	p.mu.Lock()
	p.full, p.changes = true, nil
	p.mu.Unlock()
}

// isListed reports whether channel name's subscribers are listed.
func (p *presence) isListed(name string) bool {
	f := p.listed.Load()
	return f == nil || (*f)(name)
}

// addedLocked records e's addition to channel name. The caller holds the
// channel's mu, so that an entry's addition and removal queue in order;
// the client is described later, on the presence goroutine.
func (p *presence) addedLocked(name string, e *entry) {
	p.dirty.Store(true)
	if p.lister == nil || !p.isListed(name) {
		return
	}
	p.queue(change{channel: name, key: e.key, c: e.c})
}

// removedLocked records e's removal from channel name; the caller holds
// the channel's mu.
func (p *presence) removedLocked(name string, e *entry) {
	p.dirty.Store(true)
	if p.lister == nil || !p.isListed(name) {
		return
	}
	p.queue(change{channel: name, key: e.key})
}

func (p *presence) queue(c change) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.full {
		return // the full report reads the entries themselves
	}
	if len(p.changes) >= maxChanges {
		p.changes, p.full = nil, true
		return
	}
	p.changes = append(p.changes, c)
}

// presenceLoop reports this node's counts and entries until the hub
// closes, then reports that it has none, so that the other nodes need not
// wait for its reports to expire.
func (h *Hub) presenceLoop() {
	defer h.wg.Done()
	p := h.pres
	t := time.NewTicker(p.flush)
	defer t.Stop()
	var counted, listed time.Time
	for {
		select {
		case <-h.ctx.Done():
			ctx, cancel := context.WithTimeout(context.Background(), min(h.opts.EngineTimeout, 2*time.Second))
			defer cancel()
			if p.counts != nil {
				p.counts.ReportCounts(ctx, map[string]int{}, p.ttl)
			}
			if p.lister != nil {
				p.lister.ReportSubscribers(ctx, nil, true, p.ttl)
			}
			return
		case <-t.C:
		}
		now := time.Now()
		if p.counts != nil && (p.dirty.Load() || now.Sub(counted) >= p.ttl/3) {
			p.dirty.Store(false)
			if h.reportCounts() {
				counted = now
			} else {
				p.dirty.Store(true)
			}
		}
		if p.lister != nil && h.reportEntries(now.Sub(listed) >= p.ttl/3) {
			listed = now
		}
		p.evict(now)
	}
}

// engineCtx returns the context of one of the presence goroutine's engine
// calls.
func (h *Hub) engineCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(h.ctx, h.opts.EngineTimeout)
}

// reportCounts reports this node's counts, and reports whether it could.
func (h *Hub) reportCounts() bool {
	counts := make(map[string]int)
	h.mu.RLock()
	for name, ch := range h.channels {
		if n := int(ch.count.Load()); n > 0 {
			counts[name] = n
		}
	}
	h.mu.RUnlock()
	ctx, cancel := h.engineCtx()
	defer cancel()
	if err := h.pres.counts.ReportCounts(ctx, counts, h.pres.ttl); err != nil {
		h.presenceFailed(err)
		return false
	}
	return true
}

// reportEntries sends the entry changes made since the last report, or
// every entry when the report is a full one; with renew, it reports even
// without a change, which keeps the entries alive. It reports whether a
// report was made.
func (h *Hub) reportEntries(renew bool) bool {
	p := h.pres
	p.mu.Lock()
	full, changes := p.full, p.changes
	p.full, p.changes = false, nil
	p.mu.Unlock()
	var report []engine.SubscriberChange
	if full {
		// Changes from now on queue again, and follow this snapshot.
		report = h.entries()
	} else if len(changes) == 0 && !renew {
		return false
	} else {
		report = make([]engine.SubscriberChange, len(changes))
		for i, c := range changes {
			report[i] = c.entryChange()
		}
	}
	ctx, cancel := h.engineCtx()
	defer cancel()
	err := p.lister.ReportSubscribers(ctx, report, full, p.ttl)
	if err == nil {
		return true
	}
	p.mu.Lock()
	switch {
	case full || errors.Is(err, engine.ErrPresenceLost) || len(changes)+len(p.changes) > maxChanges:
		p.full, p.changes = true, nil
	default:
		// Again, before what came since: additions and removals are
		// idempotent, and in order.
		p.changes = append(changes, p.changes...)
	}
	p.mu.Unlock()
	if !errors.Is(err, engine.ErrPresenceLost) {
		h.presenceFailed(err)
	}
	return false
}

// entries returns every entry of this node as additions.
func (h *Hub) entries() []engine.SubscriberChange {
	h.mu.RLock()
	chans := make([]*channel, 0, len(h.channels))
	for _, ch := range h.channels {
		chans = append(chans, ch)
	}
	h.mu.RUnlock()
	var all []change
	for _, ch := range chans {
		if !h.pres.isListed(ch.name) {
			continue
		}
		ch.mu.Lock()
		for c, e := range ch.index {
			all = append(all, change{channel: ch.name, key: e.key, c: c})
		}
		ch.mu.Unlock()
	}
	out := make([]engine.SubscriberChange, len(all))
	for i, c := range all {
		out[i] = c.entryChange()
	}
	return out
}

// presenceFailed tells of a failed report, for the log.
func (h *Hub) presenceFailed(err error) {
	if h.opts.OnPresenceError != nil && h.ctx.Err() == nil {
		h.opts.OnPresenceError(err)
	}
}

// evict forgets the other nodes' counts read long ago.
func (p *presence) evict(now time.Time) {
	p.cacheMu.Lock()
	defer p.cacheMu.Unlock()
	for name, oc := range p.cache {
		if oc.fetching == nil && now.Sub(oc.at) > 10*p.cached {
			delete(p.cache, name)
		}
	}
}

// LocalSubscribers returns the number of clients registered on channel
// on this node.
func (h *Hub) LocalSubscribers(name string) int {
	h.mu.RLock()
	ch := h.channels[name]
	h.mu.RUnlock()
	if ch == nil {
		return 0
	}
	return int(ch.count.Load())
}

// ActiveSubscribers returns the number of this node's clients of channel
// name whose subscription has begun: its history was read and delivered,
// so its start is fixed and a message published from now on reaches it.
// CountSubscribers counts a client from the moment it joins, a moment
// before that (its engine subscription and history read are still under
// way): a message published in between is before a live-only
// subscription's start. For tests and diagnostics that must publish only
// once a subscriber is sure to receive.
func (h *Hub) ActiveSubscribers(name string) int {
	h.mu.RLock()
	ch := h.channels[name]
	h.mu.RUnlock()
	if ch == nil {
		return 0
	}
	ch.mu.Lock()
	entries := make([]*entry, 0, len(ch.index))
	for _, e := range ch.index {
		entries = append(entries, e)
	}
	ch.mu.Unlock()
	n := 0
	for _, e := range entries {
		e.mu.Lock()
		if e.activated && !e.gone {
			n++
		}
		e.mu.Unlock()
	}
	return n
}

// CountSubscribers returns the number of clients registered on channel on
// every node: this node's, exact, plus the other nodes' as the engine
// last reported them, read at most once per Options.CountCache (see
// "Presence" above for the staleness). When the engine cannot answer
// within a couple of seconds, the other nodes' last known count stands
// (0 when none is known).
func (h *Hub) CountSubscribers(name string) int {
	n := h.LocalSubscribers(name)
	if h.pres.counts == nil {
		return n
	}
	return n + h.pres.other(h.ctx, name, min(h.opts.EngineTimeout, 2*time.Second))
}

// other returns the other nodes' count of name, from the cache or from
// the engine.
func (p *presence) other(ctx context.Context, name string, timeout time.Duration) int {
	p.cacheMu.Lock()
	oc := p.cache[name]
	if oc == nil {
		oc = &otherCount{}
		p.cache[name] = oc
	}
	if wait := oc.fetching; wait != nil {
		p.cacheMu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
		}
		p.cacheMu.Lock()
		defer p.cacheMu.Unlock()
		return oc.n
	}
	if !oc.at.IsZero() && time.Since(oc.at) < p.cached {
		defer p.cacheMu.Unlock()
		return oc.n
	}
	done := make(chan struct{})
	oc.fetching = done
	p.cacheMu.Unlock()

	ctx, cancel := context.WithTimeout(ctx, timeout)
	counts, err := p.counts.OtherCounts(ctx, name)
	cancel()
	p.cacheMu.Lock()
	defer p.cacheMu.Unlock()
	if err == nil && len(counts) == 1 {
		oc.n = counts[0]
	}
	// A failure is cached too: a store that is down is asked again only
	// once CountCache has passed.
	oc.at = time.Now()
	oc.fetching = nil
	p.cache[name] = oc // evicted meanwhile: back
	close(done)
	return oc.n
}

// others returns the other nodes' counts of names in one engine call,
// and caches them.
func (p *presence) others(ctx context.Context, names []string) ([]int, error) {
	if p.counts == nil || len(names) == 0 {
		return make([]int, len(names)), nil
	}
	counts, err := p.counts.OtherCounts(ctx, names...)
	if err == nil && len(counts) != len(names) {
		err = fmt.Errorf("hub: the engine answered %d counts for %d channels", len(counts), len(names))
	}
	if err != nil {
		return nil, err
	}
	now := time.Now()
	p.cacheMu.Lock()
	for i, name := range names {
		if oc := p.cache[name]; oc == nil {
			p.cache[name] = &otherCount{n: counts[i], at: now}
		} else if oc.fetching == nil {
			oc.n, oc.at = counts[i], now
		}
	}
	p.cacheMu.Unlock()
	return counts, nil
}

// ListSubscribers returns a page of the subscribers of channel on every
// node, and the cursor of the next page ("" after the last). cursor is ""
// for the first page, then a next that a call returned. This node's own
// come first, oldest first and limit at a time; then the other nodes',
// in pages of about limit (engine.SubscriberLister's). It fails with an
// error wrapping engine.ErrBadCursor for a cursor it did not hand out. A
// channel whose subscribers are not listed (SetPresence) has none.
func (h *Hub) ListSubscribers(ctx context.Context, name, cursor string, limit int) ([]engine.Subscriber, string, error) {
	if !h.pres.isListed(name) {
		return nil, "", nil
	}
	limit = max(limit, 1)
	var out []engine.Subscriber
	remote, ok := strings.CutPrefix(cursor, "r")
	if !ok {
		var after uint64
		if cursor != "" {
			n, err := strconv.ParseUint(strings.TrimPrefix(cursor, "l"), 10, 64)
			if err != nil || !strings.HasPrefix(cursor, "l") {
				return nil, "", fmt.Errorf("%w: %q", engine.ErrBadCursor, cursor)
			}
			after = n
		}
		var last uint64
		var more bool
		out, last, more = h.localPage(name, after, limit)
		if more {
			return out, "l" + strconv.FormatUint(last, 10), nil
		}
		if h.pres.lister == nil {
			return out, "", nil
		}
		if len(out) >= limit {
			return out, "r", nil
		}
		limit -= len(out)
		remote = ""
	}
	if h.pres.lister == nil {
		return nil, "", fmt.Errorf("%w: %q", engine.ErrBadCursor, cursor)
	}
	subs, next, err := h.pres.lister.ListSubscribers(ctx, name, remote, limit)
	if err != nil {
		return nil, "", err
	}
	out = append(out, subs...)
	if next == "" {
		return out, "", nil
	}
	return out, "r" + next, nil
}

// localPage returns up to limit of this node's entries of channel with a
// key above after, oldest first, the key of the last, and whether more
// follow.
func (h *Hub) localPage(name string, after uint64, limit int) ([]engine.Subscriber, uint64, bool) {
	h.mu.RLock()
	ch := h.channels[name]
	h.mu.RUnlock()
	if ch == nil {
		return nil, 0, false
	}
	type local struct {
		key uint64
		c   Client
	}
	var all []local
	ch.mu.Lock()
	for c, e := range ch.index {
		if e.key > after {
			all = append(all, local{e.key, c})
		}
	}
	ch.mu.Unlock()
	sort.Slice(all, func(i, j int) bool { return all[i].key < all[j].key })
	more := len(all) > limit
	if more {
		all = all[:limit]
	}
	out := make([]engine.Subscriber, len(all))
	for i, l := range all {
		id, tr := describe(l.c, l.key)
		out[i] = engine.Subscriber{ID: id, Node: h.opts.Node, Transport: tr, Since: since(l.key)}
	}
	var last uint64
	if len(all) > 0 {
		last = all[len(all)-1].key
	}
	return out, last, more
}

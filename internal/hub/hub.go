// Package hub is the middle of the server: it knows which clients listen to
// which channels on this node, and hands each message that the engine
// delivers to every client of its channel, whatever transport each uses.
//
// A subscription starts pending: live messages for it are held while its
// history is read from the engine, then the history and the held messages
// are delivered in id order without a gap or a repeat, and the subscription
// turns live. This holds whether the engine is local or shared.
package hub

import (
	"context"
	"sort"
	"sync"

	"github.com/meteorpush/meteor/internal/engine"
)

// Client is one subscriber as the hub sees it: a transport connection.
type Client interface {
	// Deliver hands the client messages of one channel, in id order: live
	// is true for a message as it is published, false for history and for
	// messages held while the history was read. Deliver must not block and
	// must not call back into the hub. It reports whether the client still
	// wants messages.
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

// Hub routes messages from the engine to clients.
type Hub struct {
	eng engine.Engine

	mu       sync.RWMutex
	channels map[string]*channel // guarded by mu; channels with clients
}

type channel struct {
	name string

	mu    sync.Mutex
	subs  []*entry          // guarded by mu
	index map[Client]*entry // guarded by mu
	dead  bool              // guarded by mu; removed from Hub.channels
}

type entry struct {
	c       Client
	i       int               // position in channel.subs
	live    bool              // history delivered; messages go straight out
	pending []*engine.Message // held while not live
	lagged  bool              // pending overflowed
}

// maxPending bounds the messages held for one subscription while its
// history is read; past it the subscription is dropped as a slow consumer
// would be, rather than growing without limit.
const maxPending = 4096

// New returns a hub. The engine must deliver its messages to h.Publish's
// counterpart, Handle.
func New() *Hub {
	return &Hub{channels: make(map[string]*channel)}
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
// engine's handler.
func (h *Hub) Handle(m *engine.Message) {
	h.mu.RLock()
	ch := h.channels[m.Channel]
	h.mu.RUnlock()
	if ch == nil {
		return
	}
	one := []*engine.Message{m}
	ch.mu.Lock()
	defer ch.mu.Unlock()
	for _, e := range ch.subs {
		if e.live {
			e.c.Deliver(one, true)
		} else if len(e.pending) < maxPending {
			e.pending = append(e.pending, m)
		} else {
			e.lagged = true
		}
	}
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
				ch = &channel{name: name, index: make(map[Client]*entry)}
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
			e := &entry{c: c, i: len(ch.subs)}
			ch.subs = append(ch.subs, e)
			ch.index[c] = e
		}
		ch.mu.Unlock()
		return ch
	}
}

// activate delivers hist and the held messages to c and turns it live. It
// reports whether c still wants messages.
func (ch *channel) activate(c Client, hist engine.History) bool {
	ch.mu.Lock()
	defer ch.mu.Unlock()
	e := ch.index[c]
	if e == nil {
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
	// older than what the client asked for: skip them.
	held := e.pending
	e.pending = nil
	e.live = true
	for _, m := range held {
		if !ok {
			break
		}
		if m.ID > hist.LastID {
			ok = c.Deliver([]*engine.Message{m}, false)
		}
	}
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
			last := len(ch.subs) - 1
			ch.subs[e.i] = ch.subs[last]
			ch.subs[e.i].i = e.i
			ch.subs[last] = nil
			ch.subs = ch.subs[:last]
			delete(ch.index, c)
		}
		empty := len(ch.subs) == 0
		ch.mu.Unlock()
		if empty {
			h.dropIfEmpty(ch)
		}
	}
}

func (h *Hub) dropIfEmpty(ch *channel) {
	h.mu.Lock()
	ch.mu.Lock()
	drop := len(ch.subs) == 0 && !ch.dead && h.channels[ch.name] == ch
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
	return len(ch.subs)
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
	out := make([]Client, len(ch.subs))
	for i, e := range ch.subs {
		out[i] = e.c
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
		n := len(ch.subs)
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

package hub

import (
	"container/heap"
	"sync"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
)

// Conflation (Policy.ConflateInterval) works per channel, before the
// fan-out, so that its cost does not depend on the number of subscribers:
// of the messages the engine delivers for a conflated channel, the first
// one after a quiet interval goes out at once; those that come within
// the interval replace one another in the channel's one held message,
// which goes out when the interval ends. So this node's subscribers get
// at most one message per interval, always the newest, with its real id;
// the ones skipped stay in the engine's history, counted by
// metrics.Conflated. The held message is sent by the hub's conflation
// goroutine, which Start starts: before Start, nothing is conflated.
//
// A subscriber joining or resuming a conflated channel is given only the
// newest of the messages it missed (history and what was held while it
// was pending): see activate.

// conflateState is a channel's conflation, guarded by its mu.
type conflateState struct {
	mu    sync.Mutex
	next  time.Time       // guarded by mu; when the next message may go out
	held  *engine.Message // guarded by mu; the newest message not sent yet
	armed bool            // guarded by mu; the channel is in the conflation queue
}

// conflation is the queue of channels holding a message, by when it goes
// out, and the goroutine that sends them (conflateLoop).
type conflation struct {
	mu   sync.Mutex
	due  dueHeap // guarded by mu
	wake chan struct{}
	// stopped is set by Close once the goroutine has ended: a message
	// that would be held then goes out at once. Guarded by mu.
	stopped bool
	// sending is held while held messages are sent (by the goroutine, a
	// Flush, Close), so that a Flush returns only after a send that the
	// goroutine had begun.
	sending sync.Mutex
	// done is closed when the goroutine (started by Start) ends.
	done chan struct{}
}

type dueChan struct {
	at time.Time
	ch *channel
}

// dueHeap is a min-heap of channels by due time.
type dueHeap []dueChan

func (d dueHeap) Len() int           { return len(d) }
func (d dueHeap) Less(i, j int) bool { return d[i].at.Before(d[j].at) }
func (d dueHeap) Swap(i, j int)      { d[i], d[j] = d[j], d[i] }
func (d *dueHeap) Push(x any)        { *d = append(*d, x.(dueChan)) }
func (d *dueHeap) Pop() any {
	old := *d
	x := old[len(old)-1]
	old[len(old)-1] = dueChan{}
	*d = old[:len(old)-1]
	return x
}

// conflate applies ch's conflation interval iv to msgs, which the engine
// just delivered, at now: it returns the message to fan out now (nil:
// none), holding the newest one otherwise for the conflation goroutine.
func (h *Hub) conflate(ch *channel, msgs []*engine.Message, iv time.Duration, now time.Time) *engine.Message {
	newest := msgs[len(msgs)-1]
	skipped := len(msgs) - 1
	cs := &ch.conflate
	cs.mu.Lock()
	if cs.held == nil && !now.Before(cs.next) {
		cs.next = now.Add(iv)
		cs.mu.Unlock()
		if skipped > 0 {
			h.opts.Metrics.Conflated(skipped)
		}
		return newest
	}
	if cs.held != nil {
		skipped++
	}
	cs.held = newest
	arm := !cs.armed
	cs.armed = true
	at := cs.next
	cs.mu.Unlock()
	if skipped > 0 {
		h.opts.Metrics.Conflated(skipped)
	}
	if arm {
		h.conf.mu.Lock()
		if h.conf.stopped {
			// Close stopped the goroutine: nothing would send it.
			h.conf.mu.Unlock()
			cs.mu.Lock()
			m := cs.held
			cs.held, cs.armed = nil, false
			cs.mu.Unlock()
			return m
		}
		heap.Push(&h.conf.due, dueChan{at: at, ch: ch})
		first := h.conf.due[0].ch == ch
		h.conf.mu.Unlock()
		if first {
			select {
			case h.conf.wake <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// sendHeld fans out ch's held message, if any, and starts its next
// interval at now.
func (h *Hub) sendHeld(ch *channel, now time.Time) {
	iv := h.channelPolicy(ch).ConflateInterval
	cs := &ch.conflate
	cs.mu.Lock()
	m := cs.held
	cs.held, cs.armed = nil, false
	if m != nil {
		cs.next = now.Add(iv)
	}
	cs.mu.Unlock()
	if m != nil {
		h.fanout(ch, []*engine.Message{m})
	}
}

// takeDue removes from the queue the channels due at now (all of them
// when all is set) and returns them, with how long until the next one is
// due (-1: none is queued).
func (c *conflation) takeDue(now time.Time, all bool) ([]*channel, time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var chans []*channel
	for len(c.due) > 0 && (all || !c.due[0].at.After(now)) {
		chans = append(chans, heap.Pop(&c.due).(dueChan).ch)
	}
	if len(c.due) == 0 {
		return chans, -1
	}
	return chans, c.due[0].at.Sub(now)
}

// sendAllHeld sends every held message now, whatever its due time: Flush
// calls it, so that what was published before a shutdown reaches the
// subscribers.
func (h *Hub) sendAllHeld() {
	h.conf.sending.Lock()
	defer h.conf.sending.Unlock()
	now := time.Now()
	chans, _ := h.conf.takeDue(now, true)
	for _, ch := range chans {
		h.sendHeld(ch, now)
	}
}

// conflateLoop sends each conflated channel's held message when its
// interval ends.
//
// It ends as soon as the hub's context is done, before Close takes the
// hub's run lock, which the fan-out of a send needs: Close waits for its
// end (conflation.done), then sends what is still held itself.
func (h *Hub) conflateLoop() {
	defer h.wg.Done()
	defer close(h.conf.done)
	t := time.NewTimer(time.Hour)
	t.Stop()
	for {
		if h.ctx.Err() != nil {
			return
		}
		h.conf.sending.Lock()
		now := time.Now()
		chans, wait := h.conf.takeDue(now, false)
		for _, ch := range chans {
			h.sendHeld(ch, now)
		}
		h.conf.sending.Unlock()
		if len(chans) > 0 {
			continue // more may have come due meanwhile
		}
		if wait >= 0 {
			t.Reset(wait)
		}
		select {
		case <-h.ctx.Done():
			t.Stop()
			return
		case <-h.conf.wake:
			t.Stop()
		case <-t.C:
		}
	}
}

// newestOnly returns the last message of msgs alone, for a conflated
// channel, or msgs as they are.
func newestOnly(msgs []*engine.Message, conflated bool) []*engine.Message {
	if conflated && len(msgs) > 1 {
		return msgs[len(msgs)-1:]
	}
	return msgs
}

package redis

import (
	"context"
	"errors"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/meteorpush/meteor/internal/engine"
)

// The causes HandleReset is given, for the hub's log.
var (
	errNewEpoch = errors.New("redis engine: the channel's stream began again (flushed, restarted without data, or expired)")
	errLost     = errors.New("redis engine: messages this node missed are no longer in the stream")
)

// Why a channel catches up, for the counters.
const (
	causeGap       = "gap"
	causeReconnect = "reconnect"
	causeAudit     = "audit"
)

// shard is one pub/sub connection and the goroutine that reads it. Each
// channel belongs to one shard (by the hash of its name); the first shard
// also carries the control channel.
type shard struct {
	e     *Engine
	index int
	probe string // this shard's probe channel

	up        atomic.Bool  // subscribed and receiving
	probeSent atomic.Int64 // unix nanoseconds of the probe in flight, 0 when none
	stop      chan struct{}
	stopOnce  sync.Once

	mu sync.Mutex
	ps *goredis.PubSub // guarded by mu; nil while disconnected
}

func newShard(e *Engine, i int) *shard {
	return &shard{
		e:     e,
		index: i,
		probe: e.opts.Prefix + ":probe:" + e.opts.Node + ":" + strconv.Itoa(i) + ":" + engine.NewEpoch(),
		stop:  make(chan struct{}),
	}
}

// shardOf returns the shard of channel.
func (e *Engine) shardOf(channel string) *shard {
	h := fnv.New32a()
	h.Write([]byte(channel))
	return e.shards[h.Sum32()%uint32(len(e.shards))]
}

func (s *shard) close() {
	s.stopOnce.Do(func() { close(s.stop) })
	s.mu.Lock()
	if s.ps != nil {
		s.ps.Close()
	}
	s.mu.Unlock()
}

// run connects, reads until the connection fails or its probe does not
// come back, and connects again, until Close.
func (s *shard) run() {
	defer s.e.wg.Done()
	backoff := 50 * time.Millisecond
	first := true
	for {
		select {
		case <-s.stop:
			return
		default:
		}
		if !first {
			s.e.stats.Reconnects.Add(1)
		}
		ps, err := s.connect(!first)
		if err == nil {
			first = false
			backoff = 50 * time.Millisecond
			err = s.receive(ps)
		}
		s.up.Store(false)
		s.probeSent.Store(0)
		s.mu.Lock()
		if s.ps != nil {
			s.ps.Close()
			s.ps = nil
		}
		s.mu.Unlock()
		select {
		case <-s.stop:
			return
		default:
		}
		s.e.lossLog.Warn(s.e.log, "redis engine: pub/sub connection lost; reconnecting, then catching its channels up", "shard", s.index, "error", err)
		// Every channel of this shard holds what arrives until it has
		// caught up from the stream, once its subscription is confirmed
		// again.
		s.e.forChannels(s, func(cs *chanState) {
			cs.live = false
			cs.resub = true
		})
		sleep := backoff/2 + rand.N(backoff/2+1)
		backoff = min(backoff*2, 2*time.Second)
		select {
		case <-s.stop:
			return
		case <-time.After(sleep):
		}
	}
}

// connect makes a pub/sub connection subscribed to the probe channel,
// the control channel (first shard) and every channel of this shard.
func (s *shard) connect(again bool) (*goredis.PubSub, error) {
	e := s.e
	ctx, cancel := context.WithTimeout(e.ctx, e.opts.Timeout)
	defer cancel()
	ps := e.rdb.Subscribe(ctx)
	// Published before the channels are listed: a Subscribe that added
	// its channel after the list was made finds ps and subscribes the
	// channel itself (Subscribe adds before it looks).
	s.mu.Lock()
	s.ps = ps
	s.mu.Unlock()
	names := []string{s.probe}
	if s.index == 0 {
		names = append(names, e.controlName())
	}
	e.forChannels(s, func(cs *chanState) { names = append(names, e.pubsubName(cs.name)) })
	for len(names) > 0 {
		n := min(len(names), subscribeBatch)
		if err := ps.Subscribe(ctx, names[:n]...); err != nil {
			return nil, err
		}
		names = names[n:]
	}
	if again {
		// The library may have gone with the data (a Redis restarted).
		e.loadLibrary(ctx)
	}
	select {
	case <-s.stop:
		return nil, engine.ErrClosed
	default:
	}
	return ps, nil
}

// receive reads ps until it fails, the probe in flight is overdue, or
// Close.
func (s *shard) receive(ps *goredis.PubSub) error {
	e := s.e
	for {
		select {
		case <-s.stop:
			return engine.ErrClosed
		default:
		}
		if sent := s.probeSent.Load(); sent != 0 && time.Since(time.Unix(0, sent)) > 2*e.opts.Timeout {
			e.stats.ProbeFailures.Add(1)
			return errors.New("the probe published on this connection's probe channel did not come back")
		}
		msg, err := ps.ReceiveTimeout(e.ctx, 500*time.Millisecond)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				s.confirmed(m.Channel)
			}
		case *goredis.Message:
			switch {
			case m.Channel == s.probe:
				s.probeSent.Store(0)
			case m.Channel == e.controlName():
				if cmd, ok := decodeCommand(m.Payload); ok && e.control != nil {
					e.control.HandleControl(cmd)
				}
			default:
				e.received(m.Channel, m.Payload)
			}
		case *goredis.Pong:
		}
	}
}

// confirmed is called when Redis confirmed the subscription of name.
func (s *shard) confirmed(name string) {
	e := s.e
	if name == s.probe {
		s.up.Store(true)
		return
	}
	e.subWaitsMu.Lock()
	waits := e.subWaits[name]
	delete(e.subWaits, name)
	e.subWaitsMu.Unlock()
	for _, w := range waits {
		close(w)
	}
	ch := e.channelOf(name)
	if ch == "" {
		return
	}
	e.mu.Lock()
	cs := e.channels[ch]
	e.mu.Unlock()
	if cs == nil {
		return
	}
	cs.mu.Lock()
	again := cs.resub && !cs.subscribing
	cs.resub = false
	cs.mu.Unlock()
	if again {
		e.queueCatchUp(ch, causeReconnect)
	}
}

// forChannels calls fn with each channel of s, each locked.
func (e *Engine) forChannels(s *shard, fn func(cs *chanState)) {
	e.mu.Lock()
	list := make([]*chanState, 0, len(e.channels))
	for _, cs := range e.channels {
		if cs.shard == s {
			list = append(list, cs)
		}
	}
	e.mu.Unlock()
	for _, cs := range list {
		cs.mu.Lock()
		if !cs.gone {
			fn(cs)
		}
		cs.mu.Unlock()
	}
}

// parsePayload reads a published message: "<id> <prev> <epoch> <ms>\n<text>".
func parsePayload(channel, p string) (*engine.Message, uint64, bool) {
	head, text, ok := strings.Cut(p, "\n")
	if !ok {
		return nil, 0, false
	}
	f := strings.Fields(head)
	if len(f) != 4 {
		return nil, 0, false
	}
	id, err1 := strconv.ParseUint(f[0], 10, 64)
	prev, err2 := strconv.ParseUint(f[1], 10, 64)
	ms, err3 := strconv.ParseInt(f[3], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || id == 0 {
		return nil, 0, false
	}
	return &engine.Message{Channel: channel, ID: id, Epoch: f[2], Text: text, Time: time.UnixMilli(ms)}, prev, true
}

// received handles one message from pub/sub.
func (e *Engine) received(name, payload string) {
	ch := e.channelOf(name)
	if ch == "" {
		return
	}
	e.mu.Lock()
	cs := e.channels[ch]
	e.mu.Unlock()
	if cs == nil {
		return
	}
	m, prev, ok := parsePayload(ch, payload)
	if !ok {
		e.log.Warn("redis engine: a message on a channel's pub/sub channel is not one of this engine's; ignored", "channel", ch)
		return
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.gone {
		return
	}
	cs.quiet = false
	if !cs.live {
		cs.hold(m, prev)
		return
	}
	var out []*engine.Message
	out = e.accept(cs, m, prev, out)
	e.deliver(cs, out)
}

// hold keeps m until cs has caught up. The caller holds cs.mu.
func (cs *chanState) hold(m *engine.Message, prev uint64) {
	if len(cs.held) >= heldMax {
		// The stream has them: read them from it after the catch-up.
		cs.held, cs.prevs, cs.dropped = nil, nil, true
		return
	}
	cs.held = append(cs.held, m)
	cs.prevs = append(cs.prevs, prev)
}

// accept applies one message in order to cs, appending what is to be
// delivered to out; on a gap it stops delivery and asks for a catch-up.
// The caller holds cs.mu, and cs is live.
func (e *Engine) accept(cs *chanState, m *engine.Message, prev uint64, out []*engine.Message) []*engine.Message {
	if cs.epoch != "" && m.Epoch != cs.epoch {
		// Another stream: the node's subscribers resynchronise from
		// history; this message and those after it follow.
		out = e.flush(cs, out)
		e.stats.Resets.Add(1)
		e.handler.HandleReset([]string{cs.name}, errNewEpoch)
		cs.epoch, cs.last = m.Epoch, 0
	}
	if cs.epoch == "" {
		cs.epoch = m.Epoch
	}
	switch {
	case m.ID <= cs.last:
		// A duplicate: already delivered (a catch-up got there first).
	case prev == cs.last:
		out = append(out, m)
		cs.last = m.ID
	case prev > cs.last:
		// Messages between last and this one did not arrive.
		cs.live = false
		cs.hold(m, prev)
		e.queueCatchUp(cs.name, causeGap)
	default:
		// prev < last < id: the store lost messages this node had
		// delivered (a fail-over that lost the last writes); ids stay
		// above them, so nothing is hidden from a client.
		e.stats.Rollbacks.Add(1)
		out = append(out, m)
		cs.last = m.ID
	}
	return out
}

// flush delivers out now and returns it emptied. The caller holds cs.mu.
func (e *Engine) flush(cs *chanState, out []*engine.Message) []*engine.Message {
	e.deliver(cs, out)
	return out[:0]
}

// deliver hands msgs to the handler. The caller holds cs.mu, so calls for
// one channel never overlap and keep their order.
func (e *Engine) deliver(cs *chanState, msgs []*engine.Message) {
	if len(msgs) > 0 {
		e.handler.HandleMessages(cs.name, msgs)
	}
}

// Subscribe implements engine.Engine. It returns once Redis confirmed the
// subscription of every channel on its pub/sub connection and the node
// knows the newest id of each: from then on, every message published
// reaches the handler.
func (e *Engine) Subscribe(ctx context.Context, channels ...string) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	if len(channels) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	var waits []chan struct{}
	byShard := make(map[*shard][]string)
	states := make([]*chanState, 0, len(channels))
	e.subWaitsMu.Lock()
	for _, c := range channels {
		w := make(chan struct{})
		name := e.pubsubName(c)
		e.subWaits[name] = append(e.subWaits[name], w)
		waits = append(waits, w)
	}
	e.subWaitsMu.Unlock()
	e.mu.Lock()
	for _, c := range channels {
		cs := &chanState{name: c, shard: e.shardOf(c), subscribing: true}
		e.channels[c] = cs
		states = append(states, cs)
		byShard[cs.shard] = append(byShard[cs.shard], e.pubsubName(c))
	}
	e.mu.Unlock()
	for s, names := range byShard {
		s.mu.Lock()
		ps := s.ps
		s.mu.Unlock()
		if ps != nil {
			// An error here is a broken connection: the shard makes a new
			// one, which subscribes these channels too.
			for len(names) > 0 {
				n := min(len(names), subscribeBatch)
				ps.Subscribe(ctx, names[:n]...)
				names = names[n:]
			}
		}
	}
	fail := func(err error) error {
		e.Unsubscribe(context.Background(), channels...)
		e.subWaitsMu.Lock()
		for i, c := range channels {
			name := e.pubsubName(c)
			e.subWaits[name] = slices.DeleteFunc(e.subWaits[name], func(w chan struct{}) bool { return w == waits[i] })
			if len(e.subWaits[name]) == 0 {
				delete(e.subWaits, name)
			}
		}
		e.subWaitsMu.Unlock()
		return e.fail(ctx, err)
	}
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			return fail(errors.New("subscription not confirmed in time"))
		case <-e.ctx.Done():
			return engine.ErrClosed
		}
	}
	tops, err := e.tops(ctx, channels)
	if err != nil {
		return fail(err)
	}
	for i, cs := range states {
		cs.mu.Lock()
		cs.subscribing = false
		if !cs.gone {
			cs.last, cs.epoch = tops[i].top, tops[i].epoch
			e.goLive(cs)
		}
		cs.mu.Unlock()
	}
	return nil
}

// goLive delivers what cs held, in order, and makes it live, unless a gap
// among the held messages asks for a catch-up. The caller holds cs.mu.
func (e *Engine) goLive(cs *chanState) {
	held, prevs := cs.held, cs.prevs
	cs.held, cs.prevs = nil, nil
	cs.live = true
	var out []*engine.Message
	for i, m := range held {
		if !cs.live {
			cs.held = append(cs.held, held[i:]...)
			cs.prevs = append(cs.prevs, prevs[i:]...)
			break
		}
		out = e.accept(cs, m, prevs[i], out)
	}
	e.deliver(cs, out)
	if cs.dropped && cs.live {
		cs.dropped = false
		cs.live = false
		e.queueCatchUp(cs.name, causeGap)
	}
}

// top is a channel's newest id and epoch.
type top struct {
	top   uint64
	epoch string
}

// tops reads the newest id and epoch of channels in one pipeline.
func (e *Engine) tops(ctx context.Context, channels []string) ([]top, error) {
	cmds, err := e.pipeline(ctx, func(p goredis.Pipeliner) []goredis.Cmder {
		cmds := make([]goredis.Cmder, len(channels))
		for i, c := range channels {
			cmds[i] = p.HMGet(ctx, e.key(c, "m"), "top", "ep")
		}
		return cmds
	})
	if err != nil {
		return nil, err
	}
	out := make([]top, len(channels))
	for i, c := range cmds {
		vals, err := c.(*goredis.SliceCmd).Result()
		if err != nil {
			return nil, err
		}
		if s, ok := vals[0].(string); ok {
			out[i].top, _ = strconv.ParseUint(s, 10, 64)
		}
		out[i].epoch, _ = vals[1].(string)
	}
	return out, nil
}

// Unsubscribe implements engine.Engine.
func (e *Engine) Unsubscribe(ctx context.Context, channels ...string) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	byShard := make(map[*shard][]string)
	e.mu.Lock()
	for _, c := range channels {
		cs := e.channels[c]
		if cs == nil {
			continue
		}
		delete(e.channels, c)
		cs.mu.Lock()
		cs.gone = true
		cs.held, cs.prevs = nil, nil
		cs.mu.Unlock()
		byShard[cs.shard] = append(byShard[cs.shard], e.pubsubName(c))
	}
	e.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	var err error
	for s, names := range byShard {
		s.mu.Lock()
		ps := s.ps
		s.mu.Unlock()
		if ps == nil {
			continue // a new connection will not subscribe them
		}
		for len(names) > 0 {
			n := min(len(names), subscribeBatch)
			if uerr := ps.Unsubscribe(ctx, names[:n]...); uerr != nil && err == nil {
				err = e.fail(ctx, uerr)
			}
			names = names[n:]
		}
	}
	return err
}

// queueCatchUp asks the catch-up goroutine to read channel's stream from
// the last id delivered.
func (e *Engine) queueCatchUp(channel, cause string) {
	switch cause {
	case causeGap:
		e.stats.CatchUpGap.Add(1)
	case causeReconnect:
		e.stats.CatchUpReconnect.Add(1)
	case causeAudit:
		e.stats.CatchUpAudit.Add(1)
	}
	e.pendingMu.Lock()
	e.pending[channel] = cause
	e.pendingMu.Unlock()
	select {
	case e.catchUp <- struct{}{}:
	default:
	}
}

// catchUpLoop reads the streams of the channels queued for a catch-up,
// up to catchUpBatch per pipeline, and delivers what the node missed.
func (e *Engine) catchUpLoop() {
	defer e.wg.Done()
	backoff := 50 * time.Millisecond
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-e.catchUp:
		}
		for {
			e.pendingMu.Lock()
			names := make([]string, 0, min(len(e.pending), catchUpBatch))
			for n := range e.pending {
				if len(names) == catchUpBatch {
					break
				}
				names = append(names, n)
				delete(e.pending, n)
			}
			more := len(e.pending) > 0
			e.pendingMu.Unlock()
			if len(names) == 0 {
				break
			}
			if err := e.catchUpBatch(names); err != nil {
				e.pendingMu.Lock()
				for _, n := range names {
					if _, ok := e.pending[n]; !ok {
						e.pending[n] = causeReconnect
					}
				}
				e.pendingMu.Unlock()
				sleep := backoff/2 + rand.N(backoff/2+1)
				backoff = min(backoff*2, 2*time.Second)
				select {
				case <-e.ctx.Done():
					return
				case <-time.After(sleep):
				}
				continue
			}
			backoff = 50 * time.Millisecond
			if !more {
				break
			}
		}
	}
}

// catchUpBatch catches names up from their streams in one pipeline.
func (e *Engine) catchUpBatch(names []string) error {
	type snap struct {
		cs    *chanState
		last  uint64
		epoch string
	}
	snaps := make([]snap, 0, len(names))
	reqs := make([]engine.HistoryRequest, 0, len(names))
	for _, n := range names {
		e.mu.Lock()
		cs := e.channels[n]
		e.mu.Unlock()
		if cs == nil {
			continue
		}
		cs.mu.Lock()
		if !cs.gone && !cs.subscribing {
			// Hold what arrives from now on until the read is applied.
			cs.live = false
			snaps = append(snaps, snap{cs, cs.last, cs.epoch})
			reqs = append(reqs, engine.HistoryRequest{Channel: n, Query: engine.Query{
				Kind: engine.QueryAfter, After: engine.Position{ID: cs.last, Epoch: cs.epoch}}})
		}
		cs.mu.Unlock()
	}
	if len(reqs) == 0 {
		return nil
	}
	hs, err := e.History(e.ctx, reqs...)
	if err != nil {
		return err
	}
	for i, sn := range snaps {
		cs, h := sn.cs, hs[i]
		cs.mu.Lock()
		if cs.gone || cs.last != sn.last || cs.epoch != sn.epoch {
			cs.mu.Unlock()
			continue
		}
		s := h.Stream
		pos := engine.Position{ID: sn.last, Epoch: sn.epoch}
		switch {
		case sn.epoch != "" && s.Epoch == sn.epoch && sn.last >= s.Top():
			// Nothing new; or the store lost writes this node had
			// delivered (a fail-over): the ids that follow are above
			// them anyway.
			if sn.last > s.Top() {
				e.stats.Rollbacks.Add(1)
			}
		case s.Epoch == "" && sn.epoch == "":
			// Still no stream.
		case s.Gap(pos):
			// What the node missed is gone: the hub resynchronises the
			// channel's subscribers, who are told of their gap.
			e.stats.Resets.Add(1)
			e.handler.HandleReset([]string{cs.name}, errLost)
			cs.epoch, cs.last = s.Epoch, s.Top()
		default:
			var out []*engine.Message
			for _, m := range h.Messages {
				if m.ID > cs.last {
					out = append(out, m)
					cs.last = m.ID
				}
			}
			cs.epoch = s.Epoch
			e.stats.Recovered.Add(uint64(len(out)))
			e.deliver(cs, out)
		}
		e.goLive(cs)
		cs.mu.Unlock()
	}
	return nil
}

// auditLoop sends each shard's probe every ProbeInterval, and every
// AuditInterval compares the channels that received nothing since the
// last audit with their streams: a newer id there is a message this node
// missed with nothing after it to show the gap.
func (e *Engine) auditLoop() {
	defer e.wg.Done()
	probe := time.NewTicker(e.opts.ProbeInterval)
	defer probe.Stop()
	audit := time.NewTicker(e.opts.AuditInterval)
	defer audit.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-probe.C:
			for _, s := range e.shards {
				if s.up.Load() && s.probeSent.Load() == 0 {
					s.probeSent.Store(time.Now().UnixNano())
					ctx, cancel := context.WithTimeout(e.ctx, e.opts.Timeout)
					if err := e.rdb.Publish(ctx, s.probe, "probe").Err(); err != nil {
						s.probeSent.Store(0) // Redis is down: the connection will say so
					}
					cancel()
				}
			}
		case <-audit.C:
			e.audit()
		}
	}
}

// audit runs one audit of the quiet channels.
func (e *Engine) audit() {
	e.mu.Lock()
	all := make([]*chanState, 0, len(e.channels))
	for _, cs := range e.channels {
		all = append(all, cs)
	}
	e.mu.Unlock()
	var quiet []*chanState
	var lasts []top
	for _, cs := range all {
		cs.mu.Lock()
		if cs.live && cs.quiet && !cs.gone {
			quiet = append(quiet, cs)
			lasts = append(lasts, top{cs.last, cs.epoch})
		}
		cs.quiet = true
		cs.mu.Unlock()
	}
	for len(quiet) > 0 {
		n := min(len(quiet), catchUpBatch)
		names := make([]string, n)
		for i, cs := range quiet[:n] {
			names[i] = cs.name
		}
		tops, err := e.tops(e.ctx, names)
		if err != nil {
			return // Redis is down: the reconnection catches up
		}
		for i, t := range tops {
			if t.top != lasts[i].top || t.epoch != lasts[i].epoch {
				e.queueCatchUp(names[i], causeAudit)
			}
		}
		quiet, lasts = quiet[n:], lasts[n:]
	}
}

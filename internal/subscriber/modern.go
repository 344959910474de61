package subscriber

// What the SSE, NDJSON and JSON long-poll transports share: the request
// grammar (channel elements as in /push, and a resume cursor), the
// subscription with its positions and gap signals, and modernConn, the
// connection that is their hub.Client. Each connection is hijacked and
// written through an outq.Conn; none holds a goroutine of its own: hang-ups
// are seen by the outq.Watcher, heartbeats and long-poll timeouts by the
// Server's ticker.

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/metrics"
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/stats"
	"github.com/meteorpush/meteor/internal/wire"
)

// modernKind is the transport of a modernConn.
type modernKind uint8

const (
	kindSSE modernKind = iota
	kindNDJSON
	kindPoll
)

// metricsName returns the transport's label in metrics and logs.
func (k modernKind) metricsName() string {
	switch k {
	case kindSSE:
		return metrics.SSE
	case kindNDJSON:
		return metrics.NDJSON
	}
	return metrics.LongPoll
}

// modernSub is one channel of a request: the history it asks for, and
// whether it resumes from a position, in which case a gap is reported when
// the messages after it are no longer stored.
type modernSub struct {
	ChannelSpec
	resume bool
	since  engine.Position // when resume: where the client stands
}

// parseChannels parses "<chan>[/<chan>...]" with the channel elements of
// /push (name, name.r<N>, name.b<N>, name.h). Empty elements are skipped; a
// channel named twice keeps its last element. maxChannels <= 0: no limit.
func parseChannels(rest string, maxChannels int) ([]modernSub, error) {
	var subs []modernSub
	for elem := range strings.SplitSeq(rest, "/") {
		if elem == "" {
			continue
		}
		spec, err := parseChannel(elem)
		if err != nil {
			return nil, err
		}
		sub := modernSub{ChannelSpec: spec}
		if q := spec.Query; q.Kind == engine.QueryAfter {
			// .r<N>: the client has seen the messages before N.
			sub.resume, sub.since = true, q.After
		}
		replaced := false
		for i := range subs {
			if subs[i].Name == spec.Name {
				subs[i] = sub
				replaced = true
			}
		}
		if !replaced {
			if maxChannels > 0 && len(subs) == maxChannels {
				return nil, fmt.Errorf("%w: at most %d per request", ErrTooManyChannels, maxChannels)
			}
			subs = append(subs, sub)
		}
	}
	if len(subs) == 0 {
		return nil, ErrNoChannel
	}
	return subs, nil
}

// applyCursor makes each channel that cur names resume after its position,
// whatever its element asked for. Channels of cur that the request does not
// name are ignored.
func applyCursor(subs []modernSub, cur wire.Cursor) {
	for i := range subs {
		if p, ok := cur.Get(subs[i].Name); ok {
			subs[i].Query = engine.Query{Kind: engine.QueryAfter, After: p}
			subs[i].resume, subs[i].since = true, p
		}
	}
}

// startPosition returns where a client stands in channel name before the
// first message delivered to it (every id up to it was seen or skipped by
// choice, in the stream h was read from), and the gap to tell it of, if
// its resumed position is no longer covered by the history.
func startPosition(name string, sub modernSub, h engine.History) (engine.Position, wire.Gap, bool) {
	s := h.Stream
	fresh := engine.Position{ID: s.Top(), Epoch: s.Epoch}
	if len(h.Messages) > 0 {
		fresh.ID = h.Messages[0].ID - 1
	}
	if !sub.resume {
		return fresh, wire.Gap{}, false
	}
	g, gap := wire.GapAt(name, sub.since, s)
	switch {
	case gap && g.Reset:
		// Another stream: the client starts in this one as if new.
		return fresh, g, true
	case gap:
		// What was trimmed is not asked for again.
		return engine.Position{ID: max(sub.since.ID, s.Trimmed), Epoch: s.Epoch}, g, true
	}
	return engine.Position{ID: sub.since.ID, Epoch: s.Epoch}, g, false
}

// crossedLocked notes that a message of stream epoch reached the client
// at c.cur[i]. It returns the reset gap to tell the client of first when
// it knew the channel in another stream (crossed), and began when the
// client knew the channel in no stream yet (it had no message when the
// client subscribed). The caller holds c.mu.
func (c *modernConn) crossedLocked(i int, epoch string) (g wire.Gap, crossed, began bool) {
	p := &c.cur[i]
	if p.Epoch == epoch {
		return g, false, false
	}
	old := p.Epoch
	p.Epoch = epoch
	if old == "" {
		return g, false, true
	}
	return wire.Gap{Channel: p.Channel, Since: p.ID, Epoch: epoch, Reset: true}, true, false
}

// modernConn is one SSE, NDJSON or JSON long-poll connection. It is the
// hub.Client of each of its channels and a conn of the Server. What only a
// long-poll needs is in poll, so that an idle stream does not carry it.
type modernConn struct {
	output
	registered
	kind      modernKind
	named     bool          // kindSSE: events named after their channel (?event=channel)
	done      bool          // guarded by mu; closing, or the poll answered
	ip        string        // shares one allocation with the channel names
	start     instant       // when the connection was opened
	heartbeat time.Duration // kindSSE, kindNDJSON; 0: none
	nextBeat  instant       // owned by the ticker goroutine
	poll      *pollState    // kindPoll only

	mu sync.Mutex
	// cur is the position per channel, in request order; guarded by mu.
	// The names are set before the connection is registered and do not
	// change.
	cur  wire.Cursor
	sent int // guarded by mu; messages written
}

// pollState is the part of a modernConn that only a JSON long-poll uses.
type pollState struct {
	deadline instant // when a held poll answers empty
	callback string  // the JSONP function, "" for JSON
	cors     []byte  // CORS header lines of the answer

	held  bool              // guarded by modernConn.mu; waiting for a live message
	batch []*engine.Message // guarded by modernConn.mu; messages to answer with
	gaps  []wire.Gap        // guarded by modernConn.mu; gaps to answer with
	live  time.Time         // guarded by modernConn.mu; publication time of a live message in batch
}

// sseEncoder returns the engine.Encoder of a kindSSE connection's events.
func (c *modernConn) sseEncoder() engine.Encoder {
	if c.named {
		return wire.SSENamed
	}
	return wire.SSEData
}

var (
	_ hub.Client = (*modernConn)(nil)
	_ conn       = (*modernConn)(nil)
)

// index returns the position of channel in c.cur, or -1. The caller holds
// c.mu.
func (c *modernConn) indexLocked(channel string) int {
	for i := range c.cur {
		if c.cur[i].Channel == channel {
			return i
		}
	}
	return -1
}

// Deliver writes msgs (a stream) or adds them to the answer (a poll). A
// held poll answers with the first messages it gets.
func (c *modernConn) Deliver(msgs []*engine.Message, live bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done || len(msgs) == 0 {
		return !c.done
	}
	i := c.indexLocked(msgs[0].Channel)
	if i < 0 {
		return false
	}
	gap, crossed, began := c.crossedLocked(i, msgs[0].Epoch)
	var ok bool
	switch c.kind {
	case kindPoll:
		p := c.poll
		if crossed {
			p.gaps = append(p.gaps, gap)
		}
		p.batch = append(p.batch, msgs...)
		c.cur[i].ID = msgs[len(msgs)-1].ID
		if live && p.live.IsZero() {
			p.live = msgs[0].Time
		}
		if p.held {
			c.answerLocked(reason.ResponseComplete)
			return false
		}
		return true
	case kindNDJSON:
		// The SSE ids and the poll's cursor carry the epoch; an NDJSON
		// client learns it from these lines.
		if crossed && !c.Write(wire.AppendNDJSONGap(nil, gap)) {
			break
		}
		if began && !c.Write(wire.AppendNDJSONEpoch(nil, c.cur[i].Channel, msgs[0].Epoch)) {
			break
		}
		c.cur[i].ID = msgs[len(msgs)-1].ID
		ok = c.WriteEach(msgs, wire.NDJSONFormat, live)
	case kindSSE:
		// The event lines are shared; the id line is this connection's
		// cursor after the message. The whole delivery is rendered into
		// one pooled buffer: one write (one system call), no allocation.
		p := getBuffer()
		b := *p
		if crossed {
			b = append(b, wire.SSEGap(gap)...)
		}
		enc := c.sseEncoder()
		for _, m := range msgs {
			c.cur[i].ID = m.ID
			b = wire.AppendSSEID(b, c.cur)
			b = append(b, m.Encoded(enc)...)
		}
		ok = c.WriteMessagesCopy(b, msgs, live)
		*p = b
		putBuffer(p)
	}
	if !ok {
		c.done = true
		return false
	}
	c.sent += len(msgs)
	return true
}

// Close implements hub.Client: a stream ends with a close event saying
// why (when its queue still takes it), a poll answers with what it has and
// the reason; a slow poll is closed at once.
func (c *modernConn) Close(r reason.Reason) {
	if c.kind == kindPoll && r == reason.SlowConsumer {
		c.mu.Lock()
		c.done = true
		c.mu.Unlock()
		c.Out.Close(r)
		return
	}
	c.finish(r)
}

func (c *modernConn) shutdown() { c.finish(reason.ServerShutdown) }

func (c *modernConn) abort() { c.Out.Close(reason.ServerShutdown) }

// tick sends a stream's heartbeat, and answers a held poll whose time is up.
func (c *modernConn) tick(now time.Time) {
	// Due at the tick nearest the time, as legacy pings are.
	due := instantOf(now.Add(tickPeriod / 2))
	if c.kind == kindPoll {
		if due < c.poll.deadline {
			return
		}
		c.mu.Lock()
		if c.poll.held && !c.done {
			c.answerLocked(reason.ResponseComplete)
		}
		c.mu.Unlock()
		return
	}
	if c.heartbeat <= 0 || due < c.nextBeat {
		return
	}
	if c.kind == kindSSE {
		c.Write(wire.SSEHeartbeat)
	} else {
		c.Write(wire.NDJSONPing)
	}
	c.nextBeat += instant(c.heartbeat)
	if c.nextBeat < due {
		c.nextBeat = instantOf(now) + instant(c.heartbeat) // fell behind
	}
}

// finish ends the connection with reason r: a stream after its close event,
// a poll after answering with what it has.
func (c *modernConn) finish(r reason.Reason) {
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		return
	}
	if c.kind == kindPoll {
		c.answerLocked(r)
		c.mu.Unlock()
		return
	}
	c.done = true
	c.mu.Unlock()
	var b []byte
	if c.kind == kindSSE {
		b = wire.SSEClose(r)
	} else {
		b = wire.NDJSONClose(r)
	}
	c.CloseAfter(b, r)
}

// collected runs once a poll's history has been delivered: it answers at
// once when there is something to say or no time to wait, and otherwise
// holds the poll until a live message or its deadline.
func (c *modernConn) collected(wait bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	if len(c.poll.batch) > 0 || len(c.poll.gaps) > 0 || !wait {
		c.answerLocked(reason.ResponseComplete)
		return
	}
	c.poll.held = true
}

// answerLocked sends a poll's whole response and closes the connection
// with reason r. The caller holds c.mu.
func (c *modernConn) answerLocked(r reason.Reason) {
	p := c.poll
	c.done, p.held = true, false
	// A poll answered for another reason than its own end (the server
	// stops, an administrator closed a channel, a stream was reset) says
	// so, so that the client knows whether to poll again.
	closed := r
	if r == reason.ResponseComplete {
		closed = reason.None
	}
	body := wire.AppendPollBody(make([]byte, 0, 64), p.batch, c.cur, p.gaps, closed, p.callback)
	ctype := "application/json"
	if p.callback != "" {
		ctype = "application/javascript"
	}
	b := responseHeader(ctype, p.cors, len(body))
	b = append(b, body...)
	c.Out.CloseAfter(b, r)
	n := len(p.batch)
	c.sent += n
	if c.Stats != nil {
		c.Stats.Add(stats.MessagesServed, int64(n))
		c.Stats.Add(stats.TotalOutboundBytes, int64(len(b)))
	}
	if n > 0 {
		c.Metrics.Delivered(n, len(b), p.live)
	} else {
		c.Metrics.Sent(len(b))
	}
	p.batch = nil
}

// Sent returns the number of messages written.
func (c *modernConn) Sent() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent
}

// responseHeader returns the raw HTTP response header of a modern
// transport; contentLength < 0 means a stream that ends when the connection
// closes.
func responseHeader(contentType string, cors []byte, contentLength int) []byte {
	b := make([]byte, 0, 256+len(cors))
	b = append(b, "HTTP/1.1 200 OK\r\nServer: "+ServerName+"\r\nContent-Type: "...)
	b = append(b, contentType...)
	b = append(b, "\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n"...)
	if contentLength >= 0 {
		b = append(b, "Content-Length: "...)
		b = strconv.AppendInt(b, int64(contentLength), 10)
		b = append(b, "\r\n"...)
	} else {
		// Proxies (nginx) must pass each event on as it comes.
		b = append(b, "X-Accel-Buffering: no\r\n"...)
	}
	b = append(b, cors...)
	return append(b, "Connection: close\r\n\r\n"...)
}

// openModern hijacks the connection of c and subscribes it to subs. The
// preamble (the HTTP header and what precedes the messages) is written
// between the history read and its delivery; a poll writes nothing until it
// answers. wait tells a poll whether it may be held.
func (s *Server) openModern(w http.ResponseWriter, r *http.Request, set *Settings, c *modernConn, subs []modernSub, preamble func(gaps []wire.Gap) []byte, wait bool) {
	nc, err := hijack(w)
	if err != nil {
		return
	}
	c.ip, c.start = remoteIP(r), instantOf(time.Now())
	c.nextBeat = c.start + instant(c.heartbeat)
	c.Stats, c.Metrics = s.stats, s.Metrics.For(c.kind.metricsName())
	// The names are copied out of the request line, with the address,
	// into one small allocation that the connection keeps.
	c.cur = make(wire.Cursor, len(subs))
	names := make([]*string, 0, len(subs)+1)
	names = append(names, &c.ip)
	for i := range subs {
		c.cur[i].Channel = subs[i].Name
		names = append(names, &c.cur[i].Channel)
	}
	compactStrings("", 0, names...)
	hsubs := make([]hub.Sub, len(subs))
	for i, sub := range subs {
		hsubs[i] = hub.Sub{Channel: c.cur[i].Channel, Query: sub.Query}
	}
	c.Metrics.Connected()
	c.Out = s.openOut(w, nc, set, c, true)
	if !s.register(c, nil) {
		c.Out.Close(reason.ServerShutdown)
		return
	}
	defer func() {
		if c.Out.Closed() {
			// It may have closed before it was registered everywhere.
			s.forgetModern(c)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), set.SubscribeTimeout)
	joined, activate := s.hub.Subscribe(ctx, c, hsubs, true)
	cancel()
	if err := joinError(joined); err != nil {
		// A stream or a poll is all its channels or nothing: the client
		// is told to come back, and resumes then.
		s.hub.Unsubscribe(c)
		s.refuse(c.Out, c.ip, c.kind.metricsName(), corsHeader(set, r), err)
		return
	}
	s.mu.Lock()
	open := c.slot != 0
	if open {
		c.subscribed = int32(len(subs))
		s.Metrics.Subscribed(int(c.subscribed))
	}
	s.mu.Unlock()
	if !open {
		// Closed meanwhile; its close hook may have left the hub before
		// the join.
		s.hub.Unsubscribe(c)
		return
	}
	var gaps []wire.Gap
	c.mu.Lock()
	for i, sub := range subs {
		pos, g, gap := startPosition(c.cur[i].Channel, sub, joined[i].History)
		if gap {
			gaps = append(gaps, g)
		}
		c.cur[i].Position = pos
	}
	if c.kind == kindPoll {
		c.poll.gaps = gaps
	}
	c.mu.Unlock()
	if preamble != nil {
		c.Write(preamble(gaps))
	}
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		for i, sub := range subs {
			s.log.Info("joinchannel", "ip", c.ip, "transport", c.kind.metricsName(), "channel", sub.Name,
				"start", startOf(sub.Query, joined[i].History), "useragent", r.UserAgent())
		}
	}
	activate()
	if c.kind == kindPoll {
		c.collected(wait)
	}
}

// forgetModern removes c from the registry and the hub. It is idempotent.
func (s *Server) forgetModern(c *modernConn) {
	s.mu.Lock()
	s.removeLocked(c)
	s.Metrics.Subscribed(-int(c.subscribed))
	c.subscribed = 0
	s.mu.Unlock()
	s.hub.Unsubscribe(c)
}

// modernClosed runs once when c's connection has closed. It leaves the
// registry before the hub, so that a subscription racing the close either
// sees c unregistered or is undone here.
func (s *Server) modernClosed(c *modernConn, reason reason.Reason, written int64) {
	s.forgetModern(c)
	s.stats.Dec(stats.CurrentSubscribers)
	c.Metrics.Closed(reason.String())
	if c.kind != kindPoll && s.log.Enabled(context.Background(), slog.LevelInfo) {
		secs := int64(since(c.start) / time.Second)
		c.mu.Lock()
		sent := c.sent
		c.mu.Unlock()
		for _, p := range c.cur {
			s.log.Info("leavechannel", "ip", c.ip, "transport", c.kind.metricsName(), "channel", p.Channel,
				"seconds", secs, "messages", sent, "bytes", written, "reason", reason.String())
		}
	}
}

// requestCursor returns the first non-empty of the given cursor strings,
// parsed.
func requestCursor(candidates ...string) (wire.Cursor, error) {
	for _, s := range candidates {
		if s != "" {
			return wire.ParseCursor(s)
		}
	}
	return nil, nil
}

package subscriber

// What the SSE, NDJSON and JSON long-poll transports share: the request
// grammar (channel elements as in /push, and a resume cursor), the
// subscription with its positions and gap signals, and streamConn, the
// part of their connections that keeps those positions. Each transport's
// connection (sseConn in sse.go, ndjsonConn in ndjson.go, pollConn in
// poll.go) embeds a streamConn and writes its own wire format. Each is
// hijacked and written through an outq.Conn; none holds a goroutine of its
// own: hang-ups are seen by the outq.Watcher, heartbeats and long-poll
// timeouts by the Server's ticker.

import (
	"context"
	"fmt"
	"github.com/meteorpush/meteor/internal/auth"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/stats"
	"github.com/meteorpush/meteor/internal/wire"
)

// streamSub is one channel of a request: the history it asks for, and
// whether it resumes from a position, in which case a gap is reported when
// the messages after it are no longer stored.
type streamSub struct {
	ChannelSpec
	resume bool
	since  engine.Position // when resume: where the client stands
}

// parseChannels parses "<chan>[/<chan>...]" with the channel elements of
// /push (name, name.r<N>, name.b<N>, name.h). Empty elements are skipped; a
// channel named twice keeps its last element. maxChannels <= 0: no limit.
func parseChannels(rest string, maxChannels int) ([]streamSub, error) {
	var subs []streamSub
	for elem := range strings.SplitSeq(rest, "/") {
		if elem == "" {
			continue
		}
		spec, err := parseChannel(elem)
		if err != nil {
			return nil, err
		}
		sub := streamSub{ChannelSpec: spec}
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
func applyCursor(subs []streamSub, cur wire.Cursor) {
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
func startPosition(name string, sub streamSub, h engine.History) (engine.Position, wire.Gap, bool) {
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
func (c *streamConn) crossedLocked(i int, epoch string) (g wire.Gap, crossed, began bool) {
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

// streamConn is what the connections of the stream transports share:
// the output, the registration, and the position in each channel, which
// every delivery moves.
type streamConn struct {
	output
	registered
	done   bool    // guarded by mu; closing, or the poll answered
	joined bool    // guarded by mu; its joinchannel lines are logged: streamClosed logs the leaves
	ip     string  // an identity (the address, and the token's subject); shares one allocation with the channel names
	start  instant // when the connection was opened

	mu sync.Mutex
	// cur is the position per channel, in request order; guarded by mu.
	// The names are set before the connection is registered and do not
	// change.
	cur  wire.Cursor
	sent int // guarded by mu; messages written
}

// streamer is the connection of a stream transport as the shared code
// sees it.
type streamer interface {
	hub.Client
	conn
	stream() *streamConn
	// transport names the transport in metrics and logs.
	transport() string
}

func (c *streamConn) stream() *streamConn { return c }

// id is who the connection is in the presence lists: its token's subject,
// or its connection's id.
func (c *streamConn) id() string {
	if _, sub := splitIdentity(c.ip); sub != "" {
		return sub
	}
	return connID(c.start)
}

func (c *streamConn) remote() string { ip, _ := splitIdentity(c.ip); return ip }

// beginLocked starts a delivery of msgs, of one channel: it returns the
// channel's index in c.cur and what crossedLocked says of the messages'
// stream, or ok false when nothing is to be written (closing, or not a
// channel of c). The caller holds c.mu.
func (c *streamConn) beginLocked(msgs []*engine.Message) (i int, g wire.Gap, crossed, began, ok bool) {
	if c.done || len(msgs) == 0 {
		return 0, g, false, false, false
	}
	if i = c.indexLocked(msgs[0].Channel); i < 0 {
		return 0, g, false, false, false
	}
	g, crossed, began = c.crossedLocked(i, msgs[0].Epoch)
	return i, g, crossed, began, true
}

// delivered ends a delivery that wrote n messages (ok) or could not write
// (the connection is closing) and returns Deliver's answer. The caller
// holds c.mu.
func (c *streamConn) deliveredLocked(n int, ok bool) bool {
	if !ok {
		c.done = true
		return false
	}
	c.sent += n
	return true
}

// indexLocked returns the position of channel in c.cur, or -1. The caller
// holds c.mu.
func (c *streamConn) indexLocked(channel string) int {
	for i := range c.cur {
		if c.cur[i].Channel == channel {
			return i
		}
	}
	return -1
}

// finish ends a stream with reason r after final (its close event),
// unless it is already closing.
func (c *streamConn) finish(r reason.Reason, final []byte) {
	c.mu.Lock()
	if c.done {
		c.mu.Unlock()
		return
	}
	c.done = true
	c.mu.Unlock()
	c.CloseAfter(final, r)
}

func (c *streamConn) abort() { c.Out.Close(reason.ServerShutdown) }

// Sent returns the number of messages written.
func (c *streamConn) Sent() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent
}

// beat is the heartbeat of a stream (SSE, NDJSON).
type beat struct {
	every time.Duration // HeartbeatInterval; 0: none
	next  instant       // owned by the ticker goroutine
}

// due reports whether a heartbeat is due at the tick of now, and moves to
// the next one.
func (b *beat) due(now time.Time) bool {
	// Due at the tick nearest the time, as legacy pings are.
	at := instantOf(now.Add(tickPeriod / 2))
	if b.every <= 0 || at < b.next {
		return false
	}
	b.next += instant(b.every)
	if b.next < at {
		b.next = instantOf(now) + instant(b.every) // fell behind
	}
	return true
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

// openStream hijacks the connection of sc and subscribes it to subs.
// begun runs between the history read and its delivery, with the gaps to
// tell the client of: a stream writes its header and what precedes the
// messages, a poll keeps the gaps for its answer. activated, when not
// nil, runs once the history has been delivered.
func (s *Server) openStream(w http.ResponseWriter, r *http.Request, set *Settings, sc streamer, subs []streamSub, begun func(gaps []wire.Gap), activated func()) {
	c := sc.stream()
	name := sc.transport()
	var grant auth.Grant
	if set.Auth.Required != nil {
		names := make([]string, len(subs))
		for i := range subs {
			names[i] = subs[i].Name
		}
		var ok bool
		if grant, ok = s.authorize(w, r, set, name, "", names); !ok {
			return
		}
		setExpiry(sc, grant)
	}
	nc, err := hijack(w)
	if err != nil {
		return
	}
	c.ip, c.start = identity(remoteIP(r), grant.Subject), instantOf(time.Now())
	c.Stats, c.Metrics = s.stats, s.Metrics.For(name)
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
	c.Out = s.openOut(w, nc, set, sc, false)
	if !s.register(sc, nil) {
		c.Out.Close(s.stoppingReason())
		return
	}
	defer func() {
		if c.Out.Closed() {
			// It may have closed before it was registered everywhere.
			s.forgetStream(sc)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), set.SubscribeTimeout)
	joined, activate := s.hub.Subscribe(ctx, sc, hsubs, true)
	cancel()
	if err := joinError(joined); err != nil {
		// A stream or a poll is all its channels or nothing: the client
		// is told to come back, and resumes then.
		s.hub.Unsubscribe(sc)
		s.refuse(c.Out, c.remote(), name, corsHeader(set, r), err)
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
		s.hub.Unsubscribe(sc)
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
	c.joined = true
	c.mu.Unlock()
	begun(gaps)
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		for i, sub := range subs {
			s.log.Info("joinchannel", "ip", c.remote(), "transport", name, "channel", sub.Name,
				"start", startOf(sub.Query, joined[i].History), "useragent", r.UserAgent(), subAttr(grant.Subject))
		}
	}
	activate()
	if activated != nil {
		activated()
	}
}

// forgetStream removes sc from the registry and the hub. It is
// idempotent.
func (s *Server) forgetStream(sc streamer) {
	c := sc.stream()
	s.mu.Lock()
	s.removeLocked(sc)
	s.Metrics.Subscribed(-int(c.subscribed))
	c.subscribed = 0
	s.mu.Unlock()
	s.hub.Unsubscribe(sc)
}

// streamClosed runs once when sc's connection has closed. It leaves the
// registry before the hub, so that a subscription racing the close either
// sees sc unregistered or is undone here. A subscription that joined (its
// joinchannel lines were logged), a poll's as a stream's, logs one
// leavechannel line per channel, the pair of those.
func (s *Server) streamClosed(sc streamer, r reason.Reason, written int64) {
	c := sc.stream()
	c.mu.Lock()
	joined := c.joined
	c.mu.Unlock()
	s.forgetStream(sc)
	s.stats.Dec(stats.CurrentSubscribers)
	c.Metrics.Closed(r.String())
	if joined && s.log.Enabled(context.Background(), slog.LevelInfo) {
		secs := int64(since(c.start) / time.Second)
		sent := c.Sent()
		ip, sub := splitIdentity(c.ip)
		for _, p := range c.cur {
			s.log.Info("leavechannel", "ip", ip, "transport", sc.transport(), "channel", p.Channel,
				"seconds", secs, "messages", sent, "bytes", written, "reason", r.String(), subAttr(sub))
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

package subscriber

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/metrics"
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/wire"
)

// errSSEEvent means ?event= has a value other than "channel".
var errSSEEvent = errors.New(`event must be "channel" (or absent)`)

// serveSSE answers GET /sse/<chan>[/<chan>...] with a Server-Sent Events
// stream: the retry hint and the starting cursor, a gap event per channel
// whose resumed position is no longer stored, then one event per message
// whose id is the connection's cursor after it, heartbeats, and a close
// event when the server ends the stream. The cursor comes from the
// Last-Event-ID header (an EventSource reconnecting), else ?lastEventId=,
// else ?since=.
func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request, set *Settings, rest string) {
	subs, err := parseChannels(rest, set.MaxChannels)
	if err != nil {
		s.badRequest(w, r, err.Error())
		return
	}
	q := r.URL.Query()
	cur, err := requestCursor(r.Header.Get("Last-Event-ID"), q.Get("lastEventId"), q.Get("since"))
	if err != nil {
		s.badRequest(w, r, err.Error())
		return
	}
	applyCursor(subs, cur)
	c := &sseConn{beat: beat{every: set.Heartbeat}}
	switch q.Get("event") {
	case "":
	case "channel":
		c.named = true
	default:
		s.badRequest(w, r, errSSEEvent.Error())
		return
	}
	c.beat.next = instantOf(time.Now()) + instant(set.Heartbeat)
	cors := corsHeader(set, r)
	retry := sseRetry(set.SSERetry)
	s.openStream(w, r, set, c, subs, func(gaps []wire.Gap) {
		b := responseHeader("text/event-stream", cors, -1)
		if retry > 0 {
			b = wire.AppendSSERetry(b, retry)
		}
		c.mu.Lock()
		b = wire.AppendSSEID(b, c.cur)
		c.mu.Unlock()
		b = append(b, '\n')
		for _, g := range gaps {
			b = append(b, wire.SSEGap(g)...)
		}
		c.Write(b)
	}, nil)
}

// sseConn is one Server-Sent Events connection: the hub.Client of each of
// its channels and a conn of the Server.
type sseConn struct {
	streamConn
	beat
	named bool // events named after their channel (?event=channel)
}

var (
	_ hub.Client    = (*sseConn)(nil)
	_ hub.Describer = (*sseConn)(nil)
	_ streamer      = (*sseConn)(nil)
)

func (c *sseConn) transport() string { return metrics.SSE }

// Describe implements hub.Describer.
func (c *sseConn) Describe() (id, transport string) { return c.id(), metrics.SSE }

// encoder returns the engine.Encoder of the connection's events.
func (c *sseConn) encoder() engine.Encoder {
	if c.named {
		return wire.SSENamed
	}
	return wire.SSEData
}

// Deliver writes msgs as events. The event lines are shared; the id line
// is this connection's cursor after the message. The whole delivery is
// rendered into one pooled buffer: one write (one system call), no
// allocation. Messages of another stream than the one the client knows
// are preceded by a reset gap event.
func (c *sseConn) Deliver(msgs []*engine.Message, live bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, gap, crossed, _, ok := c.beginLocked(msgs)
	if !ok {
		return !c.done
	}
	p := getBuffer()
	b := *p
	if crossed {
		b = append(b, wire.SSEGap(gap)...)
	}
	enc := c.encoder()
	for _, m := range msgs {
		c.cur[i].ID = m.ID
		b = wire.AppendSSEID(b, c.cur)
		b = append(b, m.Encoded(enc)...)
	}
	ok = c.WriteMessagesCopy(b, msgs, live)
	*p = b
	putBuffer(p)
	return c.deliveredLocked(len(msgs), ok)
}

// Close implements hub.Client: the stream ends with a close event saying
// why, when its queue still takes it.
func (c *sseConn) Close(r reason.Reason) { c.finish(r, wire.SSEClose(r)) }

func (c *sseConn) shutdown(r reason.Reason) { c.Close(r) }

// tick sends the heartbeat comment.
func (c *sseConn) tick(now time.Time) {
	if c.beat.due(now) {
		c.Write(wire.SSEHeartbeat)
	}
}

// sseRetry returns the retry hint in milliseconds: d give or take up to 20%
// at random, so that the clients of a server that restarts do not all come
// back in the same instant. 0: no hint.
func sseRetry(d time.Duration) int64 {
	ms := d.Milliseconds()
	if ms <= 0 {
		return 0
	}
	return max(1, int64(float64(ms)*(0.8+0.4*rand.Float64())))
}

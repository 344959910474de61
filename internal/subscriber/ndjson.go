package subscriber

import (
	"net/http"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/metrics"
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/wire"
)

// serveNDJSON answers GET /ndjson/<chan>[/<chan>...]?since=<cursor> with a
// stream of JSON objects, one per line: a subscribed line per channel (the
// position the client stands at), a gap line per channel whose resumed
// position is no longer stored, then the messages, heartbeats, and a close
// line when the server ends the stream.
func (s *Server) serveNDJSON(w http.ResponseWriter, r *http.Request, set *Settings, rest string) {
	subs, err := parseChannels(rest, set.MaxChannels)
	if err != nil {
		s.badRequest(w, r, err.Error())
		return
	}
	cur, err := requestCursor(r.URL.Query().Get("since"))
	if err != nil {
		s.badRequest(w, r, err.Error())
		return
	}
	applyCursor(subs, cur)
	c := &ndjsonConn{beat: beat{every: set.Heartbeat, next: instantOf(time.Now()) + instant(set.Heartbeat)}}
	cors := corsHeader(set, r)
	s.openStream(w, r, set, c, subs, func(gaps []wire.Gap) {
		b := responseHeader("application/x-ndjson", cors, -1)
		c.mu.Lock()
		for _, p := range c.cur {
			b = wire.AppendNDJSONSubscribed(b, p.Channel, p.Position)
		}
		c.mu.Unlock()
		for _, g := range gaps {
			b = wire.AppendNDJSONGap(b, g)
		}
		c.Write(b)
	}, nil)
}

// ndjsonConn is one NDJSON stream: the hub.Client of each of its channels
// and a conn of the Server.
type ndjsonConn struct {
	streamConn
	beat
}

var (
	_ hub.Client    = (*ndjsonConn)(nil)
	_ hub.Describer = (*ndjsonConn)(nil)
	_ streamer      = (*ndjsonConn)(nil)
)

func (c *ndjsonConn) transport() string { return metrics.NDJSON }

// Describe implements hub.Describer.
func (c *ndjsonConn) Describe() (id, transport string) { return c.id(), metrics.NDJSON }

// Deliver writes msgs, one line each, their shared encoding. The SSE ids
// and the poll's cursor carry each channel's epoch; an NDJSON client
// learns it from a gap line (its stream was lost) or an epoch line (its
// channel had no message when it subscribed) before the messages.
func (c *ndjsonConn) Deliver(msgs []*engine.Message, live bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, gap, crossed, began, ok := c.beginLocked(msgs)
	if !ok {
		return !c.done
	}
	switch {
	case crossed:
		ok = c.Write(wire.AppendNDJSONGap(nil, gap))
	case began:
		ok = c.Write(wire.AppendNDJSONEpoch(nil, c.cur[i].Channel, msgs[0].Epoch))
	}
	if ok {
		c.cur[i].ID = msgs[len(msgs)-1].ID
		ok = c.WriteEach(msgs, wire.NDJSONFormat, live)
	}
	return c.deliveredLocked(len(msgs), ok)
}

// Close implements hub.Client: the stream ends with a close line saying
// why, when its queue still takes it.
func (c *ndjsonConn) Close(r reason.Reason) { c.finish(r, wire.NDJSONClose(r)) }

func (c *ndjsonConn) shutdown(r reason.Reason) { c.Close(r) }

// tick sends the heartbeat line.
func (c *ndjsonConn) tick(now time.Time) {
	if c.beat.due(now) {
		c.Write(wire.NDJSONPing)
	}
}

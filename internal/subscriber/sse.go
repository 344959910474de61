package subscriber

import (
	"errors"
	"math/rand/v2"
	"net/http"
	"time"

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
	c := &modernConn{kind: kindSSE, heartbeat: set.Heartbeat}
	switch q.Get("event") {
	case "":
	case "channel":
		c.named = true
	default:
		s.badRequest(w, r, errSSEEvent.Error())
		return
	}
	cors := corsHeader(set, r)
	retry := sseRetry(set.SSERetry)
	s.openModern(w, r, set, c, subs, func(gaps []wire.Gap) []byte {
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
		return b
	}, false)
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

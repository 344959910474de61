package subscriber

import (
	"net/http"

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
	c := &modernConn{kind: kindNDJSON, heartbeat: set.Heartbeat}
	cors := corsHeader(set, r)
	s.openModern(w, r, set, c, subs, func(gaps []wire.Gap) []byte {
		b := responseHeader("application/x-ndjson", cors, -1)
		c.mu.Lock()
		for _, p := range c.cur {
			b = wire.AppendNDJSONSubscribed(b, p.Channel, p.Position)
		}
		c.mu.Unlock()
		for _, g := range gaps {
			b = wire.AppendNDJSONGap(b, g)
		}
		return b
	}, false)
}

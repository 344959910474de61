package api

import (
	"context"
	"fmt"
	"net/http"
	"strconv"

	dto "github.com/prometheus/client_model/go"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/stats"
	"github.com/meteorpush/meteor/internal/version"
)

// defaultHistory is how many messages GET /api/channels/{channel} returns
// without ?history.
const defaultHistory = 10

// channelInfo is a channel as GET /api/channels lists it.
type channelInfo struct {
	Name        string `json:"name"`
	Messages    int    `json:"messages"`
	Subscribers int    `json:"subscribers"`
	LastID      uint64 `json:"lastId"`
	Epoch       string `json:"epoch,omitempty"`
}

// message is a stored message as the API shows it: the same object the
// JSON transports send, without their "type".
type message struct {
	ID      uint64 `json:"id"`
	Channel string `json:"channel"`
	Text    string `json:"text"`
	Time    int64  `json:"time"` // Unix milliseconds
}

// channelDetail is the body of GET /api/channels/{channel}.
type channelDetail struct {
	channelInfo
	FirstID uint64    `json:"firstId"`
	History []message `json:"history"`
}

// channels serves GET /api/channels.
func (s *Server) channels(w http.ResponseWriter, r *http.Request) {
	chans, err := s.hub.Channels(r.Context())
	if err != nil {
		s.failEngine(w, "listing channels", err)
		return
	}
	out := make([]channelInfo, len(chans))
	for i, c := range chans {
		out[i] = channelInfo{Name: c.Name, Messages: c.Messages, Subscribers: c.Subscribers, LastID: c.Last}
	}
	writeJSON(w, http.StatusOK, map[string][]channelInfo{"channels": out})
}

// lookup reads the named channel's state and the newest n of its messages.
// It answers the request itself, and returns ok false, when the name is
// invalid, the channel unknown (no messages, none dropped, no subscribers
// on this node) or the engine fails.
func (s *Server) lookup(ctx context.Context, w http.ResponseWriter, name string, n int) (h engine.History, subs int, ok bool) {
	if err := checkChannel(name); err != nil {
		fail(w, err)
		return h, 0, false
	}
	hs, err := s.hub.Engine().History(ctx, engine.HistoryRequest{Channel: name, Query: engine.Query{Kind: engine.QueryLast, Last: n}})
	if err == nil && len(hs) != 1 {
		err = fmt.Errorf("the engine answered one history request with %d", len(hs))
	}
	if err != nil {
		s.failEngine(w, "reading the history", err)
		return h, 0, false
	}
	h = hs[0]
	subs = s.hub.CountSubscribers(name)
	if h.Stream.Count == 0 && h.Stream.Trimmed == 0 && subs == 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no channel %q", name))
		return h, 0, false
	}
	return h, subs, true
}

// channel serves GET /api/channels/{channel}?history=N.
func (s *Server) channel(w http.ResponseWriter, r *http.Request) {
	maxHist := s.limits.Load().MaxHistory
	n := defaultHistory
	if v := r.URL.Query().Get("history"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("history must be a whole number from 0 to %d, not %q", maxHist, v))
			return
		}
	}
	n = min(n, maxHist)
	name := r.PathValue("channel")
	h, subs, ok := s.lookup(r.Context(), w, name, n)
	if !ok {
		return
	}
	out := channelDetail{
		channelInfo: channelInfo{Name: name, Messages: h.Stream.Count, Subscribers: subs, LastID: h.Stream.Last, Epoch: h.Stream.Epoch},
		FirstID:     h.Stream.First,
		History:     make([]message, len(h.Messages)),
	}
	for i, m := range h.Messages {
		out.History[i] = message{ID: m.ID, Channel: m.Channel, Text: m.Text, Time: m.Time.UnixMilli()}
	}
	writeJSON(w, http.StatusOK, out)
}

// clearChannel serves DELETE /api/channels/{channel}/messages.
func (s *Server) clearChannel(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("channel")
	h, _, ok := s.lookup(r.Context(), w, name, 0)
	if !ok {
		return
	}
	if err := s.hub.Engine().Clear(r.Context(), name); err != nil {
		s.failEngine(w, "clearing the history", err)
		return
	}
	s.log.Info("history cleared", "channel", name, "messages", h.Stream.Count, "by", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"channel": name, "cleared": h.Stream.Count})
}

// closeChannel serves POST /api/channels/{channel}/close.
func (s *Server) closeChannel(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("channel")
	if _, _, ok := s.lookup(r.Context(), w, name, 0); !ok {
		return
	}
	n, err := s.hub.Kick(r.Context(), name)
	if err != nil {
		// This node's subscribers were closed; the other nodes could not
		// be told.
		s.failEngine(w, "closing the channel on every node", err)
		return
	}
	s.log.Info("channel closed", "channel", name, "subscribers", n, "by", r.RemoteAddr)
	writeJSON(w, http.StatusOK, map[string]any{"channel": name, "closed": n})
}

// statsHandler serves GET /api/stats: SHOWSTATS as JSON, every counter
// included (SHOWSTATS leaves out those never counted), and the open
// connections by transport, and which build is running.
func (s *Server) statsHandler(w http.ResponseWriter, r *http.Request) {
	chans, err := s.hub.Channels(r.Context())
	if err != nil {
		s.failEngine(w, "listing channels", err)
		return
	}
	out := map[string]any{
		"uptime":        s.stats.Uptime(),
		"channel_count": len(chans),
		"build":         version.Get(),
	}
	// Counters run from 0 up to the first that has no name.
	for c := stats.Counter(0); c.String() != "unknown"; c++ {
		out[c.String()] = s.stats.Get(c)
	}
	if conns := s.connections(); conns != nil {
		out["connections"] = conns
	}
	writeJSON(w, http.StatusOK, out)
}

// connections returns the meteor_connections gauge by transport, or nil
// without metrics.
func (s *Server) connections() map[string]int64 {
	reg := s.met.Registry()
	if reg == nil {
		return nil
	}
	fams, err := reg.Gather()
	if err != nil {
		s.log.Debug("gathering metrics", "err", err)
	}
	for _, f := range fams {
		if f.GetName() != "meteor_connections" {
			continue
		}
		out := make(map[string]int64, len(f.GetMetric()))
		for _, m := range f.GetMetric() {
			out[label(m, "transport")] = int64(m.GetGauge().GetValue())
		}
		return out
	}
	return nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

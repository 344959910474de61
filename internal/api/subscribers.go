package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/meteorpush/meteor/internal/engine"
)

// The page sizes of GET /api/channels/{channel}/subscribers.
const (
	defaultSubscribersPage = 100
	maxSubscribersPage     = 1000
)

// subscriber is one subscriber as the API lists it.
type subscriber struct {
	ID        string `json:"id"` // the hostid, or "conn-<n>" for a connection without one
	Node      string `json:"node"`
	Transport string `json:"transport"`
	Since     int64  `json:"since"` // Unix milliseconds
}

// subscribersPage is the body of GET /api/channels/{channel}/subscribers.
type subscribersPage struct {
	Channel     string       `json:"channel"`
	Count       int          `json:"count"`
	Subscribers []subscriber `json:"subscribers"`
	Next        string       `json:"next"` // "" after the last page
}

// subscribers serves GET /api/channels/{channel}/subscribers?cursor=&limit=:
// a page of the channel's subscribers on every node, with the count of
// them all (which costs no listing).
func (s *Server) subscribers(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("channel")
	if err := checkChannel(name); err != nil {
		fail(w, err)
		return
	}
	q := r.URL.Query()
	limit := defaultSubscribersPage
	if v := q.Get("limit"); v != "" {
		var err error
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > maxSubscribersPage {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("limit must be a whole number from 1 to %d, not %q", maxSubscribersPage, v))
			return
		}
	}
	subs, next, err := s.hub.ListSubscribers(r.Context(), name, q.Get("cursor"), limit)
	if errors.Is(err, engine.ErrBadCursor) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("cursor %q is not one this API handed out", q.Get("cursor")))
		return
	}
	if err != nil {
		s.failEngine(w, "listing subscribers", err)
		return
	}
	out := subscribersPage{Channel: name, Count: s.hub.CountSubscribers(name), Subscribers: make([]subscriber, len(subs)), Next: next}
	for i, sub := range subs {
		out.Subscribers[i] = subscriber{ID: sub.ID, Node: sub.Node, Transport: sub.Transport, Since: sub.Since.UnixMilli()}
	}
	writeJSON(w, http.StatusOK, out)
}

package subscriber

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/metrics"
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/stats"
	"github.com/meteorpush/meteor/internal/wire"
)

// Errors of a long-poll request's parameters, besides the channels' and
// the cursor's.
var (
	// errPollTimeout means ?timeout= is not a whole number of seconds.
	errPollTimeout = errors.New("timeout must be a whole number of seconds")
	// errPollCallback means ?callback= is not a JavaScript name.
	errPollCallback = errors.New("callback must be a JavaScript name or up to four dotted names, each at most 64 characters")
)

// servePoll answers GET /poll/<chan>[/<chan>...]?since=<cursor> with one
// JSON object: {"messages":[...],"cursor":"...","gaps":[...]}. It answers
// at once when the history holds messages after the client's position (or
// a gap), and otherwise holds the connection, registered in the hub, until
// the first live message or the timeout (?timeout= seconds, at most
// LongPollTimeout; 0 answers at once), when it answers with no message and
// the same cursor. ?callback=fn wraps the object as JSONP.
func (s *Server) servePoll(w http.ResponseWriter, r *http.Request, set *Settings, rest string) {
	subs, err := parseChannels(rest, set.MaxChannels)
	if err != nil {
		s.badRequest(w, r, err.Error())
		return
	}
	q := r.URL.Query()
	cur, err := requestCursor(q.Get("since"))
	if err != nil {
		s.badRequest(w, r, err.Error())
		return
	}
	applyCursor(subs, cur)
	timeout := set.PollTimeout
	if v := q.Get("timeout"); v != "" {
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil {
			s.badRequest(w, r, errPollTimeout.Error())
			return
		}
		timeout = min(timeout, time.Duration(n)*time.Second)
	}
	callback := q.Get("callback")
	if q.Has("callback") && !ValidCallback(callback) {
		s.badRequest(w, r, errPollCallback.Error())
		return
	}
	c := &pollConn{callback: callback, cors: corsHeader(set, r)}
	c.deadline = instantOf(time.Now().Add(timeout))
	s.openStream(w, r, set, c, subs, func(gaps []wire.Gap) {
		c.mu.Lock()
		c.gaps = gaps
		c.mu.Unlock()
	}, func() { c.collected(timeout > 0) })
}

// pollConn is one JSON long-poll: the hub.Client of each of its channels
// until it answers, and a conn of the Server.
type pollConn struct {
	streamConn
	deadline instant // when a held poll answers empty
	callback string  // the JSONP function, "" for JSON
	cors     []byte  // CORS header lines of the answer

	held  bool              // guarded by mu; waiting for a live message
	batch []*engine.Message // guarded by mu; messages to answer with
	gaps  []wire.Gap        // guarded by mu; gaps to answer with
	live  time.Time         // guarded by mu; publication time of a live message in batch
}

var (
	_ hub.Client    = (*pollConn)(nil)
	_ hub.Describer = (*pollConn)(nil)
	_ streamer      = (*pollConn)(nil)
)

func (c *pollConn) transport() string { return metrics.LongPoll }

// Describe implements hub.Describer.
func (c *pollConn) Describe() (id, transport string) { return c.id(), metrics.LongPoll }

// Deliver adds msgs to the answer; a held poll answers with the first
// messages it gets.
func (c *pollConn) Deliver(msgs []*engine.Message, live bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, gap, crossed, _, ok := c.beginLocked(msgs)
	if !ok {
		return !c.done
	}
	if crossed {
		c.gaps = append(c.gaps, gap)
	}
	c.batch = append(c.batch, msgs...)
	c.cur[i].ID = msgs[len(msgs)-1].ID
	if live && c.live.IsZero() {
		c.live = msgs[0].Time
	}
	if c.held {
		c.answerLocked(reason.ResponseComplete)
		return false
	}
	return true
}

// Close implements hub.Client: the poll answers with what it has and the
// reason; a slow one is closed at once.
func (c *pollConn) Close(r reason.Reason) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	if r == reason.SlowConsumer {
		c.done = true
		c.Out.Close(r)
		return
	}
	c.answerLocked(r)
}

func (c *pollConn) shutdown(r reason.Reason) { c.Close(r) }

// tick answers a held poll whose time is up.
func (c *pollConn) tick(now time.Time) {
	// Due at the tick nearest the time, as legacy pings are.
	if instantOf(now.Add(tickPeriod/2)) < c.deadline {
		return
	}
	c.mu.Lock()
	if c.held && !c.done {
		c.answerLocked(reason.ResponseComplete)
	}
	c.mu.Unlock()
}

// collected runs once the history has been delivered: it answers at once
// when there is something to say or no time to wait, and otherwise holds
// the poll until a live message or its deadline.
func (c *pollConn) collected(wait bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done {
		return
	}
	if len(c.batch) > 0 || len(c.gaps) > 0 || !wait {
		c.answerLocked(reason.ResponseComplete)
		return
	}
	c.held = true
}

// answerLocked sends the whole response and closes the connection with
// reason r. The caller holds c.mu.
func (c *pollConn) answerLocked(r reason.Reason) {
	c.done, c.held = true, false
	// A poll answered for another reason than its own end (the server
	// stops, an administrator closed a channel, a stream was reset) says
	// so, so that the client knows whether to poll again.
	closed := r
	if r == reason.ResponseComplete {
		closed = reason.None
	}
	body := wire.AppendPollBody(make([]byte, 0, 64), c.batch, c.cur, c.gaps, closed, c.callback)
	ctype := "application/json"
	if c.callback != "" {
		ctype = "application/javascript"
	}
	b := responseHeader(ctype, c.cors, len(body))
	b = append(b, body...)
	c.Out.CloseAfter(b, r)
	n := len(c.batch)
	c.sent += n
	if c.Stats != nil {
		c.Stats.Add(stats.MessagesServed, int64(n))
		c.Stats.Add(stats.TotalOutboundBytes, int64(len(b)))
	}
	if n > 0 {
		c.Metrics.Delivered(n, len(b), c.live)
	} else {
		c.Metrics.Sent(len(b))
	}
	c.batch = nil
}

// ValidCallback reports whether name may be a JSONP callback: a JavaScript
// identifier of ASCII letters, digits, _ and $, at most 64 bytes, not
// starting with a digit, or up to four of them joined by dots. Nothing else
// is ever written into a response as script.
func ValidCallback(name string) bool {
	parts := 0
	for i := 0; i <= len(name); {
		j := i
		for j < len(name) && name[j] != '.' {
			c := name[j]
			ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '$' || j > i && c >= '0' && c <= '9'
			if !ok {
				return false
			}
			j++
		}
		if j == i || j-i > 64 {
			return false
		}
		parts++
		if parts > 4 {
			return false
		}
		i = j + 1
	}
	return parts > 0
}

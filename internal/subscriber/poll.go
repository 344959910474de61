package subscriber

import (
	"errors"
	"net/http"
	"strconv"
	"time"
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
	c := &modernConn{kind: kindPoll, poll: &pollState{callback: callback, cors: corsHeader(set, r)}}
	c.poll.deadline = instantOf(time.Now().Add(timeout))
	s.openModern(w, r, set, c, subs, nil, timeout > 0)
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

package subscriber

// What every transport answers when the engine could not serve a
// subscription: the rule is here once, the transports call it.

import (
	"strconv"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/outq"
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/stats"
)

// joinError returns the first error among joined, nil when every channel
// was joined.
func joinError(joined []hub.Joined) error {
	for _, j := range joined {
		if j.Err != nil {
			return j.Err
		}
	}
	return nil
}

// failure returns what a client is told of err from the engine: the close
// reason, and the seconds after which to try again (0: not a store that
// could not be reached, so no Retry-After).
func failure(err error) (r reason.Reason, retryAfter int) {
	if engine.Unavailable(err) {
		return reason.StoreUnavailable, engine.RetryAfter()
	}
	return reason.ServerError, 0
}

// refuse answers a subscription whose engine call failed, before anything
// else was written on out, and closes the connection: 503 Service
// Unavailable with a jittered Retry-After when the store could not be
// reached, 500 otherwise. The body is the reason's name, never the
// engine's text, which goes to the log (rate-limited).
func (s *Server) refuse(out *outq.Conn, ip, transport string, cors []byte, err error) {
	r, retry := failure(err)
	s.storeLog.Warn(s.log, "subscribe failed", "ip", ip, "transport", transport, "reason", r.String(), "err", err)
	s.stats.Inc(stats.ErrorsServed)
	out.CloseAfter(failureResponse(r, retry, cors), r)
}

// failureResponse is the raw response of refuse.
func failureResponse(r reason.Reason, retryAfter int, cors []byte) []byte {
	status := "500 Internal Server Error"
	if retryAfter > 0 {
		status = "503 Service Unavailable"
	}
	body := r.String() + "\n"
	b := make([]byte, 0, 256+len(cors))
	b = append(b, "HTTP/1.1 "+status+"\r\nServer: "+ServerName+"\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n"...)
	if retryAfter > 0 {
		b = append(b, "Retry-After: "...)
		b = strconv.AppendInt(b, int64(retryAfter), 10)
		b = append(b, "\r\n"...)
	}
	if len(cors) > 0 && retryAfter > 0 {
		// A page on another origin may read when to come back.
		b = append(b, "Access-Control-Expose-Headers: Retry-After\r\n"...)
	}
	b = append(b, cors...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nConnection: close\r\n\r\n"...)
	return append(b, body...)
}

package subscriber

import (
	"net/http"
	"strconv"
	"time"

	"github.com/meteorpush/meteor/internal/origin"
)

// corsMaxAge is how long a browser may cache a preflight's answer.
const corsMaxAge = 10 * time.Minute

// corsAllowed reports whether origin may read the SSE, NDJSON and long-poll
// responses and open a WebSocket: it is listed in origins, the CORSOrigins
// setting.
func corsAllowed(origins, o string) bool { return origin.Listed(origins, o) }

// corsHeader returns the CORS header lines of a response to r: none when
// its Origin is not allowed, so that the browser keeps the page from
// reading it.
func corsHeader(set *Settings, r *http.Request) []byte {
	origin := r.Header.Get("Origin")
	if !corsAllowed(set.CORSOrigins, origin) {
		return nil
	}
	return []byte("Access-Control-Allow-Origin: " + origin + "\r\nVary: Origin\r\n")
}

// preflight answers a CORS preflight request (OPTIONS with an allowed
// Origin and Access-Control-Request-Method) with 204 and what the
// transports accept, and reports whether it did. Other OPTIONS requests are
// left to the caller, which refuses them as it refuses every other method.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request, set *Settings) bool {
	if r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	cors := corsHeader(set, r)
	if cors == nil {
		return false
	}
	b := make([]byte, 0, 320+len(cors))
	b = append(b, "HTTP/1.1 204 No Content\r\nServer: "+ServerName+"\r\n"...)
	b = append(b, cors...)
	b = append(b, "Access-Control-Allow-Methods: GET\r\n"+
		"Access-Control-Allow-Headers: Last-Event-ID, Content-Type, Authorization\r\n"+
		"Access-Control-Max-Age: "...)
	b = append(b, strconv.Itoa(int(corsMaxAge/time.Second))...)
	b = append(b, "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"...)
	s.reply(w, b, set.WriteTimeout)
	return true
}

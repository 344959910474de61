package api

import (
	"log/slog"
	"net/http"

	"github.com/meteorpush/meteor/internal/origin"
)

// browserGuard protects the API from the pages a browser runs, and lets the
// ones it should in:
//
//   - A request that carries an Origin comes from a page. It is answered
//     only when that origin is listed in CORSOrigins or is the server's own
//     subscriber listener reached through loopback (the dashboard), unless
//     that listener serves publisher text as pages (SetDashboardPort 0);
//     anything else gets 403, so that no web site can publish through a
//     user's browser (a text/plain POST needs no preflight).
//   - Without a token, the Host header must name loopback, so that a page
//     whose name was re-bound to 127.0.0.1 (DNS rebinding) cannot read the
//     API as if it were its own origin.
//
// It answers CORS preflights itself and reports whether the request may go on.
func (s *Server) browserGuard(w http.ResponseWriter, r *http.Request) bool {
	if !s.auth && !origin.LoopbackHost(r.Host) {
		writeError(w, http.StatusForbidden, "host "+r.Host+" not allowed: without APIToken the API answers only to localhost, 127.0.0.1 or [::1]")
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	if !origin.Listed(s.origins, o) && !s.dashboard(o) {
		s.originLog.Log(s.log, slog.LevelInfo, "api: origin refused", "origin", o, "path", r.URL.Path)
		writeError(w, http.StatusForbidden, "origin not allowed: add it to CORSOrigins")
		return false
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", o)
	h.Add("Vary", "Origin")
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		h.Set("Access-Control-Max-Age", "600")
		w.WriteHeader(http.StatusNoContent)
		return false
	}
	return true
}

// dashboard reports whether o is the dashboard's origin: the subscriber
// port set by SetDashboardPort (0: none) reached through loopback.
func (s *Server) dashboard(o string) bool {
	port := int(s.dashboardPort.Load())
	return port != 0 && origin.SamePort(o, port)
}

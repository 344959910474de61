package subscriber

import "net/http"

// serveWebSocket is not written yet.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, set *Settings) {
	http.Error(w, "not implemented", http.StatusNotImplemented)
}

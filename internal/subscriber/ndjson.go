package subscriber

import "net/http"

// serveNDJSON is not written yet.
func (s *Server) serveNDJSON(w http.ResponseWriter, r *http.Request, set *Settings, rest string) {
	http.Error(w, "not implemented", http.StatusNotImplemented)
}

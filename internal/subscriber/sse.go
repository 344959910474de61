package subscriber

import "net/http"

// serveSSE is not written yet.
func (s *Server) serveSSE(w http.ResponseWriter, r *http.Request, set *Settings, rest string) {
	http.Error(w, "not implemented", http.StatusNotImplemented)
}

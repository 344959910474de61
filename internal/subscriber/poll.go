package subscriber

import "net/http"

// servePoll is not written yet.
func (s *Server) servePoll(w http.ResponseWriter, r *http.Request, set *Settings, rest string) {
	http.Error(w, "not implemented", http.StatusNotImplemented)
}

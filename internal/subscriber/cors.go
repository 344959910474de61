package subscriber

import "net/http"

// preflight answers a CORS preflight request and reports whether it did.
// Not written yet.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request, set *Settings) bool {
	return false
}

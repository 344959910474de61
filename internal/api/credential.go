package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/meteorpush/meteor/internal/auth"
)

// credential is what authorised a request: the APIToken, an API key, or a
// JWT with a publish claim.
type credential struct {
	// name names the credential in logs and errors, and is its bucket of
	// PublishRatePerCredential: "APIToken", "key <name>" or "jwt <sub>"
	// (every JWT without a sub shares "jwt ").
	name  string
	key   *Key        // the API key, or nil
	grant *auth.Grant // the JWT's grant, or nil
}

// apiTokenCredential is the credential of a request with the APIToken.
var apiTokenCredential = &credential{name: "APIToken"}

type credentialCtx struct{}

// requestCredential returns what authorised r, or nil when the API asks for
// no credential.
func requestCredential(r *http.Request) *credential {
	c, _ := r.Context().Value(credentialCtx{}).(*credential)
	return c
}

// requestKey returns the API key that authorised r, or nil for the
// APIToken, a JWT or no credentials required.
func requestKey(r *http.Request) *Key {
	if c := requestCredential(r); c != nil {
		return c.key
	}
	return nil
}

// withCredential is r carrying c, for requestCredential.
func withCredential(r *http.Request, c *credential) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), credentialCtx{}, c))
}

// jwtShaped reports whether a bearer token has the shape of a compact JWT
// (three parts): only those are given to the verifier, so that a mistyped
// API key is told "wrong token", not why it is not a JWT.
func jwtShaped(tok string) bool { return strings.Count(tok, ".") == 2 }

// verifyJWT checks a bearer JWT and returns the request carrying its
// grant. A token the verifier refuses gets 401 and one without a publish
// claim 403, each with why.
func (s *Server) verifyJWT(w http.ResponseWriter, r *http.Request, v *auth.Verifier, tok string) (*http.Request, bool) {
	g, err := v.Verify(tok, time.Time{})
	if err != nil {
		check, detail := auth.CheckMalformed, err.Error()
		var ae *auth.Error
		if errors.As(err, &ae) {
			check = ae.Check
			if ae.Err != nil {
				detail = ae.Err.Error()
			}
		}
		s.authLog.Log(s.log, slog.LevelInfo, "api: JWT refused", "check", check, "ip", r.RemoteAddr, "path", r.URL.Path)
		w.Header().Set("WWW-Authenticate", `Bearer realm="meteor", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{
			"error": fmt.Sprintf("JWT refused (%s): %s", check, detail),
			"check": check,
		})
		return r, false
	}
	if len(g.Publish) == 0 {
		s.authLog.Log(s.log, slog.LevelInfo, "api: JWT refused", "check", "publish claim", "sub", g.Subject, "ip", r.RemoteAddr, "path", r.URL.Path)
		writeJSON(w, http.StatusForbidden, map[string]string{
			"error": "the JWT has no publish claim: it grants nothing on the API",
			"check": auth.CheckChannel,
		})
		return r, false
	}
	return withCredential(r, &credential{name: "jwt " + g.Subject, grant: &g}), true
}

// jwtScoped refuses, with 403 and why, a request made with a JWT that the
// JWT does not allow: a JWT only publishes, to the channels of its publish
// claim.
func (s *Server) jwtScoped(w http.ResponseWriter, r *http.Request, c *credential, scope Scope) bool {
	if scope != ScopePublish {
		s.jwtRefused(w, r, c, fmt.Sprintf("a JWT may only publish (POST /api/channels/{channel}/messages, POST /api/publish), not %s", scope))
		return false
	}
	if ch := r.PathValue("channel"); ch != "" && c.grant.AuthorizePublish(ch) != nil {
		s.jwtRefused(w, r, c, fmt.Sprintf("the JWT does not grant publishing to channel %s", ch))
		return false
	}
	return true
}

// jwtRefused answers 403 to a request made with a valid JWT that does not
// allow it, and logs the refusal, a line a second.
func (s *Server) jwtRefused(w http.ResponseWriter, r *http.Request, c *credential, why string) {
	s.authLog.Log(s.log, slog.LevelInfo, "api: JWT refused", "check", auth.CheckChannel, "sub", c.grant.Subject, "method", r.Method, "path", r.URL.Path, "reason", why)
	writeJSON(w, http.StatusForbidden, map[string]string{"error": why, "check": auth.CheckChannel})
}

// allowRate takes n messages from the bucket of the request's credential
// (PublishRatePerCredential). Past the rate it answers 429 with
// Retry-After, and 413 when n is more than a bucket holds (the request
// could never pass); either is counted and logged, a line a second. A
// request without a credential (an API that asks for none) is not limited.
func (s *Server) allowRate(w http.ResponseWriter, r *http.Request, n int) bool {
	c := requestCredential(r)
	if c == nil {
		return true
	}
	ok, retry := s.rate.Allow(c.name, n, time.Now())
	if ok {
		return true
	}
	s.met.PublishRefused("credential rate", n)
	perSecond, burst := s.rate.Limit()
	s.rateLog.Log(s.log, slog.LevelInfo, "api: publish refused: credential rate", "credential", c.name, "messages", n,
		"rate", perSecond, "burst", burst, "ip", r.RemoteAddr)
	if retry == 0 {
		writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{
			"error":  fmt.Sprintf("%d messages in one request, more than credential %s may publish at once (PublishBurstPerCredential %d)", n, c.name, burst),
			"reason": "credential rate",
		})
		return false
	}
	secs := max(1, int(math.Ceil(retry.Seconds())))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	writeJSON(w, http.StatusTooManyRequests, map[string]string{
		"error": fmt.Sprintf("publish rate of credential %s exceeded: at most %s messages a second, %d at once (PublishRatePerCredential, PublishBurstPerCredential); retry in %ds",
			c.name, strconv.FormatFloat(perSecond, 'f', -1, 64), burst, secs),
		"reason": "credential rate",
	})
	return false
}

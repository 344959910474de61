package subscriber

// Who may subscribe to what (SubscriberAuth): the rule is here once; every
// transport calls authorize before it subscribes, and the ticker ends a
// connection whose token expired.

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/meteorpush/meteor/internal/auth"
	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/logx"
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/stats"
	"github.com/meteorpush/meteor/internal/tmpl"
)

// Authz is what SubscriberAuth needs: the Verifier of tokens and signed
// URLs, and which channels need a token. The zero Authz lets anyone read
// any channel (1.06).
type Authz struct {
	// Verifier checks tokens; nil refuses every token (check "signature").
	Verifier *auth.Verifier
	// Required reports whether channel needs a token (SubscriberAuth, or
	// its namespace's); nil: none does.
	Required func(channel string) bool
}

// authRequired is the Authz.Required of cfg: SubscriberAuth of each
// channel's namespace (or the global one); nil when no channel can need a
// token, so that a server without SubscriberAuth checks nothing.
func authRequired(cfg *config.Config) func(string) bool {
	any := cfg.SubscriberAuth
	for _, ns := range cfg.Namespaces() {
		any = any || ns.SubscriberAuth
	}
	if !any {
		return nil
	}
	return func(ch string) bool { return cfg.Namespace(ch).SubscriberAuth }
}

// unconfigured is the Verifier of an Authz without one: it refuses every
// token (check "signature").
var unconfigured, _ = auth.New(auth.Options{})

// required reports whether any of channels needs a token.
func (a *Authz) required(channels []string) bool {
	if a.Required == nil {
		return false
	}
	for _, ch := range channels {
		if a.Required(ch) {
			return true
		}
	}
	return false
}

// credential is what a request presents: at most one of a bearer token,
// a signed URL or a signed hostid is used, in that order.
type credential struct {
	token     string // Authorization: Bearer, or ?token=
	exp, sig  string // a signed URL's query
	hostID    string // a 1.06 subscription's hostid, which may be signed
	path      string // the URL's path, as written (signed URLs)
	present   bool
	malformed string // why the Authorization header was refused
}

// requestCredential reads r's credential. hostID is a 1.06 subscription's
// hostid ("" for other transports).
func requestCredential(r *http.Request, hostID string) credential {
	c := credential{hostID: hostID, path: r.URL.EscapedPath()}
	// Only a Bearer Authorization is Meteor's: another scheme (a proxy's
	// Basic) is left alone, and the other credentials are looked for.
	if scheme, tok, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "Bearer") {
		if c.token = strings.TrimSpace(tok); c.token == "" {
			c.malformed = "Authorization: want Bearer <token>"
		}
		c.present = true
		return c
	}
	q := r.URL.Query()
	if t := q.Get("token"); t != "" {
		c.token, c.present = t, true
		return c
	}
	if q.Has("exp") || q.Has("sig") {
		c.exp, c.sig, c.present = q.Get("exp"), q.Get("sig"), true
		return c
	}
	if _, _, _, ok := auth.SplitHostID(hostID); ok {
		c.present = true
	}
	return c
}

// verify checks c and that its grant covers every channel of channels
// that needs a token.
func (a *Authz) verify(c credential, channels []string, now time.Time) (auth.Grant, error) {
	v := a.Verifier
	if v == nil {
		v = unconfigured
	}
	var g auth.Grant
	var err error
	switch {
	case c.malformed != "":
		return g, &auth.Error{Check: auth.CheckMalformed, Err: errors.New(c.malformed)}
	case c.token != "":
		g, err = v.Verify(c.token, now)
	case c.exp != "" || c.sig != "":
		g, err = v.VerifyURL(c.path, c.exp, c.sig, now)
	case c.present:
		g, err = v.VerifyHostID(c.hostID, channels, now)
	default:
		return g, &auth.Error{Check: auth.CheckMissing, Err: auth.ErrMissing}
	}
	if err != nil {
		return g, err
	}
	if !g.Expiry.IsZero() {
		// The connection lives as long as its credential verifies: a
		// handshake inside the leeway must not be followed by a close,
		// or a refused subscribe, at once.
		g.Expiry = g.Expiry.Add(v.Leeway())
	}
	for _, ch := range channels {
		if a.Required(ch) {
			if err := g.Authorize(ch); err != nil {
				return g, err
			}
		}
	}
	return g, nil
}

// authorize checks that r may subscribe to channels: when one of them
// needs a token, r must present one that grants each such channel. It
// answers a refusal itself (401 or 403, with the reason) and reports false
// then; otherwise it returns the grant (the zero Grant when no channel
// needed a token). hostID is a 1.06 subscription's hostid.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, set *Settings, transport, hostID string, channels []string) (auth.Grant, bool) {
	if !set.Auth.required(channels) {
		return auth.Grant{}, true
	}
	g, err := set.Auth.verify(requestCredential(r, hostID), channels, time.Now())
	if err == nil {
		return g, true
	}
	s.authRefused(w, r, set, transport, err)
	return auth.Grant{}, false
}

// authError returns err as an *auth.Error.
func authError(err error) *auth.Error {
	var ae *auth.Error
	if !errors.As(err, &ae) {
		ae = &auth.Error{Check: auth.CheckMalformed, Err: err}
	}
	return ae
}

// authRefused answers, logs and counts a subscription refused for its
// credential.
func (s *Server) authRefused(w http.ResponseWriter, r *http.Request, set *Settings, transport string, err error) {
	ae := authError(err)
	s.stats.Inc(stats.ErrorsServed)
	s.Metrics.AuthRefused(ae.Check)
	s.authLog.Log(s.log, slog.LevelInfo, "subscription refused", "ip", remoteIP(r), "transport", transport,
		"status", ae.Status(), "check", ae.Check, "err", ae.Error(), "uri", logx.URI(r.RequestURI))
	s.reply(w, authResponse(ae, corsHeader(set, r)), set.WriteTimeout)
}

// authResponse is the raw 401 or 403 of a refused credential: a JSON body
// {"error": ..., "reason": <check>} the client can read (and a page on a
// CORSOrigins origin too), and the WWW-Authenticate challenge of RFC 6750.
func authResponse(ae *auth.Error, cors []byte) []byte {
	status := ae.Status()
	body := make([]byte, 0, 128)
	body = append(body, `{"error":"`...)
	body = tmpl.JSONString(body, ae.Error())
	body = append(body, `","reason":"`...)
	body = tmpl.JSONString(body, ae.Check)
	body = append(body, "\"}\n"...)
	code := "invalid_token"
	if status == http.StatusForbidden {
		code = "insufficient_scope"
	}
	b := make([]byte, 0, 320+len(cors)+len(body))
	b = append(b, "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	b = append(b, http.StatusText(status)...)
	b = append(b, "\r\nServer: "+ServerName+"\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"...)
	b = append(b, `WWW-Authenticate: Bearer realm="meteor"`...)
	if ae.Check != auth.CheckMissing {
		// RFC 6750, section 3.1: no error code when the request had no
		// credential at all.
		b = append(b, `, error="`...)
		b = append(b, code...)
		b = append(b, `", error_description="`...)
		b = append(b, ae.Check...)
		b = append(b, '"')
	}
	b = append(b, "\r\n"...)
	b = append(b, cors...)
	b = append(b, "Content-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nConnection: close\r\n\r\n"...)
	return append(b, body...)
}

// setExpiry makes the ticker end c with reason.TokenExpired once g
// expires (never for the zero Grant).
func setExpiry(c conn, g auth.Grant) {
	if !g.Expiry.IsZero() {
		c.reg().expires.Store(expirySecond(g.Expiry))
	}
}

// wallEpoch is the Unix second expiries count from: a token's exp is a
// wall-clock time, so it is compared with the wall clock (never the
// monotonic one, which a clock step or a suspend would shift against it).
var wallEpoch = time.Now().Unix() - 1

// expirySecond is t as Unix seconds after wallEpoch, at least 1 (0 means
// never) and at most what an int32 holds (68 years).
func expirySecond(t time.Time) int32 {
	return int32(min(max(t.Unix()-wallEpoch, 1), math.MaxInt32))
}

// expired reports whether c's token has expired at now, and, when so,
// closes it with reason.TokenExpired and says so in the log and metrics.
// A refresh that replaced the expiry meanwhile wins.
func (s *Server) expired(c conn, now time.Time) bool {
	e := c.reg().expires.Load()
	if e == 0 || now.Unix()-wallEpoch < int64(e) {
		return false
	}
	if !c.reg().expires.CompareAndSwap(e, 0) {
		return false
	}
	s.Metrics.AuthRefused(auth.CheckExpired)
	s.authLog.Log(s.log, slog.LevelInfo, "token expired: connection closed", "ip", c.remote(), "reason", reason.TokenExpired.String())
	c.shutdown(reason.TokenExpired)
	return true
}

// subAttr is the log attribute of a token's subject, none without one (a
// 1.06 record keeps its fields).
func subAttr(sub string) slog.Attr {
	if sub == "" {
		return slog.Attr{}
	}
	return slog.String("sub", sub)
}

// Package api is the HTTP API listener: publish over HTTP, read channels
// and statistics, clear a channel's history or close its subscribers, and
// the operational endpoints /metrics, /healthz and /readyz. It speaks JSON
// in and out; every error is a JSON object {"error":"<reason>"} with a 4xx
// or 5xx status.
//
// The listener is separate from the subscriber port so that it can stay on
// loopback, or behind a bearer token, while browsers reach the subscriber
// port from anywhere.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/meteorpush/meteor/internal/auth"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/logx"
	"github.com/meteorpush/meteor/internal/metrics"
	"github.com/meteorpush/meteor/internal/ratelimit"
	"github.com/meteorpush/meteor/internal/rawhttp"
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/stats"
)

// ErrTokenRequired reports an API listener bound to an address other than
// loopback without an APIToken: anyone who can reach it could publish to
// every channel and close every subscriber.
var ErrTokenRequired = errors.New("api: APIToken is required when AdminIP is not a loopback address")

// Limits are the settings that a configuration reload may change.
type Limits struct {
	// MaxHistory is the most messages GET /api/channels/{channel} returns:
	// MaxMessagesPerChannel, since no channel holds more.
	MaxHistory int
	// PublishTimeout bounds a publish's engine call (PublishTimeout); 0
	// means 5 seconds.
	PublishTimeout time.Duration
	// AccessLog logs an "access" line at info per request (AccessLog).
	AccessLog bool
}

// Options configure a Server.
type Options struct {
	Hub     *hub.Hub
	Stats   *stats.Stats
	Metrics *metrics.Metrics // may be nil
	Logger  *slog.Logger     // nil: slog.Default()

	// IP is the address the listener binds to (AdminIP); it decides
	// whether Token is required.
	IP string
	// Token is the bearer token every call but /healthz and /readyz must
	// present; "" requires none, which New allows only on loopback.
	Token string
	// Keys are the API keys of APIKeysFile (nil: none). With keys, a
	// credential is required even when Token is empty; Token stays the
	// key that may do everything.
	Keys *Keys
	// Verifier checks a bearer token that is neither Token nor a key as a
	// JWT, which may publish to the channels of its publish claim and do
	// nothing else; nil: no JWTs. SetVerifier changes it.
	Verifier *auth.Verifier
	// CredentialRate holds the PublishRatePerCredential buckets, one per
	// credential (the APIToken, each key, each JWT sub), shared with the
	// controller; nil: no limit.
	CredentialRate *ratelimit.Buckets

	Limits Limits
	// Origins is the CORSOrigins setting: browser origins allowed to call
	// the API. DashboardPort is the subscriber port, whose pages reached
	// through loopback (the dashboard) are allowed too; 0: none.
	Origins       string
	DashboardPort int
	// ReadHeaderTimeout bounds the time to receive a request's header,
	// MaxHeaderBytes its size.
	ReadHeaderTimeout time.Duration
	MaxHeaderBytes    int
}

// Server serves the HTTP API.
type Server struct {
	hub   *hub.Hub
	stats *stats.Stats
	met   *metrics.Metrics
	log   *slog.Logger
	token [sha256.Size]byte // sha256 of the token, compared in constant time
	auth  bool              // a token is required
	keys  atomic.Pointer[Keys]
	// verifier checks publishing JWTs; nil: none accepted.
	verifier atomic.Pointer[auth.Verifier]
	// rate is PublishRatePerCredential's buckets (nil: no limit).
	rate *ratelimit.Buckets
	// authLog keeps the log of refused credentials to a line a second,
	// rateLog that of publishes refused by rate.
	authLog logx.Limiter
	rateLog logx.Limiter
	// originLog keeps the log of requests refused for their Origin, which
	// any client can send in a loop, to one line a second.
	originLog logx.Limiter
	limits    atomic.Pointer[Limits]
	ready     atomic.Bool
	// engineLog keeps the log of failed engine calls, which a failing
	// store makes for every request at once, to one line a second.
	engineLog logx.Limiter
	mux       *http.ServeMux
	httpSrv   *http.Server

	origins       string
	dashboardPort atomic.Int64
}

// New returns an API server. It fails with ErrTokenRequired when opts.IP is
// not loopback and opts.Token is empty.
func New(opts Options) (*Server, error) {
	if opts.Token == "" && opts.Keys.Len() == 0 && !Loopback(opts.IP) {
		ip := opts.IP
		if ip == "" || ip == "*" {
			ip = "every interface"
		}
		return nil, fmt.Errorf("%w: AdminIP is %s and APIToken is empty; set APIToken or APIKeysFile, set AdminIP to 127.0.0.1, or turn the API off with AdminAPI 0", ErrTokenRequired, ip)
	}
	s := &Server{
		hub:   opts.Hub,
		stats: opts.Stats,
		met:   opts.Metrics,
		log:   opts.Logger,
		auth:  opts.Token != "" || opts.Keys != nil,
		rate:  opts.CredentialRate,
		mux:   http.NewServeMux(),

		origins: opts.Origins,
	}
	s.dashboardPort.Store(int64(opts.DashboardPort))
	s.keys.Store(opts.Keys)
	s.verifier.Store(opts.Verifier)
	if opts.Token != "" {
		s.token = sha256.Sum256([]byte(opts.Token)) // zero: no APIToken
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.SetLimits(opts.Limits)
	s.routes()
	s.httpSrv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		// A publisher has this long to send its body and read the reply;
		// nothing here streams.
		ReadTimeout:    time.Minute,
		WriteTimeout:   time.Minute,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: opts.MaxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	return s, nil
}

// Loopback reports whether ip (an AdminIP setting) binds to loopback only:
// a loopback address or "localhost". "", "*" and host names other than
// localhost are not.
func Loopback(ip string) bool {
	if strings.EqualFold(ip, "localhost") {
		return true
	}
	a := net.ParseIP(strings.Trim(ip, "[]"))
	return a != nil && a.IsLoopback()
}

// SetLimits changes the limits; they apply to the next request.
func (s *Server) SetLimits(l Limits) {
	s.limits.Store(&l)
}

// SetDashboardPort changes the subscriber port whose loopback pages may
// call the API (the dashboard); 0 trusts none. It applies to the next
// request.
func (s *Server) SetDashboardPort(port int) { s.dashboardPort.Store(int64(port)) }

// SetKeys replaces the API keys (a reload of APIKeysFile); they apply to
// the next request. Whether a credential is required is decided by New.
func (s *Server) SetKeys(ks *Keys) { s.keys.Store(ks) }

// SetVerifier replaces the verifier of publishing JWTs (a reload of the JWT
// settings); nil accepts none. It applies to the next request.
func (s *Server) SetVerifier(v *auth.Verifier) { s.verifier.Store(v) }

// SetReady sets what /readyz reports: 200 while ready, 503 otherwise. The
// server starts not ready.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Serve serves the API on ln until Shutdown or Close. It returns nil after
// those.
func (s *Server) Serve(ln net.Listener) error {
	if err := s.httpSrv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown marks the server not ready, stops accepting and waits for the
// requests in progress. When ctx ends first it closes every connection and
// returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.SetReady(false)
	err := s.httpSrv.Shutdown(ctx)
	if err != nil {
		s.httpSrv.Close()
	}
	return err
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", s.healthz)
	m.HandleFunc("GET /readyz", s.readyz)
	// Each route says the scope an API key needs for it (keys.go); the
	// APIToken may do everything.
	m.HandleFunc("GET /metrics", s.scoped(ScopeAdmin, s.met.Handler().ServeHTTP))

	m.HandleFunc("POST /api/channels/{channel}/messages", s.scoped(ScopePublish, s.publishOne))
	m.HandleFunc("DELETE /api/channels/{channel}/messages", s.scoped(ScopeAdmin, s.clearChannel))
	m.HandleFunc("POST /api/channels/{channel}/close", s.scoped(ScopeAdmin, s.closeChannel))
	m.HandleFunc("GET /api/channels/{channel}", s.scoped(ScopeRead, s.channel))
	m.HandleFunc("GET /api/channels/{channel}/subscribers", s.scoped(ScopeRead, s.subscribers))
	m.HandleFunc("GET /api/channels", s.scoped(ScopeRead, s.channels))
	m.HandleFunc("POST /api/publish", s.scoped(ScopePublish, s.publishBatch))
	m.HandleFunc("GET /api/stats", s.scoped(ScopeAdmin, s.statsHandler))

	// Go's profiles, for finding where time and memory go in production,
	// behind the same credentials as the rest of the API.
	m.HandleFunc("GET /debug/pprof/", s.scoped(ScopeAdmin, pprof.Index))
	m.HandleFunc("GET /debug/pprof/cmdline", s.scoped(ScopeAdmin, pprof.Cmdline))
	m.HandleFunc("GET /debug/pprof/profile", s.scoped(ScopeAdmin, pprof.Profile))
	m.HandleFunc("GET /debug/pprof/symbol", s.scoped(ScopeAdmin, pprof.Symbol))
	m.HandleFunc("GET /debug/pprof/trace", s.scoped(ScopeAdmin, pprof.Trace))
}

// ServeHTTP checks the credentials and routes the request. Unknown paths and
// methods get JSON errors like every other refusal. With AccessLog, every
// request gets an access line once answered.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.limits.Load().AccessLog {
		aw := &accessWriter{ResponseWriter: w}
		start := time.Now()
		defer func() {
			if aw.status == 0 {
				aw.status = http.StatusOK
			}
			ip, _, _ := net.SplitHostPort(r.RemoteAddr)
			key := "-" // the APIToken, or none asked for
			if c := requestCredential(r); c != nil && c.key != nil {
				key = c.key.Name
			} else if c != nil && c.grant != nil {
				key = c.name
			}
			s.log.Info("access", "ip", ip, "method", r.Method, "uri", logx.URI(r.URL.RequestURI()),
				"status", aw.status, "bytes", aw.bytes, "ms", time.Since(start).Milliseconds(),
				"key", key, "useragent", r.UserAgent())
		}()
		w = aw
	}
	if r.URL.Path != "/healthz" && r.URL.Path != "/readyz" && !s.browserGuard(w, r) {
		return
	}
	if why := rawhttp.CheckQuery(r.URL.RawQuery); why != "" {
		writeError(w, http.StatusBadRequest, why)
		return
	}
	if s.auth && r.URL.Path != "/healthz" && r.URL.Path != "/readyz" {
		var ok bool
		if r, ok = s.authorized(w, r); !ok {
			return
		}
	}
	if h, pattern := s.mux.Handler(r); pattern == "" {
		s.unrouted(w, r, h)
		return
	}
	s.mux.ServeHTTP(w, r)
}

// authorized reports whether r carries the APIToken, an API key or a
// publishing JWT, and answers 401 when it carries none (403 for a valid
// JWT without a publish claim). It returns r carrying the credential it
// found (requestCredential).
func (s *Server) authorized(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, _ := strings.Cut(h, " ")
	tok = strings.TrimSpace(tok)
	if !strings.EqualFold(scheme, "Bearer") || tok == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="meteor"`)
		writeError(w, http.StatusUnauthorized, "missing bearer token")
		return r, false
	}
	// Hashing first makes the comparison's time independent of the
	// token's length too; a key is found by its hash, which says nothing
	// of the secrets.
	got := sha256.Sum256([]byte(tok))
	if s.token != ([sha256.Size]byte{}) && subtle.ConstantTimeCompare(got[:], s.token[:]) == 1 {
		return withCredential(r, apiTokenCredential), true
	}
	if k := s.keys.Load().lookup(got); k != nil {
		return withCredential(r, &credential{name: "key " + k.Name, key: k}), true
	}
	if v := s.verifier.Load(); v != nil && jwtShaped(tok) {
		return s.verifyJWT(w, r, v, tok)
	}
	s.authLog.Log(s.log, slog.LevelInfo, "api: wrong token", "ip", r.RemoteAddr, "path", r.URL.Path)
	w.Header().Set("WWW-Authenticate", `Bearer realm="meteor", error="invalid_token"`)
	writeError(w, http.StatusUnauthorized, "wrong token")
	return r, false
}

// unrouted answers a request that no pattern matches, with the status that
// h, the mux's answer, gives (404, 405 with Allow, or a redirect to the
// clean path) and a JSON body.
func (s *Server) unrouted(w http.ResponseWriter, r *http.Request, h http.Handler) {
	rec := &headerRecorder{header: make(http.Header)}
	h.ServeHTTP(rec, r)
	for _, k := range []string{"Allow", "Location"} {
		if v := rec.header.Get(k); v != "" {
			w.Header().Set(k, v)
		}
	}
	switch {
	case rec.status == http.StatusMethodNotAllowed:
		writeError(w, rec.status, fmt.Sprintf("method %s not allowed; allowed: %s", r.Method, rec.header.Get("Allow")))
	case rec.status >= 300 && rec.status < 400:
		w.WriteHeader(rec.status)
	default:
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	}
}

// headerRecorder keeps the status and header of the mux's own answer and
// drops its plain-text body.
type headerRecorder struct {
	header http.Header
	status int
}

func (r *headerRecorder) Header() http.Header { return r.header }
func (r *headerRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *headerRecorder) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return len(p), nil
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready"})
		return
	}
	if hc, ok := s.hub.Engine().(engine.HealthChecker); ok {
		ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
		err := hc.Ready(ctx)
		cancel()
		if err != nil {
			s.engineLog.Warn(s.log, "not ready: the engine", "err", err)
			w.Header().Set("Retry-After", strconv.Itoa(engine.RetryAfter()))
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "not ready", "reason": reason.StoreUnavailable.String()})
			return
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// readyTimeout bounds the engine's health check of one /readyz.
const readyTimeout = 2 * time.Second

// writeJSON writes v as the JSON response body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"cannot encode the response"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// apiError is the body of every error response.
type apiError struct {
	Error string `json:"error"`
}

// writeError writes {"error":reason} with the given status.
func writeError(w http.ResponseWriter, status int, reason string) {
	writeJSON(w, status, apiError{Error: reason})
}

// accessWriter counts what a response wrote, for its access line.
type accessWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *accessWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *accessWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap gives http.ResponseController the connection's own writer, so
// that a profile's flushes and deadlines still work.
func (w *accessWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Package subscriber is the subscriber listener: it reads each HTTP request,
// routes subscription URLs to their transport, answers /disconnect/<hostid>
// and static files, and owns every subscriber connection until it closes:
// pings, MaxTime, hostid replacement and shutdown.
package subscriber

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/logx"
	"github.com/meteorpush/meteor/internal/metrics"
	"github.com/meteorpush/meteor/internal/outq"
	"github.com/meteorpush/meteor/internal/rawhttp"
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/stats"
	"github.com/meteorpush/meteor/internal/wire"
)

// ServerName is what ~server~ renders as.
const ServerName = "meteord"

// Settings are the parts of the configuration that a reload may change.
// A Settings value is never modified once in use.
type Settings struct {
	Prefix       string // SubscriberDynamicPageAddress
	Modes        map[string]*wire.LegacyMode
	Default      *wire.LegacyMode
	MaxChannels  int
	WriteTimeout time.Duration
	MaxPending   int
	Heartbeat    time.Duration // HeartbeatInterval (SSE, NDJSON, WebSocket); 0: none
	CORSOrigins  string        // CORSOrigins as configured: "" same origin only, "*" any
	SSERetry     time.Duration // SSERetry, the SSE reconnection hint; 0: none
	PollTimeout  time.Duration // LongPollTimeout, the longest a JSON long-poll is held
	NoDelay      bool          // SubscriberNoDelay: TCP_NODELAY on subscriber connections
	// SubscribeTimeout bounds the engine calls of one subscription.
	SubscribeTimeout time.Duration
	docs             *documents
	builtin          bool // BuiltinFiles: also ServerInfoPath
	// PerIP are the per-address limits (MaxConnectionsPerIP,
	// ConnectionRatePerIP, ConnectionBurstPerIP).
	PerIP PerIPLimits
	// Auth is who may subscribe to what (SubscriberAuth); the server sets
	// it after NewSettings, with the Verifier of the configuration's keys.
	Auth Authz
}

// NewSettings compiles cfg's subscriber settings. builtin, when not nil, is
// served beneath the document root.
func NewSettings(cfg *config.Config, builtin fs.FS) (*Settings, error) {
	s := &Settings{
		Prefix:       strings.TrimRight(cfg.SubscriberDynamicPageAddress, "/"),
		Modes:        make(map[string]*wire.LegacyMode),
		MaxChannels:  cfg.MaxChannelsPerRequest,
		WriteTimeout: time.Duration(cfg.SubscriberWriteTimeout) * time.Second,
		MaxPending:   cfg.MaxPendingBytes,
		NoDelay:      cfg.SubscriberNoDelay,
		Heartbeat:    time.Duration(cfg.HeartbeatInterval) * time.Second,
		CORSOrigins:  cfg.CORSOrigins,
	}
	s.PerIP = PerIPLimits{MaxOpen: cfg.MaxConnectionsPerIP, Rate: float64(cfg.ConnectionRatePerIP), Burst: cfg.ConnectionBurstPerIP}
	s.SSERetry = time.Duration(cfg.SSERetry) * time.Millisecond
	s.PollTimeout = time.Duration(cfg.LongPollTimeout) * time.Second
	s.SubscribeTimeout = time.Duration(max(cfg.SubscribeTimeout, 1)) * time.Second
	var err error
	if s.Default, err = wire.NewLegacyMode(&cfg.Default); err != nil {
		return nil, err
	}
	for name, m := range cfg.Modes {
		if s.Modes[name], err = wire.NewLegacyMode(m); err != nil {
			return nil, fmt.Errorf("mode %s: %w", name, err)
		}
	}
	s.Auth.Required = authRequired(cfg)
	if !cfg.BuiltinFiles {
		builtin = nil
	}
	s.builtin = builtin != nil
	s.docs = newDocuments(cfg.SubscriberDocumentRoot, builtin, cfg.DirectoryIndex)
	return s, nil
}

// PublisherDocuments reports whether a browser could open publisher text,
// as it is, as a document of the subscriber origin when the listener is on
// port, and names the first mode (in name order; "" is the global mode)
// that would serve it: a mode with TextEncoding raw whose answer lacks
// wire.SandboxHeader, unless it is an HTTP/0.9 answer (no HTTP header, the
// flash mode) on a port other than 80 and 443, where browsers refuse those.
// A script in such a document would run with that origin's trust, so the
// HTTP API does not trust the dashboard's origin then (docs/security.md).
func (s *Settings) PublisherDocuments(port int) (mode string, ok bool) {
	exposes := func(m *wire.LegacyMode) bool {
		return !m.Sandboxed() && (!m.HTTP09() || port == 80 || port == 443)
	}
	if exposes(s.Default) {
		return "", true
	}
	for _, name := range slices.Sorted(maps.Keys(s.Modes)) {
		if exposes(s.Modes[name]) {
			return name, true
		}
	}
	return "", false
}

// mode returns the named mode, or the global one.
func (s *Settings) mode(name string) *wire.LegacyMode {
	if m := s.Modes[strings.ToLower(name)]; m != nil {
		return m
	}
	return s.Default
}

// Server is the subscriber listener.
type Server struct {
	hub   *hub.Hub
	stats *stats.Stats
	log   *slog.Logger
	// Metrics, when set before Serve, receives the transports' metrics.
	Metrics *metrics.Metrics

	settings atomic.Pointer[Settings]
	// listeners is what ServerInfo reports (SetListeners); nil: nothing
	// yet.
	listeners atomic.Pointer[Listeners]
	out       atomic.Pointer[outOptions] // of the latest settings used
	watcher   *outq.Watcher
	accept    rawhttp.Server // the accept loop
	group     sync.WaitGroup // flushers, close hooks, the ticker
	stop      chan struct{}
	stopOnce  sync.Once

	mu sync.Mutex
	// conns are the open hijacked subscriber connections, each knowing its
	// place (registered.slot); guarded by mu. A slice costs an idle
	// subscriber a third of what a map entry did, and the ticker walks it
	// without a copy of its own.
	conns  []conn
	byHost map[string]*client // guarded by mu; persistent legacy ones by hostid
	// storeLog keeps the log of failed engine calls, which a failing
	// store makes for every subscriber at once, to one line a second.
	storeLog logx.Limiter
	shutting bool // guarded by mu
	// stopReason is why connections are closed once shutting is set:
	// reason.ServerShutdown, or reason.ServerRestart for a drain (Drain).
	// Guarded by mu.
	stopReason reason.Reason

	// maxConns is the cap on open connections (MaxConnections); 0: none.
	maxConns atomic.Int64
	// fullLog keeps the log of connections refused at the cap to one
	// line a second.
	fullLog logx.Limiter
	// perIP holds the per-address counts and rate buckets.
	perIP perIP
	// limitLog keeps the log of requests refused by a per-address limit
	// to one line a second.
	limitLog logx.Limiter
	// authLog keeps the log of subscriptions refused for their token,
	// and of tokens that expired, to one line a second.
	authLog logx.Limiter
	// badLog keeps the log of refused requests (bad URLs, bad paths),
	// which one client can send in a loop, to one line a second.
	badLog logx.Limiter
}

// registered is what the Server keeps in each connection: its place in
// Server.conns, and what it counts in the subscriptions metric. Guarded by
// Server.mu.
type registered struct {
	slot int32 // index in Server.conns plus one; 0: not registered
	// subscribed is the number of channels counted in the subscriptions
	// metric (client and the stream transports; a wsConn counts its channels).
	subscribed int32
	// expires is when the connection's token expires, in whole seconds
	// after epoch, rounded up; 0: never. The ticker reads it; a
	// WebSocket auth op replaces it. 4 bytes, which the padding after
	// registered already held (TestIdleFootprint).
	expires atomic.Int32
}

// identity is how a connection keeps its client's address and its
// token's subject (who it is in the presence lists and the log) in one
// string, the address alone when there is no subject: a field of its own
// would cost every idle subscriber 16 bytes (TestIdleFootprint).
func identity(ip, subject string) string {
	if subject == "" {
		return ip
	}
	return ip + "\x00" + subject
}

// splitIdentity returns the address and the subject of an identity. An
// address never holds a NUL.
func splitIdentity(id string) (ip, subject string) {
	ip, subject, _ = strings.Cut(id, "\x00")
	return ip, subject
}

func (r *registered) reg() *registered { return r }

// addLocked registers c. The caller holds s.mu.
func (s *Server) addLocked(c conn) {
	s.conns = append(s.conns, c)
	c.reg().slot = int32(len(s.conns))
	s.perIP.opened(c.remote())
}

// removeLocked unregisters c, and reports whether it was registered. The
// last connection takes its place. The caller holds s.mu.
func (s *Server) removeLocked(c conn) bool {
	r := c.reg()
	if r.slot == 0 {
		return false
	}
	i, last := int(r.slot)-1, len(s.conns)-1
	if i != last {
		s.conns[i] = s.conns[last]
		s.conns[i].reg().slot = r.slot
	}
	s.conns[last] = nil
	s.conns = s.conns[:last]
	r.slot = 0
	s.perIP.closed(c.remote())
	if c := cap(s.conns); c > 1024 && len(s.conns) < c/4 {
		// Most have left: give the burst's array back.
		s.conns = append(make([]conn, 0, 2*len(s.conns)), s.conns...)
	}
	return true
}

// outOptions are the outq.Options that every connection opened under one
// Settings shares: a connection keeps a pointer to them rather than a copy
// and a close hook of its own.
type outOptions struct {
	set     *Settings
	watched outq.Options // hang-ups seen by the Watcher
	read    outq.Options // the same, and input read on readiness (WebSocket)
}

// outOptions returns the shared outq.Options for set.
func (s *Server) outOptions(set *Settings) *outOptions {
	if o := s.out.Load(); o != nil && o.set == set {
		return o
	}
	o := &outOptions{set: set}
	o.watched = outq.Options{
		Limit:        set.MaxPending,
		Timeout:      set.WriteTimeout,
		Group:        &s.group,
		OnOwnerClose: s.connClosed,
		Watcher:      s.watcher,
	}
	o.read = o.watched
	o.read.OnReadable = s.wsReadable
	s.out.Store(o)
	return o
}

// openOut makes the output queue of a hijacked connection owned by owner,
// watched for hang-ups by s.watcher (and, when read is set, for input,
// which the owner reads on readiness), and records it on w for the
// accept loop's panic recovery.
func (s *Server) openOut(w http.ResponseWriter, nc net.Conn, set *Settings, owner conn, read bool) *outq.Conn {
	o := s.outOptions(set)
	opts := &o.watched
	if read {
		opts = &o.read
	}
	q := outq.Open(nc, opts, owner)
	rawhttp.SetOutput(w, q)
	if testHookOpened != nil {
		testHookOpened(owner, q)
	}
	return q
}

// testHookOpened, when set by a test, runs once a route has made a
// connection's output queue.
var testHookOpened func(conn, *outq.Conn)

// connClosed runs once when the connection of owner has closed.
func (s *Server) connClosed(owner any, reason reason.Reason, written int64) {
	switch c := owner.(type) {
	case *client:
		s.closed(c, reason, written)
	case streamer:
		s.streamClosed(c, reason, written)
	case *wsConn:
		s.wsClosed(c, reason, written)
	}
}

// epoch is the origin of instants.
var epoch = time.Now()

// instant is a time as nanoseconds since epoch, on the monotonic clock: 8
// bytes where a time.Time takes 24, for the times that every idle
// connection keeps.
type instant int64

// instantOf returns t as an instant.
func instantOf(t time.Time) instant { return instant(t.Sub(epoch)) }

// since returns the time elapsed since i.
func since(i instant) time.Duration { return time.Duration(instantOf(time.Now()) - i) }

// connID returns the id in presence lists of a connection without a
// hostid that opened at start: "conn-<start>", which no hostid
// ([0-9A-Za-z]+) can be. Two connections of a node would have to open in
// the same nanosecond to share one; an id costs an idle connection no
// memory (TestIdleFootprint).
func connID(start instant) string { return "conn-" + strconv.FormatInt(int64(start), 10) }

// conn is an open subscriber connection of any transport, owned by the
// Server from its hijacking until it closes.
type conn interface {
	// reg returns the connection's registration.
	reg() *registered
	// remote is the client's address (remoteIP), the key of the
	// per-address limits.
	remote() string
	// tick runs once a second on the ticker goroutine: pings, heartbeats,
	// MaxTime. It must not block.
	tick(now time.Time)
	// shutdown closes the connection with r (reason.ServerShutdown: the
	// transport's goodbye, a 1.06 mode's shutdown message; or
	// reason.ServerRestart: the close that makes the client come back
	// and resume) once its output is flushed. It must not block.
	shutdown(r reason.Reason)
	// abort closes the connection at once.
	abort()
}

// New returns a subscriber server with the given settings. requestTimeout
// bounds the wait for a request header; maxHeader its size.
func New(h *hub.Hub, st *stats.Stats, logger *slog.Logger, set *Settings, requestTimeout time.Duration, maxHeader int) (*Server, error) {
	w, err := outq.NewWatcher()
	if err != nil {
		return nil, err
	}
	s := &Server{
		hub:     h,
		stats:   st,
		log:     logger,
		watcher: w,
		stop:    make(chan struct{}),
		byHost:  make(map[string]*client),
	}
	s.accept = rawhttp.Server{
		Handler:        s,
		RequestTimeout: requestTimeout,
		MaxHeaderBytes: maxHeader,
		WriteTimeout:   func() time.Duration { return s.settings.Load().WriteTimeout },
		NoDelay:        func() bool { return s.settings.Load().NoDelay },
		ServerName:     ServerName,
		Name:           "subscriber",
		Log:            logger,
		OnAccept: func() {
			st.Inc(stats.SubscriberConnectionsAccepted)
			st.Inc(stats.CurrentSubscribers)
		},
		OnUnhijacked: func() { st.Dec(stats.CurrentSubscribers) },
		Admit:        s.admit,
		OnRefused:    s.refusedFull,
		Full:         fullResponse,
	}
	s.settings.Store(set)
	s.group.Add(1)
	go s.tick()
	return s, nil
}

// SetMaxConnections caps the open subscriber connections at n (0: no
// cap): the connection past it is refused at once, so that the client's
// retry may land on another process sharing the port. It is set before
// Serve (and may change at any time).
func (s *Server) SetMaxConnections(n int) {
	s.maxConns.Store(int64(max(n, 0)))
	s.Metrics.SetMaxConnections(n)
}

// admit reports whether one more connection is below the cap. The open
// connections are those counted in current_subscribers: every connection
// of the subscriber port from its accept until it closes, whatever it
// turned into. Only the accept loop adds to that count, right after
// admit, so one listener never passes the cap.
func (s *Server) admit() bool {
	n := s.maxConns.Load()
	return n <= 0 || s.stats.Get(stats.CurrentSubscribers) < n
}

// refusedFull counts and logs a connection refused at the cap.
func (s *Server) refusedFull(remote net.Addr) {
	s.Metrics.Refused()
	s.fullLog.Warn(s.log, "subscriber connection refused: MaxConnections reached", "max", s.maxConns.Load(), "remote", remote.String())
}

// fullResponse is the answer to a connection refused at the cap, written
// without reading its request.
var fullResponse = []byte("HTTP/1.1 503 Service Unavailable\r\nServer: " + ServerName +
	"\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: 15\r\nConnection: close\r\n\r\nmaxConnections\n")

// Reload replaces the settings. Open connections keep the mode they started
// with; the static file cache starts empty.
func (s *Server) Reload(set *Settings) { s.settings.Store(set) }

// Settings returns the settings in use.
func (s *Server) Settings() *Settings { return s.settings.Load() }

// ClearDocuments drops the static file cache.
func (s *Server) ClearDocuments() { s.settings.Load().docs.reset() }

// ServeHTTP routes one request. Every response is written raw on the
// hijacked connection, as Meteor 1.06 wrote it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.stats.Inc(stats.TotalRequests)
	set := s.settings.Load()
	p := r.URL.EscapedPath()
	if r.Method == http.MethodOptions && s.preflight(w, r, set) {
		return
	}
	if r.Method != http.MethodGet {
		s.fail(w, r, set.Default, "404 Not Found", "method "+r.Method)
		return
	}
	if limit, why := s.perIP.check(&set.PerIP, remoteIP(r), subscribes(set, p), time.Now()); limit != "" {
		s.limited(w, r, set, limit, why)
		return
	}
	switch {
	case strings.HasPrefix(p, "/sse/"):
		s.serveSSE(w, r, set, p[len("/sse/"):])
	case strings.HasPrefix(p, "/ndjson/"):
		s.serveNDJSON(w, r, set, p[len("/ndjson/"):])
	case strings.HasPrefix(p, "/poll/"):
		s.servePoll(w, r, set, p[len("/poll/"):])
	case p == "/ws":
		s.serveWebSocket(w, r, set)
	case set.Prefix != "" && strings.HasPrefix(p, set.Prefix+"/"):
		s.push(w, r, set, p[len(set.Prefix)+1:])
	case strings.HasPrefix(p, "/disconnect/"):
		s.disconnect(w, r, set, p[len("/disconnect/"):])
	case p == ServerInfoPath && set.builtin:
		s.serverInfo(w, r, set)
	default:
		s.document(w, r, set, p)
	}
}

// hijack takes the connection from the accept loop, clearing its
// deadlines.
func hijack(w http.ResponseWriter) (net.Conn, error) { return rawhttp.Take(w) }

// Serve accepts subscriber connections on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.accept.Serve(ln) }

// badRequestResponse is the whole 400 answer with why in plain text.
func badRequestResponse(why string) []byte { return rawhttp.BadRequest(ServerName, why) }

// reply writes b on the hijacked connection and closes it.
func (s *Server) reply(w http.ResponseWriter, b []byte, timeout time.Duration) {
	nc, err := hijack(w)
	if err != nil {
		return
	}
	defer s.stats.Dec(stats.CurrentSubscribers)
	nc.SetWriteDeadline(time.Now().Add(timeout))
	if n, err := nc.Write(b); err == nil {
		s.stats.Add(stats.TotalOutboundBytes, int64(n))
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	nc.Close()
}

// fail answers with a mode's header template and the given status, as
// Meteor 1.06 answered requests it did not understand.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, mode *wire.LegacyMode, status, why string) {
	s.stats.Inc(stats.ErrorsServed)
	s.log.Debug("request refused", "ip", remoteIP(r), "status", status, "reason", why, "uri", logx.URI(r.RequestURI))
	s.reply(w, mode.Header(status, ServerName, time.Now(), nil), s.settings.Load().WriteTimeout)
}

// badRequest answers a request that breaks a rule with a 400 and the reason
// in plain text.
func (s *Server) badRequest(w http.ResponseWriter, r *http.Request, why string) {
	s.stats.Inc(stats.ErrorsServed)
	s.badLog.Log(s.log, slog.LevelInfo, "bad request", "ip", remoteIP(r), "reason", why, "uri", logx.URI(r.RequestURI))
	s.reply(w, badRequestResponse(why), s.settings.Load().WriteTimeout)
}

func (s *Server) document(w http.ResponseWriter, r *http.Request, set *Settings, p string) {
	doc, err := set.docs.get(p)
	if err != nil {
		// Meteor 1.06 answered a path outside its rule (one that tries to
		// leave the document root among them) as it answered a missing
		// file; a drop-in server does the same, and logs why.
		s.stats.Inc(stats.DocumentsNotFound)
		s.badLog.Log(s.log, slog.LevelInfo, "document refused", "ip", remoteIP(r), "reason", "bad path: only letters, digits, '.', '_', '/' and '-', and never '..'", "uri", logx.URI(r.RequestURI), "status", 404)
		s.reply(w, documentHeader("404 Not Found", ServerName, "text/html", 0, nil), set.WriteTimeout)
		return
	}
	if doc == nil {
		s.stats.Inc(stats.DocumentsNotFound)
		s.log.Info("document", "path", p, "size", 0, "status", 404)
		s.reply(w, documentHeader("404 Not Found", ServerName, "text/html", 0, nil), set.WriteTimeout)
		return
	}
	s.stats.Inc(stats.DocumentsServed)
	s.log.Info("document", "path", p, "size", len(doc.body), "status", 200)
	// The origins of CORSOrigins may read the files too: a page there
	// imports the ES module client cross-origin, which browsers fetch in
	// CORS mode.
	b := documentHeader("200 OK", ServerName, doc.contentType, len(doc.body), corsHeader(set, r))
	s.reply(w, append(b, doc.body...), set.WriteTimeout)
}

// compactStrings copies the strings that ps point to into one new string,
// one after the other, with sep after each from the skip'th on, points
// each at its copy, and returns the whole string: what a connection keeps
// of its request is one small allocation, and the request line, header and
// remote address that the strings were cut from can be collected.
func compactStrings(sep string, skip int, ps ...*string) string {
	n := 0
	for i, p := range ps {
		n += len(*p)
		if i >= skip {
			n += len(sep)
		}
	}
	var b strings.Builder
	b.Grow(n)
	for i, p := range ps {
		b.WriteString(*p)
		if i >= skip {
			b.WriteString(sep)
		}
	}
	all := b.String()
	rest := all
	for i, p := range ps {
		*p, rest = rest[:len(*p)], rest[len(*p):]
		if i >= skip {
			rest = rest[len(sep):]
		}
	}
	return all
}

// startOf is the start id logged on joining: the first id asked for.
func startOf(q engine.Query, h engine.History) uint64 {
	switch q.Kind {
	case engine.QueryAfter:
		return q.After.ID + 1
	case engine.QueryAll:
		return h.Stream.First
	case engine.QueryLast:
		if n := len(h.Messages); n > 0 {
			return h.Messages[0].ID
		}
	}
	return h.Stream.Top() + 1
}

// register adds c to the open connections, unless shutdown has begun, and
// runs locked (with s.mu held) to find a connection c replaces.
func (s *Server) register(c conn, locked func() *client) bool {
	s.mu.Lock()
	if s.shutting {
		s.mu.Unlock()
		return false
	}
	s.addLocked(c)
	var old *client
	if locked != nil {
		old = locked()
	}
	s.mu.Unlock()
	if old != nil {
		old.Finish(old.Mode.Shutdown, reason.NewSubscriberWithSameID)
	}
	return true
}

// tickPeriod is how often the ticker runs each connection's tick.
const tickPeriod = time.Second

// tick pings persistent connections and enforces MaxTime, once a second.
// Each connection is pinged PingInterval after its own start, so pings are
// spread over the interval rather than sent to everyone at once.
func (s *Server) tick() {
	defer s.group.Done()
	t := time.NewTicker(tickPeriod)
	defer t.Stop()
	batch := make([]conn, tickBatch)
	for n := 1; ; n++ {
		select {
		case <-s.stop:
			return
		case now := <-t.C:
			s.tickAll(now, batch)
			if n%10 == 0 {
				s.perIP.prune(now)
			}
		}
	}
}

// tickBatch is how many connections the ticker takes from Server.conns at
// a time, holding s.mu.
const tickBatch = 256

// tickAll runs every registered connection's tick, taking them in batches
// from the end of s.conns so that s.mu is not held during the ticks. A
// connection that leaves meanwhile moves the last one into its place: one
// already ticked may come back ahead of the walk and be ticked again, which
// a tick allows (what it sends is due once for a given now), and none is
// skipped.
func (s *Server) tickAll(now time.Time, batch []conn) {
	s.mu.Lock()
	for i := len(s.conns); i > 0; {
		n := 0
		for ; i > 0 && n < len(batch); i-- {
			batch[n] = s.conns[i-1]
			n++
		}
		s.mu.Unlock()
		for _, c := range batch[:n] {
			s.tickOne(c, now)
		}
		clear(batch[:n])
		s.mu.Lock()
		i = min(i, len(s.conns))
	}
	s.mu.Unlock()
}

// tickOne runs c's tick. A panic in it is logged and closes c alone, so
// that one connection's bug does not stop the pings of all the others or
// take the server down.
func (s *Server) tickOne(c conn, now time.Time) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in a connection's tick; that connection is closed", "panic", p, "stack", string(debug.Stack()))
			defer func() { recover() }()
			c.abort()
		}
	}()
	if s.expired(c, now) {
		return
	}
	c.tick(now)
}

// Shutdown stops accepting, closes the connections still sending their
// request, sends every persistent subscriber its mode's
// SubscriberShutdownMsg, and waits until their output is flushed or ctx
// ends, when it closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.stopWith(ctx, reason.ServerShutdown, 0)
}

// Drain is Shutdown for a restart, when other processes share the port
// (ReusePort): it stops accepting, then closes the open connections a few
// at a time, evenly over spread, with reason.ServerRestart, which tells
// every client to come back and resume where it stood (a WebSocket's
// 1012, the close event of SSE and NDJSON, the long-poll's answer); a 1.06
// template stream just ends, without its shutdown message (eof() would
// stop the page for good), so that the page reconnects as after any
// ended response. Then it waits until their output is flushed or ctx
// ends, when it closes what is left. When ctx ends during the spread, the
// rest are closed at once.
func (s *Server) Drain(ctx context.Context, spread time.Duration) error {
	return s.stopWith(ctx, reason.ServerRestart, spread)
}

// stoppingReason returns why connections are closed once shutdown began.
func (s *Server) stoppingReason() reason.Reason {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopReason == reason.None {
		return reason.ServerShutdown
	}
	return s.stopReason
}

// stopWith is Shutdown (r reason.ServerShutdown, no spread) and Drain.
// The first of them to run decides the reason.
func (s *Server) stopWith(ctx context.Context, r reason.Reason, spread time.Duration) error {
	s.mu.Lock()
	s.shutting = true
	if s.stopReason == reason.None {
		s.stopReason = r
	}
	r = s.stopReason
	s.mu.Unlock()
	s.accept.Stop()
	hctx, cancel := context.WithTimeout(ctx, time.Second)
	s.accept.Wait(hctx)
	cancel()

	s.mu.Lock()
	open := slices.Clone(s.conns)
	s.mu.Unlock()
	closeSpread(ctx, open, r, spread)
	err := s.waitEmpty(ctx)
	if err != nil {
		s.mu.Lock()
		open = append(open[:0], s.conns...)
		s.mu.Unlock()
		for _, c := range open {
			c.abort()
		}
	}
	s.stopOnce.Do(func() { close(s.stop) })
	s.group.Wait()
	s.watcher.Close()
	return err
}

// drainTick is how often a drain closes the connections that are due.
const drainTick = 20 * time.Millisecond

// closeSpread shuts down open with r: the k-th of n no earlier than k/n of
// spread from now, so that their clients come back to the other processes
// a few at a time rather than all in one second; all at once when spread
// is 0 or ctx ends.
func closeSpread(ctx context.Context, open []conn, r reason.Reason, spread time.Duration) {
	n := len(open)
	done := 0
	if spread > 0 && n > 1 {
		start := time.Now()
		t := time.NewTicker(drainTick)
		defer t.Stop()
	spreading:
		for {
			due := n
			if el := time.Since(start); el < spread {
				due = int(int64(n) * int64(el) / int64(spread))
			}
			for ; done < due; done++ {
				open[done].shutdown(r)
			}
			if done == n {
				break
			}
			select {
			case <-ctx.Done():
				break spreading // the rest at once
			case <-t.C:
			}
		}
	}
	for ; done < n; done++ {
		open[done].shutdown(r)
	}
}

func (s *Server) waitEmpty(ctx context.Context) error {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		s.mu.Lock()
		n := len(s.conns)
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("subscriber: %d connections not flushed: %w", n, ctx.Err())
		case <-t.C:
		}
	}
}

// Persistent returns the number of open persistent subscriber connections.
func (s *Server) Persistent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byHost)
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// Every transport's connection tells the presence lists who it is.
var (
	_ hub.Describer = (*client)(nil)
	_ hub.Describer = (*wsConn)(nil)
)

// Package server assembles meteord: the engine, the hub, the controller
// listener (TCP and UDP), the subscriber listener and the HTTP API
// listener, and runs their life cycle: start, reload, clear, shutdown.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meteorpush/meteor/internal/api"
	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/controller"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/memory"
	"github.com/meteorpush/meteor/internal/engine/redis"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/listen"
	"github.com/meteorpush/meteor/internal/logx"
	"github.com/meteorpush/meteor/internal/metrics"
	"github.com/meteorpush/meteor/internal/ratelimit"
	"github.com/meteorpush/meteor/internal/stats"
	"github.com/meteorpush/meteor/internal/subscriber"
)

// Server is one meteord process's worth of listeners around one hub.
type Server struct {
	log   *slog.Logger
	stats *stats.Stats
	hub   *hub.Hub
	eng   engine.Engine
	ctl   *controller.Server
	sub   *subscriber.Server
	met   *metrics.Metrics
	api   *api.Server // nil when AdminAPI is off
	// credRate holds the PublishRatePerCredential buckets that the API and
	// the controller share.
	credRate *ratelimit.Buckets

	mu     sync.Mutex
	cfg    *config.Config // guarded by mu
	ctlLn  net.Listener
	subLn  net.Listener
	udp    net.PacketConn
	apiLn  net.Listener
	serves sync.WaitGroup
	// resetLog keeps the log of the engine's resets to one line a second.
	resetLog logx.Limiter
	// presenceLog keeps the log of failed presence reports to one line a
	// second.
	presenceLog logx.Limiter

	// reusePort is ReusePort at Start (guarded by mu): the listeners share
	// their ports with other processes, and Shutdown drains for a restart.
	reusePort bool
	// started is the configuration Start opened the listeners with
	// (guarded by mu): a reload keeps their addresses.
	started *config.Config
}

// New builds a server from cfg, on the engine cfg chooses. It opens no
// socket: Start does.
func New(cfg *config.Config, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.Default()
	}
	eng, err := newEngine(cfg, logger)
	if err != nil {
		return nil, err
	}
	return NewOn(eng, cfg, logger)
}

// NewOn builds a server from cfg on eng, which it starts and closes: an
// engine chosen elsewhere, or one that injects faults in tests.
func NewOn(eng engine.Engine, cfg *config.Config, logger *slog.Logger) (*Server, error) {
	if logger == nil {
		logger = slog.Default()
	}
	s := &Server{log: logger, stats: stats.New(), cfg: cfg, met: metrics.New(), credRate: ratelimit.New(0, 0)}
	setCredentialRate(s.credRate, cfg)
	s.eng = eng
	s.hub = hub.New(s.eng, hub.Options{
		Node: nodeID(cfg),
		OnPanic: func(p any, stack []byte) {
			s.log.Error("panic in a subscriber's delivery; that subscriber is closed", "panic", p, "stack", string(stack))
		},
		OnReset: func(channels []string, cause error) {
			s.resetLog.Warn(s.log, "engine delivery reset; resynchronising from history", "channels", len(channels), "cause", cause)
		},
		OnControl: func(cmd engine.Command) { s.sub.HandleControl(cmd) },
		// Presence reports last PresenceTTL; a reload does not change it.
		PresenceTTL: time.Duration(cfg.PresenceTTL) * time.Second,
		OnPresenceError: func(err error) {
			s.presenceLog.Warn(s.log, "reporting this node's subscribers to the engine failed; the other nodes' counts of them may be stale", "err", err)
		},
		Metrics: s.met,
	})
	verifier, err := NewVerifier(cfg)
	if err != nil {
		return nil, err
	}
	listed, _ := presenceOf(cfg)
	s.hub.SetPresence(listed)
	s.hub.SetPolicy(policyFor(cfg))
	if cfg.AdminAPI {
		keys, err := loadKeys(cfg)
		if err != nil {
			return nil, err
		}
		a, err := api.New(api.Options{
			Hub: s.hub, Stats: s.stats, Metrics: s.met, Logger: logger,
			IP: cfg.AdminIP, Token: cfg.APIToken, Keys: keys, Limits: apiLimits(cfg),
			Verifier: verifier, CredentialRate: s.credRate,
			Origins: cfg.CORSOrigins, DashboardPort: cfg.SubscriberPort,
			ReadHeaderTimeout: time.Duration(cfg.RequestTimeout) * time.Second,
			MaxHeaderBytes:    cfg.MaxHeaderBytes,
		})
		if err != nil {
			return nil, err
		}
		s.api = a
	}
	set, err := subscriberSettings(cfg, verifier)
	if err != nil {
		return nil, err
	}
	s.sub, err = subscriber.New(s.hub, s.stats, logger, set,
		time.Duration(cfg.RequestTimeout)*time.Second, cfg.MaxHeaderBytes)
	if err != nil {
		return nil, err
	}
	s.sub.Metrics = s.met
	s.ctl = &controller.Server{
		Backend:     backend{s},
		Stats:       s.stats,
		Logger:      logger,
		MaxLine:     cfg.MaxControllerLine,
		ShutdownMsg: cfg.ControllerShutdownMsg,

		PublishTimeout: time.Duration(cfg.PublishTimeout) * time.Second,
		Token:          cfg.ControllerToken,
		IdleTimeout:    time.Duration(cfg.ControllerIdleTimeout) * time.Second,
		MaxConnections: cfg.MaxControllerConnections,
		CredentialRate: s.credRate,
		Metrics:        s.met,
	}
	registerControllerRefusals(s.met, s.ctl)
	// A scrape never lists the engine's channels (on a shared store that
	// is a scan): it counts those with subscribers here.
	s.met.GaugeFunc("meteor_channels", "Channels with subscribers on this node.", func() float64 {
		return float64(s.hub.LocalChannels())
	})
	s.met.CounterFunc("meteor_resyncs_total", "Channel resynchronisations from history after the engine reported that its delivery may have skipped messages.", func() float64 {
		return float64(s.hub.Resyncs())
	})
	s.met.CounterFunc("meteor_fanout_overflows_total", "Fan-out shards whose queue overflowed; their subscribers were closed as slow consumers.", func() float64 {
		return float64(s.hub.Overflows())
	})
	if re, ok := eng.(*redis.Engine); ok {
		registerRedis(s.met, re.Stats())
	}
	return s, nil
}

// registerControllerRefusals registers meteor_controller_refused_total,
// one series per kind of refusal.
func registerControllerRefusals(m *metrics.Metrics, ctl *controller.Server) {
	const help = "Controller refusals, by reason: auth (a line refused for want of the right AUTH token), idle (a connection closed by ControllerIdleTimeout), limit (a connection refused at MaxControllerConnections)."
	for reason, kind := range map[string]int{"auth": controller.RefusedAuth, "idle": controller.RefusedIdle, "limit": controller.RefusedLimit} {
		m.LabeledCounterFunc("meteor_controller_refused_total", help, map[string]string{"reason": reason},
			func() float64 { return float64(ctl.Refused(kind)) })
	}
}

// registerRedis registers the Redis engine's repair counters.
func registerRedis(m *metrics.Metrics, st *redis.Stats) {
	load := func(c *atomic.Uint64) func() float64 { return func() float64 { return float64(c.Load()) } }
	const catchUps = "Channel catch-ups of this node from the Redis stream, by what started them: a gap in the ids received (gap), a pub/sub connection made again (reconnect), the audit of quiet channels (audit)."
	m.LabeledCounterFunc("meteor_redis_catchups_total", catchUps, map[string]string{"cause": "gap"}, load(&st.CatchUpGap))
	m.LabeledCounterFunc("meteor_redis_catchups_total", catchUps, map[string]string{"cause": "reconnect"}, load(&st.CatchUpReconnect))
	m.LabeledCounterFunc("meteor_redis_catchups_total", catchUps, map[string]string{"cause": "audit"}, load(&st.CatchUpAudit))
	m.CounterFunc("meteor_redis_recovered_total", "Messages a catch-up delivered to this node that Redis pub/sub had not.", load(&st.Recovered))
	m.CounterFunc("meteor_redis_resets_total", "Channels whose missed messages were no longer in the Redis stream (trimmed, flushed, a new epoch): their subscribers were resynchronised and told of their gap.", load(&st.Resets))
	m.CounterFunc("meteor_redis_rollbacks_total", "Messages whose predecessor was older than the newest this node had delivered: Redis lost writes (a fail-over).", load(&st.Rollbacks))
	m.CounterFunc("meteor_redis_probe_failures_total", "Pub/sub connections replaced because their probe did not come back: open, but no longer receiving.", load(&st.ProbeFailures))
	m.CounterFunc("meteor_redis_reconnects_total", "Pub/sub connections to Redis made again after one was lost.", load(&st.Reconnects))
}

// loadKeys reads and parses APIKeysFile; nil when it is not set.
func loadKeys(cfg *config.Config) (*api.Keys, error) {
	if cfg.APIKeysFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(cfg.APIKeysFile)
	if err != nil {
		return nil, fmt.Errorf("APIKeysFile: %w", err)
	}
	keys, err := api.ParseKeys(b)
	if err != nil {
		return nil, fmt.Errorf("APIKeysFile %s: %w", cfg.APIKeysFile, err)
	}
	return keys, nil
}

// policyFor returns each channel's publish admission and conflation
// (hub.Policy) under cfg: the one place they are derived from the
// configuration, at start and on each reload.
func policyFor(cfg *config.Config) func(channel string) hub.Policy {
	// The empty name, which no channel has, bounds a batch's body before
	// its channels are read: the largest message any channel accepts.
	largest := cfg.MaxMessageBytes
	for _, ns := range cfg.Namespaces() {
		largest = max(largest, ns.MaxMessageBytes)
	}
	return func(ch string) hub.Policy {
		if ch == "" {
			return hub.Policy{MaxMessageBytes: largest}
		}
		ns := cfg.Namespace(ch)
		return hub.Policy{
			MaxMessageBytes:  ns.MaxMessageBytes,
			PublishRate:      ns.PublishRate,
			PublishBurst:     ns.PublishBurst,
			ConflateInterval: time.Duration(ns.ConflateInterval) * time.Millisecond,
		}
	}
}

func apiLimits(cfg *config.Config) api.Limits {
	return api.Limits{
		MaxHistory:     cfg.MaxMessagesPerChannel,
		PublishTimeout: time.Duration(cfg.PublishTimeout) * time.Second,
		AccessLog:      cfg.AccessLog,
	}
}

// newEngine returns the engine cfg chooses: the memory engine, or the
// Redis engine (a node of the cluster on cfg.RedisURL).
func newEngine(cfg *config.Config, logger *slog.Logger) (engine.Engine, error) {
	if cfg.Engine != "redis" {
		return memory.New(engineLimits(cfg)), nil
	}
	return redis.New(redis.Options{
		URL:      cfg.RedisURL,
		Prefix:   cfg.RedisPrefix,
		Node:     nodeID(cfg),
		Timeout:  time.Duration(cfg.RedisTimeout) * time.Millisecond,
		PoolSize: cfg.RedisPoolSize,
		Limits:   engineLimits(cfg),
		Logger:   logger,
	})
}

// engineLimits returns the engine's limits under cfg: each channel's from
// its namespace (config.Config.Namespace), when the configuration has
// namespaces.
func engineLimits(cfg *config.Config) engine.Limits {
	l := engine.Limits{
		MaxMessages: cfg.MaxMessagesPerChannel,
		MaxAge:      time.Duration(cfg.MaxMessageAge) * time.Second,
	}
	if len(cfg.Namespaces()) > 0 {
		l.Channel = func(channel string) (int, time.Duration) {
			n := cfg.Namespace(channel)
			return n.MaxMessagesPerChannel, time.Duration(n.MaxMessageAge) * time.Second
		}
	}
	return l
}

// presenceRule is presenceOf's rule alone.
func presenceRule(cfg *config.Config) string {
	_, rule := presenceOf(cfg)
	return rule
}

// presenceOf returns which channels' subscribers are listed under cfg
// (hub.SetPresence): nil for every channel, else those whose namespace
// has Presence 1. The rule is a description of it, the same for two
// configurations that list the same channels.
func presenceOf(cfg *config.Config) (listed func(channel string) bool, rule string) {
	rule = strconv.FormatBool(cfg.Presence)
	all := cfg.Presence
	for _, n := range cfg.Namespaces() {
		rule += " " + n.Pattern + "=" + strconv.FormatBool(n.Presence)
		all = all && n.Presence
	}
	if all {
		return nil, rule
	}
	return func(channel string) bool { return cfg.Namespace(channel).Presence }, rule
}

// nodeID names this process in the cluster (the commands it sends to
// other nodes, presence): NodeID, else the host name and the process id.
func nodeID(cfg *config.Config) string {
	if cfg.NodeID != "" {
		return cfg.NodeID
	}
	host, _ := os.Hostname()
	return host + "-" + strconv.Itoa(os.Getpid())
}

// engineStartTimeout bounds the engine's Start.
const engineStartTimeout = 30 * time.Second

// listenAddr joins an IP setting ("" or "*" for every interface) and a port.
func listenAddr(ip string, port int) string {
	if ip == "*" {
		ip = ""
	}
	return net.JoinHostPort(ip, strconv.Itoa(port))
}

// Start opens the listeners and serves them in the background. With
// ReusePort each listener joins the SO_REUSEPORT group of its address, so
// that other meteord processes (nodes of one shared engine) can serve the
// same ports; a configuration that Validate refuses (ReusePort with Engine
// memory) does not start.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	cfg := s.cfg
	if err := cfg.Validate(); err != nil {
		return err
	}
	s.started = cfg
	ctx := context.Background()
	rp := cfg.ReusePort
	s.reusePort = rp
	var err error
	if s.subLn, err = listen.TCP(ctx, listenAddr(cfg.SubscriberIP, cfg.SubscriberPort), rp); err != nil {
		return fmt.Errorf("subscriber listener: %w", err)
	}
	if s.ctlLn, err = listen.TCP(ctx, listenAddr(cfg.ControllerIP, cfg.ControllerPort), rp); err != nil {
		s.subLn.Close()
		return fmt.Errorf("controller listener: %w", err)
	}
	if cfg.UDPPort > 0 {
		if s.udp, err = listen.UDP(ctx, listenAddr(cfg.UDPIP, cfg.UDPPort), rp); err != nil {
			s.subLn.Close()
			s.ctlLn.Close()
			return fmt.Errorf("UDP listener: %w", err)
		}
	}
	if s.api != nil {
		if s.apiLn, err = listen.TCP(ctx, listenAddr(cfg.AdminIP, cfg.AdminPort), rp); err != nil {
			s.subLn.Close()
			s.ctlLn.Close()
			if s.udp != nil {
				s.udp.Close()
			}
			return fmt.Errorf("HTTP API listener: %w", err)
		}
	}
	maxConns := listen.MaxConnections(cfg.MaxConnections)
	s.sub.SetMaxConnections(maxConns)
	s.sub.SetListeners(s.listeners(cfg))
	// The fan-out workers run from before the first subscriber until
	// Shutdown has let the last one go; the engine delivers to the hub
	// from its Start on.
	s.hub.Start()
	ectx, cancel := context.WithTimeout(ctx, engineStartTimeout)
	err = s.eng.Start(ectx, s.hub)
	cancel()
	if err != nil {
		s.hub.Close()
		s.subLn.Close()
		s.ctlLn.Close()
		if s.udp != nil {
			s.udp.Close()
		}
		if s.apiLn != nil {
			s.apiLn.Close()
		}
		return fmt.Errorf("engine: %w", err)
	}
	s.serve("subscriber", func() error { return s.sub.Serve(s.subLn) })
	s.serve("controller", func() error { return s.ctl.Serve(s.ctlLn) })
	if s.udp != nil {
		s.serve("udp", func() error { return s.ctl.ServeUDP(s.udp) })
	}
	if s.api != nil {
		s.setDashboardPort(s.sub.Settings())
		s.serve("api", func() error { return s.api.Serve(s.apiLn) })
		s.api.SetReady(true)
	}
	s.log.Info("listening", "subscriber", s.subLn.Addr().String(), "controller", s.ctlLn.Addr().String(), "udp", addrOrOff(s.UDPAddr()), "api", addrOrOff(s.AdminAddr()),
		"reusePort", rp, "maxConnections", maxConns)
	return nil
}

// listeners describes the listeners Start opened to the dashboard
// (subscriber.ServerInfo): their settings and real ports. Called with mu
// held, after the listeners are open.
func (s *Server) listeners(cfg *config.Config) subscriber.Listeners {
	l := subscriber.Listeners{
		APIOn:          s.apiLn != nil,
		AdminIP:        cfg.AdminIP,
		APIToken:       cfg.APIToken != "" || cfg.APIKeysFile != "",
		ControllerIP:   cfg.ControllerIP,
		ControllerPort: s.ctlLn.Addr().(*net.TCPAddr).Port,
		UDPIP:          cfg.UDPIP,
		// The token a reload sets applies to new connections, but the
		// dashboard learns of it at the next restart.
		ControllerToken: cfg.ControllerToken != "",
	}
	if s.apiLn != nil {
		l.AdminPort = s.apiLn.Addr().(*net.TCPAddr).Port
	}
	if s.udp != nil {
		if a, ok := s.udp.LocalAddr().(*net.UDPAddr); ok {
			l.UDPPort = a.Port
		}
	}
	return l
}

func (s *Server) serve(name string, f func() error) {
	s.serves.Add(1)
	go func() {
		defer s.serves.Done()
		if err := f(); err != nil && !errors.Is(err, net.ErrClosed) {
			s.log.Error("listener stopped", "listener", name, "err", err)
		}
	}()
}

// SubscriberAddr returns the subscriber listener's address.
func (s *Server) SubscriberAddr() net.Addr { return s.subLn.Addr() }

// ControllerAddr returns the controller listener's address.
func (s *Server) ControllerAddr() net.Addr { return s.ctlLn.Addr() }

// UDPAddr returns the UDP listener's address, or nil when it is off.
func (s *Server) UDPAddr() net.Addr {
	if s.udp == nil {
		return nil
	}
	return s.udp.LocalAddr()
}

// addrOrOff is a listener's address for the start-up line, or "off" when
// that listener is not configured, the same in text and JSON logs.
func addrOrOff(a net.Addr) string {
	if a == nil {
		return "off"
	}
	return a.String()
}

// AdminAddr returns the HTTP API listener's address, or nil when it is off.
func (s *Server) AdminAddr() net.Addr {
	if s.apiLn == nil {
		return nil
	}
	return s.apiLn.Addr()
}

// Stats returns the server's counters.
func (s *Server) Stats() *stats.Stats { return s.stats }

// Metrics returns the server's metrics.
func (s *Server) Metrics() *metrics.Metrics { return s.met }

// config returns the configuration in use.
func (s *Server) config() *config.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// Engine returns the server's engine.
func (s *Server) Engine() engine.Engine { return s.eng }

// Hub returns the server's hub.
func (s *Server) Hub() *hub.Hub { return s.hub }

// setDashboardPort tells the API which subscriber port's pages reached
// through loopback (the dashboard) it trusts: the listener's real port
// (which differs from the setting when that is 0), unless set serves
// publisher text as a document of that origin
// (subscriber.Settings.PublisherDocuments): then none, since a published
// script would run with the dashboard's trust. It does nothing before
// Start or without the API.
func (s *Server) setDashboardPort(set *subscriber.Settings) {
	if s.api == nil || s.subLn == nil {
		return
	}
	port := s.subLn.Addr().(*net.TCPAddr).Port
	if mode, ok := set.PublisherDocuments(port); ok {
		if mode == "" {
			mode = "the global mode"
		} else {
			mode = "mode " + mode
		}
		s.log.Info("the HTTP API does not trust the dashboard's origin: "+mode+
			" sends message text raw, without the sandbox header, in answers a browser opens as pages of the subscriber port; list that origin in CORSOrigins to trust it anyway",
			"subscriberPort", port)
		port = 0
	}
	s.api.SetDashboardPort(port)
}

// Reload applies a new configuration without dropping a subscriber:
// templates and modes for new connections, history limits (each
// namespace's too), which channels' subscribers are listed, the channels'
// publish limits and conflation (policyFor), the static file cache,
// MaxConnections and DrainTime, the API keys, the JWT settings
// (JWTPublicKeyFile read again) and the per-credential publish rate.
// Listener addresses and ReusePort are kept: changing them needs a
// restart.
//
// A configuration that would leave a listener in use without its
// credential (a ControllerToken cleared while the controller listens off
// loopback) is refused, and the running one stays.
func (s *Server) Reload(cfg *config.Config) error {
	s.mu.Lock()
	started := s.started
	s.mu.Unlock()
	if started != nil {
		// The listeners keep their addresses until a restart: check the
		// new settings against those.
		eff := *cfg
		eff.ControllerIP, eff.UDPIP, eff.UDPPort = started.ControllerIP, started.UDPIP, started.UDPPort
		if err := eff.Validate(); err != nil {
			return fmt.Errorf("for the listeners in use: %w", err)
		}
	}
	verifier, err := NewVerifier(cfg)
	if err != nil {
		return err
	}
	set, err := subscriberSettings(cfg, verifier)
	if err != nil {
		return err
	}
	keys, err := loadKeys(cfg)
	if err != nil {
		return err
	}
	s.mu.Lock()
	old := s.cfg
	s.cfg = cfg
	s.mu.Unlock()
	if ls, ok := s.eng.(engine.LimitSetter); ok {
		ls.SetLimits(engineLimits(cfg))
	}
	// A change of which channels are listed makes the next presence
	// report a full one: set it only when it changed.
	if listed, rule := presenceOf(cfg); rule != presenceRule(old) {
		s.hub.SetPresence(listed)
	}
	s.sub.Reload(set)
	s.setDashboardPort(set)
	s.hub.SetPolicy(policyFor(cfg))
	if cfg.ControllerToken != old.ControllerToken {
		s.ctl.SetToken(cfg.ControllerToken)
		s.log.Info("controller token changed; it applies to new controller connections", "auth", cfg.ControllerToken != "")
	}
	s.ctl.SetIdleTimeout(time.Duration(cfg.ControllerIdleTimeout) * time.Second)
	s.ctl.SetMaxConnections(cfg.MaxControllerConnections)
	setCredentialRate(s.credRate, cfg)
	if cfg.MaxConnections != old.MaxConnections {
		n := listen.MaxConnections(cfg.MaxConnections)
		s.sub.SetMaxConnections(n)
		s.log.Info("subscriber connection cap changed", "maxConnections", n)
	}
	if s.api != nil {
		s.api.SetLimits(apiLimits(cfg))
		if keys != nil || old.APIKeysFile != "" {
			s.api.SetKeys(keys)
		}
		s.api.SetVerifier(verifier)
	}
	if listenAddr(old.SubscriberIP, old.SubscriberPort) != listenAddr(cfg.SubscriberIP, cfg.SubscriberPort) ||
		listenAddr(old.ControllerIP, old.ControllerPort) != listenAddr(cfg.ControllerIP, cfg.ControllerPort) ||
		old.UDPPort != cfg.UDPPort || old.UDPIP != cfg.UDPIP ||
		old.AdminAPI != cfg.AdminAPI || listenAddr(old.AdminIP, old.AdminPort) != listenAddr(cfg.AdminIP, cfg.AdminPort) ||
		old.APIToken != cfg.APIToken || old.ReusePort != cfg.ReusePort || (old.APIKeysFile == "") != (cfg.APIKeysFile == "") {
		s.log.Warn("listener addresses, ReusePort, the API token or whether there is an APIKeysFile changed in the configuration; they apply at the next restart (the keys of an APIKeysFile that stays set are reloaded, and a removed APIKeysFile's keys stop working at once)")
	}
	if old.Engine != cfg.Engine || old.RedisURL != cfg.RedisURL || old.RedisPrefix != cfg.RedisPrefix ||
		old.NodeID != cfg.NodeID || old.RedisTimeout != cfg.RedisTimeout || old.RedisPoolSize != cfg.RedisPoolSize {
		s.log.Warn("the engine's settings changed in the configuration (Engine, RedisURL, RedisPrefix, NodeID, RedisTimeout, RedisPoolSize); they apply at the next restart")
	}
	s.log.Info("configuration reloaded")
	return nil
}

// ClearHistories drops every channel's stored messages (SIGUSR1).
func (s *Server) ClearHistories() {
	ctx, cancel := context.WithTimeout(context.Background(), engineStartTimeout)
	defer cancel()
	if err := s.eng.Clear(ctx, ""); err != nil {
		s.log.Error("clearing the histories failed", "err", err)
		return
	}
	s.log.Info("histories cleared")
}

// ClearDocuments drops the static file cache (SIGUSR2).
func (s *Server) ClearDocuments() {
	s.sub.ClearDocuments()
	s.log.Info("document cache cleared")
}

// Shutdown stops accepting, sends the shutdown messages, flushes, and
// closes everything, giving up on slow clients when ctx ends.
//
// With ReusePort it is a restart without message loss instead: it first
// closes every listener, so that the kernel sends new connections (and,
// with net.ipv4.tcp_migrate_req=1, those waiting in this listener's accept
// queue) to the other processes of the port, and then drains the
// subscribers gradually over DrainTime with the close reason restart,
// after which each client reconnects to another process and resumes from
// its last id (the shared engine holds the history). ctx bounds the whole
// of it; meteord gives it DrainTime plus ShutdownTimeout.
func (s *Server) Shutdown(ctx context.Context) error {
	// The API stays up, not ready, while subscribers drain, so that
	// /readyz reports 503 and /metrics shows the drain; it stops last.
	// Sharing its port (ReusePort), it closes its listener at once with
	// the others instead: the other processes answer there.
	if s.api != nil {
		s.api.SetReady(false)
	}
	s.mu.Lock()
	restart := s.reusePort
	drain := time.Duration(s.cfg.DrainTime) * time.Second
	s.mu.Unlock()
	if restart {
		s.closeListeners()
		s.log.Info("listeners closed; draining subscribers for a restart", "drainTime", drain.String())
	}
	var subErr, ctlErr, apiErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		// Messages acknowledged before the shutdown began reach the
		// subscribers before their shutdown message does.
		s.hub.Flush()
		if restart {
			subErr = s.sub.Drain(ctx, drain)
		} else {
			subErr = s.sub.Shutdown(ctx)
		}
	}()
	go func() { defer wg.Done(); ctlErr = s.ctl.Shutdown(ctx) }()
	wg.Wait()
	if s.api != nil && s.apiLn != nil {
		apiErr = s.api.Shutdown(ctx)
	}
	errs := []error{subErr, ctlErr, apiErr}
	s.serves.Wait()
	s.hub.Close()
	errs = append(errs, s.eng.Close(ctx))
	return errors.Join(errs...)
}

// closeListeners closes every listener that Start opened, so that no new
// connection comes to this process: their Serve loops end (with
// net.ErrClosed, which is not logged) and the shutdowns that follow find
// them closed.
func (s *Server) closeListeners() {
	for _, ln := range []net.Listener{s.subLn, s.ctlLn, s.apiLn} {
		if ln != nil {
			ln.Close()
		}
	}
	if s.udp != nil {
		s.udp.Close()
	}
}

// backend adapts the hub to the controller.
type backend struct{ s *Server }

func (b backend) Publish(ctx context.Context, pubs []engine.Publication) ([]*engine.Message, error) {
	msgs, err := b.s.hub.Publish(ctx, pubs...)
	b.s.stats.Add(stats.UniqueMessages, int64(len(msgs)))
	b.s.met.Published(len(msgs))
	return msgs, err
}

func (b backend) CountSubscribers(channel string) int { return b.s.hub.CountSubscribers(channel) }

func (b backend) ListChannels() ([]controller.ChannelInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(b.s.config().PublishTimeout)*time.Second)
	defer cancel()
	chans, err := b.s.hub.Channels(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]controller.ChannelInfo, len(chans))
	for i, c := range chans {
		out[i] = controller.ChannelInfo{Name: c.Name, Messages: c.Messages, Subscribers: c.Subscribers}
	}
	return out, nil
}

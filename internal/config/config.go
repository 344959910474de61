// Package config reads meteord's settings the way Meteor 1.06 did: from the
// command line, from a configuration file, and from built-in defaults, in that
// order of precedence, with per-mode values for the settings that shape a
// subscriber's response.
//
// The parameters, their defaults and their descriptions live in one table
// (params.go); parsing, Usage and the defaults are all driven by it.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strings"
)

// Version is the version that -version prints: the Meteor release whose
// behaviour this server keeps, then the Go port's own revision.
const Version = "1.06-go.1"

// DefaultConfigFile is the configuration file read when the command line
// names none.
const DefaultConfigFile = "/etc/meteord.conf"

// Action tells the caller of Load what the command line asked for.
type Action int

const (
	// ActionRun means start the server with the returned configuration.
	ActionRun Action = iota
	// ActionHelp means print Usage and exit.
	ActionHelp
	// ActionVersion means print Version and exit.
	ActionVersion
)

// String returns the action's name.
func (a Action) String() string {
	switch a {
	case ActionRun:
		return "run"
	case ActionHelp:
		return "help"
	case ActionVersion:
		return "version"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Mode holds the settings that may differ per subscriber mode.
type Mode struct {
	Name                  string // "" for the global defaults
	ChannelInfoTemplate   string
	HeaderTemplate        string
	MessageTemplate       string
	PingMessage           string
	SubscriberShutdownMsg string
	MaxMessages           int
	MaxTime               int  // seconds, 0 = no limit
	PingInterval          int  // seconds, 0 = off, else at least 3
	Persist               bool // keep the connection open after the backlog
	// TextEncoding says how ~text~ (and ~channel~) are escaped when a message
	// is rendered: "js" (a JavaScript string literal that is safe inside
	// <script>), "json", "html" or "raw". An extension: 1.06 always pasted
	// the text raw.
	TextEncoding string
}

// Config is the merged configuration. Every field is filled: a value from
// the command line, else from the file, else the built-in default.
type Config struct {
	ConfigFileLocation           string // default /etc/meteord.conf; command line only; "" reads no file
	ControllerIP                 string // default "127.0.0.1"; "" or "*" = all interfaces
	ControllerPort               int    // 4671
	ControllerShutdownMsg        string // ""
	Debug                        bool
	DirectoryIndex               string // index.html
	LogTimeFormat                string // "human" or "unix"
	MaxMessageAge                int    // seconds, 7200
	MaxMessagesPerChannel        int    // 250
	SubscriberIP                 string // "" = all interfaces
	SubscriberPort               int    // 4670
	SubscriberDocumentRoot       string // /usr/local/meteor/public_html
	SubscriberDynamicPageAddress string // /push
	SyslogFacility               string // "none" (stderr), or a syslog facility such as "daemon"
	UDPIP                        string // "127.0.0.1"; must be loopback when UDPPort is set
	UDPPort                      int    // 0 = off

	// Extensions, not in 1.06.
	MaxControllerLine         int    // bytes in the longest controller command line, 65536
	MaxHeaderBytes            int    // bytes in the largest subscriber request header, 8192
	MaxChannelsPerRequest     int    // 64
	RequestTimeout            int    // seconds to receive a complete subscriber request header, 10
	SubscriberWriteTimeout    int    // seconds a subscriber's output may stay stuck before it is closed, 120
	MaxPendingBytes           int    // per-subscriber unsent-output bound, 1048576
	ShutdownTimeout           int    // seconds TERM spends flushing before it gives up, 10
	BuiltinFiles              bool   // serve the built-in client files beneath SubscriberDocumentRoot
	PidFile                   string // "" = write no pid file
	LogFormat                 string // "text" or "json"
	LogLevel                  string // "debug", "info", "warn" or "error"; Debug 1 means "debug"
	AccessLog                 bool   // an access line per HTTP API request
	AdminAPI                  bool   // serve the HTTP API listener
	AdminIP                   string // "127.0.0.1"; "" or "*" = all interfaces
	AdminPort                 int    // 4672
	APIToken                  string // bearer token for the HTTP API; "" = none (loopback only)
	APIKeysFile               string // file of scoped API keys; "" = none
	CORSOrigins               string // origins allowed cross-origin; "" = none, "*" = any
	HeartbeatInterval         int    // seconds between heartbeats on SSE, NDJSON, WebSocket
	SSERetry                  int    // milliseconds, the SSE retry: hint
	LongPollTimeout           int    // seconds a JSON long-poll may wait
	SubscribeTimeout          int    // seconds a subscription waits for the engine
	PublishTimeout            int    // seconds a publish waits for the engine
	MaxMessageBytes           int    // largest message text the HTTP API accepts
	SubscriberNoDelay         bool   // TCP_NODELAY on subscriber connections
	GCPercent                 int    // the garbage collector's target (GOGC), 50; 0 = the GOGC environment variable
	Engine                    string // "memory" or "redis"
	RedisURL                  string // redis://host:port/db of Engine redis
	RedisPrefix               string // prefix of Engine redis's keys, "meteor"
	NodeID                    string // this node's name; "" = host name and pid
	RedisTimeout              int    // milliseconds a Redis command may take
	RedisPoolSize             int    // most command connections to Redis
	PresenceTTL               int    // seconds a node's presence outlives it
	ReusePort                 bool   // SO_REUSEPORT on every listener; needs Engine redis
	MaxConnections            int    // most subscriber connections; 0 = from the open-files limit
	MaxConnectionsPerIP       int    // most subscriptions one address holds; 0 = none
	ConnectionRatePerIP       int    // subscriber requests a second one address may make; 0 = none
	ConnectionBurstPerIP      int    // the bucket of ConnectionRatePerIP; 0 = twice the rate
	DrainTime                 int    // seconds TERM spreads the close of subscribers over, with ReusePort
	ControllerToken           string // secret of the controller's AUTH command; "" = none (loopback only)
	ControllerIdleTimeout     int    // seconds a controller connection may stay without a line; 0 = never
	MaxControllerConnections  int    // most controller connections open at once, 1000; 0 = no limit
	SubscriberAuth            bool   // every subscription needs a token
	JWTSecret                 string // HS256 key; "" = none
	JWTPublicKeyFile          string // PEM or JWKS file of RS256/ES256/EdDSA keys; "" = none
	JWTAudience               string // the aud a token must name; "" = not checked
	JWTLeeway                 int    // seconds of clock skew for exp and nbf, 5
	SignedURLSecret           string // key of signed subscriber URLs; "" = off
	Presence                  bool   // keep presence, 1
	PublishRate               int    // messages a second per channel; 0 = no limit
	PublishBurst              int    // the bucket of PublishRate; 0 = twice the rate
	ConflateInterval          int    // milliseconds; 0 = no conflation
	PublishRatePerCredential  int    // messages a second per publisher credential; 0 = no limit
	PublishBurstPerCredential int    // the bucket of PublishRatePerCredential; 0 = twice the rate

	Default Mode             // the global per-mode values (Name "")
	Modes   map[string]*Mode // named modes by lower-case name, fully resolved

	args       []string    // the command line, kept for Reload
	namespaces *namespaces // the [namespace] sections, resolved; nil when built in code
}

// Mode returns the settings of the named subscriber mode. Names are
// case-insensitive; a mode that the configuration does not define gets the
// global values, c.Default.
func (c *Config) Mode(name string) *Mode {
	if m, ok := c.Modes[toLowerASCII(name)]; ok {
		return m
	}
	return &c.Default
}

// Level returns the least important log level to write: LogLevel, or debug
// when Debug is set.
func (c *Config) Level() slog.Level {
	if c.Debug {
		return slog.LevelDebug
	}
	switch c.LogLevel {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// ModeNames returns the names of the configured modes, sorted.
func (c *Config) ModeNames() []string {
	return slices.Sorted(maps.Keys(c.Modes))
}

// Defaults returns the built-in configuration: every parameter's default and
// the built-in modes (those of 1.06's sample configuration file).
func Defaults() *Config {
	c, err := resolve(nil, nil, nil)
	if err != nil {
		panic("config: built-in defaults do not parse: " + err.Error())
	}
	return c
}

// Load parses the command line args (without argv[0]), reads the
// configuration file named by -ConfigFileLocation (or DefaultConfigFile)
// with readFile (os.ReadFile when nil), and returns the merged configuration.
//
// A missing file is not an error when the location is the default; it is
// when the command line names it. -ConfigFileLocation "" reads no file.
// When the action is ActionHelp or ActionVersion the configuration is nil
// and nothing was read. Every error names the setting and where it was
// found, and wraps one of the package's sentinel errors (or the error of
// readFile).
func Load(args []string, readFile func(string) ([]byte, error)) (*Config, Action, error) {
	if wantsVersion(args) {
		return nil, ActionVersion, nil
	}
	cmd, help, err := parseArgs(args)
	if err != nil {
		return nil, ActionRun, err
	}
	if help {
		return nil, ActionHelp, nil
	}
	c, err := load(args, cmd, readFile)
	if err != nil {
		return nil, ActionRun, err
	}
	return c, ActionRun, nil
}

// Reload reads the configuration file again and merges it with the command
// line that c was loaded with, as Load does; meteord calls it on SIGHUP.
// It returns a new Config and leaves c as it is.
func (c *Config) Reload(readFile func(string) ([]byte, error)) (*Config, error) {
	cmd, _, err := parseArgs(c.args)
	if err != nil {
		return nil, err
	}
	return load(c.args, cmd, readFile)
}

func load(args []string, cmd []setting, readFile func(string) ([]byte, error)) (*Config, error) {
	if readFile == nil {
		readFile = os.ReadFile
	}
	path, explicit := DefaultConfigFile, false
	for _, s := range cmd {
		if s.p.name == "ConfigFileLocation" {
			path, explicit = unescape(s.value), true
		}
	}
	var file []setting
	var sections []section
	if path != "" {
		data, err := readFile(path)
		switch {
		case err == nil:
			if file, sections, err = parseFile(path, data); err != nil {
				return nil, err
			}
		case !explicit && errors.Is(err, fs.ErrNotExist):
			// 1.06 too ran on its defaults when /etc/meteord.conf was absent.
		default:
			return nil, fmt.Errorf("configuration file %s: %w", path, err)
		}
	}
	c, err := resolve(cmd, file, sections)
	if err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c.args = slices.Clone(args)
	return c, nil
}

// Validate checks the rules that tie settings together, which no single
// parameter's parser can: ReusePort 1 needs Engine redis, since processes
// that share a port with a memory store each would split every channel
// between them (a subscriber and a publisher landing on different
// processes would never meet). Load and Reload call it; so does the
// server's Start, for a configuration built in code.
//
// No path publishes without a credential off loopback: a ControllerIP
// that is not loopback needs ControllerToken, and UDPPort needs UDPIP on
// loopback, since a datagram cannot authenticate. Those refusals wrap
// ErrCredentialRequired. So does SubscriberAuth 1, globally or in a
// namespace, without a key to check tokens with.
func (c *Config) Validate() error {
	if c.ReusePort && c.Engine == "memory" {
		return &Error{Where: "configuration", Name: "ReusePort", Err: ErrConflict,
			Detail: "ReusePort 1 needs Engine redis: with Engine memory each process sharing the port would keep its own channels, and a subscriber and a publisher landing on different processes would never meet"}
	}
	if c.ControllerToken == "" && !Loopback(c.ControllerIP) {
		return &Error{Where: "configuration", Name: "ControllerIP", Value: c.ControllerIP, Err: ErrCredentialRequired,
			Detail: "the controller listener is not on loopback, so anyone who reaches it could publish: set ControllerToken, or bind ControllerIP to 127.0.0.1" + everyInterface(c.ControllerIP)}
	}
	if c.JWTSecret == "" && c.JWTPublicKeyFile == "" && c.SignedURLSecret == "" {
		const detail = "SubscriberAuth 1 needs a key to check tokens with: set JWTSecret, JWTPublicKeyFile or SignedURLSecret"
		if c.SubscriberAuth {
			return &Error{Where: "configuration", Name: "SubscriberAuth", Value: "1", Err: ErrCredentialRequired, Detail: detail}
		}
		if c.namespaces != nil {
			for _, e := range c.namespaces.all {
				if e.ns.SubscriberAuth {
					return &Error{Where: e.where, Name: "[namespace " + e.ns.Pattern + "] SubscriberAuth", Value: "1", Err: ErrCredentialRequired, Detail: detail}
				}
			}
		}
	}
	if c.UDPPort != 0 && !Loopback(c.UDPIP) {
		return &Error{Where: "configuration", Name: "UDPIP", Value: c.UDPIP, Err: ErrCredentialRequired,
			Detail: "UDP datagrams carry no credential, so UDPPort needs UDPIP on loopback: bind UDPIP to 127.0.0.1, or set UDPPort 0 and publish over the controller with ControllerToken" + everyInterface(c.UDPIP)}
	}
	return nil
}

// everyInterface is the note an error adds when ip, an IP setting, means
// every interface, which the error's value alone ("" shows nothing) would
// not say.
func everyInterface(ip string) string {
	if ip == "" || ip == "*" {
		return "; empty or * is every interface"
	}
	return ""
}

// Loopback reports whether ip, an IP setting (ControllerIP, UDPIP,
// AdminIP), binds to loopback only: a loopback address (127.0.0.0/8, ::1,
// bracketed or not) or "localhost". "", "*", unspecified addresses and
// other host names are not.
func Loopback(ip string) bool {
	if strings.EqualFold(ip, "localhost") {
		return true
	}
	a := net.ParseIP(strings.Trim(ip, "[]"))
	return a != nil && a.IsLoopback()
}

// resolve merges the sources. A global field is the command line's value,
// else the file's, else the default. A mode's field is, first found: the
// command line's value for the mode, the file's, the built-in mode's, then
// the resolved global value. A namespace's field is the last value its
// section sets, else the resolved global value.
func resolve(cmd, file []setting, sections []section) (*Config, error) {
	c := &Config{Modes: make(map[string]*Mode)}
	for i := range params {
		p := &params[i]
		if p.set == nil {
			continue
		}
		if err := p.set(c, &c.Default, unescape(p.def)); err != nil {
			return nil, &Error{Where: "built-in default", Name: p.name, Value: p.def, Err: ErrInvalidValue, Detail: err.Error()}
		}
	}
	for _, src := range [][]setting{file, cmd} {
		for _, s := range src {
			if s.mode == "" && s.ns == "" {
				if err := s.apply(c, &c.Default); err != nil {
					return nil, err
				}
			}
		}
	}
	byMode := make(map[string][]setting) // in order of precedence, lowest first
	for _, src := range [][]setting{builtinSettings, file, cmd} {
		for _, s := range src {
			if s.mode != "" {
				byMode[s.mode] = append(byMode[s.mode], s)
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(byMode)) {
		m := c.Default
		m.Name = name
		for _, s := range byMode[name] {
			if err := s.apply(c, &m); err != nil {
				return nil, err
			}
		}
		c.Modes[name] = &m
	}
	ns, err := resolveNamespaces(c, sections, file)
	if err != nil {
		return nil, err
	}
	c.namespaces = ns
	return c, nil
}

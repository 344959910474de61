package config

import (
	"math"
	"slices"
	"strconv"
	"strings"
)

// param is one configuration parameter: one row of the table that drives
// parsing, the defaults, Usage and docs/configuration.md.
type param struct {
	name    string
	def     string // in file syntax: escapes such as \r\n are undone when applied
	perMode bool   // may differ per subscriber mode
	legacy  bool   // a Meteor 1.06 parameter (see lookupArg)
	cmdOnly bool   // command line only: refused in the file
	desc    string
	// set parses v and stores it: a per-mode parameter in m, any other in c.
	// It returns why v is refused. nil for Help, which stores nothing.
	set func(c *Config, m *Mode, v string) error
}

// params lists every parameter: those of Meteor 1.06 in its order, then the
// extensions.
var params = []param{
	{name: "ChannelInfoTemplate", def: `<script>ch("~name~", ~lastMsgID~);</script>\r\n`, perMode: true, legacy: true,
		desc: "Template repeated once per requested channel to build the ~channelinfo~ of the header. Placeholders: ~name~, ~lastMsgID~ (newest stored id, 0 if none), ~messageCount~, ~subscriberCount~.",
		set:  text(func(_ *Config, m *Mode) *string { return &m.ChannelInfoTemplate })},
	{name: "ConfigFileLocation", def: DefaultConfigFile, legacy: true, cmdOnly: true,
		desc: "Configuration file. Command line only. A missing file is ignored when this is the default and an error when it is given; empty reads no file.",
		set:  text(func(c *Config, _ *Mode) *string { return &c.ConfigFileLocation })},
	{name: "ControllerIP", def: "127.0.0.1", legacy: true,
		desc: "Address the controller (publisher) listener binds to; empty or * for every interface. Bound anywhere but loopback, it requires ControllerToken, so the default is loopback (1.06: every interface, without authentication).",
		set:  text(func(c *Config, _ *Mode) *string { return &c.ControllerIP })},
	{name: "ControllerPort", def: "4671", legacy: true,
		desc: "TCP port of the controller listener (0: any free port).",
		set:  number(0, 65535, func(c *Config, _ *Mode) *int { return &c.ControllerPort })},
	{name: "ControllerShutdownMsg", def: "", legacy: true,
		desc: "Sent to every controller connection when the server shuts down; empty sends nothing.",
		set:  text(func(c *Config, _ *Mode) *string { return &c.ControllerShutdownMsg })},
	{name: "Debug", def: "0", legacy: true,
		desc: "1: log debug lines, as LogLevel debug does, whatever LogLevel says. (1.06 also stayed in the foreground; this server always does.) -d is short for -Debug.",
		set:  flag(func(c *Config, _ *Mode) *bool { return &c.Debug })},
	{name: "DirectoryIndex", def: "index.html", legacy: true,
		desc: "File served when the static file server is asked for a directory.",
		set:  text(func(c *Config, _ *Mode) *string { return &c.DirectoryIndex })},
	{name: "HeaderTemplate", def: httpHeader, perMode: true, legacy: true,
		desc: "Start of every subscriber response, HTTP status line and headers included. Placeholders: ~status~, ~server~, ~servertime~, ~channelinfo~.",
		set:  text(func(_ *Config, m *Mode) *string { return &m.HeaderTemplate })},
	{name: "Help", legacy: true, cmdOnly: true,
		desc: "Print this help and exit. Command line only; -h is short for -Help."},
	{name: "LogTimeFormat", def: "human", legacy: true,
		desc: "Time stamps of log lines written to stderr: human (local time) or unix (seconds since 1970).",
		set:  oneOf([]string{"human", "unix"}, func(c *Config, _ *Mode) *string { return &c.LogTimeFormat })},
	{name: "MaxMessageAge", def: "7200", legacy: true,
		desc: "Seconds a stored message is kept.",
		set:  number(0, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.MaxMessageAge })},
	{name: "MaxMessages", def: "0", perMode: true, legacy: true,
		desc: "Messages sent to a persistent subscriber before its connection is closed, without shutdown message; 0: no limit.",
		set:  number(0, math.MaxInt32, func(_ *Config, m *Mode) *int { return &m.MaxMessages })},
	{name: "MaxMessagesPerChannel", def: "250", legacy: true,
		desc: "Messages stored per channel; the oldest are dropped first.",
		set:  number(0, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.MaxMessagesPerChannel })},
	{name: "MaxTime", def: "0", perMode: true, legacy: true,
		desc: "Seconds a persistent subscriber connection may last before it is closed, without shutdown message; 0: no limit.",
		set:  number(0, math.MaxInt32, func(_ *Config, m *Mode) *int { return &m.MaxTime })},
	{name: "MessageTemplate", def: `<script>p(~id~,"~channel~","~text~");</script>\r\n`, perMode: true, legacy: true,
		desc: "Template for each message sent to a subscriber. Placeholders: ~id~, ~channel~, ~text~, ~timestamp~.",
		set:  text(func(_ *Config, m *Mode) *string { return &m.MessageTemplate })},
	{name: "PingInterval", def: "5", perMode: true, legacy: true,
		desc: "Seconds between two PingMessages on a persistent connection; 0: no pings. 1 and 2 count as 3.",
		set:  pingInterval},
	{name: "Persist", def: "0", perMode: true, legacy: true,
		desc: "1: after the backlog, keep the connection open and send new messages as they are published; 0: close it after the backlog.",
		set:  flag(func(_ *Config, m *Mode) *bool { return &m.Persist })},
	{name: "PingMessage", def: `<script>p(-1,"");</script>\r\n`, perMode: true, legacy: true,
		desc: "Sent to persistent subscribers every PingInterval seconds.",
		set:  text(func(_ *Config, m *Mode) *string { return &m.PingMessage })},
	{name: "SubscriberIP", def: "", legacy: true,
		desc: "Address the subscriber listener binds to; empty or * for every interface.",
		set:  text(func(c *Config, _ *Mode) *string { return &c.SubscriberIP })},
	{name: "SubscriberPort", def: "4670", legacy: true,
		desc: "TCP port of the subscriber listener (0: any free port).",
		set:  number(0, 65535, func(c *Config, _ *Mode) *int { return &c.SubscriberPort })},
	{name: "SubscriberShutdownMsg", def: `<script>eof();</script>\r\n`, perMode: true, legacy: true,
		desc: "Sent to a persistent subscriber that the server closes at shutdown, because a new subscription came with the same hostid, /disconnect named it or an administrator closed its channel; empty sends nothing.",
		set:  text(func(_ *Config, m *Mode) *string { return &m.SubscriberShutdownMsg })},
	{name: "SubscriberDocumentRoot", def: "/usr/local/meteor/public_html", legacy: true,
		desc: "Directory served by the static file server; empty or / serves no files.",
		set:  text(func(c *Config, _ *Mode) *string { return &c.SubscriberDocumentRoot })},
	{name: "SubscriberDynamicPageAddress", def: "/push", legacy: true,
		desc: "Path under which subscriptions are made; every other path is a static file.",
		set:  text(func(c *Config, _ *Mode) *string { return &c.SubscriberDynamicPageAddress })},
	{name: "SyslogFacility", def: "none", legacy: true,
		desc: "none: log to stderr. Otherwise the syslog facility to log to: " + strings.Join(facilities[1:], ", ") + ". The default is none (1.06: daemon) because meteord runs in the foreground.",
		set:  oneOf(facilities, func(c *Config, _ *Mode) *string { return &c.SyslogFacility })},
	{name: "UDPIP", def: "127.0.0.1", legacy: true,
		desc: "Address the UDP listener binds to: a loopback address, since a datagram carries no credential (1.06: every interface by default).",
		set:  text(func(c *Config, _ *Mode) *string { return &c.UDPIP })},
	{name: "UDPPort", def: "0", legacy: true,
		desc: "UDP port that takes one ADDMESSAGE per datagram, without reply; 0: off.",
		set:  number(0, 65535, func(c *Config, _ *Mode) *int { return &c.UDPPort })},

	// Extensions.
	{name: "TextEncoding", def: "js", perMode: true,
		desc: "How ~text~ and ~channel~ are escaped in MessageTemplate: js (for a JavaScript string literal inside <script>), json (for a JSON string), html (for HTML text) or raw (as published, as 1.06 did).",
		set:  oneOf([]string{"js", "json", "html", "raw"}, func(_ *Config, m *Mode) *string { return &m.TextEncoding })},
	{name: "MaxControllerLine", def: "65536",
		desc: "Longest controller command line, in bytes; a longer one is refused.",
		set:  number(1, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.MaxControllerLine })},
	{name: "MaxHeaderBytes", def: "8192",
		desc: "Largest subscriber request header, in bytes; a larger one is refused.",
		set:  number(1, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.MaxHeaderBytes })},
	{name: "MaxChannelsPerRequest", def: "64",
		desc: "Most channels that one subscription may name; a request naming more is refused.",
		set:  number(1, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.MaxChannelsPerRequest })},
	{name: "RequestTimeout", def: "10",
		desc: "Seconds a new subscriber connection has to send its complete request header.",
		set:  number(1, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.RequestTimeout })},
	{name: "SubscriberWriteTimeout", def: "120",
		desc: "Seconds a subscriber's output may stay stuck before the subscriber is closed.",
		set:  number(1, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.SubscriberWriteTimeout })},
	{name: "MaxPendingBytes", def: "1048576",
		desc: "Bytes of unsent output one subscriber may have queued; beyond that it is closed as too slow.",
		set:  number(1, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.MaxPendingBytes })},
	{name: "ShutdownTimeout", def: "10",
		desc: "Seconds that TERM spends flushing shutdown messages before the server exits anyway (1.06: 120).",
		set:  number(1, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.ShutdownTimeout })},
	{name: "BuiltinFiles", def: "1",
		desc: "1: serve the built-in meteor.js, its helper pages and a demo page beneath SubscriberDocumentRoot.",
		set:  flag(func(c *Config, _ *Mode) *bool { return &c.BuiltinFiles })},
	{name: "PidFile", def: "",
		desc: "File to write the process id to; empty writes none.",
		set:  text(func(c *Config, _ *Mode) *string { return &c.PidFile })},
	{name: "LogLevel", def: "info",
		desc: "Least important log lines written: debug (also what clients got wrong, and each connection's life), info (also each subscriber's joinchannel and leavechannel, static files), warn (what needs a look) or error. Debug 1 means debug.",
		set:  oneOf([]string{"debug", "info", "warn", "error"}, func(c *Config, _ *Mode) *string { return &c.LogLevel })},
	{name: "AccessLog", def: "0",
		desc: "1: log one access line at info per request of the HTTP API listener (ip, method, uri, status, bytes, ms, user agent); 0: none. The subscriber port logs its own: joinchannel, leavechannel and document lines.",
		set:  flag(func(c *Config, _ *Mode) *bool { return &c.AccessLog })},
	{name: "LogFormat", def: "text",
		desc: "Format of log lines: text or json.",
		set:  oneOf([]string{"text", "json"}, func(c *Config, _ *Mode) *string { return &c.LogFormat })},
	{name: "AdminAPI", def: "1",
		desc: "1: serve the HTTP API (publish, channels, stats, admin), /metrics, /healthz and /readyz on AdminIP:AdminPort; 0: no such listener.",
		set:  flag(func(c *Config, _ *Mode) *bool { return &c.AdminAPI })},
	{name: "AdminIP", def: "127.0.0.1",
		desc: "Address the HTTP API listener binds to; empty or * for every interface. Bound anywhere but loopback, it requires APIToken.",
		set:  text(func(c *Config, _ *Mode) *string { return &c.AdminIP })},
	{name: "AdminPort", def: "4672",
		desc: "TCP port of the HTTP API listener (0: any free port).",
		set:  number(0, 65535, func(c *Config, _ *Mode) *int { return &c.AdminPort })},
	{name: "APIToken", def: "",
		desc: "Bearer token that every HTTP API call must present (Authorization: Bearer <token>), /healthz and /readyz excepted; empty: none, allowed only while AdminIP is loopback.",
		set:  text(func(c *Config, _ *Mode) *string { return &c.APIToken })},
	{name: "APIKeysFile", def: "",
		desc: "File of API keys, one a line: <name> sha256:<hex of the secret's SHA-256> <scopes: publish,read,admin> <channel patterns: name, prefix*, *>. A key is sent as the bearer token; APIToken stays the key that may do everything. Re-read on HUP. Empty: none.",
		set:  text(func(c *Config, _ *Mode) *string { return &c.APIKeysFile })},
	{name: "CORSOrigins", def: "",
		desc: "Origins allowed to read the SSE, NDJSON, long-poll and WebSocket transports from another origin: a space- or comma-separated list of scheme://host[:port] (no path), * for any; empty: same origin only.",
		set:  corsOrigins(func(c *Config, _ *Mode) *string { return &c.CORSOrigins })},
	{name: "HeartbeatInterval", def: "15",
		desc: "Seconds between heartbeats on SSE, NDJSON and WebSocket connections; 0: none.",
		set:  number(0, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.HeartbeatInterval })},
	{name: "SSERetry", def: "3000",
		desc: "Reconnection delay, in milliseconds, that SSE clients are told (retry:); spread a little at random per connection.",
		set:  number(0, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.SSERetry })},
	{name: "LongPollTimeout", def: "30",
		desc: "Longest time, in seconds, that a JSON long-poll request waits for a message before it is answered empty.",
		set:  number(1, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.LongPollTimeout })},
	{name: "SubscribeTimeout", def: "5",
		desc: "Longest time, in seconds, that a subscription waits for the engine (its history read, its channels joined); past it the subscriber is answered 503 with Retry-After (a WebSocket error for that channel).",
		set:  number(1, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.SubscribeTimeout })},
	{name: "PublishTimeout", def: "5",
		desc: "Longest time, in seconds, that a publish (controller ADDMESSAGE, the HTTP API) waits for the engine; past it the publisher gets an error (ERR store unavailable, 503) and the message is not stored.",
		set:  number(1, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.PublishTimeout })},
	{name: "SubscriberNoDelay", def: "1",
		desc: "1: every write to a subscriber leaves at once (TCP_NODELAY), for the lowest latency. 0: the kernel may coalesce small writes to one subscriber while earlier bytes are unacknowledged (Nagle), which costs less CPU per message when the server is saturated and can add latency to back-to-back messages.",
		set:  flag(func(c *Config, _ *Mode) *bool { return &c.SubscriberNoDelay })},
	{name: "MaxMessageBytes", def: "65536",
		desc: "Largest message text, in bytes, a channel accepts on every publish path: a larger one is refused (API 413, controller ERR too large, UDP dropped and logged). A [namespace] section can set it.",
		set:  number(1, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.MaxMessageBytes })},
	{name: "GCPercent", def: "50",
		desc: "Garbage collector target, as Go's GOGC: a collection starts when the heap has grown by this many percent over what the last one kept. Lower keeps less garbage beside the idle subscribers (measured: about 0.9-1.0 KiB of memory per idle subscriber at 50, 1.1-1.25 KiB at Go's 100) for more frequent collections; 0: the GOGC environment variable, else 100. Applied at start and on reload.",
		set:  number(0, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.GCPercent })},
	{name: "Engine", def: "memory",
		desc: "Where channel streams live: memory (this process only; a restart keeps ids growing but loses history) or redis (a shared store: history survives a restart of meteord, and every meteord on the same Redis is one cluster; docs/cluster.md).",
		set:  oneOf([]string{"memory", "redis"}, func(c *Config, _ *Mode) *string { return &c.Engine })},
	{name: "RedisURL", def: "redis://127.0.0.1:6379/0",
		desc: "The Redis server of Engine redis: redis://[user:password@]host:port/db, rediss:// for TLS.",
		set:  redisURL(func(c *Config, _ *Mode) *string { return &c.RedisURL })},
	{name: "RedisPrefix", def: "meteor",
		desc: "Prefix of every Redis key and pub/sub channel of Engine redis, so that several clusters can share one Redis.",
		set:  redisPrefix(func(c *Config, _ *Mode) *string { return &c.RedisPrefix })},
	{name: "NodeID", def: "",
		desc: "This process's name in a cluster (presence, logs, metrics); empty: the host name and the process id.",
		set:  text(func(c *Config, _ *Mode) *string { return &c.NodeID })},
	{name: "RedisTimeout", def: "2000",
		desc: "Milliseconds one Redis command (or pipeline) may take before Engine redis counts Redis as unreachable; also the dial timeout.",
		set:  number(100, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.RedisTimeout })},
	{name: "RedisPoolSize", def: "32",
		desc: "Most connections Engine redis opens to Redis for commands (publish, history), besides its pub/sub connections; bounds the open files a reconnect storm can take.",
		set:  number(1, 10000, func(c *Config, _ *Mode) *int { return &c.RedisPoolSize })},
	{name: "ReusePort", def: "0",
		desc: "1: bind the subscriber, controller, UDP and HTTP API listeners with SO_REUSEPORT, so that several meteord processes on one box (each a node of Engine redis) share the ports, and let TERM drain the subscribers over DrainTime for a restart. Needs Engine redis; Linux only (docs/cluster.md).",
		set:  flag(func(c *Config, _ *Mode) *bool { return &c.ReusePort })},
	{name: "MaxConnections", def: "0",
		desc: "Most subscriber connections this process holds; one more is refused at once (503 with Retry-After, or a reset) so that the client's retry lands on another process. 0: the open-files limit less max(256, 5%) of it, at least half of it.",
		set:  number(0, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.MaxConnections })},
	{name: "MaxConnectionsPerIP", def: "0",
		desc: "Most subscriptions (connections that joined channels, on every transport) one client address may hold on this process; one more is answered 429 with the reason. 0: no limit. Behind a proxy every client has the proxy's address: limit there instead.",
		set:  number(0, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.MaxConnectionsPerIP })},
	{name: "ConnectionRatePerIP", def: "0",
		desc: "Requests a second one client address may make to the subscriber port, on average (a token bucket of ConnectionBurstPerIP); past it a request is answered 429 with the reason. 0: no limit.",
		set:  number(0, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.ConnectionRatePerIP })},
	{name: "ConnectionBurstPerIP", def: "0",
		desc: "Requests one client address may make at once before ConnectionRatePerIP applies (the token bucket's size). 0: twice ConnectionRatePerIP.",
		set:  number(0, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.ConnectionBurstPerIP })},
	{name: "DrainTime", def: "15",
		desc: "With ReusePort 1: seconds over which TERM closes this process's subscribers, a few at a time, with the close reason restart (reconnect), after its listeners closed; ShutdownTimeout then bounds the last flush. 0: all at once. Without ReusePort, TERM closes them all at once with the shutdown message, as 1.06 did.",
		set:  number(0, 3600, func(c *Config, _ *Mode) *int { return &c.DrainTime })},
	{name: "PresenceTTL", def: "60",
		desc: "Seconds a node's presence (its subscriber counts and lists) outlives the node: a node that dies stops being counted within this time. Nodes refresh theirs every third of it.",
		set:  number(3, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.PresenceTTL })},
	{name: "ControllerToken", def: "",
		desc: "Secret that a controller connection must send as AUTH <token> before any other command; three refused lines close the connection. Empty: no authentication (as 1.06), allowed only while ControllerIP is loopback. A reload applies it to new connections.",
		set:  controllerToken},
	{name: "ControllerIdleTimeout", def: "0",
		desc: "Seconds a controller connection may go without sending a complete line before it is closed (ERR idle timeout); 0: never (as 1.06).",
		set:  number(0, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.ControllerIdleTimeout })},
	{name: "MaxControllerConnections", def: "1000",
		desc: "Most controller connections open at once; one more is answered ERR too many controller connections and closed. 0: no limit.",
		set:  number(0, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.MaxControllerConnections })},
	{name: "SubscriberAuth", def: "0",
		desc: "1: every subscription needs a token (JWT, or a signed URL) that grants its channels; refused 401 (no or bad token) or 403 (channel not granted) with the reason. 0: anyone who reaches the subscriber port reads any channel (as 1.06). A [namespace] section can set it for its channels (docs/security.md).",
		set:  flag(func(c *Config, _ *Mode) *bool { return &c.SubscriberAuth })},
	{name: "JWTSecret", def: "",
		desc: "HS256 key of subscriber and publisher JWTs, at least 32 bytes; empty: no HS256 tokens.",
		set:  secret(32, func(c *Config) *string { return &c.JWTSecret })},
	{name: "JWTPublicKeyFile", def: "",
		desc: "File of the public keys of RS256, ES256 and EdDSA JWTs: PEM keys or certificates, or a JWKS document whose kid a token names; read at start and on HUP. Empty: none.",
		set:  text(func(c *Config, _ *Mode) *string { return &c.JWTPublicKeyFile })},
	{name: "JWTAudience", def: "",
		desc: "When set, the aud a JWT must name; empty: aud is not checked.",
		set:  text(func(c *Config, _ *Mode) *string { return &c.JWTAudience })},
	{name: "JWTLeeway", def: "5",
		desc: "Seconds of clock skew allowed when checking a token's exp and nbf and a signed URL's exp.",
		set:  number(0, 300, func(c *Config, _ *Mode) *int { return &c.JWTLeeway })},
	{name: "SignedURLSecret", def: "",
		desc: "HMAC-SHA256 key of signed subscriber URLs (exp and sig query parameters, made by the site's back end for pages that cannot send a token), at least 32 bytes; empty: signed URLs are refused.",
		set:  secret(32, func(c *Config) *string { return &c.SignedURLSecret })},
	{name: "Presence", def: "1",
		desc: "1: list who is subscribed to each channel (the API's subscriber lists, across nodes); 0: do not list them (the counts stay: 1.06 pages read ~subscriberCount~). A [namespace] section can set it for its channels.",
		set:  flag(func(c *Config, _ *Mode) *bool { return &c.Presence })},
	{name: "PublishRate", def: "0",
		desc: "Messages a second one channel accepts, on average (a token bucket of PublishBurst), from every publisher together; past it a publish is refused (API 429 with Retry-After, controller ERR, UDP dropped and logged). 0: no limit. A [namespace] section can set it.",
		set:  number(0, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.PublishRate })},
	{name: "PublishBurst", def: "0",
		desc: "Messages one channel accepts at once before PublishRate applies (the token bucket's size). 0: twice PublishRate.",
		set:  number(0, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.PublishBurst })},
	{name: "ConflateInterval", def: "0",
		desc: "Milliseconds: a subscriber receives at most one message per interval per channel, the latest, with its real id (the ones in between are skipped, and stay in the history). 0: every message. Meant for a [namespace] section (docs/conflation.md).",
		set:  number(0, 3600000, func(c *Config, _ *Mode) *int { return &c.ConflateInterval })},
	{name: "PublishRatePerCredential", def: "0",
		desc: "Messages a second one publisher credential (an API key, a publishing JWT's sub, APIToken, ControllerToken) may publish, on average (a token bucket of PublishBurstPerCredential); past it 429 or ERR. 0: no limit.",
		set:  number(0, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.PublishRatePerCredential })},
	{name: "PublishBurstPerCredential", def: "0",
		desc: "Messages one credential may publish at once before PublishRatePerCredential applies. 0: twice PublishRatePerCredential.",
		set:  number(0, math.MaxInt32, func(c *Config, _ *Mode) *int { return &c.PublishBurstPerCredential })},
}

// controllerToken accepts a token that an AUTH line can carry: no line
// break, no white space around it (AUTH drops that, so such a token could
// never match).
func controllerToken(c *Config, _ *Mode, v string) error {
	if strings.ContainsAny(v, "\r\n") || v != strings.Trim(v, " \t\f\r") {
		return invalid("want a token without line breaks or white space around it")
	}
	c.ControllerToken = v
	return nil
}

// secret accepts a key of at least min bytes without line breaks or white
// space around it, or "" (off). A short key is refused rather than warned
// about: an HMAC key shorter than its hash is guessable offline from one
// token.
func secret(min int, field func(*Config) *string) func(*Config, *Mode, string) error {
	return func(c *Config, _ *Mode, v string) error {
		if v == "" {
			*field(c) = ""
			return nil
		}
		if strings.ContainsAny(v, "\r\n") || v != strings.TrimSpace(v) {
			return invalid("want a key without line breaks or white space around it")
		}
		if len(v) < min {
			return invalid("want at least %d bytes (openssl rand -hex 32 makes one)", min)
		}
		*field(c) = v
		return nil
	}
}

// redisURL accepts a redis:// or rediss:// URL.
func redisURL(field func(*Config, *Mode) *string) func(*Config, *Mode, string) error {
	return func(c *Config, m *Mode, v string) error {
		v = strings.TrimSpace(v)
		if !strings.HasPrefix(v, "redis://") && !strings.HasPrefix(v, "rediss://") {
			return invalid("want redis://[user:password@]host:port/db or rediss://...")
		}
		*field(c, m) = v
		return nil
	}
}

// redisPrefix accepts a non-empty prefix without white space, braces
// (Redis Cluster hash tags) or colons.
func redisPrefix(field func(*Config, *Mode) *string) func(*Config, *Mode, string) error {
	return func(c *Config, m *Mode, v string) error {
		if v == "" || strings.ContainsAny(v, " \t\r\n{}:") {
			return invalid("want a non-empty word without white space, braces or colons")
		}
		*field(c, m) = v
		return nil
	}
}

// facilities are the accepted SyslogFacility values, "none" first.
var facilities = []string{"none", "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "local0", "local1", "local2", "local3", "local4", "local5",
	"local6", "local7"}

func text(field func(*Config, *Mode) *string) func(*Config, *Mode, string) error {
	return func(c *Config, m *Mode, v string) error {
		*field(c, m) = v
		return nil
	}
}

// oneOf accepts one of words, in any case, and stores it in lower case.
func oneOf(words []string, field func(*Config, *Mode) *string) func(*Config, *Mode, string) error {
	return func(c *Config, m *Mode, v string) error {
		w := word(v)
		if !slices.Contains(words, w) {
			return invalid("want one of %s", strings.Join(words, ", "))
		}
		*field(c, m) = w
		return nil
	}
}

// word returns v without surrounding white space, in lower case.
func word(v string) string {
	return toLowerASCII(strings.Trim(v, space+"\n"))
}

// number accepts a decimal integer from min to max. White space around it is
// ignored, as 1.06 (Perl) ignored it.
func number(min, max int, field func(*Config, *Mode) *int) func(*Config, *Mode, string) error {
	return func(c *Config, m *Mode, v string) error {
		n, err := parseNumber(v, min, max)
		if err != nil {
			return err
		}
		*field(c, m) = n
		return nil
	}
}

func parseNumber(v string, min, max int) (int, error) {
	n, err := strconv.Atoi(strings.Trim(v, space+"\n"))
	if err != nil || n < min || n > max {
		return 0, invalid("want a whole number from %d to %d", min, max)
	}
	return n, nil
}

// pingInterval stores PingInterval. 1.06 sent no pings at all for 1 or 2
// (its timer needed more than 2), although its help said "at least 3"; a
// value of 1 or 2 asks for frequent pings, so it becomes 3.
func pingInterval(_ *Config, m *Mode, v string) error {
	n, err := parseNumber(v, 0, math.MaxInt32)
	if err != nil {
		return err
	}
	if n > 0 && n < 3 {
		n = 3
	}
	m.PingInterval = n
	return nil
}

// flag accepts 1/0, true/false, yes/no and on/off, in any case; a refusal
// lists them all.
func flag(field func(*Config, *Mode) *bool) func(*Config, *Mode, string) error {
	return func(c *Config, m *Mode, v string) error {
		switch word(v) {
		case "1", "true", "yes", "on":
			*field(c, m) = true
		case "0", "false", "no", "off":
			*field(c, m) = false
		default:
			return invalid("want one of 1, 0, true, false, yes, no, on, off")
		}
		return nil
	}
}

// lookupFile finds the parameter that a file line names: the full name, in
// any case. (Abbreviations are for the command line: in a file they would
// change meaning whenever a parameter is added.)
func lookupFile(name string) *param {
	for i := range params {
		if equalFoldASCII(params[i].name, name) {
			return &params[i]
		}
	}
	return nil
}

// lookupArg finds the parameter that a command-line name (without the dash
// and the .mode) stands for: the full name in any case, else the one
// parameter that it is a prefix of, in any case. When several fit and
// exactly one of them is a 1.06 parameter, that one is taken, so that
// abbreviations written for 1.06 keep their meaning now that parameters have
// been added (-Log still means LogTimeFormat, not LogFormat). "d" is Debug
// and "h" is Help, as in 1.06.
func lookupArg(name string) (p *param, candidates []string) {
	switch strings.ToLower(name) {
	case "d":
		name = "Debug"
	case "h":
		name = "Help"
	}
	if p := lookupFile(name); p != nil {
		return p, nil
	}
	var fits, legacy []*param
	for i := range params {
		if len(name) <= len(params[i].name) && equalFoldASCII(params[i].name[:len(name)], name) {
			fits = append(fits, &params[i])
			if params[i].legacy {
				legacy = append(legacy, &params[i])
			}
		}
	}
	switch {
	case len(fits) == 1:
		return fits[0], nil
	case len(legacy) == 1:
		return legacy[0], nil
	}
	for _, p := range fits {
		candidates = append(candidates, p.name)
	}
	return nil, candidates
}

// equalFoldASCII reports whether a and b are equal when ASCII letters are
// folded to lower case. Unlike strings.EqualFold it never matches a
// non-ASCII letter (such as the Kelvin sign) with an ASCII one.
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

// toLowerASCII maps the ASCII letters of s to lower case and leaves every
// other byte alone (strings.ToLower would turn the Kelvin sign into k).
func toLowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		b[i] = lowerASCII(c)
	}
	return string(b)
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

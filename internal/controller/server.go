// Package controller serves the publishers' side of Meteor: the line-based
// control protocol (ADDMESSAGE, COUNTSUBSCRIBERS, LISTCHANNELS, SHOWSTATS,
// QUIT, and the extension AUTH, which a Server with a Token wants first)
// over TCP, and ADDMESSAGE datagrams over UDP, which carry no credential.
// It parses commands and formats replies; the channels themselves live
// behind Backend.
//
// docs/controller-protocol.md describes the protocol as implemented here.
package controller

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/logx"
	"github.com/meteorpush/meteor/internal/metrics"
	"github.com/meteorpush/meteor/internal/ratelimit"
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/stats"
)

// Backend is what the controller needs from the hub.
type Backend interface {
	// Publish stores pubs, in order, as new messages of their channels and
	// delivers them to the channels' subscribers, in one engine call (the
	// ADDMESSAGE lines a client pipelined come as one batch). It returns
	// the messages published, in order; on error, those published before
	// it. An error wrapping engine.ErrUnavailable means the store could
	// not be reached; a *hub.RefusedError, that the publication after
	// those was refused by its channel's policy (too large, past its
	// publish rate), and the ones after it were not tried.
	Publish(ctx context.Context, pubs []engine.Publication) ([]*engine.Message, error)
	// CountSubscribers returns the number of persistent subscribers of
	// channel, 0 for an unknown channel. It must not create the channel.
	CountSubscribers(channel string) int
	// ListChannels returns every channel, sorted by name, or why it
	// cannot (an error wrapping engine.ErrUnavailable: the store).
	ListChannels() ([]ChannelInfo, error)
}

// ChannelInfo is one line of LISTCHANNELS.
type ChannelInfo struct {
	Name        string
	Messages    int // messages stored
	Subscribers int // persistent subscribers
}

// ErrServerClosed is returned by Serve and ServeUDP once Shutdown has been
// called. It wraps net.ErrClosed.
var ErrServerClosed = fmt.Errorf("controller: server closed: %w", net.ErrClosed)

// Defaults for the zero values of Server's fields.
const (
	DefaultMaxLine      = 65536
	DefaultWriteTimeout = 120 * time.Second // Meteor 1.06's CONNECTION_WRITE_TIMEOUT
	// DefaultPublishTimeout is PublishTimeout's default.
	DefaultPublishTimeout = 5 * time.Second
	// maxPipelined is the most ADDMESSAGE lines published in one
	// Backend.Publish.
	maxPipelined = 256
)

const (
	ioBufferSize = 4096
	// lingerTime and lingerBytes bound how long and how much a connection
	// that the server closes is drained after its last reply, so that
	// unread input does not turn the close into a reset that destroys the
	// reply before the client has read it.
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 1 << 20
	// maxDatagram is the largest UDP payload.
	maxDatagram = 1<<16 - 1
	// maxAuthFailures is how many lines a connection may have refused for
	// authentication (a wrong token, another command before AUTH): the
	// last of them closes it.
	maxAuthFailures = 3
	// maxRefusing bounds the connections refused at MaxConnections that
	// are told why at once; beyond it a refused connection is closed
	// without a word, so that a flood costs no goroutine per connection.
	maxRefusing = 64
)

// The ERR lines of the extensions.
const (
	replyAuthRequired = "ERR authentication required\r\n"
	replyAuthFailed   = "ERR authentication failed\r\n"
	replyIdle         = "ERR idle timeout\r\n"
	replyTooMany      = "ERR too many controller connections\r\n"
	replyRate         = "ERR publish rate of this credential exceeded\r\n"
)

// credentialName is the bucket of CredentialRate of the connections that
// authenticated with the Token.
const credentialName = "ControllerToken"

// Server serves the controller protocol. Set its fields before the first call
// to Serve or ServeUDP and do not change them afterwards. Backend must be set;
// the other fields have working zero values.
type Server struct {
	Backend Backend
	// Stats receives the counters of the controller connections; nil means
	// counters private to the Server.
	Stats *stats.Stats
	// Logger receives the log; nil means no log.
	Logger *slog.Logger
	// MaxLine is the longest command line accepted, in bytes, not counting
	// its LF or CRLF; 0 means DefaultMaxLine.
	MaxLine int
	// WriteTimeout bounds each write to a controller connection; a client that
	// does not read its replies for that long is disconnected. 0 means
	// DefaultWriteTimeout.
	WriteTimeout time.Duration
	// ShutdownMsg is sent, as is, to every controller connection that
	// Shutdown closes ("" sends nothing), like ControllerShutdownMsg.
	ShutdownMsg string
	// ChannelCount returns SHOWSTATS' channel_count; nil means
	// the length of Backend.ListChannels (0 when it fails).
	ChannelCount func() int
	// PublishTimeout bounds each Backend.Publish; 0 means
	// DefaultPublishTimeout.
	PublishTimeout time.Duration
	// Token is the secret that a connection must send as AUTH <token>
	// before any other command; "" wants none. SetToken changes it for
	// the connections accepted afterwards.
	Token string
	// IdleTimeout closes a connection that sends no complete line for that
	// long, after an "ERR idle timeout" line; 0 means never. SetIdleTimeout
	// changes it for the connections accepted afterwards.
	IdleTimeout time.Duration
	// MaxConnections is the most connections open at once: one more gets
	// "ERR too many controller connections" and is closed. 0 means no
	// limit. SetMaxConnections changes it.
	MaxConnections int
	// CredentialRate, when not nil, limits what the connections that
	// authenticated with Token publish, together, by one bucket
	// ("ControllerToken"; PublishRatePerCredential): an ADDMESSAGE past it
	// is answered "ERR publish rate of this credential exceeded". The
	// buckets may be shared with other listeners. Connections without a
	// credential (no Token wanted) and UDP are not limited by it.
	CredentialRate *ratelimit.Buckets
	// Metrics, when not nil, counts the messages CredentialRate refuses.
	Metrics *metrics.Metrics

	initOnce sync.Once
	token    atomic.Pointer[[sha256.Size]byte] // nil: no authentication
	idle     atomic.Int64                      // IdleTimeout
	maxConns atomic.Int64                      // MaxConnections
	refused  [numRefusals]atomic.Uint64
	stats    *stats.Stats
	log      *slog.Logger
	// The limiters keep warnings that clients can cause to one a second
	// each.
	udpLog     logx.Limiter  // malformed datagrams
	udpLongLog logx.Limiter  // datagrams over MaxLine: a limiter of their own, so one kind never hides the other
	lineLog    logx.Limiter  // lines over MaxLine
	publishLog logx.Limiter  // Backend.Publish errors
	refuseLog  logx.Limiter  // lines refused by their channel's policy
	udpRefLog  logx.Limiter  // datagrams refused by their channel's policy
	authLog    logx.Limiter  // lines refused for authentication
	idleLog    logx.Limiter  // connections closed for idleness
	limitLog   logx.Limiter  // connections refused at MaxConnections
	rateLog    logx.Limiter  // messages refused by CredentialRate
	done       chan struct{} // closed when Shutdown begins

	mu           sync.Mutex
	shuttingDown bool                        // guarded by mu
	listeners    map[net.Listener]struct{}   // guarded by mu
	packetConns  map[net.PacketConn]struct{} // guarded by mu
	conns        map[*conn]struct{}          // guarded by mu
	refusing     int                         // refused connections being told why; guarded by mu
	// wg counts Serve and ServeUDP loops and connection goroutines. Add is
	// called only with mu held and shuttingDown false.
	wg sync.WaitGroup
}

func (s *Server) init() {
	s.initOnce.Do(func() {
		s.stats = s.Stats
		if s.stats == nil {
			s.stats = stats.New()
		}
		s.log = s.Logger
		if s.log == nil {
			s.log = slog.New(slog.DiscardHandler)
		}
		s.done = make(chan struct{})
		s.storeToken(s.Token)
		s.idle.Store(int64(s.IdleTimeout))
		s.maxConns.Store(int64(s.MaxConnections))
	})
}

// Kinds of refusal that Refused counts.
const (
	RefusedAuth  = iota // a line refused for authentication: a wrong token, or another command before AUTH
	RefusedIdle         // a connection closed by IdleTimeout
	RefusedLimit        // a connection refused at MaxConnections
	numRefusals
)

// Refused returns how many refusals of kind (RefusedAuth, RefusedIdle,
// RefusedLimit) the Server has made, for the metrics.
func (s *Server) Refused(kind int) uint64 {
	if kind < 0 || kind >= numRefusals {
		return 0
	}
	return s.refused[kind].Load()
}

// SetToken changes Token for the connections accepted from now on; those
// already open keep what they were accepted with. Safe at any time.
func (s *Server) SetToken(token string) {
	s.init()
	s.storeToken(token)
}

func (s *Server) storeToken(token string) {
	if token == "" {
		s.token.Store(nil)
		return
	}
	sum := sha256.Sum256([]byte(token))
	s.token.Store(&sum)
}

// SetIdleTimeout changes IdleTimeout for the connections accepted from now
// on. Safe at any time.
func (s *Server) SetIdleTimeout(d time.Duration) {
	s.init()
	s.idle.Store(int64(d))
}

// SetMaxConnections changes MaxConnections; connections open beyond a
// lower cap stay. Safe at any time.
func (s *Server) SetMaxConnections(n int) {
	s.init()
	s.maxConns.Store(int64(n))
}

func (s *Server) maxLine() int {
	if s.MaxLine > 0 {
		return s.MaxLine
	}
	return DefaultMaxLine
}

func (s *Server) publishTimeout() time.Duration {
	if s.PublishTimeout > 0 {
		return s.PublishTimeout
	}
	return DefaultPublishTimeout
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout > 0 {
		return s.WriteTimeout
	}
	return DefaultWriteTimeout
}

// Serve accepts controller connections on ln and serves each in its own
// goroutine until Shutdown is called or ln fails. It closes ln before
// returning. After Shutdown it returns ErrServerClosed.
func (s *Server) Serve(ln net.Listener) error {
	s.init()
	s.mu.Lock()
	if s.shuttingDown {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
	}
	s.listeners[ln] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of file descriptors and the like: wait and retry, as
				// net/http does.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.log.Warn("controller: accept failed, retrying", "err", err, "delay", backoff)
				if !s.sleep(backoff) {
					return ErrServerClosed
				}
				continue
			}
			return fmt.Errorf("controller: accept: %w", err)
		}
		backoff = 0
		s.startConn(nc)
	}
}

func isTemporary(err error) bool {
	var t interface{ Temporary() bool }
	return errors.As(err, &t) && t.Temporary()
}

// sleep waits for d and reports false if Shutdown began meanwhile.
func (s *Server) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.done:
		return false
	}
}

func (s *Server) closing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shuttingDown
}

func (s *Server) startConn(nc net.Conn) {
	c := &conn{srv: s, nc: nc, remote: nc.RemoteAddr().String(),
		token: s.token.Load(), idle: time.Duration(s.idle.Load())}
	s.mu.Lock()
	if s.shuttingDown {
		s.mu.Unlock()
		nc.Close()
		return
	}
	if max := s.maxConns.Load(); max > 0 && int64(len(s.conns)) >= max {
		tell := s.refusing < maxRefusing
		if tell {
			s.refusing++
			s.wg.Add(1)
		}
		s.mu.Unlock()
		s.refused[RefusedLimit].Add(1)
		s.limitLog.Warn(s.log, "controller: too many connections, refusing one", "remote", c.remote, "max", max)
		if !tell {
			nc.Close()
			return
		}
		go s.refuse(nc)
		return
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()

	// Meteor 1.06 counts every accepted connection, controller or
	// subscriber, as a request.
	s.stats.Inc(stats.TotalRequests)
	s.stats.Inc(stats.ControllerConnectionsAccepted)
	s.stats.Inc(stats.CurrentControllers)
	go c.serve()
}

// refuse tells a connection refused at MaxConnections why, and closes it
// the lingering way so that the client reads the line.
func (s *Server) refuse(nc net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		s.refusing--
		s.mu.Unlock()
	}()
	nc.SetWriteDeadline(time.Now().Add(lingerTime))
	if _, err := io.WriteString(nc, replyTooMany); err != nil {
		nc.Close()
		return
	}
	lingeringClose(nc, nc)
}

func (s *Server) removeConn(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.stats.Dec(stats.CurrentControllers)
}

// Shutdown stops the listeners, sends ShutdownMsg to every controller
// connection once the commands it has already received are answered, closes
// the connections, and waits for every goroutine of the Server to end. If ctx
// ends first, Shutdown closes the remaining connections at once, waits for
// their goroutines, and returns ctx's error. A Backend call that never
// returns blocks Shutdown.
func (s *Server) Shutdown(ctx context.Context) error {
	s.init()
	s.mu.Lock()
	if !s.shuttingDown {
		s.shuttingDown = true
		close(s.done)
	}
	for ln := range s.listeners {
		ln.Close()
	}
	for pc := range s.packetConns {
		pc.Close()
	}
	// Wake every connection blocked in a read; it then answers what it has
	// buffered, sends ShutdownMsg and closes.
	now := time.Now()
	for c := range s.conns {
		c.nc.SetReadDeadline(now)
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// conn is one controller connection. Only its own goroutine uses its fields,
// except nc, whose deadlines and Close Shutdown may call.
type conn struct {
	srv    *Server
	nc     net.Conn
	remote string
	in     countingReader
	r      *bufio.Reader
	w      *bufio.Writer
	long   []byte // accumulates a line longer than r's buffer
	// pending are the ADDMESSAGE lines read but not yet published: the
	// lines a client pipelined are published in one Backend call.
	pending []engine.Publication
	// token is the SHA-256 of the token that the connection must send
	// before any other command, nil when it needs none (or has sent it).
	token *[sha256.Size]byte
	// authFailures counts the lines refused for authentication.
	authFailures int
	// credential is the CredentialRate bucket of the connection's
	// messages, "" when it authenticated with nothing.
	credential string
	// idle is the IdleTimeout the connection was accepted with.
	idle time.Duration
}

// countingReader counts the bytes read as total_inbound_bytes.
type countingReader struct {
	nc    net.Conn
	stats *stats.Stats
}

func (cr *countingReader) Read(p []byte) (int, error) {
	n, err := cr.nc.Read(p)
	if n > 0 {
		cr.stats.Add(stats.TotalInboundBytes, int64(n))
	}
	return n, err
}

// countingWriter counts the bytes written as total_outbound_bytes and bounds
// every write by the write timeout.
type countingWriter struct {
	nc      net.Conn
	stats   *stats.Stats
	timeout time.Duration
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	cw.nc.SetWriteDeadline(time.Now().Add(cw.timeout))
	n, err := cw.nc.Write(p)
	if n > 0 {
		cw.stats.Add(stats.TotalOutboundBytes, int64(n))
	}
	return n, err
}

func (c *conn) serve() {
	s := c.srv
	defer s.wg.Done()
	defer s.removeConn(c)
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("controller: panic serving connection", "remote", c.remote,
				"panic", v, "stack", string(debug.Stack()))
			c.nc.Close()
		}
	}()

	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("controller: connected", "remote", c.remote)
	}
	c.in = countingReader{nc: c.nc, stats: s.stats}
	c.r = bufio.NewReaderSize(&c.in, min(ioBufferSize, s.maxLine()+2))
	c.w = bufio.NewWriterSize(&countingWriter{nc: c.nc, stats: s.stats, timeout: s.writeTimeout()}, ioBufferSize)

	why, err := c.loop()
	switch why {
	case reason.RemoteClosed, reason.ReadFailed, reason.WriteFailed:
		c.nc.Close()
	default:
		c.lingeringClose()
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("controller: disconnected", "remote", c.remote, "reason", why.String(), "err", err)
	}
}

// loop reads and answers commands until the connection has to end.
func (c *conn) loop() (reason.Reason, error) {
	s := c.srv
	for {
		// Reply to everything answered so far before waiting for input, and
		// only then: a pipelined batch gets one write.
		if !c.lineBuffered() {
			c.publishPending()
			if err := c.w.Flush(); err != nil {
				return reason.WriteFailed, err
			}
			if c.idle > 0 {
				// The next complete line must come within idle. Shutdown
				// wakes a connection with a deadline of now: if it began
				// before this one was set, closing says so, and the
				// deadline goes back to now.
				c.nc.SetReadDeadline(time.Now().Add(c.idle))
				if s.closing() {
					c.nc.SetReadDeadline(time.Now())
				}
			}
		}
		line, err := c.readLine()
		if err != nil {
			c.publishPending()
			switch {
			case errors.Is(err, ErrLineTooLong):
				s.lineLog.Warn(s.log, "controller: line too long, closing connection",
					"remote", c.remote, "max", s.maxLine())
				c.w.WriteString("ERR Line too long\r\n")
				return reason.LineTooLong, c.w.Flush()
			case errors.Is(err, io.EOF):
				return reason.RemoteClosed, nil
			case errors.Is(err, os.ErrDeadlineExceeded) && s.closing():
				if s.ShutdownMsg != "" {
					c.w.WriteString(s.ShutdownMsg)
				}
				return reason.ServerShutdown, c.w.Flush()
			case errors.Is(err, os.ErrDeadlineExceeded) && c.idle > 0:
				s.refused[RefusedIdle].Add(1)
				s.idleLog.Log(s.log, slog.LevelInfo, "controller: idle connection closed",
					"remote", c.remote, "idleTimeout", c.idle.String())
				c.w.WriteString(replyIdle)
				return reason.IdleTimeout, c.w.Flush()
			default:
				return reason.ReadFailed, err
			}
		}
		if why := c.handle(line); why != reason.None {
			return why, c.w.Flush()
		}
	}
}

// lineBuffered reports whether a whole line waits in the read buffer.
func (c *conn) lineBuffered() bool {
	n := c.r.Buffered()
	if n == 0 {
		return false
	}
	b, _ := c.r.Peek(n)
	return bytes.IndexByte(b, '\n') >= 0
}

// readLine returns the next line without its LF or CRLF. The line is valid
// until the next call. A final line without LF is not a command and is
// dropped with the connection, as Meteor 1.06 does.
func (c *conn) readLine() ([]byte, error) {
	limit := c.srv.maxLine()
	line, err := c.r.ReadSlice('\n')
	if err == bufio.ErrBufferFull {
		c.long = append(c.long[:0], line...)
		for err == bufio.ErrBufferFull {
			// Without its LF, a line of limit+1 bytes may still end in the
			// CR of a CRLF; one of limit+2 bytes is too long for certain.
			if len(c.long) >= limit+2 {
				c.long = nil
				return nil, ErrLineTooLong
			}
			line, err = c.r.ReadSlice('\n')
			c.long = append(c.long, line...)
		}
		line = c.long
		if cap(c.long) > 4*ioBufferSize {
			c.long = nil // do not keep a large buffer for an idle connection
		}
	}
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	if len(line) > limit {
		return nil, ErrLineTooLong
	}
	return line, nil
}

// lingeringClose closes a connection that the server ends: it half-closes,
// drains what the client still sends for a short while, then closes.
func (c *conn) lingeringClose() { lingeringClose(c.nc, &c.in) }

// lingeringClose half-closes nc, drains from r (nc, or a reader of it)
// what the client still sends for a short while, then closes nc.
func lingeringClose(nc net.Conn, r io.Reader) {
	if cw, ok := nc.(interface{ CloseWrite() error }); ok && cw.CloseWrite() == nil {
		nc.SetReadDeadline(time.Now().Add(lingerTime))
		io.CopyN(io.Discard, r, lingerBytes)
	}
	nc.Close()
}

// authenticate answers a line of a connection that has yet to send its
// token: OK for the right AUTH (the connection is then authenticated),
// OK for QUIT, an ERR line for anything else. It returns why the
// connection must end, or reason.None.
func (c *conn) authenticate(line []byte) reason.Reason {
	s := c.srv
	cmd, err := ParseCommand(line)
	reply := replyAuthRequired
	switch {
	case err == nil && cmd.Kind == Quit:
		c.w.WriteString("OK\r\n")
		return reason.Quit
	case err == nil && cmd.Kind == Auth:
		sum := sha256.Sum256(cmd.Text)
		if subtle.ConstantTimeCompare(sum[:], c.token[:]) == 1 {
			c.token = nil
			c.credential = credentialName
			c.w.WriteString("OK\r\n")
			if s.log.Enabled(context.Background(), slog.LevelDebug) {
				s.log.Debug("controller: authenticated", "remote", c.remote)
			}
			return reason.None
		}
		reply = replyAuthFailed
	}
	c.authFailures++
	s.refused[RefusedAuth].Add(1)
	closing := c.authFailures >= maxAuthFailures
	// Never the line: it may hold a token.
	s.authLog.Warn(s.log, "controller: command refused for authentication", "remote", c.remote,
		"reply", strings.TrimSpace(reply), "failures", c.authFailures, "closing", closing)
	c.w.WriteString(reply)
	if closing {
		return reason.AuthFailed
	}
	return reason.None
}

// handle answers one command line and returns why the connection must
// end (QUIT, failed authentication), or reason.None.
func (c *conn) handle(line []byte) reason.Reason {
	s := c.srv
	if c.token != nil {
		return c.authenticate(line)
	}
	cmd, err := ParseCommand(line)
	if err == nil && cmd.Kind == AddMessage {
		if !c.allowRate() {
			return reason.None
		}
		c.pending = append(c.pending, engine.Publication{Channel: cmd.Channel, Text: string(cmd.Text)})
		if len(c.pending) >= maxPipelined {
			c.publishPending()
		}
		return reason.None
	}
	// Replies keep the order of the lines.
	c.publishPending()
	if err != nil {
		if s.log.Enabled(context.Background(), slog.LevelDebug) {
			s.log.Debug("controller: bad command", "remote", c.remote, "err", err,
				"line", redact(line, 80))
		}
		c.w.WriteString(errorReply(err))
		return reason.None
	}
	b := c.w.AvailableBuffer()
	switch cmd.Kind {
	case CountSubscribers:
		b = append(b, "OK "...)
		b = strconv.AppendInt(b, int64(s.Backend.CountSubscribers(cmd.Channel)), 10)
		b = append(b, "\r\n"...)
	case ListChannels:
		chans, err := s.Backend.ListChannels()
		if err != nil {
			s.publishLog.Warn(s.log, "controller: listing channels failed", "remote", c.remote, "err", err)
			c.w.WriteString(publishErrorReply(err))
			return reason.None
		}
		b = append(b, "OK\r\n"...)
		for _, ch := range chans {
			b = append(b, ch.Name...)
			b = append(b, '(')
			b = strconv.AppendInt(b, int64(ch.Messages), 10)
			b = append(b, '/')
			b = strconv.AppendInt(b, int64(ch.Subscribers), 10)
			b = append(b, ")\r\n"...)
		}
		b = append(b, "--EOT--\r\n"...)
	case ShowStats:
		b = s.appendStats(b)
	case Quit:
		b = append(b, "OK\r\n"...)
		c.w.Write(b)
		return reason.Quit
	case Auth:
		// Authenticated already, or no token is wanted: nothing to check.
		b = append(b, "OK\r\n"...)
	}
	c.w.Write(b)
	return reason.None
}

// allowRate takes one message from the bucket of the connection's
// credential. Past the rate it answers the line with an ERR, after the
// replies to the lines before it, counts it and logs it (a line a second).
func (c *conn) allowRate() bool {
	s := c.srv
	if c.credential == "" {
		return true
	}
	if ok, _ := s.CredentialRate.Allow(c.credential, 1, time.Now()); ok {
		return true
	}
	s.Metrics.PublishRefused("credential rate", 1)
	perSecond, burst := s.CredentialRate.Limit()
	s.rateLog.Log(s.log, slog.LevelInfo, "controller: publish refused: credential rate", "credential", c.credential,
		"remote", c.remote, "rate", perSecond, "burst", burst)
	c.publishPending()
	c.w.WriteString(replyRate)
	return false
}

func (s *Server) appendStats(b []byte) []byte {
	var channels int
	if s.ChannelCount != nil {
		channels = s.ChannelCount()
	} else if chans, err := s.Backend.ListChannels(); err == nil {
		channels = len(chans)
	}
	b = append(b, "OK\r\nuptime: "...)
	b = strconv.AppendInt(b, s.stats.Uptime(), 10)
	b = append(b, "\r\nchannel_count: "...)
	b = strconv.AppendInt(b, int64(channels), 10)
	b = append(b, "\r\n"...)
	for _, e := range s.stats.Snapshot() {
		b = append(b, e.Key...)
		b = append(b, ": "...)
		b = strconv.AppendInt(b, e.Value, 10)
		b = append(b, "\r\n"...)
	}
	return append(b, "--EOT--\r\n"...)
}

// publishPending publishes the pending ADDMESSAGE lines in one Backend
// call and writes their replies, in order: OK and the id for each message
// published, the ERR line of the error for the others. A line refused by
// its channel's policy gets its ERR line alone: the lines after it are
// published again, in another call.
func (c *conn) publishPending() {
	if len(c.pending) == 0 {
		return
	}
	s := c.srv
	todo := c.pending
	for len(todo) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), s.publishTimeout())
		msgs, err := s.Backend.Publish(ctx, todo)
		cancel()
		msgs = msgs[:min(len(msgs), len(todo))]
		for _, m := range msgs {
			b := c.w.AvailableBuffer()
			b = append(b, "OK\t"...)
			b = strconv.AppendUint(b, m.ID, 10)
			b = append(b, "\r\n"...)
			c.w.Write(b)
		}
		todo = todo[len(msgs):]
		if len(todo) == 0 {
			break
		}
		if re := (*hub.RefusedError)(nil); errors.As(err, &re) {
			s.refuseLog.Log(s.log, slog.LevelInfo, "controller: publish refused", "remote", c.remote,
				"channel", re.Channel, "reason", re.Reason)
			c.w.WriteString(refusedReply(re))
			todo = todo[1:]
			continue
		}
		if err != nil {
			s.publishLog.Warn(s.log, "controller: publish failed", "remote", c.remote,
				"lines", len(todo)+len(msgs), "published", len(msgs), "err", err)
		}
		for range todo {
			c.w.WriteString(publishErrorReply(err))
		}
		break
	}
	clear(c.pending)
	c.pending = c.pending[:0]
	if cap(c.pending) > maxPipelined {
		c.pending = nil
	}
}

// refusedReply is the ERR line of a publication refused by its channel's
// policy: the reason ("too large", "rate"), then what it means.
func refusedReply(re *hub.RefusedError) string {
	return "ERR " + re.Reason + ": " + re.Error() + "\r\n"
}

// publishErrorReply returns the ERR line of a failed publish: a store
// that cannot be reached says so (the publisher retries later), a server
// shutting down too; another error gives its text.
func publishErrorReply(err error) string {
	switch {
	case err == nil:
		return "ERR server error\r\n" // the backend published less than asked, without saying why
	case errors.Is(err, engine.ErrClosed):
		return "ERR server shutting down\r\n"
	case engine.Unavailable(err):
		return "ERR store unavailable\r\n"
	}
	return errorReply(err)
}

// errorReply returns the ERR line for err.
func errorReply(err error) string {
	switch {
	case errors.Is(err, ErrSyntax):
		return "ERR Invalid command syntax\r\n"
	case errors.Is(err, ErrInvalidChannel):
		return "ERR Invalid channel name\r\n"
	case errors.Is(err, ErrLineTooLong):
		return "ERR Line too long\r\n"
	}
	// A Backend error: its text, kept on one line.
	reason := strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, err.Error())
	return "ERR " + reason + "\r\n"
}

// redact is truncate for a line that may be an AUTH command: of those it
// keeps the verb alone, so that no token reaches the log.
func redact(b []byte, n int) string {
	if bytes.HasPrefix(b, []byte("AUTH")) {
		return "AUTH ..."
	}
	return truncate(b, n)
}

// truncate returns at most n bytes of b as a string for a log line.
func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// ServeUDP reads datagrams from pc, each holding one ADDMESSAGE command, and
// publishes them without reply, until Shutdown is called or pc fails. One LF
// or CRLF at the end of a datagram is ignored. Other commands are ignored;
// malformed datagrams are logged. ServeUDP closes pc before returning; after
// Shutdown it returns ErrServerClosed.
func (s *Server) ServeUDP(pc net.PacketConn) error {
	s.init()
	s.mu.Lock()
	if s.shuttingDown {
		s.mu.Unlock()
		pc.Close()
		return ErrServerClosed
	}
	if s.packetConns == nil {
		s.packetConns = make(map[net.PacketConn]struct{})
	}
	s.packetConns[pc] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.packetConns, pc)
		s.mu.Unlock()
		pc.Close()
	}()

	buf := make([]byte, maxDatagram)
	for {
		n, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if s.closing() {
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				continue
			}
			return fmt.Errorf("controller: udp read: %w", err)
		}
		s.handleDatagram(buf[:n], addr)
	}
}

// handleDatagram publishes one datagram. A panic is logged and the datagram
// dropped.
func (s *Server) handleDatagram(d []byte, addr net.Addr) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("controller: panic serving udp datagram", "remote", addr.String(),
				"panic", v, "stack", string(debug.Stack()))
		}
	}()
	if n := len(d); n > 0 && d[n-1] == '\n' {
		d = d[:n-1]
		if n := len(d); n > 0 && d[n-1] == '\r' {
			d = d[:n-1]
		}
	}
	if len(d) > s.maxLine() {
		s.udpLongLog.Warn(s.log, "controller: udp datagram too long, dropped", "remote", addr.String(), "len", len(d))
		return
	}
	cmd, err := ParseCommand(d)
	if err != nil {
		s.udpLog.Warn(s.log, "controller: bad udp datagram, dropped", "remote", addr.String(), "err", err,
			"datagram", redact(d, 80))
		return
	}
	if cmd.Kind != AddMessage {
		if s.log.Enabled(context.Background(), slog.LevelDebug) {
			s.log.Debug("controller: udp command ignored", "remote", addr.String(), "command", cmd.Kind)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.publishTimeout())
	msgs, err := s.Backend.Publish(ctx, []engine.Publication{{Channel: cmd.Channel, Text: string(cmd.Text)}})
	cancel()
	if re := (*hub.RefusedError)(nil); errors.As(err, &re) {
		s.udpRefLog.Warn(s.log, "controller: udp datagram refused, dropped", "remote", addr.String(),
			"channel", cmd.Channel, "reason", re.Reason, "err", err)
		return
	}
	if err != nil || len(msgs) != 1 {
		s.publishLog.Warn(s.log, "controller: udp publish failed", "remote", addr.String(), "channel", cmd.Channel, "err", err)
		return
	}
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("controller: udp message added", "remote", addr.String(), "channel", cmd.Channel, "id", msgs[0].ID)
	}
}

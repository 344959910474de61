// Package rawhttp is the accept loop of a listener whose every response is
// written raw on the hijacked connection: the subscriber port.
//
// net/http is not used to serve that port: its per-connection state (a 4
// KiB bufio.Reader, a 4 KiB bufio.Writer, its conn and response) was
// allocated for each subscriber only to be dropped at once, and that
// garbage, with the GC's headroom over it, was most of the memory an idle
// subscriber cost. Here a connection has a goroutine only while its request
// is read, from a pooled 1 KiB reader that goes back to the pool as soon as
// the request is parsed; then the Handler runs and the connection belongs
// to it (Take, or Hijack of the ResponseWriter), and through it to a
// transport that holds no goroutine and no buffer while idle.
package rawhttp

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/meteorpush/meteor/internal/logx"
)

// requestBufferSize is the size of the pooled readers that requests are
// read from. A subscription request is a few hundred bytes; textproto
// joins longer lines itself, so a request near MaxHeaderBytes is read too.
const requestBufferSize = 1 << 10

// requestReaders holds *bufio.Reader of requestBufferSize bytes.
var requestReaders sync.Pool

// Bounds of the back-off after a failed accept (too many open files).
const (
	acceptBackoffMin = 5 * time.Millisecond
	acceptBackoffMax = time.Second
)

// tooLargeLinger bounds how long the input of a client whose header was too
// large is read and discarded after the 431, so that the kernel does not
// reset the connection before the client reads the answer.
const (
	tooLargeLinger  = 500 * time.Millisecond
	tooLargeDiscard = 256 << 10
)

var (
	// errHeaderTooLarge means a request header passed MaxHeaderBytes.
	errHeaderTooLarge = errors.New("request header too large")
	// errRawOnly means a handler used the ResponseWriter's Write or
	// WriteHeader: on this port responses are written raw after Hijack.
	errRawOnly = errors.New("rawhttp: responses are written on the hijacked connection")
)

// response431 is net/http's answer to a header past MaxHeaderBytes, byte
// for byte.
const response431 = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n431 Request Header Fields Too Large"

// TestHookRequest, when set by a test, runs before each parsed request is
// routed.
var TestHookRequest func(*http.Request)

// Server accepts connections and hands each one's request to Handler. Set
// its fields before the first Serve and do not change them afterwards.
type Server struct {
	// Handler routes each request. It answers on the connection, which
	// it takes with Take (or the ResponseWriter's Hijack); a connection
	// it did not take is closed when it returns. Write and WriteHeader
	// of the ResponseWriter fail: every answer is written raw.
	Handler http.Handler
	// RequestTimeout bounds the wait for a request's header;
	// MaxHeaderBytes its size.
	RequestTimeout time.Duration
	MaxHeaderBytes int
	// WriteTimeout returns the bound of the writes of an answer to a
	// request that could not be read (400, 431).
	WriteTimeout func() time.Duration
	// NoDelay returns whether accepted connections keep TCP_NODELAY.
	NoDelay func() bool
	// ServerName is the Server header of those answers.
	ServerName string
	// Name names the listener in the log ("subscriber").
	Name string
	// Log receives the loop's log.
	Log *slog.Logger
	// OnAccept runs for each accepted connection, OnUnhijacked for each
	// that ends without having been taken (the counters of open
	// connections).
	OnAccept, OnUnhijacked func()
	// Admit, when set, runs for each accepted connection before OnAccept
	// and reports whether it may be served (MaxConnections). One it
	// refuses is answered Full at once, without its request being read,
	// and closed, on the accept loop: it costs no goroutine, and the loop
	// never pauses for it. OnRefused then runs (the metric, the log).
	Admit     func() bool
	OnRefused func(remote net.Addr)
	// Full is the answer to a connection that Admit refuses.
	Full []byte

	mu        sync.Mutex
	listeners map[net.Listener]struct{} // guarded by mu; being served
	// accepted holds the connections whose request is being read (true)
	// or routed (false); guarded by mu.
	accepted  map[net.Conn]bool
	shutting  bool           // guarded by mu
	accepting sync.WaitGroup // connections until their request is routed
	stop      chan struct{}  // closed by Stop
	// The logs of refused requests, one line a second each: a limiter per
	// kind, so that a flood of one (a slow-loris attack's timeouts) does
	// not hide the others.
	badLog      logx.Limiter // 400: malformed requests
	tooLargeLog logx.Limiter // 431: heads past MaxHeaderBytes
	timeoutLog  logx.Limiter // heads not received within RequestTimeout
}

// init makes the maps; the caller holds s.mu.
func (s *Server) initLocked() {
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
		s.accepted = make(map[net.Conn]bool)
		s.stop = make(chan struct{})
	}
}

// acceptedConn is one connection from its accept until its request has been
// routed. It is the limited reader the request is parsed from and the
// http.ResponseWriter and http.Hijacker handed to the route.
type acceptedConn struct {
	nc   net.Conn
	left int // header bytes the client may still send
	// readErr is the error of the last read: a request cut short by a
	// hang-up or the timeout can look malformed to the parser, which sees
	// its partial last line as a whole one.
	readErr error
	// rest is what the client sent after the request, when it sent
	// anything, for Hijack's bufio.Reader.
	rest     []byte
	hijacked bool
	header   http.Header // made on first use; never sent
	// out is the output the route made for the connection, if any (its
	// outq.Conn): the connection's descriptor may have left nc by then.
	out Shutdowner
}

// Shutdowner is an output that can end a connection that its owner will
// then close by its own path (outq.Conn).
type Shutdowner interface {
	Shutdown()
}

// SetOutput records on w, the ResponseWriter of a request being routed,
// the output that now owns the connection, so that a panic in the route
// shuts it down through its owner.
func SetOutput(w http.ResponseWriter, out Shutdowner) {
	if ac, ok := w.(*acceptedConn); ok {
		ac.out = out
	}
}

// Take takes the connection of w, the ResponseWriter of a request being
// routed, without buffers (Hijack gives some, for libraries that want
// them), and clears its deadlines.
func Take(w http.ResponseWriter) (net.Conn, error) {
	var nc net.Conn
	var err error
	if ac, ok := w.(*acceptedConn); ok {
		nc, err = ac.take()
	} else if hj, ok := w.(http.Hijacker); ok {
		nc, _, err = hj.Hijack()
	} else {
		err = errors.New("connection cannot be hijacked")
	}
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return nc, nil
}

var (
	_ http.ResponseWriter = (*acceptedConn)(nil)
	_ http.Hijacker       = (*acceptedConn)(nil)
)

// Read reads from the connection until MaxHeaderBytes have been read.
func (c *acceptedConn) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errHeaderTooLarge
	}
	if len(p) > c.left {
		p = p[:c.left]
	}
	n, err := c.nc.Read(p)
	c.left -= n
	c.readErr = err
	return n, err
}

// Header returns a header that is never sent: every response on this port
// is written raw.
func (c *acceptedConn) Header() http.Header {
	if c.header == nil {
		c.header = make(http.Header)
	}
	return c.header
}

func (c *acceptedConn) Write([]byte) (int, error) { return 0, errRawOnly }

func (c *acceptedConn) WriteHeader(int) {}

// Hijack hands over the connection. The bufio.Reader holds what the client
// sent after its request; the bufio.Writer is a small one of its own, for
// gorilla/websocket's handshake.
func (c *acceptedConn) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, err := c.take()
	if err != nil {
		return nil, nil, err
	}
	var br *bufio.Reader
	if len(c.rest) > 0 {
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(c.rest), nc), len(c.rest))
		br.Peek(len(c.rest))
		c.rest = nil
	} else {
		br = bufio.NewReaderSize(nc, 16)
	}
	return nc, bufio.NewReadWriter(br, bufio.NewWriterSize(nc, 256)), nil
}

// take hands over the connection without buffers.
func (c *acceptedConn) take() (net.Conn, error) {
	if c.hijacked {
		return nil, http.ErrHijacked
	}
	c.hijacked = true
	return c.nc, nil
}

// Serve accepts connections on ln until Stop. A failure to accept that
// may pass (too many open files) is retried after a pause that doubles up
// to a second.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	s.initLocked()
	if s.shutting {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()
	var backoff time.Duration
	failures := 0
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isShutting() {
				return nil
			}
			if !temporaryAcceptError(err) {
				return err
			}
			backoff = min(max(2*backoff, acceptBackoffMin), acceptBackoffMax)
			if failures == 0 {
				s.Log.Warn(s.Name+" accept failed; backing off", "err", err)
			}
			failures++
			select {
			case <-time.After(backoff):
			case <-s.stop:
				return nil
			}
			continue
		}
		if failures > 0 {
			s.Log.Warn(s.Name+" accept works again", "failures", failures)
			backoff, failures = 0, 0
		}
		if s.Admit != nil && !s.Admit() {
			s.refuseFull(nc)
			continue
		}
		s.mu.Lock()
		if s.shutting {
			s.mu.Unlock()
			nc.Close()
			return nil
		}
		s.accepted[nc] = true
		s.accepting.Add(1)
		s.mu.Unlock()
		if s.OnAccept != nil {
			s.OnAccept()
		}
		go s.serveConn(nc)
	}
}

// fullWriteTimeout bounds the write of the answer to a refused
// connection. A new socket's buffer takes a few hundred bytes at once; the
// bound only keeps a broken one from holding the accept loop.
const fullWriteTimeout = 50 * time.Millisecond

// refuseFull answers nc, a connection that Admit refused, with Full and
// closes it at once. Its request is not read: a client that already sent
// it may see a reset instead of the answer, and retries either way, on a
// new source port that the kernel may hash to another process of the
// SO_REUSEPORT group.
func (s *Server) refuseFull(nc net.Conn) {
	// Counted first, so that whoever sees the answer sees the count.
	if s.OnRefused != nil {
		s.OnRefused(nc.RemoteAddr())
	}
	if len(s.Full) > 0 {
		nc.SetWriteDeadline(time.Now().Add(fullWriteTimeout))
		nc.Write(s.Full)
	}
	nc.Close()
}

// temporaryAcceptError reports whether an accept that failed with err may
// work later: the process or the system is out of files or memory.
func temporaryAcceptError(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}

func (s *Server) isShutting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutting
}

// serveConn reads one request from nc, within RequestTimeout, and routes
// it. A connection that is not hijacked by its route is closed here.
func (s *Server) serveConn(nc net.Conn) {
	SetNoDelay(nc, s.NoDelay == nil || s.NoDelay())
	c := &acceptedConn{nc: nc, left: s.MaxHeaderBytes}
	defer func() {
		if p := recover(); p != nil {
			s.Log.Error("panic serving a "+s.Name+" connection", "remote", nc.RemoteAddr().String(),
				"panic", p, "stack", string(debug.Stack()))
			if c.out != nil {
				// The connection may belong to a transport by now: shut
				// it down without closing the file, so that its owner
				// (the outq.Watcher, a WebSocket read loop) sees a
				// hang-up and closes it by its own path, counters and
				// registry included.
				c.out.Shutdown()
			} else if c.hijacked {
				if tc, ok := nc.(*net.TCPConn); ok {
					tc.CloseRead()
					tc.CloseWrite()
				}
			}
		}
		if !c.hijacked {
			nc.Close()
			if s.OnUnhijacked != nil {
				s.OnUnhijacked()
			}
		}
		s.mu.Lock()
		delete(s.accepted, nc)
		s.mu.Unlock()
		s.accepting.Done()
	}()
	r, err := s.readRequest(c)
	s.mu.Lock()
	s.accepted[nc] = false // routed from here on
	s.mu.Unlock()
	if err != nil {
		s.refuseRequest(c, err)
		return
	}
	if TestHookRequest != nil {
		TestHookRequest(r)
	}
	s.Handler.ServeHTTP(c, r)
	if !c.hijacked {
		s.Log.Debug("request not answered", "remote", r.RemoteAddr, "uri", logx.URI(r.RequestURI))
	}
}

// readRequest reads and checks the request of c, as net/http's server
// does, from a pooled reader that is returned before the request is routed.
func (s *Server) readRequest(c *acceptedConn) (*http.Request, error) {
	c.nc.SetReadDeadline(time.Now().Add(s.RequestTimeout))
	br, _ := requestReaders.Get().(*bufio.Reader)
	if br == nil {
		br = bufio.NewReaderSize(c, requestBufferSize)
	} else {
		br.Reset(c)
	}
	r, err := http.ReadRequest(br)
	if err == nil && br.Buffered() > 0 {
		// Input after the request is ignored, as it always was, except
		// that a WebSocket handshake refuses it.
		b, _ := br.Peek(br.Buffered())
		c.rest = bytes.Clone(b)
	}
	br.Reset(nil)
	requestReaders.Put(br)
	if err != nil {
		if c.left <= 0 {
			return nil, errHeaderTooLarge
		}
		return nil, err
	}
	if err := checkRequest(r); err != nil {
		return nil, err
	}
	// The body, if any, was in the pooled reader: no route reads one.
	r.Body = http.NoBody
	r.RemoteAddr = c.nc.RemoteAddr().String()
	return r, nil
}

// requestError is a request that breaks HTTP/1.1; its text is the reason
// given in the 400.
type requestError string

func (e requestError) Error() string { return string(e) }

// checkRequest applies the rules net/http's server adds to ReadRequest's.
func checkRequest(r *http.Request) error {
	if r.ProtoMajor != 1 {
		return requestError("unsupported protocol version")
	}
	// ReadRequest moved Host from the header to r.Host; an absolute URL's
	// host wins over the header.
	if r.ProtoAtLeast(1, 1) && r.Host == "" {
		return requestError("missing required Host header")
	}
	if !validHost(r.Host) {
		return requestError("malformed Host header")
	}
	// textproto keeps a name with white space before its colon
	// ("Transfer-Encoding : chunked") as it is; RFC 9112 section 5.1 asks
	// for a 400, as net/http's server answers.
	for k := range r.Header {
		if !validHeaderName(k) {
			return requestError("invalid header name " + strconv.Quote(k) + " (no white space before the colon)")
		}
	}
	if why := CheckQuery(r.URL.RawQuery); why != "" {
		return requestError(why)
	}
	return nil
}

// CheckQuery returns why a raw query is refused, or "" when it is not: a
// ';' or a bad escape ("%zz"), which url.Values would drop with its pair
// (Go's rule since 1.17), so that, say, since=x:1;y:2 would start from
// now with no gap and callback=a;b would answer plain JSON. The subscriber
// port and the HTTP API refuse such a query with a 400 that says why.
func CheckQuery(raw string) string {
	if raw == "" {
		return ""
	}
	if strings.IndexByte(raw, ';') >= 0 {
		return "a ';' in the query: separate parameters with '&' and write a ';' in a value as %3B"
	}
	if _, err := url.ParseQuery(raw); err != nil {
		return "malformed query: " + err.Error()
	}
	return ""
}

// validHeaderName reports whether k is an HTTP token (RFC 9110 section
// 5.1): the bytes a field name may have.
func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// validHost reports whether h has only the bytes a Host header may have
// (net/http's rule: httpguts.ValidHostHeader).
func validHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("!$%&'()*+,-.:;=[]_~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// refuseRequest answers a request that could not be read: 431 when its
// header is too large, 400 with the reason when it is malformed, nothing
// when the client hung up or sent nothing in time. Refusals and timeouts
// are logged at info, one line a second at most for each of the three
// (the client's doing: one client must not flood the log); a client that
// just hung up, at debug.
func (s *Server) refuseRequest(c *acceptedConn, err error) {
	remote := c.nc.RemoteAddr().String()
	var (
		re requestError
		pe textproto.ProtocolError
		ue *url.Error
		oe *net.OpError
	)
	why := "malformed request"
	switch {
	case errors.Is(err, errHeaderTooLarge):
		s.tooLargeLog.Log(s.Log, slog.LevelInfo, "request refused", "listener", s.Name, "remote", remote, "status", 431, "reason", err.Error())
		s.answerAndLinger(c.nc, []byte(response431))
		return
	case errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(c.readErr, os.ErrDeadlineExceeded):
		s.timeoutLog.Log(s.Log, slog.LevelInfo, "request not received in time; connection closed", "listener", s.Name, "remote", remote, "timeout", s.RequestTimeout)
		return
	case c.readErr != nil, errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &oe),
		errors.Is(err, net.ErrClosed):
		// Hung up, closed by Shutdown, or a network error: there is no
		// one to answer.
		if s.Log.Enabled(context.Background(), slog.LevelDebug) {
			s.Log.Debug("request not read", "remote", remote, "err", err)
		}
		return
	case errors.As(err, &re):
		why = string(re)
	case errors.As(err, &pe):
		why = "malformed header"
	case errors.As(err, &ue):
		why = "malformed request target"
	}
	s.badLog.Log(s.Log, slog.LevelInfo, "request refused", "listener", s.Name, "remote", remote, "status", 400, "reason", why, "err", logx.Text(err.Error()))
	c.nc.SetWriteDeadline(time.Now().Add(s.writeTimeout()))
	c.nc.Write(BadRequest(s.ServerName, why))
}

// answerAndLinger writes b, ends the output, and reads and discards what
// the client still sends, for a while, before the connection is closed:
// closing a socket with unread input resets it, and the client might lose
// the answer.
func (s *Server) answerAndLinger(nc net.Conn, b []byte) {
	nc.SetWriteDeadline(time.Now().Add(s.writeTimeout()))
	if _, err := nc.Write(b); err != nil {
		return
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	nc.SetReadDeadline(time.Now().Add(tooLargeLinger))
	io.CopyN(io.Discard, nc, tooLargeDiscard)
}

func (s *Server) writeTimeout() time.Duration {
	if s.WriteTimeout != nil {
		return s.WriteTimeout()
	}
	return 10 * time.Second
}

// BadRequest is the whole 400 answer with why in plain text; server is
// its Server header.
func BadRequest(server, why string) []byte {
	body := why + "\n"
	b := make([]byte, 0, 160+len(body))
	b = append(b, "HTTP/1.1 400 Bad Request\r\nServer: "+server+"\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(body)), 10)
	b = append(b, "\r\nConnection: close\r\n\r\n"...)
	return append(b, body...)
}

// Stop stops the listeners, makes Serve return, and closes the
// connections still reading their request. The connections being routed
// go on: Wait waits for them.
func (s *Server) Stop() {
	s.mu.Lock()
	s.initLocked()
	if !s.shutting {
		s.shutting = true
		close(s.stop)
	}
	for ln := range s.listeners {
		ln.Close()
	}
	for nc, reading := range s.accepted {
		if reading {
			nc.Close()
		}
	}
	s.mu.Unlock()
}

// Wait waits until every connection's request has been routed. When ctx
// ends first, the connections still being routed are closed, and then it
// waits for them.
func (s *Server) Wait(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		s.accepting.Wait()
		close(done)
	}()
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	s.mu.Lock()
	for nc := range s.accepted {
		nc.Close()
	}
	s.mu.Unlock()
	<-done
}

// SetNoDelay sets TCP_NODELAY on nc. Go turns it on for every connection;
// SubscriberNoDelay 0 turns it off, so that the kernel may coalesce a
// subscriber's small writes while earlier bytes are unacknowledged.
func SetNoDelay(nc net.Conn, on bool) {
	if tc, ok := nc.(*net.TCPConn); ok && !on {
		tc.SetNoDelay(false)
	}
}

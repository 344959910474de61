package subscriber

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"

	"github.com/meteorpush/meteor/internal/auth"
	"github.com/meteorpush/meteor/internal/channel"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/metrics"
	"github.com/meteorpush/meteor/internal/outq"
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/stats"
	"github.com/meteorpush/meteor/internal/wire"
)

// How a WebSocket connection is read and written. gorilla/websocket
// checks the handshake and writes the 101; the connection is then the
// server's alone. Like every other transport it leaves Go's network
// poller (outq, with the Watcher): an idle WebSocket holds no goroutine
// and no buffer. When the client sends something the Watcher reports it
// (outq.Options.OnReadable) and a short-lived goroutine reads what there
// is into a pooled buffer, takes the whole frames from it (wire.NextFrame,
// on gobwas/ws), runs the client's operations in order, keeps the bytes of
// a frame not yet whole, and asks for the next readiness. Every server
// frame (messages, replies, heartbeats, pongs, close frames) is built by
// package wire and goes through the connection's outq.Conn, so that
// fan-out never blocks and no two writers share the socket.

const (
	// wsReadBuffer is the size of the pooled buffers a readiness is read
	// into; the bytes of a frame not yet whole are kept apart.
	wsReadBuffer = 4 << 10
	// wsSmallRead is the first read of a readiness, on the goroutine's
	// stack.
	wsSmallRead = 512
	// wsMaxStrikes refused client messages within wsStrikeWindow close the
	// connection as a policy violation.
	wsMaxStrikes   = 10
	wsStrikeWindow = time.Minute
)

// wsWriteBuffers is gorilla's write buffer pool for the handshake.
var wsWriteBuffers = &sync.Pool{}

// wsReadBuffers holds the *[]byte that readinesses are read into.
var wsReadBuffers = sync.Pool{New: func() any {
	b := make([]byte, wsReadBuffer)
	return &b
}}

// Errors the error frame reports for refused operations, besides those of
// wire.ParseClientMessage.
var (
	// errWSBinary means the client sent a binary message.
	errWSBinary = errors.New("binary messages are not accepted")
	// errWSChannel means a channel name breaks the grammar.
	errWSChannel = errors.New("bad channel: " + channel.Rule)
	// errWSSubscribed means the channel is already subscribed on this socket.
	errWSSubscribed = errors.New("already subscribed")
	// errWSNotSubscribed means unsubscribe named a channel not subscribed.
	errWSNotSubscribed = errors.New("not subscribed")
)

func (c *wsConn) remote() string { return c.ip }

// wsConn is one WebSocket subscriber connection. It is the hub.Client of
// every channel it joins.
type wsConn struct {
	output
	registered
	mu      sync.Mutex
	sent    int  // guarded by mu; messages written
	closing bool // guarded by mu; the close frame queued
	// epochs is the stream epoch each subscribed channel was last seen
	// in, to tell the client when delivery crosses into another stream;
	// guarded by mu. A slice: a connection has a few channels, and a scan
	// of short strings costs a delivery less than a map lookup, and an
	// idle connection less than a map's bucket.
	epochs []wsEpoch

	ip        string
	agent     string
	start     time.Time
	heartbeat time.Duration
	nextBeat  time.Time // owned by the ticker goroutine
	maxChans  int
	// subscribeTimeout bounds the engine calls of one subscribe.
	subscribeTimeout time.Duration
	channels         []string // guarded by Server.mu; joined, emptied on close

	// What the reading goroutine keeps between readinesses; one runs at a
	// time (outq's one-shot readiness), so these need no lock.
	state       atomic.Int32 // wsOpening, wsOpen, wsReadWaiting
	in          []byte       // a frame not yet whole; nil when none
	msg         []byte       // a fragmented message so far
	msgOp       ws.OpCode    // its opcode; 0 when none is in progress
	strikes     uint8        // refused operations since firstStrike
	firstStrike time.Time
	// grant is what its token allows (nil: no token yet), set at the
	// handshake and by auth ops, read by subscribe ops: the reading
	// goroutine's alone. The rule and the keys it is checked against are
	// the latest settings' (a reload that turns SubscriberAuth on, or
	// rotates a key, applies to the next operation).
	grant *auth.Grant
	// subject is the token's sub, who the connection is in the presence
	// lists: set before its first subscription, never changed after.
	subject string
}

// The states of a wsConn before its first read: readiness can be
// reported before the connection is registered, and its operations must
// wait for that.
const (
	wsOpening     = iota // the route is still registering the connection
	wsOpen               // reads run on readiness
	wsReadWaiting        // readiness came while opening: the route reads
)

// tick sends the heartbeat that browser code can see.
func (c *wsConn) tick(now time.Time) {
	if c.heartbeat <= 0 {
		return
	}
	due := now.Add(tickPeriod / 2)
	if due.Before(c.nextBeat) {
		return
	}
	c.Write(wire.PingFrame)
	c.nextBeat = c.nextBeat.Add(c.heartbeat)
	if c.nextBeat.Before(due) {
		c.nextBeat = now.Add(c.heartbeat) // fell behind
	}
}

func (c *wsConn) shutdown(r reason.Reason) { c.Close(r) }

func (c *wsConn) abort() { c.Out.Close(reason.ServerShutdown) }

// serveWebSocket upgrades GET /ws. The connection then holds no
// goroutine: its input is read on readiness (wsReadable).
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, set *Settings) {
	u := websocket.Upgrader{
		ReadBufferSize:   16, // never read through: gorilla's Conn is dropped
		WriteBufferPool:  wsWriteBuffers,
		HandshakeTimeout: set.WriteTimeout,
		CheckOrigin:      func(r *http.Request) bool { return wsOriginAllowed(set, r) },
		Error: func(_ http.ResponseWriter, r *http.Request, status int, reason error) {
			s.wsRefuse(w, r, set, status, reason)
		},
	}
	var grant *auth.Grant
	if set.Auth.Required != nil {
		// A token at the handshake (?token=, or a header from a client
		// that is not a browser); without one, an auth op may bring it.
		if cred := requestCredential(r, ""); cred.token != "" || cred.malformed != "" {
			cred.exp, cred.sig = "", ""
			g, err := set.Auth.verify(cred, nil, time.Now())
			if err != nil {
				s.authRefused(w, r, set, metrics.WebSocket, err)
				return
			}
			grant = &g
		}
	}
	hj := &wsHijacker{ResponseWriter: w}
	if _, err := u.Upgrade(hj, r, nil); err != nil {
		if hj.nc != nil {
			// Hijacked, then failed: net/http no longer counts it.
			hj.nc.Close()
			s.stats.Dec(stats.CurrentSubscribers)
			s.log.Debug("websocket handshake failed", "ip", remoteIP(r), "err", err)
		}
		return
	}
	// gorilla read nothing past the handshake (it refuses a client that
	// sent data before the 101), so the socket holds all the client sent.
	hj.nc.SetDeadline(time.Time{})
	c := &wsConn{
		ip:        remoteIP(r),
		agent:     r.UserAgent(),
		start:     time.Now(),
		heartbeat: set.Heartbeat,
		maxChans:  set.MaxChannels,

		subscribeTimeout: set.SubscribeTimeout,
		grant:            grant,
	}
	if grant != nil {
		c.subject = grant.Subject
		setExpiry(c, *grant)
	}
	c.nextBeat = c.start.Add(set.Heartbeat)
	c.Stats, c.Metrics = s.stats, s.Metrics.For(metrics.WebSocket)
	c.Metrics.Connected()
	c.Out = s.openOut(w, hj.nc, set, c, true)
	if !s.register(c, nil) {
		c.Close(s.stoppingReason())
		return
	}
	if c.Out.Closed() {
		// It closed (a reset right after the 101) before it was
		// registered: its close hook found nothing to remove.
		s.mu.Lock()
		s.removeLocked(c)
		s.mu.Unlock()
		return
	}
	s.log.Debug("websocket open", "ip", c.ip, "useragent", c.agent)
	if c.state.Swap(wsOpen) == wsReadWaiting {
		s.wsRead(c)
	}
}

// wsHijacker keeps the connection gorilla hijacks.
type wsHijacker struct {
	http.ResponseWriter
	nc net.Conn // set once hijacked
}

func (h *wsHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	nc, brw, err := hj.Hijack()
	if err == nil {
		h.nc = nc
	}
	return nc, brw, err
}

// wsReadable is outq's OnReadable for WebSocket connections: the client
// sent something. It runs on a goroutine of its own, tracked by s.group.
func (s *Server) wsReadable(owner any) {
	c, ok := owner.(*wsConn)
	if !ok {
		return
	}
	// Before the route has registered the connection, leave the read to
	// the route.
	if c.state.CompareAndSwap(wsOpening, wsReadWaiting) {
		return
	}
	defer func() {
		// An operation's panic (the hub, the engine) must not take the
		// server down from this goroutine, which nothing else recovers.
		if p := recover(); p != nil {
			s.log.Error("panic serving a WebSocket operation", "ip", c.ip, "panic", p, "stack", string(debug.Stack()))
			c.Out.Close(reason.Panic)
		}
	}()
	s.wsRead(c)
}

// wsRead reads what the client sent until the socket has nothing more,
// runs it, and asks for the next readiness.
func (s *Server) wsRead(c *wsConn) {
	// A first read into a small buffer of the goroutine's own: most
	// readinesses carry one small operation, or the end of the input (all
	// the clients of a node hanging up at once must not take a pooled
	// buffer each). A full one means more waits: the pooled buffer then.
	var small [wsSmallRead]byte
	buf := small[:]
	for {
		n, err := c.Out.Read(buf)
		if n == len(buf) && len(buf) == wsSmallRead {
			bp := wsReadBuffers.Get().(*[]byte)
			defer wsReadBuffers.Put(bp)
			if !s.wsInput(c, buf[:n]) {
				return
			}
			buf = *bp
			continue
		}
		if n > 0 && !s.wsInput(c, buf[:n]) {
			return
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, outq.ErrWouldBlock):
			if err := c.Out.WatchRead(); err != nil && !c.Out.Closed() {
				// Unwatched, it would be neither read nor seen to hang up.
				s.log.Warn("websocket: cannot watch the connection", "ip", c.ip, "err", err)
				c.Out.Close(reason.ReadFailed)
			}
			return
		default:
			// The end of the input (or of the connection): a client that
			// closed without a close frame, or after the server's.
			c.Out.Close(reason.RemoteClosed)
			return
		}
	}
}

// wsInput takes the whole frames of what was read, after what was kept
// from before, and runs them. It reports false once the connection is
// closing: nothing more is read.
func (s *Server) wsInput(c *wsConn, b []byte) bool {
	if len(c.in) > 0 {
		c.in = append(c.in, b...)
		b = c.in
	}
	for {
		if c.Closing() {
			c.in = nil
			return false
		}
		f, n, err := wire.NextFrame(b, c.msgOp != 0, wire.MaxClientMessage)
		switch {
		case errors.Is(err, wire.ErrFrameTooBig):
			c.Close(reason.MessageTooBig)
			return false
		case err != nil:
			s.log.Debug("websocket protocol error", "ip", c.ip, "err", err)
			c.Close(reason.ProtocolError)
			return false
		case n == 0:
			// Keep the start of a frame not yet whole (b may be the
			// pooled buffer).
			if len(b) == 0 {
				c.in = nil
			} else {
				c.in = append(c.in[:0:0], b...)
			}
			return true
		}
		b = b[n:]
		if !s.wsFrame(c, f) {
			c.in = nil
			return false
		}
	}
}

// wsFrame runs one client frame: control frames at once, data frames
// once their message is whole.
func (s *Server) wsFrame(c *wsConn, f wire.ClientFrame) bool {
	switch f.Op {
	case ws.OpPing:
		c.Write(wire.PongFrame(string(f.Payload)))
		return true
	case ws.OpPong:
		return true
	case ws.OpClose:
		var code uint16
		if len(f.Payload) >= 2 {
			code = uint16(f.Payload[0])<<8 | uint16(f.Payload[1])
		}
		if len(f.Payload) == 1 || len(f.Payload) >= 2 && !validCloseCode(code) {
			c.Close(reason.ProtocolError) // RFC 6455, section 7.4
			return false
		}
		c.Echo(code)
		return false
	case ws.OpText, ws.OpBinary:
		c.msgOp, c.msg = f.Op, c.msg[:0]
	}
	// A data frame, or a continuation of one.
	if len(c.msg)+len(f.Payload) > wire.MaxClientMessage {
		c.Close(reason.MessageTooBig)
		return false
	}
	c.msg = append(c.msg, f.Payload...)
	if !f.Fin {
		return true
	}
	op, msg := c.msgOp, c.msg
	c.msgOp, c.msg = 0, nil
	var err error
	if op != ws.OpText {
		err = errWSBinary
	} else {
		err = s.wsOp(c, msg)
	}
	if err != nil {
		s.wsStrike(c, err)
	}
	return !c.Closing()
}

// validCloseCode reports whether a client may send code in a close frame
// (RFC 6455, section 7.4): the defined codes that are sent, and the
// registered and private ranges.
func validCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1011:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// wsStrike answers a refused operation with an error frame, and closes
// the connection as a policy violation at the wsMaxStrikes-th within
// wsStrikeWindow.
func (s *Server) wsStrike(c *wsConn, err error) {
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		s.log.Debug("websocket refused op", "ip", c.ip, "err", err)
	}
	now := time.Now()
	if c.strikes == 0 || now.Sub(c.firstStrike) > wsStrikeWindow {
		c.strikes, c.firstStrike = 0, now
	}
	c.strikes++
	c.Write(wire.ErrorFrame(err.Error()))
	if c.strikes >= wsMaxStrikes {
		s.badLog.Log(s.log, slog.LevelInfo, "websocket closed for bad input", "ip", c.ip, "err", err)
		c.Close(reason.PolicyViolation)
	}
}

// wsRefuse answers a request to /ws that cannot be upgraded.
func (s *Server) wsRefuse(w http.ResponseWriter, r *http.Request, set *Settings, status int, reason error) {
	s.stats.Inc(stats.ErrorsServed)
	s.log.Info("websocket refused", "ip", remoteIP(r), "status", status, "reason", reason.Error(), "origin", r.Header.Get("Origin"))
	body := reason.Error() + "\n"
	b := fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nServer: %s\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\nSec-WebSocket-Version: 13\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, http.StatusText(status), ServerName, len(body), body)
	s.reply(w, b, set.WriteTimeout)
}

// wsOriginAllowed reports whether a handshake may proceed: a request with
// no Origin (not from a browser), from the server's own origin, or from one
// listed in CORSOrigins ("*": any).
func wsOriginAllowed(set *Settings, r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	if u, err := url.Parse(origin); err == nil && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return corsAllowed(set.CORSOrigins, origin)
}

// wsOp runs one client message. An error is reported to the client in an
// error frame; the connection stays open.
func (s *Server) wsOp(c *wsConn, p []byte) error {
	m, err := wire.ParseClientMessage(p)
	if err != nil {
		return err
	}
	switch m.Op {
	case wire.OpPing:
		c.Write(wire.PongReplyFrame)
		return nil
	case wire.OpUnsubscribe:
		return s.wsUnsubscribe(c, m.Channel)
	case wire.OpAuth:
		s.wsAuth(c, m.Token)
		return nil
	default:
		return s.wsSubscribe(c, m)
	}
}

// wsSubscribe joins a channel: the subscribed frame, a gap frame when a
// resumed position is no longer stored, then the history and live messages.
func (s *Server) wsSubscribe(c *wsConn, m wire.ClientMessage) error {
	if !channel.Valid(m.Channel) {
		return errWSChannel
	}
	s.mu.Lock()
	already := slices.Contains(c.channels, m.Channel)
	n := len(c.channels)
	s.mu.Unlock()
	switch {
	case already:
		return errWSSubscribed
	case c.maxChans > 0 && n >= c.maxChans:
		return fmt.Errorf("%w: at most %d per connection", ErrTooManyChannels, c.maxChans)
	}
	if err := c.authorize(&s.settings.Load().Auth, m.Channel, time.Now()); err != nil {
		ae := authError(err)
		s.Metrics.AuthRefused(ae.Check)
		s.authLog.Log(s.log, slog.LevelInfo, "subscription refused", "ip", c.ip, "transport", metrics.WebSocket,
			"channel", m.Channel, "status", ae.Status(), "check", ae.Check, "err", ae.Error())
		c.Write(wire.AuthErrorFrame(m.Channel, ae.Status(), ae.Check, ae.Error()))
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.subscribeTimeout)
	joined, activate := s.hub.Subscribe(ctx, c, []hub.Sub{{Channel: m.Channel, Query: m.Query}}, true)
	cancel()
	if err := joined[0].Err; err != nil {
		// Only this channel failed (the hub has dropped c from it): the
		// client is told when to subscribe again; the connection and its
		// other channels go on.
		r, retry := failure(err)
		s.storeLog.Warn(s.log, "subscribe failed", "ip", c.ip, "transport", metrics.WebSocket, "channel", m.Channel, "reason", r.String(), "err", err)
		c.Write(wire.SubscribeErrorFrame(m.Channel, r.String(), max(retry, 1)))
		return nil
	}
	s.mu.Lock()
	open := c.slot != 0
	if open {
		c.channels = append(c.channels, m.Channel)
		s.Metrics.Subscribed(1)
	}
	s.mu.Unlock()
	if !open {
		// Closed meanwhile; its close hook may have left the hub before
		// the join.
		s.hub.Unsubscribe(c)
		return nil
	}
	h := joined[0].History
	pos, gap, isGap := startPosition(m.Channel, streamSub{resume: m.Resume, since: m.Since}, h)
	c.SetEpoch(m.Channel, pos.Epoch)
	// lastId is the newest id the channel had handed out when it was
	// read; the messages that follow (history first) are those after the
	// client's position.
	c.Write(wire.SubscribedFrame(m.Channel, engine.Position{ID: h.Stream.Top(), Epoch: pos.Epoch}))
	if isGap {
		c.Write(wire.GapFrame(gap))
	}
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		s.log.Info("joinchannel", "ip", c.ip, "transport", metrics.WebSocket, "channel", m.Channel,
			"start", startOf(m.Query, h), "useragent", c.agent, subAttr(c.subject))
	}
	activate()
	return nil
}

// authorize reports why c may not subscribe to name, nil when it may:
// the channel needs no token, or c's grant allows it and has not expired.
func (c *wsConn) authorize(a *Authz, name string, now time.Time) error {
	if a.Required == nil || !a.Required(name) {
		return nil
	}
	switch {
	case c.grant == nil:
		return &auth.Error{Check: auth.CheckMissing, Err: errors.New("no token: send {\"op\":\"auth\",\"token\":...} or connect with ?token=")}
	case !c.grant.Expiry.IsZero() && !now.Before(c.grant.Expiry):
		return &auth.Error{Check: auth.CheckExpired, Err: errors.New("the token expired")}
	}
	return c.grant.Authorize(name)
}

// wsAuth takes the token of an auth op: the connection's first, or a
// fresh one before the current one expires. A token that does not verify
// closes the connection (tokenExpired when it had expired, so that the
// client gets a new one and comes back; authFailed otherwise), as does one
// for another subject than the connection's. Channels that the new token
// no longer grants are left, each with its unsubscribed frame.
func (s *Server) wsAuth(c *wsConn, token string) {
	a := &s.settings.Load().Auth
	g, err := a.verify(credential{token: token, present: true}, nil, time.Now())
	if err == nil && c.grant != nil && g.Subject != c.grant.Subject {
		err = &auth.Error{Check: auth.CheckSignature, Err: errors.New("the token is for another subject than the connection's")}
	}
	if err != nil {
		ae := authError(err)
		s.Metrics.AuthRefused(ae.Check)
		s.authLog.Log(s.log, slog.LevelInfo, "websocket auth refused", "ip", c.ip, "check", ae.Check, "err", ae.Error())
		if ae.Check == auth.CheckExpired {
			c.Close(reason.TokenExpired)
		} else {
			c.Close(reason.AuthFailed)
		}
		return
	}
	s.mu.Lock()
	if c.grant == nil && len(c.channels) == 0 {
		// Who the connection is, for presence, before its first channel
		// (Describe's answer must not change once the hub has asked).
		c.subject = g.Subject
	}
	var lost []string
	for _, ch := range c.channels {
		if a.Required != nil && a.Required(ch) && !g.Allows(ch) {
			lost = append(lost, ch)
		}
	}
	s.mu.Unlock()
	c.grant = &g
	setExpiry(c, g)
	for _, ch := range lost {
		s.wsUnsubscribe(c, ch)
	}
}

// wsUnsubscribe leaves a channel; no message of it follows the
// unsubscribed frame.
func (s *Server) wsUnsubscribe(c *wsConn, name string) error {
	s.mu.Lock()
	i := slices.Index(c.channels, name)
	if i >= 0 {
		c.channels = slices.Delete(c.channels, i, i+1)
		s.Metrics.Subscribed(-1)
	}
	s.mu.Unlock()
	if i < 0 {
		return errWSNotSubscribed
	}
	s.hub.Unsubscribe(c, name)
	c.SetEpoch(name, "")
	c.Write(wire.UnsubscribedFrame(name))
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		s.log.Info("leavechannel", "ip", c.ip, "transport", metrics.WebSocket, "channel", name,
			"seconds", int64(time.Since(c.start)/time.Second), "reason", "unsubscribed", subAttr(c.subject))
	}
	return nil
}

// wsClosed runs once when c's connection has closed. It leaves the
// registry before the hub, so that a subscription racing the close either
// sees c unregistered or is undone here.
func (s *Server) wsClosed(c *wsConn, reason reason.Reason, written int64) {
	s.mu.Lock()
	s.removeLocked(c)
	chans := c.channels
	c.channels = nil
	s.Metrics.Subscribed(-len(chans))
	s.mu.Unlock()
	s.hub.Unsubscribe(c)
	s.stats.Dec(stats.CurrentSubscribers)
	name := reason.String()
	c.Metrics.Closed(name)
	if s.log.Enabled(context.Background(), slog.LevelInfo) {
		secs := int64(time.Since(c.start) / time.Second)
		for _, ch := range chans {
			s.log.Info("leavechannel", "ip", c.ip, "transport", metrics.WebSocket, "channel", ch,
				"seconds", secs, "messages", c.Sent(), "bytes", written, "reason", name)
		}
	}
	s.log.Debug("websocket closed", "ip", c.ip, "reason", name, "bytes", written)
}

// wsEpoch is the epoch of one channel's stream as a client knows it.
type wsEpoch struct{ channel, epoch string }

// epochLocked returns the index of channel in c.epochs, or -1. The caller
// holds c.mu.
func (c *wsConn) epochLocked(channel string) int {
	for i := range c.epochs {
		if c.epochs[i].channel == channel {
			return i
		}
	}
	return -1
}

// SetEpoch records the epoch of channel's stream as the client knows it
// ("" forgets the channel).
func (c *wsConn) SetEpoch(channel, epoch string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	i := c.epochLocked(channel)
	switch {
	case epoch == "" && i >= 0:
		c.epochs = slices.Delete(c.epochs, i, i+1)
	case epoch == "":
	case i >= 0:
		c.epochs[i].epoch = epoch
	default:
		c.epochs = append(c.epochs, wsEpoch{channel, epoch})
	}
}

// Deliver writes msgs, pre-framed and cached on each message, as one write
// when there are several. A message of another stream than the one the
// client knows its channel in is preceded by a reset gap frame; the first
// message of a channel the client knew in no stream, by an epoch frame.
func (c *wsConn) Deliver(msgs []*engine.Message, live bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || len(msgs) == 0 {
		return !c.closing
	}
	first := msgs[0]
	i := c.epochLocked(first.Channel)
	if i >= 0 && c.epochs[i].epoch != first.Epoch || i < 0 && first.Epoch != "" {
		f := wire.EpochFrame(first.Channel, first.Epoch)
		if i >= 0 {
			f = wire.GapFrame(wire.Gap{Channel: first.Channel, Since: first.ID - 1, Epoch: first.Epoch, Reset: true})
			c.epochs[i].epoch = first.Epoch
		} else {
			c.epochs = append(c.epochs, wsEpoch{first.Channel, first.Epoch})
		}
		if !c.Write(f) {
			return false
		}
	}
	if !c.WriteEach(msgs, wire.WebSocketFrame, live) {
		return false
	}
	c.sent += len(msgs)
	return true
}

// Close queues a close frame with r's code and name and closes the
// connection once it is written. Only the first close frame is sent; when
// the queue is already past its bound the connection closes at once,
// without one.
func (c *wsConn) Close(r reason.Reason) {
	c.closeWith(wire.CloseFrame(r.Code(), r.String()), r)
}

// Echo answers the client's close frame with code (0: the client's frame
// had none) and closes the connection, unless the server already sent its
// own close frame.
func (c *wsConn) Echo(code uint16) {
	c.closeWith(wire.CloseFrame(code, ""), reason.RemoteClosed)
}

func (c *wsConn) closeWith(frame []byte, r reason.Reason) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.closing = true
	c.mu.Unlock()
	c.CloseAfter(frame, r)
}

// Closing reports whether a close frame is queued.
func (c *wsConn) Closing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// Describe implements hub.Describer: the token's subject, or the
// connection's id.
func (c *wsConn) Describe() (id, transport string) {
	if c.subject != "" {
		return c.subject, metrics.WebSocket
	}
	return connID(instantOf(c.start)), metrics.WebSocket
}

// Sent returns the number of messages written.
func (c *wsConn) Sent() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent
}

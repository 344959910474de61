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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meteorpush/meteor/internal/channel"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/metrics"
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/stats"
	"github.com/meteorpush/meteor/internal/wire"
)

// How a WebSocket connection is read and written. gorilla/websocket parses
// the handshake and the client's frames on the connection's one goroutine,
// its read loop; it never writes. Every server frame (messages, replies,
// heartbeats, pongs, close frames) is built by package transport and goes
// through the connection's outq.Conn, so that fan-out never blocks and no
// two writers share the socket. gorilla does write on its own in two cases,
// a close frame on a protocol error (1002) and past the read limit (1009):
// wsNetConn turns those writes into the client's own Close, through the
// queue.

const (
	// wsReadBuffer is gorilla's read buffer per connection: client
	// messages are small, and an idle connection holds this buffer.
	wsReadBuffer = 256
	// wsMaxStrikes refused client messages within wsStrikeWindow close the
	// connection as a policy violation.
	wsMaxStrikes   = 10
	wsStrikeWindow = time.Minute
)

// wsWriteBuffers is gorilla's write buffer pool. Nothing is ever written
// through gorilla, so it stays empty; setting it keeps gorilla from holding
// the hijacked 4 KB write buffer for the life of each connection.
var wsWriteBuffers = &sync.Pool{}

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
	// guarded by mu.
	epochs map[string]string

	ip        string
	agent     string
	start     time.Time
	heartbeat time.Duration
	nextBeat  time.Time // owned by the ticker goroutine
	maxChans  int
	// subscribeTimeout bounds the engine calls of one subscribe.
	subscribeTimeout time.Duration
	channels         []string // guarded by Server.mu; joined, emptied on close
}

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

func (c *wsConn) shutdown() { c.Close(reason.ServerShutdown) }

func (c *wsConn) abort() { c.Out.Close(reason.ServerShutdown) }

// wsNetConn is the connection as gorilla sees it. Reads pass through. Once
// the handshake is written (c is set), gorilla's writes, which can only be
// close frames, become c's Close, queued in order with everything else, and
// deadlines for writes are outq's alone.
type wsNetConn struct {
	net.Conn
	c atomic.Pointer[wsConn]
}

func (n *wsNetConn) Write(b []byte) (int, error) {
	c := n.c.Load()
	if c == nil {
		return n.Conn.Write(b)
	}
	r := reason.ProtocolError
	if len(b) >= 4 && b[0] == 0x88 && uint16(b[2])<<8|uint16(b[3]) == reason.MessageTooBig.Code() {
		r = reason.MessageTooBig
	}
	c.Close(r)
	return len(b), nil
}

func (n *wsNetConn) SetWriteDeadline(t time.Time) error {
	if n.c.Load() != nil {
		return nil
	}
	return n.Conn.SetWriteDeadline(t)
}

func (n *wsNetConn) SetDeadline(t time.Time) error {
	if n.c.Load() != nil {
		return n.Conn.SetReadDeadline(t)
	}
	return n.Conn.SetDeadline(t)
}

func (n *wsNetConn) Close() error {
	if c := n.c.Load(); c != nil {
		c.Out.Close(reason.RemoteClosed)
		return nil
	}
	return n.Conn.Close()
}

// wsHijacker hands gorilla a wsNetConn instead of the raw connection.
type wsHijacker struct {
	http.ResponseWriter
	nc *wsNetConn // set once hijacked
}

func (h *wsHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	nc, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.nc = &wsNetConn{Conn: nc}
	return h.nc, brw, nil
}

// serveWebSocket upgrades GET /ws and starts the connection's read loop,
// its only goroutine, which ends when the connection closes.
func (s *Server) serveWebSocket(w http.ResponseWriter, r *http.Request, set *Settings) {
	hj := &wsHijacker{ResponseWriter: w}
	u := websocket.Upgrader{
		ReadBufferSize:   wsReadBuffer,
		WriteBufferPool:  wsWriteBuffers,
		HandshakeTimeout: set.WriteTimeout,
		CheckOrigin:      func(r *http.Request) bool { return wsOriginAllowed(set, r) },
		Error: func(_ http.ResponseWriter, r *http.Request, status int, reason error) {
			s.wsRefuse(w, r, set, status, reason)
		},
	}
	ws, err := u.Upgrade(hj, r, nil)
	if err != nil {
		if hj.nc != nil {
			// Hijacked, then failed: net/http no longer counts it.
			s.stats.Dec(stats.CurrentSubscribers)
			s.log.Debug("websocket handshake failed", "ip", remoteIP(r), "err", err)
		}
		return
	}
	c := &wsConn{
		ip:        remoteIP(r),
		agent:     r.UserAgent(),
		start:     time.Now(),
		heartbeat: set.Heartbeat,
		maxChans:  set.MaxChannels,

		subscribeTimeout: set.SubscribeTimeout,
	}
	c.nextBeat = c.start.Add(set.Heartbeat)
	c.Stats, c.Metrics = s.stats, s.Metrics.For(metrics.WebSocket)
	c.Metrics.Connected()
	// Hang-ups are seen by the read loop, so no outq.Watcher.
	c.Out = s.openOut(w, hj.nc.Conn, set, c, false)
	hj.nc.c.Store(c)
	// The read loop joins s.group while s.mu is held and shutdown has not
	// begun, so that Shutdown's Wait never races this Add.
	if !s.register(c, func() *client { s.group.Add(1); return nil }) {
		c.Close(reason.ServerShutdown)
		return
	}
	s.log.Debug("websocket open", "ip", c.ip, "useragent", c.agent)
	// The read loop gets a goroutine of its own and this one returns, so
	// that the accept path's per-connection state (the request, a stack
	// grown while parsing it) is freed: an idle connection keeps only a
	// small stack, gorilla's 256-byte reader and a few structs.
	go s.wsRead(c, ws)
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

// wsRead is the connection's read loop: it runs the client's operations in
// order and ends when the connection closes.
func (s *Server) wsRead(c *wsConn, ws *websocket.Conn) {
	defer s.group.Done()
	ws.SetReadLimit(wire.MaxClientMessage)
	ws.SetPingHandler(func(data string) error {
		c.Write(wire.PongFrame(data))
		return nil
	})
	ws.SetCloseHandler(func(code int, _ string) error {
		if code == websocket.CloseNoStatusReceived {
			code = 0
		}
		c.Echo(uint16(code))
		return nil
	})
	var (
		strikes     int
		firstStrike time.Time
	)
	for {
		typ, p, err := ws.ReadMessage()
		if err != nil {
			if !c.Closing() {
				// The peer hung up, or the queue closed the socket.
				c.Out.Close(reason.RemoteClosed)
			}
			return
		}
		if c.Closing() {
			continue // draining after a close frame: read until the end
		}
		if typ != websocket.TextMessage {
			err = errWSBinary
		} else {
			err = onOwnStack(func() error { return s.wsOp(c, p) })
		}
		if err == nil {
			continue
		}
		if s.log.Enabled(context.Background(), slog.LevelDebug) {
			s.log.Debug("websocket refused op", "ip", c.ip, "err", err)
		}
		now := time.Now()
		if strikes == 0 || now.Sub(firstStrike) > wsStrikeWindow {
			strikes, firstStrike = 0, now
		}
		strikes++
		if strikes >= wsMaxStrikes {
			s.log.Info("websocket closed for bad input", "ip", c.ip, "err", err)
			c.Write(wire.ErrorFrame(err.Error()))
			c.Close(reason.PolicyViolation)
			continue
		}
		c.Write(wire.ErrorFrame(err.Error()))
	}
}

// onOwnStack runs op on a goroutine of its own and waits for it. An
// operation goes deep (parsing, the hub, the engine's history): run on the
// read loop, it would grow the loop's stack to 8 KB, which the loop, parked
// for most of a connection's life, would keep. Client operations are rare
// (a subscribe, an unsubscribe), so a goroutine each costs little, and the
// read loop keeps the small stack it started with.
func onOwnStack(op func() error) error {
	done := make(chan error, 1)
	go func() { done <- op() }()
	return <-done
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
			"start", startOf(m.Query, h), "useragent", c.agent)
	}
	activate()
	return nil
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
			"seconds", int64(time.Since(c.start)/time.Second), "reason", "unsubscribed")
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

// SetEpoch records the epoch of channel's stream as the client knows it
// ("" forgets the channel).
func (c *wsConn) SetEpoch(channel, epoch string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch == "" {
		delete(c.epochs, channel)
		return
	}
	if c.epochs == nil {
		c.epochs = make(map[string]string, 1)
	}
	c.epochs[channel] = epoch
}

// Deliver writes msgs, pre-framed and cached on each message, as one write
// when there are several. A message of another stream than the one the
// client knows its channel in is preceded by a reset gap frame.
func (c *wsConn) Deliver(msgs []*engine.Message, live bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing || len(msgs) == 0 {
		return !c.closing
	}
	first := msgs[0]
	if known, ok := c.epochs[first.Channel]; ok || first.Epoch != "" {
		if !ok || known != first.Epoch {
			if c.epochs == nil {
				c.epochs = make(map[string]string, 1)
			}
			c.epochs[first.Channel] = first.Epoch
			f := wire.EpochFrame(first.Channel, first.Epoch)
			if ok && known != "" {
				f = wire.GapFrame(wire.Gap{Channel: first.Channel, Since: first.ID - 1, Epoch: first.Epoch, Reset: true})
			}
			if !c.Write(f) {
				return false
			}
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

// Sent returns the number of messages written.
func (c *wsConn) Sent() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent
}

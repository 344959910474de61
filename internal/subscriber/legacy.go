package subscriber

import (
	"context"
	"errors"
	"github.com/meteorpush/meteor/internal/auth"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/logx"
	"github.com/meteorpush/meteor/internal/metrics"
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/stats"
	"github.com/meteorpush/meteor/internal/wire"
)

// The template modes of Meteor 1.06 (iframe, xhrinteractive, longpoll,
// the polling modes, and any mode a configuration file defines): the
// /push route, the /disconnect route and the connection of one legacy
// subscriber. The templates themselves are rendered by package wire.

// client is one subscriber connection in a template mode. It is the
// hub.Client of each of its channels and a conn of the Server.
type client struct {
	output
	registered
	// done and joined sit in the padding after registered.
	done   bool // guarded by mu; no more messages: closing
	joined bool // guarded by mu; its joinchannel lines are logged: closed logs the leaves
	Mode   *wire.LegacyMode
	// hostID, ip and the channel names share one small allocation; ip is
	// an identity (the address, and the token's subject).
	hostID   string
	ip       string
	channels string  // the channel names, in request order, each ended by '/'
	start    instant // when the connection was opened
	nextPing instant // owned by the ticker goroutine

	mu   sync.Mutex
	sent int // guarded by mu; messages written
}

// tick pings a persistent connection and enforces MaxTime.
func (c *client) tick(now time.Time) {
	m := c.Mode
	if !m.Persist {
		return
	}
	if m.MaxTime > 0 && time.Duration(instantOf(now)-c.start) >= m.MaxTime {
		c.Finish(nil, reason.MaxTimeReached)
		return
	}
	// A ping is due at the tick nearest its time: with "not before", a
	// connection that started just after a tick was pinged a whole tick
	// late every time (every 2 s for PingInterval 1).
	due := instantOf(now.Add(tickPeriod / 2))
	if m.PingInterval > 0 && due >= c.nextPing {
		c.Write(m.Ping)
		c.nextPing += instant(m.PingInterval)
		if c.nextPing < due {
			c.nextPing = instantOf(now) + instant(m.PingInterval) // fell behind
		}
	}
}

// shutdown closes c with r: with the mode's shutdown message for
// reason.ServerShutdown, without it for reason.ServerRestart (Close).
func (c *client) shutdown(r reason.Reason) { c.Close(r) }

func (c *client) remote() string { ip, _ := splitIdentity(c.ip); return ip }

func (c *client) abort() { c.Out.Close(reason.ServerShutdown) }

func (s *Server) disconnect(w http.ResponseWriter, r *http.Request, set *Settings, hostID string) {
	if !ValidHostID(hostID) {
		s.badRequest(w, r, ErrBadHostID.Error())
		return
	}
	s.closeHost(hostID, nil, reason.DisconnectRequested)
	s.broadcastHost(engine.Disconnect, hostID, set)
	s.reply(w, set.Default.Header("200 OK", ServerName, time.Now(), nil), set.WriteTimeout)
}

func (s *Server) push(w http.ResponseWriter, r *http.Request, set *Settings, rest string) {
	req, err := ParsePush(rest, set.MaxChannels)
	if err != nil {
		if errors.Is(err, ErrNoChannel) {
			s.fail(w, r, set.Default, "404 Not Found", err.Error())
		} else {
			s.badRequest(w, r, err.Error())
		}
		return
	}
	mode := set.mode(req.Mode)
	var grant auth.Grant
	if set.Auth.Required != nil {
		names := make([]string, len(req.Channels))
		for i, ch := range req.Channels {
			names[i] = ch.Name
		}
		var ok bool
		if grant, ok = s.authorize(w, r, set, metrics.Legacy, req.HostID, names); !ok {
			return
		}
	}
	nc, err := hijack(w)
	if err != nil {
		return
	}
	// The user agent is logged on joining only: an idle subscriber does
	// not keep it.
	now := time.Now()
	c := &client{start: instantOf(now)}
	c.hostID, c.ip, c.channels = compact(&req, identity(remoteIP(r), grant.Subject))
	c.Mode, c.Stats, c.Metrics = mode, s.stats, s.Metrics.For(metrics.Legacy)
	c.Metrics.Connected()
	c.Out = s.openOut(w, nc, set, c, false)
	c.nextPing = c.start + instant(mode.PingInterval)
	setExpiry(c, grant)
	if !s.add(c, mode.Persist) {
		c.Close(s.stoppingReason())
		return
	}
	if mode.Persist && c.hostID != "" {
		// The subscription with this hostid on another node closes.
		s.broadcastHost(engine.TakeOver, c.hostID, set)
	}

	subs := make([]hub.Sub, len(req.Channels))
	for i, ch := range req.Channels {
		subs[i] = hub.Sub{Channel: ch.Name, Query: ch.Query}
	}
	ctx, cancel := context.WithTimeout(context.Background(), set.SubscribeTimeout)
	joined, activate := s.hub.Subscribe(ctx, c, subs, mode.Persist)
	cancel()
	if err := joinError(joined); err != nil {
		s.hub.Unsubscribe(c)
		s.refuse(c.Out, c.remote(), metrics.Legacy, nil, err)
		return
	}
	if mode.Persist {
		s.mu.Lock()
		if c.slot != 0 {
			c.subscribed = int32(len(subs))
			s.Metrics.Subscribed(int(c.subscribed))
		}
		s.mu.Unlock()
	}
	c.mu.Lock()
	c.joined = true
	c.mu.Unlock()
	var info []byte
	for i, ch := range req.Channels {
		n := s.hub.CountSubscribers(ch.Name)
		if mode.Persist {
			n-- // itself, which 1.06 had not yet added when it rendered this
		}
		info = mode.AppendChannelInfo(info, ch.Name, joined[i].History, max(n, 0))
		if s.log.Enabled(context.Background(), slog.LevelInfo) {
			s.log.Info("joinchannel", "ip", c.remote(), "hostid", logx.HostID(c.hostID), "channel", ch.Name,
				"mode", req.Mode, "start", startOf(ch.Query, joined[i].History), "useragent", r.UserAgent(), subAttr(grant.Subject))
		}
	}
	c.Write(mode.Header("200 OK", ServerName, now, info))
	activate()
	if !mode.Persist {
		c.Finish(nil, reason.ResponseComplete)
	}
	if c.Out.Closed() {
		// It may have closed before it was registered everywhere.
		s.forget(c)
	}
}

// compact copies req's hostid and channel names, and ip, into one new
// string, so that a subscriber keeps a few bytes instead of the request
// line and the remote address they were cut from. It returns the copies of
// the hostid and ip, and the channel names each ended by '/' (a name has
// none), and points req's names at their copies.
func compact(req *Push, ip string) (hostID, ipCopy, channels string) {
	names := make([]*string, 0, len(req.Channels)+2)
	names = append(names, &req.HostID, &ip)
	for i := range req.Channels {
		names = append(names, &req.Channels[i].Name)
	}
	all := compactStrings("/", 2, names...)
	return req.HostID, ip, all[len(req.HostID)+len(ip):]
}

// add registers c; a persistent one replaces the subscription that held its
// hostid. It reports false once shutdown has begun.
func (s *Server) add(c *client, persist bool) bool {
	return s.register(c, func() *client {
		if !persist {
			return nil
		}
		old := s.byHost[c.hostID]
		s.byHost[c.hostID] = c
		return old
	})
}

// forget removes c from the hub and the registry. It is idempotent.
func (s *Server) forget(c *client) bool {
	s.hub.Unsubscribe(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.removeLocked(c) {
		return false
	}
	s.Metrics.Subscribed(-int(c.subscribed))
	if s.byHost[c.hostID] == c {
		delete(s.byHost, c.hostID)
	}
	return true
}

// closed runs once when c's connection has closed. Every subscription
// that logged its joinchannel lines, a poll's as a stream's, logs one
// leavechannel line per channel.
func (s *Server) closed(c *client, reason reason.Reason, written int64) {
	s.forget(c)
	s.stats.Dec(stats.CurrentSubscribers)
	c.Metrics.Closed(reason.String())
	c.mu.Lock()
	joined := c.joined
	c.mu.Unlock()
	if joined && s.log.Enabled(context.Background(), slog.LevelInfo) {
		secs := int64(since(c.start) / time.Second)
		ip, sub := splitIdentity(c.ip)
		for rest := c.channels; rest != ""; {
			i := strings.IndexByte(rest, '/')
			ch := rest[:i]
			rest = rest[i+1:]
			s.log.Info("leavechannel", "ip", ip, "hostid", logx.HostID(c.hostID), "channel", ch,
				"seconds", secs, "messages", c.Sent(), "bytes", written, "reason", reason.String(), subAttr(sub))
		}
	}
}

// Deliver writes msgs, as one write when there are several, and closes the
// connection once MaxMessages have been sent, as Meteor 1.06 did: after the
// whole batch.
func (c *client) Deliver(msgs []*engine.Message, live bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done || len(msgs) == 0 {
		return !c.done
	}
	if !c.WriteEach(msgs, c.Mode, live) {
		c.done = true
		return false
	}
	c.sent += len(msgs)
	if c.Mode.MaxMessages > 0 && c.sent >= c.Mode.MaxMessages {
		c.done = true
		c.Out.CloseAfter(nil, reason.MaxMessagesReached)
		return false
	}
	return true
}

// Close implements hub.Client. The mode's shutdown message (eof() by
// default: a 1.06 page stops for good) goes only with a reason after which
// the client must not come back on its own (reason.Reconnect false: an
// administrator closed its channel) or the server stops; for the others
// (a drain for a restart, a stream reset, a store that failed, a server
// error) the response just ends, and the page reconnects with .r<N> as
// after any ended response. A
// slow consumer is closed at once: its queue is past its bound.
func (c *client) Close(r reason.Reason) {
	switch {
	case r == reason.SlowConsumer:
		c.mu.Lock()
		c.done = true
		c.mu.Unlock()
		c.Out.Close(r)
	case r == reason.ServerShutdown || !r.Reconnect():
		c.Finish(c.Mode.Shutdown, r)
	default:
		c.Finish(nil, r)
	}
}

// Describe implements hub.Describer: the token's subject, or the hostid,
// or the connection's id.
func (c *client) Describe() (id, transport string) {
	if _, sub := splitIdentity(c.ip); sub != "" {
		return sub, metrics.Legacy
	}
	if c.hostID != "" {
		return logx.HostID(c.hostID), metrics.Legacy
	}
	return connID(c.start), metrics.Legacy
}

// Sent returns the number of messages written.
func (c *client) Sent() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sent
}

// Finish closes the connection with reason r after writing final, unless
// it is already closing; no message is written after it.
func (c *client) Finish(final []byte, r reason.Reason) {
	c.mu.Lock()
	c.done = true
	c.mu.Unlock()
	c.CloseAfter(final, r)
}

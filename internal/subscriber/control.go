package subscriber

// Persistent legacy subscriptions are known by their hostid on every node:
// a new one takes the hostid over from wherever the old one is, and
// /disconnect/<hostid> closes it wherever it is. This node acts on its
// own connections at once and tells the others through the hub
// (hub.Broadcast, the engine's Control ability).

import (
	"context"
	"github.com/meteorpush/meteor/internal/logx"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/reason"
)

// HandleControl carries out a command another node sent about this node's
// connections (hub.Options.OnControl). It returns promptly.
func (s *Server) HandleControl(cmd engine.Command) {
	switch cmd.Kind {
	case engine.TakeOver:
		s.closeHost(cmd.HostID, nil, reason.NewSubscriberWithSameID)
	case engine.Disconnect:
		s.closeHost(cmd.HostID, nil, reason.DisconnectRequested)
	}
}

// closeHost closes the persistent subscription with hostID on this node,
// unless it is keep, and reports whether there was one to close.
func (s *Server) closeHost(hostID string, keep *client, r reason.Reason) int {
	s.mu.Lock()
	old := s.byHost[hostID]
	s.mu.Unlock()
	if old == nil || old == keep {
		return 0
	}
	old.Finish(old.Mode.Shutdown, r)
	return 1
}

// broadcastHost tells the other nodes of cmd about hostID; this node has
// already acted on it. A failure is logged (rate-limited): the other
// nodes keep their subscription with that hostid.
func (s *Server) broadcastHost(kind engine.CommandKind, hostID string, timeoutOf *Settings) {
	ctx, cancel := context.WithTimeout(context.Background(), timeoutOf.SubscribeTimeout)
	defer cancel()
	_, err := s.hub.Broadcast(ctx, engine.Command{Kind: kind, HostID: hostID}, func() int { return 0 })
	if err != nil {
		s.storeLog.Warn(s.log, "telling the other nodes of a hostid failed", "hostid", logx.HostID(hostID), "err", err)
	}
}

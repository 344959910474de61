package main

import (
	"context"
	"fmt"
	"time"

	"github.com/go-zeromq/zmq4"
)

// Publishing to Pushpin over ZeroMQ: its handler binds a PULL socket
// (push_in_spec, tcp://127.0.0.1:4692 in bench/pushpin/pushpin.conf) and
// publishes every message it takes there, one item per message: "J"
// followed by the item's JSON ({"channel":...,"formats":...}; Pushpin's
// src/handler/engine.cpp, inPull_readyRead). It is Pushpin's pipelined
// way in, as Meteor's controller and Nchan's WebSocket are theirs: one
// connection, in order, no waiting. There is no acknowledgement: a PUSH
// socket has none, so acknowledged stays 0.
//
// The PUSH socket is go-zeromq/zmq4's (ZMTP 3, the NULL mechanism). Its
// Send writes the message on the connection before it returns, so flush
// has nothing left to do. A PUSH socket reads nothing from its peer, so
// a peer that closed shows at a send that fails (usually the second
// after the close); zmq4 then drops the connection and would take the
// next messages without sending them anywhere, so the first error stays
// the answer to every send after it.

// zmqPub is a PUSH socket with its one connection.
type zmqPub struct {
	sock    zmq4.Socket
	kind    string // the transport, for pushpinItem
	channel string
	err     error // the first send that failed
}

// dialZMQPub connects a PUSH socket to addr (host:port) and publishes to
// channel in transport's format. A peer that is not there, or not a PULL
// socket, is an error at once: no second try.
func dialZMQPub(ctx context.Context, addr, transport, channel string) (*zmqPub, error) {
	sock := zmq4.NewPush(ctx, zmq4.WithDialerMaxRetries(0), zmq4.WithDialerTimeout(10*time.Second), zmq4.WithTimeout(10*time.Second))
	if err := sock.Dial("tcp://" + addr); err != nil {
		sock.Close()
		return nil, fmt.Errorf("zmq publisher %s: %w", addr, err)
	}
	return &zmqPub{sock: sock, kind: transport, channel: channel}, nil
}

func (p *zmqPub) trySend(text string, t time.Time) (bool, error) {
	if p.err != nil {
		return false, p.err
	}
	item := pushpinItem(p.kind, p.channel, text)
	if err := p.sock.Send(zmq4.NewMsg(append([]byte{'J'}, item...))); err != nil {
		p.err = fmt.Errorf("zmq publisher: %w", err)
		return false, p.err
	}
	return true, nil
}

// flush has nothing to do: Send wrote the message.
func (p *zmqPub) flush() error { return p.err }

// finish closes the socket: there are no acknowledgements to wait for.
func (p *zmqPub) finish(time.Duration) ackStats {
	p.sock.Close()
	return ackStats{}
}

// zmqSyncPublisher is the publisher interface (the burst scenario) over
// zmqPub: Publish sends; nothing comes back to wait for. It dials a
// connection per channel as it first publishes there.
type zmqSyncPublisher struct {
	ctx     context.Context
	e       *endpoint
	channel string
	p       *zmqPub
}

func (s *zmqSyncPublisher) Publish(channel, text string) error {
	if s.p != nil && s.channel != channel {
		s.Close()
	}
	if s.p == nil {
		p, err := dialZMQPub(s.ctx, s.e.ZMQ, s.e.Transport, channel)
		if err != nil {
			return err
		}
		s.p, s.channel = p, channel
	}
	if _, err := s.p.trySend(text, time.Now()); err != nil {
		return err
	}
	return s.p.flush()
}

func (s *zmqSyncPublisher) Close() error {
	if s.p != nil {
		s.p.finish(0)
		s.p = nil
	}
	return nil
}

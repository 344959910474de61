package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
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
// meteor-bench speaks just enough ZMTP 3.0 (rfc.zeromq.org/spec/23) for
// that: the greeting with the NULL mechanism, a READY command naming the
// socket type PUSH, then one short or long frame per message.

// zmqPub is a PUSH socket's one connection.
type zmqPub struct {
	nc      net.Conn
	bw      *bufio.Writer
	kind    string // the transport, for pushpinItems
	channel string
	done    chan struct{} // closed when the peer closes
	scratch []byte
}

// zmtpGreeting returns ZMTP 3.0's greeting for the NULL mechanism, as a
// client.
func zmtpGreeting() []byte {
	g := make([]byte, 64)
	g[0], g[9] = 0xff, 0x7f // signature
	g[10], g[11] = 3, 0     // version
	copy(g[12:32], "NULL")  // mechanism, zero-padded
	return g                // as-server 0, filler
}

// zmtpCommand returns a command frame: name and properties.
func zmtpCommand(name string, props ...string) []byte {
	body := append([]byte{byte(len(name))}, name...)
	for i := 0; i+1 < len(props); i += 2 {
		body = append(body, byte(len(props[i])))
		body = append(body, props[i]...)
		body = binary.BigEndian.AppendUint32(body, uint32(len(props[i+1])))
		body = append(body, props[i+1]...)
	}
	return appendZMTPFrame(nil, 0x04, body)
}

// appendZMTPFrame appends a frame with flags (0: the last frame of a
// message; 0x04: a command) and body, short or long as its size needs.
func appendZMTPFrame(b []byte, flags byte, body []byte) []byte {
	if len(body) < 256 {
		b = append(b, flags, byte(len(body)))
	} else {
		b = append(b, flags|0x02)
		b = binary.BigEndian.AppendUint64(b, uint64(len(body)))
	}
	return append(b, body...)
}

// readZMTPFrame reads one frame and returns its flags and body.
func readZMTPFrame(r io.Reader) (byte, []byte, error) {
	var h [9]byte
	if _, err := io.ReadFull(r, h[:2]); err != nil {
		return 0, nil, err
	}
	flags, n := h[0], uint64(h[1])
	if flags&0x02 != 0 {
		if _, err := io.ReadFull(r, h[2:9]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(h[1:9])
	}
	if n > 16<<20 {
		return 0, nil, fmt.Errorf("zmtp: frame of %d bytes", n)
	}
	body := make([]byte, n)
	_, err := io.ReadFull(r, body)
	return flags, body, err
}

// dialZMQPub connects a PUSH socket to addr (host:port) and publishes to
// channel in transport's format.
func dialZMQPub(ctx context.Context, addr, transport, channel string) (*zmqPub, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("zmq publisher: %w", err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(nc)
	err = zmtpHandshake(nc, br, "PUSH")
	nc.SetDeadline(time.Time{})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("zmq publisher %s: %w", addr, err)
	}
	p := &zmqPub{nc: nc, bw: bufio.NewWriterSize(nc, 64<<10), kind: transport, channel: channel, done: make(chan struct{})}
	go func() {
		// A PULL socket sends nothing after its READY: this read ends
		// when the peer closes.
		io.Copy(io.Discard, br)
		close(p.done)
	}()
	return p, nil
}

// zmtpHandshake exchanges greetings and READY commands on nc.
func zmtpHandshake(w io.Writer, r io.Reader, socketType string) error {
	if _, err := w.Write(zmtpGreeting()); err != nil {
		return err
	}
	var g [64]byte
	if _, err := io.ReadFull(r, g[:]); err != nil {
		return fmt.Errorf("reading the greeting: %w", err)
	}
	if g[0] != 0xff || g[9] != 0x7f || g[10] < 3 {
		return fmt.Errorf("not a ZMTP 3 greeting: % x", g[:12])
	}
	if mech := string(g[12:16]); mech != "NULL" {
		return fmt.Errorf("mechanism %q, want NULL", g[12:32])
	}
	if _, err := w.Write(zmtpCommand("READY", "Socket-Type", socketType)); err != nil {
		return err
	}
	flags, body, err := readZMTPFrame(r)
	if err != nil {
		return fmt.Errorf("reading READY: %w", err)
	}
	if flags&0x04 == 0 || len(body) < 6 || string(body[1:1+body[0]]) != "READY" {
		if len(body) > 0 && int(body[0]) < len(body) && string(body[1:1+body[0]]) == "ERROR" {
			return fmt.Errorf("the peer refused: %q", body[1+body[0]:])
		}
		return fmt.Errorf("not a READY command: %q", body)
	}
	return nil
}

func (p *zmqPub) trySend(text string, t time.Time) (bool, error) {
	select {
	case <-p.done:
		return false, errors.New("zmq publisher: the server closed the connection")
	default:
	}
	item := pushpinItem(p.kind, p.channel, text)
	p.scratch = appendZMTPFrame(p.scratch[:0], 0, append([]byte{'J'}, item...))
	_, err := p.bw.Write(p.scratch)
	return true, err
}

func (p *zmqPub) flush() error {
	p.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return p.bw.Flush()
}

// finish closes the connection: there are no acknowledgements to wait
// for.
func (p *zmqPub) finish(time.Duration) ackStats {
	p.bw.Flush()
	p.nc.Close()
	<-p.done
	return ackStats{}
}

// zmqSyncPublisher is the publisher interface (the burst scenario) over
// zmqPub: Publish sends and flushes; nothing comes back to wait for. It
// dials a connection per channel as it first publishes there.
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

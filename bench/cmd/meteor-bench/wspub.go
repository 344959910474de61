package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Publishing over a WebSocket, as Nchan's publisher location allows
// (nchan_publisher's default is "http websocket"): the client upgrades
// GET /pub/<channel> and then every text frame it sends is one message
// published to the channel. Nchan reads the frames one after the other
// without waiting for a publish to finish, and answers each message, once
// it is stored and handed to the fan-out, with one text frame of channel
// information ("queued messages: 5\r\nlast requested: ...\r\nactive
// subscribers: ...\r\nlast message id: ...", src/subscribers/websocket.c,
// websocket_publish_callback, Nchan 1.3.6). A failed publish is answered
// with a close frame (status 500 or 507 as a close code and reason). So
// the publisher pipelines on one connection, as on Meteor's controller,
// and the replies are the acknowledgements, in order.
//
// The WebSocket client is gorilla/websocket's: one writer (the caller of
// trySend, flush and finish) and one reader (readReplies) at a time, as
// it allows. Nchan reads no continuation frames (it closes the connection
// at a fragmented message), and gorilla's client cuts a message into
// frames of its write buffer, so the buffer is as large as the largest
// message sent (a prepared message is no way around it: gorilla prepares
// a client's in frames of 4 KiB).

// wsMaxMessage is the write buffer of the publisher's connection, so the
// largest message it sends.
const wsMaxMessage = 1 << 20

// wsPub publishes to one channel on one WebSocket connection: trySend
// buffers a text frame, flush writes what is buffered, a reader goroutine
// takes the reply frames in order and times them.
type wsPub struct {
	replyQueue
	c       *websocket.Conn
	bc      *wsBatchConn
	closing atomic.Bool   // finish sent the client's close frame
	reply   chan struct{} // a token after each reply (for a caller waiting for one)
	mu      sync.Mutex
	stats   ackStats // guarded by mu; written by the reader until done
}

// dialWSPub opens a WebSocket publisher on e's publish URL for channel;
// window is the most messages sent and not yet answered (trySend reports
// false beyond it).
func dialWSPub(ctx context.Context, e *endpoint, channel string, window int) (*wsPub, error) {
	u := e.publishURL(channel)
	if rest, ok := strings.CutPrefix(u, "http"); ok { // http: -> ws:, https: -> wss:
		u = "ws" + rest
	}
	var bc *wsBatchConn
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second, ReadBufferSize: 16 << 10, WriteBufferSize: wsMaxMessage,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			var nd net.Dialer
			nc, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			bc = &wsBatchConn{Conn: nc}
			return bc, nil
		}}
	c, resp, err := d.DialContext(ctx, u, http.Header{"User-Agent": {"meteor-bench"}})
	if err != nil {
		if resp != nil { // the server answered, not with an upgrade
			err = fmt.Errorf("%w: %s", err, resp.Status)
		}
		return nil, fmt.Errorf("publisher %s: %w", u, err)
	}
	c.SetReadLimit(16 << 20)
	bc.batch()
	c.SetPingHandler(func(data string) error { // as gorilla's, and the pong leaves at once
		c.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
		bc.flush()
		return nil
	})
	p := &wsPub{c: c, bc: bc, reply: make(chan struct{}, 1),
		replyQueue: replyQueue{sends: make(chan int64, max(window, 1)), done: make(chan struct{})}}
	go p.readReplies()
	return p, nil
}

// readReplies takes Nchan's answers: a text message acknowledges the
// oldest message not yet answered; a close frame ends the connection (its
// code and reason are the error). Within ReadMessage gorilla answers a
// ping (the handler dialWSPub sets, which also flushes the pong) and a
// close frame (buffered, written at the next flush or at finish).
func (p *wsPub) readReplies() {
	defer close(p.done)
	for {
		op, payload, err := p.c.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) && !p.closing.Load() { // not the answer to ours
				why := "closed by the server"
				if ce.Code != websocket.CloseNoStatusReceived {
					why = fmt.Sprintf("closed by the server: %d %s", ce.Code, ce.Text)
				}
				p.mu.Lock()
				p.fail(why)
				p.mu.Unlock()
			}
			return
		}
		now := time.Now().UnixNano()
		t0 := p.oldest()
		p.mu.Lock()
		switch {
		case t0 == 0:
			p.fail(fmt.Sprintf("a reply to no message: %q", payload))
		case op != websocket.TextMessage:
			p.fail(fmt.Sprintf("a reply message of type %d", op))
		default:
			p.stats.Acked++
			p.stats.Latency.add((now - t0) / 1000)
		}
		p.mu.Unlock()
		p.replies.Add(1)
		select {
		case p.reply <- struct{}{}:
		default:
		}
	}
}

// fail counts an error; p.mu is held.
func (p *wsPub) fail(why string) {
	p.stats.Errors++
	if p.stats.FirstErr == "" {
		p.stats.FirstErr = "websocket publish: " + why
	}
}

func (p *wsPub) trySend(text string, t time.Time) (bool, error) {
	if len(text) > wsMaxMessage {
		return false, fmt.Errorf("websocket publisher: a message of %d bytes, over %d (it would go in several frames, which Nchan does not read)", len(text), wsMaxMessage)
	}
	select {
	case <-p.done:
		return false, errors.New("websocket publisher: the server closed the connection")
	default:
	}
	if !p.send(t) {
		return false, nil // the window is full
	}
	return true, p.c.WriteMessage(websocket.TextMessage, []byte(text))
}

func (p *wsPub) flush() error { return p.bc.flush() }

// finish waits until every message sent is answered, the server closes or
// wait has passed, then closes the connection (a close frame first, as a
// client should).
func (p *wsPub) finish(wait time.Duration) ackStats {
	p.await(wait)
	p.closing.Store(true)
	p.c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	p.bc.flush()
	p.c.Close()
	<-p.done
	return p.stats
}

// wsBatchConn is the connection under the publisher's websocket.Conn.
// Once the handshake is done it holds what gorilla writes (each frame in
// one Write) until flush, so that the messages trySend took in one round
// go out in one write, as the controller's do: a write a message would
// cost the load generator a system call each at the publish scenario's
// rates. mu orders the frames the reader goroutine writes (gorilla's
// answers to a ping or a close) with the writer's. gorilla's write
// deadlines are left aside: a write that reaches the socket gets 10 s.
type wsBatchConn struct {
	net.Conn
	mu sync.Mutex
	bw *bufio.Writer // nil until batch
}

func (b *wsBatchConn) batch() {
	b.mu.Lock()
	b.bw = bufio.NewWriterSize(b.Conn, 64<<10)
	b.mu.Unlock()
}

func (b *wsBatchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bw == nil {
		return b.Conn.Write(p) // the handshake (gorilla's deadline)
	}
	if len(p) > b.bw.Available() {
		b.Conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	}
	return b.bw.Write(p)
}

func (b *wsBatchConn) SetWriteDeadline(time.Time) error { return nil }

func (b *wsBatchConn) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.bw.Buffered() == 0 {
		return nil
	}
	b.Conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return b.bw.Flush()
}

// errCount returns the errors so far and the first.
func (p *wsPub) errCount() (int64, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats.Errors, p.stats.FirstErr
}

// wsSyncPublisher is the publisher interface (one message at a time, the
// burst scenario) over wsPub: Publish waits for the message's reply. It
// dials a connection per channel as it first publishes there.
type wsSyncPublisher struct {
	ctx     context.Context
	e       *endpoint
	channel string
	p       *wsPub
}

func (s *wsSyncPublisher) Publish(channel, text string) error {
	if s.p != nil && s.channel != channel {
		s.Close()
	}
	if s.p == nil {
		p, err := dialWSPub(s.ctx, s.e, channel, 1)
		if err != nil {
			return err
		}
		s.p, s.channel = p, channel
	}
	p := s.p
	errs, _ := p.errCount()
	if ok, err := p.trySend(text, time.Now()); err != nil || !ok {
		if err == nil {
			err = errors.New("websocket publisher: a reply is still due")
		}
		return err
	}
	if err := p.flush(); err != nil {
		return err
	}
	timeout := time.After(10 * time.Second)
	for p.replies.Load() < p.sent {
		select {
		case <-p.reply:
		case <-p.done:
			if p.replies.Load() < p.sent {
				_, first := p.errCount()
				return fmt.Errorf("websocket publisher: connection closed before the reply (%s)", first)
			}
		case <-timeout:
			return errors.New("websocket publisher: no reply in 10 s")
		}
	}
	if n, first := p.errCount(); n > errs {
		return errors.New(first)
	}
	return nil
}

func (s *wsSyncPublisher) Close() error {
	if s.p != nil {
		s.p.finish(0)
		s.p = nil
	}
	return nil
}

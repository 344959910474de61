package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
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
// Server pings (Nchan sends none unless nchan_websocket_ping_interval is
// set) are read and ignored: a pong would be a second writer on the
// socket.

// wsPub publishes to one channel on one WebSocket connection: trySend
// buffers masked text frames, flush writes them, a reader goroutine takes
// the reply frames in order and times them.
type wsPub struct {
	nc      net.Conn
	br      *bufio.Reader // the handshake's reader: it may hold the first frames
	bw      *bufio.Writer
	sends   chan int64 // send times of the messages not yet answered, in order
	sent    int64
	replies atomic.Int64  // answered, well or not
	closing atomic.Bool   // finish sent the client's close frame
	reply   chan struct{} // a token after each reply (for a caller waiting for one)
	done    chan struct{}
	mu      sync.Mutex
	stats   ackStats // guarded by mu; written by the reader until done
	scratch []byte
}

// wsMaskKey masks every frame the publisher sends. A client must mask its
// frames; the key need not be secret here (no proxy in between).
var wsMaskKey = [4]byte{0x12, 0x34, 0x56, 0x78}

// appendWSClientFrame appends a final, masked frame of opcode op with
// payload to b.
func appendWSClientFrame(b []byte, op byte, payload []byte) []byte {
	b = append(b, 0x80|op)
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, wsMaskKey[:]...)
	for i, c := range payload {
		b = append(b, c^wsMaskKey[i&3])
	}
	return b
}

// wsAccept is the Sec-WebSocket-Accept a server must answer key with.
func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// dialWSPub opens a WebSocket publisher on e's publish URL for channel;
// window is the most messages sent and not yet answered (trySend reports
// false beyond it).
func dialWSPub(ctx context.Context, e *endpoint, channel string, window int) (*wsPub, error) {
	u, err := url.Parse(e.publishURL(channel))
	if err != nil {
		return nil, err
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, fmt.Errorf("publisher: %w", err)
	}
	br, err := wsHandshake(nc, u, 10*time.Second)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("publisher %s: %w", u, err)
	}
	p := &wsPub{nc: nc, br: br, bw: bufio.NewWriterSize(nc, 64<<10),
		sends: make(chan int64, max(window, 1)), reply: make(chan struct{}, 1), done: make(chan struct{})}
	go p.readReplies()
	return p, nil
}

// wsHandshake upgrades nc to a WebSocket on u's path and returns the
// reader of what follows the response header.
func wsHandshake(nc net.Conn, u *url.URL, timeout time.Duration) (*bufio.Reader, error) {
	nc.SetDeadline(time.Now().Add(timeout))
	defer nc.SetDeadline(time.Time{})
	var k [16]byte
	rand.Read(k[:])
	key := base64.StdEncoding.EncodeToString(k[:])
	req := "GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nUser-Agent: meteor-bench\r\n" +
		"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + "\r\n\r\n"
	if _, err := io.WriteString(nc, req); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 16<<10)
	status, err := br.ReadSlice('\n')
	if err != nil {
		return nil, fmt.Errorf("reading status line: %w", err)
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 101 ")) {
		return nil, fmt.Errorf("%w: %q", errStatus, bytes.TrimSpace(status))
	}
	accept := ""
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, fmt.Errorf("reading header: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(bytes.TrimSpace(k), []byte("Sec-WebSocket-Accept")) {
			accept = string(bytes.TrimSpace(v))
		}
	}
	if accept != wsAccept(key) {
		return nil, fmt.Errorf("Sec-WebSocket-Accept %q, want %q", accept, wsAccept(key))
	}
	return br, nil
}

// readWSFrame reads one frame of a server (unmasked; a masked one is
// unmasked all the same) into buf and returns its opcode, whether it is
// final, and the payload, which is valid until the next call.
func readWSFrame(br *bufio.Reader, buf []byte) (op byte, fin bool, payload, newBuf []byte, err error) {
	var h [14]byte
	if _, err = io.ReadFull(br, h[:2]); err != nil {
		return 0, false, nil, buf, err
	}
	fin, op = h[0]&0x80 != 0, h[0]&0x0f
	masked := h[1]&0x80 != 0
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err = io.ReadFull(br, h[2:4]); err != nil {
			return 0, false, nil, buf, err
		}
		n = uint64(binary.BigEndian.Uint16(h[2:4]))
	case 127:
		if _, err = io.ReadFull(br, h[2:10]); err != nil {
			return 0, false, nil, buf, err
		}
		n = binary.BigEndian.Uint64(h[2:10])
	}
	if n > 16<<20 {
		return 0, false, nil, buf, fmt.Errorf("websocket frame of %d bytes", n)
	}
	var key [4]byte
	if masked {
		if _, err = io.ReadFull(br, key[:]); err != nil {
			return 0, false, nil, buf, err
		}
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	payload = buf[:n]
	if _, err = io.ReadFull(br, payload); err != nil {
		return 0, false, nil, buf, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= key[i&3]
		}
	}
	return op, fin, payload, buf, nil
}

// readReplies takes Nchan's answers: a text frame acknowledges the oldest
// message not yet answered; a close frame ends the connection (its code
// and reason are the error).
func (p *wsPub) readReplies() {
	defer close(p.done)
	var buf []byte
	for {
		op, fin, payload, b, err := readWSFrame(p.br, buf)
		buf = b
		if err != nil {
			return
		}
		now := time.Now().UnixNano()
		switch op {
		case 0x9, 0xa: // ping, pong
			continue
		case 0x8: // close
			if p.closing.Load() {
				return // the answer to ours
			}
			why := "closed by the server"
			if len(payload) >= 2 {
				why = fmt.Sprintf("closed by the server: %d %s", binary.BigEndian.Uint16(payload), payload[2:])
			}
			p.mu.Lock()
			p.fail(why)
			p.mu.Unlock()
			return
		case 0x0: // a continuation: replies are short, one frame each
			if !fin {
				continue
			}
		}
		var t0 int64
		select {
		case t0 = <-p.sends:
		default: // a reply to nothing sent: count it as an error
		}
		p.mu.Lock()
		switch {
		case t0 == 0:
			p.fail(fmt.Sprintf("a reply to no message: %q", payload))
		case op != 0x1 && op != 0x0:
			p.fail(fmt.Sprintf("a reply frame of opcode %d", op))
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
	select {
	case <-p.done:
		return false, errors.New("websocket publisher: the server closed the connection")
	default:
	}
	select {
	case p.sends <- t.UnixNano():
	default:
		return false, nil // the window is full
	}
	p.scratch = appendWSClientFrame(p.scratch[:0], 0x1, []byte(text))
	_, err := p.bw.Write(p.scratch)
	p.sent++
	return true, err
}

func (p *wsPub) flush() error {
	p.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return p.bw.Flush()
}

// finish waits until every message sent is answered, the server closes or
// wait has passed, then closes the connection (a close frame first, as a
// client should).
func (p *wsPub) finish(wait time.Duration) ackStats {
	deadline := time.Now().Add(wait)
	for p.replies.Load() < p.sent && time.Now().Before(deadline) {
		select {
		case <-p.done:
			deadline = time.Now()
		case <-time.After(2 * time.Millisecond):
		}
	}
	p.closing.Store(true)
	p.nc.SetWriteDeadline(time.Now().Add(time.Second))
	p.bw.Write(appendWSClientFrame(nil, 0x8, []byte{0x03, 0xe8})) // 1000, normal closure
	p.bw.Flush()
	p.nc.Close()
	<-p.done
	return p.stats
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

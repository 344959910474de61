package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The servers meteor-bench drives, and how their subscribers and
// publishers speak. Every target gets the same message texts (stampText)
// and the same accounting; only the URLs and the framing differ.

// Targets.
const (
	targetMeteor  = "meteor"
	targetNchan   = "nchan"
	targetPushpin = "pushpin" // behind it, meteor-bench grip-origin (pushpin.go)
)

// Transports. stream is each server's plain streaming response: Meteor's
// xhrinteractive mode (script elements), Nchan's http-raw-stream (one
// message per line). ndjson is Meteor's alone.
const (
	transportStream = "stream"
	transportSSE    = "sse"
	transportWS     = "ws"
	transportNDJSON = "ndjson"
)

// Publish methods: Meteor's controller line protocol, HTTP (Meteor's API,
// Nchan's publisher location, Pushpin's publish endpoint), a WebSocket to
// Nchan's publisher location (wspub.go), or Pushpin's ZeroMQ PULL socket
// (zmqpub.go).
const (
	publishLine = "line"
	publishHTTP = "http"
	publishWS   = "ws"
	publishZMQ  = "zmq"
)

// endpoint is where one server's subscribers and publisher connect, and in
// which wire formats.
type endpoint struct {
	Kind      string // targetMeteor, targetNchan or targetPushpin
	Transport string
	Addr      string // subscriber listener, host:port
	Prefix    string // Meteor's SubscriberDynamicPageAddress (stream)
	Mode      string // Meteor's mode (stream)
	Ctl       string // Meteor's controller, host:port
	PubURL    string // HTTP publish base: Meteor's API, Nchan's listener or Pushpin's publish endpoint, http://host:port
	Publish   string // publishLine, publishHTTP, publishWS or publishZMQ
	ZMQ       string // Pushpin's ZeroMQ publish socket (push_in_spec), host:port
}

// defaults fills in the addresses left empty and checks e.
func (e *endpoint) defaults() error {
	if e.Addr == "" {
		switch e.Kind {
		case targetNchan:
			e.Addr = "127.0.0.1:4680"
		case targetPushpin:
			e.Addr = "127.0.0.1:4690"
		default:
			e.Addr = "127.0.0.1:4670"
		}
	}
	if e.Publish == "" {
		e.Publish = publishLine
		if e.Kind != targetMeteor {
			e.Publish = publishHTTP
		}
	}
	if e.PubURL == "" {
		switch e.Kind {
		case targetNchan:
			e.PubURL = "http://" + e.Addr
		case targetPushpin:
			e.PubURL = "http://127.0.0.1:4691" // bench/pushpin/pushpin.conf's push_in_http_port
		default:
			e.PubURL = "http://127.0.0.1:4672"
		}
	}
	if e.Ctl == "" {
		e.Ctl = "127.0.0.1:4671"
	}
	if e.ZMQ == "" {
		e.ZMQ = "127.0.0.1:4692" // bench/pushpin/pushpin.conf's push_in_spec
	}
	if e.Prefix == "" {
		e.Prefix = "/push"
	}
	if e.Mode == "" {
		e.Mode = "xhrinteractive"
	}
	return e.check()
}

// check reports whether e names a known target, transport and publish
// method that go together.
func (e *endpoint) check() error {
	m, ok := endpointMethods[e.Kind]
	if !ok {
		return fmt.Errorf("unknown target %q (meteor, nchan, pushpin)", e.Kind)
	}
	if !slices.Contains(m.transports, e.Transport) {
		return fmt.Errorf("%s: unknown transport %q (%s)", e.Kind, e.Transport, strings.Join(m.transports, ", "))
	}
	if !slices.Contains(m.publish, e.Publish) {
		return fmt.Errorf("%s: unknown publish method %q (%s)", e.Kind, e.Publish, strings.Join(m.publish, ", "))
	}
	return nil
}

// endpointMethods are the transports and publish methods of each target.
var endpointMethods = map[string]struct{ transports, publish []string }{
	targetMeteor:  {[]string{transportStream, transportSSE, transportWS, transportNDJSON}, []string{publishLine, publishHTTP}},
	targetNchan:   {[]string{transportStream, transportSSE, transportWS}, []string{publishHTTP, publishWS}},
	targetPushpin: {[]string{transportStream, transportSSE, transportWS}, []string{publishHTTP, publishZMQ}},
}

// subscribePath returns the request path of subscriber hostID to channel.
func (e *endpoint) subscribePath(hostID, channel string) string {
	switch e.Kind + "/" + e.Transport {
	case "meteor/stream":
		return e.Prefix + "/" + hostID + "/" + e.Mode + "/" + channel
	case "meteor/sse":
		return "/sse/" + channel
	case "meteor/ndjson":
		return "/ndjson/" + channel
	case "meteor/ws":
		return "/ws"
	case "nchan/stream":
		return "/sub/raw/" + channel
	case "nchan/sse":
		return "/sub/sse/" + channel
	case "nchan/ws":
		return "/sub/ws/" + channel
	case "pushpin/stream":
		return "/sub/stream/" + channel
	case "pushpin/sse":
		return "/sub/sse/" + channel
	case "pushpin/ws":
		return "/sub/ws/" + channel
	}
	return "/"
}

// parser returns a new parser of the subscriber stream's body.
func (e *endpoint) parser() streamParser {
	switch e.Transport {
	case transportSSE:
		return &sseParser{}
	case transportNDJSON:
		return &lineParser{json: true}
	case transportWS:
		return &wsParser{json: e.Kind == targetMeteor}
	}
	if e.Kind == targetNchan || e.Kind == targetPushpin {
		return &lineParser{}
	}
	return &frameParser{}
}

// wsClientText returns a masked WebSocket text frame of payload (a client's
// frames must be masked; the key need not be secret here).
func wsClientText(payload []byte) []byte {
	b := []byte{0x81}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		panic("wsClientText: payload too long")
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// subscribe sends subscriber hostID's request to channel on nc, reads the
// response header and, for a WebSocket on Meteor, joins the channel. It
// returns the reader of the body: a chunked body is decoded.
func (e *endpoint) subscribe(nc net.Conn, hostID, channel string, timeout time.Duration) (io.Reader, error) {
	nc.SetDeadline(time.Now().Add(timeout))
	defer nc.SetDeadline(time.Time{})
	var req strings.Builder
	req.WriteString("GET " + e.subscribePath(hostID, channel) + " HTTP/1.1\r\nHost: " + e.Addr + "\r\nUser-Agent: meteor-bench\r\n")
	want := "200"
	switch e.Transport {
	case transportSSE:
		req.WriteString("Accept: text/event-stream\r\n")
	case transportWS:
		var key [16]byte
		rand.Read(key[:])
		req.WriteString("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " +
			base64.StdEncoding.EncodeToString(key[:]) + "\r\n")
		want = "101"
	}
	req.WriteString("\r\n")
	if _, err := io.WriteString(nc, req.String()); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 4096)
	status, err := br.ReadSlice('\n')
	if err != nil {
		return nil, fmt.Errorf("reading status line: %w", err)
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 "+want+" ")) && !bytes.HasPrefix(status, []byte("HTTP/1.0 "+want+" ")) {
		return nil, fmt.Errorf("%w: %q", errStatus, bytes.TrimSpace(status))
	}
	chunked := false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, fmt.Errorf("reading header: %w", err)
		}
		if len(line) <= 2 && (len(line) == 1 || line[0] == '\r') {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(k), "Transfer-Encoding") &&
			bytes.Contains(bytes.ToLower(v), []byte("chunked")) {
			chunked = true
		}
	}
	if e.Kind == targetMeteor && e.Transport == transportWS {
		op, _ := json.Marshal(map[string]string{"op": "subscribe", "channel": channel})
		if _, err := nc.Write(wsClientText(op)); err != nil {
			return nil, err
		}
	}
	if chunked {
		return httputil.NewChunkedReader(br), nil
	}
	return br, nil
}

// publisher publishes messages on one connection; it is not safe for
// concurrent use.
type publisher interface {
	Publish(channel, text string) error
	Close() error
}

// newPublisher connects e's publisher.
func (e *endpoint) newPublisher(ctx context.Context) (publisher, error) {
	if e.Publish == publishWS {
		return &wsSyncPublisher{ctx: ctx, e: e}, nil
	}
	if e.Publish == publishZMQ {
		return &zmqSyncPublisher{ctx: ctx, e: e}, nil
	}
	if e.Publish == publishLine {
		c, err := dialCtl(ctx, e.Ctl)
		if err != nil {
			return nil, err
		}
		return ctlPublisher{c}, nil
	}
	return newHTTPPublisher(e), nil
}

// publishURL returns the URL that an HTTP POST publishes to channel on.
func (e *endpoint) publishURL(channel string) string {
	switch e.Kind {
	case targetNchan:
		return e.PubURL + "/pub/" + url.PathEscape(channel)
	case targetPushpin:
		return e.PubURL + "/publish/" // the channel is in the body
	}
	return e.PubURL + "/api/channels/" + url.PathEscape(channel) + "/messages"
}

// httpPublisher publishes with HTTP POSTs on a kept-alive connection.
type httpPublisher struct {
	e      *endpoint
	client *http.Client
}

func newHTTPPublisher(e *endpoint) *httpPublisher {
	tr := &http.Transport{MaxIdleConnsPerHost: 4, DisableCompression: true, ForceAttemptHTTP2: false}
	return &httpPublisher{e: e, client: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

func (p *httpPublisher) Publish(channel, text string) error {
	body, ctype := text, "text/plain"
	if p.e.Kind == targetPushpin {
		body, ctype = pushpinItems(p.e.Transport, channel, text), "application/json"
	}
	req, err := http.NewRequest(http.MethodPost, p.e.publishURL(channel), strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ctype)
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("publish: %s", resp.Status)
	}
	return nil
}

func (p *httpPublisher) Close() error {
	p.client.CloseIdleConnections()
	return nil
}

// ctlPublisher adapts ctlClient, whose Publish returns the message id.
type ctlPublisher struct{ *ctlClient }

func (p ctlPublisher) Publish(channel, text string) error {
	_, err := p.ctlClient.Publish(channel, text)
	return err
}

// counter asks a server how many subscribers a channel has.
type counter interface {
	Count(channel string) (int, error)
	Close() error
}

// newCounter connects to e's source of subscriber counts: Meteor's
// COUNTSUBSCRIBERS, or the channel information of Nchan's publisher
// location.
func (e *endpoint) newCounter(ctx context.Context) (counter, error) {
	if e.Kind == targetMeteor {
		return dialCtl(ctx, e.Ctl)
	}
	if e.Kind == targetPushpin {
		return newPushpinCounter(e.Addr)
	}
	return &nchanCounter{e: e, client: &http.Client{Timeout: 10 * time.Second}}, nil
}

type nchanCounter struct {
	e      *endpoint
	client *http.Client
}

var nchanSubscribers = regexp.MustCompile(`(?m)^subscribers:\s*(\d+)`)

// Count returns the subscribers of every channel, from nchan_stub_status:
// the channel information of the publisher location counts only some of
// the workers' subscribers. Runs use one channel at a time, and the
// scenarios count from the number found before they start.
func (c *nchanCounter) Count(channel string) (int, error) {
	resp, err := c.client.Get(c.e.PubURL + "/nchan_status")
	if err != nil {
		return 0, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	m := nchanSubscribers.FindSubmatch(body)
	if m == nil {
		return 0, fmt.Errorf("nchan_stub_status: %s %q", resp.Status, body)
	}
	return strconv.Atoi(string(m[1]))
}

func (c *nchanCounter) Close() error {
	c.client.CloseIdleConnections()
	return nil
}

// waitCount polls c until cond holds for channel's count or ctx ends, and
// returns the last count.
func waitCount(ctx context.Context, c counter, channel string, cond func(int) bool) (int, error) {
	for {
		n, err := c.Count(channel)
		if err != nil {
			return n, err
		}
		if cond(n) {
			return n, nil
		}
		select {
		case <-ctx.Done():
			return n, fmt.Errorf("waiting for the subscriber count (last %d): %w", n, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

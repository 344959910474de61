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
	targetMeteor     = "meteor"
	targetNchan      = "nchan"
	targetPushpin    = "pushpin"    // behind it, meteor-bench grip-origin (pushpin.go)
	targetCentrifugo = "centrifugo" // bench/centrifugo/config.json (centrifugo.go)
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
	Kind      string // targetMeteor, targetNchan, targetPushpin or targetCentrifugo
	Transport string
	Addr      string // subscriber listeners, host:port[,host:port...]: subscriber i connects to the (i mod n)-th
	Prefix    string // Meteor's SubscriberDynamicPageAddress (stream)
	Mode      string // Meteor's mode (stream)
	Ctl       string // Meteor's controller, host:port
	PubURL    string // HTTP publish base: Meteor's API, Nchan's listener or Pushpin's publish endpoint, http://host:port
	Publish   string // publishLine, publishHTTP, publishWS or publishZMQ
	ZMQ       string // Pushpin's ZeroMQ publish socket (push_in_spec), host:port
	APIKey    string // Centrifugo's HTTP API key (http_api.key)
	CountAt   string // where subscribers are counted, host:port[,...] summed, or "none" (see countAddrs)
	Engine    string // the server's engine, for the label only: memory or redis
	Token     string // meteor: a subscriber token (SubscriberAuth 1), sent as ?token= on every subscription
}

// addrs returns the subscriber listeners of Addr.
func (e *endpoint) addrs() []string {
	var out []string
	for a := range strings.SplitSeq(e.Addr, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// firstAddr returns the first subscriber listener.
func (e *endpoint) firstAddr() string {
	a, _, _ := strings.Cut(e.Addr, ",")
	return strings.TrimSpace(a)
}

// defaults fills in the addresses left empty and checks e.
func (e *endpoint) defaults() error {
	if e.Addr == "" {
		switch e.Kind {
		case targetNchan:
			e.Addr = "127.0.0.1:4680"
		case targetPushpin:
			e.Addr = "127.0.0.1:4690"
		case targetCentrifugo:
			e.Addr = "127.0.0.1:4700"
		default:
			e.Addr = "127.0.0.1:4670"
		}
	}
	if e.Kind == targetCentrifugo && e.Transport == transportStream {
		e.Transport = transportWS // its only one here; stream is the flag's default
	}
	if e.Publish == "" {
		e.Publish = publishLine
		if e.Kind != targetMeteor {
			e.Publish = publishHTTP
		}
	}
	if e.PubURL == "" {
		switch e.Kind {
		case targetNchan, targetCentrifugo:
			e.PubURL = "http://" + e.firstAddr()
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
	if e.APIKey == "" {
		e.APIKey = "meteor-bench" // bench/centrifugo/config.json's http_api.key
	}
	if e.Engine == "" {
		e.Engine = "memory"
	}
	if len(e.addrs()) == 0 {
		return fmt.Errorf("-addr %q: no address", e.Addr)
	}
	return e.check()
}

// check reports whether e names a known target, transport and publish
// method that go together.
func (e *endpoint) check() error {
	m, ok := endpointMethods[e.Kind]
	if !ok {
		return fmt.Errorf("unknown target %q (meteor, nchan, pushpin, centrifugo)", e.Kind)
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
	targetMeteor:     {[]string{transportStream, transportSSE, transportWS, transportNDJSON}, []string{publishLine, publishHTTP}},
	targetNchan:      {[]string{transportStream, transportSSE, transportWS}, []string{publishHTTP, publishWS}},
	targetPushpin:    {[]string{transportStream, transportSSE, transportWS}, []string{publishHTTP, publishZMQ}},
	targetCentrifugo: {[]string{transportWS}, []string{publishHTTP}},
}

// subscribePath returns the request path of subscriber hostID to channel,
// with Meteor's ?token= when there is a token.
func (e *endpoint) subscribePath(hostID, channel string) string {
	p := e.barePath(hostID, channel)
	if e.Token != "" && e.Kind == targetMeteor {
		p += "?token=" + url.QueryEscape(e.Token)
	}
	return p
}

// query appends k=v to path's query.
func query(path, k, v string) string {
	if strings.Contains(path, "?") {
		return path + "&" + k + "=" + v
	}
	return path + "?" + k + "=" + v
}

// barePath is subscribePath without the token.
func (e *endpoint) barePath(hostID, channel string) string {
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
	case "centrifugo/ws":
		return "/connection/websocket"
	}
	return "/"
}

// parser returns a new parser of the subscriber stream's body.
func (e *endpoint) parser() streamParser {
	switch e.Transport {
	case transportSSE:
		return &sseParser{ids: e.Kind == targetMeteor}
	case transportNDJSON:
		return &lineParser{json: true}
	case transportWS:
		switch e.Kind {
		case targetMeteor:
			return &wsParser{body: wsMeteorJSON}
		case targetCentrifugo:
			return &wsParser{body: wsCentrifugo}
		}
		return &wsParser{}
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

// resumePos is where a subscriber resumes: after message ID (Meteor's id,
// Centrifugo's offset) of stream Epoch (Centrifugo's; Meteor's resume
// compares ids alone). The zero value subscribes from now on.
type resumePos struct {
	ID    int64
	Epoch string
}

// subscribe sends subscriber hostID's request to channel on nc, reads the
// response header and, for a WebSocket on Meteor or Centrifugo, joins the
// channel. It returns the reader of the body: a chunked body is decoded.
func (e *endpoint) subscribe(nc net.Conn, hostID, channel string, timeout time.Duration) (io.Reader, error) {
	br, _, err := e.subscribeFrom(nc, hostID, channel, resumePos{}, timeout)
	return br, err
}

// resumable reports whether e's subscribers can resume (subscribeFrom with
// a position).
func (e *endpoint) resumable() bool {
	return e.Kind == targetCentrifugo || e.Kind == targetMeteor
}

// resumePath returns the request path of a Meteor subscriber resuming at
// pos: with the legacy stream's ".r<N>" element, or with the cursor of SSE
// and NDJSON: the legacy stream's ".r<N>" element, or the
// cursor of SSE and NDJSON.
func (e *endpoint) resumePath(hostID, channel string, pos resumePos) string {
	if pos.ID <= 0 || e.Kind != targetMeteor {
		return e.subscribePath(hostID, channel)
	}
	cursor := url.QueryEscape(channel + ":" + strconv.FormatInt(pos.ID, 10))
	switch e.Transport {
	case transportStream:
		return e.subscribePath(hostID, channel+".r"+strconv.FormatInt(pos.ID+1, 10))
	case transportSSE:
		return query(e.subscribePath(hostID, channel), "lastEventId", cursor)
	case transportNDJSON:
		return query(e.subscribePath(hostID, channel), "since", cursor)
	}
	return e.subscribePath(hostID, channel) // ws: in the subscribe operation
}

// subscribeFrom is subscribe resuming at pos (the zero pos: from now on).
// It also returns the stream's epoch when the server says it in the
// handshake (Centrifugo), for the next resume.
func (e *endpoint) subscribeFrom(nc net.Conn, hostID, channel string, pos resumePos, timeout time.Duration) (io.Reader, string, error) {
	nc.SetDeadline(time.Now().Add(timeout))
	defer nc.SetDeadline(time.Time{})
	var req strings.Builder
	req.WriteString("GET " + e.resumePath(hostID, channel, pos) + " HTTP/1.1\r\nHost: " + e.firstAddr() + "\r\nUser-Agent: meteor-bench\r\n")
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
		return nil, "", err
	}
	br := bufio.NewReaderSize(nc, 4096)
	status, err := br.ReadSlice('\n')
	if err != nil {
		return nil, "", fmt.Errorf("reading status line: %w", err)
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 "+want+" ")) && !bytes.HasPrefix(status, []byte("HTTP/1.0 "+want+" ")) {
		if bytes.HasPrefix(status, []byte("HTTP/1.1 503 ")) {
			// A process at its MaxConnections, or a store that cannot
			// serve: a client comes back, and its new connection may land
			// on another process of the port.
			return nil, "", fmt.Errorf("%w: %w: %q", errStatus, errBusy, bytes.TrimSpace(status))
		}
		return nil, "", fmt.Errorf("%w: %q", errStatus, bytes.TrimSpace(status))
	}
	chunked := false
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return nil, "", fmt.Errorf("reading header: %w", err)
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
		op := map[string]any{"op": "subscribe", "channel": channel}
		if pos.ID > 0 {
			op["since"] = pos.ID
		}
		b, _ := json.Marshal(op)
		if _, err := nc.Write(wsClientText(b)); err != nil {
			return nil, "", err
		}
	}
	if e.Kind == targetCentrifugo {
		return centrifugoJoin(nc, br, channel, pos)
	}
	if chunked {
		return httputil.NewChunkedReader(br), "", nil
	}
	return br, "", nil
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
	case targetCentrifugo:
		return e.PubURL + "/api/publish" // the channel is in the body
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
	switch p.e.Kind {
	case targetPushpin:
		body, ctype = pushpinItems(p.e.Transport, channel, text), "application/json"
	case targetCentrifugo:
		body, ctype = centrifugoPublishBody(channel, text), "application/json"
	}
	req, err := http.NewRequest(http.MethodPost, p.e.publishURL(channel), strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", ctype)
	if p.e.Kind == targetCentrifugo {
		req.Header.Set("X-API-Key", p.e.APIKey)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	var reply []byte
	if p.e.Kind == targetCentrifugo {
		reply, _ = io.ReadAll(io.LimitReader(resp.Body, 4096))
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("publish: %s", resp.Status)
	}
	if p.e.Kind == targetCentrifugo {
		return centrifugoAPIError(reply)
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

// countAddrs returns where subscribers are counted, summed: CountAt's
// addresses (Meteor's controllers, Nchan's or Centrifugo's HTTP
// listeners, host:port), by default the one publishing (Meteor's
// controller) or the first subscriber listener. It returns nil for
// "none": the handshakes alone say who is subscribed (with ReusePort, a
// shared controller port answers for whichever process takes the
// connection).
func (e *endpoint) countAddrs() []string {
	if e.CountAt == "none" {
		return nil
	}
	var out []string
	for a := range strings.SplitSeq(e.CountAt, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	if len(out) > 0 {
		return out
	}
	switch e.Kind {
	case targetMeteor:
		return []string{e.Ctl}
	case targetNchan, targetCentrifugo:
		return []string{strings.TrimPrefix(e.PubURL, "http://")}
	}
	return []string{e.firstAddr()}
}

// newCounter connects to e's sources of subscriber counts (countAddrs):
// Meteor's COUNTSUBSCRIBERS, Nchan's nchan_stub_status, Pushpin's
// (pushpin.go), Centrifugo's info API (centrifugo.go). It returns nil
// when nothing is to be counted.
func (e *endpoint) newCounter(ctx context.Context) (counter, error) {
	addrs := e.countAddrs()
	if len(addrs) == 0 {
		return nil, nil
	}
	var sum sumCounter
	for _, a := range addrs {
		var c counter
		var err error
		switch e.Kind {
		case targetMeteor:
			c, err = dialCtl(ctx, a)
		case targetPushpin:
			c, err = newPushpinCounter(a)
		case targetCentrifugo:
			c = &centrifugoCounter{base: "http://" + a, key: e.APIKey, client: &http.Client{Timeout: 10 * time.Second}}
		default:
			c = &nchanCounter{base: "http://" + a, client: &http.Client{Timeout: 10 * time.Second}}
		}
		if err != nil {
			sum.Close()
			return nil, err
		}
		sum = append(sum, c)
	}
	if len(sum) == 1 {
		return sum[0], nil
	}
	return sum, nil
}

// sumCounter sums the counts of several nodes.
type sumCounter []counter

func (s sumCounter) Count(channel string) (int, error) {
	total := 0
	for _, c := range s {
		n, err := c.Count(channel)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

func (s sumCounter) Close() error {
	for _, c := range s {
		c.Close()
	}
	return nil
}

type nchanCounter struct {
	base   string // http://host:port
	client *http.Client
}

var nchanSubscribers = regexp.MustCompile(`(?m)^subscribers:\s*(\d+)`)

// Count returns the subscribers of every channel, from nchan_stub_status:
// the channel information of the publisher location counts only some of
// the workers' subscribers. Runs use one channel at a time, and the
// scenarios count from the number found before they start.
func (c *nchanCounter) Count(channel string) (int, error) {
	resp, err := c.client.Get(c.base + "/nchan_status")
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

package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
)

// Centrifugo (v6, bench/centrifugo/config.json) with its client protocol's
// JSON format over WebSocket (GET /connection/websocket). The client sends
// commands, the server replies and pushes; either side may put several
// JSON objects in one WebSocket message, one per line. A subscriber sends
//
//	{"id":1,"connect":{}}
//	{"id":2,"subscribe":{"channel":"<chan>"}}
//
// (insecure client mode: no token) and, resuming, "recover":true with the
// "offset" and "epoch" it last saw. The replies carry their command's id:
// {"id":1,"connect":{"client":..,"ping":25,"pong":true}},
// {"id":2,"subscribe":{"recoverable":true,"epoch":..,"offset":..}}, the
// recovered publications in "publications"; or {"id":N,"error":{..}}.
// Publications come as {"push":{"channel":..,"pub":{"data":..,"offset":N}}},
// data being what was published: here the stamp text as a JSON string.
// The server pings with an empty object, {}, every client.ping_interval
// (25 s), and closes the connection when no {} answers it within
// client.pong_timeout (8 s); an answer to no ping is a protocol error that
// closes it too, so the subscriber answers each ping once (centrifuge
// client.go, isPong and checkPong). Publishing is the HTTP API: POST
// /api/publish {"channel":..,"data":..} with the X-API-Key header; it
// answers 200 with {"result":{..}} or {"error":{..}}.

// centrifugoJoin sends the connect and subscribe commands on nc, whose
// upgrade br has read, and reads frames until the subscribe reply. It
// returns the reader of what follows, with the recovered publications
// and any push that came in the same frames first, and the stream's
// epoch.
func centrifugoJoin(nc net.Conn, br *bufio.Reader, channel string, pos resumePos) (io.Reader, string, error) {
	sub := map[string]any{"channel": channel}
	if pos.ID > 0 || pos.Epoch != "" {
		sub["recover"], sub["offset"], sub["epoch"] = true, pos.ID, pos.Epoch
	}
	cmd, _ := json.Marshal(map[string]any{"id": 2, "subscribe": sub})
	if _, err := nc.Write(wsClientText(append([]byte(`{"id":1,"connect":{}}`+"\n"), cmd...))); err != nil {
		return nil, "", err
	}
	var rest [][]byte // lines for the stream's parser, in order
	for range 64 {    // the subscribe reply comes after at most a few pushes
		payload, err := readServerMessage(br)
		if err != nil {
			return nil, "", fmt.Errorf("centrifugo handshake: %w", err)
		}
		done := false
		var epoch string
		for line := range bytes.SplitSeq(payload, []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			if done {
				rest = append(rest, line)
				continue
			}
			var r struct {
				ID    uint32 `json:"id"`
				Error *struct {
					Code    int    `json:"code"`
					Message string `json:"message"`
				} `json:"error"`
				Subscribe *struct {
					Epoch        string            `json:"epoch"`
					Publications []json.RawMessage `json:"publications"`
				} `json:"subscribe"`
			}
			if err := json.Unmarshal(line, &r); err != nil {
				return nil, "", fmt.Errorf("centrifugo handshake: %q: %w", line, err)
			}
			if r.Error != nil {
				return nil, "", fmt.Errorf("%w: centrifugo command %d: error %d %s", errStatus, r.ID, r.Error.Code, r.Error.Message)
			}
			if r.ID != 2 {
				if r.ID == 0 {
					rest = append(rest, line) // a push or a ping
				}
				continue
			}
			if r.Subscribe == nil {
				return nil, "", fmt.Errorf("centrifugo handshake: %q", line)
			}
			done, epoch = true, r.Subscribe.Epoch
			ch, _ := json.Marshal(channel)
			for _, p := range r.Subscribe.Publications {
				rest = append(rest, fmt.Appendf(nil, `{"push":{"channel":%s,"pub":%s}}`, ch, p))
			}
		}
		if done {
			if len(rest) == 0 {
				return br, epoch, nil
			}
			return io.MultiReader(bytes.NewReader(wsServerText(bytes.Join(rest, []byte("\n")))), br), epoch, nil
		}
	}
	return nil, "", errors.New("centrifugo handshake: no subscribe reply")
}

// readServerMessage reads one unmasked text or binary frame from br
// (Centrifugo sends no fragments and no control frames but close in the
// handshake).
func readServerMessage(br *bufio.Reader) ([]byte, error) {
	var h [2]byte
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return nil, err
	}
	op, n := h[0]&0x0f, uint64(h[1]&0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(br, b[:]); err != nil {
			return nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 1<<20 {
		return nil, fmt.Errorf("a frame of %d bytes", n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(br, payload); err != nil {
		return nil, err
	}
	if op == 0x8 {
		return nil, fmt.Errorf("closed by the server: %q", payload)
	}
	if h[0]&0x80 == 0 {
		return nil, errors.New("a fragmented message")
	}
	return payload, nil
}

// wsServerText returns an unmasked text frame of payload, as a server
// sends it.
func wsServerText(payload []byte) []byte {
	b := []byte{0x81}
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n < 1<<16:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

// centrifugoFrames reads the lines of Centrifugo's WebSocket messages. It
// counts the pings, which the reader answers (pongs).
type centrifugoFrames struct {
	pings   int // not yet answered
	scratch []byte
}

var (
	cfPush   = []byte(`{"push":`)
	cfPub    = []byte(`"pub":{`)
	cfData   = []byte(`"data":"`)
	cfOffset = []byte(`"offset":`)
	cfDisc   = []byte(`"disconnect":`)
)

// parse calls fn for each line of one message.
func (c *centrifugoFrames) parse(payload []byte, f *frame, fn func(*frame)) {
	for len(payload) > 0 {
		line := payload
		if i := bytes.IndexByte(payload, '\n'); i >= 0 {
			line, payload = payload[:i], payload[i+1:]
		} else {
			payload = nil
		}
		if len(line) == 0 {
			continue
		}
		c.line(line, f)
		fn(f)
	}
}

// line reads one JSON object into f: a ping, a reply, a publication (its
// data and offset), a disconnect, or another push.
func (c *centrifugoFrames) line(b []byte, f *frame) {
	*f = frame{Kind: frameOther}
	switch {
	case len(b) == 2 && b[0] == '{' && b[1] == '}':
		f.Kind = framePing
		c.pings++
		return
	case bytes.HasPrefix(b, []byte(`{"id":`)):
		f.Kind = frameChannelInfo // a reply
		return
	case !bytes.HasPrefix(b, cfPush):
		return
	}
	i := bytes.Index(b, cfPub)
	if i < 0 {
		if bytes.Contains(b, cfDisc) {
			f.Kind = frameEOF
		}
		return // join, leave, unsubscribe...
	}
	pub := b[i+len(cfPub)-1:]
	if j := bytes.Index(pub, cfOffset); j >= 0 {
		num := pub[j+len(cfOffset):]
		end := 0
		for end < len(num) && num[end] >= '0' && num[end] <= '9' {
			end++
		}
		f.ID, _ = strconv.ParseInt(string(num[:end]), 10, 64)
	}
	j := bytes.Index(pub, cfData)
	if j < 0 {
		return
	}
	s := pub[j+len(cfData)-1:] // from the opening quote
	end, escaped := 1, false
	for ; end < len(s) && s[end] != '"'; end++ {
		if s[end] == '\\' {
			escaped = true
			end++
		}
	}
	if end >= len(s) {
		return
	}
	text := s[1:end]
	if escaped {
		var str string
		if json.Unmarshal(s[:end+1], &str) != nil {
			return
		}
		c.scratch = append(c.scratch[:0], str...)
		text = c.scratch
	}
	f.Kind, f.Text = frameMessage, text
}

// pongs returns the pings not yet answered and forgets them.
func (p *wsParser) pongs() int {
	n := p.cf.pings
	p.cf.pings = 0
	return n
}

// wsPong is a client's answer to one of Centrifugo's pings.
var wsPong = wsClientText([]byte("{}"))

// centrifugoPublishBody returns the body of POST /api/publish.
func centrifugoPublishBody(channel, text string) string {
	b, _ := json.Marshal(struct {
		Channel string `json:"channel"`
		Data    string `json:"data"`
	}{channel, text})
	return string(b)
}

// centrifugoAPIError returns the error of an HTTP API reply, or nil.
func centrifugoAPIError(reply []byte) error {
	var r struct {
		Error *struct {
			Code    int    `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(reply, &r); err != nil {
		return fmt.Errorf("publish: centrifugo reply %q: %w", reply, err)
	}
	if r.Error != nil {
		return fmt.Errorf("publish: centrifugo error %d: %s", r.Error.Code, r.Error.Message)
	}
	return nil
}

// centrifugoCounter counts subscriptions with the info API: num_subs
// summed over the nodes it lists (every node of the Redis engine, each as
// of its last node-info publication, every few seconds). Runs use one
// channel at a time, and the scenarios count from the number found before
// they start.
type centrifugoCounter struct {
	base   string // http://host:port
	key    string
	client *http.Client
}

func (c *centrifugoCounter) Count(string) (int, error) {
	req, err := http.NewRequest(http.MethodPost, c.base+"/api/info", strings.NewReader("{}"))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-API-Key", c.key)
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Result struct {
			Nodes []struct {
				NumSubs int `json:"num_subs"`
			} `json:"nodes"`
		} `json:"result"`
		Error *struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&r); err != nil {
		return 0, fmt.Errorf("centrifugo info: %s: %w", resp.Status, err)
	}
	if r.Error != nil {
		return 0, fmt.Errorf("centrifugo info: %s", r.Error.Message)
	}
	n := 0
	for _, node := range r.Result.Nodes {
		n += node.NumSubs
	}
	return n, nil
}

func (c *centrifugoCounter) Close() error {
	c.client.CloseIdleConnections()
	return nil
}

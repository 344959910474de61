package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Pushpin (bench/pushpin) is a reverse proxy: it holds the subscribers'
// connections, but every new request goes first to an origin, which
// answers with GRIP instructions. The origin is this program's hidden
// grip-origin scenario, so that nothing else is needed:
//
//	GET /sub/stream/<chan>  200, Grip-Hold: stream, Grip-Channel: <chan>,
//	                        text/plain: one message per line (the stream
//	                        transport, read like Nchan's http-raw-stream)
//	GET /sub/sse/<chan>     the same as text/event-stream (sse)
//	/sub/ws/<chan>          a WebSocket (ws), through Pushpin's
//	                        WebSocket-over-HTTP (the route's over_http): the
//	                        origin accepts the OPEN and subscribes the
//	                        connection with a c:{"type":"subscribe"} message
//
// Publishing is an HTTP POST of {"items":[...]} to Pushpin's publish
// endpoint (push_in_http_port, /publish/), or a message on its ZeroMQ PULL
// socket (-publish zmq, zmqpub.go); the item carries the message in the
// format of the run's transport. Over HTTP Pushpin answers "Published"
// before it fans out, and closes the connection. Pushpin has no subscriber count to ask for, so the counter
// counts the established connections on its client port (the kernel's
// /proc/net/tcp): the connections Pushpin holds.

// pushpinItems returns the HTTP publish request body for text on channel,
// in the format transport's subscribers read.
func pushpinItems(transport, channel, text string) string {
	return `{"items":[` + string(pushpinItem(transport, channel, text)) + `]}`
}

// pushpinItem returns the publish item (JSON) for text on channel, in the
// format transport's subscribers read.
func pushpinItem(transport, channel, text string) []byte {
	formats := map[string]any{}
	switch transport {
	case transportWS:
		formats["ws-message"] = map[string]string{"content": text}
	case transportSSE:
		formats["http-stream"] = map[string]string{"content": "data: " + text + "\n\n"}
	default:
		formats["http-stream"] = map[string]string{"content": text + "\n"}
	}
	b, _ := json.Marshal(map[string]any{"channel": channel, "formats": formats})
	return b
}

// gripOrigin answers Pushpin's proxied requests with GRIP instructions.
type gripOrigin struct {
	holds, opens, other atomic.Int64
}

func (o *gripOrigin) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	kind, channel, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/sub/"), "/")
	if !ok || channel == "" || strings.ContainsAny(channel, "/\"\\") {
		o.other.Add(1)
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Content-Type") == "application/websocket-events" {
		o.websocketEvents(w, r, channel)
		return
	}
	var ctype string
	switch kind {
	case "stream":
		ctype = "text/plain"
	case "sse":
		ctype = "text/event-stream"
	default:
		o.other.Add(1)
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	// The origin closes each connection itself, so that the TIME_WAIT of
	// each is on its side: zurl opens a connection per subscriber, and
	// tens of thousands of them a minute (idle 19,000 then burst) would
	// otherwise use up zurl's ephemeral ports (502 Bad Gateway).
	h.Set("Connection", "close")
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("Grip-Hold", "stream")
	h.Set("Grip-Channel", channel)
	w.WriteHeader(http.StatusOK)
	o.holds.Add(1)
}

// websocketEvents speaks the WebSocket-over-HTTP protocol: OPEN is
// accepted and subscribes the connection to channel; the client sends
// nothing else but its close, which is answered with a close.
func (o *gripOrigin) websocketEvents(w http.ResponseWriter, r *http.Request, channel string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	h := w.Header()
	h.Set("Connection", "close")
	h.Set("Content-Type", "application/websocket-events")
	h.Set("Sec-WebSocket-Extensions", `grip; message-prefix=""`)
	var out bytes.Buffer
	for ev := range bytes.SplitSeq(body, []byte("\r\n")) {
		name, _, _ := bytes.Cut(ev, []byte(" "))
		switch string(name) {
		case "OPEN":
			sub := `c:{"type":"subscribe","channel":"` + channel + `"}`
			fmt.Fprintf(&out, "OPEN\r\nTEXT %x\r\n%s\r\n", len(sub), sub)
			o.opens.Add(1)
		case "CLOSE":
			out.WriteString("CLOSE\r\n")
		}
	}
	w.Write(out.Bytes())
}

// runGripOrigin is the hidden "grip-origin" scenario: the origin behind
// Pushpin, until ctx ends (or -duration passes).
func runGripOrigin(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("grip-origin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:4695", "address to listen on (the route in bench/pushpin/routes)")
	duration := fs.Duration("duration", 0, "stop after this long (0: at SIGINT or SIGTERM)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	o := &gripOrigin{}
	srv := &http.Server{Handler: o, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "grip-origin: listening on %s\n", ln.Addr())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	fmt.Fprintf(stdout, "grip-origin: %d streams held, %d websockets opened, %d other requests\n", o.holds.Load(), o.opens.Load(), o.other.Load())
	return nil
}

// pushpinCounter counts the established TCP connections whose local end
// is Pushpin's client port: the subscribers Pushpin holds. The channel is
// not told apart: runs use one channel at a time, and the scenarios count
// from the number found before they start.
type pushpinCounter struct {
	local string // "0100007F:125A": /proc/net/tcp's form of the address
	any   string // ":125A" with any local address, when listening on all
}

func newPushpinCounter(addr string) (*pushpinCounter, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, err
	}
	c := &pushpinCounter{any: fmt.Sprintf(":%04X", p)}
	if ip := net.ParseIP(host); ip != nil && ip.To4() != nil && !ip.IsUnspecified() {
		v4 := ip.To4()
		c.local = fmt.Sprintf("%02X%02X%02X%02X:%04X", v4[3], v4[2], v4[1], v4[0], p)
	}
	return c, nil
}

func (c *pushpinCounter) Count(channel string) (int, error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return c.count(f)
}

// count reads a /proc/net/tcp table.
func (c *pushpinCounter) count(r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	n := 0
	first := true
	for sc.Scan() {
		if first { // the header
			first = false
			continue
		}
		// sl local_address rem_address st ...
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != "01" { // 01: ESTABLISHED
			continue
		}
		if c.local != "" && f[1] == c.local || c.local == "" && strings.HasSuffix(f[1], c.any) {
			n++
		}
	}
	if err := sc.Err(); err != nil {
		return n, err
	}
	if first {
		return 0, errors.New("/proc/net/tcp: empty")
	}
	return n, nil
}

func (c *pushpinCounter) Close() error { return nil }

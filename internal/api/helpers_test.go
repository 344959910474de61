package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/server"
	"github.com/meteorpush/meteor/internal/testkit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// wait bounds every read and poll in these tests.
const wait = 5 * time.Second

// testConfig is the built-in configuration with every listener on a
// loopback port chosen by the kernel.
func testConfig() *config.Config {
	cfg := testkit.Config()
	cfg.AdminAPI = true
	return cfg
}

// testServer is a running server and an HTTP client of its API.
type testServer struct {
	*server.Server
	t     *testing.T
	cfg   *config.Config
	base  string // http://host:port of the API
	token string // sent as a bearer token when not ""
	hc    *http.Client
	once  sync.Once
	log   *testkit.Log // the server's log
}

// start runs a server on testConfig changed by edit, and shuts it down when
// the test ends.
func start(t *testing.T, edit func(*config.Config)) *testServer {
	t.Helper()
	cfg := testConfig()
	if edit != nil {
		edit(cfg)
	}
	buf := &testkit.Log{}
	logger := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(cfg, logger)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	testkit.DenseIDs(srv.Engine())
	if err := srv.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	ts := &testServer{Server: srv, t: t, cfg: cfg, token: cfg.APIToken, hc: &http.Client{Transport: tr, Timeout: wait}, log: buf}
	if a := srv.AdminAddr(); a != nil {
		ts.base = "http://" + a.String()
	}
	t.Cleanup(func() {
		ts.shutdown(wait)
		tr.CloseIdleConnections()
		if t.Failed() {
			t.Logf("server log:\n%s", buf.String())
		}
	})
	return ts
}

// shutdown shuts the server down once and returns Shutdown's error.
func (ts *testServer) shutdown(d time.Duration) error {
	var err error
	ts.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		err = ts.Shutdown(ctx)
	})
	return err
}

// response is an API answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

// json decodes the body into a generic value.
func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var v map[string]any
	if err := json.Unmarshal(r.body, &v); err != nil {
		t.Fatalf("body is not a JSON object: %v: %q", err, r.body)
	}
	return v
}

// errorText returns the "error" of a JSON error body, failing the test when
// the body is not one.
func (r response) errorText(t *testing.T) string {
	t.Helper()
	var e struct {
		Error *string `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == nil {
		t.Fatalf("body is not a JSON error (%v): %q", err, r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json", ct)
	}
	return *e.Error
}

// do sends a request to the API; contentType "" sends none. A body of type
// io.Reader is sent as is (chunked when it is not a bytes or strings
// reader).
func (ts *testServer) do(method, path, contentType string, body any, hdr ...string) response {
	ts.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	case []byte:
		r = bytes.NewReader(b)
	case io.Reader:
		r = b
	default:
		j, err := json.Marshal(b)
		if err != nil {
			ts.t.Fatalf("marshal: %v", err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, ts.base+path, r)
	if err != nil {
		ts.t.Fatalf("NewRequest: %v", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if ts.token != "" {
		req.Header.Set("Authorization", "Bearer "+ts.token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := ts.hc.Do(req)
	if err != nil {
		ts.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatalf("%s %s: reading the body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

// get sends a GET and checks that it answers 200.
func (ts *testServer) get(path string) map[string]any {
	ts.t.Helper()
	r := ts.do("GET", path, "", nil)
	if r.status != http.StatusOK {
		ts.t.Fatalf("GET %s = %d %q, want 200", path, r.status, r.body)
	}
	return r.json(ts.t)
}

// publish publishes text to channel over the API and returns its id.
func (ts *testServer) publish(channel, text string) uint64 {
	ts.t.Helper()
	r := ts.do("POST", "/api/channels/"+channel+"/messages", "text/plain", text)
	if r.status != http.StatusCreated {
		ts.t.Fatalf("publish to %s = %d %q, want 201", channel, r.status, r.body)
	}
	return uint64(r.json(ts.t)["id"].(float64))
}

// metric scrapes /metrics and returns the value of the sample whose name
// and labels are exactly series (`name` or `name{label="v"}`), or -1 when
// it is absent.
func (ts *testServer) metric(series string) float64 {
	ts.t.Helper()
	r := ts.do("GET", "/metrics", "", nil)
	if r.status != http.StatusOK {
		ts.t.Fatalf("GET /metrics = %d %q", r.status, r.body)
	}
	sc := bufio.NewScanner(bytes.NewReader(r.body))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		// A label's value may hold spaces: the value follows the series.
		val, ok := strings.CutPrefix(line, series+" ")
		if ok {
			f, err := strconv.ParseFloat(val, 64)
			if err != nil {
				ts.t.Fatalf("metric %s: bad value %q", series, val)
			}
			return f
		}
	}
	return -1
}

// subscribers returns the channel's subscribers as the API reports them.
func (ts *testServer) subscribers(channel string) int {
	ts.t.Helper()
	r := ts.do("GET", "/api/channels/"+channel+"?history=0", "", nil)
	if r.status == http.StatusNotFound {
		return 0
	}
	return int(r.json(ts.t)["subscribers"].(float64))
}

// subscribe opens a raw legacy subscriber connection for path and waits
// until the hub counts it on channel.
func (ts *testServer) subscribe(path, channel string) *rawConn {
	ts.t.Helper()
	before := ts.subscribers(channel)
	c := ts.dial(ts.SubscriberAddr())
	c.send("GET " + path + " HTTP/1.1\r\nHost: test\r\nUser-Agent: test\r\n\r\n")
	testkit.Eventually(ts.t, "the subscriber on "+channel, func() bool { return ts.subscribers(channel) > before })
	return c
}

// rawConn is a raw TCP connection to one of the server's listeners.
type rawConn struct {
	t  *testing.T
	nc net.Conn
	r  *bufio.Reader
}

func (ts *testServer) dial(a net.Addr) *rawConn {
	ts.t.Helper()
	nc, err := net.Dial("tcp", a.String())
	if err != nil {
		ts.t.Fatalf("dial %v: %v", a, err)
	}
	ts.t.Cleanup(func() { nc.Close() })
	return &rawConn{t: ts.t, nc: nc, r: bufio.NewReader(nc)}
}

func (c *rawConn) send(s string) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c.nc, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// readUntil reads until what it read ends with want, and returns it.
func (c *rawConn) readUntil(want string) string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(wait))
	var b []byte
	for !bytes.HasSuffix(b, []byte(want)) {
		ch, err := c.r.ReadByte()
		if err != nil {
			c.t.Fatalf("waiting for %q: %v after %q", want, err, b)
		}
		b = append(b, ch)
	}
	return string(b)
}

// readToEOF reads until the server closes the connection.
func (c *rawConn) readToEOF() string {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(wait))
	b, err := io.ReadAll(c.r)
	if err != nil {
		c.t.Fatalf("read to EOF: %v (got %q)", err, b)
	}
	return string(b)
}

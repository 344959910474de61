package web_test

// Browser tests of the JavaScript client: a real meteord on 127.0.0.1, Debian's
// headless Chromium driven with chromedp, and messages published through the
// controller port. Every wait polls with a deadline; every test is bounded.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/server"
)

// testTimeout bounds each test; waitTimeout bounds each wait inside one.
// A wait ends as soon as what it waits for is there (well under a second
// when the client works): the bound only ends a test that fails, and is
// generous for a loaded two-core machine.
const (
	testTimeout = 60 * time.Second
	waitTimeout = 15 * time.Second
)

// tricky are message texts that a client must get back exactly.
var tricky = []string{
	"hello",
	`say "hi"`,
	`back\slash, \n and \u0041 that are not escapes`,
	"</script><script>top.pwned = 1</script><!--",
	"tab\there, CR\rthere",
	"line\u2028separator and paragraph\u2029separator",
	"unicode: é ü 日本語 😀",
	`'single' & <b>bold</b>`,
	"", // an empty message
	"two\nlines",
	"\nblank\n\nlines and a trailing newline\n",
	"CRLF\r\nline ends\r\n",
}

// sseText is text as the SSE transport delivers it: Server-Sent Events
// split lines at CR, LF and CRLF alike (docs/transports.md), so CR and CRLF
// come back as LF.
func sseText(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\r", "\n")
}

var browser struct {
	once   sync.Once
	ctx    context.Context
	cancel func()
	err    error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if browser.cancel != nil {
		browser.cancel()
	}
	os.Exit(code)
}

// chromiumPath returns Chromium's path. Without one the test is skipped,
// unless CI is set: there, a missing browser is a failure.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "" {
		t.Skip("headless Chromium not found (apt-get install chromium); the JavaScript client is untested. With CI set this is a failure.")
	}
	t.Fatal("CI is set and headless Chromium is not installed (apt-get install chromium)")
	return ""
}

// newTab opens a tab in the shared browser, started on first use. The
// returned context ends with the test or after testTimeout.
func newTab(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath(t)
	browser.once.Do(func() {
		dir, err := os.MkdirTemp("", "meteor-chromium-")
		if err != nil {
			browser.err = err
			return
		}
		opts := append(chromedp.DefaultExecAllocatorOptions[:],
			chromedp.ExecPath(path),
			chromedp.Headless,
			chromedp.NoSandbox,
			chromedp.DisableGPU,
			chromedp.NoFirstRun,
			chromedp.UserDataDir(dir),
			chromedp.Flag("disable-quic", true),
			chromedp.Flag("disable-background-networking", true),
			chromedp.Flag("disable-component-update", true),
			chromedp.Flag("disable-sync", true),
			chromedp.Flag("disable-background-timer-throttling", true),
			chromedp.Flag("disable-renderer-backgrounding", true),
			chromedp.Flag("disable-backgrounding-occluded-windows", true),
		)
		actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
		bctx, bcancel := chromedp.NewContext(actx)
		browser.ctx = bctx
		browser.cancel = func() {
			bcancel()
			acancel()
			os.RemoveAll(dir)
		}
		browser.err = chromedp.Do(bctx) // starts the browser
	})
	if browser.err != nil {
		t.Fatalf("starting Chromium: %v", browser.err)
	}
	tab, cancelTab := chromedp.NewContext(browser.ctx)
	if err := chromedp.Do(tab); err != nil { // opens the tab, with no deadline
		cancelTab()
		t.Fatalf("opening a tab: %v", err)
	}
	ctx, cancel := context.WithTimeout(tab, testTimeout)
	t.Cleanup(func() {
		cancel()
		cancelTab()
	})
	return ctx
}

// meteord is a server under test.
type meteord struct {
	srv  *server.Server
	base string // http://127.0.0.1:port of the subscriber listener
	ctl  string // controller address

	mu   sync.Mutex
	conn net.Conn
	rd   *bufio.Reader

	stop    sync.Once
	stopErr error
}

func startServer(t *testing.T, tweak func(*config.Config)) *meteord {
	t.Helper()
	return startServerOn(t, nil, tweak)
}

// startServerOn is startServer on eng (nil: the engine the configuration
// chooses).
func startServerOn(t *testing.T, eng engine.Engine, tweak func(*config.Config)) *meteord {
	t.Helper()
	cfg := config.Defaults()
	cfg.SubscriberIP, cfg.SubscriberPort = "127.0.0.1", 0
	cfg.ControllerIP, cfg.ControllerPort = "127.0.0.1", 0
	cfg.AdminIP, cfg.AdminPort = "127.0.0.1", 0
	cfg.AdminIP, cfg.AdminPort = "127.0.0.1", 0 // tests run side by side
	if tweak != nil {
		tweak(cfg)
	}
	var out io.Writer = io.Discard
	if os.Getenv("METEOR_TEST_LOG") != "" {
		out = os.Stderr
	}
	logger := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var srv *server.Server
	var err error
	if eng != nil {
		srv, err = server.NewOn(eng, cfg, logger)
	} else {
		srv, err = server.New(cfg, logger)
	}
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	if err := srv.Start(); err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	m := &meteord{srv: srv, base: "http://" + srv.SubscriberAddr().String(), ctl: srv.ControllerAddr().String()}
	t.Cleanup(func() {
		m.mu.Lock()
		if m.conn != nil {
			m.conn.Close()
		}
		m.mu.Unlock()
		m.shutdown()
	})
	return m
}

// shutdown stops the server once (a second server.Shutdown would panic).
func (m *meteord) shutdown() error {
	m.stop.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		m.stopErr = m.srv.Shutdown(ctx)
	})
	return m.stopErr
}

// proxy forwards TCP connections to a server, and can play a network
// failure: while it is down it cuts every connection and refuses new ones.
type proxy struct {
	ln     net.Listener
	target string
	handle func(c net.Conn) // serves one accepted connection; p.pipe by default

	mu    sync.Mutex
	down  bool                  // guarded by mu
	conns map[net.Conn]struct{} // guarded by mu
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy {
	return startProxyWith(t, target, nil)
}

// startProxyWith starts a proxy whose accepted connections are served by
// handle (after tracking; handle must untrack them), or piped to target
// when handle is nil.
func startProxyWith(t *testing.T, target string, handle func(*proxy, net.Conn)) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: make(map[net.Conn]struct{})}
	p.handle = p.pipe
	if handle != nil {
		p.handle = func(c net.Conn) { handle(p, c) }
	}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.setDown(true)
		p.wg.Wait()
	})
	return p
}

func (p *proxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if !p.track(c) {
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.handle(c)
	}
}

// track registers c; it reports false while the proxy is down.
func (p *proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

func (p *proxy) pipe(c net.Conn) {
	defer p.wg.Done()
	defer p.untrack(c)
	p.splice(c, c)
}

// splice dials the target and copies in (what is left of c's input) to
// it and its answers to c, until either side closes.
func (p *proxy) splice(c net.Conn, in io.Reader) {
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(s) {
		s.Close()
		return
	}
	defer p.untrack(s)
	done := make(chan struct{})
	go func() {
		io.Copy(s, in)
		s.Close()
		close(done)
	}()
	io.Copy(c, s)
	c.Close()
	<-done
}

func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
	}
}

// command sends one controller command and returns its reply line.
func (m *meteord) command(t *testing.T, line string) string {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.conn == nil {
		c, err := net.DialTimeout("tcp", m.ctl, 5*time.Second)
		if err != nil {
			t.Fatalf("dialing the controller: %v", err)
		}
		m.conn, m.rd = c, bufio.NewReader(c)
	}
	m.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(m.conn, line+"\r\n"); err != nil {
		t.Fatalf("controller: %v", err)
	}
	reply, err := m.rd.ReadString('\n')
	if err != nil {
		t.Fatalf("controller: reading the reply to %q: %v", line, err)
	}
	return strings.TrimRight(reply, "\r\n")
}

// publish adds a message and returns its id.
func (m *meteord) publish(t *testing.T, channel, text string) int {
	t.Helper()
	reply := m.command(t, "ADDMESSAGE "+channel+" "+text)
	id, ok := strings.CutPrefix(reply, "OK\t")
	n, err := strconv.Atoi(id)
	if !ok || err != nil {
		t.Fatalf("ADDMESSAGE %s: got reply %q, want OK<TAB><id>", channel, reply)
	}
	return n
}

func (m *meteord) subscribers(t *testing.T, channel string) int {
	t.Helper()
	reply := m.command(t, "COUNTSUBSCRIBERS "+channel)
	n, err := strconv.Atoi(strings.TrimPrefix(reply, "OK "))
	if err != nil {
		t.Fatalf("COUNTSUBSCRIBERS %s: got reply %q", channel, reply)
	}
	return n
}

// waitSubscribers waits until channel has at least n persistent
// subscribers, counted by the server (COUNTSUBSCRIBERS) and begun (their
// start fixed: a message published now reaches them; hub's
// ActiveSubscribers, for a server in this process), so that a test may
// publish at once to a live-only subscription.
func (m *meteord) waitSubscribers(t *testing.T, p *page, channel string, n int) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for m.subscribers(t, channel) < n || m.srv != nil && m.srv.Hub().ActiveSubscribers(channel) < n {
		if time.Now().After(deadline) {
			t.Fatalf("channel %s: fewer than %d subscribers after %v\n%s", channel, n, waitTimeout, p.state())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// disconnect asks the server to close hostid's persistent subscription.
func (m *meteord) disconnect(t *testing.T, hostid string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(m.base, "http://"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "GET /disconnect/%s HTTP/1.1\r\nHost: test\r\n\r\n", hostid)
	resp, err := io.ReadAll(c)
	if err != nil || !strings.HasPrefix(string(resp), "HTTP/1.1 200") {
		t.Fatalf("GET /disconnect/%s: %q, %v", hostid, resp, err)
	}
}

// page is a browser tab.
type page struct {
	t   *testing.T
	ctx context.Context
}

func openPage(t *testing.T, url string) *page {
	t.Helper()
	p := &page{t: t, ctx: newTab(t)}
	if err := chromedp.Do(p.ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("navigate %s: %v", url, err)
	}
	return p
}

// openClient opens a same-origin page of the server with meteor.js loaded
// and idle: the stream helper page, which does nothing on its own.
func openClient(t *testing.T, m *meteord) *page {
	t.Helper()
	return openClientAt(t, m.base)
}

// openClientAt is openClient for the server at base, which may be a proxy.
func openClientAt(t *testing.T, base string) *page {
	t.Helper()
	p := openPage(t, base+"/stream.html")
	p.wait("meteor.js loaded", `typeof Meteor === "object" && typeof Meteor.connect === "function"`)
	return p
}

func (p *page) eval(expr string) json.RawMessage {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[[]byte](expr))
	if err != nil {
		p.t.Fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

func (p *page) evalInto(expr string, v any) {
	p.t.Helper()
	raw := p.eval(expr)
	if err := json.Unmarshal(raw, v); err != nil {
		p.t.Fatalf("evaluating %s: %s: %v", expr, raw, err)
	}
}

// state describes the client, for failure messages.
func (p *page) state() string {
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](`JSON.stringify({
		status: window.Meteor && Meteor.status, mode: window.Meteor && Meteor.mode,
		transport: window.Meteor && Meteor.transport, hostid: window.Meteor && Meteor.hostid,
		statuses: window.T && T.statuses, events: window.T && T.events, got: window.T && T.got})`))
	if err != nil {
		return "page state unavailable: " + err.Error()
	}
	return "page: " + v
}

// wait polls the expression until it is truthy.
func (p *page) wait(what, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		if err == nil && ok {
			return
		}
		if p.ctx.Err() != nil || time.Now().After(deadline) {
			p.t.Fatalf("timed out waiting for %s (%s), last error %v\n%s", what, expr, err, p.state())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// never fails if the expression becomes truthy within d.
func (p *page) never(what, expr string, d time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		if err != nil {
			p.t.Fatalf("evaluating %s: %v", expr, err)
		}
		if ok {
			p.t.Fatalf("%s (%s)\n%s", what, expr, p.state())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clientSetup configures Meteor in the page, joins channels and connects.
type clientSetup struct {
	Settings map[string]any `json:"settings"` // Meteor properties
	Channels [][2]any       `json:"channels"` // [name, backtrack]
}

const setupJS = `(function (cfg) {
	window.T = {got: [], events: [], statuses: []};
	Meteor.registerEventCallback("process", function (text, channel, id) {
		T.got.push({id: id, channel: channel, text: text});
	});
	Meteor.registerEventCallback("statuschanged", function (s) { T.statuses.push(s); });
	["reset", "eof", "changemode"].forEach(function (e) {
		Meteor.registerEventCallback(e, function () {
			T.events.push([e].concat(Array.prototype.slice.call(arguments)).join(":"));
		});
	});
	for (var k in cfg.settings) { Meteor[k] = cfg.settings[k]; }
	cfg.channels.forEach(function (c) { Meteor.joinChannel(c[0], c[1]); });
	Meteor.connect();
	return Meteor.hostid;
})(%s)`

// connect runs setupJS and returns the client's hostid.
func (p *page) connect(s clientSetup) string {
	p.t.Helper()
	if s.Settings == nil {
		s.Settings = map[string]any{}
	}
	cfg, err := json.Marshal(s)
	if err != nil {
		p.t.Fatal(err)
	}
	var hostid string
	p.evalInto(fmt.Sprintf(setupJS, cfg), &hostid)
	return hostid
}

type received struct {
	ID      int    `json:"id"`
	Channel string `json:"channel"`
	Text    string `json:"text"`
}

func (p *page) got() []received {
	p.t.Helper()
	var got []received
	p.evalInto("T.got", &got)
	return got
}

// expectGot waits until the page has received len(want) messages, then
// checks that they are exactly want, in order.
func (p *page) expectGot(want []received) {
	p.t.Helper()
	p.wait(fmt.Sprintf("%d messages", len(want)), fmt.Sprintf("T.got.length >= %d", len(want)))
	if got := p.got(); !reflect.DeepEqual(got, want) {
		p.t.Fatalf("messages received:\n got %+v\nwant %+v\n%s", got, want, p.state())
	}
}

// expectGotPerChannel is expectGot for messages of several channels that
// may arrive in one response: a response carries each channel's backlog in
// turn, so only the order within each channel is kept.
func (p *page) expectGotPerChannel(want []received) {
	p.t.Helper()
	p.wait(fmt.Sprintf("%d messages", len(want)), fmt.Sprintf("T.got.length >= %d", len(want)))
	byChannel := func(ms []received) map[string][]received {
		out := make(map[string][]received)
		for _, m := range ms {
			out[m.Channel] = append(out[m.Channel], m)
		}
		return out
	}
	if got := p.got(); len(got) != len(want) || !reflect.DeepEqual(byChannel(got), byChannel(want)) {
		p.t.Fatalf("messages received:\n got %+v\nwant %+v (in this order within each channel)\n%s", got, want, p.state())
	}
}

// fastPolls are polling settings that keep the tests short.
func fastPolls() map[string]any {
	return map[string]any{"pollfreq": 150, "minpollfreq": 100, "maxpollfreq": 400, "polltimeout": 10000}
}

func isPersistent(mode string) bool {
	return mode == "stream" || mode == "xhrinteractive" || mode == "iframe" || mode == "longpoll"
}

// waitConnected waits until the client is subscribed: a persistent
// subscriber on channel, or a poll answered, and the client's status says
// the server answered.
func waitConnected(t *testing.T, m *meteord, p *page, mode, channel string) {
	t.Helper()
	if isPersistent(mode) {
		m.waitSubscribers(t, p, channel, 1)
	}
	// The client says so too: an iframe counts on the server as soon as
	// its request arrives, before the frame has registered with the page.
	// CI once lost the first message of TestReconnect/drop/iframe,
	// published in that window (cause not proven; a frame loaded twice
	// would do it).
	p.wait("the client connected", "Meteor.status >= 4")
}

// modes are the client's modes: "stream" is the transport ladder (WebSocket
// first), "xhrinteractive" the 1.06 stream, selected by name.
var modes = []string{"stream", "xhrinteractive", "iframe", "longpoll", "smartpoll", "simplepoll"}

// TestModes: in every mode the page receives what is published, in order,
// with its ids, texts intact and no script run.
func TestModes(t *testing.T) {
	for _, mode := range modes {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			m := startServer(t, nil)
			early := m.publish(t, "news", "before the page")
			p := openClient(t, m)
			settings := fastPolls()
			settings["mode"] = mode
			p.connect(clientSetup{Settings: settings, Channels: [][2]any{{"news", -1}}})
			waitConnected(t, m, p, mode, "news")
			want := []received{{early, "news", "before the page"}}
			for _, text := range tricky {
				want = append(want, received{m.publishAPI(t, m.api(), "news", text), "news", text})
			}
			p.expectGot(want)
			// One more, so that a repeat of anything above would show.
			want = append(want, received{m.publish(t, "news", "last"), "news", "last"})
			p.expectGot(want)
			var pwned bool
			p.evalInto("window.pwned === 1", &pwned)
			if pwned {
				t.Fatal("a message's text ran as script")
			}
			var transport string
			p.evalInto("Meteor.transport", &transport)
			wantTransport := mode
			if mode == "stream" {
				wantTransport = "websocket" // the top of the ladder
			}
			if transport != wantTransport {
				t.Errorf("Meteor.transport = %q, want %q", transport, wantTransport)
			}
			if mode == "smartpoll" {
				var freq float64
				p.evalInto("Meteor.pollfreq", &freq)
				if freq < 100 || freq > 400 {
					t.Errorf("smartpoll interval %v ms, outside minpollfreq..maxpollfreq (100..400)", freq)
				}
			}
		})
	}
}

// TestBacktrack: .b<N> on the first connection gives the last N messages,
// no backtrack gives only new ones.
func TestBacktrack(t *testing.T) {
	for _, mode := range []string{"stream", "simplepoll"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			m := startServer(t, nil)
			var old []received
			for i := range 5 {
				text := fmt.Sprintf("old %d", i)
				old = append(old, received{m.publish(t, "bt", text), "bt", text})
			}
			m.publish(t, "nb", "not wanted")
			p := openClient(t, m)
			settings := fastPolls()
			settings["mode"] = mode
			p.connect(clientSetup{Settings: settings, Channels: [][2]any{{"bt", 2}, {"nb", 0}}})
			waitConnected(t, m, p, mode, "nb")
			want := append([]received(nil), old[3:]...)
			want = append(want, received{m.publish(t, "nb", "wanted"), "nb", "wanted"})
			p.expectGot(want)
		})
	}
}

// TestReconnect: the server drops the connection; what is published before
// the client is back arrives once, in order, and nothing is repeated.
func TestReconnect(t *testing.T) {
	for _, mode := range []string{"stream", "xhrinteractive", "iframe", "longpoll", "smartpoll"} {
		t.Run("drop/"+mode, func(t *testing.T) {
			t.Parallel()
			m := startServer(t, nil)
			link := startProxy(t, strings.TrimPrefix(m.base, "http://"))
			p := openClientAt(t, link.url())
			settings := fastPolls()
			settings["mode"] = mode
			p.connect(clientSetup{Settings: settings, Channels: [][2]any{{"rc", 0}}})
			waitConnected(t, m, p, mode, "rc")
			var want []received
			for i := range 3 {
				text := fmt.Sprintf("first %d", i)
				want = append(want, received{m.publish(t, "rc", text), "rc", text})
			}
			p.expectGot(want)
			// The network fails: the connection is cut and the client's
			// next attempts fail until it is back.
			link.setDown(true)
			p.wait("a failed attempt", "Meteor.status === 3")
			for i := range 3 {
				text := fmt.Sprintf("gap %d", i)
				want = append(want, received{m.publish(t, "rc", text), "rc", text})
			}
			link.setDown(false)
			p.expectGot(want)
			want = append(want, received{m.publish(t, "rc", "after"), "rc", "after"})
			p.expectGot(want)
		})
	}
	t.Run("MaxMessages", func(t *testing.T) {
		t.Parallel()
		m := startServer(t, func(c *config.Config) { c.Mode("xhrinteractive").MaxMessages = 2 })
		p := openClient(t, m)
		settings := fastPolls()
		settings["mode"] = "xhrinteractive"
		p.connect(clientSetup{Settings: settings, Channels: [][2]any{{"mm", 0}}})
		m.waitSubscribers(t, p, "mm", 1)
		var want []received
		for i := range 9 {
			text := fmt.Sprintf("burst %d", i)
			want = append(want, received{m.publish(t, "mm", text), "mm", text})
		}
		p.expectGot(want)
		want = append(want, received{m.publish(t, "mm", "after"), "mm", "after"})
		p.expectGot(want)
		p.wait("a reset event", `T.events.indexOf("reset") >= 0`)
	})
}

// TestPingLoss: a stream that carries no pings is given up after
// pingtimeout for smartpoll, and messages keep arriving.
func TestPingLoss(t *testing.T) {
	t.Parallel()
	m := startServer(t, func(c *config.Config) { c.Mode("xhrinteractive").PingInterval = 0 })
	p := openClient(t, m)
	settings := fastPolls()
	settings["mode"] = "xhrinteractive"
	settings["pingtimeout"] = 1500
	p.connect(clientSetup{Settings: settings, Channels: [][2]any{{"pl", 0}}})
	m.waitSubscribers(t, p, "pl", 1)
	want := []received{{m.publish(t, "pl", "streamed"), "pl", "streamed"}}
	p.expectGot(want)
	p.wait("the changemode event", `T.events.indexOf("changemode:poll:smartpoll") >= 0`)
	p.wait("smartpoll", `Meteor.mode === "smartpoll" && Meteor.transport === "smartpoll"`)
	for i := range 3 {
		text := fmt.Sprintf("polled %d", i)
		want = append(want, received{m.publish(t, "pl", text), "pl", text})
	}
	p.expectGot(want)
}

// TestPings: with pings the stream is kept, and the status says data flows.
func TestPings(t *testing.T) {
	t.Parallel()
	m := startServer(t, func(c *config.Config) { c.Mode("xhrinteractive").PingInterval = 1 })
	p := openClient(t, m)
	p.connect(clientSetup{Settings: map[string]any{"mode": "xhrinteractive", "pingtimeout": 3000}, Channels: [][2]any{{"pg", 0}}})
	p.wait("status 5 from a ping", "Meteor.status === 5")
	// Longer than pingtimeout: only the pings keep the stream.
	p.never("a change of mode despite pings", `T.events.length > 0 || Meteor.transport !== "xhrinteractive"`, 4*time.Second)
}

// TestEOF: the server's shutdown message ends the client: status 6, the eof
// event, no reconnection. (Mode "stream" reconnects after a restart instead:
// TestStreamRestart.)
func TestEOF(t *testing.T) {
	for _, mode := range []string{"xhrinteractive", "iframe", "longpoll"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			m := startServer(t, nil)
			p := openClient(t, m)
			settings := fastPolls()
			settings["mode"] = mode
			p.connect(clientSetup{Settings: settings, Channels: [][2]any{{"eof", 0}}})
			m.waitSubscribers(t, p, "eof", 1)
			if err := m.shutdown(); err != nil {
				t.Fatalf("Shutdown: %v", err)
			}
			p.wait("status 6", "Meteor.status === 6")
			p.wait("the eof event", `T.events.indexOf("eof") >= 0`)
			p.never("a reconnection after eof", "Meteor.status !== 6", time.Second)
		})
	}
}

// TestDisconnectURL: GET /disconnect/<hostid> sends the client the shutdown
// message, as 1.06 did: it stops, and does not come back.
func TestDisconnectURL(t *testing.T) {
	t.Parallel()
	m := startServer(t, nil)
	p := openClient(t, m)
	hostid := p.connect(clientSetup{Settings: map[string]any{"mode": "xhrinteractive", "pollfreq": 100}, Channels: [][2]any{{"du", 0}}})
	// Status 4 comes with the channel information of the stream the client
	// keeps; on a loaded machine an earlier attempt may time out, and
	// /disconnect must name the stream that stays, not the abandoned one.
	p.wait("the stream ready", "Meteor.status >= 4")
	m.waitSubscribers(t, p, "du", 1)
	m.disconnect(t, hostid)
	p.wait("status 6", "Meteor.status === 6")
	p.wait("the eof event", `T.events.indexOf("eof") >= 0`)
	p.never("a reconnection after eof", "Meteor.status !== 6", time.Second)
	if n := m.subscribers(t, "du"); n != 0 {
		t.Fatalf("%d subscribers after the client ended, want 0", n)
	}
}

// TestJoinLeave: joining or leaving while connected reconnects, with
// nothing lost or repeated on the channels that stay.
func TestJoinLeave(t *testing.T) {
	for _, mode := range []string{"stream", "smartpoll"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			m := startServer(t, nil)
			p := openClient(t, m)
			settings := fastPolls()
			settings["mode"] = mode
			p.connect(clientSetup{Settings: settings, Channels: [][2]any{{"a", 0}}})
			waitConnected(t, m, p, mode, "a")
			want := []received{{m.publish(t, "a", "a1"), "a", "a1"}}
			p.expectGot(want)
			p.eval(`Meteor.joinChannel("b", 0)`)
			if isPersistent(mode) {
				m.waitSubscribers(t, p, "b", 1)
			} else {
				p.wait("a poll of b", `Meteor.channels.b.base !== null`)
			}
			want = append(want,
				received{m.publish(t, "b", "b1"), "b", "b1"},
				received{m.publish(t, "a", "a2"), "a", "a2"})
			p.expectGotPerChannel(want)
			p.eval(`Meteor.leaveChannel("a")`)
			if isPersistent(mode) {
				deadline := time.Now().Add(waitTimeout)
				for m.subscribers(t, "a") != 0 {
					if time.Now().After(deadline) {
						t.Fatalf("still subscribed to a after leaveChannel\n%s", p.state())
					}
					time.Sleep(20 * time.Millisecond)
				}
				m.waitSubscribers(t, p, "b", 1)
			}
			m.publish(t, "a", "a3, not wanted")
			want = append(want, received{m.publish(t, "b", "b2"), "b", "b2"})
			p.expectGotPerChannel(want)
		})
	}
}

// TestDisconnect: disconnect() stops the client; connect() resumes where it
// stopped.
func TestDisconnect(t *testing.T) {
	t.Parallel()
	m := startServer(t, nil)
	p := openClient(t, m)
	p.connect(clientSetup{Settings: map[string]any{"mode": "stream", "pollfreq": 100}, Channels: [][2]any{{"dc", 0}}})
	m.waitSubscribers(t, p, "dc", 1)
	want := []received{{m.publish(t, "dc", "one"), "dc", "one"}}
	p.expectGot(want)
	p.eval("Meteor.disconnect()")
	p.wait("status 0", "Meteor.status === 0")
	deadline := time.Now().Add(waitTimeout)
	for m.subscribers(t, "dc") != 0 {
		if time.Now().After(deadline) {
			t.Fatal("still subscribed after disconnect()")
		}
		time.Sleep(20 * time.Millisecond)
	}
	want = append(want, received{m.publish(t, "dc", "while away"), "dc", "while away"})
	p.eval("Meteor.connect()")
	want = append(want, received{m.publish(t, "dc", "back"), "dc", "back"})
	p.expectGot(want)
}

// TestCrossOrigin: a page of another origin uses the server through the
// helper frame stream.html#bridge, with no CORS header.
func TestCrossOrigin(t *testing.T) {
	for _, mode := range []string{"xhrinteractive", "longpoll", "smartpoll"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			m := startServer(t, nil)
			host, port, _ := net.SplitHostPort(strings.TrimPrefix(m.base, "http://"))
			site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html; charset=utf-8")
				fmt.Fprintf(w, `<!doctype html><title>another origin</title><script src="%s/meteor.js"></script>`, m.base)
			}))
			t.Cleanup(site.Close)
			p := openPage(t, site.URL)
			p.wait("meteor.js loaded", `typeof Meteor === "object"`)
			settings := fastPolls()
			settings["mode"] = mode
			settings["host"] = host
			settings["port"], _ = strconv.Atoi(port)
			p.connect(clientSetup{Settings: settings, Channels: [][2]any{{"xo", 0}}})
			waitConnected(t, m, p, mode, "xo")
			var want []received
			for _, text := range tricky[:4] {
				want = append(want, received{m.publish(t, "xo", text), "xo", text})
			}
			p.expectGot(want)
			var bridged bool
			p.evalInto(`!!document.querySelector('iframe[src$="/stream.html#bridge"]') && T.statuses.indexOf(2) >= 0`, &bridged)
			if !bridged {
				t.Errorf("the messages did not come through the helper frame\n%s", p.state())
			}
		})
	}
}

// TestCrossOriginCORS: the helper frame refuses a page outside the Meteor
// host's domain (here localhost against 127.0.0.1); the client then makes
// direct requests, which work when the server's header allows them (CORS).
func TestCrossOriginCORS(t *testing.T) {
	t.Parallel()
	m := startServer(t, func(c *config.Config) {
		mode := c.Mode("xhrinteractive")
		mode.HeaderTemplate = strings.Replace(mode.HeaderTemplate, "Content-Type:", "Access-Control-Allow-Origin: *\r\nContent-Type:", 1)
	})
	host, port, _ := net.SplitHostPort(strings.TrimPrefix(m.base, "http://"))
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>another site</title><script src="%s/meteor.js"></script>`, m.base)
	}))
	t.Cleanup(site.Close)
	_, sitePort, _ := net.SplitHostPort(strings.TrimPrefix(site.URL, "http://"))
	p := openPage(t, "http://localhost:"+sitePort+"/")
	p.wait("meteor.js loaded", `typeof Meteor === "object"`)
	portNum, _ := strconv.Atoi(port)
	p.connect(clientSetup{Settings: map[string]any{"mode": "xhrinteractive", "host": host, "port": portNum}, Channels: [][2]any{{"cors", 0}}})
	m.waitSubscribers(t, p, "cors", 1)
	want := []received{{m.publish(t, "cors", tricky[1]), "cors", tricky[1]}}
	p.expectGot(want)
	var refused bool
	p.evalInto(`T.statuses.indexOf(2) >= 0 && T.statuses.indexOf(3) >= 0`, &refused)
	if !refused {
		t.Errorf("the client did not try the helper frame first (statuses 2, then 3 on its refusal)\n%s", p.state())
	}
}

// TestLegacyHelpers: stream.html and poll.html serve a parent that has the
// 1.06 client's interface (register, getSubsUrl, status, pollfreq): they
// call the p, ch and r functions that register gave them.
func TestLegacyHelpers(t *testing.T) {
	for _, helper := range []string{"stream", "poll"} {
		t.Run(helper, func(t *testing.T) {
			t.Parallel()
			m := startServer(t, nil)
			first := m.publish(t, "lg", `old "one"`)
			p := openPage(t, m.base+"/stream.html")
			mode := map[string]string{"stream": "xhrinteractive", "poll": "simplepoll"}[helper]
			// A stand-in for the 1.06 client, written for this test: it keeps
			// the channel's last id as 1.06 did and hands out the URL.
			p.eval(fmt.Sprintf(`(function () {
				var L = window.L = {got: [], ch: [], resets: 0, last: 0};
				window.Meteor = {
					status: 1, pollfreq: 100, polltimeout: 5000,
					register: function (w) {
						w.p = function (id, channel, text) { if (id !== -1) { L.got.push({id: id, channel: channel, text: text}); L.last = id; } };
						w.ch = function (name, id) { L.ch.push([name, id]); L.last = id; };
						w.eof = function () { L.eof = true; };
						w.r = function () { L.resets++; };
					},
					getSubsUrl: function () {
						return location.origin + "/push/legacy/%s/lg" + (L.last > 0 ? ".r" + (L.last + 1) : ".h") + "?nc=" + Date.now();
					}
				};
				var f = document.createElement("iframe");
				f.src = "/%s.html";
				document.body.appendChild(f);
			})()`, mode, helper))
			p.wait("the old message", "L.got.length >= 1")
			second := m.publish(t, "lg", "new\\one </script>")
			p.wait("the new message", "L.got.length >= 2")
			var got []received
			p.evalInto("L.got", &got)
			want := []received{{first, "lg", `old "one"`}, {second, "lg", "new\\one </script>"}}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("legacy parent got %+v, want %+v", got, want)
			}
			if helper == "stream" {
				m.disconnect(t, "legacy")
				p.wait("r() at the end of the stream", "L.resets >= 1")
			}
		})
	}
}

// TestDashboard: the page at / shows what is published on channel demo in
// one column per transport, side by side; it publishes through the HTTP API
// and shows the server's figures from /api/stats (the API answers the page's
// origin, the subscriber port reached through loopback, with CORS).
func TestDashboard(t *testing.T) {
	t.Parallel()
	m := startServer(t, nil)
	old := m.publish(t, "demo", "stored before")
	api := "http://" + m.srv.AdminAddr().String()
	p := openPage(t, m.base+"/?api="+url.QueryEscape(api))
	cols := []string{"websocket", "sse", "ndjson", "poll", "legacy"}
	for _, col := range cols {
		p.wait(col+" column shows the history", `document.querySelector('#col-`+col+` li[data-id="`+strconv.Itoa(old)+`"]')`)
	}
	m.waitSubscribers(t, p, "demo", 5)
	// Multi-line texts survive every transport (SSE sends one data: line
	// per line).
	text := "hello <from> the test\nsecond line"
	id := m.publishAPI(t, api, "demo", text)
	// The page's own publish box, through the API.
	p.eval(`document.getElementById("publish-text").value = "from the page"; document.querySelector("#publish-form button").click(), 1`)
	p.wait("the publish box's answer", `/^Published as #\d+\.$/.test(document.getElementById("publish-status").textContent)`)
	var status string
	p.evalInto(`document.getElementById("publish-status").textContent`, &status)
	pageID, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(status, "Published as #"), "."))
	if pageID <= id {
		t.Errorf("the page published as #%d, want an id above #%d (%q)", pageID, id, status)
	}
	for _, col := range cols {
		p.wait(col+" column shows the messages", `(function () {
			var li = document.querySelectorAll("#col-`+col+` li");
			return li.length >= 3 && li[0].dataset.id === "`+strconv.Itoa(pageID)+`" &&
				li[0].querySelector(".text").textContent === "from the page" &&
				li[1].dataset.id === "`+strconv.Itoa(id)+`" &&
				li[1].querySelector(".text").textContent === `+jsString(text)+`;
		})()`)
		var n int
		p.evalInto(`document.querySelectorAll("#col-`+col+` li").length`, &n)
		if n != 3 {
			t.Errorf("column %s shows %d messages, want 3", col, n)
		}
	}
	var command string
	p.evalInto(`document.getElementById("command").textContent`, &command)
	if want := `printf 'ADDMESSAGE demo hello\r\n' | nc -q1 ` + strings.Replace(m.ctl, ":", " ", 1); command != want {
		t.Errorf("publish command shown: %q, want %q", command, want)
	}
	// The figures come from the API's /api/stats: five connections (a
	// held poll counts while it waits), two rates once there are two
	// readings, one box per transport.
	p.wait("server figures from /api/stats", `(function () {
		return document.getElementById("stats-error").hidden &&
			/^\d+$/.test(document.getElementById("stat-connections").textContent) &&
			/^\d+\.\d$/.test(document.getElementById("stat-published-rate").textContent) &&
			document.querySelector('#stat-transports [data-transport="websocket"]') !== null;
	})()`)
	var ws int
	p.evalInto(`Number(document.querySelector('#stat-transports [data-transport="websocket"] b').textContent)`, &ws)
	if ws != 1 {
		t.Errorf("the dashboard shows %d WebSocket connections, want 1", ws)
	}
}

// publishAPI publishes through the HTTP API at api and returns the id.
func (m *meteord) publishAPI(t *testing.T, api, channel, text string) int {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Post(api+"/api/channels/"+channel+"/messages", "text/plain; charset=utf-8", strings.NewReader(text))
	if err != nil {
		t.Fatalf("publishing through the API: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		ID int `json:"id"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("publishing through the API: HTTP %d, %v", resp.StatusCode, err)
	}
	return body.ID
}

// api returns the base URL of the server's HTTP API.
func (m *meteord) api() string { return "http://" + m.srv.AdminAddr().String() }

// jsString returns s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestParser checks the wire parser against the browser's own JavaScript
// parser, on input split at every position.
func TestParser(t *testing.T) {
	t.Parallel()
	m := startServer(t, nil)
	p := openClient(t, m)
	var bad []string
	p.evalInto(`(function () {
		var literals = [
			'""', "''", '"plain"', '"\\"q\\" \\\\ \\/ \\n\\r\\t\\b\\f\\v"', "'it\\'s'",
			'"\\x41\\u0042\\u{1F600}\\u{43}"', '"\\0 \\101\\60\\7\\377\\400\\8\\9"',
			'"line \\\ncontinued \\\r\ntoo \\\u2028and"', '"\\u003c/script\\u003e"',
			'"raw \u2028 and \u2029"', '"\\a\\c\\d\\e\\g"', '"é 日本 😀"'
		];
		var bad = [];
		literals.forEach(function (lit) {
			var want = Function("return " + lit)();
			var body = "<script>p(7,\"c\"," + lit + ");</script>\r\n";
			for (var i = 0; i <= body.length; i++) {
				var calls = Meteor.parse([body.slice(0, i), body.slice(i)]);
				if (calls.length !== 1 || calls[0][3] !== want || calls[0][1] !== 7) {
					bad.push(lit + " split at " + i + ": " + JSON.stringify(calls));
					return;
				}
			}
		});
		var body = '....<script>ch("a", 0);</script>\r\n<script>p(-1,"");</script>' +
			'<script>p(1,"a","x\\"y");p(2,"a",\'z\');</script>\r\n' +
			'<script>p(3,"a","unterminated);</script><script type="text/javascript">p(9,"a","no")</script>' +
			'<script>eof();</script>';
		var whole = JSON.stringify(Meteor.parse(body));
		var want = JSON.stringify([["ch","a",0],["p",-1,""],["p",1,"a","x\"y"],["p",2,"a","z"],["eof"]]);
		if (whole !== want) {
			bad.push("whole body: " + whole + ", want " + want);
		}
		for (var i = 0; i <= body.length; i++) {
			for (var j = i; j <= body.length; j++) {
				var got = JSON.stringify(Meteor.parse([body.slice(0, i), body.slice(i, j), body.slice(j)]));
				if (got !== want) {
					bad.push("body split at " + i + "," + j + ": " + got);
					return bad;
				}
			}
		}
		return bad;
	})()`, &bad)
	for _, b := range bad {
		t.Error(b)
	}
}

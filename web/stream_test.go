package web_test

// Browser tests of the transport ladder: MeteorClient (meteor.mjs) on each
// transport alone, the global Meteor in mode "stream", the fall-back when
// WebSocket is refused or silent, resuming across a server restart, and the
// gap signal.

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/enginetest"
	"github.com/meteorpush/meteor/internal/engine/memory"
	"github.com/meteorpush/meteor/internal/reason"
)

// ladder is the transports of MeteorClient, top first.
var ladder = []string{"websocket", "sse", "ndjson", "poll"}

// quickBeats makes the server send heartbeats every second, so that the
// client's silence timeout can be short.
func quickBeats(c *config.Config) { c.HeartbeatInterval = 1 }

// clientOptions are MeteorClient options that keep the tests short.
func clientOptions(transports ...string) map[string]any {
	return map[string]any{
		"transports":       transports,
		"heartbeatTimeout": 6000,
		"connectTimeout":   5000,
		"retryDelay":       200,
		"maxRetryDelay":    1000,
		"pollTimeout":      2,
	}
}

// openModule opens an idle page of the server at base with the module
// loaded as window.MC.
func openModule(t *testing.T, base string) *page {
	t.Helper()
	p := openClientAt(t, base)
	p.eval(`import("/meteor.esm.js").then(function (m) { window.MC = m.MeteorClient; }, function (e) { window.MCerr = String(e); }), 1`)
	p.wait("meteor.esm.js imported", `window.MC || window.MCerr`)
	var err string
	p.evalInto(`window.MCerr || ""`, &err)
	if err != "" {
		t.Fatalf("importing meteor.esm.js: %s", err)
	}
	return p
}

// newClient makes window.C = new MC(options), recording in T what it does,
// and subscribes to each channel with its options; T.got collects the
// messages of the callbacks, T.iter those of an async iterator on the
// first channel.
func (p *page) newClient(options map[string]any, subs ...[2]any) {
	p.t.Helper()
	o, _ := json.Marshal(options)
	s, _ := json.Marshal(subs)
	p.eval(fmt.Sprintf(`(function (options, subs) {
		window.T = {got: [], iter: [], gaps: [], statuses: [], errors: [], events: []};
		var c = window.C = new MC(options);
		c.on("status", function (s) { T.statuses.push(s.state + ":" + s.transport); });
		c.on("gap", function (g) { T.gaps.push({channel: g.channel, since: g.since, trimmed: g.trimmed, reset: g.reset}); });
		c.on("error", function (e) { T.errors.push(e.transport + ": " + e.message); });
		subs.forEach(function (sub, i) {
			var s = c.subscribe(sub[0], sub[1], function (m) {
				T.got.push({id: m.id, channel: m.channel, text: m.text});
			});
			if (i === 0) {
				(async function () {
					for await (var m of c.subscribe(sub[0])) {
						T.iter.push({id: m.id, channel: m.channel, text: m.text});
					}
					T.iterDone = true;
				})();
			}
		});
		return 1;
	})(%s, %s)`, o, s))
}

func (p *page) transport() string {
	p.t.Helper()
	var tr string
	p.evalInto(`(window.C && C.transport) || (window.Meteor && Meteor.transport) || ""`, &tr)
	return tr
}

// TestTransports: MeteorClient on each transport alone receives the
// history and then every message, in order, exactly, once; the callback
// and the async iterator see the same.
func TestTransports(t *testing.T) {
	for _, tr := range append(ladder, "xhrinteractive") {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			m := startServer(t, func(c *config.Config) {
				quickBeats(c)
				c.Mode("xhrinteractive").PingInterval = 1
			})
			early := m.publish(t, "news", "before the page")
			p := openModule(t, m.base)
			o := clientOptions(tr)
			o["heartbeatTimeout"] = 3000 // heartbeats come every second
			p.newClient(o, [2]any{"news", map[string]any{"history": "all"}})
			m.waitSubscribers(t, p, "news", 1)
			want := []received{{early, "news", "before the page"}}
			for _, text := range tricky {
				got := text
				if tr == "sse" {
					got = sseText(text)
				}
				want = append(want, received{m.publishAPI(t, m.api(), "news", text), "news", got})
			}
			p.expectGot(want)
			want = append(want, received{m.publish(t, "news", "last"), "news", "last"})
			p.expectGot(want)
			var iter []received
			p.evalInto("T.iter", &iter)
			if !reflect.DeepEqual(iter, want) {
				t.Errorf("async iterator got %+v, want %+v", iter, want)
			}
			if got := p.transport(); got != tr {
				t.Errorf("transport %q, want %q\n%s", got, tr, p.state())
			}
			var pwned bool
			p.evalInto("window.pwned === 1", &pwned)
			if pwned {
				t.Fatal("a message's text ran as script")
			}
			// Heartbeats keep an idle connection past heartbeatTimeout: no
			// reconnection.
			p.never("a reconnection while idle", `T.statuses.filter(function (s) { return s.indexOf("connecting") === 0; }).length > 1`, 4*time.Second)
			p.eval("C.close()")
			p.wait("the iterator ended by close()", "T.iterDone === true")
		})
	}
}

// TestSubscribeOptions: since, last and none on MeteorClient.
func TestSubscribeOptions(t *testing.T) {
	for _, tr := range ladder {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			m := startServer(t, quickBeats)
			var old []received
			for i := range 5 {
				text := fmt.Sprintf("old %d", i)
				old = append(old, received{m.publish(t, "a", text), "a", text})
			}
			var bLast int
			for i := range 3 {
				bLast = m.publish(t, "b", fmt.Sprintf("b old %d", i))
			}
			m.publish(t, "c", "c old")
			p := openModule(t, m.base)
			p.newClient(clientOptions(tr),
				[2]any{"a", map[string]any{"since": old[2].ID}},
				[2]any{"b", map[string]any{"last": 1}},
				[2]any{"c", map[string]any{}})
			m.waitSubscribers(t, p, "c", 1)
			want := append([]received(nil), old[3:]...)
			want = append(want, received{bLast, "b", "b old 2"})
			want = append(want, received{m.publish(t, "c", "c new"), "c", "c new"})
			p.expectGotPerChannel(want)
		})
	}
}

// TestStreamMode: the global Meteor in mode "stream" (the default) takes
// WebSocket, and a page written for 1.06 works unchanged.
func TestStreamMode(t *testing.T) {
	t.Parallel()
	m := startServer(t, quickBeats)
	old := m.publish(t, "sm", "old")
	p := openClient(t, m)
	p.connect(clientSetup{Channels: [][2]any{{"sm", 5}}})
	m.waitSubscribers(t, p, "sm", 1)
	want := []received{{old, "sm", "old"}, {m.publish(t, "sm", "new"), "sm", "new"}}
	p.expectGot(want)
	p.wait("status 5", "Meteor.status === 5")
	if tr := p.transport(); tr != "websocket" {
		t.Errorf("Meteor.transport = %q, want websocket", tr)
	}
}

// wsProxy is a proxy in front of a server that does something else with
// WebSocket requests: refuses them (403), or accepts them and then never
// sends a byte (a proxy that buffers).
type wsProxy struct {
	*proxy
	ws string // "refuse" or "silent"
}

func startWSProxy(t *testing.T, target, ws string) *wsProxy {
	t.Helper()
	p := &wsProxy{ws: ws}
	p.proxy = startProxyWith(t, target, func(px *proxy, c net.Conn) { serveWSProxied(px, ws, c) })
	return p
}

// serveWSProxied serves one connection of a proxy that plays a broken
// WebSocket (ws: "refuse" or "silent") and passes everything else on.
func serveWSProxied(p *proxy, ws string, c net.Conn) {
	defer p.wg.Done()
	defer p.untrack(c)
	br := bufio.NewReader(c)
	head, err := br.Peek(8)
	if err != nil {
		return
	}
	if s := string(head); s == "GET /ws " || s == "GET /ws?" {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		if ws == "refuse" {
			io.WriteString(c, "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			return
		}
		sum := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
		fmt.Fprintf(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
			base64.StdEncoding.EncodeToString(sum[:]))
		io.Copy(io.Discard, br) // and never a word back
		return
	}
	p.splice(c, br)
}

// TestFallback: with WebSocket refused, or accepted and then silent, the
// client goes down the ladder to SSE and gets everything.
func TestFallback(t *testing.T) {
	for _, ws := range []string{"refuse", "silent"} {
		for _, api := range []string{"global", "module"} {
			t.Run(ws+"/"+api, func(t *testing.T) {
				t.Parallel()
				m := startServer(t, quickBeats)
				link := startWSProxy(t, strings.TrimPrefix(m.base, "http://"), ws)
				early := m.publish(t, "fb", "before")
				var p *page
				if api == "global" {
					p = openClientAt(t, link.url())
					p.connect(clientSetup{Settings: map[string]any{"pingtimeout": 3000}, Channels: [][2]any{{"fb", -1}}})
				} else {
					p = openModule(t, link.url())
					o := clientOptions(ladder...)
					o["heartbeatTimeout"] = 3000
					p.newClient(o, [2]any{"fb", map[string]any{"history": "all"}})
				}
				want := []received{{early, "fb", "before"}}
				p.expectGot(want)
				m.waitSubscribers(t, p, "fb", 1)
				for i := range 5 {
					text := fmt.Sprintf("after %d", i)
					want = append(want, received{m.publish(t, "fb", text), "fb", text})
				}
				p.expectGot(want)
				if tr := p.transport(); tr != "sse" {
					t.Errorf("transport %q, want sse\n%s", tr, p.state())
				}
			})
		}
	}
}

// TestStreamRestart: meteord is killed (SIGKILL) and started again on
// the same ports, and its history is gone (the memory engine). The client
// comes back on its own and gets every message published after the
// restart, in order, once, the first one published before it was back
// included; ids go on growing. A MeteorClient is told that its stream was
// lost (a reset gap), whichever transport it uses.
func TestStreamRestart(t *testing.T) {
	for _, tr := range append(ladder, "global") {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			ports := freePorts(t, 3)
			m := startProcess(t, ports)
			var p *page
			if tr == "global" {
				p = openClientAt(t, m.base)
				p.connect(clientSetup{Settings: map[string]any{"pingtimeout": 6000, "maxpollfreq": 1000}, Channels: [][2]any{{"rs", -1}}})
			} else {
				p = openModule(t, m.base)
				p.newClient(clientOptions(tr), [2]any{"rs", map[string]any{"history": "all"}})
			}
			m.waitSubscribers(t, p, "rs", 1)
			var want []received
			for i := range 3 {
				text := fmt.Sprintf("kept %d", i)
				want = append(want, received{m.publish(t, "rs", text), "rs", text})
			}
			p.expectGot(want)
			m.kill(t, syscall.SIGKILL)
			m = startProcess(t, ports)
			// Published before the client is back: it comes as history.
			first := received{m.publish(t, "rs", "new 0"), "rs", "new 0"}
			if first.ID <= want[2].ID {
				t.Fatalf("id %d after the restart is not above %d: ids were reused", first.ID, want[2].ID)
			}
			want = append(want, first)
			m.waitSubscribers(t, p, "rs", 1)
			for i := 1; i < 3; i++ {
				text := fmt.Sprintf("new %d", i)
				want = append(want, received{m.publish(t, "rs", text), "rs", text})
			}
			p.expectGot(want)
			want = append(want, received{m.publish(t, "rs", "last"), "rs", "last"})
			p.expectGot(want)
			if tr == "global" {
				return // the 1.06 interface has no gap of its own for a reset
			}
			var gaps []struct {
				Channel string
				Reset   bool
			}
			p.evalInto("T.gaps", &gaps)
			if len(gaps) != 1 || gaps[0].Channel != "rs" || !gaps[0].Reset {
				t.Errorf("gaps %+v, want one reset of rs", gaps)
			}
		})
	}
}

// TestGap: the client is away while more messages are published than the
// channel keeps; when it is back it is told what it missed, then gets what
// is left.
func TestGap(t *testing.T) {
	for _, tr := range append(ladder, "global") {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			m := startServer(t, func(c *config.Config) {
				quickBeats(c)
				c.MaxMessagesPerChannel = 3
			})
			link := startProxy(t, strings.TrimPrefix(m.base, "http://"))
			var p *page
			if tr == "global" {
				p = openClientAt(t, link.url())
				p.connect(clientSetup{Settings: map[string]any{"pingtimeout": 6000, "maxpollfreq": 1000}, Channels: [][2]any{{"gp", 0}}})
				p.eval(`T.gaps = []; Meteor.registerEventCallback("gap", function (channel, since, trimmed) {
					T.gaps.push({channel: channel, since: since, trimmed: trimmed});
				})`)
			} else {
				p = openModule(t, link.url())
				p.newClient(clientOptions(tr), [2]any{"gp", map[string]any{}})
			}
			m.waitSubscribers(t, p, "gp", 1)
			first := m.publish(t, "gp", "seen")
			want := []received{{first, "gp", "seen"}}
			p.expectGot(want)
			link.setDown(true)
			deadline := time.Now().Add(waitTimeout)
			for m.subscribers(t, "gp") != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("still subscribed with the link down\n%s", p.state())
				}
				time.Sleep(20 * time.Millisecond)
			}
			var ids []int
			for i := range 6 {
				ids = append(ids, m.publish(t, "gp", fmt.Sprintf("away %d", i)))
			}
			link.setDown(false)
			for i := 3; i < 6; i++ { // the channel keeps the last 3
				want = append(want, received{ids[i], "gp", fmt.Sprintf("away %d", i)})
			}
			p.expectGot(want)
			p.wait("the gap signal", "T.gaps.length >= 1")
			var gaps []struct {
				Channel string `json:"channel"`
				Since   int    `json:"since"`
				Trimmed int    `json:"trimmed"`
			}
			p.evalInto("T.gaps", &gaps)
			if g := gaps[0]; g.Channel != "gp" || g.Since != first || g.Trimmed != ids[2] {
				t.Errorf("gap %+v, want channel gp, since %d, trimmed %d", g, first, ids[2])
			}
		})
	}
}

// TestModuleFile: meteor.esm.js is meteor.mjs, for servers that serve .mjs
// with a type browsers refuse for modules.
func TestModuleFile(t *testing.T) {
	a, err := os.ReadFile("public/meteor.mjs")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("public/meteor.esm.js")
	if err != nil {
		t.Fatal(err)
	}
	if string(a) != string(b) {
		t.Fatal("public/meteor.esm.js differs from public/meteor.mjs: copy it again")
	}
}

// closeChannel closes a channel's subscribers through the HTTP API, as an
// administrator does.
func (m *meteord) closeChannel(t *testing.T, channel string) {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Post(m.api()+"/api/channels/"+channel+"/close", "", nil)
	if err != nil {
		t.Fatalf("closing channel %s: %v", channel, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("closing channel %s: HTTP %d", channel, resp.StatusCode)
	}
}

// TestKick: an administrator closes the channel (WebSocket 4000, an SSE or
// NDJSON close event with reason channelClose): the client stops and does
// not come back; the global Meteor reports eof.
func TestKick(t *testing.T) {
	for _, tr := range []string{"websocket", "sse", "ndjson", "poll", "global"} {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			m := startServer(t, quickBeats)
			var p *page
			if tr == "global" {
				p = openClient(t, m)
				p.connect(clientSetup{Settings: map[string]any{"pingtimeout": 6000}, Channels: [][2]any{{"kk", 0}}})
			} else {
				p = openModule(t, m.base)
				p.newClient(clientOptions(tr), [2]any{"kk", map[string]any{}})
			}
			m.waitSubscribers(t, p, "kk", 1)
			want := []received{{m.publish(t, "kk", "before the kick"), "kk", "before the kick"}}
			p.expectGot(want)
			m.closeChannel(t, "kk")
			if tr == "global" {
				p.wait("status 6", "Meteor.status === 6")
				p.wait("the eof event", `T.events.indexOf("eof") >= 0`)
				p.never("a reconnection after the kick", "Meteor.status !== 6", time.Second)
			} else {
				p.wait("the client closed", `C.status === "closed" && T.errors.length > 0`)
				var errs []string
				p.evalInto("T.errors", &errs)
				if last := errs[len(errs)-1]; !strings.Contains(last, "4000") && !strings.Contains(last, "channelClose") {
					t.Errorf("last error %q, want the kick (4000 or channelClose)", last)
				}
				p.never("a reconnection after the kick", `C.status !== "closed"`, time.Second)
			}
			if tr == "global" {
				if got := p.transport(); got != "websocket" {
					t.Errorf("transport %q, want websocket", got)
				}
			}
			if n := m.subscribers(t, "kk"); n != 0 {
				t.Errorf("%d subscribers after the kick, want 0", n)
			}
		})
	}
}

// TestGapCleared: the channel's history is cleared while the client is
// away, so that nothing after its position is left: the gap is reported
// once, not again at every reconnection or poll, and what follows arrives.
func TestGapCleared(t *testing.T) {
	for _, tr := range ladder {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			m := startServer(t, quickBeats)
			link := startProxy(t, strings.TrimPrefix(m.base, "http://"))
			p := openModule(t, link.url())
			p.newClient(clientOptions(tr), [2]any{"gc", map[string]any{}})
			m.waitSubscribers(t, p, "gc", 1)
			first := m.publish(t, "gc", "seen")
			want := []received{{first, "gc", "seen"}}
			p.expectGot(want)
			link.setDown(true)
			deadline := time.Now().Add(waitTimeout)
			for m.subscribers(t, "gc") != 0 {
				if time.Now().After(deadline) {
					t.Fatalf("still subscribed with the link down\n%s", p.state())
				}
				time.Sleep(20 * time.Millisecond)
			}
			m.publish(t, "gc", "away 1")
			lost := m.publish(t, "gc", "away 2")
			req, _ := http.NewRequest(http.MethodDelete, m.api()+"/api/channels/gc/messages", nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			link.setDown(false)
			p.wait("the gap signal", "T.gaps.length >= 1")
			m.waitSubscribers(t, p, "gc", 1)
			want = append(want, received{m.publish(t, "gc", "after"), "gc", "after"})
			p.expectGot(want)
			var gaps []struct {
				Channel string `json:"channel"`
				Since   int    `json:"since"`
				Trimmed int    `json:"trimmed"`
			}
			p.evalInto("T.gaps", &gaps)
			if len(gaps) != 1 || gaps[0].Since != first || gaps[0].Trimmed != lost {
				t.Errorf("gaps %+v, want one: since %d, trimmed %d", gaps, first, lost)
			}
		})
	}
}

// TestCloseCodes: the JavaScript client's table of close codes is the
// server's (internal/reason): for every code the server sends, the same
// first reason and the same decision to reconnect or not.
func TestCloseCodes(t *testing.T) {
	m := startServer(t, nil)
	p := openClient(t, m)
	var js map[string]struct {
		Name      string `json:"name"`
		Reconnect bool   `json:"reconnect"`
	}
	p.evalInto(`Meteor.closeCodes`, &js)
	want := map[string]bool{}
	for _, r := range reason.All() {
		if r == reason.RemoteClosed || r == reason.Quit {
			continue // never sent to a subscriber by the server on its own
		}
		code := strconv.Itoa(int(r.Code()))
		want[code] = true
		first, _ := reason.ForCode(r.Code())
		got, ok := js[code]
		if !ok {
			t.Errorf("code %s (%v) is not in the client's table", code, r)
			continue
		}
		if got.Name != first.String() || got.Reconnect != r.Reconnect() {
			t.Errorf("code %s: client says %+v, server %v reconnect=%v", code, got, first, r.Reconnect())
		}
	}
	for code := range js {
		if !want[code] {
			t.Errorf("the client's table has code %s, which no reason has", code)
		}
	}
}

// TestStoreUnavailable: while the server's store cannot be reached, a
// MeteorClient is answered 503 (SSE, NDJSON, long-poll) or gets an error
// frame for its channel (WebSocket); it keeps its transport, waits what it
// was told, and once the store is back it subscribes and gets what is
// published, on the same transport.
func TestStoreUnavailable(t *testing.T) {
	for _, tr := range ladder {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			w := enginetest.Wrap(memory.New(engine.Limits{MaxMessages: 100}), enginetest.WrapOptions{})
			w.Fail(enginetest.OpHistory, enginetest.Unavailable("test"))
			m := startServerOn(t, w, quickBeats)
			p := openModule(t, m.base)
			// The next rung is offered: a 503 must not make the client
			// take it.
			next := "poll"
			if tr == "poll" {
				next = "sse"
			}
			p.newClient(clientOptions(tr, next), [2]any{"su", map[string]any{}})
			p.wait("the refusal reported", `T.errors.some(function (e) { return /503|storeUnavailable/.test(e); })`)
			w.Fail(enginetest.OpHistory, nil)
			m.waitSubscribers(t, p, "su", 1)
			want := []received{{m.publish(t, "su", "back"), "su", "back"}}
			p.expectGot(want)
			if got := p.transport(); got != tr {
				t.Errorf("transport %q after the store came back, want %q (a 503 keeps the transport)\n%s", got, tr, p.state())
			}
		})
	}
}

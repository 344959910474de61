package web_test

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/meteorpush/meteor/internal/config"
)

// startTokenServer starts a server on non-default ports below 32768
// (subscriber, controller, API, UDP; freePorts, from 10000 on) with an
// APIToken.
func startTokenServer(t *testing.T, token string) (m *meteord, ctlPort, apiPort, udpPort int) {
	t.Helper()
	ports := freePorts(t, 4)
	m = startServer(t, func(c *config.Config) {
		c.SubscriberPort, c.ControllerPort, c.AdminPort = ports[0], ports[1], ports[2]
		c.UDPIP, c.UDPPort = "127.0.0.1", ports[3]
		c.APIToken = token
	})
	return m, ports[1], ports[2], ports[3]
}

// text is the text content of the element with the given id.
func (p *page) text(id string) string {
	p.t.Helper()
	var s string
	p.evalInto(`(document.getElementById(`+jsString(id)+`) || {}).textContent || ""`, &s)
	return s
}

// enterToken types a token in the page's token field and submits it.
func (p *page) enterToken(token string) {
	p.t.Helper()
	p.eval(`document.getElementById("api-token").value = ` + jsString(token) + `; document.querySelector("#token-form button[type=submit]").click(), 1`)
}

// TestDashboardFindsServer: on non-default ports and with an APIToken, the
// dashboard, opened with no ?api=, finds the API through
// /meteor/server.json, shows the real controller and UDP ports in its
// commands, asks for the token and names the 401 for what it is; a wrong
// token is said to be refused; with the right one (kept for the tab in
// sessionStorage, across a reload) it shows the figures, charts them, lists
// the channels and publishes, and the message arrives live in every
// column, with its latency, while the history shows none.
func TestDashboardFindsServer(t *testing.T) {
	t.Parallel()
	const token = "dash-token-7f3a9c"
	m, ctlPort, apiPort, udpPort := startTokenServer(t, token)
	old := m.publish(t, "demo", "stored before")
	apiURL := "http://127.0.0.1:" + strconv.Itoa(apiPort)
	p := openPage(t, m.base+"/")

	p.wait("the API's address from the server", `document.getElementById("api-base").textContent === `+jsString(apiURL))
	if got, want := p.text("command"), fmt.Sprintf(`printf 'ADDMESSAGE demo hello\r\n' | nc -q1 127.0.0.1 %d`, ctlPort); got != want {
		t.Errorf("controller command %q, want %q", got, want)
	}
	if got, want := p.text("command-udp"), fmt.Sprintf(`printf 'ADDMESSAGE demo hello\r\n' | nc -u -q1 127.0.0.1 %d`, udpPort); got != want {
		t.Errorf("UDP command %q, want %q", got, want)
	}
	if got := p.text("curl"); !strings.Contains(got, `-H "Authorization: Bearer $TOKEN"`) || !strings.Contains(got, apiURL+"/api/channels/demo/messages") {
		t.Errorf("curl command %q: want the bearer header and %s", got, apiURL)
	}
	if strings.Contains(string(p.eval(`document.documentElement.outerHTML`)), token) {
		t.Error("the page holds the token before it was entered")
	}

	// No token yet: the page asks for one, and says so where it failed.
	p.wait("the token field shown", `document.getElementById("token-form").offsetParent !== null`)
	p.wait("the stats say a token is required", `!document.getElementById("stats-error").hidden &&
		document.getElementById("stats-error").textContent.includes("token required: the API at `+apiURL+` needs its APIToken")`)
	p.wait("the channel list says a token is required", `document.getElementById("channels-error").textContent.includes("token required")`)
	if s := p.text("stats-error"); strings.Contains(s, "CORS") {
		t.Errorf("a 401 blamed on CORS: %q", s)
	}

	// A wrong token is refused, clearly.
	p.enterToken("not-the-token")
	p.wait("the stats say the token is refused", `document.getElementById("stats-error").textContent.includes("token refused by the API at `+apiURL+`")`)
	p.wait("the token status says refused", `document.getElementById("token-status").textContent.includes("token refused")`)
	p.eval(`document.getElementById("publish-text").value = "wrong token"; document.querySelector("#publish-form button").click(), 1`)
	p.wait("the publish box says the token is refused", `document.getElementById("publish-status").textContent.startsWith("Could not publish: token refused")`)

	// The right one.
	p.enterToken(token)
	p.wait("the token accepted", `document.getElementById("token-status").textContent === "Token accepted."`)
	p.wait("the figures from /api/stats", `document.getElementById("stats-error").hidden &&
		/^\d+\.\d$/.test(document.getElementById("stat-published-rate").textContent) &&
		document.querySelector('#stat-transports [data-transport="websocket"]') !== null`)
	p.wait("the channel list", `document.getElementById("channels-error").hidden &&
		document.querySelector('#channels tr[data-channel="demo"]') !== null`)
	var stored string
	p.evalInto(`sessionStorage.getItem("meteor.apiToken `+apiURL+`")`, &stored)
	if stored != token {
		t.Errorf("sessionStorage holds %q, want the token", stored)
	}

	cols := []string{"websocket", "sse", "ndjson", "poll", "legacy"}
	for _, col := range cols {
		p.wait(col+" column shows the history", `document.querySelector('#col-`+col+` li[data-id="`+strconv.Itoa(old)+`"]')`)
	}
	var lat int
	p.evalInto(`document.querySelectorAll("#cols li .lat").length`, &lat)
	if lat != 0 {
		t.Errorf("%d history messages show a latency, want none", lat)
	}
	m.waitSubscribers(t, p, "demo", 5)

	// Publish from the page, with the token: it arrives live everywhere,
	// with its latency on the transports that carry a time (WebSocket,
	// NDJSON and long-poll; SSE's events and the legacy stream carry none).
	p.eval(`document.getElementById("publish-text").value = "live one"; document.querySelector("#publish-form button").click(), 1`)
	p.wait("the publish box's answer", `/^Published as #\d+\.$/.test(document.getElementById("publish-status").textContent)`)
	status := p.text("publish-status")
	id, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(status, "Published as #"), "."))
	if id <= old {
		t.Fatalf("published as #%d (%q), want above #%d", id, status, old)
	}
	for _, col := range cols {
		p.wait(col+" column shows the live message", `(function () {
			var li = document.querySelector('#col-`+col+` li[data-id="`+strconv.Itoa(id)+`"]');
			return li && li.querySelector(".text").textContent === "live one";
		})()`)
		var l string
		p.evalInto(`(document.querySelector('#col-`+col+` li[data-id="`+strconv.Itoa(id)+`"] .lat') || {}).textContent || ""`, &l)
		if col == "legacy" || col == "sse" {
			if l != "" {
				t.Errorf("%s column shows a latency %q; its transport carries no time", col, l)
			}
			continue
		}
		var ms int
		if _, err := fmt.Sscanf(l, "%d ms after publication", &ms); err != nil || ms < 0 || ms > 10000 {
			t.Errorf("column %s: latency %q, want \"<n> ms after publication\"", col, l)
		}
	}

	// The charts: a line per transport, one WebSocket connection now, and
	// the published rate.
	p.wait("the connection chart", `(function () {
		var pl = document.querySelector('#chart-connections polyline[data-series="websocket"]');
		var key = document.querySelector('#legend-connections [data-series="websocket"]');
		return pl && pl.getAttribute("points").trim().split(" ").length >= 2 && key && key.textContent === "websocket 1";
	})()`)
	p.wait("the rate chart", `(function () {
		var pl = document.querySelector('#chart-rate polyline[data-series="published"]');
		return pl && pl.getAttribute("points").trim().split(" ").length >= 2 &&
			document.querySelector('#chart-rate polyline[data-series="delivered"]') !== null;
	})()`)
	for _, tr := range []string{"sse", "ndjson", "longpoll", "legacy"} {
		p.wait(tr+" in the connection chart", `document.querySelector('#chart-connections polyline[data-series="`+tr+`"]') !== null`)
	}

	// A reload keeps the token for the tab.
	if err := chromedp.Do(p.ctx, chromedp.Reload()); err != nil {
		t.Fatalf("reload: %v", err)
	}
	p.wait("the figures after a reload", `document.getElementById("stats-source").textContent.includes("/api/stats") &&
		document.getElementById("stats-error").hidden`)

	// A link that names another API does not get the token.
	if err := chromedp.Do(p.ctx, chromedp.Navigate(m.base+"/?api="+url.QueryEscape("http://localhost:"+strconv.Itoa(apiPort)))); err != nil {
		t.Fatalf("navigate: %v", err)
	}
	p.wait("another API address asks for a token", `document.getElementById("stats-error").textContent.includes("token required")`)
}

// TestDashboardErrors: a failure is named for what it is: an API that
// cannot be reached is not blamed on CORS, and one that answers but not to
// the page's origin is.
func TestDashboardErrors(t *testing.T) {
	t.Parallel()
	m := startServer(t, nil)
	dead := freePorts(t, 1)[0]
	deadURL := "http://127.0.0.1:" + strconv.Itoa(dead)
	p := openPage(t, m.base+"/?api="+url.QueryEscape(deadURL))
	p.wait("cannot reach", `document.getElementById("stats-error").textContent.includes("cannot reach the API at `+deadURL+`")`)
	if s := p.text("stats-error"); strings.Contains(s, "CORS") {
		t.Errorf("an unreachable API blamed on CORS: %q", s)
	}
	p.eval(`document.querySelector("#publish-form button").click(), 1`)
	p.wait("publishing cannot reach", `document.getElementById("publish-status").textContent.includes("cannot reach the API at `+deadURL+`")`)

	// Another server's API trusts its own dashboard, not this one.
	other := startServer(t, nil)
	q := openPage(t, m.base+"/?api="+url.QueryEscape(other.api()))
	q.wait("a CORS refusal", `document.getElementById("stats-error").textContent.includes("answers, but not to this page (CORS)")`)
	if s := q.text("stats-error"); !strings.Contains(s, m.base) {
		t.Errorf("the CORS error %q does not name the page's origin %s", s, m.base)
	}
}

// TestDashboardNoToken: without APIToken the page asks for none.
func TestDashboardNoToken(t *testing.T) {
	t.Parallel()
	m := startServer(t, nil)
	p := openPage(t, m.base+"/")
	p.wait("the figures", `document.getElementById("stats-source").textContent.includes("/api/stats")`)
	var shown bool
	p.evalInto(`document.getElementById("token-form").offsetParent !== null || document.getElementById("command-udp").offsetParent !== null`, &shown)
	if shown {
		t.Error("the token field or a UDP command is shown for a server with no token and no UDP")
	}
	if got := p.text("curl"); strings.Contains(got, "Authorization") {
		t.Errorf("curl command %q asks for a token", got)
	}
}

// TestDashboardQuietPoll: on a channel with no message, the long-poll
// column says its request waits, not that it is connecting.
func TestDashboardQuietPoll(t *testing.T) {
	t.Parallel()
	m := startServer(t, nil)
	p := openPage(t, m.base+"/?channel=quiet")
	m.waitSubscribers(t, p, "quiet", 5)
	p.wait("the long-poll column waiting", `document.querySelector("#col-poll .state").textContent === "waiting"`)
	p.never("the long-poll column connecting", `document.querySelector("#col-poll .state").textContent === "connecting"`, 500*time.Millisecond)
	for _, col := range []string{"websocket", "sse", "ndjson"} {
		p.wait(col+" open", `document.querySelector("#col-`+col+` .state").textContent === "open"`)
	}
}

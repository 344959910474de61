package api_test

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/api"
	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/server"
	"github.com/meteorpush/meteor/internal/testkit"
	"github.com/meteorpush/meteor/internal/version"
)

// TestPublishOne publishes a message as text and as JSON and reads it back.
func TestPublishOne(t *testing.T) {
	ts := start(t, nil)
	t0 := time.Now().UnixMilli()
	r := ts.do("POST", "/api/channels/demo/messages", "text/plain; charset=utf-8", "hello world")
	if r.status != http.StatusCreated {
		t.Fatalf("text publish = %d %q, want 201", r.status, r.body)
	}
	v := r.json(t)
	if v["id"] != 1.0 || v["channel"] != "demo" {
		t.Errorf("text publish = %s, want id 1, channel demo", r.body)
	}
	if tm, _ := v["time"].(float64); int64(tm) < t0-1000 || int64(tm) > time.Now().UnixMilli()+1000 {
		t.Errorf("time = %v, want about %d", v["time"], t0)
	}
	r = ts.do("POST", "/api/channels/demo/messages", "application/json", map[string]string{"text": `{"a":"<b>"}`})
	if r.status != http.StatusCreated || r.json(t)["id"] != 2.0 {
		t.Fatalf("JSON publish = %d %q, want 201 id 2", r.status, r.body)
	}
	// No Content-Type, as curl --data-binary sends with -H none: text.
	r = ts.do("POST", "/api/channels/demo/messages", "", "")
	if r.status != http.StatusCreated || r.json(t)["id"] != 3.0 {
		t.Fatalf("empty publish = %d %q, want 201 id 3", r.status, r.body)
	}
	ch := ts.get("/api/channels/demo")
	hist := ch["history"].([]any)
	var texts []string
	for _, m := range hist {
		texts = append(texts, m.(map[string]any)["text"].(string))
	}
	if got, want := strings.Join(texts, "|"), `hello world|{"a":"<b>"}|`; got != want {
		t.Errorf("history texts = %q, want %q", got, want)
	}
}

// TestPublishBatch publishes several messages, and one message to several
// channels, in one request.
func TestPublishBatch(t *testing.T) {
	ts := start(t, nil)
	r := ts.do("POST", "/api/publish", "application/json",
		`{"messages":[{"channel":"a","text":"x"},{"channel":"b","text":"y"},{"channel":"a","text":"z"}]}`)
	if r.status != http.StatusCreated {
		t.Fatalf("batch = %d %q, want 201", r.status, r.body)
	}
	want := []struct {
		id uint64
		ch string
	}{{1, "a"}, {1, "b"}, {2, "a"}} // each channel numbers its own
	res := r.json(t)["results"].([]any)
	if len(res) != len(want) {
		t.Fatalf("results = %s, want %d", r.body, len(want))
	}
	for i, w := range want {
		m := res[i].(map[string]any)
		if uint64(m["id"].(float64)) != w.id || m["channel"] != w.ch {
			t.Errorf("results[%d] = %v, want id %d channel %s", i, m, w.id, w.ch)
		}
	}
	r = ts.do("POST", "/api/publish", "application/json", `{"channels":["b","c"],"text":"all"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("multi-channel = %d %q, want 201", r.status, r.body)
	}
	if got := string(r.body); !strings.Contains(got, `{"id":2,"channel":"b"`) || !strings.Contains(got, `{"id":1,"channel":"c"`) {
		t.Errorf("multi-channel = %s, want ids 2 (b) and 1 (c)", got)
	}
	for ch, n := range map[string]float64{"a": 2, "b": 2, "c": 1} {
		if got := ts.get("/api/channels/" + ch)["messages"]; got != n {
			t.Errorf("channel %s holds %v messages, want %v", ch, got, n)
		}
	}
	if got := ts.get("/api/stats")["unique_messages"]; got != 5.0 {
		t.Errorf("unique_messages = %v, want 5", got)
	}
}

// chunked hides a reader's length so that the body is sent chunked,
// without a Content-Length.
type chunked struct{ r io.Reader }

func (c chunked) Read(p []byte) (int, error) { return c.r.Read(p) }

// TestPublishErrors: every refusal is a JSON error with the right status,
// and a refused request publishes nothing.
func TestPublishErrors(t *testing.T) {
	ts := start(t, func(cfg *config.Config) { cfg.MaxMessageBytes = 10 })
	big := strings.Repeat("x", 11)
	tests := []struct {
		name        string
		method      string
		path        string
		contentType string
		body        any
		status      int
		reason      string // a part of the error
	}{
		{"text too long", "POST", "/api/channels/c/messages", "text/plain", big, 413, "message is 11 bytes, the limit is 10"},
		{"chunked text too long", "POST", "/api/channels/c/messages", "text/plain", chunked{strings.NewReader(big)}, 413, "message is more than 10 bytes, the limit is 10"},
		{"JSON text too long", "POST", "/api/channels/c/messages", "application/json", `{"text":"` + big + `"}`, 413, "message is 11 bytes, the limit is 10"},
		{"JSON body too long", "POST", "/api/channels/c/messages", "application/json", `{"text":"` + strings.Repeat(`\n`, 5000) + `"}`, 413, "request body is 10011 bytes, the limit is 4156"},
		{"batch text too long", "POST", "/api/publish", "application/json", `{"messages":[{"channel":"c","text":"ok"},{"channel":"c","text":"` + big + `"}]}`, 413, "messages[1]: message is 11 bytes, the limit is 10"},
		{"multi text too long", "POST", "/api/publish", "application/json", `{"channels":["c"],"text":"` + big + `"}`, 413, "message is 11 bytes, the limit is 10"},
		{"bad channel", "POST", "/api/channels/a.b/messages", "text/plain", "x", 400, `invalid channel name "a.b"`},
		{"bad channel in batch", "POST", "/api/publish", "application/json", `{"messages":[{"channel":"c","text":"ok"},{"channel":"a b","text":"x"}]}`, 400, `messages[1]: invalid channel name "a b"`},
		{"bad channel in list", "POST", "/api/publish", "application/json", `{"channels":["c",""],"text":"x"}`, 400, `channels[1]: invalid channel name ""`},
		{"bad JSON", "POST", "/api/channels/c/messages", "application/json", `{"text":`, 400, "invalid JSON: unexpected EOF"},
		{"JSON not an object", "POST", "/api/channels/c/messages", "application/json", `"x"`, 400, "invalid JSON: json: cannot unmarshal string"},
		{"empty JSON", "POST", "/api/channels/c/messages", "application/json", ``, 400, "invalid JSON: empty body"},
		{"unknown field", "POST", "/api/channels/c/messages", "application/json", `{"txt":"x"}`, 400, `unknown field "txt"`},
		{"trailing data", "POST", "/api/channels/c/messages", "application/json", `{"text":"x"} {}`, 400, "data after the JSON value"},
		{"missing text", "POST", "/api/channels/c/messages", "application/json", `{}`, 400, `missing "text"`},
		{"text not a string", "POST", "/api/channels/c/messages", "application/json", `{"text":5}`, 400, "cannot unmarshal number"},
		{"batch bad JSON", "POST", "/api/publish", "application/json", `{"messages":[`, 400, "invalid JSON"},
		{"batch empty", "POST", "/api/publish", "application/json", `{"messages":[]}`, 400, `"messages" is empty`},
		{"batch nothing", "POST", "/api/publish", "application/json", `{}`, 400, `give "messages", or "channels" and "text"`},
		{"batch both", "POST", "/api/publish", "application/json", `{"messages":[{"channel":"c","text":"x"}],"text":"y"}`, 400, "not both"},
		{"batch missing channel", "POST", "/api/publish", "application/json", `{"messages":[{"text":"x"}]}`, 400, `messages[0]: missing "channel"`},
		{"batch missing text", "POST", "/api/publish", "application/json", `{"messages":[{"channel":"c"}]}`, 400, `messages[0]: missing "text"`},
		{"multi missing text", "POST", "/api/publish", "application/json", `{"channels":["c"]}`, 400, `missing "text"`},
		{"multi no channels", "POST", "/api/publish", "application/json", `{"channels":[],"text":"x"}`, 400, `"channels" is empty`},
		{"batch not JSON", "POST", "/api/publish", "text/plain", `x`, 415, "must be JSON"},
		{"GET publish", "GET", "/api/publish", "", nil, 405, "method GET not allowed; allowed: POST"},
		{"PUT messages", "PUT", "/api/channels/c/messages", "text/plain", "x", 405, "method PUT not allowed"},
		{"POST stats", "POST", "/api/stats", "", nil, 405, "method POST not allowed"},
		{"unknown endpoint", "GET", "/api/nothing", "", nil, 404, "no such endpoint: /api/nothing"},
		{"root", "GET", "/", "", nil, 404, "no such endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ts.do(tt.method, tt.path, tt.contentType, tt.body)
			if r.status != tt.status {
				t.Fatalf("%s %s = %d %q, want %d", tt.method, tt.path, r.status, r.body, tt.status)
			}
			if e := r.errorText(t); !strings.Contains(e, tt.reason) {
				t.Errorf("error = %q, want it to contain %q", e, tt.reason)
			}
			if tt.status == 405 && r.header.Get("Allow") == "" {
				t.Errorf("405 without an Allow header")
			}
		})
	}
	if got := ts.get("/api/channels")["channels"].([]any); len(got) != 0 {
		t.Errorf("refused requests published: channels %v", got)
	}
	if got := ts.get("/api/stats")["unique_messages"]; got != 0.0 {
		t.Errorf("unique_messages = %v after refusals only, want 0", got)
	}
}

// TestChannels lists channels and reads one with its history.
func TestChannels(t *testing.T) {
	ts := start(t, func(cfg *config.Config) { cfg.MaxMessagesPerChannel = 20 })
	for i := range 15 {
		ts.publish("b", fmt.Sprint("m", i))
	}
	ts.publish("a", "only")
	ts.subscribe("/push/h1/xhrinteractive/a/z", "z")

	r := ts.do("GET", "/api/channels", "", nil)
	if want := `{"channels":[{"name":"a","messages":1,"subscribers":1,"lastId":1},` +
		`{"name":"b","messages":15,"subscribers":0,"lastId":15},` +
		`{"name":"z","messages":0,"subscribers":1,"lastId":0}]}` + "\n"; string(r.body) != want {
		t.Errorf("GET /api/channels:\n got %s\nwant %s", r.body, want)
	}

	history := func(path string) (first, last float64, n int) {
		t.Helper()
		v := ts.get(path)
		h := v["history"].([]any)
		if len(h) == 0 {
			return 0, 0, 0
		}
		return h[0].(map[string]any)["id"].(float64), h[len(h)-1].(map[string]any)["id"].(float64), len(h)
	}
	for _, tt := range []struct {
		path        string
		first, last float64
		n           int
	}{
		{"/api/channels/b", 6, 15, 10},
		{"/api/channels/b?history=3", 13, 15, 3},
		{"/api/channels/b?history=0", 0, 0, 0},
		{"/api/channels/b?history=1000", 1, 15, 15},
	} {
		if first, last, n := history(tt.path); first != tt.first || last != tt.last || n != tt.n {
			t.Errorf("GET %s: %d messages %v..%v, want %d messages %v..%v", tt.path, n, first, last, tt.n, tt.first, tt.last)
		}
	}
	v := ts.get("/api/channels/b?history=1")
	m := v["history"].([]any)[0].(map[string]any)
	if v["name"] != "b" || v["messages"] != 15.0 || v["firstId"] != 1.0 || v["lastId"] != 15.0 || v["subscribers"] != 0.0 ||
		m["id"] != 15.0 || m["channel"] != "b" || m["text"] != "m14" || m["time"].(float64) <= 0 {
		t.Errorf("GET /api/channels/b?history=1 = %v", v)
	}
	if v := ts.get("/api/channels/z"); v["subscribers"] != 1.0 || len(v["history"].([]any)) != 0 {
		t.Errorf("channel with a subscriber and no message = %v", v)
	}

	for _, tt := range []struct {
		path   string
		status int
		reason string
	}{
		{"/api/channels/nope", 404, `no channel "nope"`},
		{"/api/channels/b?history=x", 400, "history must be a whole number from 0 to 20"},
		{"/api/channels/b?history=-1", 400, "history must be a whole number"},
		{"/api/channels/a.b", 400, "invalid channel name"},
	} {
		r := ts.do("GET", tt.path, "", nil)
		if r.status != tt.status || !strings.Contains(r.errorText(t), tt.reason) {
			t.Errorf("GET %s = %d %q, want %d and %q", tt.path, r.status, r.body, tt.status, tt.reason)
		}
	}
}

// TestClearAndClose clears a channel's history and closes its subscribers.
func TestClearAndClose(t *testing.T) {
	ts := start(t, nil)
	ts.publish("c", "one")
	ts.publish("c", "two")
	ts.publish("d", "keep")
	r := ts.do("DELETE", "/api/channels/c/messages", "", nil)
	if r.status != http.StatusOK || string(r.body) != `{"channel":"c","cleared":2}`+"\n" {
		t.Errorf("DELETE = %d %s, want 200 cleared 2", r.status, r.body)
	}
	v := ts.get("/api/channels/c")
	if v["messages"] != 0.0 || len(v["history"].([]any)) != 0 || v["lastId"] != 0.0 {
		t.Errorf("after DELETE, channel c = %v, want no messages", v)
	}
	if v := ts.get("/api/channels/d"); v["messages"] != 1.0 {
		t.Errorf("DELETE of c cleared d too: %v", v)
	}
	if r := ts.do("DELETE", "/api/channels/nope/messages", "", nil); r.status != 404 || !strings.Contains(r.errorText(t), "no channel") {
		t.Errorf("DELETE of an unknown channel = %d %s, want 404", r.status, r.body)
	}

	s1 := ts.subscribe("/push/h1/xhrinteractive/d", "d")
	s2 := ts.subscribe("/push/h2/xhrinteractive/d/c", "d")
	ts.subscribe("/push/h3/xhrinteractive/c", "c")
	r = ts.do("POST", "/api/channels/d/close", "", nil)
	if r.status != http.StatusOK || string(r.body) != `{"channel":"d","closed":2}`+"\n" {
		t.Errorf("close = %d %s, want 200 closed 2", r.status, r.body)
	}
	s1.readToEOF()
	s2.readToEOF()
	testkit.Eventually(t, "channel d without subscribers", func() bool { return ts.subscribers("d") == 0 })
	if n := ts.subscribers("c"); n != 1 {
		t.Errorf("closing d closed a subscriber of c only: c has %d subscribers, want 1", n)
	}
	if r := ts.do("POST", "/api/channels/d/close", "", nil); r.status != 200 || r.json(t)["closed"] != 0.0 {
		t.Errorf("second close = %d %s, want closed 0", r.status, r.body)
	}
	if r := ts.do("POST", "/api/channels/nope/close", "", nil); r.status != 404 {
		t.Errorf("close of an unknown channel = %d %s, want 404", r.status, r.body)
	}
	if r := ts.do("GET", "/api/channels/d/close", "", nil); r.status != 405 || r.header.Get("Allow") != "POST" {
		t.Errorf("GET close = %d %s Allow %q, want 405 Allow POST", r.status, r.body, r.header.Get("Allow"))
	}
}

// TestStats reports SHOWSTATS's counters, all of them, and connections by
// transport.
func TestStats(t *testing.T) {
	ts := start(t, nil)
	ts.publish("a", "x")
	ts.subscribe("/push/h1/xhrinteractive/a", "a")
	v := ts.get("/api/stats")
	for _, k := range []string{"uptime", "channel_count", "total_requests", "current_controllers",
		"controller_connections_accepted", "current_subscribers", "subscriber_connections_accepted",
		"unique_messages", "messages_served", "total_inbound_bytes", "total_outbound_bytes",
		"documents_served", "documents_not_found", "errors_served"} {
		if _, ok := v[k].(float64); !ok {
			t.Errorf("stats has no number %q: %v", k, v)
		}
	}
	if v["channel_count"] != 1.0 || v["unique_messages"] != 1.0 || v["current_subscribers"] != 1.0 {
		t.Errorf("stats = %v, want channel_count 1, unique_messages 1, current_subscribers 1", v)
	}
	conns, _ := v["connections"].(map[string]any)
	if conns["legacy"] != 1.0 || conns["sse"] != 0.0 {
		t.Errorf("connections = %v, want legacy 1, sse 0", conns)
	}
	b := version.Get()
	want := map[string]any{"version": b.Version, "commit": b.Commit, "date": b.Date, "goversion": b.GoVersion}
	if got, _ := v["build"].(map[string]any); !maps.Equal(got, want) {
		t.Errorf("build = %v, want %v", v["build"], want)
	}
}

// TestToken: with APIToken set, every call but /healthz and /readyz needs
// it, /metrics included.
func TestToken(t *testing.T) {
	ts := start(t, func(cfg *config.Config) { cfg.APIToken = "s3cret" })
	for _, p := range []string{"/healthz", "/readyz"} {
		ts.token = ""
		if r := ts.do("GET", p, "", nil); r.status != 200 {
			t.Errorf("GET %s without a token = %d %s, want 200", p, r.status, r.body)
		}
	}
	for _, tt := range []struct {
		method, path string
	}{
		{"GET", "/api/stats"}, {"GET", "/api/channels"}, {"GET", "/metrics"},
		{"POST", "/api/channels/c/messages"}, {"POST", "/api/publish"},
		{"DELETE", "/api/channels/c/messages"}, {"POST", "/api/channels/c/close"},
		{"GET", "/api/nothing"}, {"PUT", "/api/stats"},
	} {
		for _, auth := range []struct{ token, header, reason string }{
			{"", "", "missing bearer token"},
			{"", "Basic czNjcmV0", "missing bearer token"},
			{"", "Bearer ", "missing bearer token"},
			{"wrong", "", "wrong token"},
			{"s3cret2", "", "wrong token"},
			{"S3CRET", "", "wrong token"},
		} {
			ts.token = auth.token
			var hdr []string
			if auth.header != "" {
				hdr = []string{"Authorization", auth.header}
			}
			r := ts.do(tt.method, tt.path, "text/plain", "x", hdr...)
			if r.status != 401 || r.errorText(t) != auth.reason || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s with token %q header %q = %d %s (WWW-Authenticate %q), want 401 %q",
					tt.method, tt.path, auth.token, auth.header, r.status, r.body, r.header.Get("WWW-Authenticate"), auth.reason)
			}
		}
	}
	ts.token = "s3cret"
	ts.publish("c", "x")
	ts.get("/api/stats")
	if ts.metric("meteor_messages_published_total") != 1 {
		t.Errorf("/metrics with the token: published_total is not 1")
	}
	if r := ts.do("GET", "/api/stats", "", nil, "Authorization", "bearer s3cret"); r.status != 200 {
		t.Errorf("lower-case scheme = %d, want 200", r.status)
	}
}

// TestNoToken: without APIToken, a loopback listener needs no credentials.
func TestNoToken(t *testing.T) {
	ts := start(t, nil)
	ts.get("/api/stats")
	if r := ts.do("GET", "/metrics", "", nil); r.status != 200 {
		t.Errorf("GET /metrics = %d, want 200", r.status)
	}
}

// TestExposedNeedsToken: bound beyond loopback without a token, the server
// refuses to start and says which settings to change.
func TestExposedNeedsToken(t *testing.T) {
	for _, ip := range []string{"0.0.0.0", "", "*", "192.0.2.1", "::", "example.com"} {
		cfg := testConfig()
		cfg.AdminIP = ip
		srv, err := server.New(cfg, nil)
		if err == nil {
			srv.Shutdown(t.Context())
			t.Errorf("AdminIP %q without APIToken: New succeeded", ip)
			continue
		}
		if !errors.Is(err, api.ErrTokenRequired) {
			t.Errorf("AdminIP %q: error %v is not ErrTokenRequired", ip, err)
		}
		for _, name := range []string{"AdminIP", "APIToken", "AdminAPI 0"} {
			if !strings.Contains(err.Error(), name) {
				t.Errorf("AdminIP %q: error %q does not name %s", ip, err, name)
			}
		}
	}
	for _, ip := range []string{"127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"} {
		if !api.Loopback(ip) {
			t.Errorf("Loopback(%q) = false", ip)
		}
	}
	// With a token, any address will do; without the API, no check.
	ts := start(t, func(cfg *config.Config) { cfg.AdminIP, cfg.APIToken = "0.0.0.0", "t" })
	if ts.AdminAddr() == nil {
		t.Fatalf("no API listener with AdminIP 0.0.0.0 and a token")
	}
	ts.base = "http://127.0.0.1:" + strings.TrimPrefix(ts.AdminAddr().String(), "[::]:")
	ts.get("/api/stats")
	off := start(t, func(cfg *config.Config) { cfg.AdminIP, cfg.AdminAPI = "0.0.0.0", false })
	if off.AdminAddr() != nil {
		t.Errorf("AdminAPI 0: AdminAddr = %v, want nil", off.AdminAddr())
	}
}

// TestDelivery: a message published over HTTP reaches a legacy subscriber
// and the controller's LISTCHANNELS.
func TestDelivery(t *testing.T) {
	ts := start(t, nil)
	sub := ts.subscribe("/push/h1/xhrinteractive/demo", "demo")
	id := ts.publish("demo", "hello from http")
	sub.readUntil(fmt.Sprintf(`p(%d,"demo","hello from http");</script>`, id))

	ctl := ts.dial(ts.ControllerAddr())
	ctl.send("LISTCHANNELS\r\n")
	if got := ctl.readUntil("--EOT--\r\n"); got != "OK\r\ndemo(1/1)\r\n--EOT--\r\n" {
		t.Errorf("LISTCHANNELS = %q", got)
	}
	ctl.send("SHOWSTATS\r\n")
	if got := ctl.readUntil("--EOT--\r\n"); !strings.Contains(got, "unique_messages: 1\r\n") {
		t.Errorf("SHOWSTATS does not count the HTTP message: %q", got)
	}
}

// TestMetrics: the values on /metrics move as things happen.
func TestMetrics(t *testing.T) {
	ts := start(t, nil)
	const (
		published = "meteor_messages_published_total"
		conns     = `meteor_connections{transport="legacy"}`
		latency   = `meteor_delivery_latency_seconds_count{transport="legacy"}`
		delivered = `meteor_messages_delivered_total{transport="legacy"}`
		channels  = "meteor_channels"
	)
	if got := ts.metric(published); got != 0 {
		t.Errorf("%s = %v at start, want 0", published, got)
	}
	if got := ts.metric(channels); got != 0 {
		t.Errorf("%s = %v at start, want 0", channels, got)
	}
	ts.publish("a", "x")
	ts.do("POST", "/api/publish", "application/json", `{"channels":["a","b"],"text":"y"}`)
	if got := ts.metric(published); got != 3 {
		t.Errorf("%s = %v after 3 messages, want 3", published, got)
	}
	if got := ts.metric(channels); got != 0 {
		t.Errorf("%s = %v with messages but no subscriber, want 0 (channels with subscribers here)", channels, got)
	}

	sub := ts.subscribe("/push/h1/xhrinteractive/c", "c")
	if got := ts.metric(conns); got != 1 {
		t.Errorf("%s = %v with one subscriber, want 1", conns, got)
	}
	lat0 := max(ts.metric(latency), 0)
	id := ts.publish("c", "live")
	sub.readUntil(fmt.Sprintf(`p(%d,"c","live");</script>`, id))
	testkit.Eventually(t, latency+" to count the live message", func() bool { return ts.metric(latency) == lat0+1 })
	if got := ts.metric(delivered); got < 1 {
		t.Errorf("%s = %v, want at least 1", delivered, got)
	}
	if got := ts.metric(channels); got != 1 {
		t.Errorf("%s = %v with one channel subscribed, want 1", channels, got)
	}
	ts.do("POST", "/api/channels/c/close", "", nil)
	sub.readToEOF()
	testkit.Eventually(t, conns+" back to 0", func() bool { return ts.metric(conns) == 0 })
}

// TestHealth: /healthz answers while the process serves; /readyz turns 503
// once shutdown begins, while subscribers drain, and the API refuses to
// publish.
func TestHealth(t *testing.T) {
	ts := start(t, func(cfg *config.Config) { cfg.MaxPendingBytes = 64 << 20 })
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := ts.do("GET", p, "", nil); r.status != 200 || r.header.Get("Content-Type") != "application/json" {
			t.Errorf("GET %s = %d %q", p, r.status, r.body)
		}
	}
	if r := ts.do("HEAD", "/healthz", "", nil); r.status != 200 {
		t.Errorf("HEAD /healthz = %d", r.status)
	}
	if r := ts.do("POST", "/readyz", "", nil); r.status != 405 {
		t.Errorf("POST /readyz = %d, want 405", r.status)
	}

	// A subscriber that never reads holds the shutdown in its drain.
	ts.subscribe("/push/stuck/iframe/c", "c")
	text := strings.Repeat("y", 60000)
	for range 100 {
		ts.publish("c", text)
	}
	done := make(chan error, 1)
	go func() { done <- ts.shutdown(1500 * time.Millisecond) }()
	testkit.Eventually(t, "/readyz to answer 503", func() bool { return ts.do("GET", "/readyz", "", nil).status == 503 })
	if r := ts.do("GET", "/healthz", "", nil); r.status != 200 {
		t.Errorf("GET /healthz while draining = %d, want 200", r.status)
	}
	if r := ts.do("POST", "/api/channels/c/messages", "text/plain", "late"); r.status != 503 || !strings.Contains(r.errorText(t), "shutting down") {
		t.Errorf("publish while draining = %d %s, want 503", r.status, r.body)
	}
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatalf("Shutdown did not return")
	}
	if _, err := ts.hc.Get(ts.base + "/healthz"); err == nil {
		t.Errorf("the API still answers after Shutdown")
	}
}

// TestQueryRefused: a ';' or a bad escape in the query, which would drop
// its pair (a history or cursor parameter ignored without a word), is
// answered 400 with the reason, as on the subscriber port.
func TestQueryRefused(t *testing.T) {
	ts := start(t, nil)
	ts.publish("q", "one")
	for _, tt := range []struct{ path, want string }{
		{"/api/channels/q?history=5;x=1", "a ';' in the query"},
		{"/api/channels/q?history=%zz", `malformed query: invalid URL escape "%zz"`},
	} {
		r := ts.do("GET", tt.path, "", nil)
		if r.status != http.StatusBadRequest || !strings.Contains(r.errorText(t), tt.want) {
			t.Errorf("%s: %d %s, want 400 saying %q", tt.path, r.status, r.body, tt.want)
		}
	}
	if r := ts.do("GET", "/api/channels/q?history=5", "", nil); r.status != http.StatusOK {
		t.Errorf("a good query: %d %s", r.status, r.body)
	}
}

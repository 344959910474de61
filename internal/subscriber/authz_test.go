package subscriber_test

// SubscriberAuth over every transport, with real signed tokens: refusals
// (401, 403, the reason, the challenge, the log, the metric), tokens from
// the header and the query, signed URLs and signed hostids, expiry that
// ends each transport with tokenExpired, and the WebSocket auth op.

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"

	"github.com/meteorpush/meteor/internal/auth"
	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/testkit"
)

// testSecret is the JWTSecret and SignedURLSecret of these tests.
var testSecret = strings.Repeat("s", 32)

// authOn turns SubscriberAuth on with testSecret and no leeway.
func authOn(c *config.Config) {
	c.SubscriberAuth = true
	c.JWTSecret = testSecret
	c.SignedURLSecret = testSecret
	c.JWTLeeway = 0
}

// token makes an HS256 token for sub granting channels until exp, signed
// with key (testSecret when empty).
func token(t *testing.T, key, sub string, exp time.Time, channels ...string) string {
	t.Helper()
	if key == "" {
		key = testSecret
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": sub, "exp": exp.Unix(), "channels": channels,
	}).SignedString([]byte(key))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// authRefusals returns meteor_subscriber_auth_refused_total{reason=check}.
func authRefusals(t *testing.T, ts *mServer, check string) float64 {
	t.Helper()
	return testkit.Metric(t, ts.Metrics(), "meteor_subscriber_auth_refused_total", "reason", check)
}

// transportURLs are a subscription to chat on each HTTP transport.
var transportURLs = map[string]string{
	"legacy":   "/push/h1/longpoll/chat",
	"sse":      "/sse/chat",
	"ndjson":   "/ndjson/chat",
	"longpoll": "/poll/chat?timeout=0",
}

// withQuery adds k=v to target's query.
func withQuery(target, k, v string) string {
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	return target + sep + k + "=" + url.QueryEscape(v)
}

func TestAuthRefusals(t *testing.T) {
	ts := mStart(t, authOn)
	now := time.Now()
	good := token(t, "", "user42", now.Add(time.Hour), "chat")
	cases := []struct {
		name   string
		edit   func(target string) (string, []string)
		status string
		check  string
	}{
		{"no token", func(u string) (string, []string) { return u, nil }, "401 Unauthorized", "missing"},
		{"wrong key", func(u string) (string, []string) {
			return withQuery(u, "token", token(t, strings.Repeat("x", 32), "user42", now.Add(time.Hour), "chat")), nil
		}, "401 Unauthorized", "signature"},
		{"expired", func(u string) (string, []string) {
			return withQuery(u, "token", token(t, "", "user42", now.Add(-time.Minute), "chat")), nil
		}, "401 Unauthorized", "expired"},
		{"not a JWT", func(u string) (string, []string) { return withQuery(u, "token", "nope"), nil }, "401 Unauthorized", "malformed"},
		{"other channel", func(u string) (string, []string) {
			return withQuery(u, "token", token(t, "", "user42", now.Add(time.Hour), "news", "chat_*")), nil
		}, "403 Forbidden", "channel"},
		// Another scheme (a proxy's Basic) is not Meteor's credential.
		{"not bearer", func(u string) (string, []string) { return u, []string{"Authorization: Basic dXNlcjpwYXNz"} }, "401 Unauthorized", "missing"},
		{"empty bearer", func(u string) (string, []string) { return u, []string{"Authorization: Bearer "} }, "401 Unauthorized", "malformed"},
	}
	for _, tc := range cases {
		for transport, target := range transportURLs {
			before := authRefusals(t, ts, tc.check)
			u, h := tc.edit(target)
			c := ts.get(u, h...)
			head := c.header()
			body := c.body()
			if !strings.HasPrefix(head, "HTTP/1.1 "+tc.status+"\r\n") || !strings.Contains(head, "WWW-Authenticate: Bearer realm=\"meteor\"") {
				t.Errorf("%s, %s: header %q", tc.name, transport, head)
			}
			if !strings.Contains(body, `"reason":"`+tc.check+`"`) {
				t.Errorf("%s, %s: body %q, want reason %s", tc.name, transport, body, tc.check)
			}
			if after := authRefusals(t, ts, tc.check); after != before+1 {
				t.Errorf("%s, %s: refusals{%s} %v -> %v", tc.name, transport, tc.check, before, after)
			}
		}
	}
	// The log names the check, never the token.
	testkit.Eventually(t, "a refusal logged", func() bool {
		return strings.Contains(ts.log.String(), `msg="subscription refused"`) && strings.Contains(ts.log.String(), "check=")
	})
	if strings.Contains(ts.log.String(), good[:40]) {
		t.Error("a token reached the log")
	}
	if ts.Hub().CountSubscribers("chat") != 0 {
		t.Error("a refused request subscribed")
	}
}

func TestAuthGranted(t *testing.T) {
	ts := mStart(t, authOn)
	tok := token(t, "", "user42", time.Now().Add(time.Hour), "chat_*", "chat")
	id := ts.publish("chat", "first")

	// ?token= on every transport; the history is read as usual.
	for transport, target := range transportURLs {
		target = strings.Replace(target, "/chat", "/chat.r1", 1)
		if transport != "legacy" {
			target = strings.Replace(target, "/chat.r1", "/chat", 1)
			target = withQuery(target, "since", "chat:0")
		}
		c := ts.get(withQuery(target, "token", tok))
		head := c.header()
		if !strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n") {
			t.Fatalf("%s: %q", transport, head)
		}
		if transport == "longpoll" || transport == "legacy" {
			if body := c.body(); !strings.Contains(body, "first") {
				t.Errorf("%s: body %q lacks the stored message %d", transport, body, id)
			}
		}
		c.nc.Close()
	}
	// Authorization: Bearer, as fetch-based clients send it.
	c := ts.get("/ndjson/chat_1", "Authorization: Bearer "+tok)
	c.header()
	c.line() // subscribed
	ts.waitSubscribers("chat_1", 1)
	ts.publish("chat_1", "hello")
	if l := c.line(); strings.Contains(l, `"epoch"`) && !strings.Contains(c.line(), `"hello"`) || !strings.Contains(l, `"epoch"`) && !strings.Contains(l, `"hello"`) {
		t.Errorf("bearer ndjson: no hello after %q", l)
	}
	// Presence lists the token's subject.
	subs, _, err := ts.Hub().ListSubscribers(context.Background(), "chat_1", "", 10)
	if err != nil || len(subs) != 1 || subs[0].ID != "user42" {
		t.Errorf("presence %+v, %v; want user42", subs, err)
	}
	// The log names the subject apart from the address.
	if l := ts.log.String(); !strings.Contains(l, "msg=joinchannel ip=127.0.0.1 transport=ndjson channel=chat_1 start=") || !strings.Contains(l, "sub=user42") || strings.Contains(l, "\\x00") {
		t.Errorf("log:\n%s", l)
	}
}

func TestAuthOffKeepsOpen(t *testing.T) {
	// SubscriberAuth 0 with keys set: a token is neither needed nor
	// checked (a bad one does not refuse), as 1.06 behaved.
	ts := mStart(t, func(c *config.Config) { authOn(c); c.SubscriberAuth = false })
	c := ts.get("/poll/chat?timeout=0&token=nope")
	if head := c.header(); !strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n") {
		t.Fatalf("%q", head)
	}
}

func TestAuthSignedURL(t *testing.T) {
	ts := mStart(t, authOn)
	for _, path := range []string{"/sse/chat", "/push/h1/longpoll/chat"} {
		exp, sig := auth.SignURL([]byte(testSecret), path, time.Now().Add(time.Minute))
		c := ts.get(path + "?exp=" + exp + "&sig=" + sig)
		if head := c.header(); !strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n") {
			t.Errorf("%s signed: %q", path, head)
		}
		c.nc.Close()
		// The same signature on another path: refused.
		other := strings.Replace(path, "chat", "news", 1)
		c = ts.get(other + "?exp=" + exp + "&sig=" + sig)
		if head := c.header(); !strings.HasPrefix(head, "HTTP/1.1 401 ") {
			t.Errorf("%s with the signature of %s: %q", other, path, head)
		}
	}
}

func TestAuthSignedHostID(t *testing.T) {
	ts := mStart(t, authOn)
	h := auth.SignHostID([]byte(testSecret), "page42", []string{"chat", "news"}, time.Now().Add(time.Minute))
	// The page's reconnects change the mode and the resume suffixes, not
	// the set of channels: each is accepted.
	for _, p := range []string{"/push/" + h + "/longpoll/chat/news", "/push/" + h + "/simplepoll/news.r5/chat.r2", "/push/" + strings.ToUpper(h) + "/longpoll/chat.b3/news"} {
		c := ts.get(p)
		if head := c.header(); !strings.HasPrefix(head, "HTTP/1.1 200 OK\r\n") {
			t.Errorf("%s: %q", p, head)
		}
		c.nc.Close()
	}
	// The hostid is a credential: presence and the log show its id.
	c := ts.get("/push/" + h + "/xhrinteractive/chat/news")
	c.header()
	ts.waitSubscribers("chat", 1)
	subs, _, err := ts.Hub().ListSubscribers(context.Background(), "chat", "", 10)
	if err != nil || len(subs) != 1 || subs[0].ID != "page42" {
		t.Errorf("presence %+v, %v; want page42", subs, err)
	}
	_, _, sig, _ := auth.SplitHostID(h)
	for _, p := range []string{"/push/" + h + "/longpoll/chat", "/push/" + h + "/longpoll/chat/news/admin", "/push/page42/longpoll/chat/news"} {
		c := ts.get(p)
		if head := c.header(); !strings.HasPrefix(head, "HTTP/1.1 401 ") {
			t.Errorf("%s: %q, want 401", p, head)
		}
	}
	testkit.Eventually(t, "the refusals logged", func() bool { return strings.Contains(ts.log.String(), "subscription refused") })
	if l := ts.log.String(); strings.Contains(l, sig) || !strings.Contains(l, "hostid=page42 ") {
		t.Errorf("the log shows a signed hostid's signature, or not its id:\n%s", l)
	}
}

// TestWebSocketAuthAfterReload: an open WebSocket's next operation is
// checked against the settings in force, not those it opened with.
func TestWebSocketAuthAfterReload(t *testing.T) {
	ts := wsStart(t, func(c *config.Config) { authOn(c); c.SubscriberAuth = false })
	c := ts.dial(nil)
	c.send(`{"op":"subscribe","channel":"open"}`)
	c.expect(subscribedEmpty("open"))
	next := testkit.Config()
	authOn(next)
	next.SSERetry = 0
	if err := ts.Reload(next); err != nil {
		t.Fatal(err)
	}
	c.send(`{"op":"subscribe","channel":"private"}`)
	if got := c.next(); !strings.Contains(got, `"status":401`) {
		t.Fatalf("subscribe after SubscriberAuth was turned on: %s", got)
	}
	// A key rotated by the reload: a token of the old key is refused.
	rotated := testkit.Config()
	authOn(rotated)
	rotated.JWTSecret = strings.Repeat("n", 32)
	if err := ts.Reload(rotated); err != nil {
		t.Fatal(err)
	}
	c.send(`{"op":"auth","token":"` + token(t, "", "user42", time.Now().Add(time.Hour), "*") + `"}`)
	c.expectClose(websocket.ClosePolicyViolation)
}

// TestAuthExpiry: a token that expires ends the connection with
// tokenExpired on every transport, in the transport's own way.
func TestAuthExpiry(t *testing.T) {
	ts := mStart(t, authOn)
	exp := time.Now().Truncate(time.Second).Add(2 * time.Second) // exp is whole seconds
	tok := token(t, "", "user42", exp, "chat")
	sse := ts.get("/sse/chat?token=" + tok)
	nd := ts.get("/ndjson/chat?token=" + tok)
	poll := ts.get("/poll/chat?timeout=20&token=" + tok)
	legacy := ts.get("/push/h1/xhrinteractive/chat?token=" + tok)
	ws := (&wsServer{ts}).dialURL("/ws?token=" + tok)
	ws.send(`{"op":"subscribe","channel":"chat"}`)
	ws.expect(subscribedEmpty("chat"))
	for _, c := range []*mConn{sse, nd, legacy} {
		c.header() // a held poll answers, header and all, when it ends
	}
	before := authRefusals(t, ts, "expired")
	if b := sse.body(); !strings.Contains(b, "event: close\ndata: {") || !strings.Contains(b, `"tokenExpired"`) {
		t.Errorf("sse: %q", b)
	}
	if b := nd.body(); !strings.Contains(b, `"type":"close"`) || !strings.Contains(b, `"tokenExpired"`) {
		t.Errorf("ndjson: %q", b)
	}
	if h := poll.header(); !strings.HasPrefix(h, "HTTP/1.1 200 OK\r\n") {
		t.Errorf("longpoll: %q", h)
	}
	if b := poll.body(); !strings.Contains(b, `"closed"`) || !strings.Contains(b, `"tokenExpired"`) {
		t.Errorf("longpoll: %q", b)
	}
	// A 1.06 stream just ends, without its shutdown message (eof() would
	// stop the page for good); its reconnect is then refused.
	if b := legacy.body(); strings.Contains(b, "eof()") {
		t.Errorf("legacy: %q", b)
	}
	ws.expectClose(4003)
	if time.Now().Before(exp) {
		t.Error("closed before the token expired")
	}
	ts.waitSubscribers("chat", 0)
	if after := authRefusals(t, ts, "expired"); after != before+5 {
		t.Errorf("expiries counted: %v, want %v", after, before+5)
	}
}

// dialURL opens a WebSocket to target (a path and query).
func (ts *wsServer) dialURL(target string) *wsClient {
	ts.t.Helper()
	d := &websocket.Dialer{HandshakeTimeout: wsWait}
	ws, resp, err := d.Dial("ws://"+ts.SubscriberAddr().String()+target, nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		ts.t.Fatalf("dial %s: %v (status %d)", target, err, status)
	}
	ts.t.Cleanup(func() { ws.Close() })
	return &wsClient{t: ts.t, Conn: ws}
}

func TestWebSocketAuth(t *testing.T) {
	ts := wsStart(t, authOn)
	now := time.Now()

	// A bad token at the handshake: 401 before the upgrade.
	d := &websocket.Dialer{HandshakeTimeout: wsWait}
	_, resp, err := d.Dial("ws://"+ts.SubscriberAddr().String()+"/ws?token=nope", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad token at the handshake: %v, %+v", err, resp)
	}

	// No token: the socket opens, a subscription is refused with 401
	// until an auth op brings one; then 403 for a channel not granted.
	c := ts.dial(nil)
	c.send(`{"op":"subscribe","channel":"chat_1"}`)
	if got := c.next(); !strings.Contains(got, `"status":401`) || !strings.Contains(got, `"reason":"missing"`) || !strings.Contains(got, `"channel":"chat_1"`) {
		t.Fatalf("subscribe without a token: %s", got)
	}
	c.send(`{"op":"auth","token":"` + token(t, "", "user42", now.Add(2*time.Second), "chat_*") + `"}`)
	c.send(`{"op":"subscribe","channel":"chat_1"}`)
	c.expect(subscribedEmpty("chat_1"))
	c.send(`{"op":"subscribe","channel":"news"}`)
	if got := c.next(); !strings.Contains(got, `"status":403`) || !strings.Contains(got, `"reason":"channel"`) {
		t.Fatalf("subscribe to a channel not granted: %s", got)
	}
	// A fresh token before the first expires keeps the socket open past
	// the first expiry.
	c.send(`{"op":"auth","token":"` + token(t, "", "user42", now.Add(time.Hour), "chat_*") + `"}`)
	time.Sleep(time.Until(now.Add(3 * time.Second)))
	c.send(`{"op":"ping"}`)
	c.expect(`{"type":"pong"}`)
	id := ts.publish("chat_1", "after refresh")
	c.expectMsg(id, "chat_1", "after refresh")

	// A refresh that grants less leaves the channels it no longer grants.
	c.send(`{"op":"subscribe","channel":"chat_2"}`)
	c.expect(subscribedEmpty("chat_2"))
	c.send(`{"op":"auth","token":"` + token(t, "", "user42", now.Add(time.Hour), "chat_2") + `"}`)
	c.expect(`{"type":"unsubscribed","channel":"chat_1"}`)
	ts.waitCount("chat_1", 0)

	// A token for another subject closes the socket: authFailed, 1008.
	c.send(`{"op":"auth","token":"` + token(t, "", "mallory", now.Add(time.Hour), "*") + `"}`)
	c.expectClose(websocket.ClosePolicyViolation)

	// A bad token in an auth op closes with 1008; an expired one with
	// 4003, so that the client comes back with a fresh one.
	c = ts.dial(nil)
	c.send(`{"op":"auth","token":"` + token(t, strings.Repeat("x", 32), "user42", now.Add(time.Hour), "*") + `"}`)
	c.expectClose(websocket.ClosePolicyViolation)
	c = ts.dial(nil)
	c.send(`{"op":"auth","token":"` + token(t, "", "user42", now.Add(-time.Minute), "*") + `"}`)
	c.expectClose(4003)
}

// TestAuthNamespace: a [namespace] section requires a token for its
// channels only; the others stay open, on every transport.
func TestAuthNamespace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meteord.conf")
	conf := "JWTSecret " + testSecret + "\nJWTLeeway 0\n[namespace private_*]\nSubscriberAuth 1\n"
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, _, err := config.Load([]string{"-ConfigFileLocation", path, "-SubscriberIP", "127.0.0.1", "-SubscriberPort", "0",
		"-ControllerPort", "0", "-AdminPort", "0", "-SubscriberDocumentRoot", "", "-HeartbeatInterval", "0", "-SSERetry", "0"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := mStartConfig(t, cfg)
	tok := token(t, "", "user42", time.Now().Add(time.Hour), "private_a")
	for transport, target := range transportURLs {
		for _, c := range []struct {
			target, status string
		}{
			{strings.Replace(target, "chat", "public_a", 1), "200 OK"},
			{strings.Replace(target, "chat", "private_a", 1), "401 Unauthorized"},
			{withQuery(strings.Replace(target, "chat", "private_a", 1), "token", tok), "200 OK"},
			{withQuery(strings.Replace(target, "chat", "private_b", 1), "token", tok), "403 Forbidden"},
			// One channel that needs a token makes the request need one.
			{strings.Replace(target, "chat", "public_a/private_a", 1), "401 Unauthorized"},
		} {
			conn := ts.get(c.target)
			if head := conn.header(); !strings.HasPrefix(head, "HTTP/1.1 "+c.status+"\r\n") {
				t.Errorf("%s %s: %q, want %s", transport, c.target, head, c.status)
			}
			conn.nc.Close()
		}
	}
	ws := (&wsServer{ts}).dial(nil)
	ws.send(`{"op":"subscribe","channel":"public_a"}`)
	ws.expect(subscribedEmpty("public_a"))
	ws.send(`{"op":"subscribe","channel":"private_a"}`)
	if got := ws.next(); !strings.Contains(got, `"status":401`) {
		t.Errorf("websocket private_a without a token: %s", got)
	}
}

// TestAuthLeeway: a token inside JWTLeeway past its exp is good for the
// whole connection it opens: the WebSocket that it admitted may
// subscribe, and is closed only when the leeway is over too.
func TestAuthLeeway(t *testing.T) {
	ts := wsStart(t, func(c *config.Config) { authOn(c); c.JWTLeeway = 3 })
	exp := time.Now().Truncate(time.Second).Add(-time.Second)
	c := ts.dialURL("/ws?token=" + token(t, "", "user42", exp, "chat"))
	c.send(`{"op":"subscribe","channel":"chat"}`)
	c.expect(subscribedEmpty("chat"))
	c.expectClose(4003)
	if d := time.Until(exp.Add(3 * time.Second)); d > 0 {
		t.Errorf("closed %v before exp plus the leeway", d)
	}
}

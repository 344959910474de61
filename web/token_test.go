package web_test

// Browser tests of MeteorClient's tokens against a meteord with
// SubscriberAuth 1 (docs/client.md, Tokens): each transport renews its
// token and loses nothing across the expiry of the first one (the
// WebSocket with its auth op, without reconnecting; SSE, NDJSON and
// long-poll by resuming after the server's tokenExpired), and a refused
// channel (403) or token (401) stops the client once, with the server's
// reason.

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/meteorpush/meteor/internal/auth/authtest"
	"github.com/meteorpush/meteor/internal/config"
)

var tokenSecret = []byte("web token test secret")

// startAuthServer starts meteord with SubscriberAuth 1, an HS256 secret
// and no leeway, and checks that it refuses a subscription without a
// token.
func startAuthServer(t *testing.T) *meteord {
	t.Helper()
	m := startServer(t, func(c *config.Config) {
		quickBeats(c)
		c.SubscriberAuth = true
		c.JWTSecret = string(tokenSecret)
		c.JWTLeeway = 0
	})
	cl := &http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(m.base + "/ndjson/probe")
	if err != nil {
		t.Fatalf("probing SubscriberAuth: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("SubscriberAuth 1: a subscription without a token got %d, not 401", resp.StatusCode)
	}
	return m
}

// tokenIssuer is the site's back end: it makes a token for the page's
// getToken on every GET, valid for ttl, granting channels.
type tokenIssuer struct {
	srv *httptest.Server

	ttl      int64 // seconds
	channels []string
	secret   []byte

	mu        sync.Mutex
	calls     int       // guarded by mu
	failUntil time.Time // answer 503 until then; guarded by mu
}

func startIssuer(t *testing.T, secret []byte, ttl int64, channels ...string) *tokenIssuer {
	ti := &tokenIssuer{ttl: ttl, channels: channels, secret: secret}
	ti.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti.mu.Lock()
		ti.calls++
		fail := time.Now().Before(ti.failUntil)
		ti.mu.Unlock()
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if fail {
			http.Error(w, "the back end is away", http.StatusServiceUnavailable)
			return
		}
		now := time.Now().Unix()
		claims := jwt.MapClaims{"sub": "page", "channels": ti.channels, "iat": now, "exp": now + ti.ttl}
		fmt.Fprint(w, authtest.SignHS256(t, ti.secret, claims))
	}))
	t.Cleanup(ti.srv.Close)
	return ti
}

// failFor makes the issuer fail from its next call for d.
func (ti *tokenIssuer) failFor(d time.Duration) {
	ti.mu.Lock()
	ti.failUntil = time.Now().Add(d)
	ti.mu.Unlock()
}

func (ti *tokenIssuer) count() int {
	ti.mu.Lock()
	defer ti.mu.Unlock()
	return ti.calls
}

// newTokenClient is newClient with getToken fetching from the issuer;
// T.fatal collects the fatal error events, T.tokens the tokens handed out.
func (p *page) newTokenClient(ti *tokenIssuer, options map[string]any, subs ...[2]any) {
	p.t.Helper()
	p.eval(fmt.Sprintf(`window.getTokenFrom = %q, 1`, ti.srv.URL))
	p.eval(`window.MCplain = window.MCplain || MC;
		window.MC = class extends MCplain {
			constructor(o) {
				T.fatal = [];
				T.tokens = [];
				super(Object.assign({}, o, {getToken: async function () {
					var r = await fetch(getTokenFrom);
					if (!r.ok) throw new Error("HTTP " + r.status);
					var t = await r.text();
					T.tokens.push(t);
					return t;
				}}));
				this.on("error", function (e) {
					if (e.fatal) T.fatal.push({status: e.status || 0, reason: e.reason || "", code: String(e.code), transport: e.transport});
				});
			}
		}, 1`)
	p.newClient(options, subs...)
}

// TestTokenRenewal: a token that lives 4 s (renewed halfway, 2 s before
// its exp) on each transport alone, over 9 s of messages: every message
// once, in order; no error; the WebSocket keeps its one connection (its
// auth op renews), the others come back after the server's tokenExpired.
func TestTokenRenewal(t *testing.T) {
	for _, tr := range ladder {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			m := startAuthServer(t)
			ti := startIssuer(t, tokenSecret, 4, "tok_*")
			p := openModule(t, m.base)
			// The whole (empty) history, then live: a message published
			// as the subscription completes is not "before" it (the
			// server counts a subscriber before its engine subscription
			// has fixed where "now" is).
			p.newTokenClient(ti, clientOptions(tr), [2]any{"tok_a", map[string]any{"history": "all"}})
			m.waitSubscribers(t, p, "tok_a", 1)
			var want []received
			for end := time.Now().Add(9 * time.Second); time.Now().Before(end); {
				want = append(want, received{m.publish(t, "tok_a", fmt.Sprint("m", len(want))), "tok_a", fmt.Sprint("m", len(want))})
				time.Sleep(250 * time.Millisecond)
			}
			p.expectGot(want)
			if n := ti.count(); n < 3 {
				t.Errorf("getToken called %d times in 9 s of 4-s tokens, want at least 3\n%s", n, p.state())
			}
			var errs []string
			p.evalInto("T.errors", &errs)
			if len(errs) != 0 {
				t.Errorf("errors: %q", errs)
			}
			var opened int
			p.evalInto(`T.statuses.filter(function (s) { return s.indexOf("open") === 0; }).length`, &opened)
			if tr == "websocket" && opened != 1 {
				t.Errorf("the WebSocket opened %d times: its auth op should renew it in place\n%s", opened, p.state())
			}
			if tr != "websocket" && tr != "poll" && opened < 2 {
				t.Errorf("%s opened %d times: the server should have ended it at its token's exp\n%s", tr, opened, p.state())
			}
			if got := p.transport(); got != tr {
				t.Errorf("transport %q, want %q", got, tr)
			}
		})
	}
}

// TestTokenExpired: the renewal fails (the site's back end is away) until
// the first token has expired, so the server ends each transport with
// tokenExpired (WebSocket 4003, a close event, a closed answer, or a 401
// expired for a request made with it): the client gets a new token once
// the back end answers, and resumes with nothing lost or repeated.
func TestTokenExpired(t *testing.T) {
	for _, tr := range ladder {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			m := startAuthServer(t)
			ti := startIssuer(t, tokenSecret, 3, "tok_*")
			p := openModule(t, m.base)
			// The whole (empty) history, then live: a message published
			// as the subscription completes is not "before" it (the
			// server counts a subscriber before its engine subscription
			// has fixed where "now" is).
			p.newTokenClient(ti, clientOptions(tr), [2]any{"tok_b", map[string]any{"history": "all"}})
			m.waitSubscribers(t, p, "tok_b", 1)
			ti.failFor(4 * time.Second) // past the first token's exp
			var want []received
			for end := time.Now().Add(7 * time.Second); time.Now().Before(end); {
				want = append(want, received{m.publish(t, "tok_b", fmt.Sprint("m", len(want))), "tok_b", fmt.Sprint("m", len(want))})
				time.Sleep(250 * time.Millisecond)
			}
			p.expectGot(want)
			var errs []string
			p.evalInto("T.errors", &errs)
			failed := false
			for _, e := range errs {
				failed = failed || strings.Contains(e, "getToken")
				if !strings.Contains(e, "getToken") && !strings.Contains(e, "xpired") {
					t.Errorf("error %q: only the failing getToken and the expiry were expected", e)
				}
			}
			if !failed {
				t.Errorf("no getToken failure reported: the renewal did not fail, the expiry was not tested (errors %q)", errs)
			}
			var fatal []any
			p.evalInto("T.fatal", &fatal)
			if len(fatal) != 0 {
				t.Fatalf("fatal errors %v\n%s", fatal, p.state())
			}
			var opened int
			p.evalInto(`T.statuses.filter(function (s) { return s.indexOf("open") === 0; }).length`, &opened)
			if tr != "poll" && opened < 2 {
				t.Errorf("%s opened %d times: the server should have ended it at its token's exp\n%s", tr, opened, p.state())
			}
			if got := p.transport(); got != tr {
				t.Errorf("transport %q, want %q", got, tr)
			}
		})
	}
}

// TestTokenRefused: a token that does not grant the channel (403) and a
// token with a bad signature (401) stop the client on every transport,
// reported once as fatal with the server's reason, and it does not come
// back. On the full ladder a WebSocket refused at its handshake (a page
// sees no status) gives way to SSE, which reads the 401.
func TestTokenRefused(t *testing.T) {
	type refusal struct {
		name       string
		transports []string
		secret     []byte
		status     int
		reason     string
	}
	var cases []refusal
	for _, tr := range ladder {
		cases = append(cases, refusal{"403-" + tr, []string{tr}, tokenSecret, 403, "channel"})
	}
	cases = append(cases, refusal{"401-ladder", ladder, []byte("another secret"), 401, "signature"})
	cases = append(cases, refusal{"401-ndjson", []string{"ndjson"}, []byte("another secret"), 401, "signature"})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := startAuthServer(t)
			ti := startIssuer(t, tc.secret, 60, "granted_*")
			p := openModule(t, m.base)
			p.newTokenClient(ti, clientOptions(tc.transports...), [2]any{"secret", map[string]any{}})
			p.wait("the fatal error", `T.fatal.length > 0`)
			var fatal []struct {
				Status    int    `json:"status"`
				Reason    string `json:"reason"`
				Transport string `json:"transport"`
			}
			p.evalInto("T.fatal", &fatal)
			if len(fatal) != 1 || fatal[0].Status != tc.status || fatal[0].Reason != tc.reason {
				t.Fatalf("fatal errors %+v, want one with status %d, reason %q\n%s", fatal, tc.status, tc.reason, p.state())
			}
			var status string
			p.evalInto("C.status", &status)
			if status != "closed" {
				t.Errorf("status %q after the refusal, want closed", status)
			}
			calls := ti.count()
			p.never("a reconnection after the refusal", `T.fatal.length > 1 || C.status !== "closed"`, 2*time.Second)
			if ti.count() != calls {
				t.Errorf("getToken called again after the refusal")
			}
			if n := m.subscribers(t, "secret"); n != 0 {
				t.Errorf("%d subscribers of the refused channel", n)
			}
			if strings.Contains(tc.name, "ladder") && fatal[0].Transport != "sse" {
				t.Errorf("refused on %q, want sse after the WebSocket", fatal[0].Transport)
			}
		})
	}
}

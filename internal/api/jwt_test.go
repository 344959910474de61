package api_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/meteorpush/meteor/internal/auth/authtest"
	"github.com/meteorpush/meteor/internal/config"
)

// jwtSecret is the JWTSecret of these tests (at least 32 bytes).
const jwtSecret = "0123456789abcdef0123456789abcdef-api"

// publishClaims are a token's claims: sub, publish patterns, exp ttl from
// now.
func publishClaims(sub string, publish []string, ttl time.Duration) jwt.MapClaims {
	return jwt.MapClaims{"sub": sub, "publish": publish, "exp": time.Now().Add(ttl).Unix()}
}

// check returns the "check" of a JWT refusal's body.
func (r response) check(t *testing.T) string {
	t.Helper()
	c, _ := r.json(t)["check"].(string)
	return c
}

// history returns the texts of the channel's stored messages, asked with
// the APIToken root.
func (ts *testServer) history(channel string) []string {
	ts.t.Helper()
	saved := ts.token
	ts.token = "root"
	defer func() { ts.token = saved }()
	r := ts.do("GET", "/api/channels/"+channel+"?history=100", "", nil)
	if r.status == http.StatusNotFound {
		return nil
	}
	if r.status != http.StatusOK {
		ts.t.Fatalf("GET %s = %d %s", channel, r.status, r.body)
	}
	var out []string
	for _, m := range r.json(ts.t)["history"].([]any) {
		out = append(out, m.(map[string]any)["text"].(string))
	}
	return out
}

// TestJWTPublish: a JWT with a publish claim publishes to the channels it
// grants, one at a time and in batches, and nothing else: other channels
// 403, reading and administration 403, a token without publish claim 403;
// an expired or wrongly signed token 401, each with the check that failed.
func TestJWTPublish(t *testing.T) {
	ts := start(t, func(c *config.Config) { c.APIToken, c.JWTSecret = "root", jwtSecret })
	good := authtest.SignHS256(t, []byte(jwtSecret), publishClaims("alice", []string{"chat_*", "news"}, time.Hour))

	ts.token = good
	if r := ts.do("POST", "/api/channels/chat_1/messages", "text/plain", "one"); r.status != http.StatusCreated {
		t.Fatalf("JWT publishing to chat_1: %d %s", r.status, r.body)
	}
	if r := ts.do("POST", "/api/publish", "application/json", map[string]any{"channels": []string{"chat_1", "news"}, "text": "two"}); r.status != http.StatusCreated {
		t.Fatalf("JWT publishing a batch to chat_1 and news: %d %s", r.status, r.body)
	}

	// A channel the claim does not grant, alone or in a batch (which then
	// publishes nothing).
	if r := ts.do("POST", "/api/channels/sport/messages", "text/plain", "no"); r.status != http.StatusForbidden || r.check(t) != "channel" ||
		!strings.Contains(r.errorText(t), "the JWT does not grant publishing to channel sport") {
		t.Fatalf("JWT publishing to sport: %d %s, want 403 naming the channel", r.status, r.body)
	}
	if r := ts.do("POST", "/api/publish", "application/json", map[string]any{"messages": []map[string]string{{"channel": "chat_2", "text": "no"}, {"channel": "sport", "text": "no"}}}); r.status != http.StatusForbidden ||
		!strings.Contains(r.errorText(t), "messages[1]: the JWT does not grant publishing to channel sport") {
		t.Fatalf("JWT batch with sport: %d %s, want 403 for messages[1]", r.status, r.body)
	}

	// Reading and administration: a JWT grants none of it, not even for
	// its own channels.
	for _, req := range []struct{ method, path string }{
		{"GET", "/api/channels"},
		{"GET", "/api/channels/chat_1"},
		{"GET", "/api/channels/chat_1/subscribers"},
		{"DELETE", "/api/channels/chat_1/messages"},
		{"POST", "/api/channels/chat_1/close"},
		{"GET", "/api/stats"},
		{"GET", "/metrics"},
		{"GET", "/debug/pprof/"},
	} {
		r := ts.do(req.method, req.path, "", nil)
		if r.status != http.StatusForbidden || !strings.Contains(r.errorText(t), "a JWT may only publish") {
			t.Errorf("JWT %s %s: %d %s, want 403 saying a JWT may only publish", req.method, req.path, r.status, r.body)
		}
	}

	// A subscriber's token (channels, no publish) grants nothing here.
	ts.token = authtest.SignHS256(t, []byte(jwtSecret), authtest.Claims("bob", []string{"*"}, time.Hour))
	if r := ts.do("POST", "/api/channels/chat_1/messages", "text/plain", "no"); r.status != http.StatusForbidden ||
		!strings.Contains(r.errorText(t), "no publish claim") {
		t.Fatalf("JWT without publish claim: %d %s, want 403", r.status, r.body)
	}

	for _, tt := range []struct {
		name, token, check string
	}{
		{"expired", authtest.SignHS256(t, []byte(jwtSecret), publishClaims("alice", []string{"*"}, -time.Minute)), "expired"},
		{"wrong signature", authtest.SignHS256(t, []byte("another secret of thirty-two bytes!!"), publishClaims("alice", []string{"*"}, time.Hour)), "signature"},
		{"alg none", authtest.Unsigned(t, publishClaims("alice", []string{"*"}, time.Hour)), "algorithm"},
		{"no exp", authtest.SignHS256(t, []byte(jwtSecret), jwt.MapClaims{"sub": "alice", "publish": []string{"*"}}), "malformed"},
	} {
		ts.token = tt.token
		r := ts.do("POST", "/api/channels/chat_1/messages", "text/plain", "no")
		if r.status != http.StatusUnauthorized || r.check(t) != tt.check || !strings.Contains(r.errorText(t), "JWT refused ("+tt.check+")") {
			t.Errorf("%s: %d %s, want 401 with check %q", tt.name, r.status, r.body, tt.check)
		}
		if h := r.header.Get("WWW-Authenticate"); !strings.Contains(h, `error="invalid_token"`) {
			t.Errorf("%s: WWW-Authenticate %q", tt.name, h)
		}
	}
	// Not the shape of a JWT: a wrong API token, as before.
	ts.token = "not-a-jwt"
	if r := ts.do("POST", "/api/channels/chat_1/messages", "text/plain", "no"); r.status != http.StatusUnauthorized || r.errorText(t) != "wrong token" {
		t.Errorf("a wrong token: %d %s", r.status, r.body)
	}

	if got := ts.history("chat_1"); strings.Join(got, ",") != "one,two" {
		t.Errorf("chat_1 holds %q, want one, two", got)
	}
	if got := ts.history("news"); strings.Join(got, ",") != "two" {
		t.Errorf("news holds %q, want two", got)
	}
	if got := ts.history("sport"); got != nil {
		t.Errorf("sport holds %q, want nothing", got)
	}
	if !strings.Contains(ts.log.String(), "api: JWT refused") {
		t.Errorf("the refusals are not logged")
	}
	if strings.Contains(ts.log.String(), good) {
		t.Errorf("the log holds a token")
	}
}

// TestJWTPublicKeyFileReload: ES256 tokens are checked with the keys of
// JWTPublicKeyFile, which a reload reads again; a reload with a file that
// does not parse is refused and the keys in use stay.
func TestJWTPublicKeyFileReload(t *testing.T) {
	k1, k2 := authtest.ECDSA(t, ""), authtest.ECDSA(t, "")
	path := filepath.Join(t.TempDir(), "keys.pem")
	if err := os.WriteFile(path, authtest.PEM(t, k1), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := start(t, func(c *config.Config) { c.APIToken, c.JWTPublicKeyFile = "root", path })
	claims := publishClaims("svc", []string{"*"}, time.Hour)
	by1, by2 := authtest.Sign(t, k1, claims), authtest.Sign(t, k2, claims)

	try := func(tok string) response {
		ts.token = tok
		return ts.do("POST", "/api/channels/c/messages", "text/plain", "x")
	}
	if r := try(by1); r.status != http.StatusCreated {
		t.Fatalf("token of the key in the file: %d %s", r.status, r.body)
	}
	if r := try(by2); r.status != http.StatusUnauthorized || r.check(t) != "signature" {
		t.Fatalf("token of another key: %d %s, want 401 signature", r.status, r.body)
	}

	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ts.Reload(ts.cfg); err == nil || !strings.Contains(err.Error(), "JWTPublicKeyFile") {
		t.Fatalf("reload with a broken key file: %v, want an error naming JWTPublicKeyFile", err)
	}
	if r := try(by1); r.status != http.StatusCreated {
		t.Fatalf("after the refused reload, the old key: %d %s", r.status, r.body)
	}

	if err := os.WriteFile(path, authtest.PEM(t, k2), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ts.Reload(ts.cfg); err != nil {
		t.Fatal(err)
	}
	if r := try(by2); r.status != http.StatusCreated {
		t.Fatalf("after the reload, the new key: %d %s", r.status, r.body)
	}
	if r := try(by1); r.status != http.StatusUnauthorized {
		t.Fatalf("after the reload, the old key: %d %s, want 401", r.status, r.body)
	}
}

// TestCredentialRate: PublishRatePerCredential gives each credential (a
// JWT's sub, an API key, APIToken) its own bucket; past it 429 with
// Retry-After and why, counted in meteor_publish_refused_total; after the
// Retry-After the credential publishes again. A batch larger than a
// bucket is 413.
func TestCredentialRate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte(keyLine("site", "key-secret", "publish *")), 0o600); err != nil {
		t.Fatal(err)
	}
	ts := start(t, func(c *config.Config) {
		c.APIToken, c.JWTSecret, c.APIKeysFile = "root", jwtSecret, path
		c.PublishRatePerCredential, c.PublishBurstPerCredential = 1, 2
	})
	alice := authtest.SignHS256(t, []byte(jwtSecret), publishClaims("alice", []string{"*"}, time.Hour))
	// Another token of the same sub is the same credential.
	alice2 := authtest.SignHS256(t, []byte(jwtSecret), publishClaims("alice", []string{"c"}, 2*time.Hour))
	bob := authtest.SignHS256(t, []byte(jwtSecret), publishClaims("bob", []string{"*"}, time.Hour))

	pub := func(tok string) response {
		ts.token = tok
		return ts.do("POST", "/api/channels/c/messages", "text/plain", "x")
	}
	for i, tok := range []string{alice, alice2} {
		if r := pub(tok); r.status != http.StatusCreated {
			t.Fatalf("alice's message %d of a burst of 2: %d %s", i+1, r.status, r.body)
		}
	}
	r := pub(alice)
	if r.status != http.StatusTooManyRequests {
		t.Fatalf("alice's 3rd message: %d %s, want 429", r.status, r.body)
	}
	retry, err := strconv.Atoi(r.header.Get("Retry-After"))
	if err != nil || retry < 1 || retry > 2 {
		t.Fatalf("Retry-After %q, want 1 or 2 seconds", r.header.Get("Retry-After"))
	}
	if e := r.errorText(t); !strings.Contains(e, "publish rate of credential jwt alice exceeded") || !strings.Contains(e, "PublishRatePerCredential") {
		t.Fatalf("429 says %q", e)
	}
	if reason, _ := r.json(t)["reason"].(string); reason != "credential rate" {
		t.Fatalf("429 reason %q", reason)
	}

	// Other credentials have their own buckets.
	for _, tok := range []string{bob, "key-secret", "root"} {
		if r := pub(tok); r.status != http.StatusCreated {
			t.Fatalf("credential %.10s… after alice's refusal: %d %s", tok, r.status, r.body)
		}
	}
	// A batch of 3 never fits a bucket of 2.
	ts.token = "key-secret"
	if r := ts.do("POST", "/api/publish", "application/json", map[string]any{"channels": []string{"a", "b", "c"}, "text": "x"}); r.status != http.StatusRequestEntityTooLarge ||
		!strings.Contains(r.errorText(t), "PublishBurstPerCredential 2") {
		t.Fatalf("batch of 3: %d %s, want 413", r.status, r.body)
	}

	time.Sleep(time.Duration(retry) * time.Second)
	if r := pub(alice); r.status != http.StatusCreated {
		t.Fatalf("alice after Retry-After: %d %s", r.status, r.body)
	}
	ts.token = "root"
	if v := ts.metric(`meteor_publish_refused_total{reason="credential rate"}`); v != 4 {
		t.Errorf(`meteor_publish_refused_total{reason="credential rate"} = %v, want 4 (1 message, then a batch of 3)`, v)
	}
	if !strings.Contains(ts.log.String(), "api: publish refused: credential rate") {
		t.Errorf("the refusal is not logged")
	}

	// A reload that turns the limit off applies at once.
	next := *ts.cfg
	next.PublishRatePerCredential = 0
	if err := ts.Reload(&next); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if r := pub(bob); r.status != http.StatusCreated {
			t.Fatalf("bob's message %d without a limit: %d %s", i+1, r.status, r.body)
		}
	}
}

// TestCredentialRateAfterSize: a message refused as too large takes
// nothing from its credential's rate, on either publish endpoint.
func TestCredentialRateAfterSize(t *testing.T) {
	ts := start(t, func(c *config.Config) {
		c.APIToken = "root"
		c.MaxMessageBytes = 10
		c.PublishRatePerCredential, c.PublishBurstPerCredential = 1, 1
	})
	ts.token = "root"
	big := strings.Repeat("x", 11)
	if r := ts.do("POST", "/api/channels/c/messages", "application/json", `{"text":"`+big+`"}`); r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a message of 11 bytes: %d %s, want 413", r.status, r.body)
	}
	if r := ts.do("POST", "/api/publish", "application/json", `{"messages":[{"channel":"c","text":"`+big+`"}]}`); r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a batch with a message of 11 bytes: %d %s, want 413", r.status, r.body)
	}
	if r := ts.do("POST", "/api/channels/c/messages", "text/plain", "ok"); r.status != http.StatusCreated {
		t.Fatalf("the first message within the size, after two refused as too large: %d %s (the bucket of one was taken)", r.status, r.body)
	}
}

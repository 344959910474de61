package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// TestPublishAndRead publishes from an argument and from standard input,
// and reads it back with history, channels and stats, readable and -json.
func TestPublishAndRead(t *testing.T) {
	s := startServer(t)
	env := s.env()

	r := ctl(t, env, nil, "publish", "news", "first")
	r.want(t, "publish TEXT", 0)
	id, err := strconv.ParseUint(strings.TrimSpace(r.stdout), 10, 64)
	if err != nil || id == 0 {
		t.Fatalf("publish TEXT printed %q, want the message's id", r.stdout)
	}

	// One message per line, the empty line included, \r\n taken as \n.
	r = ctl(t, env, strings.NewReader("second\r\n\nfourth {\"x\":1}\n"), "-json", "publish", "news")
	r.want(t, "publish from stdin -json", 0)
	res := decode[pubResult](t, r.stdout)
	if len(res) != 3 {
		t.Fatalf("publish from stdin -json printed %q, want 3 results", r.stdout)
	}
	for i, p := range res {
		if p.Line != i+1 || p.Channel != "news" || p.ID <= id || p.Time == 0 {
			t.Errorf("result %d: %+v, want line %d of news with an id above %d", i, p, i+1, id)
		}
		id = p.ID
	}

	r = ctl(t, env, nil, "-json", "history", "-n", "3", "news")
	r.want(t, "history -json", 0)
	hist := decode[message](t, r.stdout)
	var texts []string
	for _, m := range hist {
		texts = append(texts, m.Text)
	}
	if got, want := strings.Join(texts, "|"), `second||fourth {"x":1}`; got != want {
		t.Errorf("history -n 3 texts %q, want %q", got, want)
	}
	if hist[2].ID != id {
		t.Errorf("history's last id %d, want %d", hist[2].ID, id)
	}

	r = ctl(t, env, nil, "history", "news")
	r.want(t, "history", 0)
	if l := lines(r.stdout); len(l) != 4 || !strings.HasSuffix(l[0], " news "+strings.Fields(l[0])[3]+" first") ||
		!strings.HasSuffix(l[3], fmt.Sprintf(" news %d fourth {\"x\":1}", id)) {
		t.Errorf("history printed %q, want 4 lines of date time channel id text", r.stdout)
	}

	r = ctl(t, env, nil, "channels")
	r.want(t, "channels", 0)
	if !strings.Contains(r.stdout, "CHANNEL") || !strings.Contains(r.stdout, fmt.Sprintf("news     4         0            %d", id)) {
		t.Errorf("channels printed %q, want a table with news, 4 messages, 0 subscribers, last id %d", r.stdout, id)
	}
	r = ctl(t, env, nil, "-json", "channels")
	r.want(t, "channels -json", 0)
	if ch := decode[channelInfo](t, r.stdout); len(ch) != 1 || ch[0] != (channelInfo{"news", 4, 0, id}) {
		t.Errorf("channels -json printed %q", r.stdout)
	}

	r = ctl(t, env, nil, "-json", "stats")
	r.want(t, "stats -json", 0)
	st := decode[map[string]any](t, r.stdout)
	if len(st) != 1 || st[0]["unique_messages"] != 4.0 || st[0]["channel_count"] != 1.0 {
		t.Errorf("stats -json printed %q, want unique_messages 4 and channel_count 1", r.stdout)
	}
	r = ctl(t, env, nil, "stats")
	r.want(t, "stats", 0)
	if !strings.Contains(r.stdout, "unique_messages") || !strings.Contains(r.stdout, "connections.ndjson") {
		t.Errorf("stats printed %q", r.stdout)
	}

	r = ctl(t, env, nil, "clear", "news")
	r.want(t, "clear", 0)
	if r.stdout != "news: cleared 4 messages\n" {
		t.Errorf("clear printed %q", r.stdout)
	}
	r = ctl(t, env, nil, "history", "news")
	r.want(t, "history after clear", 0)
	if r.stdout != "" {
		t.Errorf("history after clear printed %q, want nothing", r.stdout)
	}
}

// TestPublishBatches publishes 2500 lines from a file: three requests of
// POST /api/publish (1000, 1000, 500), every line once, in order. A
// proxy in front of the API counts the requests.
func TestPublishBatches(t *testing.T) {
	s := startServer(t, "-MaxMessagesPerChannel", "3000")
	target, _ := url.Parse(s.API())
	var batches, other atomic.Int32
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/api/publish" {
			batches.Add(1)
		} else {
			other.Add(1)
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()

	var in strings.Builder
	for i := 1; i <= 2500; i++ {
		fmt.Fprintf(&in, "m%d\n", i)
	}
	file := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(file, []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := ctl(t, []string{"METEOR_API=" + front.URL}, f, "publish", "bulk")
	r.want(t, "publish 2500 lines", 0)
	if n := len(lines(r.stdout)); n != 2500 {
		t.Errorf("publish printed %d ids, want 2500", n)
	}
	if b, o := batches.Load(), other.Load(); b != 3 || o != 0 {
		t.Errorf("publish sent %d POST /api/publish and %d other requests, want 3 and 0", b, o)
	}
	r = ctl(t, s.env(), nil, "-json", "history", "-n", "3000", "bulk")
	r.want(t, "history", 0)
	hist := decode[message](t, r.stdout)
	if len(hist) != 2500 {
		t.Fatalf("history holds %d messages, want 2500", len(hist))
	}
	for i, m := range hist {
		if m.Text != "m"+strconv.Itoa(i+1) {
			t.Fatalf("message %d is %q, want m%d", i, m.Text, i+1)
		}
	}
}

// TestPublishRate: a batch past its channel's publish rate is published
// up to the rate, and the rest sent again after the server's Retry-After:
// every line once, in order.
func TestPublishRate(t *testing.T) {
	s := startServer(t, "-PublishRate", "100", "-PublishBurst", "100")
	var in strings.Builder
	for i := 1; i <= 150; i++ {
		fmt.Fprintf(&in, "m%d\n", i)
	}
	r := ctl(t, s.env(), strings.NewReader(in.String()), "publish", "rated")
	r.want(t, "publish 150 lines past the rate", 0, "429")
	if n := len(lines(r.stdout)); n != 150 {
		t.Errorf("publish printed %d ids, want 150", n)
	}
	r = ctl(t, s.env(), nil, "-json", "history", "-n", "200", "rated")
	r.want(t, "history", 0)
	hist := decode[message](t, r.stdout)
	if len(hist) != 150 {
		t.Fatalf("history holds %d messages, want 150", len(hist))
	}
	for i, m := range hist {
		if m.Text != "m"+strconv.Itoa(i+1) {
			t.Fatalf("message %d is %q, want m%d", i, m.Text, i+1)
		}
	}
}

// TestPublishErrors: a line the server refuses is named by its number,
// and its batch publishes nothing.
func TestPublishErrors(t *testing.T) {
	s := startServer(t, "-MaxMessageBytes", "10")
	r := ctl(t, s.env(), strings.NewReader("ok\nthis line is too long\nok\n"), "publish", "c")
	r.want(t, "publish a line too long", 1, "413", "line 2: message is 21 bytes, the limit is 10")
	if r.stdout != "" {
		t.Errorf("publish printed %q, want nothing published", r.stdout)
	}
	r = ctl(t, s.env(), nil, "publish", "c", "this text is too long")
	r.want(t, "publish TEXT too long", 1, "413 Request Entity Too Large: message is 21 bytes, the limit is 10")
	if strings.Contains(r.stderr, "messages[") || strings.Contains(r.stderr, "line ") {
		t.Errorf("publish TEXT: stderr %q names a line or an index", r.stderr)
	}
	r = ctl(t, s.env(), nil, "publish", "bad name", "x")
	r.want(t, "publish to a bad channel name", 1, `400 Bad Request: invalid channel name "bad name"`)
	r = ctl(t, s.env(), nil, "history", "nope")
	r.want(t, "history of an unknown channel", 1, `404 Not Found: no channel "nope"`)
	r = ctl(t, s.env(), nil, "-json", "history", "-n", "3", "c")
	if r.stdout != "" {
		t.Errorf("history after refused publishes: %q", r.stdout)
	}
}

// TestAddresses: -api and -url win over METEOR_API and METEOR_URL, which
// win over the defaults; a host:port alone is http.
func TestAddresses(t *testing.T) {
	s := startServer(t)
	dead := "http://127.0.0.1:" + strconv.Itoa(freeClosedPort(t))
	ctl(t, []string{"METEOR_API=" + dead}, nil, "-api", s.API(), "publish", "a", "x").want(t, "-api over METEOR_API", 0)
	ctl(t, []string{"METEOR_API=" + dead}, nil, "publish", "-api", s.API()+"/", "a", "x").want(t, "-api after the command", 0)
	ctl(t, []string{"METEOR_API=" + strings.TrimPrefix(s.API(), "http://")}, nil, "channels").want(t, "METEOR_API host:port", 0)
	ctl(t, []string{"METEOR_API=" + s.API()}, nil, "-api", dead, "channels").want(t, "-api to a closed port", 3, "cannot reach the server", "connection refused")
	ctl(t, nil, nil, "-api", "ftp://x", "channels").want(t, "-api ftp", 2, "-api")
}

// TestToken runs a server with APIToken: no token and a wrong one exit 4
// with the server's reason; METEOR_TOKEN and -token-file are sent.
func TestToken(t *testing.T) {
	s := startServer(t, "-APIToken", "s3cret")
	ctl(t, s.env(), nil, "stats").want(t, "no token", 4, "401 Unauthorized: missing bearer token", "METEOR_TOKEN")
	ctl(t, s.env("METEOR_TOKEN=wrong"), nil, "publish", "a", "x").want(t, "wrong token", 4, "401 Unauthorized: wrong token")
	ctl(t, s.env("METEOR_TOKEN=s3cret"), nil, "publish", "a", "x").want(t, "METEOR_TOKEN", 0)
	file := filepath.Join(t.TempDir(), "token")
	os.WriteFile(file, []byte("s3cret\n"), 0o600)
	ctl(t, s.env("METEOR_TOKEN=wrong"), nil, "-token-file", file, "channels").want(t, "-token-file", 0)
	ctl(t, s.env(), nil, "-token-file", filepath.Join(t.TempDir(), "missing"), "channels").want(t, "missing token file", 2, "token file")
	// The subscriber port needs no token: tail works without one.
	tl := startTail(t, s.env(), "tail", "-last", "1", "a")
	tl.waitOut("the last message", 1)
	if code := tl.stop(syscall.SIGINT); code != 0 {
		t.Errorf("tail on SIGINT exited %d, want 0", code)
	}
}

// TestUsage: help exits 0 on stdout, a bad command line 2 on stderr.
func TestUsage(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"help"}, {"-help"}} {
		r := ctl(t, nil, nil, args...)
		r.want(t, strings.Join(args, " "), 0)
		for _, w := range []string{"publish CHANNEL [TEXT]", "tail [-last N] CHANNEL...", "METEOR_TOKEN", "Exit codes:", "  4  "} {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("meteorctl %s: stdout lacks %q", strings.Join(args, " "), w)
			}
		}
	}
	for _, cmd := range commands {
		for _, args := range [][]string{{cmd.name, "-h"}, {"help", cmd.name}} {
			r := ctl(t, nil, nil, args...)
			r.want(t, strings.Join(args, " "), 0)
			if !strings.HasPrefix(r.stdout, "usage: "+cmd.synopsis()+"\n") || !strings.Contains(r.stdout, "-json") {
				t.Errorf("meteorctl %s printed %q", strings.Join(args, " "), r.stdout)
			}
		}
	}
	if r := ctl(t, nil, nil, "tail", "-h"); !strings.Contains(r.stdout, "-last N") {
		t.Errorf("tail -h: %q lacks -last", r.stdout)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "usage: meteorctl"},
		{[]string{"frob"}, `unknown command "frob"`},
		{[]string{"publish"}, "usage: meteorctl publish CHANNEL [TEXT]"},
		{[]string{"publish", "a", "b", "c"}, "usage: meteorctl publish"},
		{[]string{"tail"}, "usage: meteorctl tail"},
		{[]string{"history", "-n", "x", "a"}, "invalid value"},
		{[]string{"tail", "-last", "-1", "a"}, "-last -1"},
		{[]string{"-bogus", "stats"}, "-bogus"},
		{[]string{"stats", "extra"}, "usage: meteorctl stats"},
	} {
		r := ctl(t, nil, nil, tt.args...)
		r.want(t, fmt.Sprintf("meteorctl %q", tt.args), 2, tt.want)
	}
}

// TestServerDown: every command exits 3 when nothing listens, tail at
// once rather than retrying a server it never reached.
func TestServerDown(t *testing.T) {
	dead := "http://127.0.0.1:" + strconv.Itoa(freeClosedPort(t))
	env := []string{"METEOR_API=" + dead, "METEOR_URL=" + dead}
	for _, args := range [][]string{
		{"publish", "a", "x"}, {"stats"}, {"channels"}, {"history", "a"},
		{"presence", "a"}, {"clear", "a"}, {"close", "a"}, {"tail", "a"},
	} {
		ctl(t, env, strings.NewReader("x\n"), args...).want(t, strings.Join(args, " ")+" to a closed port", 3, "cannot reach", "connection refused")
	}
	ctl(t, env, strings.NewReader("x\n"), "publish", "a").want(t, "publish from stdin to a closed port", 3, "cannot reach")
}

// TestPublishInterrupted: a publish whose standard input stays open ends
// on SIGTERM with 130, after publishing what it read.
func TestPublishInterrupted(t *testing.T) {
	s := startServer(t)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	p := startCtl(t, s.env(), pr, "publish", "c")
	pr.Close()
	fmt.Fprintln(pw, "before the signal")
	p.waitOut("the id of the line written", 1)
	if code := p.stop(syscall.SIGTERM); code != exitInterrupted {
		t.Errorf("publish on SIGTERM exited %d, want %d; stderr %q", code, exitInterrupted, p.errText())
	}
	if !strings.Contains(p.errText(), "interrupted") {
		t.Errorf("publish on SIGTERM: stderr %q, want it to say interrupted", p.errText())
	}
	r := ctl(t, s.env(), nil, "history", "c")
	if !strings.HasSuffix(r.stdout, " before the signal\n") {
		t.Errorf("history after the interrupted publish: %q", r.stdout)
	}
}

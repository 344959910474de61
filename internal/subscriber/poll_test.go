package subscriber_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/subscriber"
)

// pollHeader is the exact header of a long-poll answer.
func pollHeader(contentType string, length int, cors ...string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nServer: meteord\r\nContent-Type: %s\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nContent-Length: %d\r\n%sConnection: close\r\n\r\n",
		contentType, length, strings.Join(cors, ""))
}

// expectPoll reads a whole answer and compares it with body.
func (c *mConn) expectPoll(contentType, body string, cors ...string) {
	c.t.Helper()
	if got, want := c.header(), pollHeader(contentType, len(body), cors...); got != want {
		c.t.Fatalf("header %q, want %q", got, want)
	}
	if got := c.body(); got != body {
		c.t.Fatalf("body %s, want %s", got, body)
	}
}

func msgJSON(id uint64, channel, text string) *regexp.Regexp {
	return regexp.MustCompile(fmt.Sprintf(`\{"type":"message","id":%d,"channel":"%s","text":"%s","time":\d+\}`, id, channel, regexp.QuoteMeta(text)))
}

// TestPollImmediate: messages after the position are answered at once,
// with the cursor after them, for every channel of the poll; a gap too.
func TestPollImmediate(t *testing.T) {
	ts := mStart(t, func(c *config.Config) { c.MaxMessagesPerChannel = 2 })
	a1 := ts.publish("pa", "a1")
	a2 := ts.publish("pa", "a2")
	a3 := ts.publish("pa", "a3")
	b1 := ts.publish("pb", "b1")
	c := ts.get(fmt.Sprintf("/poll/pa/pb.h?since=pa:%d", a1))
	c.header()
	body := c.body()
	want := fmt.Sprintf(`^\{"messages":\[%s,%s,%s\],"cursor":"pa:%d@\*{8},pb:%d@\*{8}"\}$`,
		msgJSON(a2, "pa", "a2"), msgJSON(a3, "pa", "a3"), msgJSON(b1, "pb", "b1"), a3, b1)
	if !regexp.MustCompile(want).MatchString(body) {
		t.Fatalf("body %s, want %s", body, want)
	}
	// From before what is held: a gap, then what is left.
	c = ts.get("/poll/pa.r1")
	c.header()
	body = c.body()
	want = fmt.Sprintf(`^\{"messages":\[%s,%s\],"cursor":"pa:%d@\*{8}","gaps":\[\{"channel":"pa","since":0,"trimmed":%d,"epoch":"\*{8}"\}\]\}$`,
		msgJSON(a2, "pa", "a2"), msgJSON(a3, "pa", "a3"), a3, a1)
	if !regexp.MustCompile(want).MatchString(body) {
		t.Fatalf("body %s, want %s", body, want)
	}
	ts.waitIdle()
}

// TestPollHeld: a poll with nothing new waits, registered, and answers
// with the first live message, then closes.
func TestPollHeld(t *testing.T) {
	ts := mStart(t, nil)
	old := ts.publish("h", "old")
	c := ts.get("/poll/h/h2?timeout=20")
	ts.waitSubscribers("h", 1)
	id := ts.publish("h", "new")
	c.header()
	body := c.body()
	want := fmt.Sprintf(`^\{"messages":\[%s\],"cursor":"h:%d@\*{8},h2:0"\}$`, msgJSON(id, "h", "new"), id)
	if !regexp.MustCompile(want).MatchString(body) {
		t.Fatalf("body %s, want %s (old is %d)", body, want, old)
	}
	ts.waitSubscribers("h", 0)
	ts.waitIdle()
}

// TestPollTimeout: a held poll with no message answers after its timeout
// with no message and the position it started at; timeout=0 answers at
// once; the timeout is at most LongPollTimeout.
func TestPollTimeout(t *testing.T) {
	ts := mStart(t, func(c *config.Config) { c.LongPollTimeout = 1 })
	id := ts.publish("t", "x")
	start := time.Now()
	c := ts.get(fmt.Sprintf("/poll/t?since=t:%d&timeout=600", id))
	c.expectPoll("application/json", fmt.Sprintf(`{"messages":[],"cursor":"t:%d`+E+`"}`, id))
	if d := time.Since(start); d < 400*time.Millisecond || d > 2*time.Second {
		t.Fatalf("answered after %v, want about 1 s", d)
	}
	start = time.Now()
	c = ts.get("/poll/t?timeout=0")
	c.expectPoll("application/json", fmt.Sprintf(`{"messages":[],"cursor":"t:%d`+E+`"}`, id))
	if d := time.Since(start); d > 300*time.Millisecond {
		t.Fatalf("timeout=0 answered after %v", d)
	}
	ts.waitIdle()
}

// TestPollJSONP: ?callback= wraps the answer; a bad name is refused.
func TestPollJSONP(t *testing.T) {
	ts := mStart(t, nil)
	c := ts.get("/poll/j?timeout=0&callback=window.Meteor.$cb_1")
	c.expectPoll("application/javascript", `/**/window.Meteor.$cb_1({"messages":[],"cursor":"j:0"});`)
	for _, bad := range []string{"a-b", "1a", "a..b", "a.b.c.d.e", "alert(1)", "a%3Bb", strings.Repeat("a", 65)} {
		c := ts.get("/poll/j?callback=" + bad)
		if h := c.header(); !strings.HasPrefix(h, "HTTP/1.1 400 ") {
			t.Errorf("callback %q: %q, want 400", bad, h)
		}
	}
}

// TestPollShutdown: a held poll answers at shutdown.
func TestPollShutdown(t *testing.T) {
	ts := mStart(t, nil)
	c := ts.get("/poll/s?timeout=20")
	ts.waitSubscribers("s", 1)
	ts.shutdown()
	c.expectPoll("application/json", `{"messages":[],"cursor":"s:0","closed":"shutdown","code":1001,"reconnect":true}`)
}

// TestPollKick: a held poll whose channel an administrator closes answers
// with the reason, so that the client stops polling.
func TestPollKick(t *testing.T) {
	ts := mStart(t, nil)
	c := ts.get("/poll/k?timeout=20")
	ts.waitSubscribers("k", 1)
	if n, _ := ts.Hub().Kick(t.Context(), "k"); n != 1 {
		t.Fatalf("Kick closed %d clients, want 1", n)
	}
	c.expectPoll("application/json", `{"messages":[],"cursor":"k:0","closed":"channelClose","code":4000,"reconnect":false}`)
}

// callbackRule is the rule ValidCallback implements.
var callbackRule = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]{0,63}(\.[A-Za-z_$][A-Za-z0-9_$]{0,63}){0,3}$`)

func TestValidCallback(t *testing.T) {
	for name, want := range map[string]bool{
		"cb": true, "$": true, "_a.b.c.d": true, "a.b.c.d.e": false, "": false, ".a": false,
		"a.": false, "a b": false, "a\u00e9": false, "a1": true, "1a": false, "a.1": false,
		strings.Repeat("a", 64): true, strings.Repeat("a", 65): false,
	} {
		if got := subscriber.ValidCallback(name); got != want {
			t.Errorf("ValidCallback(%q) = %v, want %v", name, got, want)
		}
	}
}

// FuzzCallbackName: ValidCallback accepts exactly the rule's names, and
// nothing it accepts can end the call or start another statement.
func FuzzCallbackName(f *testing.F) {
	for _, s := range []string{"cb", "a.b", "jQuery123_456", "$.x", "a(b)", "a;b", "</script>", "a.b.c.d.e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := subscriber.ValidCallback(s)
		if want := callbackRule.MatchString(s); got != want {
			t.Fatalf("ValidCallback(%q) = %v, the rule says %v", s, got, want)
		}
		if got && strings.ContainsAny(s, "()<>;'\"\\/ \n\r\t") {
			t.Fatalf("ValidCallback accepted %q", s)
		}
	})
}

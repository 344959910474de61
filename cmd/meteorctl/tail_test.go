package main

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/meteorpush/meteor/internal/testkit"
)

// tailLine is a line of tail -json: a message, a gap or a close.
type tailLine struct {
	Type    string `json:"type"`
	ID      uint64 `json:"id"`
	Channel string `json:"channel"`
	Text    string `json:"text"`
	Time    int64  `json:"time"`
	Reset   bool   `json:"reset"`
	Reason  string `json:"reason"`
}

// texts are the texts of the message lines of out, in order.
func texts(t *testing.T, out string) []string {
	t.Helper()
	var got []string
	for _, l := range decode[tailLine](t, out) {
		if l.Type == "message" {
			got = append(got, l.Channel+":"+l.Text)
		}
	}
	return got
}

// waitTexts waits until the tail printed n messages and fails t unless
// they are want, in order, once each.
func (tl *tail) waitTexts(want ...string) {
	tl.t.Helper()
	testkit.Eventually(tl.t, fmt.Sprintf("%d messages from tail", len(want)), func() bool {
		return len(texts(tl.t, tl.out())) >= len(want)
	})
	if got := strings.Join(texts(tl.t, tl.out()), " "); got != strings.Join(want, " ") {
		tl.t.Fatalf("tail printed %q, want %q", got, strings.Join(want, " "))
	}
}

// publish publishes each text to channel with meteorctl.
func (s *server) publish(t *testing.T, channel string, text ...string) {
	t.Helper()
	for _, x := range text {
		ctl(t, s.env(), nil, "publish", channel, x).want(t, "publish "+x, 0)
	}
}

// TestTailResumes tails with -last, receives live messages, and resumes
// after an administrator closes the channel and after the server is
// killed and started again: every message once, in order, the reset on
// stderr.
func TestTailResumes(t *testing.T) {
	s := startServer(t)
	s.publish(t, "news", "old1", "old2", "old3")
	tl := startTail(t, s.env(), "-json", "tail", "-last", "2", "news", "sport")
	tl.waitTexts("news:old2", "news:old3")
	testkit.Eventually(t, "the tail subscribed", func() bool { return s.subscribers(t, "sport") == 1 })
	s.publish(t, "news", "live1")
	s.publish(t, "sport", "live2")
	tl.waitTexts("news:old2", "news:old3", "news:live1", "sport:live2")

	// An administrator closes the channel: the tail comes back and gets
	// what was published while it was away, from the history, and
	// nothing twice.
	ctl(t, s.env(), nil, "close", "news").want(t, "close", 0)
	s.publish(t, "news", "during-close")
	tl.waitErr("channelClose", 1)
	testkit.Eventually(t, "the tail back on news", func() bool { return s.subscribers(t, "news") == 1 })
	s.publish(t, "news", "after-close")
	tl.waitTexts("news:old2", "news:old3", "news:live1", "sport:live2", "news:during-close", "news:after-close")

	// The server dies and another starts on its ports, empty: the tail
	// reconnects, is told of the reset, and gets the new stream's
	// messages, also those published before it was back.
	s.restart()
	s.publish(t, "news", "reborn1")
	s.publish(t, "sport", "reborn2")
	tl.waitTexts("news:old2", "news:old3", "news:live1", "sport:live2", "news:during-close", "news:after-close",
		"news:reborn1", "sport:reborn2")
	tl.waitErr("reconnecting", 2)
	tl.waitErr("gap in news: the stream was reset", 1)
	testkit.Eventually(t, "the tail back on the new server", func() bool { return s.subscribers(t, "news") == 1 })
	s.publish(t, "news", "reborn3")
	tl.waitTexts("news:old2", "news:old3", "news:live1", "sport:live2", "news:during-close", "news:after-close",
		"news:reborn1", "sport:reborn2", "news:reborn3")

	var gaps, closes int
	for _, l := range decode[tailLine](t, tl.out()) {
		switch {
		case l.Type == "gap" && l.Reset:
			gaps++
		case l.Type == "close" && l.Reason == "channelClose":
			closes++
		}
	}
	if gaps < 1 || closes != 1 {
		t.Errorf("tail -json printed %d reset gaps and %d channelClose lines, want 1 or more and 1:\n%s", gaps, closes, tl.out())
	}
	if code := tl.stop(syscall.SIGTERM); code != 0 {
		t.Errorf("tail on SIGTERM exited %d, want 0", code)
	}
}

// TestTailReadable: the readable output is one line a message, with the
// channel, id and text, a line break in the text quoted; SIGINT ends it
// with 0.
func TestTailReadable(t *testing.T) {
	s := startServer(t)
	tl := startTail(t, s.env(), "tail", "c")
	testkit.Eventually(t, "the tail subscribed", func() bool { return s.subscribers(t, "c") == 1 })
	r := ctl(t, s.env(), strings.NewReader("one\n"), "-json", "publish", "c")
	id := decode[pubResult](t, r.stdout)[0].ID
	s.publish(t, "c", "two\nlines")
	got := tl.waitOut("two messages", 2)
	if !strings.HasSuffix(got[0], " c "+strconv.FormatUint(id, 10)+" one") || !strings.HasSuffix(got[1], ` "two\nlines"`) {
		t.Errorf("tail printed %q", got)
	}
	r = ctl(t, s.env(), nil, "presence", "c")
	r.want(t, "presence", 0)
	if l := lines(r.stdout); len(l) != 3 || l[0] != "c: 1 subscribers" || !strings.HasPrefix(l[1], "ID") || !strings.Contains(l[2], " ndjson ") {
		t.Errorf("presence printed %q, want the count and a table of one ndjson subscriber", r.stdout)
	}
	if code := tl.stop(syscall.SIGINT); code != 0 {
		t.Errorf("tail on SIGINT exited %d, want 0", code)
	}
	testkit.Eventually(t, "the server to see the tail gone", func() bool { return s.subscribers(t, "c") == 0 })
	r = ctl(t, s.env(), nil, "close", "c")
	r.want(t, "close", 0)
	if r.stdout != "c: closed 0 subscriber connections on this node\n" {
		t.Errorf("close after the tail ended printed %q", r.stdout)
	}
	if e := tl.errText(); e != "" {
		t.Errorf("tail wrote %q on stderr", e)
	}
}

// TestTailRefused: a tail the subscriber port refuses (400: a bad channel
// name) ends at once with 1 and the server's reason.
func TestTailRefused(t *testing.T) {
	s := startServer(t)
	ctl(t, s.env(), nil, "tail", "bad.x1").want(t, "tail of a bad element", 1, "400 Bad Request")
}

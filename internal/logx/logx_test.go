package logx

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLimiterKeepsBackAndCounts(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	var l Limiter
	for range 5 {
		l.Warn(log, "bad input")
	}
	if n := strings.Count(buf.String(), "bad input"); n != 1 {
		t.Fatalf("logged %d times in a burst, want 1:\n%s", n, buf.String())
	}
	l.last.Store(0) // as if Every had passed
	l.Error(log, "bad input")
	if !strings.Contains(buf.String(), "suppressed=4") || !strings.Contains(buf.String(), "level=ERROR") {
		t.Fatalf("the message after the pause does not count the 4 kept back:\n%s", buf.String())
	}
	var nilLimiter Limiter
	nilLimiter.Warn(nil, "no logger") // must not panic
}

func TestURI(t *testing.T) {
	sig := strings.Repeat("0123456789abcdef", 4) // a signed hostid's
	for in, want := range map[string]string{
		"/sse/chat":                         "/sse/chat",
		"/sse/chat?since=x:1":               "/sse/chat?since=x:1",
		"/sse/chat?token=abc.def.ghi":       "/sse/chat?token=REDACTED",
		"/sse/chat?since=1&token=a&event=x": "/sse/chat?since=1&token=REDACTED&event=x",
		"/push/h/longpoll/c?exp=1&sig=zz":   "/push/h/longpoll/c?exp=1&sig=REDACTED",
		"/a?TOKEN=x&&sig=y&":                "/a?TOKEN=REDACTED&&sig=REDACTED&",
		"/a?tokenx=1&xtoken=2":              "/a?tokenx=1&xtoken=2",
		"/a?token":                          "/a?token",
		"?token=":                           "?token=REDACTED",
		// Names as the server reads them.
		"/sse/c?%74oken=abc&si%67=x": "/sse/c?%74oken=REDACTED&si%67=REDACTED",
		// A signed hostid keeps its id and expiry.
		"/push/page42s1767225600s" + sig + "/longpoll/c?nc=1": "/push/page42s1767225600sREDACTED/longpoll/c?nc=1",
		"/disconnect/page42s1767225600s" + sig:                "/disconnect/page42s1767225600sREDACTED",
	} {
		if got := URI(in); got != want {
			t.Errorf("URI(%q) = %q, want %q", in, got, want)
		}
	}
	if got := HostID("page42s1767225600s" + sig); got != "page42" {
		t.Errorf("HostID of a signed hostid = %q", got)
	}
	if got := HostID("plain"); got != "plain" {
		t.Errorf("HostID(plain) = %q", got)
	}
}

// TestText: credentials quoted in an error's text are redacted.
func TestText(t *testing.T) {
	sig := strings.Repeat("0123456789abcdef", 4)
	for in, want := range map[string]string{
		`parse "/push/h/longpoll/c%zz?nc=1&token=eyJa.b.c": invalid URL escape "%zz"`: `parse "/push/h/longpoll/c%zz?nc=1&token=REDACTED": invalid URL escape "%zz"`,
		`malformed HTTP request "GET /sse/x?sig=abc"`:                                 `malformed HTTP request "GET /sse/x?sig=REDACTED"`,
		"GET /push/page42s1767225600s" + sig + "/stream/c":                            "GET /push/page42s1767225600sREDACTED/stream/c",
		`no credential here: mytoken=1`:                                               `no credential here: mytoken=1`,
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
}

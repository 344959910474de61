package server

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/config"
)

// httpHeader is 1.06's default HeaderTemplate rendered with 200 OK.
const httpHeader = "HTTP/1.1 200 OK\r\nServer: meteord\r\nContent-Type: text/html; charset=utf-8\r\n" +
	"Pragma: no-cache\r\nCache-Control: no-cache, no-store, must-revalidate\r\n" +
	"Expires: Thu, 1 Jan 1970 00:00:00 GMT\r\n\r\n"

func scriptInfo(name string, last uint64) string {
	return `<script>ch("` + name + `", ` + strconv.FormatUint(last, 10) + ");</script>\r\n"
}

func scriptMsg(id uint64, channel, text string) string {
	return "<script>p(" + strconv.FormatUint(id, 10) + `,"` + channel + `","` + text + "\");</script>\r\n"
}

const scriptEOF = "<script>eof();</script>\r\n"

// TestModes subscribes in every built-in mode, and in a mode that the
// configuration does not name, to a channel with history (.b1) and one
// without, and checks the response byte for byte: header, channel info,
// backlog, then live messages or the end of the response.
func TestModes(t *testing.T) {
	cfg := config.Defaults()
	iframe := cfg.Mode("iframe")
	flashRec := func(end string) func(uint64, string, string) string {
		return func(id uint64, ch, text string) string {
			return strconv.FormatUint(id, 10) + "/" + ch + "/" + text + end
		}
	}
	flashInfo := func(end string) func(string, uint64) string {
		return func(name string, last uint64) string { return "CH/" + name + "/" + strconv.FormatUint(last, 10) + end }
	}
	tests := []struct {
		mode    string
		head    func(info string) string // the header around the channel info
		info    func(name string, last uint64) string
		msg     func(id uint64, ch, text string) string
		persist bool
		maxMsgs int
	}{
		{
			mode:    "iframe",
			head:    func(info string) string { return header(iframe, "200 OK", info) },
			persist: true,
		},
		{
			mode:    "xhrinteractive",
			head:    func(info string) string { return httpHeader + strings.Repeat(".", 1409) + "\r\n" + info + "\r\n" },
			persist: true,
		},
		{mode: "simplepoll", head: func(info string) string { return httpHeader + info }},
		{mode: "smartpoll", head: func(info string) string { return httpHeader + info }},
		{mode: "longpoll", head: func(info string) string { return httpHeader + info }, persist: true, maxMsgs: 1},
		{
			mode:    "flash",
			head:    func(info string) string { return info },
			info:    flashInfo("\x00"),
			msg:     flashRec("\x00"),
			persist: true,
		},
		{
			mode: "flashloadvars",
			// Raw text in an HTTP answer: sandboxed, so that a published
			// "<script>" cannot run as a page of the subscriber origin.
			head: func(info string) string {
				return strings.TrimSuffix(httpHeader, "\r\n") + "Content-Security-Policy: sandbox\r\nX-Content-Type-Options: nosniff\r\n\r\n" + info
			},
			info:    flashInfo("\n"),
			msg:     flashRec("\n"),
			persist: true,
			maxMsgs: 1,
		},
		// A mode the configuration does not name: the global defaults,
		// whose header has no ~channelinfo~.
		{mode: "nosuchmode", head: func(string) string { return httpHeader }},
	}
	for _, tt := range tests {
		if tt.info == nil {
			tt.info = scriptInfo
		}
		if tt.msg == nil {
			tt.msg = scriptMsg
		}
		t.Run(tt.mode, func(t *testing.T) {
			ts := start(t, nil)
			if id := ts.publish("c", "one"); id != 1 {
				t.Fatalf("first id = %d, want 1", id)
			}
			ts.publish("c", "two")
			c := ts.get("/push/h1/" + tt.mode + "/c.b1/d?nc=1234")
			c.expect(tt.head(tt.info("c", 2)+tt.info("d", 0)) + tt.msg(2, "c", "two"))
			switch {
			case !tt.persist:
				c.expectEOF()
				if n := ts.count("c"); n != 0 {
					t.Errorf("COUNTSUBSCRIBERS c = %d for a non-persistent mode", n)
				}
			case tt.maxMsgs == 1:
				// The backlog batch reached MaxMessages: closed after it.
				c.expectEOF()
				ts.waitCount("c", 0)
				// Without backlog, the first live message is the last.
				c = ts.get("/push/h1/" + tt.mode + "/c")
				c.expect(tt.head(tt.info("c", 2)))
				ts.waitCount("c", 1)
				ts.publish("c", "three")
				c.expect(tt.msg(3, "c", "three"))
				c.expectEOF()
				ts.waitCount("c", 0)
			default:
				ts.waitCount("c", 1)
				if n := ts.count("d"); n != 1 {
					t.Errorf("COUNTSUBSCRIBERS d = %d, want 1", n)
				}
				ts.publish("d", "three")
				c.expect(tt.msg(1, "d", "three")) // each channel numbers its own
				ts.publish("c", "four")
				c.expect(tt.msg(3, "c", "four"))
				ts.publish("e", "five") // another channel: nothing
				c.quiet(100 * time.Millisecond)
			}
		})
	}
}

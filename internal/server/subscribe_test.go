package server

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/testkit"
)

// TestChannelSuffixes checks the backlog that each channel suffix asks for,
// with the non-persistent simplepoll mode so that each response ends.
func TestChannelSuffixes(t *testing.T) {
	ts := start(t, nil)
	for i := range 5 {
		ts.publish("c", "m"+string(rune('1'+i))) // ids 1..5
	}
	ts.publish("d", "d6") // id 1 of d; "6" below
	all := func(ids ...int) string {
		var b strings.Builder
		for _, id := range ids {
			if id == 6 {
				b.WriteString(scriptMsg(1, "d", "d6"))
			} else {
				b.WriteString(scriptMsg(uint64(id), "c", "m"+string(rune('0'+id))))
			}
		}
		return b.String()
	}
	infoC := scriptInfo("c", 5)
	tests := []struct {
		path string
		want string
	}{
		{"c", infoC},
		{"c.r3", infoC + all(3, 4, 5)},
		{"c.R4", infoC + all(4, 5)},
		{"c.r0", infoC + all(1, 2, 3, 4, 5)},
		{"c.r", infoC + all(1, 2, 3, 4, 5)},
		{"c.r99", infoC},
		{"c.b2", infoC + all(4, 5)},
		{"c.B99", infoC + all(1, 2, 3, 4, 5)},
		{"c.b", infoC + all(1, 2, 3, 4, 5)},
		{"c.b0", infoC},
		{"c.h", infoC + all(1, 2, 3, 4, 5)},
		{"c.H", infoC + all(1, 2, 3, 4, 5)},
		// Several channels: the infos in URL order, then each backlog.
		{"d.h/c.b1", scriptInfo("d", 1) + infoC + all(6, 5)},
		{"c.b1/d.h/", infoC + scriptInfo("d", 1) + all(5, 6)},
		// A channel named twice keeps its place and its last element.
		{"c.b1/d/c.b2", infoC + scriptInfo("d", 1) + all(4, 5)},
		// Empty elements and a trailing slash are skipped.
		{"c.b1//", infoC + all(5)},
		{"c.b1?x=/d.h&nc=2", infoC + all(5)},
		{"new.h", scriptInfo("new", 0)},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			c := ts.get("/push/host/simplepoll/" + tt.path)
			if got, want := c.readAll(), httpHeader+tt.want; got != want {
				t.Errorf("GET %s:\n got %q\nwant %q", tt.path, got, want)
			}
		})
	}
	if got := ts.list(); !slices.Equal(got, []string{"c(5/0)", "d(1/0)"}) {
		t.Errorf("LISTCHANNELS after polling = %q; polls must not create channels", got)
	}
}

// TestHeaderPlaceholders checks ~servertime~, ~~, unknown placeholders and
// the channel info counters in a configured mode.
func TestHeaderPlaceholders(t *testing.T) {
	ts := start(t, func(cfg *config.Config) {
		m := *cfg.Mode("longpoll")
		m.Name = "custom"
		m.Persist = true
		m.MaxMessages = 0
		m.HeaderTemplate = "T ~status~ ~server~ ~servertime~ ~~ ~nosuch~|~channelinfo~|\n"
		m.ChannelInfoTemplate = "[~name~ ~lastMsgID~ ~messageCount~ ~subscriberCount~]"
		m.MessageTemplate = "<~id~ ~channel~ ~text~ ~timestamp~ ~x~>"
		cfg.Modes["custom"] = &m
	})
	ts.publish("c", "a")
	ts.publish("c", "b")
	before := time.Now().Unix()
	other := ts.get("/push/other/custom/c")
	other.expect("T 200 OK meteord ")
	line := strings.SplitN(other.readLine(), " ", 2)
	checkTime(t, line[0], before)
	if want := "~ |[c 2 2 0]|"; line[1] != want {
		t.Errorf("header rest = %q, want %q", line[1], want)
	}
	ts.waitCount("c", 1)
	c := ts.get("/push/h/CUSTOM/c")
	c.expect("T 200 OK meteord ")
	line = strings.SplitN(c.readLine(), " ", 2)
	if want := "~ |[c 2 2 1]|"; line[1] != want {
		t.Errorf("second subscriber's header rest = %q, want %q (one other subscriber)", line[1], want)
	}
	ts.waitCount("c", 2)
	before = time.Now().Unix()
	ts.publish("c", "x")
	for _, cl := range []*client{other, c} {
		cl.expect("<3 c x ")
		b := cl.readN(len("1234567890 >"))
		checkTime(t, strings.TrimSuffix(string(b), " >"), before)
		if !strings.HasSuffix(string(b), " >") {
			t.Errorf("message tail %q", b)
		}
	}
}

func checkTime(t *testing.T, s string, before int64) {
	t.Helper()
	var n int64
	for _, c := range s {
		if c < '0' || c > '9' {
			t.Fatalf("time %q is not a number", s)
		}
		n = n*10 + int64(c-'0')
	}
	if n < before || n > time.Now().Unix() {
		t.Errorf("time %d not within [%d, now]", n, before)
	}
}

// TestHostIDReplacement: a second persistent subscription with the same
// hostid ends the first with the shutdown message.
func TestHostIDReplacement(t *testing.T) {
	ts := start(t, nil)
	a := ts.get("/push/same/iframe/c")
	a.expect(header(ts.cfg.Mode("iframe"), "200 OK", scriptInfo("c", 0)))
	ts.waitCount("c", 1)
	b := ts.get("/push/same/longpoll/c")
	b.expect(httpHeader + scriptInfo("c", 0))
	a.expect(scriptEOF)
	a.expectEOF()
	ts.waitCount("c", 1)
	// Another hostid does not replace it; a non-persistent one neither.
	other := ts.get("/push/other/longpoll/c")
	other.expect(httpHeader + scriptInfo("c", 0))
	poll := ts.get("/push/same/simplepoll/c")
	if got := poll.readAll(); got != httpHeader+scriptInfo("c", 0) {
		t.Errorf("simplepoll got %q", got)
	}
	ts.waitCount("c", 2)
	ts.publish("c", "m")
	b.expect(scriptMsg(1, "c", "m"))
	b.expectEOF()
	other.expect(scriptMsg(1, "c", "m"))
	other.expectEOF()
	ts.waitCount("c", 0)
}

// TestDisconnect: /disconnect/<hostid> ends that hostid's subscription and
// answers the header alone.
func TestDisconnect(t *testing.T) {
	ts := start(t, nil)
	a := ts.get("/push/abc/xhrinteractive/c/d")
	a.expect(httpHeader + strings.Repeat(".", 1409) + "\r\n" + scriptInfo("c", 0) + scriptInfo("d", 0) + "\r\n")
	keep := ts.get("/push/keep/iframe/c")
	keep.expect(header(ts.cfg.Mode("iframe"), "200 OK", scriptInfo("c", 0)))
	ts.waitCount("c", 2)
	if got := ts.get("/disconnect/abc").readAll(); got != httpHeader {
		t.Errorf("/disconnect answered %q, want the header alone", got)
	}
	a.expect(scriptEOF)
	a.expectEOF()
	ts.waitCount("c", 1)
	ts.waitCount("d", 0)
	// An unknown hostid: the same answer, nothing closed.
	if got := ts.get("/disconnect/nobody").readAll(); got != httpHeader {
		t.Errorf("/disconnect of an unknown hostid answered %q", got)
	}
	if got := ts.get("/disconnect/bad!id").readAll(); !strings.HasPrefix(got, "HTTP/1.1 400 Bad Request\r\n") {
		t.Errorf("/disconnect of a bad hostid answered %q", got)
	}
	ts.publish("c", "still")
	keep.expect(scriptMsg(1, "c", "still"))
}

// TestRemoteCloseRemovesSubscriber: a client that closes its socket is
// removed without any message being sent to it.
func TestRemoteCloseRemovesSubscriber(t *testing.T) {
	ts := start(t, nil)
	clients := make([]*client, 3)
	for i := range clients {
		clients[i] = ts.get("/push/h" + string(rune('a'+i)) + "/iframe/c")
		clients[i].expect(header(ts.cfg.Mode("iframe"), "200 OK", scriptInfo("c", 0)))
	}
	ts.waitCount("c", 3)
	clients[0].nc.Close()
	ts.waitCount("c", 2)
	clients[1].nc.Close()
	clients[2].nc.Close()
	ts.waitCount("c", 0)
	if got := ts.list(); len(got) != 0 {
		t.Errorf("LISTCHANNELS = %q, want none", got)
	}
	// The leave record is written after the hub lets the client go.
	testkit.Eventually(t, "a remoteClosed leave record", func() bool {
		return strings.Contains(ts.log.String(), "reason=remoteClosed")
	})
}

// TestListChannels: persistent subscribers only; a channel lives while it
// has messages or subscribers.
func TestListChannels(t *testing.T) {
	ts := start(t, nil)
	a := ts.get("/push/a/iframe/b/a")
	a.expect(header(ts.cfg.Mode("iframe"), "200 OK", scriptInfo("b", 0)+scriptInfo("a", 0)))
	ts.waitCount("a", 1)
	ts.get("/push/p/simplepoll/z").readAll()
	ts.publish("m", "x")
	a2 := ts.get("/push/a2/longpoll/a")
	a2.expect(httpHeader + scriptInfo("a", 0))
	ts.waitCount("a", 2)
	if got, want := ts.list(), []string{"a(0/2)", "b(0/1)", "m(1/0)"}; !slices.Equal(got, want) {
		t.Errorf("LISTCHANNELS = %q, want %q", got, want)
	}
	ts.publish("a", "y")
	a.expect(scriptMsg(1, "a", "y"))
	a2.expect(scriptMsg(1, "a", "y"))
	a2.expectEOF()
	ts.waitCount("a", 1)
	a.nc.Close()
	ts.waitCount("a", 0)
	if got, want := ts.list(), []string{"a(1/0)", "m(1/0)"}; !slices.Equal(got, want) {
		t.Errorf("LISTCHANNELS = %q, want %q", got, want)
	}
	ts.ClearHistories()
	if got := ts.list(); len(got) != 0 {
		t.Errorf("LISTCHANNELS after ClearHistories = %q, want none", got)
	}
	if n := ts.count("nosuch"); n != 0 {
		t.Errorf("COUNTSUBSCRIBERS nosuch = %d", n)
	}
	if got := ts.list(); len(got) != 0 {
		t.Errorf("COUNTSUBSCRIBERS created a channel: %q", got)
	}
}

// TestHistoryLimits: MaxMessagesPerChannel and MaxMessageAge.
func TestHistoryLimits(t *testing.T) {
	ts := start(t, func(cfg *config.Config) {
		cfg.MaxMessagesPerChannel = 3
		cfg.MaxMessageAge = 1
	})
	for range 5 {
		ts.publish("c", "m")
	}
	got := ts.get("/push/h/simplepoll/c.h").readAll()
	want := httpHeader + scriptInfo("c", 5) + scriptMsg(3, "c", "m") + scriptMsg(4, "c", "m") + scriptMsg(5, "c", "m")
	if got != want {
		t.Errorf("history trimmed by count:\n got %q\nwant %q", got, want)
	}
	if got := ts.list(); !slices.Equal(got, []string{"c(3/0)"}) {
		t.Errorf("LISTCHANNELS = %q", got)
	}
	// Messages older than a second go, and the channel with them.
	testkit.Eventually(t, "messages to expire", func() bool { return len(ts.list()) == 0 })
	got = ts.get("/push/h/simplepoll/c.h").readAll()
	if want := httpHeader + scriptInfo("c", 0); got != want {
		t.Errorf("history after expiry:\n got %q\nwant %q", got, want)
	}
}

// TestClearHistories is SIGUSR1's effect: stored messages go, subscribers
// stay and keep receiving.
func TestClearHistories(t *testing.T) {
	ts := start(t, nil)
	ts.publish("c", "a")
	ts.publish("d", "b")
	s := ts.get("/push/h/iframe/c")
	s.expect(header(ts.cfg.Mode("iframe"), "200 OK", scriptInfo("c", 1)))
	ts.waitCount("c", 1)
	ts.ClearHistories()
	if got := ts.list(); !slices.Equal(got, []string{"c(0/1)"}) {
		t.Errorf("LISTCHANNELS after clear = %q", got)
	}
	if got := ts.get("/push/p/simplepoll/c.h/d.h").readAll(); got != httpHeader+scriptInfo("c", 0)+scriptInfo("d", 0) {
		t.Errorf("history after clear: %q", got)
	}
	id := ts.publish("c", "after")
	if id != 2 {
		t.Errorf("id after clear = %d, want 2: ids never repeat", id)
	}
	s.expect(scriptMsg(2, "c", "after"))
}

// TestEscaping: text reaches script modes escaped and the flash modes raw.
func TestEscaping(t *testing.T) {
	ts := start(t, nil)
	text := "q\"b\\s</script><!--'&\r\n\u2028\u2029\x00\xff\xfe€"
	js := `q\"b\\s\u003c/script\u003e\u003c!--\'\u0026\r\n\u2028\u2029\u0000\ufffd\ufffd€`
	if _, err := ts.Hub().Publish(context.Background(), engine.Publication{Channel: "c", Text: text}); err != nil {
		t.Fatal(err)
	}
	// Through the controller too: everything after the channel and one
	// space, byte for byte.
	ctlText := `say "</script>" \ 'x'  `
	ts.publish("c", ctlText)
	ctlJS := `say \"\u003c/script\u003e\" \\ \'x\'  `
	got := ts.get("/push/h/simplepoll/c.h").readAll()
	if want := httpHeader + scriptInfo("c", 2) + scriptMsg(1, "c", js) + scriptMsg(2, "c", ctlJS); got != want {
		t.Errorf("js mode:\n got %q\nwant %q", got, want)
	}
	f := ts.get("/push/h/flash/c.h")
	f.expect("CH/c/2\x001/c/" + text + "\x002/c/" + ctlText + "\x00")
	ts.publish("c", "<b>")
	f.expect("3/c/<b>\x00")
}

// TestMaxMessagesBatch: a longpoll subscription whose live messages arrive
// while its backlog is sent still gets whole batches, then closes.
func TestMaxMessagesBatch(t *testing.T) {
	ts := start(t, func(cfg *config.Config) { cfg.Mode("iframe").MaxMessages = 3 })
	c := ts.get("/push/h/iframe/c")
	c.expect(header(ts.cfg.Mode("iframe"), "200 OK", scriptInfo("c", 0)))
	ts.waitCount("c", 1)
	for i := range 3 {
		ts.publish("c", "m")
		c.expect(scriptMsg(uint64(i+1), "c", "m"))
	}
	c.expectEOF()
	ts.waitCount("c", 0)
}

// TestPingsAndMaxTime: pings every PingInterval on persistent connections
// (long-poll ones included), none on polls; MaxTime closes without a
// shutdown message. PingInterval is set below the configuration's floor
// of 3 s, which only the file and command line enforce, to keep the test
// short.
func TestPingsAndMaxTime(t *testing.T) {
	ts := start(t, func(cfg *config.Config) {
		cfg.Mode("iframe").PingInterval = 1
		cfg.Mode("longpoll").PingInterval = 1
		cfg.Mode("xhrinteractive").MaxTime = 1
		cfg.Mode("flash").PingInterval = 1
		cfg.Mode("flash").MaxTime = 4
	})
	ping := "<script>p(-1,\"\");</script>\r\n"
	t0 := time.Now()
	i := ts.get("/push/i/iframe/c")
	i.expect(header(ts.cfg.Mode("iframe"), "200 OK", scriptInfo("c", 0)))
	lp := ts.get("/push/l/longpoll/c")
	lp.expect(httpHeader + scriptInfo("c", 0))
	x := ts.get("/push/x/xhrinteractive/c")
	x.expect(httpHeader + strings.Repeat(".", 1409) + "\r\n" + scriptInfo("c", 0) + "\r\n")
	f := ts.get("/push/f/flash/c")
	f.expect("CH/c/0\x00")
	for range 2 {
		i.expect(ping)
		lp.expect(ping)
		f.expect(".\x00")
	}
	d := time.Since(t0)
	if d < 1500*time.Millisecond || d > 3500*time.Millisecond {
		t.Errorf("two pings after %v, want about 2 s", d)
	}
	// MaxTime: closed with no shutdown message.
	x.expectEOF()
	f.readUntilEOF(t, ".\x00")
	if d := time.Since(t0); d > 5500*time.Millisecond {
		t.Errorf("MaxTime 4 closed after %v", d)
	}
	// A ping is not a message: long-poll is still open.
	ts.waitCount("c", 2)
	ts.publish("c", "m")
	lp.readUntil(t, ping, scriptMsg(1, "c", "m"))
	lp.expectEOF()
	i.readUntil(t, ping, scriptMsg(1, "c", "m"))
}

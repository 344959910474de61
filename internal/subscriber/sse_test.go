package subscriber_test

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/testkit"
)

// TestSSEFraming: the exact bytes of a stream: header, retry hint within
// 20% of SSERetry, the starting cursor, history, a multi-line text split
// at every kind of line end, empty text, a heartbeat and the close event
// at shutdown.
func TestSSEFraming(t *testing.T) {
	ts := mStart(t, func(c *config.Config) {
		c.SSERetry = 1000
		c.HeartbeatInterval = 1
	})
	first := ts.publish("news", "before")
	c := ts.get("/sse/news.h")
	if got, want := c.header(), streamHeader("text/event-stream"); got != want {
		t.Fatalf("header %q, want %q", got, want)
	}
	l := c.line()
	ms, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(l, "retry: "), "\n"))
	if err != nil || ms < 800 || ms > 1200 {
		t.Fatalf("retry line %q, want 800..1200 ms", l)
	}
	c.expect(fmt.Sprintf("id: news:%d"+E+"\n\n", first-1))
	c.expect(fmt.Sprintf("id: news:%d"+E+"\ndata: before\n\n", first))
	ts.waitSubscribers("news", 1)

	id := ts.publish("news", `l1\nl2\r\nl3\r\rl5 "q" <x>`)
	// ADDMESSAGE takes one line; multi-line texts are tested through the
	// encoder (transport tests) and here with what one line can hold.
	c.expect(fmt.Sprintf("id: news:%d"+E+"\ndata: l1\\nl2\\r\\nl3\\r\\rl5 \"q\" <x>\n\n", id))

	// A heartbeat comes within about a second of silence.
	c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	if l := c.event(); l != ": ping\n\n" {
		t.Fatalf("got %q, want a heartbeat", l)
	}
	ts.shutdown()
	var rest string
	for {
		// Heartbeats may still come before the close event.
		if rest = c.event(); rest != ": ping\n\n" {
			break
		}
	}
	if rest != "event: close\ndata: {\"reason\":\"shutdown\",\"code\":1001,\"reconnect\":true}\n\n" {
		t.Fatalf("got %q, want the close event", rest)
	}
	c.eof()
}

// TestSSEMultiLine: text with line breaks, published through the hub,
// becomes one data line per line; ?event=channel names each event after
// its channel.
func TestSSEMultiLine(t *testing.T) {
	ts := mStart(t, nil)
	c := ts.get("/sse/ml?event=channel")
	c.header()
	c.event()
	ts.waitSubscribers("ml", 1)
	ms, err := ts.Hub().Publish(t.Context(), engine.Publication{Channel: "ml", Text: "a\nb\r\nc\rd\n\ne\n"})
	m := ms[0]
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("id: ml:%d"+E+"\nevent: ml\ndata: a\ndata: b\ndata: c\ndata: d\ndata: \ndata: e\ndata: \n\n", m.ID)
	if got := c.event(); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	ms, _ = ts.Hub().Publish(t.Context(), engine.Publication{Channel: "ml", Text: ""})
	m = ms[0]
	if got, want := c.event(), fmt.Sprintf("id: ml:%d"+E+"\nevent: ml\ndata: \n\n", m.ID); got != want {
		t.Fatalf("empty text: got %q, want %q", got, want)
	}
}

// sseEvent is one parsed SSE message event.
type sseEvent struct {
	id, event, data string
}

// next reads events until a message (one with data), skipping comments
// and id-only blocks; it returns the last id seen with it.
func (c *mConn) nextSSE() sseEvent {
	c.t.Helper()
	var ev sseEvent
	for {
		block := c.rawEvent()
		ev.event, ev.data = "", ""
		hasData := false
		for _, l := range strings.Split(strings.TrimSuffix(block, "\n\n"), "\n") {
			switch {
			case strings.HasPrefix(l, "id: "):
				ev.id = l[4:]
			case strings.HasPrefix(l, "event: "):
				ev.event = l[7:]
			case strings.HasPrefix(l, "data: "):
				if hasData {
					ev.data += "\n"
				}
				ev.data += l[6:]
				hasData = true
			}
		}
		if hasData {
			return ev
		}
	}
}

// TestSSEResume: a stream of two channels ends; messages are published on
// both meanwhile; a new stream with the last event id gets exactly those,
// with Last-Event-ID and with ?lastEventId=, and neither an old one again
// nor a gap.
func TestSSEResume(t *testing.T) {
	ts := mStart(t, nil)
	for _, how := range []string{"header", "query"} {
		t.Run(how, func(t *testing.T) {
			a, b := "ra"+how, "rb"+how
			c := ts.get("/sse/" + a + "/" + b)
			c.header()
			ts.waitSubscribers(b, 1)
			var last string
			seen := map[string]bool{}
			for i, ch := range []string{a, b, a} {
				text := fmt.Sprintf("first %d", i)
				id := ts.publish(ch, text)
				ev := c.nextSSE()
				if ev.data != text {
					t.Fatalf("got %+v, want %q", ev, text)
				}
				if !strings.Contains(ev.id, fmt.Sprintf("%s:%d", ch, id)) {
					t.Fatalf("id %q does not hold %s:%d", ev.id, ch, id)
				}
				last = ev.id
				seen[text] = true
			}
			c.nc.Close()
			ts.waitSubscribers(a, 0)
			var want []string
			for i, ch := range []string{b, a, b, a} {
				text := fmt.Sprintf("missed %d", i)
				ts.publish(ch, text)
				want = append(want, text)
			}
			var r *mConn
			if how == "header" {
				r = ts.get("/sse/"+a+"/"+b, "Last-Event-ID: "+last)
			} else {
				r = ts.get("/sse/" + a + "/" + b + "?lastEventId=" + last)
			}
			r.header()
			got := map[string]bool{}
			for range want {
				ev := r.nextSSE()
				if ev.event != "" {
					t.Fatalf("got event %+v, want a message", ev)
				}
				if seen[ev.data] || got[ev.data] {
					t.Fatalf("got %q again", ev.data)
				}
				got[ev.data] = true
			}
			for _, w := range want {
				if !got[w] {
					t.Errorf("missed %q", w)
				}
			}
			// Then live messages go on.
			ts.waitSubscribers(a, 1)
			ts.publish(b, "live")
			if ev := r.nextSSE(); ev.data != "live" {
				t.Fatalf("got %+v, want live", ev)
			}
		})
	}
}

// TestSSEGap: a client that resumes from a position older than what the
// channel still holds is told so before the rest.
func TestSSEGap(t *testing.T) {
	ts := mStart(t, func(c *config.Config) { c.MaxMessagesPerChannel = 2 })
	var ids []uint64
	for i := range 5 {
		ids = append(ids, ts.publish("g", fmt.Sprintf("m%d", i)))
	}
	c := ts.get(fmt.Sprintf("/sse/g/other?since=g:%d", ids[0]))
	c.header()
	c.expect(fmt.Sprintf("id: g:%d"+E+",other:0\n\n", ids[2]))
	c.expect(fmt.Sprintf("event: gap\ndata: {\"channel\":\"g\",\"since\":%d,\"trimmed\":%d,"+EJ+"}\n\n", ids[0], ids[2]))
	c.expect(fmt.Sprintf("id: g:%d"+E+",other:0\ndata: m3\n\n", ids[3]))
	c.expect(fmt.Sprintf("id: g:%d"+E+",other:0\ndata: m4\n\n", ids[4]))
	// The element's .r<N> resumes too; a position still held is no gap.
	r := ts.get(fmt.Sprintf("/sse/g.r%d", ids[3]))
	r.header()
	r.expect(fmt.Sprintf("id: g:%d"+E+"\n\n", ids[2]))
	r.expect(fmt.Sprintf("id: g:%d"+E+"\ndata: m3\n\n", ids[3]))
}

// TestSSEKick: an administrator closing a channel ends the stream with a
// close event that says so.
func TestSSEKick(t *testing.T) {
	ts := mStart(t, nil)
	c := ts.get("/sse/k")
	c.header()
	c.event()
	ts.waitSubscribers("k", 1)
	if n, _ := ts.Hub().Kick(t.Context(), "k"); n != 1 {
		t.Fatalf("Kick: %d clients, want 1", n)
	}
	c.expect("event: close\ndata: {\"reason\":\"channelClose\",\"code\":4000,\"reconnect\":false}\n\n")
	c.eof()
	ts.waitIdle()
}

// TestSSESlowConsumer: a stream that never reads is closed as a slow
// consumer once its queue passes MaxPendingBytes, while another subscriber
// of the channel gets every message.
func TestSSESlowConsumer(t *testing.T) {
	ts := mStart(t, func(c *config.Config) { c.MaxPendingBytes = 64 << 10 })
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		rc.Control(func(fd uintptr) {
			syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return nil
	}}
	slow, err := d.Dial("tcp", ts.SubscriberAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET /sse/slow HTTP/1.1\r\nHost: x\r\n\r\n")
	fast := ts.get("/sse/slow")
	fast.header()
	fast.event()
	ts.waitSubscribers("slow", 2)

	text := strings.Repeat("x", 60000)
	var (
		wg   sync.WaitGroup
		got  int
		rerr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			fast.nc.SetReadDeadline(time.Now().Add(mWait))
			l, err := fast.r.ReadString('\n')
			if err != nil {
				rerr = err
				return
			}
			if l == "data: end\n" {
				return
			}
			if strings.HasPrefix(l, "data: ") {
				if len(l) != len(text)+7 {
					rerr = fmt.Errorf("data line of %d bytes", len(l))
					return
				}
				got++
			}
		}
	}()
	sent := 0
	deadline := time.Now().Add(mWait)
	for ts.Hub().CountSubscribers("slow") == 2 {
		if time.Now().After(deadline) {
			t.Fatal("the slow consumer was never closed")
		}
		ts.publish("slow", text)
		sent++
	}
	ts.publish("slow", "end")
	wg.Wait()
	if rerr != nil {
		t.Fatalf("fast subscriber: %v", rerr)
	}
	if got != sent {
		t.Fatalf("fast subscriber got %d messages, want %d", got, sent)
	}
	testkit.Eventually(t, "the slowConsumer close logged", func() bool {
		return strings.Contains(ts.log.String(), "transport=sse channel=slow") && strings.Contains(ts.log.String(), "reason=slowConsumer")
	})
}

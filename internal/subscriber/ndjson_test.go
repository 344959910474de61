package subscriber_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/config"
)

// TestNDJSONFraming: the exact lines of a stream: subscribed per channel,
// a gap, history, live messages, a heartbeat and the close line at
// shutdown.
func TestNDJSONFraming(t *testing.T) {
	ts := mStart(t, func(c *config.Config) {
		c.MaxMessagesPerChannel = 2
		c.HeartbeatInterval = 1
	})
	var ids []uint64
	for i := range 4 {
		ids = append(ids, ts.publish("n", fmt.Sprintf("m%d", i)))
	}
	c := ts.get(fmt.Sprintf("/ndjson/n/e.b5?since=n:%d", ids[0]))
	if got, want := c.header(), streamHeader("application/x-ndjson"); got != want {
		t.Fatalf("header %q, want %q", got, want)
	}
	c.expect(fmt.Sprintf(`{"type":"subscribed","channel":"n","lastId":%d,`+EJ+`}`+"\n", ids[1]))
	c.expect(`{"type":"subscribed","channel":"e","lastId":0,"epoch":""}` + "\n")
	c.expect(fmt.Sprintf(`{"type":"gap","channel":"n","since":%d,"trimmed":%d,`+EJ+`}`+"\n", ids[0], ids[1]))
	for _, i := range []int{2, 3} {
		l := c.line()
		var m struct {
			Type, Channel, Text string
			ID                  uint64
			Time                int64
		}
		decodeJSON(t, l, &m)
		if m.Type != "message" || m.Channel != "n" || m.ID != ids[i] || m.Text != fmt.Sprintf("m%d", i) {
			t.Fatalf("line %q, want message %d", l, ids[i])
		}
		if d := time.Since(time.UnixMilli(m.Time)); d < 0 || d > time.Minute {
			t.Fatalf("time %d is not the publication time", m.Time)
		}
	}
	ts.waitSubscribers("e", 1)
	id := ts.publish("e", `live "one"`)
	// e had no message when the stream began: its epoch comes first.
	if l := c.line(); l != `{"type":"epoch","channel":"e",`+EJ+`}`+"\n" {
		t.Fatalf("line %q, want the epoch line of e", l)
	}
	l := c.line()
	if want := fmt.Sprintf(`{"type":"message","id":%d,"channel":"e","text":"live \"one\"","time":`, id); len(l) < len(want) || l[:len(want)] != want {
		t.Fatalf("line %q, want %s...", l, want)
	}
	c.nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	if l := c.line(); l != `{"type":"ping"}`+"\n" {
		t.Fatalf("line %q, want a heartbeat", l)
	}
	ts.shutdown()
	for {
		l := c.line()
		if l == `{"type":"ping"}`+"\n" {
			continue
		}
		if l != `{"type":"close","reason":"shutdown","code":1001,"reconnect":true}`+"\n" {
			t.Fatalf("line %q, want the close line", l)
		}
		break
	}
	c.eof()
}

// TestNDJSONKick: a kicked stream ends with a close line that says why.
func TestNDJSONKick(t *testing.T) {
	ts := mStart(t, nil)
	c := ts.get("/ndjson/k")
	c.header()
	c.line()
	ts.waitSubscribers("k", 1)
	ts.Hub().Kick(t.Context(), "k")
	c.expect(`{"type":"close","reason":"channelClose","code":4000,"reconnect":false}` + "\n")
	c.eof()
	ts.waitIdle()
}

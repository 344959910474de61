package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/testkit"
)

// idsIn returns the ids that re's first group finds in s, in order.
func idsIn(re *regexp.Regexp, s string) []uint64 {
	var ids []uint64
	for _, m := range re.FindAllStringSubmatch(s, -1) {
		id, _ := strconv.ParseUint(m[1], 10, 64)
		ids = append(ids, id)
	}
	return ids
}

// streamReader collects what a subscriber connection receives.
type streamReader struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (s *streamReader) add(b []byte) {
	s.mu.Lock()
	s.buf.Write(b)
	s.mu.Unlock()
}

func (s *streamReader) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

// publishBurst publishes n messages to channel as fast as the controller
// answers, one line after the other's reply (so that each is a delivery
// of its own), and returns the ids, and how long the burst took.
func publishBurst(t *testing.T, ts *testServer, channel string, n int) ([]uint64, time.Duration) {
	t.Helper()
	nc, r := ts.controller().Conn()
	nc.SetDeadline(time.Now().Add(wait))
	t0 := time.Now()
	ids := make([]uint64, n)
	for i := range ids {
		if _, err := fmt.Fprintf(nc, "ADDMESSAGE %s m%d\n", channel, i); err != nil {
			t.Fatal(err)
		}
		l, err := r.ReadString('\n')
		id, ok := strings.CutPrefix(strings.TrimSuffix(l, "\r\n"), "OK\t")
		if err != nil || !ok {
			t.Fatalf("reply %d: %q, %v", i, l, err)
		}
		ids[i], _ = strconv.ParseUint(id, 10, 64)
	}
	return ids, time.Since(t0)
}

// TestConflationEveryTransport: on a channel with ConflateInterval, a
// subscriber of each transport (legacy 1.06 streaming, SSE, NDJSON,
// WebSocket, JSON long-poll) receives few of 50 messages published at
// once, the last one with the last id, and the engine keeps all 50; a
// long poll resuming after the burst gets only the newest.
func TestConflationEveryTransport(t *testing.T) {
	const interval = 300 * time.Millisecond
	ts := start(t, func(cfg *config.Config) {
		cfg.ConflateInterval = int(interval / time.Millisecond)
		cfg.MaxMessagesPerChannel = 100
	})
	addr := ts.SubscriberAddr().String()
	type sub struct {
		name string
		re   *regexp.Regexp
		got  *streamReader
	}
	var subs []sub
	var bg sync.WaitGroup
	var conns []io.Closer
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		bg.Wait()
	}()
	stream := func(name, path string, re string) {
		c := ts.get(path)
		s := sub{name, regexp.MustCompile(re), &streamReader{}}
		subs = append(subs, s)
		bg.Go(func() {
			c.nc.SetReadDeadline(time.Now().Add(2 * wait))
			var b [4096]byte
			for {
				n, err := c.nc.Read(b[:])
				s.got.add(b[:n])
				if err != nil {
					return
				}
			}
		})
		conns = append(conns, c.nc)
	}
	stream("legacy", "/push/h1/xhrinteractive/c", `p\((\d+),"c"`)
	stream("sse", "/sse/c", `id: c:(\d+)[^\n]*\ndata:`) // not the starting cursor's
	stream("ndjson", "/ndjson/c", `"type":"message","id":(\d+),"channel":"c"`)
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	conns = append(conns, ws)
	wsSub := sub{"websocket", regexp.MustCompile(`"type":"message","id":(\d+),"channel":"c"`), &streamReader{}}
	subs = append(subs, wsSub)
	if err := ws.WriteMessage(websocket.TextMessage, []byte(`{"op":"subscribe","channel":"c"}`)); err != nil {
		t.Fatal(err)
	}
	bg.Go(func() {
		ws.SetReadDeadline(time.Now().Add(2 * wait))
		for {
			_, b, err := ws.ReadMessage()
			if err != nil {
				return
			}
			wsSub.got.add(append(b, '\n'))
		}
	})
	ts.waitCount("c", 4)
	poll := ts.get("/poll/c?timeout=30")
	testkit.Eventually(t, "the long poll held", func() bool { return ts.Hub().CountSubscribers("c") == 5 })

	ids, took := publishBurst(t, ts, "c", 50)
	last := ids[len(ids)-1]
	most := 2 + int(took/interval)
	for _, s := range subs {
		testkit.Eventually(t, s.name+" receives the last id", func() bool {
			got := idsIn(s.re, s.got.String())
			return len(got) > 0 && got[len(got)-1] == last
		})
		got := idsIn(s.re, s.got.String())
		if len(got) > most {
			t.Errorf("%s received %d of 50 messages published in %v (%v): want at most %d", s.name, len(got), took, got, most)
		}
		for i := 1; i < len(got); i++ {
			if got[i] <= got[i-1] {
				t.Errorf("%s: ids out of order: %v", s.name, got)
			}
		}
	}
	// The long poll was answered by the first message; resuming from its
	// cursor, it gets only the newest of the 49 it missed.
	body := poll.readAll()
	var ans struct {
		Messages []struct{ ID uint64 }
		Cursor   string
	}
	if err := json.Unmarshal([]byte(body[strings.Index(body, "\r\n\r\n")+4:]), &ans); err != nil || len(ans.Messages) != 1 || ans.Messages[0].ID != ids[0] {
		t.Fatalf("first long poll: %q (%v), want message %d", body, err, ids[0])
	}
	body = ts.get("/poll/c?timeout=0&since=" + ans.Cursor).readAll()
	if err := json.Unmarshal([]byte(body[strings.Index(body, "\r\n\r\n")+4:]), &ans); err != nil || len(ans.Messages) != 1 || ans.Messages[0].ID != last {
		t.Errorf("resumed long poll: %q (%v), want only message %d", body, err, last)
	}
	if n := stored(t, ts, "c"); n != 50 {
		t.Errorf("the engine holds %d messages, want all 50", n)
	}
	// An SSE subscriber resuming from the first message gets the newest
	// only.
	c := ts.get("/sse/c?since=c:" + strconv.FormatUint(ids[0], 10))
	br := bufio.NewReader(c.nc)
	c.nc.SetReadDeadline(time.Now().Add(wait))
	var seen []uint64
	var text strings.Builder
	sseMsg := regexp.MustCompile(`id: c:(\d+)[^\n]*\ndata:`)
	for len(seen) == 0 || seen[len(seen)-1] != last {
		l, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("resumed SSE: %v, got %q", err, text.String())
		}
		text.WriteString(l)
		seen = idsIn(sseMsg, text.String())
	}
	if len(seen) != 1 {
		t.Errorf("resumed SSE got %v, want only %d", seen, last)
	}
	if n := testkit.Metric(t, ts.Metrics(), "meteor_conflated_total"); n < 40 {
		t.Errorf("meteor_conflated_total = %v, want most of 50", n)
	}
}

package main

// A restart of meteord with the memory engine loses every stored message.
// These tests kill a real meteord with a signal, start another, and check
// from the outside that a client of every transport, resuming with what it
// last received, gets every message published after the restart, in
// order, once, and is told (gap, reset) where its old messages are gone.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// publishID publishes text to channel through the controller and returns
// the id.
func (p *proc) publishID(channel, text string) uint64 {
	p.t.Helper()
	got := p.ctlCmd("ADDMESSAGE " + channel + " " + text)
	s, ok := strings.CutSuffix(strings.TrimPrefix(got, "OK\t"), "\r\n")
	id, err := strconv.ParseUint(s, 10, 64)
	if !ok || err != nil {
		p.t.Fatalf("ADDMESSAGE %s: %q", channel, got)
	}
	return id
}

// rawGet sends a GET and returns a reader past the response header, which
// must be 200.
func (p *proc) rawGet(path string, header ...string) (*bufio.Reader, net.Conn) {
	p.t.Helper()
	nc, err := net.Dial("tcp", p.sub)
	if err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(wait))
	req := "GET " + path + " HTTP/1.1\r\nHost: x\r\n"
	for _, h := range header {
		req += h + "\r\n"
	}
	io.WriteString(nc, req+"\r\n")
	r := bufio.NewReader(nc)
	status, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(status, "HTTP/1.1 200 ") {
		p.t.Fatalf("GET %s: %q %v", path, status, err)
	}
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			p.t.Fatalf("GET %s header: %v", path, err)
		}
		if l == "\r\n" {
			return r, nc
		}
	}
}

func restartConf(t *testing.T) string {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "meteord.conf")
	if err := os.WriteFile(conf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// before is what clients held when the first process died.
type before struct {
	ids    []uint64 // of the messages published to it
	cursor string   // the SSE id of the last message: demo:<id>@<epoch>
	epoch  string
}

var sseID = regexp.MustCompile(`^id: (demo:(\d+)@([0-9a-z]+))\n$`)

// beforeRestart publishes five messages on p and reads them with SSE, as
// a client that then loses its server would.
func beforeRestart(t *testing.T, p *proc) before {
	t.Helper()
	var b before
	for i := 1; i <= 5; i++ {
		b.ids = append(b.ids, p.publishID("demo", fmt.Sprint("old", i)))
	}
	for i := 1; i < len(b.ids); i++ {
		if b.ids[i] <= b.ids[i-1] {
			t.Fatalf("ids %v do not increase", b.ids)
		}
	}
	r, _ := p.rawGet("/sse/demo.h")
	for {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("SSE: %v", err)
		}
		if m := sseID.FindStringSubmatch(l); m != nil && m[2] == strconv.FormatUint(b.ids[4], 10) {
			b.cursor, b.epoch = m[1], m[3]
			return b
		}
	}
}

// TestRestartEveryTransport: five messages, SIGKILL, a new meteord, three
// new messages; each transport resumes from what it last received.
func TestRestartEveryTransport(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) { testRestart(t, sig) })
	}
}

func testRestart(t *testing.T, sig syscall.Signal) {
	conf := restartConf(t)
	p1 := startProc(t, conf)
	old := beforeRestart(t, p1)
	p1.signal(sig)
	<-p1.exited

	p2 := startProc(t, conf)
	var ids []uint64
	for i := 1; i <= 3; i++ {
		ids = append(ids, p2.publishID("demo", fmt.Sprint("new", i)))
	}
	if ids[0] <= old.ids[4] {
		t.Fatalf("first id after the restart %d is not above the last before it %d: ids were reused", ids[0], old.ids[4])
	}
	last := old.ids[4]

	t.Run("sse", func(t *testing.T) {
		r, _ := p2.rawGet("/sse/demo", "Last-Event-ID: "+old.cursor)
		var events []string
		for len(events) < 5 { // the cursor line, the gap, three messages
			var b strings.Builder
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					t.Fatalf("read: %v after %q", err, events)
				}
				if l == "\n" {
					break
				}
				b.WriteString(l)
			}
			events = append(events, b.String())
		}
		gap := events[1]
		if !strings.HasPrefix(gap, "event: gap\ndata: ") || !strings.Contains(gap, `"reset":true`) ||
			!strings.Contains(gap, fmt.Sprintf(`"since":%d`, last)) || strings.Contains(gap, old.epoch) {
			t.Errorf("gap event %q, want a reset from %d into a new epoch", gap, last)
		}
		for i, id := range ids {
			want := fmt.Sprintf("demo:%d@", id)
			if ev := events[2+i]; !strings.Contains(ev, "id: "+want) || !strings.Contains(ev, fmt.Sprintf("data: new%d\n", i+1)) {
				t.Errorf("event %d = %q, want new%d with id %s...", i, ev, i+1, want)
			}
		}
	})

	t.Run("sse without epoch", func(t *testing.T) {
		// A cursor written by hand, or from before epochs: no gap can be
		// told, but every new message comes.
		r, _ := p2.rawGet(fmt.Sprintf("/sse/demo?since=demo:%d", last))
		var got []string
		for len(got) < 3 {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(l, "event: gap") {
				t.Fatalf("a gap for a position below every new id: %q", l)
			}
			if d, ok := strings.CutPrefix(l, "data: "); ok {
				got = append(got, strings.TrimSpace(d))
			}
		}
		if strings.Join(got, ",") != "new1,new2,new3" {
			t.Errorf("got %v", got)
		}
	})

	t.Run("ndjson", func(t *testing.T) {
		r, _ := p2.rawGet("/ndjson/demo?since=" + old.cursor)
		var lines []map[string]any
		for len(lines) < 5 {
			l, err := r.ReadString('\n')
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			lines = append(lines, m)
		}
		if lines[0]["type"] != "subscribed" || lines[1]["type"] != "gap" || lines[1]["reset"] != true {
			t.Errorf("first lines %v, want subscribed then a reset gap", lines[:2])
		}
		for i, id := range ids {
			m := lines[2+i]
			if m["type"] != "message" || uint64(m["id"].(float64)) != id || m["text"] != fmt.Sprint("new", i+1) {
				t.Errorf("line %d = %v, want message %d", 2+i, m, id)
			}
		}
	})

	t.Run("poll", func(t *testing.T) {
		r, _ := p2.rawGet("/poll/demo?timeout=0&since=" + old.cursor)
		var body struct {
			Messages []struct {
				ID   uint64
				Text string
			}
			Cursor string
			Gaps   []struct {
				Since uint64
				Reset bool
				Epoch string
			}
		}
		if err := json.NewDecoder(r).Decode(&body); err != nil {
			t.Fatal(err)
		}
		if len(body.Gaps) != 1 || !body.Gaps[0].Reset || body.Gaps[0].Since != last || body.Gaps[0].Epoch == old.epoch {
			t.Errorf("gaps %+v, want one reset from %d", body.Gaps, last)
		}
		if len(body.Messages) != 3 || body.Messages[0].ID != ids[0] || body.Messages[2].ID != ids[2] {
			t.Errorf("messages %+v, want %v", body.Messages, ids)
		}
		if want := fmt.Sprintf("demo:%d@%s", ids[2], body.Gaps[0].Epoch); body.Cursor != want {
			t.Errorf("cursor %q, want %q", body.Cursor, want)
		}
	})

	t.Run("websocket", func(t *testing.T) {
		ws, _, err := websocket.DefaultDialer.Dial("ws://"+p2.sub+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		ws.SetReadDeadline(time.Now().Add(wait))
		ws.WriteMessage(websocket.TextMessage, fmt.Appendf(nil, `{"op":"subscribe","channel":"demo","since":%d,"epoch":"%s"}`, last, old.epoch))
		var got []map[string]any
		for len(got) < 5 {
			_, b, err := ws.ReadMessage()
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			json.Unmarshal(b, &m)
			got = append(got, m)
		}
		if got[0]["type"] != "subscribed" || got[1]["type"] != "gap" || got[1]["reset"] != true {
			t.Errorf("first frames %v, want subscribed then a reset gap", got[:2])
		}
		for i, id := range ids {
			if m := got[2+i]; m["type"] != "message" || uint64(m["id"].(float64)) != id {
				t.Errorf("frame %d = %v, want message %d", 2+i, m, id)
			}
		}
	})

	t.Run("legacy", func(t *testing.T) {
		// A 1.06 page resumes with .r<last id + 1> and has no gap signal:
		// it must still get every new message, once.
		for _, mode := range []string{"xhrinteractive", "longpoll", "simplepoll"} {
			r, nc := p2.rawGet(fmt.Sprintf("/push/h%s/%s/demo.r%d", mode, mode, last+1))
			var got []string
			msg := regexp.MustCompile(`p\((\d+),"demo","([^"]*)"\)`)
			buf := make([]byte, 4096)
			var all string
			for len(got) < 3 {
				n, err := r.Read(buf)
				all += string(buf[:n])
				got = got[:0]
				for _, m := range msg.FindAllStringSubmatch(all, -1) {
					got = append(got, m[1]+":"+m[2])
				}
				if err != nil {
					break
				}
			}
			nc.Close()
			want := fmt.Sprintf("%d:new1,%d:new2,%d:new3", ids[0], ids[1], ids[2])
			if strings.Join(got, ",") != want {
				t.Errorf("%s: got %v, want %s", mode, got, want)
			}
		}
	})
}

package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestGripOrigin: the origin holds streams with the GRIP headers Pushpin
// needs, and subscribes WebSocket-over-HTTP connections at OPEN.
func TestGripOrigin(t *testing.T) {
	o := &gripOrigin{}
	srv := httptest.NewServer(o)
	defer srv.Close()
	for path, ctype := range map[string]string{"/sub/stream/c1": "text/plain", "/sub/sse/c1": "text/event-stream"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("Grip-Hold") != "stream" || resp.Header.Get("Grip-Channel") != "c1" ||
			resp.Header.Get("Content-Type") != ctype {
			t.Errorf("%s: %s %v", path, resp.Status, resp.Header)
		}
	}
	resp, err := http.Post(srv.URL+"/sub/ws/c2", "application/websocket-events", strings.NewReader("OPEN\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sub := `c:{"type":"subscribe","channel":"c2"}`
	if want := "OPEN\r\nTEXT 25\r\n" + sub + "\r\n"; string(body) != want || len(sub) != 0x25 ||
		resp.Header.Get("Content-Type") != "application/websocket-events" || !strings.HasPrefix(resp.Header.Get("Sec-WebSocket-Extensions"), "grip") {
		t.Errorf("OPEN: %q %v; want %q", body, resp.Header, want)
	}
	resp, err = http.Get(srv.URL + "/elsewhere")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 || o.holds.Load() != 2 || o.opens.Load() != 1 || o.other.Load() != 1 {
		t.Errorf("%s; holds %d opens %d other %d", resp.Status, o.holds.Load(), o.opens.Load(), o.other.Load())
	}
}

// TestPushpinItems: the publish body carries the message in the format
// the transport's subscribers read.
func TestPushpinItems(t *testing.T) {
	for tr, want := range map[string]string{
		transportStream: `{"http-stream":{"content":"s=1 x\n"}}`,
		transportSSE:    `{"http-stream":{"content":"data: s=1 x\n\n"}}`,
		transportWS:     `{"ws-message":{"content":"s=1 x"}}`,
	} {
		var v struct {
			Items []struct {
				Channel string          `json:"channel"`
				Formats json.RawMessage `json:"formats"`
			} `json:"items"`
		}
		if err := json.Unmarshal([]byte(pushpinItems(tr, "ch", "s=1 x")), &v); err != nil || len(v.Items) != 1 ||
			v.Items[0].Channel != "ch" || string(v.Items[0].Formats) != want {
			t.Errorf("%s: %+v %v; want formats %s", tr, v, err, want)
		}
	}
}

// TestPushpinCounter: only established connections whose local end is
// Pushpin's listener count, not the clients' ends nor other states.
func TestPushpinCounter(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:125A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:125A 0200007F:9C41 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
   2: 0200007F:9C41 0100007F:125A 01 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:125A 0300007F:9C42 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0000000000000000 20 4 30 10 -1
   4: 0100007F:125A 0400007F:9C43 06 00000000:00000000 00:00000000 00000000     0        0 0 3 0000000000000000
   5: 0100007F:125B 0400007F:9C44 01 00000000:00000000 00:00000000 00000000     0        0 5 1 0000000000000000 20 4 30 10 -1
`
	c, err := newPushpinCounter("127.0.0.1:4698") // 0x125A
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.count(strings.NewReader(table)); n != 2 || err != nil {
		t.Fatalf("count %d, %v; want 2", n, err)
	}
	c, _ = newPushpinCounter("0.0.0.0:4698")
	if n, err := c.count(strings.NewReader(table)); n != 2 || err != nil {
		t.Fatalf("any address: count %d, %v; want 2", n, err)
	}
	// The real table: at least it reads.
	c, _ = newPushpinCounter("127.0.0.1:1")
	if _, err := c.Count("x"); err != nil {
		t.Fatal(err)
	}
}

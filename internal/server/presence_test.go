package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/memory"
)

// subscribersPage is the body of GET /api/channels/{channel}/subscribers.
type subscribersPage struct {
	Channel     string `json:"channel"`
	Count       int    `json:"count"`
	Subscribers []struct {
		ID        string `json:"id"`
		Node      string `json:"node"`
		Transport string `json:"transport"`
		Since     int64  `json:"since"`
	} `json:"subscribers"`
	Next string `json:"next"`
}

// apiGet GETs path from the API and returns the status and the body.
func (ts *testServer) apiGet(path string) (int, []byte) {
	ts.t.Helper()
	resp, err := http.Get("http://" + ts.AdminAddr().String() + path)
	if err != nil {
		ts.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		ts.t.Fatal(err)
	}
	return resp.StatusCode, body
}

// TestAPISubscribers: the API lists a channel's subscribers of every
// transport in pages, with the count COUNTSUBSCRIBERS gives.
func TestAPISubscribers(t *testing.T) {
	ts := start(t, nil)
	before := time.Now().Add(-time.Second).UnixMilli()
	// One after the other, so that they are listed in this order.
	ts.get("/push/host1/xhrinteractive/c")
	ts.waitCount("c", 1)
	ts.get("/sse/c")
	ts.waitCount("c", 2)
	ts.get("/ndjson/c")
	ts.waitCount("c", 3)

	var ids, transports []string
	cursor, pages := "", 0
	for {
		status, body := ts.apiGet("/api/channels/c/subscribers?limit=2&cursor=" + url.QueryEscape(cursor))
		var p subscribersPage
		if err := json.Unmarshal(body, &p); status != 200 || err != nil {
			t.Fatalf("page %d: %d %s", pages, status, body)
		}
		pages++
		if p.Channel != "c" || p.Count != 3 || len(p.Subscribers) > 2 {
			t.Errorf("page %d: %s", pages, body)
		}
		for _, s := range p.Subscribers {
			if s.Node == "" || s.Since < before || s.Since > time.Now().UnixMilli() {
				t.Errorf("subscriber %+v: want a node and since about now", s)
			}
			ids = append(ids, s.ID)
			transports = append(transports, s.Transport)
		}
		if p.Next == "" {
			break
		}
		if pages > 3 {
			t.Fatalf("more than 3 pages of 2 for 3 subscribers: %s", body)
		}
		cursor = p.Next
	}
	if pages != 2 {
		t.Errorf("3 subscribers came in %d pages of 2", pages)
	}
	// Oldest first: the order they joined in.
	if !slices.Equal(transports, []string{"legacy", "sse", "ndjson"}) || ids[0] != "host1" ||
		!strings.HasPrefix(ids[1], "conn-") || !strings.HasPrefix(ids[2], "conn-") || ids[1] == ids[2] {
		t.Errorf("listed ids %v, transports %v", ids, transports)
	}

	// The channel list counts them too.
	status, body := ts.apiGet("/api/channels")
	if status != 200 || !strings.Contains(string(body), `"name":"c","messages":0,"subscribers":3`) {
		t.Errorf("GET /api/channels: %d %s", status, body)
	}
	// A channel nobody listens to: none, and no error.
	status, body = ts.apiGet("/api/channels/nobody/subscribers")
	if status != 200 || string(body) != `{"channel":"nobody","count":0,"subscribers":[],"next":""}`+"\n" {
		t.Errorf("an empty channel: %d %q", status, body)
	}
	for _, path := range []string{
		"/api/channels/c/subscribers?cursor=bogus",
		"/api/channels/c/subscribers?limit=0",
		"/api/channels/c/subscribers?limit=1001",
		"/api/channels/c%7B/subscribers",
	} {
		if status, body := ts.apiGet(path); status != 400 || !strings.Contains(string(body), `"error"`) {
			t.Errorf("GET %s: %d %s, want 400 with an error", path, status, body)
		}
	}
}

// otherNodes is a memory engine whose store holds the counts of other
// nodes, as a shared store does.
type otherNodes struct {
	*memory.Engine
	mu     sync.Mutex
	others map[string]int // guarded by mu
}

func (e *otherNodes) OtherCounts(_ context.Context, channels ...string) ([]int, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]int, len(channels))
	for i, ch := range channels {
		out[i] = e.others[ch]
	}
	return out, nil
}

func (e *otherNodes) set(channel string, n int) {
	e.mu.Lock()
	e.others[channel] = n
	e.mu.Unlock()
}

// TestClusterCounts: the subscribers that other nodes reported count in
// COUNTSUBSCRIBERS, LISTCHANNELS, ~subscriberCount~ and the API's channel
// list, besides this node's own.
func TestClusterCounts(t *testing.T) {
	m := memory.New(engine.Limits{MaxMessages: 10})
	m.SetDenseIDs()
	eng := &otherNodes{Engine: m, others: map[string]int{"c": 5}}
	ts := startOn(t, eng, func(cfg *config.Config) {
		mode := *cfg.Mode("longpoll")
		mode.Name = "custom"
		mode.Persist = true
		mode.HeaderTemplate = "~channelinfo~\n"
		mode.ChannelInfoTemplate = "[~name~ ~subscriberCount~]"
		cfg.Modes["custom"] = &mode
	})
	ts.publish("c", "a")
	if n := ts.count("c"); n != 5 {
		t.Errorf("COUNTSUBSCRIBERS = %d, want the other nodes' 5", n)
	}
	sub := ts.get("/push/h/custom/c")
	sub.expect("[c 5]\n") // the 5 others; not itself
	ts.waitCount("c", 6)
	if got := ts.list(); !slices.Equal(got, []string{"c(1/6)"}) {
		t.Errorf("LISTCHANNELS = %q, want c(1/6)", got)
	}
	if status, body := ts.apiGet("/api/channels"); status != 200 || !strings.Contains(string(body), `"name":"c","messages":1,"subscribers":6`) {
		t.Errorf("GET /api/channels: %d %s", status, body)
	}
	// The others' count changes: seen once the hub's cache (1 s) expired.
	eng.set("c", 2)
	ts.waitCount("c", 3)
	status, body := ts.apiGet("/api/channels/c/subscribers")
	var p subscribersPage
	if err := json.Unmarshal(body, &p); status != 200 || err != nil || p.Count != 3 || len(p.Subscribers) != 1 {
		t.Errorf("GET /api/channels/c/subscribers: %d %s; want count 3 and this node's one", status, body)
	}
}

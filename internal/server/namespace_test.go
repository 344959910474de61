package server

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/memory"
	"github.com/meteorpush/meteor/internal/testkit"
)

// loadConfig loads text as the configuration file, with the test
// configuration's listeners and modes (loopback, no pings).
func loadConfig(t *testing.T, text string) *config.Config {
	t.Helper()
	path := filepath.Join(t.TempDir(), "meteord.conf")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _, err := config.Load([]string{"-ConfigFileLocation", path}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tc := testConfig()
	c.SubscriberIP, c.SubscriberPort = tc.SubscriberIP, tc.SubscriberPort
	c.ControllerIP, c.ControllerPort = tc.ControllerIP, tc.ControllerPort
	c.AdminIP, c.AdminPort = tc.AdminIP, tc.AdminPort
	c.SubscriberDocumentRoot, c.HeartbeatInterval = "", 0
	c.Default, c.Modes = tc.Default, tc.Modes
	return c
}

// stored returns the ids channel's history holds.
func (ts *testServer) stored(channel string) int {
	ts.t.Helper()
	hs, err := ts.eng.History(context.Background(), engine.HistoryRequest{Channel: channel, Query: engine.Query{Kind: engine.QueryAll}})
	if err != nil {
		ts.t.Fatal(err)
	}
	return len(hs[0].Messages)
}

// listed returns the API's count and list of channel's subscribers.
func (ts *testServer) listed(channel string) (int, int) {
	ts.t.Helper()
	status, body := ts.apiGet("/api/channels/" + channel + "/subscribers")
	var p subscribersPage
	if err := json.Unmarshal(body, &p); status != 200 || err != nil {
		ts.t.Fatalf("subscribers of %s: %d %s", channel, status, body)
	}
	return p.Count, len(p.Subscribers)
}

// TestNamespaces: a namespace's history limit and Presence 0 apply to its
// channels only, and a reload swaps them.
func TestNamespaces(t *testing.T) {
	const file = "MaxMessagesPerChannel 10\n[namespace short_*]\nMaxMessagesPerChannel 2\n[namespace secret]\nPresence 0\n"
	cfg := loadConfig(t, file)
	eng := memory.New(engineLimits(cfg))
	ts := startOn(t, eng, func(c *config.Config) { *c = *cfg })
	for i := range 5 {
		ts.publish("short_a", strconv.Itoa(i))
		ts.publish("long", strconv.Itoa(i))
	}
	if n, m := ts.stored("short_a"), ts.stored("long"); n != 2 || m != 5 {
		t.Errorf("stored %d of short_a (want its namespace's 2), %d of long (want 5)", n, m)
	}
	ts.get("/sse/secret")
	ts.get("/sse/open")
	ts.waitCount("secret", 1)
	ts.waitCount("open", 1)
	if count, n := ts.listed("secret"); count != 1 || n != 0 {
		t.Errorf("secret, Presence 0: count %d, %d listed; want 1 counted, none listed", count, n)
	}
	if count, n := ts.listed("open"); count != 1 || n != 1 {
		t.Errorf("open: count %d, %d listed; want 1, 1", count, n)
	}

	next := loadConfig(t, "MaxMessagesPerChannel 10\n[namespace short_*]\nMaxMessagesPerChannel 3\n")
	if err := ts.Reload(next); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		ts.publish("short_a", strconv.Itoa(i))
	}
	if n := ts.stored("short_a"); n != 3 {
		t.Errorf("after the reload, short_a keeps %d, want 3", n)
	}
	if count, n := ts.listed("secret"); count != 1 || n != 1 {
		t.Errorf("after the reload turned presence on, secret: count %d, %d listed", count, n)
	}
}

// TestNamespacePolicy: a namespace's MaxMessageBytes, PublishRate and
// ConflateInterval apply to its channels only (policyFor).
func TestNamespacePolicy(t *testing.T) {
	const file = "MaxMessageBytes 100\n[namespace small_*]\nMaxMessageBytes 10\n[namespace slow_*]\nPublishRate 1\nPublishBurst 2\n[namespace big]\nMaxMessageBytes 1000\n[namespace fast_*]\nConflateInterval 500\n"
	cfg := loadConfig(t, file)
	ts := startOn(t, memory.New(engineLimits(cfg)), func(c *config.Config) { *c = *cfg })
	nc, r := ts.controller().Conn()
	nc.SetDeadline(time.Now().Add(wait))
	long := strings.Repeat("x", 50)
	huge := strings.Repeat("y", 500)
	io.WriteString(nc, "ADDMESSAGE small_a "+long+"\nADDMESSAGE other "+long+"\nADDMESSAGE slow_a 1\nADDMESSAGE slow_a 2\nADDMESSAGE slow_a 3\nADDMESSAGE fast 3\nADDMESSAGE big "+huge+"\nADDMESSAGE other "+huge+"\n")
	want := []string{"ERR too large", "OK", "OK", "OK", "ERR rate", "OK", "OK", "ERR too large"}
	for i, w := range want {
		l, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(l, w) {
			t.Errorf("reply %d: %q, %v; want %s...", i, l, err, w)
		}
	}
	// Conflation on fast_* only: of a burst, a subscriber of fast_a gets
	// few, one of plain every one.
	read := func(path string) *streamReader {
		c := ts.get(path)
		got := &streamReader{}
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.nc.SetReadDeadline(time.Now().Add(2 * wait))
			var b [4096]byte
			for {
				n, err := c.nc.Read(b[:])
				got.add(b[:n])
				if err != nil {
					return
				}
			}
		}()
		t.Cleanup(func() { c.nc.Close(); <-done })
		return got
	}
	fast, plain := read("/ndjson/fast_a"), read("/ndjson/plain")
	ts.waitCount("fast_a", 1)
	ts.waitCount("plain", 1)
	ids, _ := publishBurst(t, ts, "fast_a", 20)
	publishBurst(t, ts, "plain", 20)
	last := strconv.FormatUint(ids[len(ids)-1], 10)
	var fastBody string
	testkit.Eventually(t, "the last message of each burst", func() bool {
		fastBody = fast.String()
		return strings.Contains(fastBody, `"id":`+last+`,`) && strings.Count(plain.String(), `"type":"message"`) == 20
	})
	if n := strings.Count(fastBody, `"type":"message"`); n > 5 {
		t.Errorf("fast_a, ConflateInterval 500: %d of 20 delivered", n)
	}
}

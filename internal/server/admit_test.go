package server

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/testkit"
)

// publishRefused returns meteor_publish_refused_total{reason}, 0 when it
// has no series yet.
func publishRefused(t *testing.T, ts *testServer, reason string) float64 {
	t.Helper()
	return testkit.Metric(t, ts.Metrics(), "meteor_publish_refused_total", "reason", reason)
}

// stored returns the number of messages channel holds.
func stored(t *testing.T, ts *testServer, channel string) int {
	t.Helper()
	hs, err := ts.Engine().History(t.Context(), engine.HistoryRequest{Channel: channel, Query: engine.Query{Kind: engine.QueryAll}})
	if err != nil {
		t.Fatal(err)
	}
	return len(hs[0].Messages)
}

// TestPublishAdmission: MaxMessageBytes, PublishRate and PublishBurst
// reach the controller (an ERR line naming the reason, for that line
// alone among pipelined ones), UDP (dropped, logged) and the API (413, 429
// with Retry-After, a JSON reason); refusals are counted; a reload's
// settings apply at once.
func TestPublishAdmission(t *testing.T) {
	ts := start(t, func(cfg *config.Config) {
		cfg.AdminAPI = true
		cfg.UDPPort = freeUDPPort(t)
		cfg.MaxMessageBytes = 10
		cfg.PublishRate = 1
		cfg.PublishBurst = 3
	})

	// Controller: seven lines in one write, answered line by line.
	nc, r := ts.controller().Conn()
	nc.SetDeadline(time.Now().Add(wait))
	io.WriteString(nc, "ADDMESSAGE a 1\nADDMESSAGE a 2\nADDMESSAGE a 0123456789x\nADDMESSAGE a 3\nADDMESSAGE a 4\nADDMESSAGE b 1\nCOUNTSUBSCRIBERS a\n")
	var got []string
	for range 7 {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reply: %v after %q", err, got)
		}
		got = append(got, strings.TrimSuffix(l, "\r\n"))
	}
	want := []string{"OK\t1", "OK\t2", "ERR too large: message is 11 bytes, the limit is 10", "OK\t3", "ERR rate: ", "OK\t1", "OK 0"}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) {
			t.Errorf("reply %d = %q, want %q...", i, got[i], want[i])
		}
	}
	if !strings.Contains(got[4], "channel a") {
		t.Errorf("rate refusal %q does not name the channel", got[4])
	}
	if n := stored(t, ts, "a"); n != 3 {
		t.Errorf("channel a holds %d messages, want 3", n)
	}
	if a, b := publishRefused(t, ts, "too large"), publishRefused(t, ts, "rate"); a != 1 || b != 1 {
		t.Errorf("refused: too large %v, rate %v; want 1 and 1", a, b)
	}

	// UDP: channel a's bucket is empty; b has two tokens.
	uc, err := net.Dial("udp", ts.UDPAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	uc.Write([]byte("ADDMESSAGE a udp\n"))
	testkit.Eventually(t, "the UDP refusal logged", func() bool {
		return strings.Contains(ts.log.String(), "udp datagram refused") && strings.Contains(ts.log.String(), `reason=rate`)
	})
	if n := stored(t, ts, "a"); n != 3 {
		t.Errorf("channel a holds %d messages after a refused datagram, want 3", n)
	}

	// API.
	api := "http://" + ts.AdminAddr().String()
	post := func(path, ctype, body string) (*http.Response, map[string]any) {
		t.Helper()
		resp, err := http.Post(api+path, ctype, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	resp, m := post("/api/channels/a/messages", "text/plain", "x")
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" || m["reason"] != "rate" {
		t.Errorf("past the rate: %d Retry-After %q %v; want 429, a Retry-After, reason rate", resp.StatusCode, resp.Header.Get("Retry-After"), m)
	}
	resp, m = post("/api/channels/c/messages", "text/plain", "0123456789x")
	if resp.StatusCode != 413 || m["reason"] != "too large" || m["error"] != "message is 11 bytes, the limit is 10" {
		t.Errorf("too large: %d %v; want 413, reason too large", resp.StatusCode, m)
	}
	// A batch past channel d's burst: the first three published, named.
	resp, m = post("/api/publish", "application/json", `{"messages":[{"channel":"d","text":"1"},{"channel":"d","text":"2"},{"channel":"d","text":"3"},{"channel":"d","text":"4"}]}`)
	if resp.StatusCode != 429 || m["published"] != 3.0 || !strings.HasPrefix(m["error"].(string), "messages[3]: ") {
		t.Errorf("batch past the rate: %d %v; want 429, 3 published, messages[3]", resp.StatusCode, m)
	}
	// A batch with a message too large publishes nothing.
	resp, m = post("/api/publish", "application/json", `{"messages":[{"channel":"e","text":"1"},{"channel":"e","text":"0123456789x"}]}`)
	if resp.StatusCode != 413 || m["reason"] != "too large" || stored(t, ts, "e") != 0 {
		t.Errorf("batch too large: %d %v, %d stored; want 413, nothing stored", resp.StatusCode, m, stored(t, ts, "e"))
	}

	// A reload lifts the limits.
	cfg := *ts.cfg
	cfg.PublishRate, cfg.MaxMessageBytes = 0, 100
	if err := ts.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		ts.publish("a", "0123456789x")
	}
	resp, _ = post("/api/channels/a/messages", "text/plain", "0123456789x")
	if resp.StatusCode != 201 {
		t.Errorf("after the reload: %d, want 201", resp.StatusCode)
	}
}

package main

// Two meteord processes on one real redis-server are two nodes of one
// cluster. These tests publish on one and subscribe on the other, kill a
// node while its clients are connected and resume them on the other, take
// a hostid over across nodes, and take Redis away under them.

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/testkit"
)

// clusterConf writes a configuration for the nodes: a legacy mode whose
// templates are easy to read, persistent.
func clusterConf(t *testing.T) string {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "meteord.conf")
	body := "PingInterval 0\nShutdownTimeout 3\n\n[plain]\nPersist 1\nHeaderTemplate H\\n\nChannelInfoTemplate \nMessageTemplate ~id~:~text~\\n\nSubscriberShutdownMsg bye\\n\n"
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return conf
}

// startNode starts a meteord that is node name of the cluster on r.
func startNode(t *testing.T, r *testkit.Redis, conf, prefix, name string) *proc {
	t.Helper()
	p := startProc(t, conf, "-Engine", "redis", "-RedisURL", r.URL(), "-RedisPrefix", prefix, "-NodeID", name, "-RedisTimeout", "1000")
	return p
}

// readLine reads one line of a subscriber's stream.
func readLine(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	l, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v (after %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// sseData reads SSE events until n data lines were read, and returns
// them and the last id.
func sseData(t *testing.T, r *bufio.Reader, n int) ([]string, string) {
	t.Helper()
	var data []string
	var id string
	for len(data) < n {
		l := readLine(t, r)
		if v, ok := strings.CutPrefix(l, "data: "); ok {
			data = append(data, v)
		} else if v, ok := strings.CutPrefix(l, "id: "); ok {
			id = v
		} else if strings.HasPrefix(l, "event: gap") {
			t.Fatalf("a gap where nothing was lost: %q", l)
		}
	}
	return data, id
}

// TestClusterPublishAnywhere: a message published on either node reaches
// the subscribers of both, in one order, with ids that grow across nodes;
// every node lists the channel.
func TestClusterPublishAnywhere(t *testing.T) {
	r := testkit.StartRedis(t)
	conf := clusterConf(t)
	a := startNode(t, r, conf, "c1", "a")
	b := startNode(t, r, conf, "c1", "b")

	sseB, _ := b.rawGet("/sse/news")
	legacyA := a.subscribe("/push/h1/plain/news")
	legacyA.expect("H\n")
	// A subscriber's response header comes once its subscription is in
	// place (a failing store gets a 503 instead).
	var ids []uint64
	ids = append(ids, a.publishID("news", "from-a"))
	ids = append(ids, b.publishID("news", "from-b"))
	if ids[1] <= ids[0] {
		t.Fatalf("ids %v do not grow across nodes", ids)
	}
	data, _ := sseData(t, sseB, 2)
	if strings.Join(data, ",") != "from-a,from-b" {
		t.Errorf("SSE on b got %v", data)
	}
	legacyA.expect(fmt.Sprintf("%d:from-a\n%d:from-b\n", ids[0], ids[1]))

	for _, p := range []*proc{a, b} {
		if got := p.ctlCmd("LISTCHANNELS"); !strings.Contains(got, "news") {
			t.Errorf("LISTCHANNELS on %s: %q", p.sub, got)
		}
	}
}

// TestClusterNodeKilled: SIGKILL a node while an SSE client and a 1.06
// client are connected to it; messages go on being published on the
// other node; both clients resume there from what they last received and
// get every message, in order, once.
func TestClusterNodeKilled(t *testing.T) {
	r := testkit.StartRedis(t)
	conf := clusterConf(t)
	a := startNode(t, r, conf, "c2", "a")
	b := startNode(t, r, conf, "c2", "b")

	sse, _ := a.rawGet("/sse/demo")
	legacy := a.subscribe("/push/h2/plain/demo")
	legacy.expect("H\n")
	first := a.publishID("demo", "one")
	_, cursor := sseData(t, sse, 1)
	legacy.expect(fmt.Sprintf("%d:one\n", first))

	a.signal(syscall.SIGKILL)
	<-a.exited
	var ids []uint64
	for i := 2; i <= 4; i++ {
		ids = append(ids, b.publishID("demo", strconv.Itoa(i)))
	}

	r2, _ := b.rawGet("/sse/demo", "Last-Event-ID: "+cursor)
	data, _ := sseData(t, r2, 3)
	if strings.Join(data, ",") != "2,3,4" {
		t.Errorf("SSE resumed on b got %v, want 2,3,4", data)
	}
	l2 := b.subscribe(fmt.Sprintf("/push/h2/plain/demo.r%d", first+1))
	l2.expect(fmt.Sprintf("H\n%d:2\n%d:3\n%d:4\n", ids[0], ids[1], ids[2]))
}

// TestClusterHostIDTakeOver: a persistent subscription with a hostid held
// on node a is closed (newSubscriberWithSameID) when the same hostid
// subscribes on node b; /disconnect/<hostid> on a closes it on b.
func TestClusterHostIDTakeOver(t *testing.T) {
	r := testkit.StartRedis(t)
	conf := clusterConf(t)
	a := startNode(t, r, conf, "c3", "a")
	b := startNode(t, r, conf, "c3", "b")

	old := a.subscribe("/push/same/plain/x")
	old.expect("H\n")
	renewed := b.subscribe("/push/same/plain/x")
	renewed.expect("H\n")
	old.expect("bye\n")
	old.expectEOF()

	resp, err := http.Get("http://" + a.sub + "/disconnect/same")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	renewed.expect("bye\n")
	renewed.expectEOF()
}

// TestClusterRedisDown: with Redis gone, a publish gets an error at once,
// /readyz says not ready, and subscribers keep their connections; once
// Redis is back they get what is published, and the node is ready again.
func TestClusterRedisDown(t *testing.T) {
	r := testkit.StartRedis(t)
	conf := clusterConf(t)
	a := startNode(t, r, conf, "c4", "a")
	sse, nc := a.rawGet("/sse/live")
	a.publishID("live", "before")
	_, cursor := sseData(t, sse, 1)

	ready := func() int {
		resp, err := http.Get("http://" + a.api + "/readyz")
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// Each pub/sub connection subscribes on its own goroutine after start.
	testkit.EventuallyWithin(t, wait, "/readyz 200 with Redis up", func() bool { return ready() == 200 })
	r.Stop()
	start := time.Now()
	if got := a.ctlCmd("ADDMESSAGE live during"); got != "ERR store unavailable\r\n" {
		t.Errorf("ADDMESSAGE with Redis down: %q", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the publish error took %v", d)
	}
	testkit.EventuallyWithin(t, wait, "/readyz says not ready", func() bool { return ready() == 503 })

	r.Restart()
	testkit.EventuallyWithin(t, 20*time.Second, "/readyz ready again", func() bool { return ready() == 200 })
	// Redis came back empty: the stream the subscriber was in is gone.
	// Its connection is closed with streamReset (a reason to reconnect);
	// resuming, it is told of the gap, then gets what is new.
	nc.SetDeadline(time.Now().Add(wait))
	for l := readLine(t, sse); !strings.Contains(l, `"reason":"streamReset"`); l = readLine(t, sse) {
		if strings.HasPrefix(l, "data: ") {
			t.Fatalf("before the reset the subscriber got %q", l)
		}
	}
	again, _ := a.rawGet("/sse/live", "Last-Event-ID: "+cursor)
	a.publishID("live", "after")
	var gap bool
	for {
		l := readLine(t, again)
		if strings.HasPrefix(l, "event: gap") {
			gap = true
		}
		if l == "data: after" {
			break
		}
	}
	if !gap {
		t.Errorf("Redis restarted empty, yet the subscriber was not told of a gap")
	}
	// The repairs are counted.
	resp, err := http.Get("http://" + a.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"meteor_redis_reconnects_total ", "meteor_redis_resets_total ", `meteor_redis_catchups_total{cause="reconnect"} `} {
		i := strings.Index(string(body), "\n"+want)
		if i < 0 || strings.HasPrefix(string(body)[i+1+len(want):], "0\n") {
			t.Errorf("/metrics: %s missing or 0", want)
		}
	}
}

// TestClusterCloseChannel: the API's close of a channel, on one node,
// closes its subscribers on every node.
func TestClusterCloseChannel(t *testing.T) {
	r := testkit.StartRedis(t)
	conf := clusterConf(t)
	a := startNode(t, r, conf, "c5", "a")
	b := startNode(t, r, conf, "c5", "b")
	onB := b.subscribe("/push/h5/plain/room")
	onB.expect("H\n")
	id := a.publishID("room", "hello")
	onB.expect(fmt.Sprintf("%d:hello\n", id))
	resp, err := http.Post("http://"+a.api+"/api/channels/room/close", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("close: %s", resp.Status)
	}
	onB.expect("bye\n")
	onB.expectEOF()
}

// TestReusePortRestart: two processes share the subscriber and controller
// ports (ReusePort 1), each a node on one Redis, each with its own API
// port. The kernel spreads new connections over both. TERM on one closes
// its listeners and drains its subscribers (reason restart); they resume
// on the same port, which now reaches the other process only, and no
// message published meanwhile is lost or repeated.
func TestReusePortRestart(t *testing.T) {
	r := testkit.StartRedis(t)
	conf := clusterConf(t)
	subPort, ctlPort := testkit.FreeLowPort(t), testkit.FreeLowPort(t)
	node := func(name string) *proc {
		return startProcPorts(t, nil, conf, subPort, ctlPort, freePort(t),
			"-Engine", "redis", "-RedisURL", r.URL(), "-RedisPrefix", "rp", "-NodeID", name,
			"-ReusePort", "1", "-DrainTime", "1")
	}
	a, b := node("a"), node("b")

	// Enough SSE subscribers that both processes get some.
	type client struct {
		r      *bufio.Reader
		last   string
		got    []string
		closed bool
	}
	var clients []*client
	for range 16 {
		rd, _ := a.rawGet("/sse/rp") // a.sub is the shared port
		clients = append(clients, &client{r: rd})
	}
	if !strings.Contains(a.log(), "joinchannel") || !strings.Contains(b.log(), "joinchannel") {
		t.Fatalf("the kernel did not spread 16 connections over both processes:\na: %d joins, b: %d joins",
			strings.Count(a.log(), "joinchannel"), strings.Count(b.log(), "joinchannel"))
	}
	publish := func(text string) {
		t.Helper()
		// Through a's own API port: a connection to the shared controller
		// port can land in b's accept queue as b closes its listener, and
		// be dropped with it (docs/cluster.md, tcp_migrate_req).
		resp, err := http.Post("http://"+a.api+"/api/channels/rp/messages", "text/plain", strings.NewReader(text))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("publish: %s", resp.Status)
		}
	}
	read := func(c *client, until string) {
		t.Helper()
		for {
			l := readLine(t, c.r)
			switch {
			case strings.HasPrefix(l, "id: "):
				c.last = strings.TrimPrefix(l, "id: ")
			case strings.HasPrefix(l, "data: ") && strings.Contains(l, `"reason":"restart"`):
				c.closed = true
				return
			case strings.HasPrefix(l, "data: "):
				c.got = append(c.got, strings.TrimPrefix(l, "data: "))
				if c.got[len(c.got)-1] == until {
					return
				}
			case strings.HasPrefix(l, "event: gap"):
				t.Fatalf("a gap: %q", l)
			}
		}
	}
	publish("m0")
	for _, c := range clients {
		read(c, "m0")
	}
	b.signal(syscall.SIGTERM)
	// While b drains, messages go on.
	for i := 1; i <= 5; i++ {
		publish(fmt.Sprint("m", i))
		time.Sleep(100 * time.Millisecond)
	}
	<-b.exited
	for i := 6; i <= 8; i++ {
		publish(fmt.Sprint("m", i))
	}
	moved := 0
	for _, c := range clients {
		read(c, "m8")
		if c.closed {
			moved++
			// Resume on the shared port: only a is left on it.
			rd, _ := a.rawGet("/sse/rp", "Last-Event-ID: "+c.last)
			c.r, c.closed = rd, false
			read(c, "m8")
		}
		want := "m0,m1,m2,m3,m4,m5,m6,m7,m8"
		if got := strings.Join(c.got, ","); got != want {
			t.Errorf("a client got %s, want %s", got, want)
		}
	}
	if moved == 0 {
		t.Errorf("no client was drained from b")
	}
	if !strings.Contains(b.log(), "reason=restart") {
		t.Errorf("b's log has no leave with reason restart")
	}
}

// TestClusterPresence: COUNTSUBSCRIBERS and the API's subscriber listing
// on one node count and list the other's subscribers; a node killed with
// SIGKILL stops being counted within PresenceTTL.
func TestClusterPresence(t *testing.T) {
	r := testkit.StartRedis(t)
	conf := clusterConf(t)
	a := startProc(t, conf, "-Engine", "redis", "-RedisURL", r.URL(), "-RedisPrefix", "c6", "-NodeID", "a", "-PresenceTTL", "3")
	b := startProc(t, conf, "-Engine", "redis", "-RedisURL", r.URL(), "-RedisPrefix", "c6", "-NodeID", "b", "-PresenceTTL", "3")
	onA := a.subscribe("/push/ha/plain/lobby")
	onA.expect("H\n")
	for _, h := range []string{"hb1", "hb2"} {
		s := b.subscribe("/push/" + h + "/plain/lobby")
		s.expect("H\n")
	}
	for _, p := range []*proc{a, b} {
		testkit.EventuallyWithin(t, wait, "three subscribers counted on both nodes", func() bool {
			return p.ctlCmd("COUNTSUBSCRIBERS lobby") == "OK 3\r\n"
		})
	}
	resp, err := http.Get("http://" + a.api + "/api/channels/lobby/subscribers?limit=10")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`"count":3`, `"id":"hb1"`, `"id":"hb2"`, `"id":"ha"`, `"node":"b"`, `"node":"a"`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("subscribers of lobby on a: %s lacks %s", body, want)
		}
	}
	b.signal(syscall.SIGKILL)
	<-b.exited
	start := time.Now()
	testkit.EventuallyWithin(t, 10*time.Second, "the dead node's subscribers no longer counted", func() bool {
		return a.ctlCmd("COUNTSUBSCRIBERS lobby") == "OK 1\r\n"
	})
	t.Logf("a killed node stopped being counted after %v (PresenceTTL 3 s)", time.Since(start).Round(100*time.Millisecond))
}

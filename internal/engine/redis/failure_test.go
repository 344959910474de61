package redis

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/enginetest"
	"github.com/meteorpush/meteor/internal/testkit"
)

// flow is a publisher that publishes to one channel every 2 ms through
// its own node until stopped, and two subscribed nodes that record what
// they are delivered.
type flow struct {
	t       *testing.T
	r       *testkit.Redis
	channel string
	pub     *Engine
	nodes   []*Engine
	recs    []*enginetest.Recorder
	stop    chan struct{}
	done    chan struct{}
	failed  atomic.Int64 // publishes that got an error
	okays   atomic.Int64 // publishes that worked
}

func startFlow(t *testing.T, r *testkit.Redis, url string) *flow {
	t.Helper()
	f := &flow{t: t, r: r, channel: fmt.Sprintf("flow-%d", time.Now().UnixNano()), stop: make(chan struct{}), done: make(chan struct{})}
	limits := engine.Limits{MaxMessages: 100000}
	open := func(node string) (*Engine, *enginetest.Recorder) {
		e, err := New(Options{URL: url, Prefix: "t", Node: node, Limits: limits, Timeout: time.Second,
			ProbeInterval: 200 * time.Millisecond, AuditInterval: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		rec := enginetest.NewRecorder()
		if err := e.Start(context.Background(), rec); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			e.Close(ctx)
			rec.Check(t)
		})
		return e, rec
	}
	f.pub, _ = open("publisher")
	for _, n := range []string{"a", "b"} {
		e, rec := open(n)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := e.Subscribe(ctx, f.channel); err != nil {
			t.Fatalf("Subscribe on node %s: %v", n, err)
		}
		cancel()
		f.nodes = append(f.nodes, e)
		f.recs = append(f.recs, rec)
	}
	go func() {
		defer close(f.done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-f.stop:
				return
			case <-tick.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			if _, err := f.pub.Publish(ctx, engine.Publication{Channel: f.channel, Text: strconv.Itoa(i)}); err != nil {
				f.failed.Add(1)
			} else {
				f.okays.Add(1)
			}
			cancel()
		}
	}()
	return f
}

// finish stops the publisher once every node delivers again, then checks
// each node: the messages still in history all delivered, in order, once
// each; ids increasing; and resets exactly when wantReset says.
func (f *flow) finish(wantReset bool) {
	t := f.t
	t.Helper()
	// Every node is delivering again: messages published now reach
	// both (after a reset, the first ones may be left to the hub's
	// resynchronisation, so publish until each node was delivered one).
	var probe uint64
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		ms, err := f.pub.Publish(ctx, engine.Publication{Channel: f.channel, Text: "after"})
		cancel()
		if err == nil {
			probe = ms[0].ID
			all := true
			for _, rec := range f.recs {
				all = all && rec.Wait(200*time.Millisecond, func() bool { return slices.Contains(rec.IDsLocked(f.channel), probe) })
			}
			if all {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the nodes never delivered again (last publish error %v)", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(f.stop)
	<-f.done
	t.Logf("publisher: %d published, %d failed", f.okays.Load(), f.failed.Load())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hs, err := f.pub.History(ctx, engine.HistoryRequest{Channel: f.channel, Query: engine.Query{Kind: engine.QueryAll}})
	if err != nil {
		t.Fatal(err)
	}
	var stored []uint64
	for _, m := range hs[0].Messages {
		stored = append(stored, m.ID)
	}
	if !slices.IsSorted(stored) || !slices.Contains(stored, probe) {
		t.Fatalf("history %d messages, sorted %v, has the last publish %v", len(stored), slices.IsSorted(stored), slices.Contains(stored, probe))
	}
	for i, rec := range f.recs {
		ok := rec.Wait(20*time.Second, func() bool {
			got := rec.IDsLocked(f.channel)
			return len(got) > 0 && got[len(got)-1] >= stored[len(stored)-1]
		})
		got := rec.IDs(f.channel)
		if !ok {
			t.Errorf("node %d: never delivered the last message %d (delivered %d)", i, stored[len(stored)-1], len(got))
			continue
		}
		for j := 1; j < len(got); j++ {
			if got[j] <= got[j-1] {
				t.Errorf("node %d: delivered %d after %d: repeated or out of order", i, got[j], got[j-1])
				break
			}
		}
		missing := 0
		for _, id := range stored {
			if _, found := slices.BinarySearch(got, id); !found {
				missing++
			}
		}
		if missing > 0 && !wantReset {
			t.Errorf("node %d: %d of the %d messages in history were never delivered", i, missing, len(stored))
		}
		if resets := rec.Resets(f.channel); (resets > 0) != wantReset {
			t.Errorf("node %d: %d resets, want a reset: %v", i, resets, wantReset)
		}
		st := f.nodes[i].Stats()
		t.Logf("node %d: delivered %d, stored %d, publish errors %d; reconnects %d, catch-ups gap/reconnect/audit %d/%d/%d, recovered %d, resets %d, probe failures %d",
			i, len(got), len(stored), f.failed.Load(), st.Reconnects.Load(), st.CatchUpGap.Load(), st.CatchUpReconnect.Load(),
			st.CatchUpAudit.Load(), st.Recovered.Load(), st.Resets.Load(), st.ProbeFailures.Load())
	}
}

func (f *flow) recovered() uint64 {
	var n uint64
	for _, e := range f.nodes {
		n += e.Stats().Recovered.Load()
	}
	return n
}

// TestPubSubKilled: Redis closes every pub/sub connection while messages
// flow (CLIENT KILL TYPE pubsub). The nodes reconnect and catch up from
// the stream: nothing lost, nothing repeated, no reset.
func TestPubSubKilled(t *testing.T) {
	r := testkit.StartRedis(t)
	f := startFlow(t, r, r.URL())
	time.Sleep(200 * time.Millisecond)
	for range 3 {
		r.Do("CLIENT", "KILL", "TYPE", "pubsub")
		time.Sleep(150 * time.Millisecond)
	}
	f.finish(false)
	for _, e := range f.nodes {
		if e.Stats().Reconnects.Load() == 0 || e.Stats().CatchUpReconnect.Load() == 0 {
			t.Errorf("a node did not reconnect and catch up: %+v", e.Stats())
		}
	}
	if f.recovered() == 0 {
		t.Errorf("no message was recovered from the stream: the kills lost nothing, so this test proved nothing")
	}
}

// TestRedisRestartedEmpty: SHUTDOWN NOSAVE, then a new redis-server on
// the same port, without data. Publishing fails while it is down; then the
// nodes reconnect, ids go on above the old ones, the stream has a new
// epoch, and each node reports the reset and delivers the new stream.
func TestRedisRestartedEmpty(t *testing.T) {
	r := testkit.StartRedis(t)
	f := startFlow(t, r, r.URL())
	time.Sleep(200 * time.Millisecond)
	before := f.recs[0].IDs(f.channel)
	r.Do("SHUTDOWN", "NOSAVE")
	time.Sleep(1500 * time.Millisecond) // longer than the publisher's timeout
	r.Restart()
	f.finish(true)
	after := f.recs[0].IDs(f.channel)
	if len(before) == 0 || after[len(after)-1] <= before[len(before)-1] {
		t.Errorf("ids did not go on growing across the restart")
	}
	if f.failed.Load() == 0 {
		t.Errorf("no publish failed while Redis was down")
	}
}

// TestRedisFlushed: FLUSHALL while messages flow. The stream begins again
// with a new epoch and higher ids; each node reports the reset.
func TestRedisFlushed(t *testing.T) {
	r := testkit.StartRedis(t)
	f := startFlow(t, r, r.URL())
	time.Sleep(200 * time.Millisecond)
	r.Do("FLUSHALL")
	time.Sleep(200 * time.Millisecond)
	f.finish(true)
}

// TestRedisStalled: DEBUG SLEEP past the timeouts. Publishes time out
// (some may still be stored when Redis wakes: history is the truth);
// the nodes' probes do not come back, so their pub/sub connections are
// recycled, and they catch up.
func TestRedisStalled(t *testing.T) {
	r := testkit.StartRedis(t)
	f := startFlow(t, r, r.URL())
	time.Sleep(200 * time.Millisecond)
	r.Do("DEBUG", "SLEEP", "3")
	f.finish(false)
	if f.failed.Load() == 0 {
		t.Errorf("no publish failed while Redis slept")
	}
}

// TestTrailingLoss: the last message of a channel never reaches a node
// through pub/sub (it is stored without being published, as a dropped
// pub/sub message would be) and nothing follows it. The audit of quiet
// channels finds it.
func TestTrailingLoss(t *testing.T) {
	r := testkit.StartRedis(t)
	e, rec := started(t, r, "a", engine.Limits{MaxMessages: 10})
	c := "quiet"
	ctx := context.Background()
	if err := e.Subscribe(ctx, c); err != nil {
		t.Fatal(err)
	}
	m, err := e.Publish(ctx, engine.Publication{Channel: c, Text: "seen"})
	if err != nil {
		t.Fatal(err)
	}
	// Stored and numbered by the same function, published where nobody
	// listens.
	err = e.rdb.FCall(ctx, "meteor_publish", []string{e.key(c, "h"), e.key(c, "m")},
		"10", "0", "3600", "t:nobody", "lost", "epochxxx").Err()
	if err != nil {
		t.Fatal(err)
	}
	h, _ := e.History(ctx, engine.HistoryRequest{Channel: c, Query: engine.Query{Kind: engine.QueryAll}})
	if len(h[0].Messages) != 2 {
		t.Fatalf("history %+v", h[0])
	}
	want := []uint64{m[0].ID, h[0].Messages[1].ID}
	if !rec.Wait(10*time.Second, func() bool { return len(rec.IDsLocked(c)) == 2 }) {
		t.Fatalf("the audit never delivered the lost message: %v", rec.IDs(c))
	}
	rec.Complete(t, c, want)
	if e.Stats().CatchUpAudit.Load() == 0 {
		t.Errorf("delivered, but not by an audit: %+v", e.Stats())
	}
}

// TestProbeRecyclesDeafConnection: the pub/sub connections stay open but
// stop receiving (a proxy between the node and Redis stops forwarding
// what Redis sends them), as one left on a demoted server after a
// fail-over does. The probe does not come back, the node makes new
// connections and catches up.
func TestProbeRecyclesDeafConnection(t *testing.T) {
	r := testkit.StartRedis(t)
	p := startProxy(t, r.Addr())
	f := startFlow(t, r, "redis://"+p.addr()+"/0")
	time.Sleep(200 * time.Millisecond)
	if n := p.deafenSubscribers(); n == 0 {
		t.Fatal("the proxy saw no pub/sub connection")
	}
	// Meanwhile the audit delivers what the deaf connections miss; the
	// probe, overdue after twice the timeout, has them replaced.
	for i, e := range f.nodes {
		testkit.EventuallyWithin(t, 10*time.Second, fmt.Sprintf("node %d recycles its deaf pub/sub connections", i),
			func() bool { return e.Stats().ProbeFailures.Load() > 0 })
	}
	f.finish(false)
	for i, e := range f.nodes {
		if e.Stats().Reconnects.Load() == 0 {
			t.Errorf("node %d: no new connection after the probe failed", i)
		}
	}
}

// proxy forwards TCP connections to a Redis; it can stop forwarding what
// Redis sends to the connections that subscribed, leaving them open.
type proxy struct {
	ln     net.Listener
	target atomic.Pointer[string]
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns []*proxied
}

type proxied struct {
	client, server net.Conn
	subscriber     atomic.Bool
	deaf           atomic.Bool
}

func startProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln}
	p.target.Store(&target)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.client.Close()
			c.server.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", *p.target.Load())
		if err != nil {
			c.Close()
			continue
		}
		pc := &proxied{client: c, server: s}
		p.mu.Lock()
		p.conns = append(p.conns, pc)
		p.mu.Unlock()
		p.wg.Add(2)
		go func() {
			defer p.wg.Done()
			defer s.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					if bytes.Contains(bytes.ToLower(buf[:n]), []byte("subscribe")) {
						pc.subscriber.Store(true)
					}
					if _, werr := s.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					return
				}
			}
		}()
		go func() {
			defer p.wg.Done()
			defer c.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 && !pc.deaf.Load() {
					if _, werr := c.Write(buf[:n]); werr != nil {
						return
					}
				}
				if err != nil {
					if err != io.EOF {
						return
					}
					return
				}
			}
		}()
	}
}

// failOver sends new connections to target and closes every connection
// made so far, as a fail-over to another server behind one address does.
func (p *proxy) failOver(target string) {
	p.target.Store(&target)
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.client.Close()
		c.server.Close()
	}
	p.conns = nil
}

// deafenSubscribers stops forwarding Redis's output to every connection
// that has subscribed so far and returns how many there were.
func (p *proxy) deafenSubscribers() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.conns {
		if c.subscriber.Load() {
			c.deaf.Store(true)
			n++
		}
	}
	return n
}

// TestFailOverLosesWrites: a replica is promoted while the primary still
// takes writes that never reach it (asynchronous replication), then the
// node's address leads to the promoted replica. Its stream ends before
// the ids the node delivered; the ids it hands out next are above them
// anyway, so a client resuming after the last id it saw (a 1.06 page)
// skips nothing new. The node counts the rollback and goes on delivering.
func TestFailOverLosesWrites(t *testing.T) {
	primary, replica := testkit.StartRedis(t), testkit.StartRedis(t)
	replica.Do("REPLICAOF", "127.0.0.1", strconv.Itoa(primary.Port))
	p := startProxy(t, primary.Addr())
	e, err := New(Options{URL: "redis://" + p.addr() + "/0", Prefix: "t", Node: "a", Limits: engine.Limits{MaxMessages: 100},
		Timeout: time.Second, ProbeInterval: 200 * time.Millisecond, AuditInterval: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rec := enginetest.NewRecorder()
	ctx := context.Background()
	if err := e.Start(ctx, rec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctx); rec.Check(t) })
	c := "fo"
	if err := e.Subscribe(ctx, c); err != nil {
		t.Fatal(err)
	}
	pub := func(text string) uint64 {
		t.Helper()
		var last error
		for range 100 {
			ms, err := e.Publish(ctx, engine.Publication{Channel: c, Text: text})
			if err == nil {
				return ms[0].ID
			}
			last = err
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatalf("publish %s: %v", text, last)
		return 0
	}
	var kept []uint64
	for i := range 5 {
		kept = append(kept, pub(fmt.Sprint("kept", i)))
	}
	testkit.EventuallyWithin(t, 10*time.Second, "the replica has the first five", func() bool {
		return replica.Do("XLEN", e.key(c, "h")) == "5"
	})
	replica.Do("REPLICAOF", "NO", "ONE")
	var lost []uint64
	for i := range 3 {
		lost = append(lost, pub(fmt.Sprint("lost", i)))
	}
	if !rec.Wait(10*time.Second, func() bool { return len(rec.IDsLocked(c)) == 8 }) {
		t.Fatalf("delivered before the fail-over: %v", rec.IDs(c))
	}
	p.failOver(replica.Addr())
	testkit.EventuallyWithin(t, 10*time.Second, "the node reconnects to the promoted replica and catches up", func() bool {
		return e.Stats().CatchUpReconnect.Load() > 0 && e.Stats().Rollbacks.Load() > 0
	})
	var after []uint64
	for i := range 3 {
		after = append(after, pub(fmt.Sprint("after", i)))
	}
	for _, id := range after {
		if id <= lost[len(lost)-1] {
			t.Fatalf("id %d after the fail-over is not above the lost %d: a 1.06 client would skip it", id, lost[len(lost)-1])
		}
	}
	want := append(append(append([]uint64(nil), kept...), lost...), after...)
	if !rec.Wait(10*time.Second, func() bool { return len(rec.IDsLocked(c)) == len(want) }) {
		t.Fatalf("delivered %v, want %v", rec.IDs(c), want)
	}
	rec.Complete(t, c, want)
	if rec.Resets(c) != 0 {
		t.Errorf("a reset: nothing the node delivered is missing from what follows")
	}
	if e.Stats().Rollbacks.Load() == 0 {
		t.Errorf("the rollback was not counted: %+v", e.Stats())
	}
	// A 1.06 client that saw the last lost message resumes after it and
	// gets the new ones.
	h, err := e.History(ctx, engine.HistoryRequest{Channel: c, Query: engine.Query{Kind: engine.QueryAfter, After: engine.Position{ID: lost[2]}}})
	if err != nil || len(h[0].Messages) != 3 || h[0].Messages[0].ID != after[0] {
		t.Errorf("history after the last lost id: %+v %v", h, err)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/server"
)

// startServer starts a real meteord on 127.0.0.1, ports chosen by the
// kernel, and stops it when the test ends.
func startServer(t *testing.T) *server.Server {
	t.Helper()
	cfg := config.Defaults()
	cfg.SubscriberIP, cfg.SubscriberPort = "127.0.0.1", 0
	cfg.ControllerIP, cfg.ControllerPort = "127.0.0.1", 0
	cfg.AdminIP, cfg.AdminPort = "127.0.0.1", 0
	cfg.UDPPort = 0
	srv, err := server.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv
}

func testCommon(t *testing.T, srv *server.Server, channel string, n int) *common {
	t.Helper()
	return testCommonTransport(t, srv, transportStream, channel, n)
}

func testCommonTransport(t *testing.T, srv *server.Server, transport, channel string, n int) *common {
	t.Helper()
	c := &common{
		ep: endpoint{Kind: targetMeteor, Transport: transport, Addr: srv.SubscriberAddr().String(),
			Ctl: srv.ControllerAddr().String(), PubURL: "http://" + srv.AdminAddr().String()},
		channel: channel, n: n,
		concurrency: 8, perWorker: 1000, connectTimeout: 5 * time.Second, timeout: 30 * time.Second,
		readBuffer: 512,
	}
	if err := c.check(); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestShardAccounting subscribes a few clients through a shard, publishes
// stamped messages with one publication missing and one repeated, and
// checks that the shard counts exactly those losses and duplicates.
func TestShardAccounting(t *testing.T) {
	srv := startServer(t)
	const subs = 5
	c := testCommon(t, srv, "acct", subs)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fl, err := startFleet(ctx, c.shards(), true, c.timeout, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := fl.collect(ctx, "connected")
	if err != nil || conn.OK != subs {
		t.Fatalf("connected %+v, %v; want %d", conn, err, subs)
	}
	ctl, err := dialCtl(ctx, c.ep.Ctl)
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	if n, err := waitCount(ctx, ctl, "acct", func(n int) bool { return n == subs }); err != nil {
		t.Fatalf("count %d: %v", n, err)
	}
	// seq 2 is never published, seq 1 twice, and one message has no stamp.
	for _, seq := range []int{0, 1, 1, 3} {
		if _, err := ctl.Publish("acct", stampText(seq, time.Now(), 40)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ctl.Publish("acct", "no stamp here"); err != nil {
		t.Fatal(err)
	}
	var st *shardReport
	for deadline := time.Now().Add(10 * time.Second); ; {
		if st, err = fl.ask(ctx, "end 0", "status"); err != nil {
			t.Fatal(err)
		}
		if st.Received+st.Foreign >= 5*subs || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	st, err = fl.ask(ctx, "end 4", "status")
	if err != nil {
		t.Fatal(err)
	}
	if st.Received != 4*subs || st.Distinct != 3*subs || st.Dups != subs || st.Lost != subs || st.Foreign != subs {
		t.Fatalf("received %d distinct %d dups %d lost %d foreign %d; want %d %d %d %d %d",
			st.Received, st.Distinct, st.Dups, st.Lost, st.Foreign, 4*subs, 3*subs, subs, subs, subs)
	}
	// The repeated publication has a new id: a duplicate, not disorder.
	if st.Disorder != 0 || st.Malformed != 0 || st.ServerClosed != 0 {
		t.Fatalf("disorder %d malformed %d server closed %d; want none", st.Disorder, st.Malformed, st.ServerClosed)
	}
	if st.Latency == nil || st.Latency.Total != st.Distinct || st.Latency.Max <= 0 || st.Latency.Max > 5e6 {
		t.Fatalf("latency %+v: want one sample per distinct delivery, above 0 and below 5 s", st.Latency)
	}
	final, err := fl.close(10 * time.Second)
	if err != nil || final.Event != "closed" {
		t.Fatalf("close: %+v, %v", final, err)
	}
	if n, err := waitCount(ctx, ctl, "acct", func(n int) bool { return n == 0 }); err != nil {
		t.Fatalf("count after close %d: %v", n, err)
	}
}

// TestFanoutSmall runs the fan-out scenario briefly: every publication
// reaches every subscriber once.
func TestFanoutSmall(t *testing.T) {
	srv := startServer(t)
	c := testCommon(t, srv, "fan", 10)
	// A second, not less: the rate is checked (Valid wants 95 % of it),
	// and one pause of a loaded machine must not sink a short run.
	res, err := fanout(context.Background(), c, fanoutParams{rate: 200, size: 64, duration: time.Second, drain: 2 * time.Second}, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if res.Published < 20 || res.Delivered != res.Expected || res.Expected != int64(10*res.Published) {
		t.Fatalf("published %d, delivered %d of %d", res.Published, res.Delivered, res.Expected)
	}
	if res.Lost != 0 || res.Dups != 0 || res.Disorder != 0 || res.Malformed != 0 || res.ServerClosed != 0 {
		t.Fatalf("lost %d dups %d disorder %d malformed %d closed %d; want none", res.Lost, res.Dups, res.Disorder, res.Malformed, res.ServerClosed)
	}
	if res.LatencyP50us <= 0 || res.LatencyP50us > res.LatencyP99us || res.LatencyP99us > res.LatencyMaxus {
		t.Fatalf("latencies p50 %d p99 %d max %d µs not ordered", res.LatencyP50us, res.LatencyP99us, res.LatencyMaxus)
	}
	if !res.Valid || res.Acked != int64(res.Published) || res.AckErrors != 0 || res.AckP50us <= 0 || res.AckP50us > res.AckMaxus {
		t.Fatalf("valid %v (%s), acked %d of %d, %d errors, ack p50 %d max %d µs", res.Valid, res.Invalid, res.Acked, res.Published, res.AckErrors, res.AckP50us, res.AckMaxus)
	}
	if res.Scheduled != 200 || res.PublishRate < 190 || res.GenCPUSecs < 0 {
		t.Fatalf("scheduled %d, rate %.1f, generator CPU %.2f s", res.Scheduled, res.PublishRate, res.GenCPUSecs)
	}
	var out bytes.Buffer
	printFanout(&out, c, res)
	if !strings.Contains(out.String(), "lost 0, duplicated 0") {
		t.Fatalf("report:\n%s", out.String())
	}
}

// TestIdleSmall runs the idle scenario against the server in this process
// (its RSS is this test's); it checks the counts, not the figures.
func TestIdleSmall(t *testing.T) {
	srv := startServer(t)
	c := testCommon(t, srv, "idle", 20)
	res, err := idle(context.Background(), c, []int{os.Getpid()}, 300*time.Millisecond, 0, 2, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if res.Subscribers != 20 || res.ServerCount != 20 || res.Failed != 0 || res.ServerClosed != 0 {
		t.Fatalf("result %+v", res)
	}
	if res.RSSHeld <= 0 || res.HoldSecs < 0.3 || res.BytesPerSub < 1 {
		t.Fatalf("result %+v", res)
	}
	if _, err := json.Marshal(res); err != nil {
		t.Fatal(err)
	}
	if n := srv.Hub().CountSubscribers("idle"); n != 0 {
		t.Fatalf("%d subscribers left after the run", n)
	}
}

func TestRunUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"nope"}, nil, &out, &errb); code != 2 {
		t.Fatalf("unknown scenario: exit %d, want 2", code)
	}
	if code := run([]string{"idle", "-n", "5"}, nil, &out, &errb); code != 1 || !strings.Contains(errb.String(), "-pid is required") {
		t.Fatalf("idle without -pid: exit %d, stderr %q", code, errb.String())
	}
}

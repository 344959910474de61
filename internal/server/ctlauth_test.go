package server

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/testkit"
)

// refusedMetric returns meteor_controller_refused_total{reason}.
func refusedMetric(t *testing.T, ts *testServer, reason string) float64 {
	t.Helper()
	return testkit.Metric(t, ts.Metrics(), "meteor_controller_refused_total", "reason", reason)
}

// TestControllerToken: ControllerToken reaches the controller listener, a
// refusal is counted in meteor_controller_refused_total, and a reload's
// new token applies to new connections.
func TestControllerToken(t *testing.T) {
	ts := start(t, func(cfg *config.Config) { cfg.ControllerToken = "s3cret" })
	addr := ts.ControllerAddr().String()

	c := testkit.DialController(t, addr)
	if got := c.Cmd("ADDMESSAGE demo x"); len(got) != 1 || got[0] != "ERR authentication required" {
		t.Fatalf("before AUTH: %q", got)
	}
	if got := c.Cmd("AUTH s3cret"); len(got) != 1 || got[0] != "OK" {
		t.Fatalf("AUTH: %q", got)
	}
	if got := c.Cmd("ADDMESSAGE demo x"); len(got) != 1 || !strings.HasPrefix(got[0], "OK\t") {
		t.Fatalf("after AUTH: %q", got)
	}
	if v := refusedMetric(t, ts, "auth"); v != 1 {
		t.Errorf("refused auth = %v, want 1", v)
	}
	for _, r := range []string{"idle", "limit"} {
		if v := refusedMetric(t, ts, r); v != 0 {
			t.Errorf("refused %s = %v, want 0", r, v)
		}
	}

	next := *ts.cfg
	next.ControllerToken = "other"
	if err := ts.Reload(&next); err != nil {
		t.Fatal(err)
	}
	d := testkit.DialController(t, addr)
	if got := d.Cmd("AUTH s3cret"); len(got) != 1 || got[0] != "ERR authentication failed" {
		t.Fatalf("old token after the reload: %q", got)
	}
	if got := d.Cmd("AUTH other"); len(got) != 1 || got[0] != "OK" {
		t.Fatalf("new token: %q", got)
	}
	if got := c.Cmd("COUNTSUBSCRIBERS demo"); len(got) != 1 || got[0] != "OK 0" {
		t.Fatalf("the connection authenticated before the reload: %q", got)
	}
}

// TestControllerLimitMetric: a controller connection past
// MaxControllerConnections is refused and counted.
func TestControllerLimitMetric(t *testing.T) {
	ts := start(t, func(cfg *config.Config) { cfg.MaxControllerConnections = 1 })
	addr := ts.ControllerAddr().String()
	c := testkit.DialController(t, addr)
	if got := c.Cmd("COUNTSUBSCRIBERS demo"); len(got) != 1 || got[0] != "OK 0" {
		t.Fatalf("%q", got)
	}
	d := testkit.DialController(t, addr)
	if got := d.Cmd("COUNTSUBSCRIBERS demo"); len(got) != 1 || got[0] != "ERR too many controller connections" {
		t.Fatalf("past the cap: %q", got)
	}
	if v := refusedMetric(t, ts, "limit"); v != 1 {
		t.Errorf("refused limit = %v, want 1", v)
	}
}

// TestReloadKeepsCredential: a reload that would leave the running
// controller listener, off loopback, without a token is refused, even
// when the new file moves ControllerIP to loopback (which needs a
// restart); the old token stays in force.
func TestReloadKeepsCredential(t *testing.T) {
	ts := start(t, func(cfg *config.Config) {
		cfg.ControllerIP = "0.0.0.0"
		cfg.ControllerToken = "s3cret"
	})
	for _, ip := range []string{"0.0.0.0", "127.0.0.1"} {
		next := *ts.cfg
		next.ControllerIP = ip
		next.ControllerToken = ""
		if err := ts.Reload(&next); !errors.Is(err, config.ErrCredentialRequired) {
			t.Errorf("reload to ControllerIP %s without a token: %v; want ErrCredentialRequired", ip, err)
		}
	}
	port := ts.ControllerAddr().(*net.TCPAddr).Port
	c := testkit.DialController(t, net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if got := c.Cmd("ADDMESSAGE demo x"); len(got) != 1 || got[0] != "ERR authentication required" {
		t.Fatalf("after the refused reload: %q", got)
	}
}

// TestStartRefusesOpenController: Start refuses a configuration built in
// code that puts the controller off loopback without a token.
func TestStartRefusesOpenController(t *testing.T) {
	cfg := testConfig()
	cfg.ControllerIP = ""
	srv, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); !errors.Is(err, config.ErrCredentialRequired) {
		t.Errorf("Start: %v; want ErrCredentialRequired", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown after a refused start: %v", err)
	}
}

// TestControllerCredentialRate: the connections that authenticated with
// ControllerToken share one PublishRatePerCredential bucket; an
// ADDMESSAGE past it gets ERR in its place among the replies of a
// pipelined batch, is counted and logged, and the credential publishes
// again once the bucket refilled.
func TestControllerCredentialRate(t *testing.T) {
	ts := start(t, func(cfg *config.Config) {
		cfg.ControllerToken = "s3cret"
		cfg.PublishRatePerCredential, cfg.PublishBurstPerCredential = 1, 2
	})
	addr := ts.ControllerAddr().String()
	c := testkit.DialController(t, addr)
	if got := c.Cmd("AUTH s3cret"); len(got) != 1 || got[0] != "OK" {
		t.Fatalf("AUTH: %q", got)
	}
	nc, r := c.Conn()
	nc.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(nc, "ADDMESSAGE demo a\nADDMESSAGE demo b\nADDMESSAGE demo c\nCOUNTSUBSCRIBERS demo\n"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for range 4 {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("reading the replies: %v after %q", err, got)
		}
		got = append(got, strings.TrimSuffix(l, "\r\n"))
	}
	if !strings.HasPrefix(got[0], "OK\t") || !strings.HasPrefix(got[1], "OK\t") ||
		got[2] != "ERR publish rate of this credential exceeded" || got[3] != "OK 0" {
		t.Fatalf("replies to a pipelined batch of 3 with a bucket of 2: %q", got)
	}

	// Another connection with the same token shares the bucket.
	d := testkit.DialController(t, addr)
	d.Cmd("AUTH s3cret")
	if got := d.Cmd("ADDMESSAGE demo d"); len(got) != 1 || got[0] != "ERR publish rate of this credential exceeded" {
		t.Fatalf("second connection: %q", got)
	}
	if v := publishRefused(t, ts, "credential rate"); v != 2 {
		t.Errorf(`meteor_publish_refused_total{reason="credential rate"} = %v, want 2`, v)
	}
	if !strings.Contains(ts.log.String(), "controller: publish refused: credential rate") {
		t.Errorf("the refusal is not logged")
	}

	time.Sleep(time.Second)
	if got := d.Cmd("ADDMESSAGE demo e"); len(got) != 1 || !strings.HasPrefix(got[0], "OK\t") {
		t.Fatalf("after a second: %q", got)
	}
	hs, err := ts.Engine().History(context.Background(), engine.HistoryRequest{Channel: "demo", Query: engine.Query{Kind: engine.QueryLast, Last: 10}})
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, m := range hs[0].Messages {
		texts = append(texts, m.Text)
	}
	if strings.Join(texts, "") != "abe" {
		t.Fatalf("demo holds %q, want a, b, e", texts)
	}
}

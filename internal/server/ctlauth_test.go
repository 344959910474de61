package server

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/testkit"
)

// refusedMetric returns meteor_controller_refused_total{reason}.
func refusedMetric(t *testing.T, ts *testServer, reason string) float64 {
	t.Helper()
	mfs, err := ts.Metrics().Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "meteor_controller_refused_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no meteor_controller_refused_total{reason=%q}", reason)
	return 0
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

//go:build linux

package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// TestFloorServerBurst runs the burst scenario, unchanged, against the
// floor server in each of its variants: every subscriber gets every
// message once, the server logs each publish's writes, and it lets the
// subscribers go when they close and stops when told.
func TestFloorServerBurst(t *testing.T) {
	for _, cfg := range []floorConfig{
		{Writers: 1},
		{Writers: 2},
		{Writers: 3, Raw: true, Pin: true},
	} {
		t.Run(floorName(cfg), func(t *testing.T) {
			cfg.Addr, cfg.Ctl, cfg.Channel, cfg.MaxSubs = "127.0.0.1:0", "127.0.0.1:0", "floor", 100
			s, _ := startFloorServer(t, cfg)

			const subs, bursts = 7, 4
			c := &common{
				ep:      endpoint{Kind: targetMeteor, Transport: transportStream, Addr: s.SubscriberAddr(), Ctl: s.ControllerAddr()},
				channel: "floor", n: subs,
				concurrency: 4, perWorker: 1000, connectTimeout: 5 * time.Second, timeout: 30 * time.Second,
				readBuffer: 512,
			}
			if err := c.check(); err != nil {
				t.Fatal(err)
			}
			res, err := burst(context.Background(), c, bursts, 200, 5*time.Millisecond, 2*time.Second, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			if res.Subscribers != subs || res.Delivered != subs*bursts || res.Lost != 0 || res.Dups != 0 || res.ServerClosed != 0 || len(res.LastUS) != bursts {
				t.Fatalf("result %+v", res)
			}
			// burst waits, when it closes its subscribers, until the server
			// counts none: the floor server noticed them go.
			if n := s.count("floor"); n != 0 {
				t.Fatalf("%d subscribers counted after the run", n)
			}
			s.pubMu.Lock()
			stats := s.stats
			s.pubMu.Unlock()
			if len(stats) != bursts {
				t.Fatalf("%d publishes recorded, want %d", len(stats), bursts)
			}
			for _, p := range stats {
				writes := 0
				for _, r := range p.Writers {
					writes += r.Writes
					if r.Full != 0 {
						t.Errorf("message %d: %d full", p.ID, r.Full)
					}
				}
				if p.Subs != subs || writes != subs || len(p.Writers) != cfg.Writers || p.Wall <= 0 {
					t.Errorf("message %d: %+v", p.ID, p)
				}
			}
			var sum bytes.Buffer
			s.summary(&sum)
			if !strings.Contains(sum.String(), "4 messages") {
				t.Errorf("summary %q", sum.String())
			}
		})
	}
}

// startFloorServer starts a floor server on cfg and stops it when the test
// ends; the context is the server's, done when it is told to stop.
func startFloorServer(t *testing.T, cfg floorConfig) (*floorServer, context.Context) {
	t.Helper()
	s, err := newFloorServer(cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan struct{})
	go func() {
		s.serve(ctx)
		close(served)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			t.Error("the floor server did not stop")
		}
	})
	return s, ctx
}

func floorName(cfg floorConfig) string {
	name := "writers" + string(rune('0'+cfg.Writers))
	if cfg.Raw {
		name += "-raw"
	}
	if cfg.Pin {
		name += "-pin"
	}
	return name
}

// TestFloorServerProtocol checks the replies the floor server gives to
// what the burst scenario does not send.
func TestFloorServerProtocol(t *testing.T) {
	s, ctx := startFloorServer(t, floorConfig{Addr: "127.0.0.1:0", Ctl: "127.0.0.1:0", Channel: "one", Writers: 1, MaxSubs: 1})
	ctl, err := dialCtl(ctx, s.ControllerAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.Close()
	for _, tc := range []struct{ in, want string }{
		{"ADDMESSAGE other hello", "OK\t0"},
		{"ADDMESSAGE one hello", "OK\t1"},
		{"COUNTSUBSCRIBERS other", "OK 0"},
		{"COUNTSUBSCRIBERS one", "OK 0"},
		{"LISTCHANNELS", "ERR Invalid command syntax"},
	} {
		if got, err := ctl.command(tc.in); err != nil || got != tc.want {
			t.Errorf("%q: %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	if got := appendFloorMessage(nil, 3, "one", []byte("a\"b\\c</script>\r\n")); string(got) != `<script>p(3,"one","a\"b\\c\u003c/script>\r\n");</script>`+"\r\n" {
		t.Errorf("message %q", got)
	}
	var p frameParser
	var texts []string
	p.Feed(appendFloorMessage(nil, 3, "one", []byte("a\"b\\c</script>\r\n")), func(f *frame) {
		if f.Kind == frameMessage && f.ID == 3 && string(f.Channel) == "one" {
			texts = append(texts, string(f.Text))
		}
	})
	if len(texts) != 1 || texts[0] != "a\"b\\c</script>\r\n" {
		t.Errorf("parsed %q", texts)
	}
	// The wrong channel is refused; past -max-subs, the server is full.
	e := endpoint{Kind: targetMeteor, Transport: transportStream, Addr: s.SubscriberAddr(), Prefix: "/push", Mode: "xhrinteractive"}
	for _, tc := range []struct{ channel, wantErr string }{{"two", "404"}, {"one", ""}, {"one", "503"}} {
		nc, err := newDialers(nil, 5*time.Second).dial(ctx, 0, e.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		_, err = e.subscribe(nc, "h", tc.channel, 5*time.Second)
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("subscribing to %s: %v; want %q", tc.channel, err, tc.wantErr)
		}
	}
	if got, err := ctl.command("COUNTSUBSCRIBERS one"); err != nil || got != "OK 1" {
		t.Errorf("count: %q, %v", got, err)
	}
}

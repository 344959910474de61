package server

import (
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/testkit"
)

func TestBadRequests(t *testing.T) {
	ts := start(t, func(cfg *config.Config) { cfg.MaxChannelsPerRequest = 2 })
	notFound := strings.Replace(httpHeader, "200 OK", "404 Not Found", 1)
	tests := []struct {
		request string
		want    string // the whole answer, or the start of a 400's reason
	}{
		{"POST /push/h/iframe/c HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", notFound},
		{"POST /push/h/iframe/c HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", notFound},
		{"POST /push/h/xhrinteractive/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", notFound},
		{"PUT /meteor.js HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", notFound},
		{"DELETE /push/h/iframe/c HTTP/1.1\r\nHost: x\r\n\r\n", notFound},
		{"GET /push/h/iframe/ HTTP/1.1\r\nHost: x\r\n\r\n", notFound},
		{"GET /push/h/iframe HTTP/1.1\r\nHost: x\r\n\r\n", notFound},
		{"GET /push/h/iframe//?x HTTP/1.1\r\nHost: x\r\n\r\n", notFound},
		{"GET /push/h HTTP/1.1\r\nHost: x\r\n\r\n", notFound},
		{"GET /push/h/ HTTP/1.1\r\nHost: x\r\n\r\n", notFound},
		{"GET /push/h!/iframe/c HTTP/1.1\r\nHost: x\r\n\r\n", "host id"},
		{"GET /push//iframe/c HTTP/1.1\r\nHost: x\r\n\r\n", "host id"},
		{"GET /push/h/if-rame/c HTTP/1.1\r\nHost: x\r\n\r\n", "mode"},
		{"GET /push/h/iframe/c.x HTTP/1.1\r\nHost: x\r\n\r\n", "bad channel"},
		{"GET /push/h/iframe/c.r-1 HTTP/1.1\r\nHost: x\r\n\r\n", "bad channel"},
		{"GET /push/h/iframe/c.r99999999999999999999999 HTTP/1.1\r\nHost: x\r\n\r\n", "bad channel"},
		{"GET /push/h/iframe/c!d HTTP/1.1\r\nHost: x\r\n\r\n", "bad channel"},
		{"GET /push/h/iframe/a/b/c HTTP/1.1\r\nHost: x\r\n\r\n", "too many channels"},
	}
	for _, tt := range tests {
		c := ts.dial()
		c.send(tt.request)
		got := c.readAll()
		if strings.HasPrefix(tt.want, "HTTP/") {
			if got != tt.want {
				t.Errorf("%q:\n got %q\nwant %q", tt.request, got, tt.want)
			}
			continue
		}
		head, body, _ := strings.Cut(got, "\r\n\r\n")
		if !strings.HasPrefix(head, "HTTP/1.1 400 Bad Request\r\n") || !strings.Contains(head, "Content-Type: text/plain") ||
			!strings.HasPrefix(body, tt.want) || !strings.HasSuffix(body, "\n") {
			t.Errorf("%q: got %q, want a 400 whose body starts %q", tt.request, got, tt.want)
		}
	}
	// Duplicates do not count twice against the limit.
	if got := ts.get("/push/h/simplepoll/a/b/a.h").readAll(); got != httpHeader+scriptInfo("a", 0)+scriptInfo("b", 0) {
		t.Errorf("duplicate channel: got %q", got)
	}
	if n := ts.count("c"); n != 0 {
		t.Errorf("a refused request subscribed: COUNTSUBSCRIBERS c = %d", n)
	}
}

func TestHeaderTooLarge(t *testing.T) {
	ts := start(t, func(cfg *config.Config) { cfg.MaxHeaderBytes = 1024 })
	c := ts.dial()
	c.send("GET /push/h/iframe/c HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 16<<10) + "\r\n\r\n")
	if got := c.readAll(); !strings.HasPrefix(got, "HTTP/1.1 431 ") {
		t.Errorf("got %q, want a 431", got)
	}
	// The server carries on.
	if got := ts.get("/push/h/simplepoll/c").readAll(); got != httpHeader+scriptInfo("c", 0) {
		t.Errorf("after a 431: %q", got)
	}
}

func TestRequestTimeout(t *testing.T) {
	ts := start(t, func(cfg *config.Config) { cfg.RequestTimeout = 1 })
	silent := ts.dial()
	partial := ts.dial()
	partial.send("GET /push/h/iframe/c HTTP/1.1\r\nHost:")
	t0 := time.Now()
	for _, c := range []*client{silent, partial} {
		c.nc.SetReadDeadline(time.Now().Add(wait))
		b, err := io.ReadAll(c.nc)
		if err != nil && !isReset(err) {
			t.Errorf("read: %v", err)
		}
		if strings.Contains(string(b), "200 OK") {
			t.Errorf("a timed-out request got %q", b)
		}
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("closed after %v, want about 1 s", d)
	}
	if n := ts.count("c"); n != 0 {
		t.Errorf("COUNTSUBSCRIBERS c = %d", n)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// TestSlowSubscriber: a subscriber that never reads is closed, as a slow
// consumer or for a stuck write, while another on the same channel gets
// every message and the publisher never waits.
func TestSlowSubscriber(t *testing.T) {
	for _, tt := range []struct {
		name   string
		edit   func(*config.Config)
		reason string
	}{
		{"slowConsumer", func(cfg *config.Config) { cfg.MaxPendingBytes = 256 << 10 }, "slowConsumer"},
		{"writeTimeout", func(cfg *config.Config) {
			cfg.MaxPendingBytes = 1 << 30
			cfg.SubscriberWriteTimeout = 1
		}, "writeTimeout"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := start(t, tt.edit)
			stuck := ts.get("/push/stuck/iframe/c")
			if tc, ok := stuck.nc.(*net.TCPConn); ok {
				tc.SetReadBuffer(4096)
			}
			good := ts.get("/push/good/flash/c")
			good.expect("CH/c/0\x00")
			ts.waitCount("c", 2)

			const n, size = 300, 60000
			text := strings.Repeat("x", size)
			var wg sync.WaitGroup
			var got atomic.Int64
			var readErr error
			wg.Add(1)
			go func() {
				defer wg.Done()
				// good reads every record: "<id>/c/<text>\0".
				good.nc.SetReadDeadline(time.Now().Add(4 * wait))
				buf := make([]byte, 1<<16)
				var rec []byte
				for got.Load() < n {
					m, err := good.nc.Read(buf)
					if err != nil {
						readErr = err
						return
					}
					for _, b := range buf[:m] {
						if b == 0 {
							if !strings.HasSuffix(string(rec), "/c/"+text) {
								readErr = io.ErrUnexpectedEOF
								return
							}
							got.Add(1)
							rec = rec[:0]
						} else {
							rec = append(rec, b)
						}
					}
				}
			}()
			// The publisher keeps at most two messages ahead of the reading
			// subscriber, so that a loaded machine cannot make that one a
			// slow consumer too; the stuck one falls behind by everything.
			var slowest time.Duration
			for i := range int64(n) {
				deadline := time.Now().Add(4 * wait)
				for got.Load() < i-2 && time.Now().Before(deadline) {
					time.Sleep(time.Millisecond)
				}
				t0 := time.Now()
				ts.publish("c", text)
				slowest = max(slowest, time.Since(t0))
			}
			// The stuck one is closed, by the byte bound or the timeout.
			ts.waitCount("c", 1)
			wg.Wait()
			if readErr != nil || got.Load() != n {
				t.Errorf("the reading subscriber got %d of %d messages (err %v)", got.Load(), n, readErr)
			}
			if slowest > 2*time.Second {
				t.Errorf("a publish took %v: the publisher waited for a subscriber", slowest)
			}
			testkit.Eventually(t, "the leave record", func() bool {
				return strings.Contains(ts.log.String(), "hostid=stuck channel=c") &&
					strings.Contains(ts.log.String(), "reason="+tt.reason)
			})
			if strings.Contains(ts.log.String(), "hostid=good channel=c seconds") {
				t.Errorf("the reading subscriber left")
			}
		})
	}
}

// stat returns one SHOWSTATS counter, or -1 when absent.
func (ts *testServer) stat(name string) int {
	ts.t.Helper()
	for _, l := range ts.controller().Cmd("SHOWSTATS") {
		if v, ok := strings.CutPrefix(l, name+": "); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				ts.t.Fatalf("SHOWSTATS %s: %q", name, l)
			}
			return n
		}
	}
	return -1
}

// TestStatsCounters: every kind of connection is counted in and out of
// current_subscribers, and channel_count counts channels.
func TestStatsCounters(t *testing.T) {
	ts := start(t, func(cfg *config.Config) {
		cfg.MaxHeaderBytes = 1024
		cfg.RequestTimeout = 1
	})
	ts.publish("a", "1")
	ts.publish("b", "2")
	p := ts.get("/push/p/iframe/c")
	p.expect(header(ts.cfg.Mode("iframe"), "200 OK", scriptInfo("c", 0)))
	ts.waitCount("c", 1)
	if n := ts.stat("channel_count"); n != 3 {
		t.Errorf("channel_count = %d, want 3 (a, b with messages; c with a subscriber)", n)
	}
	ts.get("/push/h/simplepoll/a.h").readAll()
	ts.get("/meteor.js").readAll()
	ts.get("/nosuch").readAll()
	ts.get("/push/h!/iframe/c").readAll()
	ts.get("/push/h/iframe/").readAll()
	ts.get("/disconnect/x").readAll()
	big := ts.dial()
	big.send("GET / HTTP/1.1\r\nX: " + strings.Repeat("a", 8<<10) + "\r\n\r\n")
	big.readAll()
	ts.dial() // sends nothing: closed after RequestTimeout
	if n := ts.stat("current_subscribers"); n < 1 {
		t.Errorf("current_subscribers = %d with a subscriber open", n)
	}
	p.nc.Close()
	ts.waitCount("c", 0)
	testkit.Eventually(t, "current_subscribers to return to 0", func() bool { return ts.stat("current_subscribers") == 0 })
	if n := ts.stat("subscriber_connections_accepted"); n != 9 {
		t.Errorf("subscriber_connections_accepted = %d, want 9", n)
	}
}

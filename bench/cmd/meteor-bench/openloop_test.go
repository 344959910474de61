package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// slowController answers each ADDMESSAGE line after delay, one at a time,
// as a server busy with each message's fan-out would.
func slowController(t *testing.T, delay time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				br := bufio.NewReader(nc)
				for id := 1; ; id++ {
					if _, err := br.ReadSlice('\n'); err != nil {
						return
					}
					time.Sleep(delay)
					if _, err := fmt.Fprintf(nc, "OK\t%d\r\n", id); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestOpenLoopLine: a server that acknowledges at most 200 messages a
// second still gets the 400 a second asked, pipelined on one connection;
// every message is acknowledged in the end, late.
func TestOpenLoopLine(t *testing.T) {
	addr := slowController(t, 5*time.Millisecond)
	e := endpoint{Kind: targetMeteor, Transport: transportStream, Publish: publishLine, Ctl: addr}
	openLoopPastSlowServer(t, &e, 1, 64)
}

// openLoopPastSlowServer publishes on e's asynchronous publisher (over
// conns connections) 400 messages a second of size bytes for 250 ms, to a
// server that answers one message every 5 ms, and fails unless the
// publisher still sent at the asked rate and every message was
// acknowledged, the last after the whole backlog. It returns the run.
func openLoopPastSlowServer(t *testing.T, e *endpoint, conns, size int) loopResult {
	t.Helper()
	ctx := context.Background()
	pub, err := e.newAsyncPublisher(ctx, "c", conns)
	if err != nil {
		t.Fatal(err)
	}
	lr, err := openLoop(ctx, pub, loopParams{rate: 400, size: size, duration: 250 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	acks := pub.finish(5 * time.Second)
	if lr.Scheduled != 100 || lr.Published < 95 {
		t.Fatalf("published %d of %d scheduled", lr.Published, lr.Scheduled)
	}
	if ok, why := validRate(lr.Rate, 400); !ok {
		t.Fatalf("not valid: %s", why)
	}
	if acks.Acked != int64(lr.Published) || acks.Errors != 0 {
		t.Fatalf("acked %d of %d, %d errors (%s)", acks.Acked, lr.Published, acks.Errors, acks.FirstErr)
	}
	// The last acknowledgement waited for the whole backlog.
	if h := acks.Latency.sparse(); h.Max < 150_000 || h.Total != acks.Acked {
		t.Fatalf("acknowledgement latency max %d µs over %d; want the backlog's (over 150 ms)", h.Max, h.Total)
	}
	return lr
}

// TestOpenLoopHTTP: four kept-alive connections, each request 20 ms, take
// 100 messages a second; two cannot take 1,000 a second, and that run is
// not valid.
func TestOpenLoopHTTP(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(20 * time.Millisecond)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	e := endpoint{Kind: targetMeteor, Transport: transportStream, Publish: publishHTTP, PubURL: srv.URL}
	for _, c := range []struct {
		rate  float64
		conns int
		valid bool
	}{{100, 4, true}, {1000, 2, false}} {
		pub, err := e.newAsyncPublisher(context.Background(), "c", c.conns)
		if err != nil {
			t.Fatal(err)
		}
		lr, err := openLoop(context.Background(), pub, loopParams{rate: c.rate, size: 64, duration: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		acks := pub.finish(5 * time.Second)
		ok, why := validRate(lr.Rate, c.rate)
		if ok != c.valid {
			t.Fatalf("rate %g over %d: published %d of %d (%.1f/s), valid %v (%s); want valid %v", c.rate, c.conns, lr.Published, lr.Scheduled, lr.Rate, ok, why, c.valid)
		}
		if acks.Acked != int64(lr.Published) || acks.Errors != 0 {
			t.Fatalf("rate %g: acked %d of %d, %d errors (%s)", c.rate, acks.Acked, lr.Published, acks.Errors, acks.FirstErr)
		}
		if p50 := acks.Latency.sparse().Quantile(0.5); p50 < 19_000 {
			t.Fatalf("rate %g: acknowledgement p50 %d µs, below the server's 20 ms", c.rate, p50)
		}
	}
}

// stallingPub takes every message but stalls once, and records how many
// went out between flushes.
type stallingPub struct {
	stallAt int
	stall   time.Duration
	n       int
	batch   int
	batches []int
}

func (p *stallingPub) trySend(text string, t time.Time) (bool, error) {
	if p.n == p.stallAt {
		time.Sleep(p.stall)
	}
	p.n++
	p.batch++
	return true, nil
}

func (p *stallingPub) flush() error {
	if p.batch > 0 {
		p.batches = append(p.batches, p.batch)
	}
	p.batch = 0
	return nil
}

func (p *stallingPub) finish(time.Duration) ackStats { return ackStats{} }

// TestOpenLoopCatchUp: after a stall the clock catches up in bursts of at
// most -max-burst messages, and the run still reaches the asked rate.
func TestOpenLoopCatchUp(t *testing.T) {
	p := &stallingPub{stallAt: 10, stall: 40 * time.Millisecond}
	lr, err := openLoop(context.Background(), p, loopParams{rate: 500, size: 40, duration: 400 * time.Millisecond, maxBurst: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range p.batches {
		if b > 3 {
			t.Fatalf("batch %d sent %d messages at once; the bound is 3", i, b)
		}
	}
	if lr.Scheduled != 200 || lr.Published < 190 || lr.LagMaxUS < 30_000 {
		t.Fatalf("published %d of %d, latest %d µs behind; want at least 190, and the stall seen", lr.Published, lr.Scheduled, lr.LagMaxUS)
	}
}

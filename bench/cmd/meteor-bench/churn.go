package main

import (
	"context"
	"flag"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// The churn scenario is the fan-out scenario with, besides its steady
// subscribers, short-lived ones that connect at a fixed rate to the same
// channel, read for -churn-hold, and disconnect. The steady subscribers'
// figures (loss, latency) say whether the churn hurts them; the churn's own
// say how fast the server accepts.

type churnParams struct {
	rate float64       // connects per second
	hold time.Duration // how long each stays
	max  int           // most churning connections open at once
}

func (p *churnParams) register(fs *flag.FlagSet) {
	fs.Float64Var(&p.rate, "churn-rate", 200, "short-lived subscribers connecting per second")
	fs.DurationVar(&p.hold, "churn-hold", time.Second, "how long each short-lived subscriber stays")
	fs.IntVar(&p.max, "churn-max", 4000, "most short-lived subscribers open at once (this process's open files)")
}

// churnResult is what the short-lived subscribers saw.
type churnResult struct {
	Wanted       int64   `json:"wanted"`
	Connects     int64   `json:"connects"` // subscriptions the server accepted
	Disconnects  int64   `json:"disconnects"`
	Failed       int64   `json:"failed"`
	Skipped      int64   `json:"skipped"` // not started: -churn-max were open
	FirstErr     string  `json:"first_err,omitempty"`
	Secs         float64 `json:"secs"`
	ConnectRate  float64 `json:"connect_rate"`
	ConnectP50us int64   `json:"connect_p50_us"` // connect and response header
	ConnectP99us int64   `json:"connect_p99_us"`
	BytesRead    int64   `json:"bytes_read"`
}

type churner struct {
	cancel context.CancelFunc
	done   chan struct{}
	start  time.Time
	wg     sync.WaitGroup

	wanted, connects, disconnects, failed, skipped, bytes atomic.Int64

	mu       sync.Mutex
	firstErr string    // guarded by mu
	latency  histogram // guarded by mu
}

// startChurn starts connecting at p.rate for duration.
func startChurn(ctx context.Context, c *common, p churnParams, duration time.Duration) *churner {
	ctx, cancel := context.WithCancel(ctx)
	ch := &churner{cancel: cancel, done: make(chan struct{}), start: time.Now()}
	ds := newDialers(c.parsedSources, c.connectTimeout)
	sem := make(chan struct{}, max(p.max, 1))
	go func() {
		defer close(ch.done)
		interval := time.Duration(float64(time.Second) / p.rate)
		for i := 0; ctx.Err() == nil && time.Since(ch.start) < duration; i++ {
			if wait := time.Until(ch.start.Add(time.Duration(i) * interval)); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return
				}
			}
			ch.wanted.Add(1)
			select {
			case sem <- struct{}{}:
			default:
				ch.skipped.Add(1)
				continue
			}
			ch.wg.Add(1)
			go func(i int) {
				defer ch.wg.Done()
				defer func() { <-sem }()
				ch.one(ctx, c, ds, i, p.hold)
			}(i)
		}
	}()
	return ch
}

// one opens short-lived subscriber i, reads for hold, and closes it.
func (ch *churner) one(ctx context.Context, c *common, ds *dialers, i int, hold time.Duration) {
	t0 := time.Now()
	addrs := c.ep.addrs()
	nc, err := ds.dial(ctx, i, addrs[i%len(addrs)])
	var body io.Reader
	if err == nil {
		body, err = c.ep.subscribe(nc, c.run+"c"+strconv.FormatInt(int64(i), 36), c.channel, c.connectTimeout)
		if err != nil {
			nc.Close()
		}
	}
	if err != nil {
		ch.failed.Add(1)
		ch.mu.Lock()
		if ch.firstErr == "" {
			ch.firstErr = err.Error()
		}
		ch.mu.Unlock()
		return
	}
	ch.connects.Add(1)
	ch.mu.Lock()
	ch.latency.Add(time.Since(t0))
	ch.mu.Unlock()
	nc.SetReadDeadline(time.Now().Add(hold))
	buf := make([]byte, 1024)
	for {
		n, err := body.Read(buf)
		ch.bytes.Add(int64(n))
		if err != nil {
			break
		}
	}
	nc.Close()
	ch.disconnects.Add(1)
}

// stop ends the connecting, waits for the open ones to end, and sums up.
func (ch *churner) stop() *churnResult {
	<-ch.done
	secs := time.Since(ch.start).Seconds()
	ch.wg.Wait()
	ch.cancel()
	ch.mu.Lock()
	defer ch.mu.Unlock()
	r := &churnResult{
		Wanted: ch.wanted.Load(), Connects: ch.connects.Load(), Disconnects: ch.disconnects.Load(),
		Failed: ch.failed.Load(), Skipped: ch.skipped.Load(), FirstErr: ch.firstErr, Secs: secs,
		ConnectP50us: ch.latency.Quantile(0.5), ConnectP99us: ch.latency.Quantile(0.99), BytesRead: ch.bytes.Load(),
	}
	r.ConnectRate = float64(r.Connects) / secs
	return r
}

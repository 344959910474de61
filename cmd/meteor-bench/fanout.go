package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"
)

// fanoutResult is the fan-out scenario's outcome.
type fanoutResult struct {
	Subscribers  int     `json:"subscribers"`
	Failed       int     `json:"failed"`
	Workers      int     `json:"workers"`
	Published    int     `json:"published"`
	PublishSecs  float64 `json:"publish_secs"`
	PublishRate  float64 `json:"publish_rate"` // achieved, messages/s
	Size         int     `json:"size"`
	Expected     int64   `json:"expected"`  // subscribers x published
	Delivered    int64   `json:"delivered"` // distinct (subscriber, message) pairs
	DeliverySecs float64 `json:"delivery_secs"`
	DeliveryRate float64 `json:"delivery_rate"` // per second
	Lost         int64   `json:"lost"`
	Dups         int64   `json:"dups"`
	Disorder     int64   `json:"disorder"`
	Malformed    int64   `json:"malformed"`
	ServerClosed int     `json:"server_closed"`
	LatencyP50us int64   `json:"latency_p50_us"`
	LatencyP90us int64   `json:"latency_p90_us"`
	LatencyP99us int64   `json:"latency_p99_us"`
	LatencyMaxus int64   `json:"latency_max_us"`
	CPUSecs      float64 `json:"server_cpu_secs,omitempty"`
	CPUPercent   float64 `json:"server_cpu_percent,omitempty"`
}

// fanoutParams are the fan-out scenario's own settings.
type fanoutParams struct {
	rate     float64
	size     int
	duration time.Duration
	drain    time.Duration
	pid      int
}

func runFanout(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs, "fanout", 1000)
	var p fanoutParams
	fs.Float64Var(&p.rate, "rate", 100, "messages published per second")
	fs.IntVar(&p.size, "size", 200, "message text bytes (at least the stamp, about 30)")
	fs.DurationVar(&p.duration, "duration", 10*time.Second, "how long to publish")
	fs.DurationVar(&p.drain, "drain", 5*time.Second, "after publishing, how long to wait for deliveries to stop coming")
	fs.IntVar(&p.pid, "pid", 0, "server process id, to read its CPU from /proc (optional)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	if p.rate <= 0 || p.duration <= 0 {
		return errors.New("-rate and -duration must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "fanout: "+format+"\n", a...) }
	res, err := fanout(ctx, &c, p, logf)
	if res != nil {
		printFanout(stdout, &c, res)
		if c.jsonOut {
			json.NewEncoder(stdout).Encode(res)
		}
	}
	return err
}

func fanout(ctx context.Context, c *common, p fanoutParams, logf func(string, ...any)) (*fanoutResult, error) {
	res := &fanoutResult{Workers: c.workers, Size: p.size}
	ctl, err := dialCtl(ctx, c.controller)
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	count0, err := ctl.Count(c.channel)
	if err != nil {
		return nil, err
	}
	fl, err := startFleet(ctx, c.shards(), true, c.timeout, logWriter{logf})
	if err != nil {
		return nil, err
	}
	closed := false
	defer func() {
		if !closed {
			fl.close(30 * time.Second)
		}
	}()
	conn, err := fl.collect(ctx, "connected")
	if err != nil {
		return nil, err
	}
	res.Subscribers, res.Failed = conn.OK, conn.Failed
	logf("%d connected, %d failed in %.1f s%s", conn.OK, conn.Failed, conn.ConnectSecs, errNote(conn.FirstErr))
	if conn.OK == 0 {
		return nil, fmt.Errorf("no subscriber connected: %s", conn.FirstErr)
	}
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	_, err = ctl.waitCount(wctx, c.channel, func(n int) bool { return n >= count0+conn.OK })
	wcancel()
	if err != nil {
		return nil, err
	}

	var cpu0 procSample
	if p.pid > 0 {
		if cpu0, err = readProc(p.pid); err != nil {
			return nil, err
		}
	}
	logf("publishing %.0f msg/s of %d bytes for %v", p.rate, p.size, p.duration)
	start := time.Now()
	interval := time.Duration(float64(time.Second) / p.rate)
	published := 0
	for time.Since(start) < p.duration && ctx.Err() == nil {
		if wait := time.Until(start.Add(time.Duration(published) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		if _, err := ctl.Publish(c.channel, stampText(published, time.Now(), p.size)); err != nil {
			return nil, err
		}
		published++
	}
	res.Published = published
	res.PublishSecs = time.Since(start).Seconds()
	res.PublishRate = float64(published) / res.PublishSecs
	res.Expected = int64(conn.OK) * int64(published)

	// Wait until every delivery came, or none came for the drain time.
	var last int64 = -1
	lastChange := time.Now()
	for {
		st, err := fl.ask(ctx, "status", "status")
		if err != nil {
			return nil, err
		}
		if st.Distinct != last {
			last, lastChange = st.Distinct, time.Now()
		}
		if st.Distinct >= res.Expected || time.Since(lastChange) >= p.drain || ctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	res.DeliverySecs = lastChange.Sub(start).Seconds()
	if p.pid > 0 {
		if cpu1, err := readProc(p.pid); err == nil {
			res.CPUSecs = float64(cpu1.CPU-cpu0.CPU) / clockTicks
			res.CPUPercent = 100 * res.CPUSecs / time.Since(start).Seconds()
		}
	}
	st, err := fl.ask(ctx, fmt.Sprintf("end %d", published), "status")
	if err != nil {
		return nil, err
	}
	res.Delivered, res.Lost, res.Dups, res.Disorder = st.Distinct, st.Lost, st.Dups, st.Disorder
	res.Malformed, res.ServerClosed = st.Malformed, st.ServerClosed
	res.DeliveryRate = float64(st.Distinct) / res.DeliverySecs
	if st.Latency != nil {
		res.LatencyP50us = st.Latency.Quantile(0.50)
		res.LatencyP90us = st.Latency.Quantile(0.90)
		res.LatencyP99us = st.Latency.Quantile(0.99)
		res.LatencyMaxus = st.Latency.Max
	}
	closed = true
	if _, err := fl.close(60 * time.Second); err != nil {
		logf("closing: %v", err)
	}
	return res, nil
}

func printFanout(w io.Writer, c *common, r *fanoutResult) {
	fmt.Fprintf(w, "fanout: %d subscribers (%d failed) in mode %s on channel %s, %d process(es)\n",
		r.Subscribers, r.Failed, c.mode, c.channel, r.Workers)
	fmt.Fprintf(w, "  published       %d messages of %d bytes in %.1f s (%.1f msg/s)\n", r.Published, r.Size, r.PublishSecs, r.PublishRate)
	fmt.Fprintf(w, "  delivered       %d of %d (%.0f deliveries/s)\n", r.Delivered, r.Expected, r.DeliveryRate)
	fmt.Fprintf(w, "  lost %d, duplicated %d, out of order %d, malformed frames %d, closed by the server %d\n",
		r.Lost, r.Dups, r.Disorder, r.Malformed, r.ServerClosed)
	fmt.Fprintf(w, "  latency         p50 %s  p90 %s  p99 %s  max %s\n",
		us(r.LatencyP50us), us(r.LatencyP90us), us(r.LatencyP99us), us(r.LatencyMaxus))
	if r.CPUSecs > 0 {
		fmt.Fprintf(w, "  server CPU      %.2f s = %.1f%% of one core\n", r.CPUSecs, r.CPUPercent)
	}
}

func us(v int64) string { return (time.Duration(v) * time.Microsecond).String() }

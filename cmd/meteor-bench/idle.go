package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"time"
)

// common are the flags of every scenario.
type common struct {
	target, controller      string
	prefix, mode, channel   string
	n                       int
	sources                 string
	concurrency             int
	workers, perWorker      int
	connectTimeout, timeout time.Duration
	readBuffer              int
	jsonOut                 bool
	parsedSources           []netip.Addr // sources, parsed by check
	run                     string       // run token, set by check
}

func (c *common) register(fs *flag.FlagSet, channel string, n int) {
	fs.StringVar(&c.target, "target", "127.0.0.1:4670", "subscriber listener, host:port")
	fs.StringVar(&c.controller, "controller", "127.0.0.1:4671", "controller listener, host:port")
	fs.StringVar(&c.prefix, "prefix", "/push", "SubscriberDynamicPageAddress")
	fs.StringVar(&c.mode, "mode", "xhrinteractive", "subscriber mode (a streaming one)")
	fs.StringVar(&c.channel, "channel", channel, "channel every subscriber joins")
	fs.IntVar(&c.n, "n", n, "subscribers")
	fs.StringVar(&c.sources, "sources", "", "source addresses to spread connections over, e.g. 127.0.0.2-127.0.0.50 (default: the kernel's choice)")
	fs.IntVar(&c.concurrency, "concurrency", 200, "connections being opened at once, over all workers")
	fs.IntVar(&c.workers, "workers", 0, "worker processes holding the subscribers; 0: one per -per-worker subscribers, none (this process) when one suffices")
	fs.IntVar(&c.perWorker, "per-worker", 15000, "most subscribers per process (each is an open file; the limit here is 20,000 per process)")
	fs.DurationVar(&c.connectTimeout, "connect-timeout", 10*time.Second, "per connection: connect and read the header")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Minute, "the whole run")
	fs.IntVar(&c.readBuffer, "read-buffer", 512, "bytes each subscriber reads per call")
	fs.BoolVar(&c.jsonOut, "json", false, "also print the result as one JSON line")
}

func (c *common) check() error {
	if c.n <= 0 {
		return errors.New("-n must be positive")
	}
	if c.perWorker <= 0 {
		return errors.New("-per-worker must be positive")
	}
	var err error
	if c.parsedSources, err = parseSources(c.sources); err != nil {
		return err
	}
	if c.workers == 0 {
		c.workers = (c.n + c.perWorker - 1) / c.perWorker
	}
	if c.workers > 1 && (c.n+c.workers-1)/c.workers > c.perWorker {
		return fmt.Errorf("-n %d over %d workers is more than -per-worker %d each", c.n, c.workers, c.perWorker)
	}
	if c.workers == 1 && c.n > c.perWorker {
		return fmt.Errorf("-n %d is more than -per-worker %d in one process", c.n, c.perWorker)
	}
	// A run token keeps hostids unique across runs, so that a subscriber
	// left over from an earlier run is not replaced.
	c.run = "b" + strconv.FormatInt(time.Now().UnixNano()/1e6%(36*36*36*36*36*36), 36)
	return nil
}

func (c *common) shards() []shardConfig {
	return splitShards(shardConfig{
		Target: c.target, Prefix: c.prefix, Mode: c.mode, Channel: c.channel,
		Run: c.run, Sources: c.parsedSources, Concurrency: c.concurrency,
		ConnectTimeout: c.connectTimeout, ReadBuffer: c.readBuffer,
	}, c.n, c.workers)
}

// idleResult is the idle scenario's outcome.
type idleResult struct {
	Subscribers      int     `json:"subscribers"`
	Failed           int     `json:"failed"`
	Workers          int     `json:"workers"`
	ConnectSecs      float64 `json:"connect_secs"`
	ServerCount      int     `json:"server_count"`
	RSSBefore        int64   `json:"rss_before"`
	RSSHeld          int64   `json:"rss_held"` // median of the samples
	RSSHeldMin       int64   `json:"rss_held_min"`
	RSSHeldMax       int64   `json:"rss_held_max"`
	AnonBefore       int64   `json:"anon_before"`
	AnonHeld         int64   `json:"anon_held"`
	RSSAfterClose    int64   `json:"rss_after_close"`
	KiBPerSubscriber float64 `json:"kib_per_subscriber"`
	AnonKiBPerSub    float64 `json:"anon_kib_per_subscriber"`
	HoldSecs         float64 `json:"hold_secs"`
	CPUSecs          float64 `json:"cpu_secs"`    // server CPU during the hold
	CPUPercent       float64 `json:"cpu_percent"` // of one core
	ThreadsBefore    int     `json:"threads_before"`
	ThreadsHeld      int     `json:"threads_held"`
	FDsHeld          int     `json:"fds_held"`
	ServerClosed     int     `json:"server_closed"` // during the run
	PingsPerSub      float64 `json:"pings_per_subscriber"`
	BytesPerSub      float64 `json:"bytes_per_subscriber"`
}

func runIdle(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("idle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs, "idle", 10000)
	pid := fs.Int("pid", 0, "server process id, to read its RSS and CPU from /proc (required)")
	hold := fs.Duration("hold", 10*time.Second, "how long the subscribers sit idle while the server is sampled")
	settle := fs.Duration("settle", 3*time.Second, "wait after the server counts every subscriber, before sampling")
	samples := fs.Int("samples", 5, "RSS samples taken over the hold")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	if *pid <= 0 {
		return errors.New("-pid is required")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "idle: "+format+"\n", a...) }

	res, err := idle(ctx, &c, *pid, *hold, *settle, max(*samples, 1), logf)
	if res != nil {
		printIdle(stdout, &c, res)
		if c.jsonOut {
			json.NewEncoder(stdout).Encode(res)
		}
	}
	return err
}

func sampleN(ctx context.Context, pid, n int, every time.Duration) ([]procSample, error) {
	var out []procSample
	for i := range n {
		if i > 0 {
			select {
			case <-ctx.Done():
				return out, ctx.Err()
			case <-time.After(every):
			}
		}
		s, err := readProc(pid)
		if err != nil {
			return out, fmt.Errorf("server process %d: %w", pid, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func idle(ctx context.Context, c *common, pid int, hold, settle time.Duration, samples int, logf func(string, ...any)) (*idleResult, error) {
	res := &idleResult{Workers: c.workers}
	before, err := sampleN(ctx, pid, 3, 300*time.Millisecond)
	if err != nil {
		return nil, err
	}
	b := summarise(before)
	res.RSSBefore, res.AnonBefore, res.ThreadsBefore = b.Median, b.AnonMedian, before[len(before)-1].Threads
	ctl, err := dialCtl(ctx, c.controller)
	if err != nil {
		return nil, err
	}
	defer ctl.Close()
	count0, err := ctl.Count(c.channel)
	if err != nil {
		return nil, err
	}
	if count0 != 0 {
		logf("channel %s already has %d subscribers; counting from there", c.channel, count0)
	}

	logf("server pid %d: RSS %.1f MiB before; opening %d subscribers in %d process(es)", pid, mib(res.RSSBefore), c.n, c.workers)
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
	res.Subscribers, res.Failed, res.ConnectSecs = conn.OK, conn.Failed, conn.ConnectSecs
	logf("%d connected, %d failed (%d retries) in %.1f s%s", conn.OK, conn.Failed, conn.Retries, conn.ConnectSecs, errNote(conn.FirstErr))
	if conn.OK == 0 {
		return nil, fmt.Errorf("no subscriber connected: %s", conn.FirstErr)
	}
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	res.ServerCount, err = ctl.waitCount(wctx, c.channel, func(n int) bool { return n >= count0+conn.OK })
	wcancel()
	res.ServerCount -= count0
	if err != nil {
		return nil, err
	}
	logf("server counts %d subscribers; settling %v, then sampling for %v", res.ServerCount, settle, hold)
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	first, err := readProc(pid)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	held, err := sampleN(ctx, pid, samples, hold/time.Duration(samples))
	if err != nil {
		return nil, err
	}
	// The last sample closes the hold.
	if wait := hold - time.Since(t0); wait > 0 {
		time.Sleep(wait)
	}
	last, err := readProc(pid)
	if err != nil {
		return nil, err
	}
	res.HoldSecs = time.Since(t0).Seconds()
	res.CPUSecs = float64(last.CPU-first.CPU) / clockTicks
	res.CPUPercent = 100 * res.CPUSecs / res.HoldSecs
	h := summarise(append(held, last))
	res.RSSHeld, res.RSSHeldMin, res.RSSHeldMax, res.AnonHeld = h.Median, h.Min, h.Max, h.AnonMedian
	res.ThreadsHeld, res.FDsHeld = last.Threads, last.FDs
	res.KiBPerSubscriber = float64(res.RSSHeld-res.RSSBefore) / 1024 / float64(res.ServerCount)
	res.AnonKiBPerSub = float64(res.AnonHeld-res.AnonBefore) / 1024 / float64(res.ServerCount)

	st, err := fl.ask(ctx, "status", "status")
	if err != nil {
		return res, err
	}
	res.ServerClosed = st.ServerClosed
	res.PingsPerSub = float64(st.Pings) / float64(max(st.OK, 1))
	res.BytesPerSub = float64(st.Bytes) / float64(max(st.OK, 1))

	closed = true
	if _, err := fl.close(60 * time.Second); err != nil {
		logf("closing: %v", err)
	}
	wctx, wcancel = context.WithTimeout(context.Background(), 30*time.Second)
	if _, err := ctl.waitCount(wctx, c.channel, func(n int) bool { return n <= count0 }); err != nil {
		logf("after closing: %v", err)
	}
	wcancel()
	time.Sleep(2 * time.Second)
	if after, err := readProc(pid); err == nil {
		res.RSSAfterClose = after.RSS
	}
	return res, nil
}

func printIdle(w io.Writer, c *common, r *idleResult) {
	fmt.Fprintf(w, "idle: %d subscribers (%d failed) in mode %s on channel %s, %d process(es), connected in %.1f s\n",
		r.Subscribers, r.Failed, c.mode, c.channel, r.Workers, r.ConnectSecs)
	fmt.Fprintf(w, "  server RSS      before %.1f MiB, held %.1f MiB (min %.1f, max %.1f), after close %.1f MiB\n",
		mib(r.RSSBefore), mib(r.RSSHeld), mib(r.RSSHeldMin), mib(r.RSSHeldMax), mib(r.RSSAfterClose))
	fmt.Fprintf(w, "  per subscriber  %.2f KiB RSS (%.2f KiB anonymous)\n", r.KiBPerSubscriber, r.AnonKiBPerSub)
	fmt.Fprintf(w, "  server CPU      %.2f s in %.1f s held = %.2f%% of one core\n", r.CPUSecs, r.HoldSecs, r.CPUPercent)
	fmt.Fprintf(w, "  server threads  %d before, %d held; open files held %d\n", r.ThreadsBefore, r.ThreadsHeld, r.FDsHeld)
	fmt.Fprintf(w, "  subscribers     %.2f pings and %.0f body bytes each; %d closed by the server\n",
		r.PingsPerSub, r.BytesPerSub, r.ServerClosed)
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func errNote(s string) string {
	if s == "" {
		return ""
	}
	return "; first error: " + s
}

// logWriter passes a worker's standard error to logf, line by line as
// the writes come.
type logWriter struct{ logf func(string, ...any) }

func (l logWriter) Write(p []byte) (int, error) {
	l.logf("worker: %s", trimNL(p))
	return len(p), nil
}

func trimNL(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

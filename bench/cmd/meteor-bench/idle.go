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
	ep                      endpoint
	channel                 string
	n                       int
	sources                 string
	concurrency             int
	workers, perWorker      int
	connectTimeout, timeout time.Duration
	readBuffer              int
	trackSeqs               int           // publications whose every delivery's latency is kept (burst)
	resume                  bool          // dropped subscribers reconnect and resume (resume.go)
	resumeJitter            time.Duration // the most a dropped subscriber waits before reconnecting
	resumeAddrs             string        // where dropped subscribers reconnect, host:port[,...]
	jsonOut                 bool
	parsedSources           []netip.Addr // sources, parsed by check
	run                     string       // run token, set by check
}

func (c *common) register(fs *flag.FlagSet, channel string, n int) {
	c.ep.register(fs)
	fs.StringVar(&c.channel, "channel", channel, "channel every subscriber joins")
	fs.IntVar(&c.n, "n", n, "subscribers")
	fs.StringVar(&c.sources, "sources", "", "source addresses to spread connections over, e.g. 127.0.0.2-127.0.0.50 (default: the kernel's choice)")
	fs.IntVar(&c.concurrency, "concurrency", 200, "connections being opened at once, over all workers")
	fs.IntVar(&c.workers, "workers", 0, "worker processes holding the subscribers; 0: one per -per-worker subscribers, none (this process) when one suffices")
	fs.IntVar(&c.perWorker, "per-worker", 15000, "most subscribers per process (each is an open file; the limit here is 20,000 per process)")
	fs.DurationVar(&c.connectTimeout, "connect-timeout", 10*time.Second, "per connection: connect and read the header")
	fs.DurationVar(&c.timeout, "timeout", 5*time.Minute, "the whole run")
	fs.IntVar(&c.readBuffer, "read-buffer", 4096, "bytes each subscriber reads per call")
	fs.BoolVar(&c.jsonOut, "json", false, "also print the result as one JSON line")
}

// register adds the flags that choose the server and its transport.
func (e *endpoint) register(fs *flag.FlagSet) {
	fs.StringVar(&e.Kind, "target", targetMeteor, "server: meteor, nchan (bench/nchan/nginx.conf or nginx-redis.conf), pushpin (bench/pushpin/pushpin.conf, with meteor-bench grip-origin behind it) or centrifugo (bench/centrifugo/config.json; -transport ws)")
	fs.StringVar(&e.Transport, "transport", transportStream, "stream (Meteor xhrinteractive, Nchan http-raw-stream), sse, ws, or ndjson (Meteor)")
	fs.StringVar(&e.Addr, "addr", "", "subscriber listeners, host:port[,host:port...] (subscriber i on the (i mod n)-th; default 127.0.0.1:4670 for meteor, 127.0.0.1:4680 for nchan, 127.0.0.1:4690 for pushpin, 127.0.0.1:4700 for centrifugo)")
	fs.StringVar(&e.Ctl, "controller", "127.0.0.1:4671", "meteor: controller listener, host:port")
	fs.StringVar(&e.PubURL, "pub-url", "", "HTTP publishing base URL (default http://127.0.0.1:4672, meteor's API; http://<addr> for nchan; http://127.0.0.1:4691 for pushpin)")
	fs.StringVar(&e.Publish, "publish", "", "how to publish: line (meteor's controller), http, ws (nchan: text frames on a WebSocket to the publisher location, pipelined), or zmq (pushpin: its ZeroMQ PULL socket, pipelined, no acknowledgements) (default line for meteor, http for the others)")
	fs.StringVar(&e.ZMQ, "pub-zmq", "127.0.0.1:4692", "pushpin -publish zmq: the handler's push_in_spec, host:port")
	fs.StringVar(&e.Prefix, "prefix", "/push", "meteor stream: SubscriberDynamicPageAddress")
	fs.StringVar(&e.Mode, "mode", "xhrinteractive", "meteor stream: subscriber mode (a streaming one)")
	fs.StringVar(&e.APIKey, "api-key", "meteor-bench", "centrifugo: the HTTP API key (X-API-Key; bench/centrifugo/config.json's http_api.key)")
	fs.StringVar(&e.CountAt, "count-at", "", "where the server counts the subscribers, summed: meteor controllers or nchan/centrifugo listeners, host:port[,...]; none: trust the handshakes (default: -controller, or the publish URL's host)")
	fs.StringVar(&e.Token, "token", "", "meteor: a subscriber token for SubscriberAuth 1, sent as ?token= on every subscription (WebSocket included)")
	fs.StringVar(&e.Engine, "engine", "memory", "the server's engine, recorded in the results: memory or redis (Nchan with nginx-redis.conf, meteord -Engine redis, Centrifugo's config.json)")
}

func (c *common) check() error {
	if err := c.ep.defaults(); err != nil {
		return err
	}
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
		EP: c.ep, Channel: c.channel,
		Run: c.run, Sources: c.parsedSources, Concurrency: c.concurrency,
		ConnectTimeout: c.connectTimeout, ReadBuffer: c.readBuffer, TrackSeqs: c.trackSeqs,
		Resume: c.resume, ResumeJitter: c.resumeJitter, ResumeAddrs: (&endpoint{Addr: c.resumeAddrs}).addrs(),
	}, c.n, c.workers)
}

// idleResult is the idle scenario's outcome.
type idleResult struct {
	label
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
	PSSBefore        int64   `json:"pss_before"`
	PSSHeld          int64   `json:"pss_held"`
	PSSKiBPerSub     float64 `json:"pss_kib_per_subscriber"` // the figure to compare across servers
	Procs            int     `json:"server_procs"`           // server processes summed (1 + children)
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
	var pids pidList
	fs.Var(&pids, "pid", "server process ids, comma-separated, to read their RSS and CPU from /proc, summed with their children's (required; several meteord nodes and their Redis)")
	hold := fs.Duration("hold", 10*time.Second, "how long the subscribers sit idle while the server is sampled")
	settle := fs.Duration("settle", 3*time.Second, "wait after the server counts every subscriber, before sampling")
	samples := fs.Int("samples", 5, "RSS samples taken over the hold")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	if len(pids) == 0 {
		return errors.New("-pid is required")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "idle: "+format+"\n", a...) }

	res, err := idle(ctx, &c, pids, *hold, *settle, max(*samples, 1), logf)
	if res != nil {
		printIdle(stdout, &c, res)
		if c.jsonOut {
			json.NewEncoder(stdout).Encode(res)
		}
	}
	return err
}

func sampleN(ctx context.Context, pids []int, n int, every time.Duration) ([]procSample, error) {
	var out []procSample
	for i := range n {
		if i > 0 {
			select {
			case <-ctx.Done():
				return out, ctx.Err()
			case <-time.After(every):
			}
		}
		s, err := readTrees(pids)
		if err != nil {
			return out, fmt.Errorf("server processes %v: %w", pids, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func idle(ctx context.Context, c *common, pids []int, hold, settle time.Duration, samples int, logf func(string, ...any)) (*idleResult, error) {
	res := &idleResult{label: c.label("idle"), Workers: c.workers}
	before, err := sampleN(ctx, pids, 3, 300*time.Millisecond)
	if err != nil {
		return nil, err
	}
	b := summarise(before)
	res.RSSBefore, res.AnonBefore, res.ThreadsBefore = b.Median, b.AnonMedian, before[len(before)-1].Threads
	res.PSSBefore, res.Procs = b.PSSMedian, 1+before[len(before)-1].Procs
	logf("server pid %v: RSS %.1f MiB before; opening %d subscribers in %d process(es)", pids, mib(res.RSSBefore), c.n, c.workers)
	sess, err := openSession(ctx, c, logf)
	if err != nil {
		return nil, err
	}
	defer sess.release(logf)
	conn := sess.conn
	res.Subscribers, res.Failed, res.ConnectSecs = conn.OK, conn.Failed, conn.ConnectSecs
	if res.ServerCount, err = sess.count(); err != nil {
		return nil, err
	}
	res.ServerCount -= sess.count0
	logf("server counts %d subscribers; settling %v, then sampling for %v", res.ServerCount, settle, hold)
	select {
	case <-time.After(settle):
	case <-ctx.Done():
		return nil, ctx.Err()
	}

	first, err := readTrees(pids)
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	held, err := sampleN(ctx, pids, samples, hold/time.Duration(samples))
	if err != nil {
		return nil, err
	}
	// The last sample closes the hold.
	if wait := hold - time.Since(t0); wait > 0 {
		time.Sleep(wait)
	}
	last, err := readTrees(pids)
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
	res.PSSHeld = h.PSSMedian
	res.PSSKiBPerSub = float64(res.PSSHeld-res.PSSBefore) / 1024 / float64(res.ServerCount)

	st, err := sess.fl.ask(ctx, "end 0", "status")
	if err != nil {
		return res, err
	}
	res.ServerClosed = st.ServerClosed
	res.PingsPerSub = float64(st.Pings) / float64(max(st.OK, 1))
	res.BytesPerSub = float64(st.Bytes) / float64(max(st.OK, 1))

	sess.close(logf)
	if sess.cnt != nil {
		wctx, wcancel := context.WithTimeout(context.Background(), 30*time.Second)
		if _, err := waitCount(wctx, sess.cnt, c.channel, func(n int) bool { return n <= sess.count0 }); err != nil {
			logf("after closing: %v", err)
		}
		wcancel()
	}
	time.Sleep(2 * time.Second)
	if after, err := readTrees(pids); err == nil {
		res.RSSAfterClose = after.RSS
	}
	return res, nil
}

func printIdle(w io.Writer, c *common, r *idleResult) {
	fmt.Fprintf(w, "idle: %d subscribers (%d failed), %s, on channel %s, %d process(es), connected in %.1f s\n",
		r.Subscribers, r.Failed, c.ep.Kind+" "+c.ep.Transport, c.channel, r.Workers, r.ConnectSecs)
	fmt.Fprintf(w, "  server RSS      before %.1f MiB, held %.1f MiB (min %.1f, max %.1f), after close %.1f MiB\n",
		mib(r.RSSBefore), mib(r.RSSHeld), mib(r.RSSHeldMin), mib(r.RSSHeldMax), mib(r.RSSAfterClose))
	fmt.Fprintf(w, "  per subscriber  %.2f KiB RSS (%.2f KiB anonymous), %.2f KiB PSS, over %d process(es)\n",
		r.KiBPerSubscriber, r.AnonKiBPerSub, r.PSSKiBPerSub, r.Procs)
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

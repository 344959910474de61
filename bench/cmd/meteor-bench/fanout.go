package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"
)

// label names a result: which scenario ran against which server, how.
type label struct {
	Scenario  string `json:"scenario"`
	Target    string `json:"target"`
	Transport string `json:"transport"`
	Publish   string `json:"publish"`
	Engine    string `json:"engine,omitempty"` // memory or redis
	Nodes     int    `json:"nodes,omitempty"`  // subscriber listeners named by -addr
}

func (c *common) label(scenario string) label {
	return c.ep.label(scenario, c.ep.Transport)
}

func (e *endpoint) label(scenario, transport string) label {
	return label{Scenario: scenario, Target: e.Kind, Transport: transport, Publish: e.Publish, Engine: e.Engine, Nodes: len(e.addrs())}
}

// fanoutResult is the fan-out (and churn) scenario's outcome.
type fanoutResult struct {
	label
	Subscribers  int          `json:"subscribers"`
	Failed       int          `json:"failed"`
	Workers      int          `json:"workers"`
	Published    int          `json:"published"`
	Scheduled    int          `json:"scheduled"` // due in the window at -rate
	PublishSecs  float64      `json:"publish_secs"`
	PublishRate  float64      `json:"publish_rate"` // achieved, messages/s
	WantedRate   float64      `json:"wanted_rate"`  // -rate
	PublishConns int          `json:"publish_conns"`
	PublishLagUS int64        `json:"publish_lag_max_us"` // latest send after its scheduled time
	Valid        bool         `json:"valid"`              // achieved rate >= 95 % of the asked
	Invalid      string       `json:"invalid,omitempty"`  // why not
	Acked        int64        `json:"acked"`
	AckErrors    int64        `json:"ack_errors"`
	AckFirstErr  string       `json:"ack_first_err,omitempty"`
	AckP50us     int64        `json:"ack_p50_us"` // send to acknowledgement
	AckP99us     int64        `json:"ack_p99_us"`
	AckMaxus     int64        `json:"ack_max_us"`
	Size         int          `json:"size"`
	Expected     int64        `json:"expected"`  // subscribers x published
	Delivered    int64        `json:"delivered"` // distinct (subscriber, message) pairs
	DeliverySecs float64      `json:"delivery_secs"`
	DeliveryRate float64      `json:"delivery_rate"` // per second
	Lost         int64        `json:"lost"`
	Dups         int64        `json:"dups"`
	Disorder     int64        `json:"disorder"`
	Malformed    int64        `json:"malformed"`
	ServerClosed int          `json:"server_closed"`
	LatencyP50us int64        `json:"latency_p50_us"`
	LatencyP90us int64        `json:"latency_p90_us"`
	LatencyP99us int64        `json:"latency_p99_us"`
	LatencyMaxus int64        `json:"latency_max_us"`
	CPUSecs      float64      `json:"server_cpu_secs,omitempty"`
	CPUPercent   float64      `json:"server_cpu_percent,omitempty"`
	GenCPUSecs   float64      `json:"generator_cpu_secs"` // this process and its workers, same interval
	GenCPUPct    float64      `json:"generator_cpu_percent"`
	Churn        *churnResult `json:"churn,omitempty"`
}

// fanoutParams are the fan-out scenario's own settings.
type fanoutParams struct {
	rate     float64
	size     int
	duration time.Duration
	drain    time.Duration
	pids     pidList
	pubConns int         // HTTP: publishing connections
	maxBurst int         // most messages sent back to back when behind
	churn    churnParams // churn.rate > 0: connect and disconnect while publishing
}

func (p *fanoutParams) register(fs *flag.FlagSet) {
	fs.Float64Var(&p.rate, "rate", 100, "messages published per second")
	fs.IntVar(&p.size, "size", 200, "message text bytes (at least the stamp, about 30)")
	fs.DurationVar(&p.duration, "duration", 10*time.Second, "how long to publish")
	fs.DurationVar(&p.drain, "drain", 5*time.Second, "after publishing, how long to wait for deliveries to stop coming")
	fs.Var(&p.pids, "pid", "server process ids, comma-separated, to read their CPU (and their children's) from /proc (optional)")
	fs.IntVar(&p.pubConns, "pub-conns", 8, "HTTP publishing: concurrent kept-alive connections (the line protocol pipelines on one)")
	fs.IntVar(&p.maxBurst, "max-burst", 0, "most messages sent back to back when the clock is behind (0: 2, or 5 ms' worth)")
}

func runFanout(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runFanoutLike(ctx, "fanout", args, stdout, stderr)
}

func runChurn(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return runFanoutLike(ctx, "churn", args, stdout, stderr)
}

func runFanoutLike(ctx context.Context, scenario string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(scenario, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs, scenario, 1000)
	var p fanoutParams
	p.register(fs)
	if scenario == "churn" {
		p.churn.register(fs)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	if p.rate <= 0 || p.duration <= 0 {
		return errors.New("-rate and -duration must be positive")
	}
	if scenario == "churn" && p.churn.rate <= 0 {
		return errors.New("-churn-rate must be positive")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, scenario+": "+format+"\n", a...) }
	res, err := fanout(ctx, &c, p, logf)
	if res != nil {
		res.Scenario = scenario
		printFanout(stdout, &c, res)
		if c.jsonOut {
			json.NewEncoder(stdout).Encode(res)
		}
	}
	return err
}

func fanout(ctx context.Context, c *common, p fanoutParams, logf func(string, ...any)) (*fanoutResult, error) {
	res := &fanoutResult{label: c.label("fanout"), Workers: c.workers, Size: p.size, WantedRate: p.rate}
	sess, err := openSession(ctx, c, logf)
	if err != nil {
		return nil, err
	}
	defer sess.release(logf)
	res.Subscribers, res.Failed = sess.conn.OK, sess.conn.Failed
	if c.ep.Publish == publishHTTP {
		res.PublishConns = max(p.pubConns, 1)
	} else {
		res.PublishConns = 1
	}
	pub, err := c.ep.newAsyncPublisher(ctx, c.channel, res.PublishConns)
	if err != nil {
		return nil, err
	}
	finished := false
	defer func() {
		if !finished {
			pub.finish(0)
		}
	}()

	var cpu0, gen0 procSample
	if len(p.pids) > 0 {
		if cpu0, err = readTrees(p.pids); err != nil {
			return nil, err
		}
	}
	gen0, genErr := readTree(os.Getpid())
	var ch *churner
	if p.churn.rate > 0 {
		ch = startChurn(ctx, c, p.churn, p.duration)
	}
	logf("publishing %.0f msg/s of %d bytes for %v, open loop (%s, %d connection(s))", p.rate, p.size, p.duration, c.ep.Publish, res.PublishConns)
	start := time.Now()
	lr, perr := openLoop(ctx, pub, loopParams{rate: p.rate, size: p.size, duration: p.duration, maxBurst: p.maxBurst})
	if ch != nil {
		res.Churn = ch.stop()
	}
	if perr != nil {
		return nil, perr
	}
	res.Published, res.Scheduled, res.PublishSecs, res.PublishRate, res.PublishLagUS = lr.Published, lr.Scheduled, lr.Secs, lr.Rate, lr.LagMaxUS
	res.Valid, res.Invalid = validRate(res.PublishRate, p.rate)
	if !res.Valid {
		logf("NOT VALID: %s", res.Invalid)
	}
	res.Expected = int64(sess.conn.OK) * int64(lr.Published)

	_, lastChange, err := sess.waitDeliveries(ctx, res.Expected, p.drain, 50*time.Millisecond)
	if err != nil {
		return nil, err
	}
	res.DeliverySecs = lastChange.Sub(start).Seconds()
	elapsed := time.Since(start).Seconds()
	if len(p.pids) > 0 {
		if cpu1, err := readTrees(p.pids); err == nil {
			res.CPUSecs = float64(cpu1.CPU-cpu0.CPU) / clockTicks
			res.CPUPercent = 100 * res.CPUSecs / elapsed
		}
	}
	if gen1, err := readTree(os.Getpid()); err == nil && genErr == nil {
		res.GenCPUSecs = float64(gen1.CPU-gen0.CPU) / clockTicks
		res.GenCPUPct = 100 * res.GenCPUSecs / elapsed
	}
	finished = true
	acks := pub.finish(p.drain)
	res.Acked, res.AckErrors, res.AckFirstErr = acks.Acked, acks.Errors, acks.FirstErr
	ah := acks.Latency.sparse()
	res.AckP50us, res.AckP99us, res.AckMaxus = ah.Quantile(0.50), ah.Quantile(0.99), ah.Max

	st, err := sess.fl.ask(ctx, fmt.Sprintf("end %d", lr.Published), "status")
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
	return res, nil
}

func printFanout(w io.Writer, c *common, r *fanoutResult) {
	fmt.Fprintf(w, "%s: %d subscribers (%d failed), %s %s, on channel %s, %d process(es)\n",
		r.Scenario, r.Subscribers, r.Failed, c.ep.Kind, c.ep.Transport, c.channel, r.Workers)
	valid := "valid"
	if !r.Valid {
		valid = "NOT VALID: " + r.Invalid
	}
	fmt.Fprintf(w, "  published       %d of %d scheduled, %d bytes each, in %.1f s: %.1f msg/s of %g asked (%s); open loop, %s x %d conn(s), latest send %s behind schedule\n",
		r.Published, r.Scheduled, r.Size, r.PublishSecs, r.PublishRate, r.WantedRate, valid, c.ep.Publish, r.PublishConns, us(r.PublishLagUS))
	if c.ep.Publish == publishZMQ {
		fmt.Fprintf(w, "  acknowledged    none to wait for (a ZeroMQ PUSH socket has no acknowledgements)\n")
	} else {
		fmt.Fprintf(w, "  acknowledged    %d, %d errors%s; publish to acknowledgement p50 %s  p99 %s  max %s\n",
			r.Acked, r.AckErrors, errNote(r.AckFirstErr), us(r.AckP50us), us(r.AckP99us), us(r.AckMaxus))
	}
	fmt.Fprintf(w, "  delivered       %d of %d (%.0f deliveries/s)\n", r.Delivered, r.Expected, r.DeliveryRate)
	fmt.Fprintf(w, "  lost %d, duplicated %d, out of order %d, malformed frames %d, closed by the server %d\n",
		r.Lost, r.Dups, r.Disorder, r.Malformed, r.ServerClosed)
	fmt.Fprintf(w, "  latency         p50 %s  p90 %s  p99 %s  max %s\n",
		us(r.LatencyP50us), us(r.LatencyP90us), us(r.LatencyP99us), us(r.LatencyMaxus))
	if r.CPUSecs > 0 {
		fmt.Fprintf(w, "  server CPU      %.2f s = %.1f%% of one core\n", r.CPUSecs, r.CPUPercent)
	}
	fmt.Fprintf(w, "  generator CPU   %.2f s = %.1f%% of one core (this process and its workers)\n", r.GenCPUSecs, r.GenCPUPct)
	if ch := r.Churn; ch != nil {
		fmt.Fprintf(w, "  churn           %d connects (%.0f/s), %d disconnects, %d failed%s; connect p50 %s p99 %s\n",
			ch.Connects, ch.ConnectRate, ch.Disconnects, ch.Failed, errNote(ch.FirstErr), us(ch.ConnectP50us), us(ch.ConnectP99us))
	}
}

func us(v int64) string { return (time.Duration(v) * time.Microsecond).String() }

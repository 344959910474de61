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

// label names a result: which scenario ran against which server, how.
type label struct {
	Scenario  string `json:"scenario"`
	Target    string `json:"target"`
	Transport string `json:"transport"`
	Publish   string `json:"publish"`
}

func (c *common) label(scenario string) label {
	return label{Scenario: scenario, Target: c.ep.Kind, Transport: c.ep.Transport, Publish: c.ep.Publish}
}

// fanoutResult is the fan-out (and churn) scenario's outcome.
type fanoutResult struct {
	label
	Subscribers  int          `json:"subscribers"`
	Failed       int          `json:"failed"`
	Workers      int          `json:"workers"`
	Published    int          `json:"published"`
	PublishSecs  float64      `json:"publish_secs"`
	PublishRate  float64      `json:"publish_rate"` // achieved, messages/s
	WantedRate   float64      `json:"wanted_rate"`  // -rate
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
	Churn        *churnResult `json:"churn,omitempty"`
}

// fanoutParams are the fan-out scenario's own settings.
type fanoutParams struct {
	rate     float64
	size     int
	duration time.Duration
	drain    time.Duration
	pid      int
	churn    churnParams // churn.rate > 0: connect and disconnect while publishing
}

func (p *fanoutParams) register(fs *flag.FlagSet) {
	fs.Float64Var(&p.rate, "rate", 100, "messages published per second")
	fs.IntVar(&p.size, "size", 200, "message text bytes (at least the stamp, about 30)")
	fs.DurationVar(&p.duration, "duration", 10*time.Second, "how long to publish")
	fs.DurationVar(&p.drain, "drain", 5*time.Second, "after publishing, how long to wait for deliveries to stop coming")
	fs.IntVar(&p.pid, "pid", 0, "server process id, to read its CPU (and its children's) from /proc (optional)")
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

// pace publishes stamped messages on pub at rate for duration, and
// returns how many it published and when it began.
func pace(ctx context.Context, pub publisher, channel string, rate float64, size int, duration time.Duration) (int, time.Time, error) {
	start := time.Now()
	interval := time.Duration(float64(time.Second) / rate)
	published := 0
	for time.Since(start) < duration && ctx.Err() == nil {
		if wait := time.Until(start.Add(time.Duration(published) * interval)); wait > 0 {
			time.Sleep(wait)
		}
		if err := pub.Publish(channel, stampText(published, time.Now(), size)); err != nil {
			return published, start, err
		}
		published++
	}
	return published, start, nil
}

func fanout(ctx context.Context, c *common, p fanoutParams, logf func(string, ...any)) (*fanoutResult, error) {
	res := &fanoutResult{label: c.label("fanout"), Workers: c.workers, Size: p.size, WantedRate: p.rate}
	sess, err := openSession(ctx, c, logf)
	if err != nil {
		return nil, err
	}
	defer sess.release(logf)
	res.Subscribers, res.Failed = sess.conn.OK, sess.conn.Failed
	pub, err := c.ep.newPublisher(ctx)
	if err != nil {
		return nil, err
	}
	defer pub.Close()

	var cpu0 procSample
	if p.pid > 0 {
		if cpu0, err = readTree(p.pid); err != nil {
			return nil, err
		}
	}
	var ch *churner
	if p.churn.rate > 0 {
		ch = startChurn(ctx, c, p.churn, p.duration)
	}
	logf("publishing %.0f msg/s of %d bytes for %v (%s)", p.rate, p.size, p.duration, c.ep.Publish)
	published, start, perr := pace(ctx, pub, c.channel, p.rate, p.size, p.duration)
	res.PublishSecs = time.Since(start).Seconds()
	if ch != nil {
		res.Churn = ch.stop()
	}
	if perr != nil {
		return nil, perr
	}
	res.Published = published
	res.PublishRate = float64(published) / res.PublishSecs
	res.Expected = int64(sess.conn.OK) * int64(published)

	_, lastChange, err := sess.waitDeliveries(ctx, res.Expected, p.drain, 50*time.Millisecond)
	if err != nil {
		return nil, err
	}
	res.DeliverySecs = lastChange.Sub(start).Seconds()
	if p.pid > 0 {
		if cpu1, err := readTree(p.pid); err == nil {
			res.CPUSecs = float64(cpu1.CPU-cpu0.CPU) / clockTicks
			res.CPUPercent = 100 * res.CPUSecs / time.Since(start).Seconds()
		}
	}
	st, err := sess.fl.ask(ctx, fmt.Sprintf("end %d", published), "status")
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
	fmt.Fprintf(w, "  published       %d messages of %d bytes in %.1f s (%.1f msg/s, %s)\n", r.Published, r.Size, r.PublishSecs, r.PublishRate, c.ep.Publish)
	fmt.Fprintf(w, "  delivered       %d of %d (%.0f deliveries/s)\n", r.Delivered, r.Expected, r.DeliveryRate)
	fmt.Fprintf(w, "  lost %d, duplicated %d, out of order %d, malformed frames %d, closed by the server %d\n",
		r.Lost, r.Dups, r.Disorder, r.Malformed, r.ServerClosed)
	fmt.Fprintf(w, "  latency         p50 %s  p90 %s  p99 %s  max %s\n",
		us(r.LatencyP50us), us(r.LatencyP90us), us(r.LatencyP99us), us(r.LatencyMaxus))
	if r.CPUSecs > 0 {
		fmt.Fprintf(w, "  server CPU      %.2f s = %.1f%% of one core\n", r.CPUSecs, r.CPUPercent)
	}
	if ch := r.Churn; ch != nil {
		fmt.Fprintf(w, "  churn           %d connects (%.0f/s), %d disconnects, %d failed%s; connect p50 %s p99 %s\n",
			ch.Connects, ch.ConnectRate, ch.Disconnects, ch.Failed, errNote(ch.FirstErr), us(ch.ConnectP50us), us(ch.ConnectP99us))
	}
}

func us(v int64) string { return (time.Duration(v) * time.Microsecond).String() }

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"time"
)

// The burst scenario publishes one message at a time to N subscribers and
// measures how long the last of them waits for it: the time from the
// publisher's clock before publishing to the latest subscriber's read. It
// repeats -bursts times, -gap apart, each once every subscriber has the
// previous message (or -drain has passed).

// burstResult is the burst scenario's outcome.
type burstResult struct {
	label
	Subscribers  int     `json:"subscribers"`
	Failed       int     `json:"failed"`
	Workers      int     `json:"workers"`
	Bursts       int     `json:"bursts"`
	Size         int     `json:"size"`
	Expected     int64   `json:"expected"`
	Delivered    int64   `json:"delivered"`
	Lost         int64   `json:"lost"`
	Dups         int64   `json:"dups"`
	ServerClosed int     `json:"server_closed"`
	LastUS       []int64 `json:"last_us"`        // per burst: publish → last subscriber's read
	LastP50us    int64   `json:"last_p50_us"`    // median over the bursts
	LastMaxus    int64   `json:"last_max_us"`    // worst burst
	LatencyP50us int64   `json:"latency_p50_us"` // over every delivery
	LatencyP99us int64   `json:"latency_p99_us"`
}

func runBurst(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("burst", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs, "burst", 1000)
	bursts := fs.Int("bursts", 10, "messages, each published alone")
	gap := fs.Duration("gap", 500*time.Millisecond, "pause between one burst's last delivery and the next burst")
	size := fs.Int("size", 200, "message text bytes")
	drain := fs.Duration("drain", 5*time.Second, "give up on a burst when no delivery came for this long")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		return err
	}
	if *bursts <= 0 || *bursts > maxSeqTracked {
		return fmt.Errorf("-bursts must be 1 to %d", maxSeqTracked)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "burst: "+format+"\n", a...) }
	res, err := burst(ctx, &c, *bursts, *size, *gap, *drain, logf)
	if res != nil {
		printBurst(stdout, &c, res)
		if c.jsonOut {
			json.NewEncoder(stdout).Encode(res)
		}
	}
	return err
}

func burst(ctx context.Context, c *common, bursts, size int, gap, drain time.Duration, logf func(string, ...any)) (*burstResult, error) {
	res := &burstResult{label: c.label("burst"), Workers: c.workers, Bursts: bursts, Size: size}
	c.trackSeqs = max(c.trackSeqs, bursts)
	sess, err := openSession(ctx, c, logf)
	if err != nil {
		return nil, err
	}
	defer sess.release(logf)
	n := int64(sess.conn.OK)
	res.Subscribers, res.Failed = sess.conn.OK, sess.conn.Failed
	pub, err := c.ep.newPublisher(ctx)
	if err != nil {
		return nil, err
	}
	defer pub.Close()
	for i := range bursts {
		if err := pub.Publish(c.channel, stampText(i, time.Now(), size)); err != nil {
			return nil, err
		}
		st, _, err := sess.waitDeliveries(ctx, n*int64(i+1), drain, 5*time.Millisecond)
		if err != nil {
			return nil, err
		}
		if st.Distinct < n*int64(i+1) {
			logf("burst %d: %d of %d deliveries came", i, st.Distinct-n*int64(i), n)
		}
		select {
		case <-time.After(gap):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	st, err := sess.fl.ask(ctx, fmt.Sprintf("end %d", bursts), "status")
	if err != nil {
		return nil, err
	}
	res.Expected = n * int64(bursts)
	res.Delivered, res.Lost, res.Dups, res.ServerClosed = st.Distinct, st.Lost, st.Dups, st.ServerClosed
	res.LastUS = st.SeqMaxUS
	if len(res.LastUS) > 0 {
		sorted := slices.Clone(res.LastUS)
		slices.Sort(sorted)
		res.LastP50us, res.LastMaxus = sorted[(len(sorted)-1)/2], sorted[len(sorted)-1]
	}
	if st.Latency != nil {
		res.LatencyP50us, res.LatencyP99us = st.Latency.Quantile(0.5), st.Latency.Quantile(0.99)
	}
	if res.Delivered < res.Expected {
		return res, errors.New("some deliveries never came")
	}
	return res, nil
}

func printBurst(w io.Writer, c *common, r *burstResult) {
	fmt.Fprintf(w, "burst: %d subscribers (%d failed), %s %s, %d process(es), %d bursts of one %d-byte message\n",
		r.Subscribers, r.Failed, c.ep.Kind, c.ep.Transport, r.Workers, r.Bursts, r.Size)
	fmt.Fprintf(w, "  delivered       %d of %d; lost %d, duplicated %d, closed by the server %d\n",
		r.Delivered, r.Expected, r.Lost, r.Dups, r.ServerClosed)
	fmt.Fprintf(w, "  last delivery   median %s, worst %s after the publish\n", us(r.LastP50us), us(r.LastMaxus))
	fmt.Fprintf(w, "  every delivery  p50 %s  p99 %s\n", us(r.LatencyP50us), us(r.LatencyP99us))
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The resume scenario is a resume storm: N subscribers spread over the
// listeners of -addr, a publisher at -rate on a node that survives, and
// after -kill-after one node is killed (SIGKILL of -kill-pid, or
// -kill-cmd, or by someone else: then the first dropped connection marks
// the kill). Every subscriber the server drops waits up to -resume-jitter,
// reconnects to the next listener of -addr (round robin; the same one when
// there is one, a ReusePort group), or to those of -resume-addr, and resumes after the last message it
// saw: Meteor's legacy stream with "<chan>.r<id+1>", SSE with
// ?lastEventId=<chan>:<id>, NDJSON with ?since=, the WebSocket with
// "since"; Centrifugo with recover, offset and epoch. The publications are
// numbered, so each subscriber's losses and duplicates are counted by
// number over the whole run, across its connections.

// resumeAttempts bounds one subscriber's reconnects after a drop; with
// the backoff (100 ms doubling to 2 s) they span about 30 s.
const resumeAttempts = 20

// resumeState is a shard's account of its subscribers' drops and resumes.
type resumeState struct {
	mu     sync.Mutex
	r      resumeReport // guarded by mu
	outage denseHist    // guarded by mu: drop to resubscribed, µs
}

// resumeReport is the resumes of one shard, or of all summed.
type resumeReport struct {
	Drops        int64      `json:"drops"`    // connections the server ended
	Resumed      int64      `json:"resumed"`  // reopened and subscribed again
	Down         int64      `json:"down"`     // dropped, not yet resumed
	GaveUp       int64      `json:"gave_up"`  // no reconnect in resumeAttempts
	Attempts     int64      `json:"attempts"` // reconnects tried, failed or not
	FirstDropNS  int64      `json:"first_drop_ns,omitempty"`
	LastDropNS   int64      `json:"last_drop_ns,omitempty"`
	LastResumeNS int64      `json:"last_resume_ns,omitempty"`
	FirstErr     string     `json:"first_err,omitempty"`
	Outage       *histogram `json:"outage,omitempty"` // per resume: drop to subscribed again
}

// merge adds o's counts to r.
func (r *resumeReport) merge(o *resumeReport) {
	r.Drops += o.Drops
	r.Resumed += o.Resumed
	r.Down += o.Down
	r.GaveUp += o.GaveUp
	r.Attempts += o.Attempts
	if o.FirstDropNS != 0 && (r.FirstDropNS == 0 || o.FirstDropNS < r.FirstDropNS) {
		r.FirstDropNS = o.FirstDropNS
	}
	r.LastDropNS = max(r.LastDropNS, o.LastDropNS)
	r.LastResumeNS = max(r.LastResumeNS, o.LastResumeNS)
	if r.FirstErr == "" {
		r.FirstErr = o.FirstErr
	}
	if o.Outage != nil {
		if r.Outage == nil {
			r.Outage = &histogram{}
		}
		r.Outage.Merge(o.Outage)
	}
}

// report returns a copy of the shard's account.
func (st *resumeState) report() *resumeReport {
	st.mu.Lock()
	defer st.mu.Unlock()
	r := st.r
	r.Outage = st.outage.sparse()
	return &r
}

// dropped records a connection the server ended at t.
func (st *resumeState) dropped(t time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.r.Drops++
	st.r.Down++
	ns := t.UnixNano()
	if st.r.FirstDropNS == 0 {
		st.r.FirstDropNS = ns
	}
	st.r.LastDropNS = max(st.r.LastDropNS, ns)
}

// ended records the end of one drop's reconnects: resumed (err nil) or not.
func (st *resumeState) ended(dropped time.Time, attempts int, err error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.r.Down--
	st.r.Attempts += int64(attempts)
	if err != nil {
		st.r.GaveUp++
		if st.r.FirstErr == "" {
			st.r.FirstErr = err.Error()
		}
		return
	}
	now := time.Now()
	st.r.Resumed++
	st.r.LastResumeNS = max(st.r.LastResumeNS, now.UnixNano())
	st.outage.add(now.Sub(dropped).Microseconds())
}

// errClosing ends a reconnect when the shard is closing.
var errClosing = errors.New("closing")

// reopen reconnects subscriber c, dropped by the server, and resumes it
// after the last message it saw. It returns the new body, or nil when it
// gave up or the shard is closing.
func (s *shard) reopen(c *benchConn) io.Reader {
	dropped := time.Now()
	s.resume.dropped(dropped)
	wait := time.Duration(0)
	if s.cfg.ResumeJitter > 0 {
		wait = rand.N(s.cfg.ResumeJitter)
	}
	err := errClosing
	for attempt := range resumeAttempts {
		if !s.pause(wait) {
			err = errClosing
			break
		}
		wait = min(100*time.Millisecond<<attempt, 2*time.Second)
		var nc net.Conn
		var br io.Reader
		br, nc, err = s.resubscribe(c, s.nextAddr(c, attempt))
		if err != nil {
			continue
		}
		c.mu.Lock()
		if s.closing.Load() {
			c.mu.Unlock()
			nc.Close()
			err = errClosing
			break
		}
		c.mu.Unlock()
		s.resume.ended(dropped, attempt+1, nil)
		return br
	}
	s.resume.ended(dropped, resumeAttempts, err)
	return nil
}

// nextAddr returns the index in s.addrs of the listener that dropped
// subscriber c tries at its attempt-th reconnect: with -resume-addr, its
// listeners, spread over the subscribers; else the listener after the one
// c was on, round robin.
func (s *shard) nextAddr(c *benchConn, attempt int) int {
	if n := len(s.cfg.ResumeAddrs); n > 0 {
		return len(s.addrs) - n + (c.i+attempt)%n // s.addrs ends with them
	}
	return (c.addr + 1 + attempt) % len(s.addrs)
}

// resubscribe opens subscriber c again on listener s.addrs[addr], from the
// last message it saw, and makes the new connection c's.
func (s *shard) resubscribe(c *benchConn, addr int) (io.Reader, net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ConnectTimeout)
	defer cancel()
	nc, err := s.dialers.dial(ctx, c.i, s.addrs[addr])
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	pos := resumePos{ID: c.acct.lastID, Epoch: c.epoch}
	c.mu.Unlock()
	br, epoch, err := s.cfg.EP.subscribeFrom(nc, hostID(s.cfg.Run, c.i), s.cfg.Channel, pos, s.cfg.ConnectTimeout)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	c.mu.Lock()
	c.nc.Close()
	c.nc, c.addr = nc, addr
	if epoch != "" {
		c.epoch = epoch
	}
	c.mu.Unlock()
	return br, nc, nil
}

// pause waits d, and reports false if the shard began closing meanwhile.
func (s *shard) pause(d time.Duration) bool {
	if d > 0 {
		select {
		case <-s.quit:
		case <-time.After(d):
		}
	}
	return !s.closing.Load()
}

// resumeResult is the resume scenario's outcome.
type resumeResult struct {
	label
	Subscribers   int     `json:"subscribers"`
	Failed        int     `json:"failed"`
	Workers       int     `json:"workers"`
	Published     int     `json:"published"`
	PublishRate   float64 `json:"publish_rate"`
	WantedRate    float64 `json:"wanted_rate"`
	Valid         bool    `json:"valid"`
	Invalid       string  `json:"invalid,omitempty"`
	AckErrors     int64   `json:"ack_errors"`
	AckFirstErr   string  `json:"ack_first_err,omitempty"`
	Killed        string  `json:"killed"`         // how: pid, command, or by someone else
	KillSecs      float64 `json:"kill_secs"`      // after publishing began
	Dropped       int64   `json:"dropped"`        // connections the server ended
	Resumed       int64   `json:"resumed"`        // of them, reconnected and resubscribed
	GaveUp        int64   `json:"gave_up"`        // never resumed
	StillDown     int64   `json:"still_down"`     // at the end of the wait
	Attempts      int64   `json:"attempts"`       // reconnects tried
	AllResumedMS  float64 `json:"all_resumed_ms"` // kill to the last resume; -1: not all resumed
	LastDropMS    float64 `json:"last_drop_ms"`   // kill to the last drop seen
	OutageP50us   int64   `json:"outage_p50_us"`  // per resume: drop to subscribed again
	OutageP99us   int64   `json:"outage_p99_us"`
	OutageMaxus   int64   `json:"outage_max_us"`
	Expected      int64   `json:"expected"`  // subscribers x published
	Delivered     int64   `json:"delivered"` // distinct (subscriber, publication)
	Lost          int64   `json:"lost"`
	LostSubs      int     `json:"lost_subscribers"`
	LostMax       int64   `json:"lost_max_per_subscriber"`
	Dups          int64   `json:"dups"`
	DupSubs       int     `json:"dup_subscribers"`
	DupMax        int64   `json:"dup_max_per_subscriber"`
	Disorder      int64   `json:"disorder"`
	LatencyP50us  int64   `json:"latency_p50_us"`
	LatencyP99us  int64   `json:"latency_p99_us"`
	LatencyMaxus  int64   `json:"latency_max_us"`
	ResumeFirstEr string  `json:"resume_first_err,omitempty"`
}

// resumeParams are the resume scenario's own settings.
type resumeParams struct {
	rate      float64
	size      int
	duration  time.Duration
	drain     time.Duration
	killAfter time.Duration
	killPID   int
	killCmd   string
	wait      time.Duration // after the kill, the most to wait for every resume
	pubConns  int
}

// runResume is the resume scenario's command.
func runResume(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("resume", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs, "resume", 1000)
	var p resumeParams
	fs.Float64Var(&p.rate, "rate", 100, "messages published per second, open loop, on -controller (or -pub-url): a node that is not killed")
	fs.IntVar(&p.size, "size", 200, "message text bytes")
	fs.DurationVar(&p.duration, "duration", 30*time.Second, "how long to publish, the kill included")
	fs.DurationVar(&p.drain, "drain", 5*time.Second, "after publishing, how long to wait for deliveries to stop coming")
	fs.DurationVar(&p.killAfter, "kill-after", 10*time.Second, "when to kill, after publishing began")
	fs.IntVar(&p.killPID, "kill-pid", 0, "the process to SIGKILL at -kill-after")
	fs.StringVar(&p.killCmd, "kill-cmd", "", "a shell command run at -kill-after instead (e.g. 'kill -9 $(cat /tmp/node-a.pid)'); neither: someone else kills, and the first dropped connection marks the kill")
	fs.DurationVar(&p.wait, "resume-wait", 60*time.Second, "after the kill, the most to wait until every dropped subscriber has resumed")
	fs.DurationVar(&c.resumeJitter, "resume-jitter", time.Second, "a dropped subscriber waits a random time below this before reconnecting, as clients do")
	fs.StringVar(&c.resumeAddrs, "resume-addr", "", "the listeners dropped subscribers reconnect to, host:port[,...], spread over them (default: the next of -addr, round robin)")
	fs.IntVar(&p.pubConns, "pub-conns", 8, "HTTP publishing: concurrent kept-alive connections")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c.resume = true
	if err := c.check(); err != nil {
		return err
	}
	if !c.ep.resumable() {
		return fmt.Errorf("%s subscribers cannot resume here (meteor or centrifugo)", c.ep.Kind)
	}
	if p.rate <= 0 || p.duration <= 0 || p.killAfter >= p.duration {
		return errors.New("-rate and -duration must be positive, -kill-after below -duration")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	logf := func(format string, a ...any) { fmt.Fprintf(stderr, "resume: "+format+"\n", a...) }
	res, err := resumeStorm(ctx, &c, p, logf)
	if res != nil {
		printResume(stdout, &c, res)
		if c.jsonOut {
			json.NewEncoder(stdout).Encode(res)
		}
	}
	return err
}

// resumeStorm opens c's subscribers, publishes, kills the node, waits for
// the resumes and the deliveries, and sums up.
func resumeStorm(ctx context.Context, c *common, p resumeParams, logf func(string, ...any)) (*resumeResult, error) {
	res := &resumeResult{label: c.label("resume"), Workers: c.workers, WantedRate: p.rate, AllResumedMS: -1}
	sess, err := openSession(ctx, c, logf)
	if err != nil {
		return nil, err
	}
	defer sess.release(logf)
	res.Subscribers, res.Failed = sess.conn.OK, sess.conn.Failed
	conns := 1
	if c.ep.Publish == publishHTTP {
		conns = max(p.pubConns, 1)
	}
	pub, err := c.ep.newAsyncPublisher(ctx, c.channel, conns)
	if err != nil {
		return nil, err
	}
	type loopEnd struct {
		lr  loopResult
		err error
	}
	loopDone := make(chan loopEnd, 1)
	start := time.Now()
	logf("publishing %.0f msg/s for %v; the kill at %v", p.rate, p.duration, p.killAfter)
	go func() {
		lr, err := openLoop(ctx, pub, loopParams{rate: p.rate, size: p.size, duration: p.duration})
		loopDone <- loopEnd{lr, err}
	}()
	finished := false
	defer func() {
		if !finished {
			<-loopDone
			pub.finish(0)
		}
	}()

	killAt, err := killNode(ctx, p, start, sess, logf)
	res.Killed = "by someone else"
	switch {
	case p.killPID > 0:
		res.Killed = "SIGKILL pid " + strconv.Itoa(p.killPID)
	case p.killCmd != "":
		res.Killed = p.killCmd
	}
	if err != nil {
		return nil, fmt.Errorf("killing: %w", err)
	}
	res.KillSecs = killAt.Sub(start).Seconds()
	rr, err := waitResumed(ctx, sess, killAt, p.wait)
	if err != nil {
		return res, err
	}
	res.Dropped, res.Resumed, res.GaveUp, res.StillDown, res.Attempts = rr.Drops, rr.Resumed, rr.GaveUp, rr.Down, rr.Attempts
	res.ResumeFirstEr = rr.FirstErr
	if rr.LastDropNS > 0 {
		res.LastDropMS = float64(rr.LastDropNS-killAt.UnixNano()) / 1e6
	}
	if rr.Drops > 0 && rr.Down == 0 && rr.GaveUp == 0 {
		res.AllResumedMS = float64(rr.LastResumeNS-killAt.UnixNano()) / 1e6
	}
	if rr.Outage != nil {
		res.OutageP50us, res.OutageP99us, res.OutageMaxus = rr.Outage.Quantile(0.5), rr.Outage.Quantile(0.99), rr.Outage.Max
	}
	logf("%d dropped, %d resumed, %d gave up, %d still down; all resumed %.0f ms after the kill",
		rr.Drops, rr.Resumed, rr.GaveUp, rr.Down, res.AllResumedMS)

	end := <-loopDone
	finished = true
	if end.err != nil {
		pub.finish(0)
		return res, fmt.Errorf("publishing: %w", end.err)
	}
	res.Published, res.PublishRate = end.lr.Published, end.lr.Rate
	res.Valid, res.Invalid = validRate(res.PublishRate, p.rate)
	res.Expected = int64(sess.conn.OK) * int64(end.lr.Published)
	if _, _, err := sess.waitDeliveries(ctx, res.Expected, p.drain, 50*time.Millisecond); err != nil {
		pub.finish(0)
		return res, err
	}
	acks := pub.finish(p.drain)
	res.AckErrors, res.AckFirstErr = acks.Errors, acks.FirstErr
	st, err := sess.fl.ask(ctx, fmt.Sprintf("end %d", end.lr.Published), "status")
	if err != nil {
		return res, err
	}
	res.Delivered, res.Lost, res.Dups, res.Disorder = st.Distinct, st.Lost, st.Dups, st.Disorder
	res.LostSubs, res.LostMax, res.DupSubs, res.DupMax = st.LostSubs, st.LostMax, st.DupSubs, st.DupMax
	if st.Latency != nil {
		res.LatencyP50us, res.LatencyP99us, res.LatencyMaxus = st.Latency.Quantile(0.5), st.Latency.Quantile(0.99), st.Latency.Max
	}
	return res, nil
}

// killNode waits until -kill-after and kills the node, or, when the kill
// is someone else's, waits for the first dropped connection. It returns
// the time of the kill.
func killNode(ctx context.Context, p resumeParams, start time.Time, sess *session, logf func(string, ...any)) (time.Time, error) {
	if p.killPID <= 0 && p.killCmd == "" {
		deadline := start.Add(p.duration)
		for time.Now().Before(deadline) {
			st, err := sess.fl.ask(ctx, "status", "status")
			if err != nil {
				return time.Time{}, err
			}
			if r := st.Resume; r != nil && r.FirstDropNS > 0 {
				t := time.Unix(0, r.FirstDropNS)
				logf("first connection dropped at %.3f s", t.Sub(start).Seconds())
				return t, nil
			}
			select {
			case <-ctx.Done():
				return time.Time{}, ctx.Err()
			case <-time.After(20 * time.Millisecond):
			}
		}
		return time.Time{}, errors.New("no connection was dropped while publishing")
	}
	select {
	case <-ctx.Done():
		return time.Time{}, ctx.Err()
	case <-time.After(time.Until(start.Add(p.killAfter))):
	}
	t := time.Now()
	if p.killPID > 0 {
		logf("SIGKILL %d", p.killPID)
		return t, syscall.Kill(p.killPID, syscall.SIGKILL)
	}
	logf("running %q", p.killCmd)
	cmd := exec.CommandContext(ctx, "sh", "-c", p.killCmd)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return t, cmd.Run()
}

// waitResumed polls the shards after the kill until some connection was
// dropped and every dropped one has resumed or given up, with no new drop
// for a second; at most wait.
func waitResumed(ctx context.Context, sess *session, killAt time.Time, wait time.Duration) (*resumeReport, error) {
	deadline := killAt.Add(wait)
	for {
		st, err := sess.fl.ask(ctx, "status", "status")
		if err != nil {
			return nil, err
		}
		r := st.Resume
		if r == nil {
			r = &resumeReport{}
		}
		quiet := r.LastDropNS > 0 && time.Since(time.Unix(0, r.LastDropNS)) >= time.Second
		if (r.Drops > 0 && r.Down == 0 && quiet) || !time.Now().Before(deadline) {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// printResume writes r for people.
func printResume(w io.Writer, c *common, r *resumeResult) {
	fmt.Fprintf(w, "resume: %d subscribers (%d failed) on %s, %s %s, channel %s, %d process(es)\n",
		r.Subscribers, r.Failed, c.ep.Addr, c.ep.Kind, c.ep.Transport, c.channel, r.Workers)
	valid := "valid"
	if !r.Valid {
		valid = "NOT VALID: " + r.Invalid
	}
	fmt.Fprintf(w, "  published       %d at %.1f msg/s of %g asked (%s), %s; %d publish errors%s\n",
		r.Published, r.PublishRate, r.WantedRate, valid, c.ep.Publish, r.AckErrors, errNote(r.AckFirstErr))
	fmt.Fprintf(w, "  killed          %s at %.1f s\n", r.Killed, r.KillSecs)
	fmt.Fprintf(w, "  dropped         %d (the last %.0f ms after the kill); resumed %d, gave up %d, still down %d; %d reconnects tried%s\n",
		r.Dropped, r.LastDropMS, r.Resumed, r.GaveUp, r.StillDown, r.Attempts, errNote(r.ResumeFirstEr))
	all := "not all resumed"
	if r.AllResumedMS >= 0 {
		all = fmt.Sprintf("%.0f ms", r.AllResumedMS)
	}
	fmt.Fprintf(w, "  all resumed     %s after the kill; per subscriber drop to resubscribed p50 %s  p99 %s  max %s\n",
		all, us(r.OutageP50us), us(r.OutageP99us), us(r.OutageMaxus))
	fmt.Fprintf(w, "  delivered       %d of %d; lost %d (%d subscribers, at most %d each), duplicated %d (%d subscribers, at most %d each), out of order %d\n",
		r.Delivered, r.Expected, r.Lost, r.LostSubs, r.LostMax, r.Dups, r.DupSubs, r.DupMax, r.Disorder)
	fmt.Fprintf(w, "  latency         p50 %s  p99 %s  max %s\n", us(r.LatencyP50us), us(r.LatencyP99us), us(r.LatencyMaxus))
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// The publish scenario measures how many messages a server accepts per
// second, with no subscriber: on Meteor's controller line protocol or on a
// WebSocket to Nchan's publisher location, with -pipeline messages in
// flight per connection, or with HTTP POSTs (one request at a time per
// kept-alive connection; Go's client does not pipeline HTTP). -conns connections publish at once, each to its own
// channel, for -duration.

// publishResult is the publish scenario's outcome.
type publishResult struct {
	label
	Conns      int     `json:"conns"`
	Pipeline   int     `json:"pipeline"`        // line protocol: commands in flight per connection
	Batch      int     `json:"batch,omitempty"` // HTTP: messages per request
	Size       int     `json:"size"`
	Published  int64   `json:"published"` // acknowledged
	Errors     int64   `json:"errors"`
	FirstErr   string  `json:"first_err,omitempty"`
	Secs       float64 `json:"secs"`
	Rate       float64 `json:"rate"` // acknowledged messages per second
	CPUSecs    float64 `json:"server_cpu_secs,omitempty"`
	CPUPercent float64 `json:"server_cpu_percent,omitempty"`
}

func runPublish(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var ep endpoint
	ep.register(fs)
	channel := fs.String("channel", "pub", "channel name prefix; connection i publishes to <channel><i>")
	conns := fs.Int("conns", 4, "publishing connections")
	pipeline := fs.Int("pipeline", 64, "line protocol and ws: messages in flight per connection")
	batch := fs.Int("batch", 1, "meteor -publish http: messages per request, in one POST /api/publish (at most 1000); 1: POST /api/channels/<chan>/messages")
	size := fs.Int("size", 200, "message text bytes")
	duration := fs.Duration("duration", 5*time.Second, "how long to publish")
	var pids pidList
	fs.Var(&pids, "pid", "server process ids, comma-separated, to read their CPU from /proc (optional)")
	jsonOut := fs.Bool("json", false, "also print the result as one JSON line")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := ep.defaults(); err != nil {
		return err
	}
	if ep.Publish == publishZMQ {
		return errors.New("-publish zmq has no acknowledgements to count: use http")
	}
	if *conns <= 0 || *pipeline <= 0 || *duration <= 0 {
		return errors.New("-conns, -pipeline and -duration must be positive")
	}
	if *batch < 1 || *batch > 1000 || (*batch > 1 && (ep.Kind != targetMeteor || ep.Publish != publishHTTP)) {
		return errors.New("-batch is 1 to 1000, above 1 only with meteor's -publish http")
	}
	ctx, cancel := context.WithTimeout(ctx, *duration+time.Minute)
	defer cancel()
	res, err := publishRun(ctx, &ep, *channel, *conns, *pipeline, *batch, *size, *duration, pids)
	if res != nil {
		fmt.Fprintf(stdout, "publish: %s over %s, %d connection(s)%s%s, %d-byte messages\n", ep.Kind, ep.Publish, res.Conns,
			map[bool]string{true: fmt.Sprintf(" x %d in flight", res.Pipeline), false: ""}[res.Pipeline > 0],
			map[bool]string{true: fmt.Sprintf(", %d messages a request (POST /api/publish)", res.Batch), false: ""}[res.Batch > 1], res.Size)
		fmt.Fprintf(stdout, "  acknowledged    %d in %.1f s = %.0f messages/s; %d errors%s\n", res.Published, res.Secs, res.Rate, res.Errors, errNote(res.FirstErr))
		if res.CPUSecs > 0 {
			fmt.Fprintf(stdout, "  server CPU      %.2f s = %.1f%% of one core\n", res.CPUSecs, res.CPUPercent)
		}
		if *jsonOut {
			json.NewEncoder(stdout).Encode(res)
		}
	}
	return err
}

func publishRun(ctx context.Context, ep *endpoint, channel string, conns, pipeline, batch, size int, duration time.Duration, pids []int) (*publishResult, error) {
	res := &publishResult{label: ep.label("publish", "-"),
		Conns: conns, Size: size}
	if ep.Publish == publishLine || ep.Publish == publishWS {
		res.Pipeline = pipeline
	}
	if batch > 1 {
		res.Batch = batch
	}
	var cpu0 procSample
	if len(pids) > 0 {
		var err error
		if cpu0, err = readTrees(pids); err != nil {
			return nil, err
		}
	}
	var ok, bad atomic.Int64
	var mu sync.Mutex
	fail := func(err error) {
		bad.Add(1)
		mu.Lock()
		if res.FirstErr == "" {
			res.FirstErr = err.Error()
		}
		mu.Unlock()
	}
	start := time.Now()
	deadline := start.Add(duration)
	var wg sync.WaitGroup
	for i := range conns {
		ch := fmt.Sprintf("%s%d", channel, i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ep.Publish == publishLine {
				if err := pipelineADD(ctx, ep.Ctl, ch, pipeline, size, deadline, &ok); err != nil {
					fail(err)
				}
				return
			}
			if ep.Publish == publishWS {
				if err := pipelineWS(ctx, ep, ch, pipeline, size, deadline, &ok); err != nil {
					fail(err)
				}
				return
			}
			p := newHTTPPublisher(ep)
			defer p.Close()
			if batch > 1 {
				for seq := 0; time.Now().Before(deadline) && ctx.Err() == nil; seq += batch {
					if err := p.publishBatch(ch, seq, batch, size); err != nil {
						fail(err)
						if bad.Load() > 100 {
							return
						}
						continue
					}
					ok.Add(int64(batch))
				}
				return
			}
			for seq := 0; time.Now().Before(deadline) && ctx.Err() == nil; seq++ {
				if err := p.Publish(ch, stampText(seq, time.Now(), size)); err != nil {
					fail(err)
					if bad.Load() > 100 {
						return
					}
					continue
				}
				ok.Add(1)
			}
		}()
	}
	wg.Wait()
	res.Secs = time.Since(start).Seconds()
	res.Published, res.Errors = ok.Load(), bad.Load()
	res.Rate = float64(res.Published) / res.Secs
	if len(pids) > 0 {
		if cpu1, err := readTrees(pids); err == nil {
			res.CPUSecs = float64(cpu1.CPU-cpu0.CPU) / clockTicks
			res.CPUPercent = 100 * res.CPUSecs / res.Secs
		}
	}
	if res.Published == 0 {
		return res, fmt.Errorf("nothing published: %s", res.FirstErr)
	}
	return res, nil
}

// pipelineADD sends ADDMESSAGE commands on one controller connection until
// deadline, with at most window unanswered, and counts the OK replies in
// ok. Writes are batched: every command the window allows goes out in one
// write.
func pipelineADD(ctx context.Context, addr, channel string, window, size int, deadline time.Time, ok *atomic.Int64) error {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(deadline.Add(30 * time.Second))
	credit := make(chan struct{}, window)
	for range window {
		credit <- struct{}{}
	}
	var got atomic.Int64
	rerr := make(chan error, 1)
	go func() {
		br := bufio.NewReaderSize(nc, 64<<10)
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				rerr <- fmt.Errorf("controller: %w", err)
				return
			}
			if !bytes.HasPrefix(line, []byte("OK")) {
				rerr <- fmt.Errorf("controller: ADDMESSAGE: %q", bytes.TrimSpace(line))
				return
			}
			got.Add(1)
			ok.Add(1)
			select {
			case credit <- struct{}{}:
			default:
			}
		}
	}()
	bw := bufio.NewWriterSize(nc, 64<<10)
	var sent int64
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-credit:
		case err := <-rerr:
			return err
		}
		// Take every credit there is: one write for all of them.
		for more := true; more; {
			bw.WriteString("ADDMESSAGE " + channel + " " + stampText(int(sent), time.Now(), size) + "\r\n")
			sent++
			select {
			case <-credit:
			default:
				more = false
			}
		}
		if err := bw.Flush(); err != nil {
			return err
		}
	}
	for got.Load() < sent {
		select {
		case err := <-rerr:
			return err
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

// pipelineWS publishes on one WebSocket until deadline, with at most
// window messages unanswered, and counts the acknowledged in ok once all
// are answered (or 30 s have passed). Every message the window allows
// goes out in one write.
func pipelineWS(ctx context.Context, ep *endpoint, channel string, window, size int, deadline time.Time, ok *atomic.Int64) error {
	p, err := dialWSPub(ctx, ep, channel, window)
	if err != nil {
		return err
	}
	var sent int
	for time.Now().Before(deadline) && ctx.Err() == nil {
		n := 0
		for {
			took, err := p.trySend(stampText(sent, time.Now(), size), time.Now())
			if err != nil {
				acks := p.finish(0)
				ok.Add(acks.Acked)
				return errors.Join(err, errorOf(acks))
			}
			if !took {
				break
			}
			sent++
			n++
		}
		if err := p.flush(); err != nil {
			acks := p.finish(0)
			ok.Add(acks.Acked)
			return err
		}
		if n == 0 {
			select {
			case <-p.reply:
			case <-p.done:
			case <-time.After(time.Until(deadline)):
			}
		}
	}
	acks := p.finish(30 * time.Second)
	ok.Add(acks.Acked)
	if acks.Acked < int64(sent) {
		return errors.Join(fmt.Errorf("websocket publisher: %d of %d acknowledged", acks.Acked, sent), errorOf(acks))
	}
	return errorOf(acks)
}

// errorOf returns the first acknowledgement error, or nil.
func errorOf(a ackStats) error {
	if a.Errors == 0 {
		return nil
	}
	return fmt.Errorf("%d errors, the first: %s", a.Errors, a.FirstErr)
}

// publishBatch publishes n stamped messages, seq to seq+n-1, to channel in
// one POST of Meteor's /api/publish.
func (p *httpPublisher) publishBatch(channel string, seq, n, size int) error {
	type msg struct {
		Channel string `json:"channel"`
		Text    string `json:"text"`
	}
	msgs := make([]msg, n)
	now := time.Now()
	for i := range msgs {
		msgs[i] = msg{channel, stampText(seq+i, now, size)}
	}
	body, _ := json.Marshal(map[string][]msg{"messages": msgs})
	resp, err := p.client.Post(p.e.PubURL+"/api/publish", "application/json", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("publish: %s", resp.Status)
	}
	return nil
}

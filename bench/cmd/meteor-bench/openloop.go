package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Open-loop publishing: the fan-out and churn scenarios send their
// messages on a clock, at the asked rate, whether or not the server has
// acknowledged the earlier ones, so that every server gets the same
// offered load. Acknowledgements are read on their own (the line
// protocol's and the WebSocket publisher's replies on another goroutine,
// HTTP replies on several kept-alive connections) and timed apart from
// the deliveries. A run that could not send at 95 % of the asked rate (the
// server stopped taking commands, or every HTTP connection was waiting)
// is marked not valid.

// minValidRate is the share of the asked rate below which a run is not
// valid.
const minValidRate = 0.95

// loopParams are the open-loop publisher's settings.
type loopParams struct {
	rate     float64       // messages per second
	size     int           // message text bytes
	duration time.Duration // the publishing window
	maxBurst int           // most messages sent back to back when behind; 0: 2, or 5 ms' worth
}

// loopResult is what the open-loop publisher did.
type loopResult struct {
	Published int     // sent: publications 0..Published-1
	Scheduled int     // due within the window
	Secs      float64 // the window
	Rate      float64 // Published / Secs
	LagMaxUS  int64   // latest a message left after its scheduled time
}

// asyncPublisher sends without waiting for the acknowledgement.
type asyncPublisher interface {
	// trySend sends text, stamped at t, or reports false when it cannot
	// take it now (every HTTP connection is waiting for a reply).
	trySend(text string, t time.Time) (bool, error)
	// flush pushes out what trySend buffered.
	flush() error
	// finish waits until every message sent was acknowledged or wait has
	// passed, closes the connections, and sums up.
	finish(wait time.Duration) ackStats
}

// ackStats are the publisher's acknowledgements.
type ackStats struct {
	Acked    int64
	Errors   int64
	FirstErr string
	Latency  denseHist // send to acknowledgement, µs
}

// newAsyncPublisher connects e's publisher to channel: one controller
// connection for the line protocol, one WebSocket for ws, one ZeroMQ
// connection for zmq, conns kept-alive connections for HTTP.
func (e *endpoint) newAsyncPublisher(ctx context.Context, channel string, conns int) (asyncPublisher, error) {
	if e.Publish == publishLine {
		return dialLinePub(ctx, e.Ctl, channel)
	}
	if e.Publish == publishWS {
		return dialWSPub(ctx, e, channel, 1<<16)
	}
	if e.Publish == publishZMQ {
		return dialZMQPub(ctx, e.ZMQ, e.Transport, channel)
	}
	return startHTTPPub(e, channel, max(conns, 1)), nil
}

// openLoop sends stamped messages on pub at p.rate for p.duration. The
// i-th is due at start + i/rate; when behind it sends at most p.maxBurst
// at once and catches up over the next milliseconds. What is still due
// when the window closes is not sent.
func openLoop(ctx context.Context, pub asyncPublisher, p loopParams) (loopResult, error) {
	interval := time.Duration(float64(time.Second) / p.rate)
	burst := p.maxBurst
	if burst <= 0 {
		burst = max(2, int(math.Ceil(p.rate*0.005)))
	}
	var res loopResult
	res.Scheduled = int(math.Ceil(p.duration.Seconds() * p.rate))
	start := time.Now()
	end := start.Add(p.duration)
	pace := min(interval, time.Millisecond) // the pause while behind
	for ctx.Err() == nil {
		now := time.Now()
		if !now.Before(end) {
			break
		}
		due := min(int(now.Sub(start)/interval)+1, res.Scheduled)
		for n := min(due-res.Published, burst); n > 0; n-- {
			t := time.Now()
			ok, err := pub.trySend(stampText(res.Published, t, p.size), t)
			if err != nil {
				res.Secs = time.Since(start).Seconds()
				return res, err
			}
			if !ok {
				break
			}
			res.LagMaxUS = max(res.LagMaxUS, t.Sub(start.Add(time.Duration(res.Published)*interval)).Microseconds())
			res.Published++
		}
		if err := pub.flush(); err != nil {
			res.Secs = time.Since(start).Seconds()
			return res, err
		}
		wait := time.Until(start.Add(time.Duration(res.Published) * interval))
		if wait <= 0 {
			wait = pace
		}
		wait = min(wait, time.Until(end))
		if wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
			}
		}
	}
	res.Secs = p.duration.Seconds()
	res.Rate = float64(res.Published) / res.Secs
	return res, ctx.Err()
}

// validRate says whether achieved is close enough to wanted, and why not.
func validRate(achieved, wanted float64) (bool, string) {
	if achieved >= minValidRate*wanted {
		return true, ""
	}
	return false, fmt.Sprintf("published %.1f msg/s, below %.0f %% of the asked %g", achieved, 100*minValidRate, wanted)
}

// linePub publishes with ADDMESSAGE on one controller connection: the
// writer (the clock) buffers commands, a reader goroutine takes the
// "OK\t<id>" replies in order and times them.
type linePub struct {
	replyQueue
	nc     net.Conn
	bw     *bufio.Writer
	prefix string
	stats  ackStats // written by the reader until done
}

// replyQueue matches the replies of a pipelined connection, which come in
// the order of the messages, with the messages' send times.
type replyQueue struct {
	sends   chan int64    // send times of the messages not yet answered, in order
	sent    int64         // messages sent (by the writer)
	replies atomic.Int64  // answered, well or not
	done    chan struct{} // closed when the reader ends
}

// send records a message sent at t, or reports false when the window of
// messages not yet answered is full.
func (q *replyQueue) send(t time.Time) bool {
	select {
	case q.sends <- t.UnixNano():
		q.sent++
		return true
	default:
		return false
	}
}

// oldest takes the send time of the oldest message not yet answered, for
// the reply that came; 0 when none is (a reply to nothing sent).
func (q *replyQueue) oldest() int64 {
	select {
	case t0 := <-q.sends:
		return t0
	default:
		return 0
	}
}

// await waits until every message sent is answered, the reader ends or
// wait has passed.
func (q *replyQueue) await(wait time.Duration) {
	deadline := time.Now().Add(wait)
	for q.replies.Load() < q.sent && time.Now().Before(deadline) {
		select {
		case <-q.done:
			return
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func dialLinePub(ctx context.Context, addr, channel string) (*linePub, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	p := &linePub{nc: nc, bw: bufio.NewWriterSize(nc, 64<<10), prefix: "ADDMESSAGE " + channel + " ",
		replyQueue: replyQueue{sends: make(chan int64, 1<<16), done: make(chan struct{})}}
	go p.readReplies()
	return p, nil
}

func (p *linePub) readReplies() {
	defer close(p.done)
	br := bufio.NewReaderSize(p.nc, 64<<10)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		now := time.Now().UnixNano()
		t0 := p.oldest()
		if t0 != 0 && bytes.HasPrefix(line, []byte("OK")) {
			p.stats.Acked++
			p.stats.Latency.add((now - t0) / 1000)
		} else {
			p.stats.Errors++
			if p.stats.FirstErr == "" {
				p.stats.FirstErr = fmt.Sprintf("ADDMESSAGE: %q", bytes.TrimSpace(line))
			}
		}
		p.replies.Add(1)
	}
}

func (p *linePub) trySend(text string, t time.Time) (bool, error) {
	if !p.send(t) {
		return false, nil // 65,536 unanswered
	}
	p.bw.WriteString(p.prefix)
	p.bw.WriteString(text)
	_, err := p.bw.WriteString("\r\n")
	return true, err
}

func (p *linePub) flush() error {
	p.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return p.bw.Flush()
}

func (p *linePub) finish(wait time.Duration) ackStats {
	p.await(wait)
	p.nc.Close()
	<-p.done
	return p.stats
}

// httpPub publishes with POSTs from conns workers, each on its own
// kept-alive connection; trySend hands a message to a worker that is
// waiting for one, or reports that none is.
type httpPub struct {
	e       *endpoint
	channel string
	jobs    chan httpJob
	wg      sync.WaitGroup
	workers []*ackStats
	sent    int64
	replies atomic.Int64
}

type httpJob struct {
	text string
	t    time.Time
}

func startHTTPPub(e *endpoint, channel string, conns int) *httpPub {
	p := &httpPub{e: e, channel: channel, jobs: make(chan httpJob)}
	for range conns {
		st := &ackStats{}
		p.workers = append(p.workers, st)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			hp := newHTTPPublisher(e)
			defer hp.Close()
			for j := range p.jobs {
				err := hp.Publish(channel, j.text)
				if err != nil {
					st.Errors++
					if st.FirstErr == "" {
						st.FirstErr = err.Error()
					}
				} else {
					st.Acked++
					st.Latency.add(time.Since(j.t).Microseconds())
				}
				p.replies.Add(1)
			}
		}()
	}
	return p
}

func (p *httpPub) trySend(text string, t time.Time) (bool, error) {
	select {
	case p.jobs <- httpJob{text, t}:
		p.sent++
		return true, nil
	default:
		return false, nil
	}
}

func (p *httpPub) flush() error { return nil }

func (p *httpPub) finish(wait time.Duration) ackStats {
	deadline := time.Now().Add(wait)
	for p.replies.Load() < p.sent && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	close(p.jobs)
	p.wg.Wait() // each request has the client's 10 s timeout
	var sum ackStats
	for _, st := range p.workers {
		sum.Acked += st.Acked
		sum.Errors += st.Errors
		if sum.FirstErr == "" {
			sum.FirstErr = st.FirstErr
		}
		sum.Latency.merge(&st.Latency)
	}
	return sum
}

package main

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// session is one run's subscribers, held by a fleet of shards, together
// with the server's own count of them.
type session struct {
	c      *common
	fl     *fleet
	cnt    counter      // nil: -count-at none
	count0 int          // the channel's subscribers before the run
	conn   *shardReport // the shards' "connected" reports, summed
	closed bool
}

// openSession opens c's subscribers and waits until the server counts
// every one that connected.
func openSession(ctx context.Context, c *common, logf func(string, ...any)) (*session, error) {
	cnt, err := c.ep.newCounter(ctx)
	if err != nil {
		return nil, err
	}
	s := &session{c: c, cnt: cnt}
	if s.count0, err = s.count(); err != nil {
		s.closeCounter()
		return nil, err
	}
	if s.count0 != 0 {
		logf("channel %s already has %d subscribers; counting from there", c.channel, s.count0)
	}
	if s.fl, err = startFleet(ctx, c.shards(), true, c.timeout, logWriter{logf}); err != nil {
		s.closeCounter()
		return nil, err
	}
	if s.conn, err = s.fl.collect(ctx, "connected"); err != nil {
		s.release(logf)
		return nil, err
	}
	conn := s.conn
	logf("%s %s: %d connected, %d failed (%d retries) in %.1f s%s", c.ep.Kind, c.ep.Transport,
		conn.OK, conn.Failed, conn.Retries, conn.ConnectSecs, errNote(conn.FirstErr))
	if conn.OK == 0 {
		s.release(logf)
		return nil, fmt.Errorf("no subscriber connected: %s", conn.FirstErr)
	}
	if cnt == nil {
		return s, nil
	}
	wctx, wcancel := context.WithTimeout(ctx, 60*time.Second)
	_, err = waitCount(wctx, cnt, c.channel, func(n int) bool { return n >= s.count0+conn.OK })
	wcancel()
	if err != nil {
		s.release(logf)
		return nil, err
	}
	return s, nil
}

// close closes the subscribers, once.
func (s *session) close(logf func(string, ...any)) *shardReport {
	if s.closed {
		return nil
	}
	s.closed = true
	final, err := s.fl.close(60 * time.Second)
	if err != nil {
		logf("closing: %v", err)
	}
	return final
}

// release closes the subscribers if they are still open, waits until the
// server has let them all go (so that the next run on the channel counts
// from the right number), and closes the counter.
func (s *session) release(logf func(string, ...any)) {
	if s.fl != nil && !s.closed {
		s.close(logf)
		if s.cnt != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if n, err := waitCount(ctx, s.cnt, s.c.channel, func(n int) bool { return n <= s.count0 }); errors.Is(err, context.DeadlineExceeded) {
				logf("after closing, the server still counts %d subscribers: %v", n-s.count0, err)
			} else if err != nil {
				logf("after closing, counting: %v (a node killed?)", err)
			}
			cancel()
		}
	}
	s.closeCounter()
}

// count returns the server's count of the channel's subscribers, or the
// handshakes' (the shards' connected subscribers) without a counter.
func (s *session) count() (int, error) {
	if s.cnt == nil {
		if s.conn == nil {
			return 0, nil
		}
		return s.conn.OK, nil
	}
	return s.cnt.Count(s.c.channel)
}

func (s *session) closeCounter() {
	if s.cnt != nil {
		s.cnt.Close()
	}
}

// waitDeliveries asks the shards for their status until want distinct
// deliveries have come, or none came for drain, or ctx ended. It returns
// the last status and when the distinct count last grew.
func (s *session) waitDeliveries(ctx context.Context, want int64, drain, poll time.Duration) (*shardReport, time.Time, error) {
	var last int64 = -1
	lastChange := time.Now()
	for {
		st, err := s.fl.ask(ctx, "status", "status")
		if err != nil {
			return nil, lastChange, err
		}
		if st.Distinct != last {
			last, lastChange = st.Distinct, time.Now()
		}
		if st.Distinct >= want || time.Since(lastChange) >= drain || ctx.Err() != nil {
			return st, lastChange, nil
		}
		time.Sleep(poll)
	}
}

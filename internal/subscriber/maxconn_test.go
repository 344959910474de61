package subscriber

import (
	"bufio"
	"io"
	"strings"
	"testing"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/metrics"
	"github.com/meteorpush/meteor/internal/testkit"
)

// refusedTotal reads meteor_subscriber_refused_total from m.
func refusedTotal(t *testing.T, m *metrics.Metrics) float64 {
	t.Helper()
	return testkit.Metric(t, m, "meteor_subscriber_refused_total")
}

// TestMaxConnections: with a cap of 3, the 4th connection is answered 503
// with Retry-After at once, without its request being read, and closed;
// it is counted and logged; the 3 open streams still get what is
// published; once one of them leaves, a new connection is served again.
func TestMaxConnections(t *testing.T) {
	const limit = 3
	m := metrics.New()
	ts := startAcceptWith(t, nil, aWait, 8192, func(s *Server) {
		s.Metrics = m
		s.SetMaxConnections(limit)
	})
	var open []*bufio.Reader
	var first io.Closer
	for i := range limit {
		nc := ts.dial()
		if i == 0 {
			first = nc
		}
		io.WriteString(nc, "GET /ndjson/cap HTTP/1.1\r\nHost: x\r\n\r\n")
		r := bufio.NewReader(nc)
		if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 200 OK") {
			t.Fatalf("stream %d: %q, %v", i, line, err)
		}
		open = append(open, r)
	}
	ts.waitCurrent(limit)

	// The one past the cap sends nothing: the answer comes anyway, at
	// once, and the connection ends (time-bounded by the dial's deadline,
	// not a timing assertion).
	nc := ts.dial()
	got, err := io.ReadAll(nc)
	if err != nil && !isReset(err) {
		t.Fatalf("refused connection: %v after %q", err, got)
	}
	if !strings.HasPrefix(string(got), "HTTP/1.1 503 Service Unavailable\r\n") || !strings.Contains(string(got), "\r\nRetry-After: 1\r\n") {
		t.Errorf("refused connection got %q, want a 503 with Retry-After", got)
	}
	if n := refusedTotal(t, m); n != 1 {
		t.Errorf("meteor_subscriber_refused_total = %v, want 1", n)
	}
	if !strings.Contains(ts.log.String(), "MaxConnections reached") {
		t.Errorf("the refusal is not logged:\n%s", ts.log.String())
	}

	// The first three are unaffected.
	if _, err := ts.hub.Publish(t.Context(), engine.Publication{Channel: "cap", Text: "still here"}); err != nil {
		t.Fatal(err)
	}
	for i, r := range open {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("stream %d ended: %v", i, err)
			}
			if strings.Contains(line, "still here") {
				break
			}
		}
	}

	// Below the cap again, a new connection is served.
	first.Close()
	ts.waitCurrent(limit - 1)
	if got := ts.exchange("GET /push/h/simplepoll/cap HTTP/1.1\r\nHost: x\r\n\r\n"); !strings.HasPrefix(got, simplepollPrefix) {
		t.Errorf("below the cap: got %q", got)
	}
	if n := refusedTotal(t, m); n != 1 {
		t.Errorf("meteor_subscriber_refused_total = %v after a served connection, want 1", n)
	}
}

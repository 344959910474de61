package subscriber

import (
	"bufio"
	"context"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/reason"
)

// drained is a connection that records when and why it was shut down.
type drained struct {
	registered
	mu   sync.Mutex
	at   time.Time
	why  reason.Reason
	hits int
}

func (d *drained) tick(time.Time) {}
func (d *drained) abort()         {}
func (d *drained) remote() string { return "" }
func (d *drained) shutdown(r reason.Reason) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.at, d.why = time.Now(), r
	d.hits++
}

// TestCloseSpread: a drain over d shuts n connections down once each, the
// k-th no earlier than k/n of d after it began (so not all at once, on any
// machine), with the reason given; when its context ends, the rest go at
// once.
func TestCloseSpread(t *testing.T) {
	const n = 8
	const spread = 400 * time.Millisecond
	open := make([]conn, n)
	ds := make([]*drained, n)
	for i := range open {
		ds[i] = &drained{}
		open[i] = ds[i]
	}
	t0 := time.Now()
	closeSpread(context.Background(), open, reason.ServerRestart, spread)
	var at []time.Duration
	for i, d := range ds {
		if d.hits != 1 || d.why != reason.ServerRestart {
			t.Fatalf("connection %d: shut down %d times, reason %v", i, d.hits, d.why)
		}
		at = append(at, d.at.Sub(t0))
	}
	slices.Sort(at)
	for k, a := range at {
		if earliest := spread * time.Duration(k+1) / n; a < earliest {
			t.Errorf("connection %d of %d shut down %v after the start, before %v: not spread", k+1, n, a, earliest)
		}
	}

	// A context that ends cuts the spread short: everything is shut down
	// by the time closeSpread returns.
	for _, d := range ds {
		d.hits = 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	closeSpread(ctx, open, reason.ServerRestart, time.Hour)
	for i, d := range ds {
		if d.hits != 1 {
			t.Fatalf("connection %d shut down %d times after the context ended", i, d.hits)
		}
	}
}

// TestDrainLegacyNoEOF: a drain ends a 1.06 xhrinteractive stream without
// the shutdown message (eof() would stop the page for good), so that the
// page reconnects, and ends an SSE stream with the close event restart
// (code 1012, reconnect); Shutdown, by contrast, still sends eof().
func TestDrainLegacyNoEOF(t *testing.T) {
	for _, drain := range []bool{true, false} {
		ts := startAccept(t, nil, aWait, 8192)
		legacy := ts.dial()
		io.WriteString(legacy, "GET /push/h1/xhrinteractive/d HTTP/1.1\r\nHost: x\r\n\r\n")
		sse := ts.dial()
		io.WriteString(sse, "GET /sse/d HTTP/1.1\r\nHost: x\r\n\r\n")
		// Both are registered once each has its header.
		for _, nc := range []io.Reader{legacy, sse} {
			if l, err := bufio.NewReader(nc).ReadString('\n'); err != nil || !strings.HasPrefix(l, "HTTP/1.1 200") {
				t.Fatalf("%q, %v", l, err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), aWait)
		if drain {
			ts.down = true
			if err := ts.Drain(ctx, 100*time.Millisecond); err != nil {
				t.Errorf("Drain: %v", err)
			}
		} else {
			ts.shutdown(aWait)
		}
		cancel()
		lb, _ := io.ReadAll(legacy)
		sb, _ := io.ReadAll(sse)
		hasEOF := strings.Contains(string(lb), "eof()")
		if drain && hasEOF {
			t.Errorf("drain: the legacy stream got the shutdown message: %q", lb)
		}
		if !drain && !hasEOF {
			t.Errorf("shutdown: the legacy stream did not get eof(): %q", lb)
		}
		wantSSE := `"reason":"shutdown"`
		if drain {
			wantSSE = `"reason":"restart","code":1012,"reconnect":true`
		}
		if !strings.Contains(string(sb), "event: close") || !strings.Contains(string(sb), wantSSE) {
			t.Errorf("drain %v: the SSE stream ended with %q, want a close event with %s", drain, sb, wantSSE)
		}
	}
}

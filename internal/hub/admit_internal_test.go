package hub

import (
	"strconv"
	"testing"
	"time"
)

// TestBucketsDoNotLeak: channels that each publish once and go quiet
// leave no bucket behind: the map stays within twice the busy ones (and
// the minimum), and the periodic pruning empties it once they are full.
func TestBucketsDoNotLeak(t *testing.T) {
	var b buckets
	pol := Policy{PublishRate: 10}
	now := time.Unix(1000, 0)
	for i := range 100_000 {
		// 10 channels a millisecond: each bucket is full again 100ms
		// after its one message.
		now = now.Add(100 * time.Microsecond)
		if d := b.take("c"+strconv.Itoa(i), pol, now); d != 0 {
			t.Fatalf("a first message was refused (%v)", d)
		}
		if n := len(b.m); n > 2*minPrune+1 {
			t.Fatalf("%d buckets after %d channels", n, i+1)
		}
	}
	b.prune(now.Add(time.Second), time.Second)
	if n := len(b.m); n != 0 {
		t.Errorf("%d buckets left once all are full", n)
	}
	// A busy channel keeps its bucket, and its state, through a pruning.
	t0 := now.Add(2 * time.Second)
	for range 20 {
		b.take("busy", pol, t0)
	}
	b.prune(t0, 0)
	if b.m["busy"] == nil || b.take("busy", pol, t0) == 0 {
		t.Errorf("the busy channel's bucket was dropped")
	}
}

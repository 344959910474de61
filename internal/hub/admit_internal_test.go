package hub

import (
	"github.com/meteorpush/meteor/internal/engine"
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
		if d, _ := b.take("c"+strconv.Itoa(i), pol, now); d != 0 {
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
	if d, _ := b.take("busy", pol, t0); b.m["busy"] == nil || d == 0 {
		t.Errorf("the busy channel's bucket was dropped")
	}
}

// TestPendingStaysInOrder: a joining client's pending messages keep
// increasing ids when an older one comes after newer ones (a conflated
// channel's held message, sent by another goroutine).
func TestPendingStaysInOrder(t *testing.T) {
	h := &Hub{}
	e := &entry{}
	m := func(id uint64) *engine.Message { return &engine.Message{Channel: "c", ID: id} }
	h.deliver([]*entry{e}, []*engine.Message{m(6), m(7)})
	h.deliver([]*entry{e}, []*engine.Message{m(5)})
	h.deliver([]*entry{e}, []*engine.Message{m(7), m(8)})
	var ids []uint64
	for _, p := range e.pending {
		ids = append(ids, p.ID)
	}
	if len(ids) != 3 || ids[0] != 6 || ids[1] != 7 || ids[2] != 8 {
		t.Errorf("pending %v, want [6 7 8]", ids)
	}
}

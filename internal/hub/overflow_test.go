package hub_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/reason"
)

// TestOverflowNeverBlocks holds the only fan-out worker inside a delivery
// and has the engine deliver more than the queue holds, as messages from
// other nodes do: the engine's delivery never waits, the clients of the
// shard that could not be queued are closed as slow consumers, each with
// what it got in order and nothing after a hole; this node's publishers
// meanwhile wait for room, until their deadline.
func TestOverflowNeverBlocks(t *testing.T) {
	// Restored after the hub has closed (cleanups run last first).
	t.Cleanup(hub.SetBounds(10, 20, 4096))
	h, eng := newHub(t, bare, engine.Limits{MaxMessages: 100}, hub.Options{Workers: 1, InlineBelow: 1})
	first := newGateClient()
	subscribe(t, h, first, hub.Sub{Channel: "c"})
	rs := make([]*recorder, 4)
	for i := range rs {
		rs[i] = &recorder{}
		subscribe(t, h, rs[i], hub.Sub{Channel: "c"})
	}
	publish(t, h, "c", "0")
	<-first.entered // the worker is stuck in the first client's Deliver
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 10 {
			// The engine itself, as another node's message arrives.
			if _, err := eng.Publish(context.Background(), engine.Publication{Channel: "c", Text: "x"}); err != nil {
				t.Error(err)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(wait):
		t.Fatal("the engine's delivery blocked on a full fan-out queue")
	}
	if h.Overflows() == 0 {
		t.Fatal("no overflow with 50 deliveries queued behind a bound of 20")
	}
	// A publisher on this node waits for room, until its deadline.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.Publish(ctx, engine.Publication{Channel: "c", Text: "y"}); !errors.Is(err, engine.ErrUnavailable) {
		t.Errorf("Publish behind a full queue: %v, want ErrUnavailable", err)
	}
	close(first.gate)
	h.Flush()
	for i, r := range rs {
		if r.reason() != reason.SlowConsumer {
			t.Errorf("client %d closed as %v, want slowConsumer", i, r.reason())
		}
		got := r.got()
		for k := 1; k < len(got); k++ {
			if got[k] <= got[k-1] {
				t.Errorf("client %d: ids out of order %v", i, got)
			}
		}
		if n := len(got); n > 4 {
			t.Errorf("client %d got %d messages: at most the 4 queued before the overflow", i, n)
		}
	}
	// Room again: publishing works.
	if _, err := h.Publish(context.Background(), engine.Publication{Channel: "c", Text: "z"}); err != nil {
		t.Errorf("Publish once the queue drained: %v", err)
	}
}

package memory

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/enginetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// TestConformance runs the engine suite on the memory engine, bare and
// behind what a remote store brings: late delivery on another goroutine,
// and deliveries dropped and reported by a reset.
func TestConformance(t *testing.T) {
	newMemory := func(t *testing.T, l engine.Limits) engine.Engine { return New(l) }
	t.Run("Bare", func(t *testing.T) {
		enginetest.Run(t, enginetest.Store{New: newMemory})
	})
	t.Run("Async", func(t *testing.T) {
		enginetest.Run(t, enginetest.Store{New: func(t *testing.T, l engine.Limits) engine.Engine {
			return enginetest.Wrap(New(l), enginetest.WrapOptions{Async: true, MaxDelay: time.Millisecond})
		}})
	})
	t.Run("Lossy", func(t *testing.T) {
		enginetest.Run(t, enginetest.Store{New: func(t *testing.T, l engine.Limits) engine.Engine {
			return enginetest.Wrap(New(l), enginetest.WrapOptions{Async: true, DropEvery: 7})
		}})
	})
}

func started(t *testing.T, l engine.Limits) (*Engine, *enginetest.Recorder) {
	t.Helper()
	e := New(l)
	rec := enginetest.NewRecorder()
	if err := e.Start(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e, rec
}

// TestIDsRunAheadOfTheClock: within one microsecond a channel's ids go on
// by one; the clock catches up with them.
func TestIDsRunAheadOfTheClock(t *testing.T) {
	e, _ := started(t, engine.Limits{MaxMessages: 10})
	at := time.UnixMicro(1_700_000_000_000_000)
	e.now = func() time.Time { return at }
	ms, _ := e.Publish(context.Background(), engine.Publication{Channel: "c", Text: "1"}, engine.Publication{Channel: "c", Text: "2"})
	if ms[0].ID != 1_700_000_000_000_000 || ms[1].ID != ms[0].ID+1 {
		t.Errorf("ids %d %d", ms[0].ID, ms[1].ID)
	}
	at = at.Add(time.Second)
	m, _ := e.Publish(context.Background(), engine.Publication{Channel: "c", Text: "3"})
	if m[0].ID != uint64(at.UnixMicro()) {
		t.Errorf("id %d, want the clock's %d", m[0].ID, at.UnixMicro())
	}
	// A clock that goes back does not make ids go back.
	at = at.Add(-time.Hour)
	m2, _ := e.Publish(context.Background(), engine.Publication{Channel: "c", Text: "4"})
	if m2[0].ID != m[0].ID+1 {
		t.Errorf("id %d after the clock went back, want %d", m2[0].ID, m[0].ID+1)
	}
}

// TestForgetsOnlyUnsubscribed: a channel emptied long ago is forgotten
// (its tombstone expires) unless the hub is subscribed to it, whose
// subscribers must keep their stream's epoch.
func TestForgetsOnlyUnsubscribed(t *testing.T) {
	e, _ := started(t, engine.Limits{MaxMessages: 0})
	ctx := context.Background()
	e.Subscribe(ctx, "kept")
	m1, _ := e.Publish(ctx, engine.Publication{Channel: "kept"}, engine.Publication{Channel: "gone"})
	later := time.Now().Add(tombstoneTTL + time.Minute)
	e.expire(later)
	hs, _ := e.History(ctx, engine.HistoryRequest{Channel: "kept"}, engine.HistoryRequest{Channel: "gone"})
	if hs[0].Stream.Epoch != m1[0].Epoch || hs[0].Stream.Trimmed != m1[0].ID {
		t.Errorf("a subscribed channel was forgotten: %+v", hs[0].Stream)
	}
	if hs[1].Stream != (engine.Stream{}) {
		t.Errorf("an unsubscribed channel emptied long ago is remembered: %+v", hs[1].Stream)
	}
	// Subscribed but never published to: no stream yet, no epoch.
	e.Subscribe(ctx, "fresh")
	if h, _ := e.History(ctx, engine.HistoryRequest{Channel: "fresh"}); h[0].Stream != (engine.Stream{}) {
		t.Errorf("a subscribed channel without messages has a stream: %+v", h[0].Stream)
	}
	e.Unsubscribe(ctx, "kept")
	e.expire(later)
	if h, _ := e.History(ctx, engine.HistoryRequest{Channel: "kept"}); h[0].Stream != (engine.Stream{}) {
		t.Errorf("unsubscribed, the emptied channel is still remembered: %+v", h[0].Stream)
	}
}

// TestDeliversOnlySubscribed: the handler gets the messages of subscribed
// channels only.
func TestDeliversOnlySubscribed(t *testing.T) {
	e, rec := started(t, engine.Limits{MaxMessages: 10})
	ctx := context.Background()
	e.Subscribe(ctx, "a")
	ms, _ := e.Publish(ctx, engine.Publication{Channel: "a"}, engine.Publication{Channel: "b"})
	if got := rec.IDs("a"); len(got) != 1 || got[0] != ms[0].ID {
		t.Errorf("a: %v", got)
	}
	if got := rec.IDs("b"); len(got) != 0 {
		t.Errorf("b, not subscribed, got %v", got)
	}
}

// TestEncodedOnce: a message is rendered once per encoder.
func TestEncodedOnce(t *testing.T) {
	m := &engine.Message{Channel: "c", Text: "x"}
	var enc countEncoder
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() { defer wg.Done(); m.Encoded(&enc) }()
	}
	wg.Wait()
	if string(m.Encoded(&enc)) != "<x>" {
		t.Errorf("Encoded = %q", m.Encoded(&enc))
	}
	var other countEncoder
	m.Encoded(&other)
	if n := other.n.Load(); n != 1 {
		t.Errorf("second encoder ran %d times", n)
	}
}

type countEncoder struct{ n atomic.Int64 }

func (c *countEncoder) Encode(m *engine.Message) []byte {
	c.n.Add(1)
	return []byte("<" + m.Text + ">")
}

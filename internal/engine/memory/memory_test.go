package memory

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meteorpush/meteor/internal/engine"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newEngine(t *testing.T, opts Options, h engine.Handler) *Engine {
	t.Helper()
	e := New(opts, h)
	t.Cleanup(func() { e.Close() })
	return e
}

func pub(t *testing.T, e *Engine, ch, text string) *engine.Message {
	t.Helper()
	m, err := e.Publish(context.Background(), ch, text)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func ids(msgs []*engine.Message) []uint64 {
	var out []uint64
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

func TestIDsIncrease(t *testing.T) {
	var mu sync.Mutex
	handled := map[string][]uint64{}
	e := newEngine(t, Options{MaxMessages: 1 << 20}, func(m *engine.Message) {
		mu.Lock()
		handled[m.Channel] = append(handled[m.Channel], m.ID)
		mu.Unlock()
	})
	if m := pub(t, e, "a", "x"); m.ID != 1 || m.Channel != "a" || m.Text != "x" || time.Since(m.Time) > time.Minute {
		t.Fatalf("first message %+v", m)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				e.Publish(context.Background(), []string{"a", "b", "c"}[g%3], "x")
			}
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	total := 0
	for ch, hs := range handled {
		if !slices.IsSorted(hs) {
			t.Errorf("channel %s: handler saw ids out of order", ch)
		}
		h, _ := e.History(context.Background(), ch, engine.Query{Kind: engine.QueryAll})
		if !slices.Equal(ids(h.Messages), hs) {
			t.Errorf("channel %s: stored ids differ from handled ones", ch)
		}
		for _, id := range hs {
			if seen[id] {
				t.Errorf("id %d used twice", id)
			}
			seen[id] = true
		}
		total += len(hs)
	}
	if total != 1+8*500 {
		t.Errorf("%d messages handled", total)
	}
	for id := uint64(1); id <= uint64(total); id++ {
		if !seen[id] {
			t.Fatalf("id %d missing: ids are one counter from 1", id)
		}
	}
}

func TestHistoryQueries(t *testing.T) {
	e := newEngine(t, Options{MaxMessages: 4}, nil)
	for i := range 6 {
		pub(t, e, "c", string(rune('a'+i))) // ids 1..6; 3..6 kept
	}
	pub(t, e, "other", "z") // 7
	for _, tt := range []struct {
		q    engine.Query
		want []uint64
	}{
		{engine.Query{}, nil},
		{engine.Query{Kind: engine.QueryAll}, []uint64{3, 4, 5, 6}},
		{engine.Query{Kind: engine.QueryLast, Last: 2}, []uint64{5, 6}},
		{engine.Query{Kind: engine.QueryLast, Last: 99}, []uint64{3, 4, 5, 6}},
		{engine.Query{Kind: engine.QueryLast, Last: 0}, nil},
		{engine.Query{Kind: engine.QuerySince, Since: 0}, []uint64{3, 4, 5, 6}},
		{engine.Query{Kind: engine.QuerySince, Since: 5}, []uint64{5, 6}},
		{engine.Query{Kind: engine.QuerySince, Since: 7}, nil},
	} {
		h, err := e.History(context.Background(), "c", tt.q)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ids(h.Messages), tt.want) || h.Count != 4 || h.FirstID != 3 || h.LastID != 6 || h.Trimmed != 2 {
			t.Errorf("History(%+v) = ids %v, %+v; want ids %v, count 4, 3..6, trimmed 2", tt.q, ids(h.Messages), h, tt.want)
		}
	}
	if h, _ := e.History(context.Background(), "c", engine.Query{}); !h.Gap(2) || h.Gap(3) {
		t.Errorf("Gap wrong for trimmed 2")
	}
	h, _ := e.History(context.Background(), "none", engine.Query{Kind: engine.QueryAll})
	if h.Count != 0 || h.LastID != 0 || h.Messages != nil {
		t.Errorf("unknown channel: %+v", h)
	}
	// History does not create channels.
	chans, _ := e.Channels(context.Background())
	if want := []engine.ChannelInfo{{Name: "c", Messages: 4, LastID: 6}, {Name: "other", Messages: 1, LastID: 7}}; !slices.Equal(chans, want) {
		t.Errorf("Channels = %+v, want %+v", chans, want)
	}
	// The returned slice is the caller's.
	h, _ = e.History(context.Background(), "c", engine.Query{Kind: engine.QueryAll})
	h.Messages[0] = nil
	h, _ = e.History(context.Background(), "c", engine.Query{Kind: engine.QueryAll})
	if h.Messages[0] == nil {
		t.Errorf("History shares its slice with the store")
	}
	// SetOptions applies from the next publish.
	e.SetOptions(Options{MaxMessages: 1})
	pub(t, e, "c", "g")
	h, _ = e.History(context.Background(), "c", engine.Query{Kind: engine.QueryAll})
	if !slices.Equal(ids(h.Messages), []uint64{8}) {
		t.Errorf("after SetOptions: %v", ids(h.Messages))
	}
}

func TestMaxMessagesZeroKeepsNone(t *testing.T) {
	var got []uint64
	e := newEngine(t, Options{MaxMessages: 0}, func(m *engine.Message) { got = append(got, m.ID) })
	pub(t, e, "c", "x")
	h, _ := e.History(context.Background(), "c", engine.Query{Kind: engine.QueryAll})
	if h.Count != 0 || len(got) != 1 {
		t.Errorf("history %+v, handled %v", h, got)
	}
	if chans, _ := e.Channels(context.Background()); len(chans) != 0 {
		t.Errorf("Channels = %+v", chans)
	}
}

func TestMaxAge(t *testing.T) {
	e := newEngine(t, Options{MaxMessages: 100, MaxAge: 300 * time.Millisecond}, nil)
	pub(t, e, "c", "1")
	pub(t, e, "old", "x")
	// History trims on read.
	deadline := time.Now().Add(5 * time.Second)
	for {
		h, _ := e.History(context.Background(), "c", engine.Query{Kind: engine.QueryAll})
		if h.Count == 0 {
			if h.Trimmed != 1 {
				t.Errorf("Trimmed = %d, want 1", h.Trimmed)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("message never expired")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The sweep drops old messages of channels nobody reads: "old" goes
	// without a History call.
	for {
		chans, _ := e.Channels(context.Background())
		if len(chans) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Channels = %+v, want none", chans)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestClear(t *testing.T) {
	e := newEngine(t, Options{MaxMessages: 100}, nil)
	pub(t, e, "a", "1")
	pub(t, e, "a", "2")
	pub(t, e, "b", "3")
	e.Clear(context.Background(), "a")
	chans, _ := e.Channels(context.Background())
	if want := []engine.ChannelInfo{{Name: "b", Messages: 1, LastID: 3}}; !slices.Equal(chans, want) {
		t.Errorf("after Clear(a): %+v", chans)
	}
	h, _ := e.History(context.Background(), "a", engine.Query{Kind: engine.QuerySince, Since: 1})
	if h.Count != 0 || h.Trimmed != 2 || !h.Gap(1) {
		t.Errorf("cleared channel %+v: a client resuming must see its gap", h)
	}
	e.Clear(context.Background(), "")
	if chans, _ := e.Channels(context.Background()); len(chans) != 0 {
		t.Errorf("after Clear(all): %+v", chans)
	}
	if m := pub(t, e, "a", "4"); m.ID != 4 {
		t.Errorf("id after Clear = %d, want 4", m.ID)
	}
}

func TestClosed(t *testing.T) {
	e := New(Options{MaxMessages: 10}, nil)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := e.Publish(context.Background(), "c", "x"); err != engine.ErrClosed {
		t.Errorf("Publish after Close: %v", err)
	}
	if _, err := e.History(context.Background(), "c", engine.Query{}); err != engine.ErrClosed {
		t.Errorf("History after Close: %v", err)
	}
}

// TestEncodedOnce: a message is rendered once per encoder.
func TestEncodedOnce(t *testing.T) {
	e := newEngine(t, Options{MaxMessages: 10}, nil)
	m := pub(t, e, "c", "x")
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

type countEncoder struct{ n atomicInt }

func (c *countEncoder) Encode(m *engine.Message) []byte {
	c.n.Add(1)
	return []byte("<" + m.Text + ">")
}

type atomicInt = atomic.Int64

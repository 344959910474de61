package hub_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/memory"
	"github.com/meteorpush/meteor/internal/hub"
)

// recorder is a hub.Client that records the ids it is given.
type recorder struct {
	mu     sync.Mutex
	ids    []uint64
	live   []bool
	lagged bool
	kicked bool
	stopAt int // Deliver reports false once this many ids arrived; 0: never
}

func (r *recorder) Deliver(msgs []*engine.Message, live bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		r.ids = append(r.ids, m.ID)
		r.live = append(r.live, live)
	}
	return r.stopAt == 0 || len(r.ids) < r.stopAt
}

func (r *recorder) Lagged() { r.mu.Lock(); r.lagged = true; r.mu.Unlock() }
func (r *recorder) Kick()   { r.mu.Lock(); r.kicked = true; r.mu.Unlock() }

func (r *recorder) got() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

// newHub returns a hub with its fan-out workers running, on a memory
// engine. Channels of fewer than hub.DefaultInlineBelow clients are
// delivered before Publish returns; larger ones need h.Flush.
func newHub(t *testing.T, opts memory.Options) *hub.Hub {
	t.Helper()
	return newHubWith(t, opts, hub.Options{})
}

func newHubWith(t *testing.T, opts memory.Options, hopts hub.Options) *hub.Hub {
	t.Helper()
	h := hub.New()
	eng := memory.New(opts, h.Handle)
	h.SetEngine(eng)
	h.Start(hopts)
	t.Cleanup(func() { h.Close(); eng.Close() })
	return h
}

func publish(t *testing.T, h *hub.Hub, ch, text string) uint64 {
	t.Helper()
	m, err := h.Publish(context.Background(), ch, text)
	if err != nil {
		t.Fatal(err)
	}
	return m.ID
}

// TestSubscribeNoGapNoRepeat subscribes clients while several goroutines
// publish, and checks that each client gets every message of its channel
// from where it asked to start, in order, once.
func TestSubscribeNoGapNoRepeat(t *testing.T) {
	h := newHub(t, memory.Options{MaxMessages: 1 << 20})
	ctx := context.Background()
	const publishers, perPublisher = 4, 3000
	var (
		mu   sync.Mutex
		cIDs []uint64 // ids published on c
		wg   sync.WaitGroup
	)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perPublisher {
				ch := "c"
				if (i+p)%3 == 0 {
					ch = "d" // interleave ids of another channel
				}
				m, err := h.Publish(ctx, ch, "x")
				if err != nil {
					t.Error(err)
					return
				}
				if ch == "c" {
					mu.Lock()
					cIDs = append(cIDs, m.ID)
					mu.Unlock()
				}
			}
		}()
	}
	type sub struct {
		r     *recorder
		query engine.Query
		hist  engine.History
	}
	var subs []sub
	for i := range 200 {
		r := &recorder{}
		var q engine.Query
		switch i % 4 {
		case 1:
			q = engine.Query{Kind: engine.QueryAll}
		case 2:
			q = engine.Query{Kind: engine.QueryLast, Last: 5}
		case 3:
			mu.Lock()
			if n := len(cIDs); n > 10 {
				q = engine.Query{Kind: engine.QuerySince, Since: cIDs[n-10]}
			}
			mu.Unlock()
		}
		hist, activate, err := h.Subscribe(ctx, r, []hub.Sub{{Channel: "c", Query: q}, {Channel: "e"}}, true)
		if err != nil {
			t.Fatal(err)
		}
		activate()
		subs = append(subs, sub{r, q, hist[0]})
		time.Sleep(time.Duration(i%3) * 100 * time.Microsecond)
	}
	wg.Wait()
	h.Flush()
	slices.Sort(cIDs)
	for i, s := range subs {
		got := s.r.got()
		// The first id it should get: the first of its history, else the
		// first published after the history was read.
		first := s.hist.LastID + 1
		if len(s.hist.Messages) > 0 {
			first = s.hist.Messages[0].ID
		}
		k, _ := slices.BinarySearch(cIDs, first)
		want := cIDs[k:]
		if !slices.Equal(got, want) {
			t.Fatalf("subscriber %d (query %+v, history last %d): got %d ids, want %d; first difference at %d",
				i, s.query, s.hist.LastID, len(got), len(want), firstDiff(got, want))
		}
		if s.query.Kind == engine.QueryLast && len(s.hist.Messages) > 5 {
			t.Fatalf("subscriber %d: .b5 gave %d messages", i, len(s.hist.Messages))
		}
	}
	if n := h.CountSubscribers("c"); n != len(subs) {
		t.Errorf("CountSubscribers = %d, want %d", n, len(subs))
	}
	for _, s := range subs {
		h.Unsubscribe(s.r)
	}
	if n := h.CountSubscribers("c"); n != 0 {
		t.Errorf("CountSubscribers after Unsubscribe = %d", n)
	}
}

func firstDiff(a, b []uint64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestPendingIsHeld: messages published between Subscribe and activate
// arrive after the history, marked not live; later ones marked live.
func TestPendingIsHeld(t *testing.T) {
	h := newHub(t, memory.Options{MaxMessages: 100})
	publish(t, h, "c", "1")
	publish(t, h, "c", "2")
	r := &recorder{}
	hist, activate, err := h.Subscribe(context.Background(), r, []hub.Sub{{Channel: "c", Query: engine.Query{Kind: engine.QueryAll}}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if hist[0].LastID != 2 || hist[0].Count != 2 {
		t.Errorf("history %+v", hist[0])
	}
	publish(t, h, "c", "3")
	if got := r.got(); len(got) != 0 {
		t.Fatalf("delivered before activate: %v", got)
	}
	activate()
	publish(t, h, "c", "4")
	if got := r.got(); !slices.Equal(got, []uint64{1, 2, 3, 4}) {
		t.Fatalf("got %v", got)
	}
	if !slices.Equal(r.live, []bool{false, false, false, true}) {
		t.Errorf("live flags %v", r.live)
	}
}

// TestNotPersistent: history only, registered nowhere.
func TestNotPersistent(t *testing.T) {
	h := newHub(t, memory.Options{MaxMessages: 100})
	publish(t, h, "c", "1")
	r := &recorder{}
	_, activate, err := h.Subscribe(context.Background(), r, []hub.Sub{{Channel: "c", Query: engine.Query{Kind: engine.QueryAll}}, {Channel: "d"}}, false)
	if err != nil {
		t.Fatal(err)
	}
	if n := h.CountSubscribers("c") + h.CountSubscribers("d"); n != 0 {
		t.Errorf("a non-persistent subscription is counted: %d", n)
	}
	activate()
	publish(t, h, "c", "2")
	if got := r.got(); !slices.Equal(got, []uint64{1}) {
		t.Errorf("got %v, want the history only", got)
	}
	chans, _ := h.Channels(context.Background())
	if len(chans) != 1 || chans[0].Name != "c" || chans[0].Messages != 2 {
		t.Errorf("Channels = %+v", chans)
	}
}

// TestLagged: a subscription that is not activated while more than the
// hub holds arrive is told it lagged and gets nothing.
func TestLagged(t *testing.T) {
	h := newHub(t, memory.Options{MaxMessages: 10})
	r := &recorder{}
	_, activate, err := h.Subscribe(context.Background(), r, []hub.Sub{{Channel: "c"}}, true)
	if err != nil {
		t.Fatal(err)
	}
	for range 5000 {
		publish(t, h, "c", "x")
	}
	activate()
	if !r.lagged || len(r.got()) != 0 {
		t.Errorf("lagged %v, got %d messages", r.lagged, len(r.got()))
	}
}

// TestDeliverFalseStops: a client that refuses more is given no more by
// activate.
func TestDeliverFalseStops(t *testing.T) {
	h := newHub(t, memory.Options{MaxMessages: 10})
	publish(t, h, "c", "1")
	publish(t, h, "d", "2")
	r := &recorder{stopAt: 1}
	_, activate, err := h.Subscribe(context.Background(), r, []hub.Sub{
		{Channel: "c", Query: engine.Query{Kind: engine.QueryAll}},
		{Channel: "d", Query: engine.Query{Kind: engine.QueryAll}},
	}, true)
	if err != nil {
		t.Fatal(err)
	}
	activate()
	if got := r.got(); !slices.Equal(got, []uint64{1}) {
		t.Errorf("got %v", got)
	}
}

func TestKickAndChannels(t *testing.T) {
	h := newHub(t, memory.Options{MaxMessages: 10})
	a, b := &recorder{}, &recorder{}
	for _, r := range []*recorder{a, b} {
		_, activate, err := h.Subscribe(context.Background(), r, []hub.Sub{{Channel: "k"}}, true)
		if err != nil {
			t.Fatal(err)
		}
		activate()
	}
	publish(t, h, "m", "x")
	chans, err := h.Channels(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []hub.ChannelInfo{{Name: "k", Subscribers: 2}, {Name: "m", Messages: 1, LastID: 1}}
	if !slices.Equal(chans, want) {
		t.Errorf("Channels = %+v, want %+v", chans, want)
	}
	if n := h.Kick("k"); n != 2 || !a.kicked || !b.kicked {
		t.Errorf("Kick = %d, kicked %v %v", n, a.kicked, b.kicked)
	}
	h.Unsubscribe(a, "k")
	h.Unsubscribe(b)
	if n := h.CountSubscribers("k"); n != 0 {
		t.Errorf("CountSubscribers = %d", n)
	}
	chans, _ = h.Channels(context.Background())
	if len(chans) != 1 || chans[0].Name != "m" {
		t.Errorf("Channels after Unsubscribe = %+v", chans)
	}
	// Re-joining a dropped channel works.
	_, activate, _ := h.Subscribe(context.Background(), a, []hub.Sub{{Channel: "k"}}, true)
	activate()
	publish(t, h, "k", "y")
	if got := a.got(); !slices.Equal(got, []uint64{2}) {
		t.Errorf("got %v", got)
	}
}

// panicker is a client whose Deliver panics.
type panicker struct{ recorder }

func (p *panicker) Deliver([]*engine.Message, bool) bool { panic("transport bug") }

// TestDeliverPanicContained: a client whose Deliver panics is closed as
// lagged and reported, and the other clients of the channel get every
// message, inline and through the workers alike.
func TestDeliverPanicContained(t *testing.T) {
	for _, inline := range []int{-1, 1000} {
		t.Run(fmt.Sprintf("inlineBelow=%d", inline), func(t *testing.T) {
			var mu sync.Mutex
			var reports []any
			h := newHubWith(t, memory.Options{MaxMessages: 10}, hub.Options{InlineBelow: inline, OnPanic: func(p any, stack []byte) {
				mu.Lock()
				reports = append(reports, p)
				mu.Unlock()
				if !strings.Contains(string(stack), "Deliver") {
					t.Errorf("stack without the panicking Deliver:\n%s", stack)
				}
			}})
			bad := &panicker{}
			var good []*recorder
			subscribe := func(c hub.Client) {
				_, activate, err := h.Subscribe(context.Background(), c, []hub.Sub{{Channel: "p"}}, true)
				if err != nil {
					t.Fatal(err)
				}
				activate()
			}
			for i := range 8 {
				if i == 3 {
					subscribe(bad)
				}
				r := &recorder{}
				good = append(good, r)
				subscribe(r)
			}
			var want []uint64
			for i := range 5 {
				want = append(want, publish(t, h, "p", fmt.Sprint(i)))
			}
			h.Flush()
			for i, r := range good {
				if got := r.got(); !slices.Equal(got, want) {
					t.Errorf("client %d got %v, want %v", i, got, want)
				}
			}
			bad.mu.Lock()
			lagged := bad.lagged
			bad.mu.Unlock()
			if !lagged {
				t.Error("the panicking client was not closed as lagged")
			}
			mu.Lock()
			defer mu.Unlock()
			if len(reports) != 1 || reports[0] != "transport bug" {
				t.Errorf("reports %v, want one panic (no delivery after the first)", reports)
			}
		})
	}
}

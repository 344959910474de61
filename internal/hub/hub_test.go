package hub_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/enginetest"
	"github.com/meteorpush/meteor/internal/engine/memory"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/reason"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// wait bounds every wait for a delivery.
const wait = 10 * time.Second

// recorder is a hub.Client that records what it is given.
type recorder struct {
	mu     sync.Mutex
	ids    []uint64
	live   []bool
	closed reason.Reason
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

func (r *recorder) Close(why reason.Reason) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed == reason.None {
		r.closed = why
	}
}

func (r *recorder) got() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids)
}

func (r *recorder) reason() reason.Reason {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

// waitFor waits until cond holds, polling; it reports whether it did.
func waitFor(cond func() bool) bool {
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

// An engineKind is the memory engine bare or behind what a remote store
// brings (enginetest.Wrap).
type engineKind struct {
	name string
	opts *enginetest.WrapOptions // nil: bare
}

// engines are the engines the hub's delivery guarantees are tested on:
// the memory engine, one that delivers late on another goroutine, and one
// that also drops deliveries and reports them with a reset.
var engines = []engineKind{
	{"memory", nil},
	{"async", &enginetest.WrapOptions{Async: true, MaxDelay: 200 * time.Microsecond}},
	{"lossy", &enginetest.WrapOptions{Async: true, DropEvery: 97}},
}

// newHub returns a started hub on a started memory engine (wrapped as k
// says), both closed when the test ends.
func newHub(t *testing.T, k engineKind, limits engine.Limits, opts hub.Options) (*hub.Hub, engine.Engine) {
	t.Helper()
	var eng engine.Engine = memory.New(limits)
	if k.opts != nil {
		eng = enginetest.Wrap(eng, *k.opts)
	}
	return startHub(t, eng, opts), eng
}

// startHub starts a hub on eng, and eng, and closes both when the test
// ends.
func startHub(t *testing.T, eng engine.Engine, opts hub.Options) *hub.Hub {
	t.Helper()
	h := hub.New(eng, opts)
	h.Start()
	if err := eng.Start(context.Background(), h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		eng.Close(context.Background())
		h.Close()
	})
	return h
}

var bare = engines[0]

func publish(t *testing.T, h *hub.Hub, ch, text string) uint64 {
	t.Helper()
	ms, err := h.Publish(context.Background(), engine.Publication{Channel: ch, Text: text})
	if err != nil {
		t.Fatal(err)
	}
	return ms[0].ID
}

// subscribe joins c to subs and activates it, failing the test on an
// error.
func subscribe(t *testing.T, h *hub.Hub, c hub.Client, subs ...hub.Sub) []hub.Joined {
	t.Helper()
	res, activate := h.Subscribe(context.Background(), c, subs, true)
	for i, j := range res {
		if j.Err != nil {
			t.Fatalf("Subscribe %s: %v", subs[i].Channel, j.Err)
		}
	}
	activate()
	return res
}

// TestSubscribeNoGapNoRepeat subscribes clients while several goroutines
// publish, and checks that each client gets every message of its channel
// from where it asked to start, in order, once: on the memory engine, on
// one that delivers late on another goroutine, and on one that drops
// deliveries and reports them with resets.
func TestSubscribeNoGapNoRepeat(t *testing.T) {
	for _, k := range engines {
		t.Run(k.name, func(t *testing.T) { testNoGapNoRepeat(t, k) })
	}
}

func testNoGapNoRepeat(t *testing.T, k engineKind) {
	h, _ := newHub(t, k, engine.Limits{MaxMessages: 1 << 20}, hub.Options{})
	ctx := context.Background()
	const publishers, perPublisher = 4, 2000
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
					ch = "d" // interleave another channel
				}
				ms, err := h.Publish(ctx, engine.Publication{Channel: ch, Text: "x"})
				if err != nil {
					t.Error(err)
					return
				}
				if ch == "c" {
					mu.Lock()
					cIDs = append(cIDs, ms[0].ID)
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
	for i := range 150 {
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
				q = engine.Query{Kind: engine.QueryAfter, After: engine.Position{ID: cIDs[n-10]}}
			}
			mu.Unlock()
		}
		res := subscribe(t, h, r, hub.Sub{Channel: "c", Query: q}, hub.Sub{Channel: "e"})
		subs = append(subs, sub{r, q, res[0].History})
		time.Sleep(time.Duration(i%3) * 100 * time.Microsecond)
	}
	wg.Wait()
	slices.Sort(cIDs)
	for i, s := range subs {
		// The history, then every message published after it was read.
		want := enginetestIDs(s.hist.Messages)
		k, _ := slices.BinarySearch(cIDs, s.hist.Stream.Last+1)
		want = append(want, cIDs[k:]...)
		if !waitFor(func() bool { got := s.r.got(); return len(got) >= len(want) }) {
			t.Logf("subscriber %d: waited in vain", i)
		}
		got := s.r.got()
		if !slices.Equal(got, want) {
			var missing, extra []uint64
			for _, id := range want {
				if !slices.Contains(got, id) {
					missing = append(missing, id)
				}
			}
			for _, id := range got {
				if !slices.Contains(want, id) {
					extra = append(extra, id)
				}
			}
			t.Logf("missing %v extra %v; first wanted %d", missing, extra, want[0])
			t.Fatalf("subscriber %d (query %+v, history last %d): got %d ids, want %d; first difference at %d; closed %v, resyncs %d, overflows %d",
				i, s.query, s.hist.Stream.Last, len(got), len(want), firstDiff(got, want), s.r.reason(), h.Resyncs(), h.Overflows())
		}
		if s.r.reason() != reason.None {
			t.Fatalf("subscriber %d closed: %v", i, s.r.reason())
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

func enginetestIDs(msgs []*engine.Message) []uint64 {
	out := []uint64{}
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
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
	h, _ := newHub(t, bare, engine.Limits{MaxMessages: 100}, hub.Options{})
	m1 := publish(t, h, "c", "1")
	m2 := publish(t, h, "c", "2")
	r := &recorder{}
	res, activate := h.Subscribe(context.Background(), r, []hub.Sub{{Channel: "c", Query: engine.Query{Kind: engine.QueryAll}}}, true)
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	if s := res[0].History.Stream; s.Last != m2 || s.Count != 2 {
		t.Errorf("history %+v", s)
	}
	m3 := publish(t, h, "c", "3")
	if got := r.got(); len(got) != 0 {
		t.Fatalf("delivered before activate: %v", got)
	}
	activate()
	m4 := publish(t, h, "c", "4")
	if got := r.got(); !slices.Equal(got, []uint64{m1, m2, m3, m4}) {
		t.Fatalf("got %v", got)
	}
	if !slices.Equal(r.live, []bool{false, false, false, true}) {
		t.Errorf("live flags %v", r.live)
	}
}

// TestNotPersistent: history only, registered nowhere.
func TestNotPersistent(t *testing.T) {
	h, _ := newHub(t, bare, engine.Limits{MaxMessages: 100}, hub.Options{})
	m1 := publish(t, h, "c", "1")
	r := &recorder{}
	res, activate := h.Subscribe(context.Background(), r, []hub.Sub{{Channel: "c", Query: engine.Query{Kind: engine.QueryAll}}, {Channel: "d"}}, false)
	if res[0].Err != nil || res[1].Err != nil {
		t.Fatal(res)
	}
	if n := h.CountSubscribers("c") + h.CountSubscribers("d"); n != 0 {
		t.Errorf("a non-persistent subscription is counted: %d", n)
	}
	activate()
	publish(t, h, "c", "2")
	if got := r.got(); !slices.Equal(got, []uint64{m1}) {
		t.Errorf("got %v, want the history only", got)
	}
	chans, _ := h.Channels(context.Background())
	if len(chans) != 1 || chans[0].Name != "c" || chans[0].Messages != 2 {
		t.Errorf("Channels = %+v", chans)
	}
}

// TestLagged: a subscription that is not activated while more arrive
// than the hub holds for it catches up from history instead of being
// closed: all of them, in order, when history has them; closed as a
// stream reset (the client resumes and is told of its gap) when it does
// not. (Before, it was closed as a slow consumer either way.)
func TestLagged(t *testing.T) {
	for _, tt := range []struct {
		name string
		keep int
	}{{"history holds them", 10000}, {"history lost them", 10}} {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newHub(t, bare, engine.Limits{MaxMessages: tt.keep}, hub.Options{})
			r := &recorder{}
			res, activate := h.Subscribe(context.Background(), r, []hub.Sub{{Channel: "c"}}, true)
			if res[0].Err != nil {
				t.Fatal(res[0].Err)
			}
			var ids []uint64
			for range 5000 {
				ids = append(ids, publish(t, h, "c", "x"))
			}
			activate()
			if tt.keep < len(ids) {
				if !waitFor(func() bool { return r.reason() == reason.StreamReset }) {
					t.Fatalf("closed %v after %d messages, want streamReset", r.reason(), len(r.got()))
				}
				return
			}
			if !waitFor(func() bool { return len(r.got()) == len(ids) }) || !slices.Equal(r.got(), ids) || r.reason() != reason.None {
				t.Errorf("got %d of %d messages, closed %v", len(r.got()), len(ids), r.reason())
			}
			last := publish(t, h, "c", "live")
			if !waitFor(func() bool { return len(r.got()) == len(ids)+1 }) || r.got()[len(ids)] != last {
				t.Errorf("no live message after catching up")
			}
		})
	}
}

// TestDeliverFalseStops: a client that refuses more is given no more by
// activate.
func TestDeliverFalseStops(t *testing.T) {
	h, _ := newHub(t, bare, engine.Limits{MaxMessages: 10}, hub.Options{})
	m1 := publish(t, h, "c", "1")
	publish(t, h, "d", "2")
	r := &recorder{stopAt: 1}
	subscribe(t, h, r, hub.Sub{Channel: "c", Query: engine.Query{Kind: engine.QueryAll}},
		hub.Sub{Channel: "d", Query: engine.Query{Kind: engine.QueryAll}})
	if got := r.got(); !slices.Equal(got, []uint64{m1}) {
		t.Errorf("got %v", got)
	}
}

func TestKickAndChannels(t *testing.T) {
	h, _ := newHub(t, bare, engine.Limits{MaxMessages: 10}, hub.Options{Node: "n1"})
	a, b := &recorder{}, &recorder{}
	for _, r := range []*recorder{a, b} {
		subscribe(t, h, r, hub.Sub{Channel: "k"})
	}
	m := publish(t, h, "m", "x")
	chans, err := h.Channels(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []hub.ChannelInfo{{Name: "k", Subscribers: 2}, {Name: "m", Messages: 1, Last: m}}
	if !slices.Equal(chans, want) {
		t.Errorf("Channels = %+v, want %+v", chans, want)
	}
	if h.LocalChannels() != 1 {
		t.Errorf("LocalChannels = %d", h.LocalChannels())
	}
	if n, err := h.Kick(context.Background(), "k"); n != 2 || err != nil || a.reason() != reason.ChannelClosed || b.reason() != reason.ChannelClosed {
		t.Errorf("Kick = %d, %v; closed %v %v", n, err, a.reason(), b.reason())
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
	// Re-joining a left channel works.
	c := &recorder{}
	subscribe(t, h, c, hub.Sub{Channel: "k"})
	id := publish(t, h, "k", "y")
	if got := c.got(); !slices.Equal(got, []uint64{id}) {
		t.Errorf("got %v", got)
	}
}

// TestControl: a kick from another node closes this node's clients of the
// channel; other commands go to OnControl; this node's own are ignored
// (it carried them out before broadcasting).
func TestControl(t *testing.T) {
	var mu sync.Mutex
	var got []engine.Command
	h, _ := newHub(t, bare, engine.Limits{MaxMessages: 10}, hub.Options{Node: "me", OnControl: func(c engine.Command) {
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
	}})
	r := &recorder{}
	subscribe(t, h, r, hub.Sub{Channel: "k"})
	h.HandleControl(engine.Command{Kind: engine.Kick, Node: "me", Channel: "k"})
	if r.reason() != reason.None {
		t.Fatalf("this node's own kick, broadcast back, closed a client: %v", r.reason())
	}
	h.HandleControl(engine.Command{Kind: engine.Kick, Node: "other", Channel: "k"})
	if r.reason() != reason.ChannelClosed {
		t.Errorf("another node's kick: %v", r.reason())
	}
	h.HandleControl(engine.Command{Kind: engine.TakeOver, Node: "other", HostID: "abc"})
	h.HandleControl(engine.Command{Kind: engine.TakeOver, Node: "me", HostID: "abc"})
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].HostID != "abc" || got[0].Node != "other" {
		t.Errorf("OnControl got %+v", got)
	}
}

// panicker is a client whose Deliver panics.
type panicker struct{ recorder }

func (p *panicker) Deliver([]*engine.Message, bool) bool { panic("transport bug") }

// TestDeliverPanicContained: a client whose Deliver panics is closed as a
// server error and reported, and the other clients of the channel get
// every message, inline and through the workers alike.
func TestDeliverPanicContained(t *testing.T) {
	for _, inline := range []int{-1, 1000} {
		t.Run(fmt.Sprintf("inlineBelow=%d", inline), func(t *testing.T) {
			var mu sync.Mutex
			var reports []any
			h, _ := newHub(t, bare, engine.Limits{MaxMessages: 10}, hub.Options{InlineBelow: inline, OnPanic: func(p any, stack []byte) {
				mu.Lock()
				reports = append(reports, p)
				mu.Unlock()
				if !strings.Contains(string(stack), "Deliver") {
					t.Errorf("stack without the panicking Deliver:\n%s", stack)
				}
			}})
			bad := &panicker{}
			var good []*recorder
			for i := range 8 {
				if i == 3 {
					subscribe(t, h, bad, hub.Sub{Channel: "p"})
				}
				r := &recorder{}
				good = append(good, r)
				subscribe(t, h, r, hub.Sub{Channel: "p"})
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
			if bad.reason() != reason.ServerError {
				t.Errorf("the panicking client was closed as %v, want serverError", bad.reason())
			}
			mu.Lock()
			defer mu.Unlock()
			if len(reports) != 1 || reports[0] != "transport bug" {
				t.Errorf("reports %v, want one panic (no delivery after the first)", reports)
			}
		})
	}
}

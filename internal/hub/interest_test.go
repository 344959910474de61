package hub_test

// The node's interest in a channel (engine Subscribe/Unsubscribe) on an
// engine whose calls take time or fail, as a shared store's do.

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/enginetest"
	"github.com/meteorpush/meteor/internal/engine/memory"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/reason"
)

// wrappedHub returns a hub on a memory engine behind a synchronous
// enginetest.Wrapper, for tests that set faults.
func wrappedHub(t *testing.T, opts hub.Options) (*hub.Hub, *enginetest.Wrapper) {
	t.Helper()
	w := enginetest.Wrap(memory.New(engine.Limits{MaxMessages: 100}), enginetest.WrapOptions{})
	return startHub(t, w, opts), w
}

// TestJoinWaitsForSubscribe: a client that joins a channel while another
// client's engine Subscribe of it is in flight does not go live before
// that Subscribe returns, so a message published once its own Subscribe
// returned reaches it. (Before, the second client went live at once, and
// what was published before the engine's subscription took effect was
// lost to it.)
func TestJoinWaitsForSubscribe(t *testing.T) {
	h, w := wrappedHub(t, hub.Options{})
	release := w.Gate(enginetest.OpSubscribe)
	a, b := &recorder{}, &recorder{}
	aDone := make(chan []hub.Joined)
	go func() {
		res, activate := h.Subscribe(context.Background(), a, []hub.Sub{{Channel: "c"}}, true)
		activate()
		aDone <- res
	}()
	if !waitFor(func() bool { return w.Calls(enginetest.OpSubscribe) == 1 }) {
		t.Fatal("the first join never called the engine's Subscribe")
	}
	time.AfterFunc(100*time.Millisecond, release)
	res := subscribe(t, h, b, hub.Sub{Channel: "c"})
	// b's Subscribe returned: anything published now is b's.
	id := publish(t, h, "c", "after b joined")
	ra := <-aDone
	if ra[0].Err != nil || res[0].Err != nil {
		t.Fatalf("joins failed: %v %v", ra[0].Err, res[0].Err)
	}
	if got := b.got(); !slices.Equal(got, []uint64{id}) {
		t.Errorf("b got %v, want [%d]", got, id)
	}
	// a's own Subscribe may return after the publish: a starts after the
	// newest id its history read saw, and gets the message only if it
	// came later.
	want := []uint64{id}
	if ra[0].History.Stream.Last >= id {
		want = nil
	}
	if got := a.got(); !slices.Equal(got, want) {
		t.Errorf("a got %v, want %v", got, want)
	}
	if n := w.Calls(enginetest.OpSubscribe); n != 1 {
		t.Errorf("engine Subscribe called %d times for one channel, want 1", n)
	}
}

// TestUnsubscribeDoesNotOvertakeSubscribe: when the last client leaves
// and a new one joins while the engine's Unsubscribe is still in flight,
// the new Subscribe waits for it, so the node is not left deaf on a
// channel that has a client. (Before, the Subscribe could land first and
// the late Unsubscribe undo it.)
func TestUnsubscribeDoesNotOvertakeSubscribe(t *testing.T) {
	h, w := wrappedHub(t, hub.Options{UnsubscribeDelay: -1})
	a := &recorder{}
	subscribe(t, h, a, hub.Sub{Channel: "c"})
	release := w.Gate(enginetest.OpUnsubscribe)
	left := make(chan struct{})
	go func() {
		h.Unsubscribe(a) // the last client: the engine's Unsubscribe hangs
		close(left)
	}()
	if !waitFor(func() bool { return w.Calls(enginetest.OpUnsubscribe) == 1 }) {
		t.Fatal("leaving never called the engine's Unsubscribe")
	}
	b := &recorder{}
	time.AfterFunc(100*time.Millisecond, release)
	subscribe(t, h, b, hub.Sub{Channel: "c"})
	<-left
	id := publish(t, h, "c", "x")
	if got := b.got(); !slices.Equal(got, []uint64{id}) {
		t.Errorf("b got %v, want [%d]: the node went deaf", got, id)
	}
}

// TestFailedChannelOnly: a channel whose Subscribe fails fails alone: the
// client keeps the channels it had, and the next join of the failed one
// tries the engine again. (Before, one failure unsubscribed the client
// from every channel.)
func TestFailedChannelOnly(t *testing.T) {
	h, w := wrappedHub(t, hub.Options{})
	c := &recorder{}
	subscribe(t, h, c, hub.Sub{Channel: "a"})
	w.Fail(enginetest.OpSubscribe, enginetest.Unavailable("test"))
	res, activate := h.Subscribe(context.Background(), c, []hub.Sub{{Channel: "b"}}, true)
	activate()
	if !errors.Is(res[0].Err, engine.ErrUnavailable) {
		t.Fatalf("join of b: %v, want ErrUnavailable", res[0].Err)
	}
	ida := publish(t, h, "a", "still here")
	if got := c.got(); !slices.Equal(got, []uint64{ida}) {
		t.Errorf("a's client got %v, want [%d]", got, ida)
	}
	if h.CountSubscribers("b") != 0 {
		t.Errorf("the failed channel counts %d subscribers", h.CountSubscribers("b"))
	}
	w.Fail(enginetest.OpSubscribe, nil)
	d := &recorder{}
	subscribe(t, h, d, hub.Sub{Channel: "b"})
	idb := publish(t, h, "b", "now")
	if got := d.got(); !slices.Equal(got, []uint64{idb}) {
		t.Errorf("b's new client got %v", got)
	}
	// A history read that fails fails its channels, and leaves the
	// client registered nowhere for them.
	w.Fail(enginetest.OpHistory, enginetest.Unavailable("test"))
	e := &recorder{}
	res, _ = h.Subscribe(context.Background(), e, []hub.Sub{{Channel: "a"}, {Channel: "b"}}, true)
	if !errors.Is(res[0].Err, engine.ErrUnavailable) || !errors.Is(res[1].Err, engine.ErrUnavailable) {
		t.Errorf("failed history: %v %v", res[0].Err, res[1].Err)
	}
	if h.CountSubscribers("a") != 1 || h.CountSubscribers("b") != 1 {
		t.Errorf("counts %d %d after a failed join", h.CountSubscribers("a"), h.CountSubscribers("b"))
	}
}

// TestSubscribeDeadline: a Subscribe that the store never answers ends at
// the caller's deadline, with an error that reads as unavailable; when
// the store answers again, a join works.
func TestSubscribeDeadline(t *testing.T) {
	h, w := wrappedHub(t, hub.Options{})
	w.Hang(enginetest.OpSubscribe, true)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	c := &recorder{}
	start := time.Now()
	res, _ := h.Subscribe(ctx, c, []hub.Sub{{Channel: "a"}}, true)
	if !engine.Unavailable(res[0].Err) || time.Since(start) > 5*time.Second {
		t.Fatalf("hung Subscribe: %v after %v", res[0].Err, time.Since(start))
	}
	w.Hang(enginetest.OpSubscribe, false)
	subscribe(t, h, c, hub.Sub{Channel: "a"})
	id := publish(t, h, "a", "x")
	if got := c.got(); !slices.Equal(got, []uint64{id}) {
		t.Errorf("got %v", got)
	}
}

// TestInterestBatchedAndDelayed: a join of several new channels subscribes
// the engine once; many clients joining one channel at once subscribe it
// once; the last client leaving gives the interest up only after the
// delay, and a client that comes back within it costs no engine call.
func TestInterestBatchedAndDelayed(t *testing.T) {
	h, w := wrappedHub(t, hub.Options{UnsubscribeDelay: 300 * time.Millisecond})
	a := &recorder{}
	subscribe(t, h, a, hub.Sub{Channel: "x"}, hub.Sub{Channel: "y"}, hub.Sub{Channel: "z"})
	if n := w.Calls(enginetest.OpSubscribe); n != 1 {
		t.Errorf("a join of 3 new channels made %d engine Subscribe calls, want 1", n)
	}
	release := w.Gate(enginetest.OpSubscribe)
	var wg sync.WaitGroup
	clients := make([]*recorder, 20)
	for i := range clients {
		clients[i] = &recorder{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			subscribe(t, h, clients[i], hub.Sub{Channel: "many"})
		}()
	}
	time.AfterFunc(50*time.Millisecond, release)
	wg.Wait()
	if n := w.Calls(enginetest.OpSubscribe); n != 2 {
		t.Errorf("20 joins of one channel made %d engine Subscribe calls, want 1 more", n-1)
	}
	id := publish(t, h, "many", "x")
	h.Flush()
	for i, c := range clients {
		if got := c.got(); !slices.Equal(got, []uint64{id}) {
			t.Errorf("client %d got %v", i, got)
		}
	}
	h.Unsubscribe(a)
	time.Sleep(50 * time.Millisecond)
	if n := w.Calls(enginetest.OpUnsubscribe); n != 0 {
		t.Errorf("the interest was given up at once (%d calls)", n)
	}
	b := &recorder{}
	subscribe(t, h, b, hub.Sub{Channel: "x"}) // back within the delay
	if !waitFor(func() bool { return w.Calls(enginetest.OpUnsubscribe) == 1 }) {
		t.Fatal("y and z were never given up")
	}
	if n := w.Calls(enginetest.OpSubscribe); n != 2 {
		t.Errorf("coming back within the delay called Subscribe (%d calls)", n)
	}
	idx := publish(t, h, "x", "still subscribed")
	if got := b.got(); !slices.Equal(got, []uint64{idx}) {
		t.Errorf("b got %v", got)
	}
}

// TestResetResyncs: deliveries that the engine skipped and reported with
// a reset reach every live client from the history, in order, once; a
// client whose position was trimmed meanwhile is closed as a stream reset,
// to resume and be told of its gap; a resync whose history read fails
// closes its clients as store-unavailable.
func TestResetResyncs(t *testing.T) {
	w := enginetest.Wrap(memory.New(engine.Limits{MaxMessages: 5}), enginetest.WrapOptions{})
	var resets []string
	var mu sync.Mutex
	h := startHub(t, w, hub.Options{InlineBelow: -1, OnReset: func(ch []string, err error) {
		mu.Lock()
		resets = append(resets, ch...)
		mu.Unlock()
	}})
	a, b := &recorder{}, &recorder{}
	subscribe(t, h, a, hub.Sub{Channel: "c"})
	subscribe(t, h, b, hub.Sub{Channel: "c"})
	var want []uint64
	want = append(want, publish(t, h, "c", "1"))
	w.Drop(2)
	for range 3 {
		want = append(want, publish(t, h, "c", "x"))
	}
	if !waitFor(func() bool { return len(a.got()) == 4 && len(b.got()) == 4 }) {
		t.Fatalf("after a reset: a %v b %v, want %v", a.got(), b.got(), want)
	}
	h.Flush()
	if !slices.Equal(a.got(), want) || !slices.Equal(b.got(), want) || h.Resyncs() == 0 {
		t.Errorf("a %v b %v, want %v (resyncs %d)", a.got(), b.got(), want, h.Resyncs())
	}
	mu.Lock()
	if !slices.Contains(resets, "c") {
		t.Errorf("OnReset not told: %v", resets)
	}
	mu.Unlock()

	// Dropped past what the channel keeps: the positions are gone. The
	// resync's history read waits until all seven are published, so that
	// it cannot catch up between them.
	release := w.Gate(enginetest.OpHistory)
	w.Drop(7)
	for range 7 {
		publish(t, h, "c", "lost")
	}
	release()
	if !waitFor(func() bool { return a.reason() == reason.StreamReset && b.reason() == reason.StreamReset }) {
		t.Fatalf("closed %v %v, want streamReset", a.reason(), b.reason())
	}
	if len(a.got()) != 4 {
		t.Errorf("a got %v after its position was trimmed", a.got())
	}

	// A resync that cannot read the history.
	c := &recorder{}
	subscribe(t, h, c, hub.Sub{Channel: "d"})
	w.Fail(enginetest.OpHistory, enginetest.Unavailable("test"))
	w.Reset("d")
	if !waitFor(func() bool { return c.reason() == reason.StoreUnavailable }) {
		t.Errorf("closed %v, want storeUnavailable", c.reason())
	}
}

// TestResetWhilePending: a reset that comes while a client's history is
// being read resyncs it once it is live.
func TestResetWhilePending(t *testing.T) {
	h, w := wrappedHub(t, hub.Options{})
	c := &recorder{}
	res, activate := h.Subscribe(context.Background(), c, []hub.Sub{{Channel: "c"}}, true)
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	w.Drop(1)
	id := publish(t, h, "c", "dropped while pending")
	// The reset's resync runs while c is pending.
	if !waitFor(func() bool { return h.Resyncs() == 1 }) {
		t.Fatal("no resync")
	}
	before := h.Resyncs()
	activate()
	if !waitFor(func() bool { return slices.Equal(c.got(), []uint64{id}) }) {
		t.Errorf("got %v, want [%d] through the resync after activation (resyncs %d -> %d)", c.got(), id, before, h.Resyncs())
	}
}

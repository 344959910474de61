package hub_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/hub"
)

func conflated(iv time.Duration) func(string) hub.Policy {
	return func(ch string) hub.Policy {
		if ch == "fast" {
			return hub.Policy{ConflateInterval: iv}
		}
		return hub.Policy{}
	}
}

// TestConflation: of 50 messages published at once, the subscribers of a
// conflated channel get the first and then at most one per interval,
// ending with the last one, whatever the fan-out; another channel gets
// every message.
func TestConflation(t *testing.T) {
	for _, inline := range []int{0, -1} { // on the engine's goroutine; on the workers
		h, _ := newHub(t, bare, engine.Limits{MaxMessages: 100}, hub.Options{InlineBelow: inline})
		h.SetPolicy(conflated(100 * time.Millisecond))
		rs := []*recorder{{}, {}, {}}
		other := &recorder{}
		for _, r := range rs {
			subscribe(t, h, r, hub.Sub{Channel: "fast"})
		}
		subscribe(t, h, other, hub.Sub{Channel: "slow"})
		start := time.Now()
		var last uint64
		for i := range 50 {
			last = publish(t, h, "fast", "m")
			publish(t, h, "slow", "m")
			_ = i
		}
		elapsed := time.Since(start)
		for i, r := range rs {
			if !waitFor(func() bool { g := r.got(); return len(g) > 0 && g[len(g)-1] == last }) {
				t.Fatalf("inline=%d client %d got %v, never the last id %d", inline, i, r.got(), last)
			}
			got := r.got()
			if max := 2 + int(elapsed/(100*time.Millisecond)); len(got) > max {
				t.Errorf("inline=%d client %d got %d messages in %v, want at most %d", inline, i, len(got), elapsed, max)
			}
			for k := 1; k < len(got); k++ {
				if got[k] <= got[k-1] {
					t.Errorf("ids out of order: %v", got)
				}
			}
		}
		if !waitFor(func() bool { return len(other.got()) == 50 }) {
			t.Errorf("the channel without conflation got %d of 50", len(other.got()))
		}
	}
}

// TestConflationPaced: messages published slower than the interval all
// go out; a burst within one interval goes out as its newest message at
// the interval's end, not before.
func TestConflationPaced(t *testing.T) {
	h, _ := newHub(t, bare, engine.Limits{MaxMessages: 100}, hub.Options{})
	iv := 200 * time.Millisecond
	h.SetPolicy(conflated(iv))
	r := &recorder{}
	subscribe(t, h, r, hub.Sub{Channel: "fast"})
	first := publish(t, h, "fast", "a")
	if !waitFor(func() bool { return len(r.got()) == 1 }) {
		t.Fatal("the first message was held")
	}
	sent := time.Now()
	publish(t, h, "fast", "b")
	third := publish(t, h, "fast", "c")
	if !waitFor(func() bool { return len(r.got()) == 2 }) {
		t.Fatalf("got %v", r.got())
	}
	if d := time.Since(sent); d < iv-20*time.Millisecond {
		t.Errorf("the held message went out after %v, before the interval %v", d, iv)
	}
	if got := r.got(); got[0] != first || got[1] != third {
		t.Errorf("got %v, want [%d %d]", got, first, third)
	}
}

// TestConflationResume: a subscriber resuming on a conflated channel gets
// only the newest message it missed, and then live ones.
func TestConflationResume(t *testing.T) {
	h, _ := newHub(t, bare, engine.Limits{MaxMessages: 100}, hub.Options{})
	h.SetPolicy(conflated(50 * time.Millisecond))
	var ids []uint64
	for range 10 {
		ids = append(ids, publish(t, h, "fast", "m"))
	}
	r := &recorder{}
	subscribe(t, h, r, hub.Sub{Channel: "fast", Query: engine.Query{Kind: engine.QueryAfter, After: engine.Position{ID: ids[2]}}})
	if got := r.got(); len(got) != 1 || got[0] != ids[9] {
		t.Fatalf("resumed with %v, want only the newest %d", got, ids[9])
	}
	next := publish(t, h, "fast", "m")
	if !waitFor(func() bool { g := r.got(); return g[len(g)-1] == next }) {
		t.Errorf("live message %d never came: %v", next, r.got())
	}
	// History only (a poll): the newest too.
	p := &recorder{}
	res, activate := h.Subscribe(context.Background(), p, []hub.Sub{{Channel: "fast", Query: engine.Query{Kind: engine.QueryAll}}}, false)
	if res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	activate()
	if got := p.got(); len(got) != 1 || got[0] != next {
		t.Errorf("history-only got %v, want [%d]", got, next)
	}
}

// TestFlushSendsHeld: Flush (a shutdown) sends a held conflated message
// at once.
func TestFlushSendsHeld(t *testing.T) {
	h, _ := newHub(t, bare, engine.Limits{MaxMessages: 100}, hub.Options{})
	h.SetPolicy(conflated(time.Hour))
	r := &recorder{}
	subscribe(t, h, r, hub.Sub{Channel: "fast"})
	publish(t, h, "fast", "a")
	last := publish(t, h, "fast", "b")
	h.Flush()
	if got := r.got(); len(got) != 2 || got[1] != last {
		t.Errorf("after Flush got %v, want the held %d last", got, last)
	}
}

// slowRecorder is a recorder whose deliveries after its first take a
// while, so that the conflation goroutine is still sending when Close
// comes.
type slowRecorder struct{ recorder }

func (r *slowRecorder) Deliver(msgs []*engine.Message, live bool) bool {
	if len(r.got()) > 0 {
		time.Sleep(2 * time.Millisecond)
	}
	return r.recorder.Deliver(msgs, live)
}

// TestConflationClose: Close while the conflation goroutine is sending
// the held messages of many channels returns (it once took the hub's run
// lock between two of those sends, then waited forever for the goroutine,
// whose next send waited for that lock), and every channel's newest
// message is delivered.
func TestConflationClose(t *testing.T) {
	for round := range 5 {
		// Deliveries on the sending goroutine (few clients a channel).
		h, _ := newHub(t, bare, engine.Limits{MaxMessages: 10}, hub.Options{InlineBelow: 100})
		iv := 20 * time.Millisecond
		h.SetPolicy(func(string) hub.Policy { return hub.Policy{ConflateInterval: iv} })
		const chans = 40
		recs := make([]*slowRecorder, chans)
		for i := range recs {
			recs[i] = &slowRecorder{}
			subscribe(t, h, recs[i], hub.Sub{Channel: fmt.Sprintf("c%d", i)})
		}
		// Handed to the hub as the engine would, at once: every channel's
		// first message goes out, the next two are held, all due together.
		id := uint64(time.Now().UnixMicro())
		for k := range 3 {
			for i := range chans {
				id++
				name := fmt.Sprintf("c%d", i)
				h.HandleMessages(name, []*engine.Message{{Channel: name, ID: id, Text: fmt.Sprint(k), Time: time.Now()}})
			}
		}
		// Close lands while the goroutine sends the held messages, 2 ms
		// each.
		time.Sleep(iv + 10*time.Millisecond)
		closed := make(chan struct{})
		go func() { h.Close(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Close did not return", round)
		}
		for i, r := range recs {
			want := id - uint64(chans-1-i)
			if g := r.got(); len(g) == 0 || g[len(g)-1] != want {
				t.Fatalf("round %d: c%d got %v, want it to end with %d", round, i, g, want)
			}
		}
	}
}

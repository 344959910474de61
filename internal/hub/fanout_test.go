package hub_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/reason"
)

// chanRecorder is a hub.Client that records the ids it is given per
// channel.
type chanRecorder struct {
	mu     sync.Mutex
	ids    map[string][]uint64
	closed reason.Reason // guarded by mu; why the hub closed it, None while open
}

func (r *chanRecorder) Deliver(msgs []*engine.Message, _ bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, m := range msgs {
		r.ids[m.Channel] = append(r.ids[m.Channel], m.ID)
	}
	return true
}

func (r *chanRecorder) Close(why reason.Reason) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed == reason.None {
		r.closed = why
	}
}

func (r *chanRecorder) closedFor() reason.Reason {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.closed
}

func (r *chanRecorder) got(ch string) []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.ids[ch])
}

// TestFanoutConcurrent runs several publishers on several channels while
// subscribers join (with every kind of history query) and leave, and
// checks for each subscription that it got the history and then every
// message of the channel published after it, in id order, once; for one
// that left, a prefix of that, and nothing after Unsubscribe returned.
func TestFanoutConcurrent(t *testing.T) {
	for _, hopts := range []hub.Options{
		{Workers: 3, InlineBelow: -1}, // always queued
		{Workers: 2, InlineBelow: 6},  // switching between inline and queued
		{Workers: 1},
	} {
		t.Run(fmt.Sprintf("workers=%d,inline=%d", hopts.Workers, hopts.InlineBelow), func(t *testing.T) {
			testFanoutConcurrent(t, hopts)
		})
	}
}

func testFanoutConcurrent(t *testing.T, hopts hub.Options) {
	h, eng := newHub(t, bare, engine.Limits{MaxMessages: 1 << 20}, hopts)
	ctx := context.Background()
	channels := []string{"a", "b", "c"}
	var stop atomic.Bool
	var pubs sync.WaitGroup
	for p := range 4 {
		pubs.Add(1)
		go func() {
			defer pubs.Done()
			rng := rand.New(rand.NewPCG(uint64(p), 1))
			for i := 0; !stop.Load() || i < 500; i++ {
				if _, err := h.Publish(ctx, engine.Publication{Channel: channels[rng.IntN(len(channels))], Text: "x"}); err != nil {
					t.Error(err)
					return
				}
				if i%64 == 0 {
					time.Sleep(50 * time.Microsecond)
				}
			}
		}()
	}

	type sub struct {
		r     *chanRecorder
		chans []string
		hist  []engine.History
		left  map[string][]uint64 // what it had when Unsubscribe returned; nil while subscribed
	}
	var (
		mu    sync.Mutex
		subs  []*sub
		joins sync.WaitGroup
	)
	for g := range 6 {
		joins.Add(1)
		go func() {
			defer joins.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 2))
			for i := range 60 {
				s := &sub{r: &chanRecorder{ids: map[string][]uint64{}}}
				var hs []hub.Sub
				for _, ch := range channels {
					if rng.IntN(2) == 0 {
						continue
					}
					var q engine.Query
					switch rng.IntN(4) {
					case 1:
						q = engine.Query{Kind: engine.QueryAll}
					case 2:
						q = engine.Query{Kind: engine.QueryLast, Last: 3}
					case 3:
						q = engine.Query{Kind: engine.QueryAfter, After: engine.Position{ID: uint64(time.Now().Add(-time.Duration(rng.IntN(2000)) * time.Millisecond).UnixMicro())}}
					}
					hs = append(hs, hub.Sub{Channel: ch, Query: q})
					s.chans = append(s.chans, ch)
				}
				if len(hs) == 0 {
					continue
				}
				res, activate := h.Subscribe(ctx, s.r, hs, true)
				for _, j := range res {
					if j.Err != nil {
						t.Error(j.Err)
						return
					}
					s.hist = append(s.hist, j.History)
				}
				if rng.IntN(3) == 0 {
					time.Sleep(time.Duration(rng.IntN(300)) * time.Microsecond)
				}
				activate()
				mu.Lock()
				subs = append(subs, s)
				mu.Unlock()
				time.Sleep(time.Duration(rng.IntN(500)) * time.Microsecond)
				if i%2 == 0 {
					h.Unsubscribe(s.r)
					left := map[string][]uint64{}
					for _, ch := range s.chans {
						left[ch] = s.r.got(ch)
					}
					s.left = left
				}
			}
		}()
	}
	joins.Wait()
	stop.Store(true)
	pubs.Wait()
	h.Flush()

	all := map[string][]uint64{}
	for _, ch := range channels {
		hs, err := eng.History(ctx, engine.HistoryRequest{Channel: ch, Query: engine.Query{Kind: engine.QueryAll}})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range hs[0].Messages {
			all[ch] = append(all[ch], m.ID)
		}
	}
	var stayed, left, closedSlow int
	perChannel := map[string]int{}
	for i, s := range subs {
		for k, ch := range s.chans {
			hist := s.hist[k]
			var want []uint64
			for _, m := range hist.Messages {
				want = append(want, m.ID)
			}
			j, _ := slices.BinarySearch(all[ch], hist.Stream.Last+1)
			want = append(want, all[ch][j:]...)
			got := s.r.got(ch)
			for n := 1; n < len(got); n++ {
				if got[n] <= got[n-1] {
					t.Fatalf("subscriber %d, channel %s: id %d after %d", i, ch, got[n], got[n-1])
				}
			}
			if why := s.r.closedFor(); why != reason.None {
				// Closed by the hub (a slow consumer: its activation came
				// so late that more than maxPending messages waited):
				// what it got is a prefix, and it would resume from there.
				if why != reason.SlowConsumer || len(got) > len(want) || !slices.Equal(got, want[:len(got)]) {
					t.Fatalf("subscriber %d, channel %s closed as %v after %d ids, not a prefix of the %d wanted", i, ch, why, len(got), len(want))
				}
				closedSlow++
				continue
			}
			if s.left == nil {
				stayed++
				perChannel[ch]++
				if !slices.Equal(got, want) {
					t.Fatalf("subscriber %d, channel %s (history last %d, %d messages): got %d ids, want %d; first difference at %d (overflows %d, resyncs %d)",
						i, ch, hist.Stream.Last, len(hist.Messages), len(got), len(want), firstDiff(got, want), h.Overflows(), h.Resyncs())
				}
				continue
			}
			left++
			if !slices.Equal(got, s.left[ch]) {
				t.Fatalf("subscriber %d, channel %s: %d ids after Unsubscribe returned", i, ch, len(got)-len(s.left[ch]))
			}
			if len(got) > len(want) || !slices.Equal(got, want[:len(got)]) {
				t.Fatalf("subscriber %d, channel %s (history last %d): got %d ids, not a prefix of the %d wanted; first difference at %d",
					i, ch, hist.Stream.Last, len(got), len(want), firstDiff(got, want))
			}
		}
	}
	if stayed == 0 || left == 0 {
		t.Fatalf("%d subscriptions stayed, %d left: the test needs both", stayed, left)
	}
	if closedSlow > 0 {
		t.Logf("%d subscriptions closed as slow consumers (activated late on a loaded machine)", closedSlow)
	}
	for _, ch := range channels {
		if n := h.CountSubscribers(ch); n != perChannel[ch] {
			t.Errorf("CountSubscribers(%s) = %d, want %d", ch, n, perChannel[ch])
		}
	}
}

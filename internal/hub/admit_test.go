package hub_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/enginetest"
	"github.com/meteorpush/meteor/internal/engine/memory"
	"github.com/meteorpush/meteor/internal/hub"
)

func pubs(ch string, n int) []engine.Publication {
	out := make([]engine.Publication, n)
	for i := range out {
		out[i] = engine.Publication{Channel: ch, Text: "x"}
	}
	return out
}

// TestPublishTooLarge: a text over the channel's MaxMessageBytes is
// refused with its reason and nothing after it is published; CheckSize
// refuses a batch whole.
func TestPublishTooLarge(t *testing.T) {
	h, eng := newHub(t, bare, engine.Limits{MaxMessages: 100}, hub.Options{})
	h.SetPolicy(func(ch string) hub.Policy {
		if ch == "small" {
			return hub.Policy{MaxMessageBytes: 3}
		}
		return hub.Policy{}
	})
	msgs, err := h.Publish(context.Background(),
		engine.Publication{Channel: "small", Text: "abc"},
		engine.Publication{Channel: "small", Text: "abcd"},
		engine.Publication{Channel: "small", Text: "a"})
	var re *hub.RefusedError
	if !errors.As(err, &re) || !errors.Is(err, hub.ErrRefused) {
		t.Fatalf("Publish = %v, want a RefusedError", err)
	}
	if re.Reason != hub.ReasonTooLarge || re.Index != 1 || re.Size != 4 || re.Limit != 3 || len(msgs) != 1 {
		t.Errorf("refused %+v after %d published, want too large at 1 (4 > 3) after 1", re, len(msgs))
	}
	if got := re.Error(); got != "message is 4 bytes, the limit is 3" {
		t.Errorf("Error() = %q", got)
	}
	if _, err := h.Publish(context.Background(), engine.Publication{Channel: "big", Text: strings.Repeat("x", 1000)}); err != nil {
		t.Errorf("another channel's policy applied: %v", err)
	}
	err = h.CheckSize(engine.Publication{Channel: "small", Text: "a"}, engine.Publication{Channel: "small", Text: "abcd"})
	if !errors.As(err, &re) || re.Index != 1 {
		t.Errorf("CheckSize = %v, want too large at 1", err)
	}
	hs, err := eng.History(context.Background(), engine.HistoryRequest{Channel: "small", Query: engine.Query{Kind: engine.QueryAll}})
	if err != nil || len(hs[0].Messages) != 1 {
		t.Errorf("history holds %d messages (%v), want the 1 admitted", len(hs[0].Messages), err)
	}
	h.SetPolicy(nil)
	if _, err := h.Publish(context.Background(), engine.Publication{Channel: "small", Text: "abcd"}); err != nil {
		t.Errorf("after SetPolicy(nil): %v", err)
	}
}

// TestPublishRate: a channel admits its burst (twice the rate by
// default), then refuses with a retry-after until its bucket refills;
// other channels have buckets of their own; a new policy applies at once.
func TestPublishRate(t *testing.T) {
	h, _ := newHub(t, bare, engine.Limits{MaxMessages: 100}, hub.Options{})
	h.SetPolicy(func(string) hub.Policy { return hub.Policy{PublishRate: 5} })
	msgs, err := h.Publish(context.Background(), pubs("c", 12)...)
	var re *hub.RefusedError
	if !errors.As(err, &re) || re.Reason != hub.ReasonRate || re.Index != 10 || len(msgs) != 10 {
		t.Fatalf("Publish of 12 = %d published, %v; want 10 then refused for rate at 10", len(msgs), err)
	}
	if re.RetryAfter <= 0 || re.RetryAfter > 200*time.Millisecond || re.RetryAfterSeconds() != 1 {
		t.Errorf("RetryAfter = %v (%ds), want up to one token's time, 200ms (1s)", re.RetryAfter, re.RetryAfterSeconds())
	}
	if _, err := h.Publish(context.Background(), pubs("c", 1)...); !errors.Is(err, hub.ErrRefused) {
		t.Errorf("the next one was admitted: %v", err)
	}
	if _, err := h.Publish(context.Background(), pubs("d", 10)...); err != nil {
		t.Errorf("another channel: %v", err)
	}
	// A token comes back after 1/5 s.
	if !waitFor(func() bool { _, err := h.Publish(context.Background(), pubs("c", 1)...); return err == nil }) {
		t.Fatal("the bucket never refilled")
	}
	h.SetPolicy(func(string) hub.Policy { return hub.Policy{PublishRate: 1000, PublishBurst: 50} })
	if msgs, err := h.Publish(context.Background(), pubs("c", 50)...); err != nil || len(msgs) != 50 {
		t.Errorf("after a new policy: %d, %v; want a burst of 50", len(msgs), err)
	}
	if h.Buckets() != 2 {
		t.Errorf("%d buckets, want 2", h.Buckets())
	}
}

// TestSetPolicyWhileRunning: SetPolicy races with nothing (run with
// -race): publications and conflated deliveries go on while the policy
// changes under them, and every subscriber ends with the last message.
func TestSetPolicyWhileRunning(t *testing.T) {
	h, _ := newHub(t, bare, engine.Limits{MaxMessages: 100}, hub.Options{InlineBelow: -1})
	r := &recorder{}
	subscribe(t, h, r, hub.Sub{Channel: "c"})
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			iv := time.Duration(i%3) * time.Millisecond
			h.SetPolicy(func(string) hub.Policy {
				return hub.Policy{MaxMessageBytes: 100, PublishRate: 1 << 20, ConflateInterval: iv}
			})
			time.Sleep(100 * time.Microsecond)
		}
	}()
	var last uint64
	for range 2000 {
		last = publish(t, h, "c", "m")
	}
	close(done)
	<-stopped
	if !waitFor(func() bool { g := r.got(); return len(g) > 0 && g[len(g)-1] == last }) {
		t.Errorf("the last message %d never came", last)
	}
}

// TestRateTokenGivenBack: a publication that the engine fails to store
// gives its channel's rate token back: a store that was down does not also
// cost the channel its budget.
func TestRateTokenGivenBack(t *testing.T) {
	w := enginetest.Wrap(memory.New(engine.Limits{MaxMessages: 10}), enginetest.WrapOptions{})
	h := startHub(t, w, hub.Options{})
	h.SetPolicy(func(string) hub.Policy { return hub.Policy{MaxMessageBytes: 100, PublishRate: 1, PublishBurst: 1} })
	w.Fail(enginetest.OpPublish, engine.ErrUnavailable)
	if _, err := h.Publish(context.Background(), engine.Publication{Channel: "r", Text: "lost"}); !errors.Is(err, engine.ErrUnavailable) {
		t.Fatalf("publish while the store fails: %v", err)
	}
	w.Fail(enginetest.OpPublish, nil)
	if _, err := h.Publish(context.Background(), engine.Publication{Channel: "r", Text: "kept"}); err != nil {
		t.Fatalf("the first publication after the store came back was refused: %v", err)
	}
	if _, err := h.Publish(context.Background(), engine.Publication{Channel: "r", Text: "over"}); !errors.Is(err, hub.ErrRefused) {
		t.Fatalf("the bucket of one is empty now, yet: %v", err)
	}
}

package enginetest

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
)

var _ engine.SubscriberLister = (*Wrapper)(nil)

// ReportSubscribers implements engine.SubscriberLister.
func (w *Wrapper) ReportSubscribers(ctx context.Context, changes []engine.SubscriberChange, full bool, ttl time.Duration) error {
	l, ok := w.inner.(engine.SubscriberLister)
	if !ok {
		return fmt.Errorf("enginetest: %T lists no subscribers", w.inner)
	}
	return l.ReportSubscribers(ctx, changes, full, ttl)
}

// ListSubscribers implements engine.SubscriberLister.
func (w *Wrapper) ListSubscribers(ctx context.Context, channel, cursor string, limit int) ([]engine.Subscriber, string, error) {
	l, ok := w.inner.(engine.SubscriberLister)
	if !ok {
		return nil, "", fmt.Errorf("enginetest: %T lists no subscribers", w.inner)
	}
	return l.ListSubscribers(ctx, channel, cursor, limit)
}

// ListAll pages through l's entries of channel, limit at a time, and
// returns them with the number of pages it took.
func ListAll(ctx context.Context, l engine.SubscriberLister, channel string, limit int) ([]engine.Subscriber, int, error) {
	var all []engine.Subscriber
	cursor, pages := "", 0
	for {
		subs, next, err := l.ListSubscribers(ctx, channel, cursor, limit)
		if err != nil {
			return all, pages, err
		}
		pages++
		all = append(all, subs...)
		if next == "" {
			return all, pages, nil
		}
		if pages > 1_000_000 {
			return all, pages, fmt.Errorf("enginetest: listing %s does not end", channel)
		}
		cursor = next
	}
}

// RunPresence checks the presence abilities (engine.Presence,
// engine.SubscriberLister) of st's engines: a node's counts and entries
// reach the other engines of a shared store, never its own lists, and
// vanish once its report expired; an engine of a store of its own sees
// no other node. Run runs it; an engine's presence alone can run it too.
func RunPresence(t *testing.T, st Store) {
	e1, _ := start(t, st, engine.Limits{MaxMessages: 10})
	p1, ok := e1.(engine.Presence)
	if !ok {
		return
	}
	a, b := unique(t, "pa"), unique(t, "pb")
	l1, lists := e1.(engine.SubscriberLister)
	since := time.UnixMilli(time.Now().UnixMilli())
	sub := engine.Subscriber{ID: "h1", Transport: "sse", Since: since}
	ttl := 2 * time.Second
	if err := p1.ReportCounts(bg(), map[string]int{a: 3, b: 1}, ttl); err != nil {
		t.Fatalf("ReportCounts: %v", err)
	}
	if lists {
		err := l1.ReportSubscribers(bg(), []engine.SubscriberChange{
			{Channel: a, Key: 1, Sub: sub},
			{Channel: a, Key: 2, Sub: engine.Subscriber{ID: "h2", Transport: "legacy", Since: since}},
			{Channel: a, Key: 2, Gone: true},
		}, true, ttl)
		if err != nil {
			t.Fatalf("ReportSubscribers: %v", err)
		}
		own, _, err := ListAll(bg(), l1, a, 10)
		if err != nil || len(own) != 0 {
			t.Errorf("ListSubscribers of the reporting node = %+v, %v; want none of its own", own, err)
		}
	}
	if !st.Shared {
		counts, err := p1.OtherCounts(bg(), a)
		if err != nil || len(counts) != 1 || counts[0] != 0 {
			t.Errorf("OtherCounts on a store of one node = %v, %v", counts, err)
		}
		return
	}
	e2, _ := start(t, st, engine.Limits{MaxMessages: 10})
	p2 := e2.(engine.Presence)
	if err := p2.ReportCounts(bg(), map[string]int{a: 2}, time.Minute); err != nil {
		t.Fatalf("ReportCounts: %v", err)
	}
	counts, err := p2.OtherCounts(bg(), a, b, unique(t, "pc"))
	if err != nil || !slices.Equal(counts, []int{3, 1, 0}) {
		t.Errorf("the second node's OtherCounts = %v, %v; want [3 1 0]", counts, err)
	}
	counts, err = p1.OtherCounts(bg(), a, b)
	if err != nil || !slices.Equal(counts, []int{2, 0}) {
		t.Errorf("the first node's OtherCounts = %v, %v; want [2 0]", counts, err)
	}
	l2, ok := e2.(engine.SubscriberLister)
	if lists && ok {
		got, _, err := ListAll(bg(), l2, a, 10)
		if err != nil || len(got) != 1 || got[0].ID != "h1" || got[0].Transport != "sse" || !got[0].Since.Equal(since) || got[0].Node == "" {
			t.Errorf("the second node lists %+v, %v; want the first node's h1 (sse, since %v)", got, err, since)
		}
	}
	// The first node stops reporting: within its ttl it is gone.
	deadline := time.Now().Add(ttl + wait)
	for {
		counts, err = p2.OtherCounts(bg(), a, b)
		var got []engine.Subscriber
		if err == nil && lists && ok {
			got, _, err = ListAll(bg(), l2, a, 10)
		}
		if err == nil && slices.Equal(counts, []int{0, 0}) && len(got) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the first node's report expired: counts %v, entries %+v, %v", counts, got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

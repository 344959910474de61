package enginetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
)

// Store is what the suite needs to know of an engine's store.
type Store struct {
	// New returns a new engine on the test's store, not started, that
	// keeps what limits allow. The suite starts and closes it.
	New func(t *testing.T, limits engine.Limits) engine.Engine
	// Shared reports whether the engines that New returns within one test
	// share their store, as nodes of a cluster do; when false each has
	// its own, and a new engine is a restarted process that lost every
	// stream.
	Shared bool
	// Lose, when set (a shared store), loses every stream of the store, as
	// a flush or a restart without persistence does.
	Lose func(t *testing.T)
}

// wait bounds every wait of the suite for a delivery.
const wait = 10 * time.Second

// Run runs the conformance suite on the engines of st. An engine may skip
// deliveries if it reports them with HandleReset: where a reset covered a
// channel, the suite accepts a delivery with holes, in order and once.
func Run(t *testing.T, st Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, st Store)
	}{
		{"IDs", testIDs},
		{"PublishBatch", testPublishBatch},
		{"ConcurrentPublish", testConcurrentPublish},
		{"SubscribeDelivers", testSubscribeDelivers},
		{"HistoryQueries", testHistoryQueries},
		{"MaxMessagesZero", testMaxMessagesZero},
		{"MaxAge", testMaxAge},
		{"ChannelLimits", testChannelLimits},
		{"Clear", testClear},
		{"UnknownChannel", testUnknownChannel},
		{"Restart", testRestart},
		{"Context", testContext},
		{"Closed", testClosed},
		{"Abilities", testAbilities},
		{"TwoNodes", testTwoNodes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.fn(t, st) })
	}
}

// start returns a started engine of st and its recorder; both end with t.
func start(t *testing.T, st Store, limits engine.Limits) (engine.Engine, *Recorder) {
	t.Helper()
	e := st.New(t, limits)
	rec := NewRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := e.Start(ctx, rec); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := e.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
		rec.Check(t)
	})
	return e, rec
}

func bg() context.Context { return context.Background() }

func publish(t *testing.T, e engine.Engine, pubs ...engine.Publication) []*engine.Message {
	t.Helper()
	ms, err := e.Publish(bg(), pubs...)
	if err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if len(ms) != len(pubs) {
		t.Fatalf("Publish of %d returned %d messages", len(pubs), len(ms))
	}
	return ms
}

func pub(channel, text string) engine.Publication {
	return engine.Publication{Channel: channel, Text: text}
}

func history(t *testing.T, e engine.Engine, channel string, q engine.Query) engine.History {
	t.Helper()
	hs, err := e.History(bg(), engine.HistoryRequest{Channel: channel, Query: q})
	if err != nil {
		t.Fatalf("History: %v", err)
	}
	if len(hs) != 1 {
		t.Fatalf("History of one request returned %d", len(hs))
	}
	return hs[0]
}

func subscribe(t *testing.T, e engine.Engine, channels ...string) {
	t.Helper()
	if err := e.Subscribe(bg(), channels...); err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
}

// unique returns a channel name no other test of a shared store uses.
func unique(t *testing.T, name string) string {
	return fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
}

// maxJSInt is 2^53: ids must stay below it, JavaScript's exact integers.
const maxJSInt = 1 << 53

// testIDs: ids are max(last+1, now in µs), unique and increasing per
// channel, JavaScript-safe; a message carries its channel, text, epoch and
// time.
func testIDs(t *testing.T, st Store) {
	e, _ := start(t, st, engine.Limits{MaxMessages: 100})
	a, b := unique(t, "a"), unique(t, "b")
	before := time.Now()
	ms := publish(t, e, pub(a, "x"))
	m := ms[0]
	if m.Channel != a || m.Text != "x" || m.Epoch == "" {
		t.Fatalf("message %+v", m)
	}
	if d := m.Time.Sub(before); d < -time.Second || d > time.Minute {
		t.Errorf("Time %v is not about now (%v)", m.Time, before)
	}
	// The store's clock may differ a little from this one.
	if lo := uint64(before.Add(-time.Minute).UnixMicro()); m.ID < lo || m.ID >= maxJSInt {
		t.Errorf("id %d is not about now in microseconds (%d) or not below 2^53", m.ID, lo)
	}
	var last uint64
	for i := range 50 {
		n := publish(t, e, pub(a, "y"), pub(b, "z"))
		if n[0].ID <= max(last, m.ID) || n[0].Epoch != m.Epoch {
			t.Fatalf("publish %d: id %d epoch %q after %d %q", i, n[0].ID, n[0].Epoch, last, m.Epoch)
		}
		last = n[0].ID
		if n[1].Epoch == "" || n[1].Channel != b {
			t.Fatalf("second channel's message %+v", n[1])
		}
	}
	if got := engine.NextID(5, time.UnixMicro(3)); got != 6 {
		t.Errorf("NextID(5, 3µs) = %d, want 6", got)
	}
	if got := engine.NextID(5, time.UnixMicro(9)); got != 9 {
		t.Errorf("NextID(5, 9µs) = %d, want 9", got)
	}
}

// testPublishBatch: one Publish of several channels' messages stores them
// in order and delivers them in order per channel.
func testPublishBatch(t *testing.T, st Store) {
	e, rec := start(t, st, engine.Limits{MaxMessages: 100})
	a, b := unique(t, "a"), unique(t, "b")
	subscribe(t, e, a, b)
	ms := publish(t, e, pub(a, "1"), pub(a, "2"), pub(b, "3"), pub(a, "4"))
	for i, want := range []struct{ ch, text string }{{a, "1"}, {a, "2"}, {b, "3"}, {a, "4"}} {
		if ms[i].Channel != want.ch || ms[i].Text != want.text {
			t.Fatalf("message %d is %s/%q, want %s/%q", i, ms[i].Channel, ms[i].Text, want.ch, want.text)
		}
	}
	if !(ms[0].ID < ms[1].ID && ms[1].ID < ms[3].ID) {
		t.Errorf("ids of one channel not increasing: %d %d %d", ms[0].ID, ms[1].ID, ms[3].ID)
	}
	wantA := []uint64{ms[0].ID, ms[1].ID, ms[3].ID}
	rec.waitDelivered(a, 3)
	rec.waitDelivered(b, 1)
	rec.Complete(t, a, wantA)
	rec.Complete(t, b, []uint64{ms[2].ID})
	h := history(t, e, a, engine.Query{Kind: engine.QueryAll})
	if !slices.Equal(ids(h.Messages), wantA) {
		t.Errorf("history %v, want %v", ids(h.Messages), wantA)
	}
}

// testConcurrentPublish: publishers racing on the same channels get unique,
// increasing ids; each message is delivered once, in id order, and stored.
func testConcurrentPublish(t *testing.T, st Store) {
	e, rec := start(t, st, engine.Limits{MaxMessages: 1 << 20})
	chans := []string{unique(t, "a"), unique(t, "b"), unique(t, "c")}
	subscribe(t, e, chans...)
	var wg sync.WaitGroup
	const per = 200
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				if _, err := e.Publish(bg(), pub(chans[g%3], "x")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, ch := range chans {
		h := history(t, e, ch, engine.Query{Kind: engine.QueryAll})
		stored := ids(h.Messages)
		if len(stored) != 2*per || !slices.IsSorted(stored) || len(slices.Compact(slices.Clone(stored))) != len(stored) {
			t.Errorf("channel %s: %d stored, sorted %v", ch, len(stored), slices.IsSorted(stored))
			continue
		}
		rec.waitDelivered(ch, len(stored))
		rec.Complete(t, ch, stored)
	}
}

// testSubscribeDelivers: once Subscribe returns, every message published
// reaches the handler, until Unsubscribe.
func testSubscribeDelivers(t *testing.T, st Store) {
	e, rec := start(t, st, engine.Limits{MaxMessages: 10})
	a := unique(t, "a")
	subscribe(t, e, a)
	var want []uint64
	for i := range 20 {
		want = append(want, publish(t, e, pub(a, fmt.Sprint(i)))[0].ID)
	}
	rec.waitDelivered(a, len(want))
	rec.Complete(t, a, want)
	if err := e.Unsubscribe(bg(), a); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	// Subscribe again: delivery resumes.
	subscribe(t, e, a)
	m := publish(t, e, pub(a, "again"))[0]
	if !rec.Wait(wait, func() bool { return slices.Contains(ids(rec.msgs[a]), m.ID) || rec.resets[a]+rec.resets[""] > 0 }) {
		t.Errorf("message %d after a second Subscribe not delivered", m.ID)
	}
}

// testHistoryQueries: each kind of query, trimming by count, the stream's
// state and Gap.
func testHistoryQueries(t *testing.T, st Store) {
	e, _ := start(t, st, engine.Limits{MaxMessages: 4})
	c, other := unique(t, "c"), unique(t, "other")
	var all []*engine.Message
	for i := range 6 {
		all = append(all, publish(t, e, pub(c, string(rune('a'+i))))[0])
	}
	publish(t, e, pub(other, "z"))
	kept := ids(all[2:])
	ep := all[0].Epoch
	for _, tt := range []struct {
		q    engine.Query
		want []uint64
	}{
		{engine.Query{}, nil},
		{engine.Query{Kind: engine.QueryAll}, kept},
		{engine.Query{Kind: engine.QueryLast, Last: 2}, kept[2:]},
		{engine.Query{Kind: engine.QueryLast, Last: 99}, kept},
		{engine.Query{Kind: engine.QueryLast, Last: 0}, nil},
		{engine.Query{Kind: engine.QueryAfter, After: engine.Position{}}, kept},
		{engine.Query{Kind: engine.QueryAfter, After: all[3].Position()}, kept[2:]},
		{engine.Query{Kind: engine.QueryAfter, After: engine.Position{ID: all[3].ID}}, kept[2:]},
		{engine.Query{Kind: engine.QueryAfter, After: all[5].Position()}, nil},
		// Another stream's position: none of this stream's was seen.
		{engine.Query{Kind: engine.QueryAfter, After: engine.Position{ID: all[5].ID, Epoch: "other"}}, kept},
	} {
		h := history(t, e, c, tt.q)
		s := h.Stream
		if !slices.Equal(ids(h.Messages), tt.want) || s.Count != 4 || s.First != all[2].ID || s.Last != all[5].ID || s.Trimmed != all[1].ID || s.Epoch != ep {
			t.Errorf("History(%+v) = ids %v, %+v; want ids %v, count 4, %d..%d, trimmed %d, epoch %s",
				tt.q, ids(h.Messages), s, tt.want, all[2].ID, all[5].ID, all[1].ID, ep)
		}
	}
	s := history(t, e, c, engine.Query{}).Stream
	if s.Top() != all[5].ID {
		t.Errorf("Top = %d, want %d", s.Top(), all[5].ID)
	}
	for _, tt := range []struct {
		p          engine.Position
		gap, reset bool
	}{
		{all[0].Position(), true, false},
		{all[1].Position(), false, false},
		{all[4].Position(), false, false},
		{engine.Position{ID: all[0].ID}, true, false},
		{engine.Position{ID: all[2].ID}, false, false},
		{engine.Position{}, true, false},                            // from the start: two were trimmed
		{engine.Position{ID: all[5].ID + 1}, true, true},            // past the top: another stream
		{engine.Position{ID: all[4].ID, Epoch: "else"}, true, true}, // another epoch
	} {
		if s.Gap(tt.p) != tt.gap || s.Reset(tt.p) != tt.reset {
			t.Errorf("at %+v: Gap %v Reset %v, want %v %v", tt.p, s.Gap(tt.p), s.Reset(tt.p), tt.gap, tt.reset)
		}
	}
	// Several channels in one call, in order.
	hs, err := e.History(bg(), engine.HistoryRequest{Channel: other, Query: engine.Query{Kind: engine.QueryAll}},
		engine.HistoryRequest{Channel: c, Query: engine.Query{Kind: engine.QueryLast, Last: 1}})
	if err != nil || len(hs) != 2 || len(hs[0].Messages) != 1 || hs[0].Messages[0].Text != "z" || !slices.Equal(ids(hs[1].Messages), kept[3:]) {
		t.Errorf("batched History = %+v, %v", hs, err)
	}
	// The returned slice is the caller's.
	h := history(t, e, c, engine.Query{Kind: engine.QueryAll})
	h.Messages[0] = nil
	if h = history(t, e, c, engine.Query{Kind: engine.QueryAll}); h.Messages[0] == nil {
		t.Errorf("History shares its slice with the store")
	}
	// Limits change while running, from the next publish.
	if ls, ok := e.(engine.LimitSetter); ok {
		ls.SetLimits(engine.Limits{MaxMessages: 1})
		m := publish(t, e, pub(c, "g"))[0]
		if got := ids(history(t, e, c, engine.Query{Kind: engine.QueryAll}).Messages); !slices.Equal(got, []uint64{m.ID}) {
			t.Errorf("after SetLimits(1): %v", got)
		}
	}
}

// testMaxMessagesZero: a channel that keeps nothing still numbers and
// delivers its messages.
func testMaxMessagesZero(t *testing.T, st Store) {
	e, rec := start(t, st, engine.Limits{MaxMessages: 0})
	c := unique(t, "c")
	subscribe(t, e, c)
	m := publish(t, e, pub(c, "x"))[0]
	h := history(t, e, c, engine.Query{Kind: engine.QueryAll})
	if h.Stream.Count != 0 || len(h.Messages) != 0 || h.Stream.Top() != m.ID || h.Stream.Epoch != m.Epoch {
		t.Errorf("history %+v", h.Stream)
	}
	rec.waitDelivered(c, 1)
	rec.Complete(t, c, []uint64{m.ID})
}

// testMaxAge: messages older than the age limit leave the history.
func testMaxAge(t *testing.T, st Store) {
	e, _ := start(t, st, engine.Limits{MaxMessages: 100, MaxAge: 300 * time.Millisecond})
	c := unique(t, "c")
	m := publish(t, e, pub(c, "1"))[0]
	deadline := time.Now().Add(wait)
	for {
		h := history(t, e, c, engine.Query{Kind: engine.QueryAll})
		if h.Stream.Count == 0 {
			if h.Stream.Trimmed != m.ID || !h.Stream.Gap(engine.Position{Epoch: m.Epoch}) {
				t.Errorf("expired: %+v, want trimmed %d", h.Stream, m.ID)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("message never expired")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if l, ok := e.(engine.ChannelLister); ok {
		// Expired messages leave the listing too, without a History call.
		other := unique(t, "other")
		publish(t, e, pub(other, "x"))
		for {
			chans, err := l.Channels(bg())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(chans, func(ci engine.ChannelInfo) bool { return ci.Name == other }) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Channels = %+v, want %s gone", chans, other)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// testChannelLimits: Limits.Channel gives each channel its own count and
// age limits (its namespace's), in place of the global ones, from the
// next publish after SetLimits too.
func testChannelLimits(t *testing.T, st Store) {
	short, long, none := unique(t, "short"), unique(t, "long"), unique(t, "none")
	perChannel := func(shortMax int) func(string) (int, time.Duration) {
		return func(ch string) (int, time.Duration) {
			switch ch {
			case short:
				return shortMax, time.Second
			case none:
				return 0, 0
			}
			return 5, 0 // long: never expires
		}
	}
	e, rec := start(t, st, engine.Limits{MaxMessages: 100, MaxAge: time.Hour, Channel: perChannel(2)})
	subscribe(t, e, none)
	var pubs []engine.Publication
	for i := range 7 {
		// Interleaved in one call: each message trims by its own channel.
		pubs = append(pubs, pub(short, strconv.Itoa(i)), pub(long, strconv.Itoa(i)), pub(none, strconv.Itoa(i)))
	}
	ms := publish(t, e, pubs...)
	of := func(ch string) []uint64 {
		var out []uint64
		for _, m := range ms {
			if m.Channel == ch {
				out = append(out, m.ID)
			}
		}
		return out
	}
	if got := ids(history(t, e, short, engine.Query{Kind: engine.QueryAll}).Messages); !slices.Equal(got, of(short)[5:]) {
		t.Errorf("%s keeps %v, want its own limit of 2: %v", short, got, of(short)[5:])
	}
	if got := ids(history(t, e, long, engine.Query{Kind: engine.QueryAll}).Messages); !slices.Equal(got, of(long)[2:]) {
		t.Errorf("%s keeps %v, want its own limit of 5: %v", long, got, of(long)[2:])
	}
	h := history(t, e, none, engine.Query{Kind: engine.QueryAll})
	if h.Stream.Count != 0 || len(h.Messages) != 0 || h.Stream.Top() != of(none)[6] {
		t.Errorf("%s, which keeps nothing: %+v", none, h.Stream)
	}
	rec.waitDelivered(none, 7)
	rec.Complete(t, none, of(none))
	// short expires by its own age; long, on the same store, does not.
	deadline := time.Now().Add(wait)
	for history(t, e, short, engine.Query{Kind: engine.QueryNone}).Stream.Count != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%s never expired", short)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if h := history(t, e, long, engine.Query{Kind: engine.QueryNone}); h.Stream.Count != 5 {
		t.Errorf("%s expired with %s: %+v", long, short, h.Stream)
	}
	ls, ok := e.(engine.LimitSetter)
	if !ok {
		return
	}
	ls.SetLimits(engine.Limits{MaxMessages: 100, Channel: perChannel(3)})
	ms = publish(t, e, pub(short, "a"), pub(short, "b"), pub(short, "c"), pub(short, "d"))
	if got := ids(history(t, e, short, engine.Query{Kind: engine.QueryAll}).Messages); !slices.Equal(got, ids(ms[1:])) {
		t.Errorf("after SetLimits, %s keeps %v, want the newest 3 of %v", short, got, ids(ms))
	}
}

// testClear: Clear drops messages but keeps the epoch and the newest id,
// so that a resuming client is told of its gap and ids go on growing.
func testClear(t *testing.T, st Store) {
	e, _ := start(t, st, engine.Limits{MaxMessages: 100})
	a, b := unique(t, "a"), unique(t, "b")
	ms := publish(t, e, pub(a, "1"), pub(a, "2"), pub(b, "3"))
	if err := e.Clear(bg(), a); err != nil {
		t.Fatal(err)
	}
	h := history(t, e, a, engine.Query{Kind: engine.QueryAll})
	if h.Stream.Count != 0 || h.Stream.Trimmed != ms[1].ID || h.Stream.Epoch != ms[0].Epoch || !h.Stream.Gap(ms[0].Position()) || h.Stream.Gap(ms[1].Position()) {
		t.Errorf("cleared channel %+v: a client resuming must see its gap", h.Stream)
	}
	if h := history(t, e, b, engine.Query{Kind: engine.QueryAll}); h.Stream.Count != 1 {
		t.Errorf("Clear(a) touched b: %+v", h.Stream)
	}
	if l, ok := e.(engine.ChannelLister); ok {
		chans, _ := l.Channels(bg())
		if slices.ContainsFunc(chans, func(ci engine.ChannelInfo) bool { return ci.Name == a }) {
			t.Errorf("a cleared channel is listed: %+v", chans)
		}
	}
	if !st.Shared {
		// Clear of every channel, on a store of this test's own.
		if err := e.Clear(bg(), ""); err != nil {
			t.Fatal(err)
		}
		if h := history(t, e, b, engine.Query{Kind: engine.QueryAll}); h.Stream.Count != 0 || h.Stream.Trimmed != ms[2].ID {
			t.Errorf("after Clear(all): %+v", h.Stream)
		}
	}
	m := publish(t, e, pub(a, "4"))[0]
	if m.ID <= ms[1].ID || m.Epoch != ms[0].Epoch {
		t.Errorf("after Clear: id %d epoch %s, want > %d in %s", m.ID, m.Epoch, ms[1].ID, ms[0].Epoch)
	}
}

// testUnknownChannel: a channel never published to has no stream; reading
// it creates nothing, and a position with an epoch in it is a gap.
func testUnknownChannel(t *testing.T, st Store) {
	e, _ := start(t, st, engine.Limits{MaxMessages: 10})
	c := unique(t, "never")
	h := history(t, e, c, engine.Query{Kind: engine.QueryAll})
	if h.Stream != (engine.Stream{}) || h.Messages != nil {
		t.Errorf("unknown channel: %+v", h)
	}
	if !h.Stream.Gap(engine.Position{ID: 5, Epoch: "abc"}) || !h.Stream.Reset(engine.Position{ID: 5}) || h.Stream.Gap(engine.Position{}) {
		t.Errorf("Gap on an unknown channel")
	}
	if l, ok := e.(engine.ChannelLister); ok {
		chans, _ := l.Channels(bg())
		if slices.ContainsFunc(chans, func(ci engine.ChannelInfo) bool { return ci.Name == c }) {
			t.Errorf("History created channel %s", c)
		}
	}
}

// testRestart: after the store lost its streams (a restart of a memory
// engine, a flush of a shared store), ids are still greater than every id
// handed out before, the stream has another epoch, and a position of the
// old stream is a gap.
func testRestart(t *testing.T, st Store) {
	if st.Shared && st.Lose == nil {
		t.Skip("the store cannot be made to lose its streams")
	}
	c := unique(t, "demo")
	e1, _ := start(t, st, engine.Limits{MaxMessages: 100})
	var old []*engine.Message
	for i := range 5 {
		old = append(old, publish(t, e1, pub(c, fmt.Sprint(i)))[0])
	}
	ctx, cancel := context.WithTimeout(bg(), wait)
	if err := e1.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if st.Lose != nil {
		st.Lose(t)
	}
	e2, rec := start(t, st, engine.Limits{MaxMessages: 100})
	subscribe(t, e2, c)
	last := old[4]
	h := history(t, e2, c, engine.Query{Kind: engine.QueryAfter, After: last.Position()})
	if len(h.Messages) != 0 || !h.Stream.Gap(last.Position()) || !h.Stream.Reset(last.Position()) {
		t.Errorf("lost stream read at the old position: %+v %+v", h.Stream, ids(h.Messages))
	}
	var fresh []*engine.Message
	for i := range 3 {
		fresh = append(fresh, publish(t, e2, pub(c, fmt.Sprint("new", i)))[0])
	}
	for _, m := range fresh {
		if m.ID <= last.ID {
			t.Fatalf("id %d after the restart is not above %d", m.ID, last.ID)
		}
		if m.Epoch == last.Epoch {
			t.Fatalf("the new stream has the old epoch %s", m.Epoch)
		}
	}
	// A client with the old position and epoch gets the new stream whole
	// and is told of its gap; one with the number only gets what follows
	// it, which is the new stream too.
	h = history(t, e2, c, engine.Query{Kind: engine.QueryAfter, After: last.Position()})
	if !slices.Equal(ids(h.Messages), ids(fresh)) || !h.Stream.Gap(last.Position()) {
		t.Errorf("resume with epoch: %v gap %v, want %v and a gap", ids(h.Messages), h.Stream.Gap(last.Position()), ids(fresh))
	}
	h = history(t, e2, c, engine.Query{Kind: engine.QueryAfter, After: engine.Position{ID: last.ID}})
	if !slices.Equal(ids(h.Messages), ids(fresh)) {
		t.Errorf("resume without epoch: %v, want %v", ids(h.Messages), ids(fresh))
	}
	rec.waitDelivered(c, 3)
	rec.Complete(t, c, ids(fresh))
}

// testContext: a call whose context has ended fails with its error.
func testContext(t *testing.T, st Store) {
	e, _ := start(t, st, engine.Limits{MaxMessages: 10})
	ctx, cancel := context.WithCancel(bg())
	cancel()
	c := unique(t, "c")
	if _, err := e.Publish(ctx, pub(c, "x")); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a canceled context: %v", err)
	}
	if _, err := e.History(ctx, engine.HistoryRequest{Channel: c}); !errors.Is(err, context.Canceled) {
		t.Errorf("History with a canceled context: %v", err)
	}
}

// testClosed: every call after Close fails with ErrClosed; Close twice is
// fine.
func testClosed(t *testing.T, st Store) {
	e := st.New(t, engine.Limits{MaxMessages: 10})
	rec := NewRecorder()
	if err := e.Start(bg(), rec); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(bg()); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(bg()); err != nil {
		t.Errorf("second Close: %v", err)
	}
	c := unique(t, "c")
	if _, err := e.Publish(bg(), pub(c, "x")); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Publish after Close: %v", err)
	}
	if _, err := e.History(bg(), engine.HistoryRequest{Channel: c}); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("History after Close: %v", err)
	}
	if err := e.Subscribe(bg(), c); !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Subscribe after Close: %v", err)
	}
	if hc, ok := e.(engine.HealthChecker); ok {
		if err := hc.Ready(bg()); !engine.Unavailable(err) {
			t.Errorf("Ready after Close: %v", err)
		}
	}
}

// testAbilities: the optional abilities an engine has work as documented.
func testAbilities(t *testing.T, st Store) {
	e, rec := start(t, st, engine.Limits{MaxMessages: 10})
	a, b := unique(t, "a"), unique(t, "b")
	publish(t, e, pub(b, "1"), pub(a, "2"), pub(a, "3"))
	if l, ok := e.(engine.ChannelLister); ok {
		chans, err := l.Channels(bg())
		if err != nil {
			t.Fatal(err)
		}
		if !slices.IsSortedFunc(chans, func(x, y engine.ChannelInfo) int { return cmpString(x.Name, y.Name) }) {
			t.Errorf("Channels not sorted: %+v", chans)
		}
		i := slices.IndexFunc(chans, func(ci engine.ChannelInfo) bool { return ci.Name == a })
		if i < 0 || chans[i].Messages != 2 || chans[i].Last == 0 {
			t.Errorf("Channels = %+v, want %s with 2 messages", chans, a)
		}
	}
	if hc, ok := e.(engine.HealthChecker); ok {
		// A remote store's engine connects after Start returns: Ready
		// may say "not yet" for a moment, and must then say yes.
		err := hc.Ready(bg())
		for deadline := time.Now().Add(wait); err != nil && time.Now().Before(deadline); err = hc.Ready(bg()) {
			if !engine.Unavailable(err) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("Ready on a working store, %v after Start: %v", wait, err)
		}
	}
	if p, ok := e.(engine.Presence); ok {
		if err := p.ReportCounts(bg(), map[string]int{a: 3}, time.Minute); err != nil {
			t.Errorf("ReportCounts: %v", err)
		}
		counts, err := p.OtherCounts(bg(), a, b)
		if err != nil || len(counts) != 2 {
			t.Errorf("OtherCounts = %v, %v", counts, err)
		} else if !st.Shared && (counts[0] != 0 || counts[1] != 0) {
			// This node's own report is not another node's.
			t.Errorf("OtherCounts on a store of one node = %v", counts)
		}
	}
	t.Run("Presence", func(t *testing.T) { RunPresence(t, st) })
	if c, ok := e.(engine.Control); ok {
		cmd := engine.Command{Kind: engine.Kick, Node: "n1", Channel: a}
		if err := c.Broadcast(bg(), cmd); err != nil {
			t.Fatalf("Broadcast: %v", err)
		}
		if !rec.Wait(wait, func() bool { return slices.Contains(rec.commands, cmd) }) {
			t.Errorf("the broadcast did not reach this node: %+v", rec.Commands())
		}
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

package redis

import (
	"context"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/enginetest"
	"github.com/meteorpush/meteor/internal/testkit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newOn returns an engine of node on r, not started, with short probe and
// audit intervals.
func newOn(t testing.TB, r *testkit.Redis, node string, l engine.Limits) *Engine {
	t.Helper()
	e, err := New(Options{
		URL: r.URL(), Prefix: "t", Node: node, Limits: l, Timeout: time.Second,
		ProbeInterval: 200 * time.Millisecond, AuditInterval: 300 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestConformance runs the engine suite on the Redis engine, against a
// real redis-server: every engine of one test is a node on the same Redis.
func TestConformance(t *testing.T) {
	r := testkit.StartRedis(t)
	n := 0
	enginetest.Run(t, enginetest.Store{
		New: func(t *testing.T, l engine.Limits) engine.Engine {
			n++
			return newOn(t, r, "node"+string(rune('a'+n%26)), l)
		},
		Shared: true,
		Lose:   func(t *testing.T) { r.Do("FLUSHALL") },
	})
}

func started(t *testing.T, r *testkit.Redis, node string, l engine.Limits) (*Engine, *enginetest.Recorder) {
	t.Helper()
	e := newOn(t, r, node, l)
	rec := enginetest.NewRecorder()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Start(ctx, rec); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.Close(ctx)
		rec.Check(t)
	})
	return e, rec
}

// TestIDsNear2To53: ids are exact in the function's Lua numbers (doubles)
// up to 2^53 and are never written in exponent form.
func TestIDsNear2To53(t *testing.T) {
	r := testkit.StartRedis(t)
	e, rec := started(t, r, "a", engine.Limits{MaxMessages: 10})
	ctx := context.Background()
	c := "big"
	if _, err := e.Publish(ctx, engine.Publication{Channel: c, Text: "first"}); err != nil {
		t.Fatal(err)
	}
	const near = 1<<53 - 10
	r.Do("HSET", e.key(c, "m"), "top", "9007199254740982")
	if err := e.Subscribe(ctx, c); err != nil {
		t.Fatal(err)
	}
	ms, err := e.Publish(ctx, engine.Publication{Channel: c, Text: "a"}, engine.Publication{Channel: c, Text: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if ms[0].ID != near+1 || ms[1].ID != near+2 {
		t.Fatalf("ids %d %d, want %d %d", ms[0].ID, ms[1].ID, uint64(near+1), uint64(near+2))
	}
	h, err := e.History(ctx, engine.HistoryRequest{Channel: c, Query: engine.Query{Kind: engine.QueryAfter, After: engine.Position{ID: near + 1}}})
	if err != nil || len(h[0].Messages) != 1 || h[0].Messages[0].ID != near+2 || h[0].Stream.Last != near+2 {
		t.Fatalf("history after %d: %+v %v", uint64(near+1), h, err)
	}
	if !rec.Wait(5*time.Second, func() bool { return len(rec.IDsLocked(c)) == 2 }) {
		t.Fatalf("delivered %v", rec.IDs(c))
	}
	rec.Complete(t, c, []uint64{near + 1, near + 2})
	if got := r.Do("HGET", e.key(c, "m"), "top"); got != "9007199254740984" {
		t.Errorf("stored top %q", got)
	}
}

// TestPreviousPublish: meteor_publish, with one set of limits for every
// channel, as the nodes of the version before per-channel limits call it,
// still numbers, trims by its limits and delivers (a rolling upgrade
// mixes both).
func TestPreviousPublish(t *testing.T) {
	r := testkit.StartRedis(t)
	e, rec := started(t, r, "a", engine.Limits{MaxMessages: 10})
	ctx := context.Background()
	a, b := "olda", "oldb"
	if err := e.Subscribe(ctx, a, b); err != nil {
		t.Fatal(err)
	}
	var keys []string
	args := []any{"0", "0", "3600"} // keep none: the stream is dropped
	for i := range 3 {
		for _, c := range []string{a, b} {
			keys = append(keys, e.key(c, "h"), e.key(c, "m"))
			args = append(args, e.pubsubName(c), c+strconv.Itoa(i), engine.NewEpoch())
		}
	}
	vals, err := e.rdb.FCall(ctx, "meteor_publish", keys, args...).StringSlice()
	if err != nil || len(vals) != 18 {
		t.Fatalf("meteor_publish: %v %v", vals, err)
	}
	for _, c := range []string{a, b} {
		h, err := e.History(ctx, engine.HistoryRequest{Channel: c, Query: engine.Query{Kind: engine.QueryAll}})
		if err != nil || len(h[0].Messages) != 0 || h[0].Stream.Top() == 0 {
			t.Fatalf("history of %s: %+v %v; want none kept, 3 handed out", c, h, err)
		}
		if !rec.Wait(5*time.Second, func() bool { return len(rec.IDsLocked(c)) == 3 }) {
			t.Fatalf("delivered %v of %s", rec.IDs(c), c)
		}
	}
}

package redis

import (
	"context"
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

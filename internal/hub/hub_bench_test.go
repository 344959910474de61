package hub_test

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/memory"
	"github.com/meteorpush/meteor/internal/hub"
)

// countingClient is a hub.Client that only counts what it is given, so that
// the benchmarks measure the hub and the engine, not a transport.
type countingClient struct {
	msgs atomic.Int64
}

func (c *countingClient) Deliver(msgs []*engine.Message, _ bool) bool {
	c.msgs.Add(int64(len(msgs)))
	return true
}
func (c *countingClient) Lagged() {}
func (c *countingClient) Kick()   {}

var _ hub.Client = (*countingClient)(nil)

// BenchmarkFanout publishes one message per iteration, through the memory
// engine, to a channel with n live clients. The allocations per op are the
// message's own; none may be per delivery.
func BenchmarkFanout(b *testing.B) {
	for _, n := range []int{1, 1000, 10000} {
		b.Run("clients="+strconv.Itoa(n), func(b *testing.B) {
			h := hub.New()
			eng := memory.New(memory.Options{MaxMessages: 250, MaxAge: 2 * time.Hour}, h.Handle)
			defer eng.Close()
			h.SetEngine(eng)
			ctx := context.Background()
			clients := make([]*countingClient, n)
			for i := range clients {
				clients[i] = &countingClient{}
				_, activate, err := h.Subscribe(ctx, clients[i], []hub.Sub{{Channel: "bench"}}, true)
				if err != nil {
					b.Fatal(err)
				}
				activate()
			}
			text := strings.Repeat("x", 100)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := h.Publish(ctx, "bench", text); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			var got int64
			for _, c := range clients {
				got += c.msgs.Load()
			}
			if want := int64(b.N) * int64(n); got != want {
				b.Fatalf("%d deliveries, want %d", got, want)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(got), "ns/delivery")
		})
	}
}

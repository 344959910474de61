package hub_test

import (
	"slices"
	"sync"
	"testing"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/reason"
)

// gateClient records each Deliver call's ids; its first live Deliver
// blocks until gate is closed, which holds the fan-out worker (a real
// client never blocks: this stands for a worker busy with other writes).
type gateClient struct {
	gate    chan struct{}
	entered chan struct{}

	mu    sync.Mutex
	calls [][]uint64
	once  sync.Once
}

func newGateClient() *gateClient {
	return &gateClient{gate: make(chan struct{}), entered: make(chan struct{})}
}

func (c *gateClient) Deliver(msgs []*engine.Message, live bool) bool {
	ids := make([]uint64, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	c.mu.Lock()
	c.calls = append(c.calls, ids)
	c.mu.Unlock()
	if live {
		c.once.Do(func() {
			close(c.entered)
			<-c.gate
		})
	}
	return true
}

func (c *gateClient) Close(reason.Reason) {}

func (c *gateClient) got() [][]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// TestWorkerBatches holds the only fan-out worker inside a delivery while
// more messages are published, and checks that what queued meanwhile
// reaches each client in one Deliver, in id order, each client getting
// only the messages published after it joined, none twice.
func TestWorkerBatches(t *testing.T) {
	h, _ := newHub(t, bare, engine.Limits{}, hub.Options{Workers: 1, InlineBelow: -1})
	join := func(c hub.Client) {
		t.Helper()
		subscribe(t, h, c, hub.Sub{Channel: "c"})
	}

	first := newGateClient()
	join(first)
	early := &recorder{}
	join(early)

	id1 := publish(t, h, "c", "one")
	<-first.entered // the worker is inside Deliver of id1
	id2 := publish(t, h, "c", "two")
	id3 := publish(t, h, "c", "three")
	late := &recorder{}
	join(late) // after id3 was handed to the hub: wants id4 on
	id4 := publish(t, h, "c", "four")
	id5 := publish(t, h, "c", "five")
	close(first.gate)
	h.Flush()

	if got, want := first.got(), [][]uint64{{id1}, {id2, id3, id4, id5}}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("first client's deliveries = %v, want %v (the four queued messages in one)", got, want)
	}
	if got, want := early.got(), []uint64{id1, id2, id3, id4, id5}; !slices.Equal(got, want) {
		t.Errorf("early client got %v, want %v", got, want)
	}
	if got, want := late.got(), []uint64{id4, id5}; !slices.Equal(got, want) {
		t.Errorf("late client got %v, want %v", got, want)
	}
}

// TestWorkerBatchesPerChannel interleaves two channels' messages behind a
// held worker and checks that each channel's clients get their own
// channel's messages, in order, batched.
func TestWorkerBatchesPerChannel(t *testing.T) {
	h, _ := newHub(t, bare, engine.Limits{}, hub.Options{Workers: 1, InlineBelow: -1})
	first := newGateClient()
	subscribe(t, h, first, hub.Sub{Channel: "a"})
	b := newGateClient()
	close(b.gate)
	subscribe(t, h, b, hub.Sub{Channel: "b"})
	a0 := publish(t, h, "a", "a0")
	<-first.entered
	var as, bs []uint64
	for i := range 6 {
		if i%2 == 0 {
			as = append(as, publish(t, h, "a", "a"))
		} else {
			bs = append(bs, publish(t, h, "b", "b"))
		}
	}
	close(first.gate)
	h.Flush()
	if got, want := first.got(), [][]uint64{{a0}, as}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("channel a's deliveries = %v, want %v", got, want)
	}
	if got, want := b.got(), [][]uint64{bs}; !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("channel b's deliveries = %v, want %v", got, want)
	}
}

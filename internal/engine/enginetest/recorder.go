// Package enginetest holds what every engine must pass, and engines that
// behave as a remote store does, for the tests of the code above them.
//
// Run is the conformance suite: an engine passes it or is not an engine.
// Wrap puts an engine behind what a shared store brings: delivery on
// another goroutine and late relative to history reads, calls that fail or
// hang, deliveries dropped and then reported by a reset. The suite runs on
// the memory engine bare and wrapped, and the hub's tests run on wrapped
// engines, so that "no gap, no repeat" is proven on an engine that behaves
// like Redis.
package enginetest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
)

// Recorder is an engine.Handler and engine.ControlHandler that records
// what it is given, for a test to check.
type Recorder struct {
	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every record
	msgs     map[string][]*engine.Message
	resets   map[string]int // by channel; "" for a reset of every channel
	commands []engine.Command
	overlap  map[string]bool // channels being handled now
	errs     []string        // contract breaches seen
}

var (
	_ engine.Handler        = (*Recorder)(nil)
	_ engine.ControlHandler = (*Recorder)(nil)
)

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{
		changed: make(chan struct{}),
		msgs:    make(map[string][]*engine.Message),
		resets:  make(map[string]int),
		overlap: make(map[string]bool),
	}
}

func (r *Recorder) signalLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// HandleMessages implements engine.Handler.
func (r *Recorder) HandleMessages(channel string, msgs []*engine.Message) {
	r.mu.Lock()
	if r.overlap[channel] {
		r.errs = append(r.errs, "HandleMessages calls for "+channel+" overlap")
	}
	r.overlap[channel] = true
	r.mu.Unlock()
	time.Sleep(0) // give an overlapping call its chance to show
	r.mu.Lock()
	defer r.mu.Unlock()
	r.overlap[channel] = false
	for _, m := range msgs {
		if m.Channel != channel {
			r.errs = append(r.errs, "HandleMessages("+channel+") got a message of "+m.Channel)
		}
	}
	// The handler must not keep the slice: copy it.
	r.msgs[channel] = append(r.msgs[channel], msgs...)
	r.signalLocked()
}

// HandleReset implements engine.Handler.
func (r *Recorder) HandleReset(channels []string, _ error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if channels == nil {
		r.resets[""]++
	}
	for _, c := range channels {
		r.resets[c]++
	}
	r.signalLocked()
}

// HandleControl implements engine.ControlHandler.
func (r *Recorder) HandleControl(cmd engine.Command) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.commands = append(r.commands, cmd)
	r.signalLocked()
}

// IDs returns the ids delivered for channel, in delivery order.
func (r *Recorder) IDs(channel string) []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return ids(r.msgs[channel])
}

// IDsLocked is IDs for Wait's conditions, which run with the recorder's
// lock held.
func (r *Recorder) IDsLocked(channel string) []uint64 { return ids(r.msgs[channel]) }

// Resets returns the number of resets that covered channel (a reset of
// every channel included).
func (r *Recorder) Resets(channel string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.resets[channel] + r.resets[""]
}

// Commands returns the commands received.
func (r *Recorder) Commands() []engine.Command {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.commands)
}

// Wait waits until cond, checked under the recorder's lock after each
// record, holds or d passes, and reports whether it held.
func (r *Recorder) Wait(d time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		ok := cond()
		ch := r.changed
		r.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			r.mu.Lock()
			defer r.mu.Unlock()
			return cond()
		}
	}
}

// waitDelivered waits until n messages of channel were delivered, or a
// reset covered the channel (the rest may be missing then).
func (r *Recorder) waitDelivered(channel string, n int) {
	r.Wait(wait, func() bool { return len(r.msgs[channel]) >= n || r.resets[channel]+r.resets[""] > 0 })
}

// Check fails t if the engine broke the Handler contract: overlapping
// calls for one channel, a message handed with another channel's name.
func (r *Recorder) Check(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		t.Error(e)
	}
}

// Complete fails t unless the messages delivered for channel are want, in
// order, each once; where a reset of the channel was signalled, messages
// may be missing, but the ones delivered must still be in order and once.
func (r *Recorder) Complete(t testing.TB, channel string, want []uint64) {
	t.Helper()
	got := r.IDs(channel)
	if r.Resets(channel) == 0 {
		if !slices.Equal(got, want) {
			t.Errorf("channel %s: delivered %v, want %v", channel, got, want)
		}
		return
	}
	// A subsequence of want.
	i := 0
	for _, id := range got {
		for i < len(want) && want[i] != id {
			i++
		}
		if i == len(want) {
			t.Errorf("channel %s: delivered %v is not in order, once each, within %v", channel, got, want)
			return
		}
		i++
	}
}

func ids(msgs []*engine.Message) []uint64 {
	out := make([]uint64, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

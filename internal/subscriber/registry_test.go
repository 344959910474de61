package subscriber

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/reason"
)

// counter is a connection that counts its ticks and may run a function
// in its tick.
type counter struct {
	registered
	ticks  int
	onTick func()
}

func (c *counter) tick(time.Time) {
	c.ticks++
	if c.onTick != nil {
		c.onTick()
	}
}
func (c *counter) shutdown(reason.Reason) {}
func (c *counter) abort()                 {}
func (c *counter) remote() string         { return "" }

// checkRegistry fails unless every connection in s.conns knows its place.
func checkRegistry(t *testing.T, s *Server) {
	t.Helper()
	for i, c := range s.conns {
		if got := c.reg().slot; got != int32(i+1) {
			t.Fatalf("conns[%d] has slot %d", i, got)
		}
	}
}

// TestRegistry: connections leave from anywhere in s.conns; the last one
// takes the place, every slot stays right, and a second removal is a no-op.
func TestRegistry(t *testing.T) {
	s := &Server{}
	cs := make([]*counter, 5000)
	for i := range cs {
		cs[i] = &counter{}
		s.addLocked(cs[i])
	}
	checkRegistry(t, s)
	rnd := rand.New(rand.NewPCG(1, 2))
	left := map[*counter]bool{}
	for _, i := range rnd.Perm(len(cs))[:4900] {
		if !s.removeLocked(cs[i]) {
			t.Fatalf("removing %d: not registered", i)
		}
		left[cs[i]] = true
		if s.removeLocked(cs[i]) {
			t.Fatalf("removing %d twice succeeded", i)
		}
	}
	checkRegistry(t, s)
	if len(s.conns) != 100 {
		t.Fatalf("%d registered, want 100", len(s.conns))
	}
	for _, c := range cs {
		if left[c] != (c.slot == 0) {
			t.Fatalf("slot %d for a connection that left: %v", c.slot, left[c])
		}
	}
	if cap(s.conns) > 1024 {
		t.Errorf("capacity %d kept for %d connections", cap(s.conns), len(s.conns))
	}
}

// TestTickAllLeaving: connections that leave during a tick (their own or
// another's, ahead or behind in the walk) never make the ticker skip one
// that stays (one that a removal moved back ahead of the walk is ticked
// again, which its tick allows).
func TestTickAllLeaving(t *testing.T) {
	s := &Server{}
	cs := make([]*counter, 3000)
	for i := range cs {
		cs[i] = &counter{}
		s.addLocked(cs[i])
	}
	rnd := rand.New(rand.NewPCG(3, 4))
	gone := map[*counter]bool{}
	for _, c := range cs {
		if rnd.IntN(10) != 0 {
			continue
		}
		victim := cs[rnd.IntN(len(cs))]
		c.onTick = func() {
			s.mu.Lock()
			if s.removeLocked(victim) {
				gone[victim] = true
			}
			s.mu.Unlock()
		}
	}
	s.tickAll(time.Now(), make([]conn, 7))
	checkRegistry(t, s)
	for i, c := range cs {
		if !gone[c] && c.ticks < 1 {
			t.Errorf("connection %d stayed and was ticked %d times", i, c.ticks)
		}
	}
}

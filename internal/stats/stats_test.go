package stats

import (
	"reflect"
	"testing"
)

// TestSnapshot checks that only counted counters are reported, in
// SHOWSTATS order, with their values, and that a counter back at zero is
// still reported.
func TestSnapshot(t *testing.T) {
	s := New()
	if got := s.Snapshot(); len(got) != 0 {
		t.Fatalf("fresh Snapshot = %v, want none", got)
	}
	s.Add(TotalOutboundBytes, 10)
	s.Inc(CurrentSubscribers)
	s.Dec(CurrentSubscribers)
	s.Inc(TotalRequests)
	want := []Entry{{"total_requests", 1}, {"current_subscribers", 0}, {"total_outbound_bytes", 10}}
	if got := s.Snapshot(); !reflect.DeepEqual(got, want) {
		t.Errorf("Snapshot = %v, want %v", got, want)
	}
	if s.Get(TotalOutboundBytes) != 10 {
		t.Errorf("Get = %d, want 10", s.Get(TotalOutboundBytes))
	}
}

func TestCounterNames(t *testing.T) {
	seen := map[string]bool{}
	for c := Counter(0); c < numCounters; c++ {
		n := c.String()
		if n == "" || n == "unknown" || seen[n] {
			t.Errorf("counter %d has name %q", c, n)
		}
		seen[n] = true
	}
	if Counter(-1).String() != "unknown" || numCounters.String() != "unknown" {
		t.Error("out-of-range counters should be unknown")
	}
}

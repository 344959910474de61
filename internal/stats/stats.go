// Package stats keeps the server-wide counters that the controller's
// SHOWSTATS command reports, in the order Meteor 1.06 clients expect.
package stats

import (
	"sync/atomic"
	"time"
)

// Counter names a SHOWSTATS counter.
type Counter int

// The counters of SHOWSTATS, in the order in which they are reported.
const (
	TotalRequests Counter = iota
	CurrentControllers
	ControllerConnectionsAccepted
	CurrentSubscribers
	SubscriberConnectionsAccepted
	UniqueMessages
	MessagesServed
	TotalInboundBytes
	TotalOutboundBytes
	DocumentsServed
	DocumentsNotFound
	ErrorsServed
	numCounters
)

var names = [numCounters]string{
	"total_requests",
	"current_controllers",
	"controller_connections_accepted",
	"current_subscribers",
	"subscriber_connections_accepted",
	"unique_messages",
	"messages_served",
	"total_inbound_bytes",
	"total_outbound_bytes",
	"documents_served",
	"documents_not_found",
	"errors_served",
}

// String returns the counter's SHOWSTATS key.
func (c Counter) String() string {
	if c < 0 || c >= numCounters {
		return "unknown"
	}
	return names[c]
}

// Stats holds the counters. The zero value is not ready; use New.
// All methods are safe for concurrent use.
type Stats struct {
	start   time.Time
	values  [numCounters]atomic.Int64
	touched [numCounters]atomic.Bool
}

// New returns counters whose uptime starts now.
func New() *Stats { return &Stats{start: time.Now()} }

// Add adds n (which may be negative) to counter c and marks it as counted.
func (s *Stats) Add(c Counter, n int64) {
	s.values[c].Add(n)
	if !s.touched[c].Load() {
		s.touched[c].Store(true)
	}
}

// Inc adds one to counter c.
func (s *Stats) Inc(c Counter) { s.Add(c, 1) }

// Dec subtracts one from counter c.
func (s *Stats) Dec(c Counter) { s.Add(c, -1) }

// Get returns the value of counter c.
func (s *Stats) Get(c Counter) int64 { return s.values[c].Load() }

// Uptime returns the whole seconds since New.
func (s *Stats) Uptime() int64 { return int64(time.Since(s.start) / time.Second) }

// Entry is one key and value of a statistics report.
type Entry struct {
	Key   string
	Value int64
}

// Snapshot returns the counters that have been counted at least once, in
// SHOWSTATS order.
func (s *Stats) Snapshot() []Entry {
	out := make([]Entry, 0, numCounters)
	for c := Counter(0); c < numCounters; c++ {
		if s.touched[c].Load() {
			out = append(out, Entry{Key: c.String(), Value: s.values[c].Load()})
		}
	}
	return out
}

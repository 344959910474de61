package hub

// SetBounds sets the fan-out's queue bounds and the pending bound for a
// test, and returns what restores them.
func SetBounds(soft, hard, pending int) (restore func()) {
	s, h, p := softQueuedDeliveries, hardQueuedDeliveries, maxPending
	softQueuedDeliveries, hardQueuedDeliveries, maxPending = soft, hard, pending
	return func() { softQueuedDeliveries, hardQueuedDeliveries, maxPending = s, h, p }
}

package memory

import (
	"context"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
)

var _ engine.SubscriberLister = (*Engine)(nil)

// ReportSubscribers implements engine.SubscriberLister for one node: no
// other node reads this node's entries, so it keeps none.
func (e *Engine) ReportSubscribers(context.Context, []engine.SubscriberChange, bool, time.Duration) error {
	return e.Ready(context.Background())
}

// ListSubscribers implements engine.SubscriberLister for one node: there
// are no other nodes, so there is nothing to list.
func (e *Engine) ListSubscribers(context.Context, string, string, int) ([]engine.Subscriber, string, error) {
	if err := e.Ready(context.Background()); err != nil {
		return nil, "", err
	}
	return nil, "", nil
}

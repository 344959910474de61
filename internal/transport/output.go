package transport

import (
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/metrics"
	"github.com/meteorpush/meteor/internal/outq"
	"github.com/meteorpush/meteor/internal/stats"
)

// Output is a subscriber connection's output queue together with the
// counting that every transport does on it: the SHOWSTATS counters and the
// transport's metrics. Stats and Metrics may be nil.
type Output struct {
	Out     *outq.Conn
	Stats   *stats.Stats
	Metrics *metrics.Transport
}

// Write writes b, which holds no message (a header, a ping, a reply), and
// counts its bytes. It reports whether the connection still takes writes.
func (o *Output) Write(b []byte) bool {
	if !o.Out.Write(b) {
		return false
	}
	if o.Stats != nil {
		o.Stats.Add(stats.TotalOutboundBytes, int64(len(b)))
	}
	o.Metrics.Sent(len(b))
	return true
}

// WriteMessages writes b, the rendering of msgs, and counts the messages,
// the bytes and, when they are live, the delivery latency. It reports
// whether the connection still takes writes.
func (o *Output) WriteMessages(b []byte, msgs []*engine.Message, live bool) bool {
	if !o.Out.Write(b) {
		return false
	}
	if o.Stats != nil {
		o.Stats.Add(stats.MessagesServed, int64(len(msgs)))
		o.Stats.Add(stats.TotalOutboundBytes, int64(len(b)))
	}
	var published time.Time
	if live && len(msgs) > 0 {
		published = msgs[0].Time
	}
	o.Metrics.Delivered(len(msgs), len(b), published)
	return true
}

// CloseAfter writes final (which holds no message and may be empty), counts
// its bytes, and closes the connection with reason r once everything queued
// is written.
func (o *Output) CloseAfter(final []byte, r outq.Reason) {
	if len(final) > 0 {
		if o.Stats != nil {
			o.Stats.Add(stats.TotalOutboundBytes, int64(len(final)))
		}
		o.Metrics.Sent(len(final))
	}
	o.Out.CloseAfter(final, r)
}

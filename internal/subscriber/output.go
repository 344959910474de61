package subscriber

import (
	"sync"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/metrics"
	"github.com/meteorpush/meteor/internal/outq"
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/stats"
)

// output is a subscriber connection's output queue together with the
// counting that every transport does on it: the SHOWSTATS counters and the
// transport's metrics. Stats and Metrics may be nil.
type output struct {
	Out     *outq.Conn
	Stats   *stats.Stats
	Metrics *metrics.Transport
}

// Write writes b, which holds no message (a header, a ping, a reply), and
// counts its bytes. It reports whether the connection still takes writes.
func (o *output) Write(b []byte) bool {
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
// the bytes and, when they are live, each one's delivery latency. b must
// not change afterwards (it is usually a message's shared encoding). It
// reports whether the connection still takes writes.
func (o *output) WriteMessages(b []byte, msgs []*engine.Message, live bool) bool {
	if !o.Out.Write(b) {
		return false
	}
	o.count(len(b), msgs, live)
	return true
}

// WriteMessagesCopy is WriteMessages for a b that the caller reuses once
// it returns (a buffer from GetBuffer).
func (o *output) WriteMessagesCopy(b []byte, msgs []*engine.Message, live bool) bool {
	if !o.Out.WriteCopy(b) {
		return false
	}
	o.count(len(b), msgs, live)
	return true
}

// WriteEach writes msgs rendered by enc: a single message's shared
// encoding as it is, several as one write (one system call) through a
// pooled buffer, so that a batch costs neither an allocation nor more than
// one write.
func (o *output) WriteEach(msgs []*engine.Message, enc engine.Encoder, live bool) bool {
	if len(msgs) == 1 {
		return o.WriteMessages(msgs[0].Encoded(enc), msgs, live)
	}
	p := getBuffer()
	b := *p
	for _, m := range msgs {
		b = append(b, m.Encoded(enc)...)
	}
	ok := o.WriteMessagesCopy(b, msgs, live)
	*p = b
	putBuffer(p)
	return ok
}

func (o *output) count(size int, msgs []*engine.Message, live bool) {
	if o.Stats != nil {
		o.Stats.Add(stats.MessagesServed, int64(len(msgs)))
		o.Stats.Add(stats.TotalOutboundBytes, int64(size))
	}
	var published time.Time
	if live && len(msgs) > 0 {
		published = msgs[0].Time
	}
	o.Metrics.Delivered(len(msgs), size, published)
	if live {
		for _, m := range msgs[1:] {
			o.Metrics.Latency(m.Time)
		}
	}
}

// maxPooledBuffer is the largest buffer PutBuffer keeps: a large history
// delivered once should not pin its memory in the pool.
const maxPooledBuffer = 64 << 10

var buffers = sync.Pool{New: func() any {
	b := make([]byte, 0, 4096)
	return &b
}}

// getBuffer returns an empty buffer from a pool, for rendering one
// delivery; putBuffer gives it back once written with WriteMessagesCopy.
func getBuffer() *[]byte { return buffers.Get().(*[]byte) }

// putBuffer returns p, obtained from getBuffer, to the pool.
func putBuffer(p *[]byte) {
	if cap(*p) > maxPooledBuffer {
		return
	}
	*p = (*p)[:0]
	buffers.Put(p)
}

// CloseAfter writes final (which holds no message and may be empty), counts
// its bytes, and closes the connection with reason r once everything queued
// is written.
func (o *output) CloseAfter(final []byte, r reason.Reason) {
	if len(final) > 0 {
		if o.Stats != nil {
			o.Stats.Add(stats.TotalOutboundBytes, int64(len(final)))
		}
		o.Metrics.Sent(len(final))
	}
	o.Out.CloseAfter(final, r)
}

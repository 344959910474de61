package enginetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
)

// Op names an engine call, for the faults of a Wrapper.
type Op uint8

// The calls a Wrapper can make fail or hang.
const (
	OpPublish Op = iota
	OpHistory
	OpSubscribe
	OpUnsubscribe
	OpClear
	OpReady
	OpBroadcast
	numOps
)

// WrapOptions say how a Wrapper delivers.
type WrapOptions struct {
	// Async delivers on a goroutine of the Wrapper's own, after the call
	// that published returned, as a store's subscription connection does:
	// a message can reach the handler after a History call that already
	// returned it, and late relative to everything else.
	Async bool
	// MaxDelay, with Async, waits up to that long, at random, before each
	// delivery.
	MaxDelay time.Duration
	// DropEvery, when positive, drops one delivery in every DropEvery and
	// reports a reset of its channel, as Drop does.
	DropEvery int
}

// Wrapper is an engine behind the faults of a remote store. Its methods
// pass to the engine it wraps unless a fault set by Fail, Hang or Drop
// applies. It implements the optional abilities by passing them on (an
// error when the wrapped engine has not got one).
type Wrapper struct {
	inner engine.Engine
	opts  WrapOptions

	h    engine.Handler
	ctl  engine.ControlHandler
	wake chan struct{}
	done chan struct{}

	mu      sync.Mutex
	fail    [numOps]error         // guarded by mu
	hang    [numOps]bool          // guarded by mu
	gate    [numOps]chan struct{} // guarded by mu; calls wait for it to close, then go on
	drop    int                   // guarded by mu; messages still to drop
	seen    int                   // guarded by mu; deliveries from the wrapped engine
	queue   []delivery            // guarded by mu; Async: waiting to be delivered
	calls   [numOps]int           // guarded by mu; calls made, faulty or not
	started bool                  // guarded by mu
	closed  bool                  // guarded by mu
	hangs   map[chan struct{}]int // guarded by mu; calls hanging, released by Close
}

// delivery is one call of the handler, queued.
type delivery struct {
	channel string
	msgs    []*engine.Message // nil: a reset
	resets  []string
	cause   error
}

var (
	_ engine.Engine        = (*Wrapper)(nil)
	_ engine.ChannelLister = (*Wrapper)(nil)
	_ engine.HealthChecker = (*Wrapper)(nil)
	_ engine.Control       = (*Wrapper)(nil)
	_ engine.Presence      = (*Wrapper)(nil)
	_ engine.LimitSetter   = (*Wrapper)(nil)
)

// Wrap returns inner behind a Wrapper. The Wrapper starts and closes
// inner.
func Wrap(inner engine.Engine, opts WrapOptions) *Wrapper {
	return &Wrapper{inner: inner, opts: opts, wake: make(chan struct{}, 1), done: make(chan struct{}), hangs: make(map[chan struct{}]int)}
}

// Fail makes the calls of op return err (nil: succeed again) without
// reaching the wrapped engine. An err that should read as a store outage
// wraps engine.ErrUnavailable; Unavailable makes one.
func (w *Wrapper) Fail(op Op, err error) {
	w.mu.Lock()
	w.fail[op] = err
	w.mu.Unlock()
}

// Unavailable returns an error that wraps engine.ErrUnavailable.
func Unavailable(why string) error { return fmt.Errorf("%w: %s", engine.ErrUnavailable, why) }

// Hang makes the calls of op wait until their context ends (on: true), as
// a store that stopped answering does, then fail with an error wrapping
// engine.ErrUnavailable and the context's error.
func (w *Wrapper) Hang(op Op, on bool) {
	w.mu.Lock()
	w.hang[op] = on
	w.mu.Unlock()
}

// Gate makes the calls of op wait, then go on to the wrapped engine, once
// release is called (or their context ends, when they fail as Hang's do):
// a store that answers late. Calls made after release pass at once.
func (w *Wrapper) Gate(op Op) (release func()) {
	ch := make(chan struct{})
	w.mu.Lock()
	w.gate[op] = ch
	w.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			w.mu.Lock()
			if w.gate[op] == ch {
				w.gate[op] = nil
			}
			w.mu.Unlock()
			close(ch)
		})
	}
}

// Drop drops the next n messages that the wrapped engine delivers, and
// then reports a reset of their channels, as a store's subscription that
// broke and came back does.
func (w *Wrapper) Drop(n int) {
	w.mu.Lock()
	w.drop += n
	w.mu.Unlock()
}

// Reset reports a reset of channels (none: every channel) to the handler,
// in order with the deliveries.
func (w *Wrapper) Reset(channels ...string) {
	if len(channels) == 0 {
		channels = nil
	}
	w.deliver(delivery{resets: channels, cause: fmt.Errorf("enginetest: reset")})
}

// Calls returns how many calls of op were made.
func (w *Wrapper) Calls(op Op) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.calls[op]
}

// enter applies op's faults. It returns the error to fail with, or nil to
// go on to the wrapped engine.
func (w *Wrapper) enter(ctx context.Context, op Op) error {
	w.mu.Lock()
	w.calls[op]++
	err, hang, gate := w.fail[op], w.hang[op], w.gate[op]
	var release chan struct{}
	if hang && err == nil {
		release = make(chan struct{})
		w.hangs[release]++
	}
	w.mu.Unlock()
	if err != nil {
		return err
	}
	if gate != nil && release == nil {
		select {
		case <-gate:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", engine.ErrUnavailable, ctx.Err())
		}
	}
	if release == nil {
		return nil
	}
	defer func() {
		w.mu.Lock()
		delete(w.hangs, release)
		w.mu.Unlock()
	}()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: %w", engine.ErrUnavailable, ctx.Err())
	case <-release:
		return engine.ErrClosed
	}
}

// Start implements engine.Engine.
func (w *Wrapper) Start(ctx context.Context, h engine.Handler) error {
	w.mu.Lock()
	w.h = h
	w.ctl, _ = h.(engine.ControlHandler)
	w.started = true
	w.mu.Unlock()
	if w.opts.Async {
		go w.loop()
	} else {
		close(w.done)
	}
	return w.inner.Start(ctx, (*wrapHandler)(w))
}

// wrapHandler is the handler the Wrapper gives the engine it wraps.
type wrapHandler Wrapper

func (wh *wrapHandler) HandleMessages(channel string, msgs []*engine.Message) {
	w := (*Wrapper)(wh)
	w.mu.Lock()
	w.seen++
	if w.opts.DropEvery > 0 && w.seen%w.opts.DropEvery == 0 {
		w.drop++
	}
	if w.drop > 0 {
		n := min(w.drop, len(msgs))
		w.drop -= n
		w.mu.Unlock()
		if n < len(msgs) {
			w.deliver(delivery{channel: channel, msgs: append([]*engine.Message(nil), msgs[n:]...)})
		}
		w.deliver(delivery{resets: []string{channel}, cause: fmt.Errorf("enginetest: %d messages dropped", n)})
		return
	}
	w.mu.Unlock()
	// The handler must not keep msgs: a queued delivery holds a copy.
	w.deliver(delivery{channel: channel, msgs: append([]*engine.Message(nil), msgs...)})
}

func (wh *wrapHandler) HandleReset(channels []string, cause error) {
	(*Wrapper)(wh).deliver(delivery{resets: channels, cause: cause})
}

func (wh *wrapHandler) HandleControl(cmd engine.Command) {
	if wh.ctl != nil {
		wh.ctl.HandleControl(cmd)
	}
}

// deliver hands d to the handler now, or queues it for the loop.
func (w *Wrapper) deliver(d delivery) {
	if !w.opts.Async {
		w.call(d)
		return
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.queue = append(w.queue, d)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *Wrapper) call(d delivery) {
	if d.msgs != nil {
		w.h.HandleMessages(d.channel, d.msgs)
	} else {
		w.h.HandleReset(d.resets, d.cause)
	}
}

// loop delivers what is queued, in order, each after a random delay.
func (w *Wrapper) loop() {
	defer close(w.done)
	for {
		w.mu.Lock()
		if len(w.queue) == 0 {
			closed := w.closed
			w.mu.Unlock()
			if closed {
				return
			}
			<-w.wake
			continue
		}
		d := w.queue[0]
		w.queue[0] = delivery{}
		w.queue = w.queue[1:]
		w.mu.Unlock()
		if w.opts.MaxDelay > 0 {
			time.Sleep(rand.N(w.opts.MaxDelay))
		}
		w.call(d)
	}
}

// Publish implements engine.Engine.
func (w *Wrapper) Publish(ctx context.Context, pubs ...engine.Publication) ([]*engine.Message, error) {
	if err := w.enter(ctx, OpPublish); err != nil {
		return nil, err
	}
	return w.inner.Publish(ctx, pubs...)
}

// History implements engine.Engine.
func (w *Wrapper) History(ctx context.Context, reqs ...engine.HistoryRequest) ([]engine.History, error) {
	if err := w.enter(ctx, OpHistory); err != nil {
		return nil, err
	}
	return w.inner.History(ctx, reqs...)
}

// Subscribe implements engine.Engine.
func (w *Wrapper) Subscribe(ctx context.Context, channels ...string) error {
	if err := w.enter(ctx, OpSubscribe); err != nil {
		return err
	}
	return w.inner.Subscribe(ctx, channels...)
}

// Unsubscribe implements engine.Engine.
func (w *Wrapper) Unsubscribe(ctx context.Context, channels ...string) error {
	if err := w.enter(ctx, OpUnsubscribe); err != nil {
		return err
	}
	return w.inner.Unsubscribe(ctx, channels...)
}

// Clear implements engine.Engine.
func (w *Wrapper) Clear(ctx context.Context, channel string) error {
	if err := w.enter(ctx, OpClear); err != nil {
		return err
	}
	return w.inner.Clear(ctx, channel)
}

// Close implements engine.Engine: it closes the wrapped engine, releases
// hanging calls, delivers what is queued and stops the delivery goroutine.
func (w *Wrapper) Close(ctx context.Context) error {
	err := w.inner.Close(ctx)
	w.mu.Lock()
	already := w.closed
	w.closed = true
	for ch := range w.hangs {
		close(ch)
	}
	clear(w.hangs)
	started := w.started
	w.mu.Unlock()
	if already || !started {
		return err
	}
	select {
	case w.wake <- struct{}{}:
	default:
	}
	select {
	case <-w.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return err
}

// Channels implements engine.ChannelLister.
func (w *Wrapper) Channels(ctx context.Context) ([]engine.ChannelInfo, error) {
	l, ok := w.inner.(engine.ChannelLister)
	if !ok {
		return nil, fmt.Errorf("enginetest: %T cannot list channels", w.inner)
	}
	return l.Channels(ctx)
}

// Ready implements engine.HealthChecker.
func (w *Wrapper) Ready(ctx context.Context) error {
	if err := w.enter(ctx, OpReady); err != nil {
		return err
	}
	if hc, ok := w.inner.(engine.HealthChecker); ok {
		return hc.Ready(ctx)
	}
	return nil
}

// Broadcast implements engine.Control.
func (w *Wrapper) Broadcast(ctx context.Context, cmd engine.Command) error {
	if err := w.enter(ctx, OpBroadcast); err != nil {
		return err
	}
	c, ok := w.inner.(engine.Control)
	if !ok {
		return fmt.Errorf("enginetest: %T has no control channel", w.inner)
	}
	return c.Broadcast(ctx, cmd)
}

// ReportCounts implements engine.Presence.
func (w *Wrapper) ReportCounts(ctx context.Context, counts map[string]int, ttl time.Duration) error {
	p, ok := w.inner.(engine.Presence)
	if !ok {
		return fmt.Errorf("enginetest: %T counts no presence", w.inner)
	}
	return p.ReportCounts(ctx, counts, ttl)
}

// OtherCounts implements engine.Presence.
func (w *Wrapper) OtherCounts(ctx context.Context, channels ...string) ([]int, error) {
	p, ok := w.inner.(engine.Presence)
	if !ok {
		return nil, fmt.Errorf("enginetest: %T counts no presence", w.inner)
	}
	return p.OtherCounts(ctx, channels...)
}

// SetLimits implements engine.LimitSetter.
func (w *Wrapper) SetLimits(l engine.Limits) {
	if ls, ok := w.inner.(engine.LimitSetter); ok {
		ls.SetLimits(l)
	}
}

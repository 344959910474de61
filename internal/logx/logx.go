// Package logx holds the logging rule that every listener follows: a
// message that clients can cause (bad input, a store that fails under
// load) is logged at most once a second per Limiter, with the number of
// those it kept back, so that a flood does not flood the log.
package logx

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// Every is the shortest interval between two messages of a Limiter.
const Every = time.Second

// Limiter logs at most one message per Every and counts the rest. Its zero
// value is ready; it is safe for concurrent use.
type Limiter struct {
	last       atomic.Int64 // UnixNano of the last message logged
	suppressed atomic.Int64
}

// Log logs msg at level on log, unless a message went through l less than
// Every ago; the first message after a pause carries "suppressed", the
// number kept back.
func (l *Limiter) Log(log *slog.Logger, level slog.Level, msg string, args ...any) {
	if log == nil || !log.Enabled(context.Background(), level) {
		return
	}
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(Every) || !l.last.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return
	}
	if n := l.suppressed.Swap(0); n > 0 {
		args = append(args, "suppressed", n)
	}
	log.Log(context.Background(), level, msg, args...)
}

// Warn is Log at slog.LevelWarn.
func (l *Limiter) Warn(log *slog.Logger, msg string, args ...any) {
	l.Log(log, slog.LevelWarn, msg, args...)
}

// Error is Log at slog.LevelError.
func (l *Limiter) Error(log *slog.Logger, msg string, args ...any) {
	l.Log(log, slog.LevelError, msg, args...)
}

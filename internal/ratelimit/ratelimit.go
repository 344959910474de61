// Package ratelimit holds token buckets by name: one bucket per publisher
// credential for PublishRatePerCredential, shared by the HTTP API and the
// controller so that the rule is kept in one place.
package ratelimit

import (
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// pruneEvery is how often Allow forgets the buckets that are full again.
const pruneEvery = 10 * time.Second

// Buckets is a token bucket per name, all of one rate and size. A bucket
// that is full again is forgotten (a new one would be the same), so names
// that stop coming cost nothing. A nil *Buckets, or one with rate 0,
// allows everything. It is safe for concurrent use.
type Buckets struct {
	mu        sync.Mutex
	rate      float64                  // per second, guarded by mu; 0: no limit
	burst     int                      // guarded by mu
	buckets   map[string]*rate.Limiter // guarded by mu
	lastPrune time.Time                // guarded by mu
}

// New returns Buckets of perSecond tokens a second, burst tokens each (0:
// twice perSecond, at least 1). perSecond 0 is no limit.
func New(perSecond float64, burst int) *Buckets {
	b := &Buckets{}
	b.SetLimit(perSecond, burst)
	return b
}

// SetLimit changes the rate and size of every bucket (a reload). When they
// change, the buckets start again full.
func (b *Buckets) SetLimit(perSecond float64, burst int) {
	if perSecond < 0 {
		perSecond = 0
	}
	if burst <= 0 {
		burst = max(1, int(math.Min(2*perSecond, math.MaxInt32)))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if perSecond == b.rate && burst == b.burst {
		return
	}
	b.rate, b.burst = perSecond, burst
	b.buckets = nil
}

// Limit returns the rate (0: no limit) and the size of the buckets.
func (b *Buckets) Limit() (perSecond float64, burst int) {
	if b == nil {
		return 0, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rate, b.burst
}

// Allow takes n tokens from name's bucket at now and reports whether it
// had them. When it had not, it takes none and returns how long until it
// will have them (0 when n is more than a bucket holds: never).
func (b *Buckets) Allow(name string, n int, now time.Time) (ok bool, retry time.Duration) {
	if b == nil || n <= 0 {
		return true, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rate == 0 {
		return true, 0
	}
	if now.Sub(b.lastPrune) >= pruneEvery {
		b.pruneLocked(now)
	}
	lim := b.buckets[name]
	if lim == nil {
		if b.buckets == nil {
			b.buckets = make(map[string]*rate.Limiter)
		}
		lim = rate.NewLimiter(rate.Limit(b.rate), b.burst)
		b.buckets[name] = lim
	}
	if lim.AllowN(now, n) {
		return true, 0
	}
	if n > b.burst {
		return false, 0
	}
	missing := float64(n) - lim.TokensAt(now)
	return false, time.Duration(math.Ceil(missing / b.rate * float64(time.Second)))
}

// pruneLocked forgets the buckets that are full at now. The caller holds
// mu.
func (b *Buckets) pruneLocked(now time.Time) {
	b.lastPrune = now
	for name, lim := range b.buckets {
		if lim.TokensAt(now) >= float64(b.burst) {
			delete(b.buckets, name)
		}
	}
}

// Len returns the number of buckets held: those not full when last
// pruned, and those made since.
func (b *Buckets) Len() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.buckets)
}

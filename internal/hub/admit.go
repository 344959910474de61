package hub

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/meteorpush/meteor/internal/engine"
)

// Policy is what one channel admits from publishers and how its messages
// reach this node's subscribers. A zero field is no limit.
type Policy struct {
	// MaxMessageBytes is the largest message text Publish accepts, in
	// bytes; a larger one is refused with ReasonTooLarge.
	MaxMessageBytes int
	// PublishRate is the messages a second the channel accepts, on
	// average, from every publisher of this node together, in a token
	// bucket of PublishBurst (0: twice the rate, at least 1); past it a
	// publication is refused with ReasonRate.
	PublishRate, PublishBurst int
	// ConflateInterval, when positive, makes this node's subscribers of
	// the channel receive at most one message per interval, always the
	// newest (conflate.go).
	ConflateInterval time.Duration
}

// burst returns the size of p's token bucket.
func (p Policy) burst() int {
	if p.PublishBurst > 0 {
		return p.PublishBurst
	}
	return max(1, 2*p.PublishRate)
}

// The reasons of a RefusedError, also the "reason" label of
// meteor_publish_refused_total.
const (
	ReasonTooLarge = "too large"
	ReasonRate     = "rate"
)

// ErrRefused is wrapped by every RefusedError: a publication the channel's
// Policy does not admit. Nothing was stored for it.
var ErrRefused = errors.New("publish refused")

// RefusedError is a publication refused by its channel's Policy.
type RefusedError struct {
	// Index is the publication's index in the call that was refused.
	Index   int
	Channel string
	// Reason is ReasonTooLarge or ReasonRate.
	Reason string
	// Size and Limit are the text's length and MaxMessageBytes, for
	// ReasonTooLarge.
	Size, Limit int
	// RetryAfter is how long until the channel's bucket admits a message
	// again, for ReasonRate.
	RetryAfter time.Duration
}

// Error gives the reason in words a publisher can act on.
func (e *RefusedError) Error() string {
	if e.Reason == ReasonTooLarge {
		return fmt.Sprintf("message is %d bytes, the limit is %d", e.Size, e.Limit)
	}
	return fmt.Sprintf("publish rate of channel %s exceeded, retry in %s", e.Channel, e.RetryAfter.Round(time.Millisecond))
}

// Unwrap returns ErrRefused.
func (e *RefusedError) Unwrap() error { return ErrRefused }

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up, at least
// 1: the value of an HTTP Retry-After header.
func (e *RefusedError) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

// policySet is one function given to SetPolicy; channels cache what it
// returned for them together with the set, so that a new SetPolicy is
// seen at the next look-up.
type policySet struct {
	f func(channel string) Policy
}

// cachedPolicy is a channel's Policy under one policySet.
type cachedPolicy struct {
	set *policySet
	p   Policy
}

// SetPolicy sets the function that gives each channel's Policy; nil
// admits everything and conflates nothing. It is safe to call while the
// hub runs (a configuration reload): the next publication and the next
// delivery of each channel follow the new policy. f must be fast and must
// not call back into the hub: it runs on the publish and delivery paths.
func (h *Hub) SetPolicy(f func(channel string) Policy) {
	if f == nil {
		h.policy.Store(nil)
		return
	}
	h.policy.Store(&policySet{f: f})
}

// Policy returns the policy in force for channel.
func (h *Hub) Policy(channel string) Policy {
	if set := h.policy.Load(); set != nil {
		return set.f(channel)
	}
	return Policy{}
}

// channelPolicy returns ch's policy, from its cache while SetPolicy was
// not called again.
func (h *Hub) channelPolicy(ch *channel) Policy {
	set := h.policy.Load()
	if set == nil {
		return Policy{}
	}
	if c := ch.policy.Load(); c != nil && c.set == set {
		return c.p
	}
	c := &cachedPolicy{set: set, p: set.f(ch.name)}
	ch.policy.Store(c)
	return c.p
}

// CheckSize refuses, with a *RefusedError for the first of them, pubs of
// which one is larger than its channel's MaxMessageBytes; each refused
// one is counted. It is the check Publish makes, for a caller that wants
// a batch refused whole rather than published up to the first refusal.
func (h *Hub) CheckSize(pubs ...engine.Publication) error {
	set := h.policy.Load()
	if set == nil {
		return nil
	}
	var first error
	n := 0
	for i, p := range pubs {
		if err := checkSize(i, p, set.f(p.Channel)); err != nil {
			n++
			if first == nil {
				first = err
			}
		}
	}
	if n > 0 {
		h.opts.Metrics.PublishRefused(ReasonTooLarge, n)
	}
	return first
}

// checkSize is the MaxMessageBytes rule.
func checkSize(i int, p engine.Publication, pol Policy) error {
	if pol.MaxMessageBytes > 0 && len(p.Text) > pol.MaxMessageBytes {
		return &RefusedError{Index: i, Channel: p.Channel, Reason: ReasonTooLarge, Size: len(p.Text), Limit: pol.MaxMessageBytes}
	}
	return nil
}

// admit returns how many of pubs, from the first, their channels' policies
// admit, taking a token of each one's bucket, and the *RefusedError of the
// next one (counted), if any.
//
// taken holds, for each admitted publication whose channel has a publish
// rate, the token it took (nil for the others), so that Publish can give
// the tokens of what it then failed to publish back (giveBack).
func (h *Hub) admit(pubs []engine.Publication, now time.Time) (n int, taken []*rate.Reservation, err error) {
	set := h.policy.Load()
	if set == nil {
		return len(pubs), nil, nil
	}
	for i, p := range pubs {
		pol := set.f(p.Channel)
		err := checkSize(i, p, pol)
		if err == nil && pol.PublishRate > 0 {
			d, r := h.buckets.take(p.Channel, pol, now)
			if d > 0 {
				err = &RefusedError{Index: i, Channel: p.Channel, Reason: ReasonRate, RetryAfter: d}
			} else {
				if taken == nil {
					taken = make([]*rate.Reservation, len(pubs))
				}
				taken[i] = r
			}
		}
		if err != nil {
			h.opts.Metrics.PublishRefused(err.(*RefusedError).Reason, 1)
			return i, taken, err
		}
	}
	return len(pubs), taken, nil
}

// giveBack returns the tokens that the publications taken[from:] took at
// at (admit's now): they were not published (the engine failed, or the
// wait for room ended). A reservation gives its token back only as of
// when it was made (rate.Reservation.CancelAt), hence at.
func giveBack(taken []*rate.Reservation, from int, at time.Time) {
	for i := from; i < len(taken); i++ {
		if taken[i] != nil {
			taken[i].CancelAt(at)
		}
	}
}

// minPrune is the number of buckets under which buckets never prunes.
const minPrune = 1024

// buckets holds the publish-rate token bucket of each channel published
// to recently. A bucket that is full again is the same as a new one, so
// it is dropped: when the map has doubled since the last pruning, the
// full ones go, which keeps it within twice the channels whose buckets
// are in use, however many channels come and go.
type buckets struct {
	mu        sync.Mutex
	m         map[string]*bucket // guarded by mu
	pruneAt   int                // guarded by mu; the size that prunes next
	lastPrune time.Time          // guarded by mu
}

type bucket struct {
	lim   *rate.Limiter
	rate  int // the settings lim was made with
	burst int
}

// take takes one token of channel's bucket at now and returns 0 and the
// token's reservation (to cancel it if the message is not published
// after all), or, when the bucket is empty, how long until it holds one,
// taking nothing.
func (b *buckets) take(channel string, pol Policy, now time.Time) (time.Duration, *rate.Reservation) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.m[channel]
	if bk == nil || bk.rate != pol.PublishRate || bk.burst != pol.burst() {
		if b.m == nil {
			b.m = make(map[string]*bucket)
			b.pruneAt = minPrune
		}
		if bk == nil && len(b.m) >= b.pruneAt {
			b.pruneLocked(now)
		}
		bk = &bucket{lim: rate.NewLimiter(rate.Limit(pol.PublishRate), pol.burst()), rate: pol.PublishRate, burst: pol.burst()}
		b.m[channel] = bk
	}
	r := bk.lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d, nil
	}
	return 0, r
}

// pruneLocked drops the buckets that are full again at now. The caller
// holds b.mu.
func (b *buckets) pruneLocked(now time.Time) {
	for ch, bk := range b.m {
		if bk.lim.TokensAt(now) >= float64(bk.burst) {
			delete(b.m, ch)
		}
	}
	b.pruneAt = max(minPrune, 2*len(b.m))
	b.lastPrune = now
}

// prune drops the buckets that are full again at now, unless a pruning
// ran within the last period.
func (b *buckets) prune(now time.Time, period time.Duration) {
	b.mu.Lock()
	if len(b.m) > 0 && now.Sub(b.lastPrune) >= period {
		b.pruneLocked(now)
	}
	b.mu.Unlock()
}

// Buckets returns the number of publish-rate buckets the hub holds.
func (h *Hub) Buckets() int {
	h.buckets.mu.Lock()
	defer h.buckets.mu.Unlock()
	return len(h.buckets.m)
}

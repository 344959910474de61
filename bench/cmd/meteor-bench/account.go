package main

import (
	"bytes"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The fan-out scenario's message text is "s=<seq> t=<unix ns> " padded with
// 'x' to the wanted size: seq numbers the publications 0, 1, 2...; t is
// when the publisher sent it.

// stampText returns the text of publication seq sent at t, padded to size.
func stampText(seq int, t time.Time, size int) string {
	var b strings.Builder
	b.WriteString("s=")
	b.WriteString(strconv.Itoa(seq))
	b.WriteString(" t=")
	b.WriteString(strconv.FormatInt(t.UnixNano(), 10))
	b.WriteByte(' ')
	for b.Len() < size {
		b.WriteByte('x')
	}
	return b.String()
}

// parseStamp reads seq and the publish time from a message text. It does
// not allocate.
func parseStamp(text []byte) (seq int, sent int64, ok bool) {
	rest, found := bytes.CutPrefix(text, []byte("s="))
	if !found {
		return 0, 0, false
	}
	sp := bytes.IndexByte(rest, ' ')
	if sp < 0 {
		return 0, 0, false
	}
	s, ok := parseDigits(rest[:sp])
	if !ok || s > 1<<31 {
		return 0, 0, false
	}
	rest, found = bytes.CutPrefix(rest[sp+1:], []byte("t="))
	if !found {
		return 0, 0, false
	}
	if sp = bytes.IndexByte(rest, ' '); sp >= 0 {
		rest = rest[:sp]
	}
	t, ok := parseDigits(rest)
	if !ok {
		return 0, 0, false
	}
	return int(s), t, true
}

// parseDigits parses 1 to 19 decimal digits that fit an int64.
func parseDigits(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
	}
	if v > math.MaxInt64 {
		return 0, false
	}
	return int64(v), true
}

// histogram counts durations in HDR-style log-linear buckets of
// microseconds: exact below 64 µs, then 64 buckets per power of two, so a
// bucket's middle is within 1/128 (0.8 %) of every value in it.
// Histograms merge by adding counts, so readers and worker processes can
// keep their own and send them at the end.
type histogram struct {
	Counts map[int]int64 `json:"counts,omitempty"` // by bucket
	Total  int64         `json:"total"`
	Max    int64         `json:"max_us"`
}

const (
	histSubBits = 6
	histSub     = 1 << histSubBits
	// histBuckets covers up to 2^27 µs (134 s); longer lands in the last
	// bucket (Max stays exact).
	histBuckets = (27-histSubBits)*histSub + histSub
)

func bucketOf(us int64) int {
	if us < histSub {
		return int(max(us, 0))
	}
	shift := bits.Len64(uint64(us)) - histSubBits - 1
	top := us >> shift
	return (shift+1)<<histSubBits + int(top) - histSub
}

// bucketValue returns the middle of bucket i's range, in µs.
func bucketValue(i int) int64 {
	if i < histSub {
		return int64(i)
	}
	shift := i>>histSubBits - 1
	top := int64(i&(histSub-1)) + histSub
	lo := top << shift
	return lo + (int64(1)<<shift)/2
}

func (h *histogram) Add(d time.Duration) {
	us := d.Microseconds()
	if h.Counts == nil {
		h.Counts = make(map[int]int64)
	}
	h.Counts[bucketOf(us)]++
	h.Total++
	h.Max = max(h.Max, us)
}

func (h *histogram) Merge(o *histogram) {
	if h.Counts == nil {
		h.Counts = make(map[int]int64)
	}
	for k, v := range o.Counts {
		h.Counts[k] += v
	}
	h.Total += o.Total
	h.Max = max(h.Max, o.Max)
}

// Quantile returns the q-quantile (0 < q <= 1) in µs, or 0 when empty.
func (h *histogram) Quantile(q float64) int64 {
	if h.Total == 0 {
		return 0
	}
	want := int64(q*float64(h.Total) + 0.999999)
	want = min(max(want, 1), h.Total)
	keys := make([]int, 0, len(h.Counts))
	for k := range h.Counts {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var cum int64
	for _, k := range keys {
		cum += h.Counts[k]
		if cum >= want {
			if k >= histBuckets-1 {
				return h.Max // the last bucket holds everything beyond the range
			}
			return min(bucketValue(k), h.Max)
		}
	}
	return h.Max
}

// denseHist is the histogram one reader (or one publishing worker) keeps
// for itself: an array of counts, no map and no lock, allocated on the
// first sample. Readers' histograms are summed at the end (merge) and sent
// as a histogram (sparse).
type denseHist struct {
	counts []uint32
	total  int64
	max    int64
}

func (d *denseHist) add(us int64) {
	if d.counts == nil {
		d.counts = make([]uint32, histBuckets)
	}
	us = max(us, 0)
	d.counts[min(bucketOf(us), histBuckets-1)]++
	d.total++
	d.max = max(d.max, us)
}

// merge adds o's counts to d.
func (d *denseHist) merge(o *denseHist) {
	if o.counts == nil {
		return
	}
	if d.counts == nil {
		d.counts = make([]uint32, histBuckets)
	}
	for i, v := range o.counts {
		d.counts[i] += v
	}
	d.total += o.total
	d.max = max(d.max, o.max)
}

// sparse returns d as a histogram.
func (d *denseHist) sparse() *histogram {
	h := &histogram{Counts: make(map[int]int64), Total: d.total, Max: d.max}
	for i, v := range d.counts {
		if v != 0 {
			h.Counts[i] = int64(v)
		}
	}
	return h
}

// connAccount is what one subscriber connection received. Only its reader
// writes it; it is summed with the others' at the end, so that reading a
// frame takes no lock shared with other connections.
type connAccount struct {
	seen     []uint64 // bit set of the seq numbers received
	distinct int64
	received int64 // message frames with a valid stamp
	dups     int64 // frames whose seq was already seen
	disorder int64 // frames whose id was not above the previous one
	lastID   int64

	bytes, pings, eofs, malformed, foreign int64
	lat                                    denseHist // latency of each first delivery, µs
	seqLat                                 []int64   // seqLat[seq]: its latency, µs (0: not yet), for the first len(seqLat)
}

// frame accounts one parsed frame read at now (Unix ns).
func (a *connAccount) frame(f *frame, now int64) {
	switch f.Kind {
	case framePing:
		a.pings++
	case frameEOF:
		a.eofs++
	case frameOther:
		a.malformed++
	case frameMessage:
		seq, sent, ok := parseStamp(f.Text)
		if !ok {
			a.foreign++
			return
		}
		id := f.ID
		if id == 0 {
			// Transports without a numeric id: the order of
			// publication is the order expected.
			id = int64(seq) + 1
		}
		if a.add(seq, id) {
			us := max((now-sent)/1000, 0)
			a.lat.add(us)
			if seq < len(a.seqLat) {
				a.seqLat[seq] = max(us, 1)
			}
		}
	}
}

// add records publication seq, delivered with message id. It reports
// whether seq is new to this connection.
func (a *connAccount) add(seq int, id int64) bool {
	a.received++
	if id <= a.lastID {
		a.disorder++
	}
	a.lastID = max(a.lastID, id)
	w, bit := seq/64, uint64(1)<<(seq%64)
	for len(a.seen) <= w {
		a.seen = append(a.seen, 0)
	}
	if a.seen[w]&bit != 0 {
		a.dups++
		return false
	}
	a.seen[w] |= bit
	a.distinct++
	return true
}

// lost returns how many of the publications 0..published-1 never came.
func (a *connAccount) lost(published int) int64 {
	var got int64
	for w, word := range a.seen {
		if w*64 >= published {
			break
		}
		if (w+1)*64 > published {
			word &= 1<<(published-w*64) - 1
		}
		got += int64(bits.OnesCount64(word))
	}
	return int64(published) - got
}

package main

import (
	"bytes"
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

// parseStamp reads seq and the publish time from a message text.
func parseStamp(text []byte) (seq int, sent int64, ok bool) {
	rest, found := bytes.CutPrefix(text, []byte("s="))
	if !found {
		return 0, 0, false
	}
	sp := bytes.IndexByte(rest, ' ')
	if sp < 0 {
		return 0, 0, false
	}
	s, err := strconv.Atoi(string(rest[:sp]))
	if err != nil || s < 0 {
		return 0, 0, false
	}
	rest, found = bytes.CutPrefix(rest[sp+1:], []byte("t="))
	if !found {
		return 0, 0, false
	}
	if sp = bytes.IndexByte(rest, ' '); sp >= 0 {
		rest = rest[:sp]
	}
	t, err := strconv.ParseInt(string(rest), 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return s, t, true
}

// histogram counts durations in log-linear buckets of microseconds: exact
// below 32 µs, then 32 buckets per power of two (at most 3% wide).
// Histograms merge by adding counts, so worker processes can send theirs.
type histogram struct {
	Counts map[int]int64 `json:"counts,omitempty"` // by bucket
	Total  int64         `json:"total"`
	Max    int64         `json:"max_us"`
}

const histSubBits = 5

func bucketOf(us int64) int {
	if us < 1<<histSubBits {
		return int(max(us, 0))
	}
	shift := bits.Len64(uint64(us)) - histSubBits - 1
	top := us >> shift
	return (shift+1)<<histSubBits + int(top) - 1<<histSubBits
}

// bucketValue returns the middle of bucket i's range, in µs.
func bucketValue(i int) int64 {
	if i < 1<<histSubBits {
		return int64(i)
	}
	shift := i>>histSubBits - 1
	top := int64(i&(1<<histSubBits-1)) + 1<<histSubBits
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
			return min(bucketValue(k), h.Max)
		}
	}
	return h.Max
}

// connAccount is what one subscriber connection received in the fan-out
// scenario.
type connAccount struct {
	seen     []uint64 // bit set of the seq numbers received
	distinct int64
	received int64 // message frames with a valid stamp
	dups     int64 // frames whose seq was already seen
	disorder int64 // frames whose id was not above the previous one
	lastID   int64
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

package main

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestStampRoundTrip(t *testing.T) {
	at := time.Unix(1700000000, 123456789)
	for _, size := range []int{0, 10, 200, 4096} {
		text := stampText(42, at, size)
		if len(text) < size {
			t.Fatalf("size %d: text is %d bytes", size, len(text))
		}
		seq, sent, ok := parseStamp([]byte(text))
		if !ok || seq != 42 || sent != at.UnixNano() {
			t.Fatalf("size %d: parseStamp(%.40q) = %d, %d, %v; want 42, %d, true", size, text, seq, sent, ok, at.UnixNano())
		}
	}
	for _, bad := range []string{"", "hello", "s=1", "s=x t=1", "s=1 t=", "s=-1 t=5"} {
		if _, _, ok := parseStamp([]byte(bad)); ok {
			t.Errorf("parseStamp(%q) accepted", bad)
		}
	}
}

func TestConnAccount(t *testing.T) {
	var a connAccount
	// Publications 0..9; 3 and 9 lost, 5 duplicated, ids out of order once.
	for _, d := range []struct {
		seq int
		id  int64
	}{{0, 10}, {1, 11}, {2, 12}, {4, 14}, {5, 15}, {5, 15}, {7, 17}, {6, 16}, {8, 18}} {
		a.add(d.seq, d.id)
	}
	if a.received != 9 || a.distinct != 8 || a.dups != 1 || a.disorder != 2 {
		t.Fatalf("received %d distinct %d dups %d disorder %d; want 9 8 1 2", a.received, a.distinct, a.dups, a.disorder)
	}
	if got := a.lost(10); got != 2 {
		t.Fatalf("lost(10) = %d, want 2", got)
	}
	if got := a.lost(3); got != 0 {
		t.Fatalf("lost(3) = %d, want 0", got)
	}
	// Across the 64-bit word boundary.
	var b connAccount
	for i := range 130 {
		if i != 64 && i != 127 {
			b.add(i, int64(i+1))
		}
	}
	if got := b.lost(130); got != 2 {
		t.Fatalf("lost(130) = %d, want 2", got)
	}
	if got := b.lost(200); got != 72 {
		t.Fatalf("lost(200) = %d, want 72", got)
	}
}

func TestHistogram(t *testing.T) {
	for us := int64(0); us < 1<<27; us = us*17/16 + 1 {
		v := bucketValue(bucketOf(us))
		if d := v - us; d < -us/100 || d > us/100 {
			t.Fatalf("%d µs lands in a bucket worth %d µs (more than 1 %% off)", us, v)
		}
		if bucketOf(us+1) < bucketOf(us) || bucketOf(us) >= histBuckets {
			t.Fatalf("buckets not monotonic or out of range at %d", us)
		}
	}
	var h histogram
	var d1, d2 denseHist
	for i := 1; i <= 1000; i++ {
		h.Add(time.Duration(i) * time.Microsecond)
		if i%2 == 0 {
			d1.add(int64(i))
		} else {
			d2.add(int64(i))
		}
	}
	var m histogram
	m.Merge(&h)
	var d denseHist
	d.merge(&d1)
	d.merge(&d2)
	d.merge(&denseHist{}) // an empty one (a reader that got nothing)
	fromDense := d.sparse()
	for _, c := range []struct {
		q    float64
		want int64
	}{{0.5, 500}, {0.9, 900}, {0.99, 990}, {1, 1000}} {
		for name, hh := range map[string]*histogram{"merged": &m, "dense": fromDense} {
			got := hh.Quantile(c.q)
			if got < c.want*99/100 || got > c.want*101/100 {
				t.Errorf("%s: quantile %.2f = %d µs, want %d within 1 %%", name, c.q, got, c.want)
			}
		}
	}
	if m.Max != 1000 || m.Total != 1000 || fromDense.Max != 1000 || fromDense.Total != 1000 {
		t.Fatalf("max %d total %d, dense max %d total %d; want 1000", m.Max, m.Total, fromDense.Max, fromDense.Total)
	}
	// Beyond the range: the last bucket, the exact maximum.
	var big denseHist
	big.add(1 << 40)
	big.add(-5)
	if big.sparse().Quantile(1) != 1<<40 || big.counts[0] != 1 {
		t.Fatalf("out of range: %+v", big.sparse())
	}
}

// TestReadPathNoAlloc feeds each transport's frames through its parser
// and a connection's account, as a reader does: no allocation per frame
// once the buffers have grown.
func TestReadPathNoAlloc(t *testing.T) {
	text := stampText(0, time.Now(), 200)
	frames := map[string]func(seq int) []byte{
		"meteor/stream": func(seq int) []byte {
			return fmt.Appendf(nil, "<script>p(%d,\"c\",\"%s\");</script>\r\n", seq+1, stampText(seq, time.Now(), 200))
		},
		"nchan/stream": func(seq int) []byte { return fmt.Appendf(nil, "%s\n", stampText(seq, time.Now(), 200)) },
		"meteor/sse": func(seq int) []byte {
			return fmt.Appendf(nil, "id: %d\ndata: %s\n\n", seq+1, stampText(seq, time.Now(), 200))
		},
		"meteor/ws": func(seq int) []byte {
			return wsFrame(true, 1, fmt.Appendf(nil, `{"type":"message","id":%d,"channel":"c","text":"%s","time":1}`, seq+1, stampText(seq, time.Now(), 200)))
		},
		"nchan/ws": func(seq int) []byte { return wsFrame(true, 1, []byte(stampText(seq, time.Now(), 200))) },
	}
	_ = text
	for name, mk := range frames {
		kind, tr, _ := strings.Cut(name, "/")
		e := endpoint{Kind: kind, Transport: tr}
		p := e.parser()
		var a connAccount
		a.seen = make([]uint64, 64) // room for 4096 publications
		now := time.Now().UnixNano()
		onFrame := func(f *frame) { a.frame(f, now) }
		// Three frames per read, the last one cut in two.
		var stream []byte
		for seq := range 1200 {
			stream = append(stream, mk(seq)...)
		}
		chunk := len(mk(5000))*3 + 7
		p.Feed(stream[:chunk], onFrame) // grow the buffers
		off := chunk
		allocs := testing.AllocsPerRun(100, func() {
			end := min(off+chunk, len(stream))
			p.Feed(stream[off:end], onFrame)
			off = end
		})
		if allocs > 0 {
			t.Errorf("%s: %.1f allocations per read of 3 frames", name, allocs)
		}
		if a.distinct < 300 || a.malformed != 0 || a.foreign != 0 || a.dups != 0 || a.lat.total != a.distinct {
			t.Errorf("%s: distinct %d malformed %d foreign %d dups %d latencies %d", name, a.distinct, a.malformed, a.foreign, a.dups, a.lat.total)
		}
	}
}

func TestParseStatCPU(t *testing.T) {
	stat := "1234 (meteord (x) y) S 1 1234 1234 0 -1 4194560 1000 0 0 0 150 25 0 0 20 0 9 0 100 0 0\n"
	got, err := parseStatCPU([]byte(stat))
	if err != nil || got != 175 {
		t.Fatalf("parseStatCPU = %d, %v; want 175", got, err)
	}
}

func TestParseSources(t *testing.T) {
	got, err := parseSources("127.0.0.2-127.0.0.4, 127.0.0.9")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Addr{netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3"), netip.MustParseAddr("127.0.0.4"), netip.MustParseAddr("127.0.0.9")}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if again, _ := parseSources(formatSources(got)); len(again) != len(got) {
		t.Fatalf("formatSources does not round-trip: %v", again)
	}
	for _, bad := range []string{"x", "127.0.0.5-127.0.0.2", "127.0.0.1-::1"} {
		if _, err := parseSources(bad); err == nil {
			t.Errorf("parseSources(%q) accepted", bad)
		}
	}
}

func TestSplitShards(t *testing.T) {
	sh := splitShards(shardConfig{Concurrency: 10}, 10, 3)
	total, first := 0, 0
	for _, s := range sh {
		if s.First != first {
			t.Fatalf("shard first %d, want %d", s.First, first)
		}
		first += s.N
		total += s.N
	}
	if len(sh) != 3 || total != 10 || sh[0].N != 4 {
		t.Fatalf("shards %+v", sh)
	}
}

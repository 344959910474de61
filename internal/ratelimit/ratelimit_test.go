package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestBucketsRateAndRefill(t *testing.T) {
	b := New(2, 3)
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _ := b.Allow("a", 1, t0); !ok {
			t.Fatalf("message %d of a burst of 3 refused", i+1)
		}
	}
	ok, retry := b.Allow("a", 1, t0)
	if ok || retry != 500*time.Millisecond {
		t.Fatalf("4th message: ok %v, retry %v; want refused, retry 500ms", ok, retry)
	}
	if ok, _ := b.Allow("b", 3, t0); !ok {
		t.Fatal("another name shares a's bucket")
	}
	if ok, _ := b.Allow("a", 1, t0.Add(500*time.Millisecond)); !ok {
		t.Fatal("refused after the retry delay")
	}
	if ok, retry := b.Allow("a", 4, t0.Add(time.Hour)); ok || retry != 0 {
		t.Fatalf("4 messages in a bucket of 3: ok %v retry %v; want refused, retry 0 (never)", ok, retry)
	}
}

func TestBucketsOffAndNil(t *testing.T) {
	var nilB *Buckets
	if ok, _ := nilB.Allow("a", 1e6, time.Now()); !ok {
		t.Fatal("nil Buckets refused")
	}
	b := New(0, 0)
	if ok, _ := b.Allow("a", 1e6, time.Now()); !ok || b.Len() != 0 {
		t.Fatalf("rate 0 refused, or kept a bucket (%d)", b.Len())
	}
}

// TestBucketsDoNotLeak: buckets full again are forgotten, so many names
// used once leave nothing behind.
func TestBucketsDoNotLeak(t *testing.T) {
	b := New(10, 0) // burst 20
	t0 := time.Unix(1000, 0)
	b.Allow("first", 1, t0) // prunes (first call), then makes "first"
	for i := range 1000 {
		b.Allow(fmt.Sprint("sub-", i), 5, t0.Add(time.Second))
	}
	if n := b.Len(); n != 1001 {
		t.Fatalf("%d buckets, want 1001", n)
	}
	// 5 tokens come back in half a second; after pruneEvery all are full.
	b.Allow("late", 1, t0.Add(time.Second+pruneEvery))
	if n := b.Len(); n != 1 {
		t.Fatalf("after the prune: %d buckets, want 1 (the new one)", n)
	}
}

func TestBucketsSetLimit(t *testing.T) {
	b := New(1, 1)
	t0 := time.Unix(1000, 0)
	b.Allow("a", 1, t0)
	if ok, _ := b.Allow("a", 1, t0); ok {
		t.Fatal("second message in a bucket of 1 allowed")
	}
	b.SetLimit(1, 1) // unchanged: the bucket stays empty
	if ok, _ := b.Allow("a", 1, t0); ok {
		t.Fatal("SetLimit with the same limit refilled the bucket")
	}
	b.SetLimit(1, 5)
	if r, n := b.Limit(); r != 1 || n != 5 {
		t.Fatalf("Limit() = %v, %v; want 1, 5", r, n)
	}
	if ok, _ := b.Allow("a", 5, t0); !ok {
		t.Fatal("new limit: a full bucket of 5 refused 5")
	}
	b.SetLimit(0, 0)
	if ok, _ := b.Allow("a", 100, t0); !ok {
		t.Fatal("rate 0 after a reload still limits")
	}
}

package hub

import (
	"testing"
	"unsafe"
)

// TestEntryFootprint: every subscriber keeps one entry per channel; a
// field added to it costs each of them, and past 80 bytes the next size
// class is 96.
func TestEntryFootprint(t *testing.T) {
	if n := unsafe.Sizeof(entry{}); n > 80 {
		t.Errorf("entry is %d bytes, more than 80", n)
	}
}

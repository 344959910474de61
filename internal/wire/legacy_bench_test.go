package wire_test

import (
	"strings"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/wire"
)

func benchMode(b *testing.B) *wire.LegacyMode {
	b.Helper()
	m, err := wire.NewLegacyMode(config.Defaults().Mode("xhrinteractive"))
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// benchTexts are message texts of a few sizes: plain ones, and one where
// every fifth byte must be escaped for a JavaScript string.
var benchTexts = []struct {
	name string
	text string
}{
	{"plain-16", strings.Repeat("a", 16)},
	{"plain-256", strings.Repeat("abcdefgh", 32)},
	{"plain-4096", strings.Repeat("abcdefgh", 512)},
	{"escaped-256", strings.Repeat(`abc"<`, 51)},
}

// BenchmarkLegacyEncode renders a new message each iteration: the cost of
// the first subscriber of a mode.
func BenchmarkLegacyEncode(b *testing.B) {
	mode := benchMode(b)
	now := time.Now()
	for _, tc := range benchTexts {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.text)))
			var id uint64
			for b.Loop() {
				id++
				m := &engine.Message{ID: id, Channel: "demo", Text: tc.text, Time: now}
				if len(m.Encoded(mode)) == 0 {
					b.Fatal("empty encoding")
				}
			}
		})
	}
}

// BenchmarkLegacyEncodeCached asks for an encoding already rendered: the
// cost of every further subscriber of the mode. It must not allocate.
func BenchmarkLegacyEncodeCached(b *testing.B) {
	mode := benchMode(b)
	other := benchMode(b) // a second wire format cached on the same message
	for _, tc := range benchTexts[:2] {
		b.Run(tc.name, func(b *testing.B) {
			m := &engine.Message{ID: 1, Channel: "demo", Text: tc.text, Time: time.Now()}
			m.Encoded(mode)
			m.Encoded(other)
			b.ReportAllocs()
			for b.Loop() {
				if len(m.Encoded(mode)) == 0 {
					b.Fatal("empty encoding")
				}
			}
		})
	}
}

// TestLegacyEncodeCachedAllocs keeps the cached path free of allocations.
func TestLegacyEncodeCachedAllocs(t *testing.T) {
	mode, err := wire.NewLegacyMode(config.Defaults().Mode("xhrinteractive"))
	if err != nil {
		t.Fatal(err)
	}
	m := &engine.Message{ID: 7, Channel: "demo", Text: "hello", Time: time.Now()}
	want := `<script>p(7,"demo","hello");</script>` + "\r\n"
	if got := string(m.Encoded(mode)); got != want {
		t.Fatalf("Encoded = %q, want %q", got, want)
	}
	if n := testing.AllocsPerRun(100, func() { m.Encoded(mode) }); n != 0 {
		t.Fatalf("cached Encoded allocates %v times, want 0", n)
	}
}

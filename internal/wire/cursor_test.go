package wire_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/meteorpush/meteor/internal/wire"
)

func TestParseCursor(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want wire.Cursor
	}{
		{"", nil},
		{"a:0", wire.Cursor{pos("a", 0, "")}},
		{"news:42,sport%20x:7,A-b_9:18446744073709551614", wire.Cursor{pos("news", 42, ""), pos("sport%20x", 7, ""), pos("A-b_9", 18446744073709551614, "")}},
		{"news:1700000000000001@k2x9ab01,b:3", wire.Cursor{pos("news", 1700000000000001, "k2x9ab01"), pos("b", 3, "")}},
	} {
		got, err := wire.ParseCursor(tc.in)
		if err != nil || len(got) != len(tc.want) {
			t.Fatalf("ParseCursor(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Fatalf("ParseCursor(%q) = %v, want %v", tc.in, got, tc.want)
			}
		}
		if s := got.String(); s != tc.in {
			t.Errorf("ParseCursor(%q).String() = %q", tc.in, s)
		}
	}
	for _, in := range []string{
		",", "a", "a:", ":1", "a:1,", ",a:1", "a:1,,b:2", "a:01", "a:-1", "a:+1", "a: 1", " a:1",
		"a:1 ", "a:1,a:2", "a.b:1", "a:b:1", "a:18446744073709551615", "a:99999999999999999999",
		"é:1", "a:1;b:2", "a:0x1", strings.Repeat("a", wire.MaxCursor) + ":1",
		"a:1@", "a:1@AB", "a:1@a-b", "a:1@" + strings.Repeat("a", wire.MaxEpoch+1), "a:@x", "a:1@x@y",
	} {
		if got, err := wire.ParseCursor(in); !errors.Is(err, wire.ErrBadCursor) {
			t.Errorf("ParseCursor(%q) = %v, %v; want ErrBadCursor", in, got, err)
		}
	}
}

// FuzzParseCursor: no input panics; what is accepted is bounded, names
// only valid channels, each once, and prints back as the same string.
func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"", "a:1", "a:1,b:2", "a:01", "a:1,a:2", "x:18446744073709551614", "a:1,", "%41-_:0", "a:5@k2x9ab01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := wire.ParseCursor(s)
		if err != nil {
			if !errors.Is(err, wire.ErrBadCursor) {
				t.Fatalf("ParseCursor(%q): error %v does not wrap ErrBadCursor", s, err)
			}
			return
		}
		if len(s) > wire.MaxCursor {
			t.Fatalf("ParseCursor accepted %d bytes", len(s))
		}
		if got := c.String(); got != s {
			t.Fatalf("ParseCursor(%q).String() = %q", s, got)
		}
		seen := map[string]bool{}
		for _, p := range c {
			if seen[p.Channel] || p.Channel == "" || strings.ContainsAny(p.Channel, ":,@\n\r ") || p.Epoch != "" && !wire.ValidEpoch(p.Epoch) {
				t.Fatalf("ParseCursor(%q) gave %v", s, c)
			}
			seen[p.Channel] = true
		}
	})
}

package subscriber

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/meteorpush/meteor/internal/channel"
	"github.com/meteorpush/meteor/internal/engine"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestParsePush(t *testing.T) {
	since := func(n uint64) engine.Query {
		if n == 0 {
			return engine.Query{Kind: engine.QueryAll}
		}
		return engine.Query{Kind: engine.QueryAfter, After: engine.Position{ID: n - 1}}
	}
	last := func(n int) engine.Query { return engine.Query{Kind: engine.QueryLast, Last: n} }
	all := engine.Query{Kind: engine.QueryAll}
	none := engine.Query{}
	type ch = ChannelSpec
	tests := []struct {
		in    string
		max   int
		want  Push
		err   error
		inErr string
	}{
		{in: "h/m/c", want: Push{"h", "m", []ch{{"c", none}}}},
		{in: "H1/IFrame/Chan_1%20-x", want: Push{"H1", "iframe", []ch{{"Chan_1%20-x", none}}}},
		{in: "h/m/c.r5", want: Push{"h", "m", []ch{{"c", since(5)}}}},
		{in: "h/m/c.R0", want: Push{"h", "m", []ch{{"c", since(0)}}}},
		{in: "h/m/c.r", want: Push{"h", "m", []ch{{"c", since(0)}}}},
		{in: "h/m/c.b3", want: Push{"h", "m", []ch{{"c", last(3)}}}},
		{in: "h/m/c.b", want: Push{"h", "m", []ch{{"c", all}}}},
		{in: "h/m/c.b0", want: Push{"h", "m", []ch{{"c", none}}}},
		{in: "h/m/c.b99999999999", want: Push{"h", "m", []ch{{"c", last(1<<31 - 1)}}}},
		{in: "h/m/c.h", want: Push{"h", "m", []ch{{"c", all}}}},
		{in: "h/m/c.H7", want: Push{"h", "m", []ch{{"c", all}}}},
		{in: "h/m/a/b.h//c.r2/", want: Push{"h", "m", []ch{{"a", none}, {"b", all}, {"c", since(2)}}}},
		{in: "h/m/a.h/b/a.r3", want: Push{"h", "m", []ch{{"a", since(3)}, {"b", none}}}},
		{in: "h/m/a/b/a", max: 2, want: Push{"h", "m", []ch{{"a", none}, {"b", none}}}},
		{in: "h/m/a/b/c", max: 2, err: ErrTooManyChannels},
		{in: "h/m/a/b/c", max: 3, want: Push{"h", "m", []ch{{"a", none}, {"b", none}, {"c", none}}}},
		{in: "h/m/c.r18446744073709551615", want: Push{"h", "m", []ch{{"c", since(1<<64 - 1)}}}},
		{in: "", err: ErrBadHostID},
		{in: "h", err: ErrNoChannel},
		{in: "h/", err: ErrNoChannel},
		{in: "h/m", err: ErrNoChannel},
		{in: "h/m/", err: ErrNoChannel},
		{in: "h/m//", err: ErrNoChannel},
		{in: "/m/c", err: ErrBadHostID},
		{in: "h-1/m/c", err: ErrBadHostID},
		{in: "h/m_1/c", err: ErrBadMode},
		{in: "h/m.x/c", err: ErrBadMode},
		{in: "h/m/c.", err: ErrBadChannel, inErr: "empty suffix"},
		{in: "h/m/.r1", err: ErrBadChannel},
		{in: "h/m/c.x1", err: ErrBadChannel, inErr: "suffix"},
		{in: "h/m/c.r1x", err: ErrBadChannel, inErr: "bad number"},
		{in: "h/m/c.r-1", err: ErrBadChannel},
		{in: "h/m/c.r+1", err: ErrBadChannel},
		{in: "h/m/c.r1_0", err: ErrBadChannel},
		{in: "h/m/c.r18446744073709551616", err: ErrBadChannel},
		{in: "h/m/c.r1.b2", err: ErrBadChannel},
		{in: "h/m/c d", err: ErrBadChannel},
		{in: "h/m/ok/c\x00", err: ErrBadChannel},
		{in: "h/m/é", err: ErrBadChannel},
	}
	for _, tt := range tests {
		got, err := ParsePush(tt.in, tt.max)
		if tt.err != nil {
			if !errors.Is(err, tt.err) || !strings.Contains(errString(err), tt.inErr) {
				t.Errorf("ParsePush(%q, %d) = %+v, %v; want error %v", tt.in, tt.max, got, err, tt.err)
			}
			continue
		}
		if err != nil || !equalPush(got, tt.want) {
			t.Errorf("ParsePush(%q, %d) = %+v, %v; want %+v", tt.in, tt.max, got, err, tt.want)
		}
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func equalPush(a, b Push) bool {
	if a.HostID != b.HostID || a.Mode != b.Mode || len(a.Channels) != len(b.Channels) {
		return false
	}
	for i := range a.Channels {
		if a.Channels[i] != b.Channels[i] {
			return false
		}
	}
	return true
}

// FuzzParsePush checks that ParsePush never panics, that an accepted URL
// obeys the grammar, and that a refusal is one of the documented errors.
func FuzzParsePush(f *testing.F) {
	for _, s := range []string{"h/m/c", "h/m/c.r5/d.b2/e.h", "h/m/a//b/", "H/M/A.R1/a.b", "h/m/c.", "h", ""} {
		f.Add(s, 0)
		f.Add(s, 2)
	}
	f.Fuzz(func(t *testing.T, in string, max int) {
		p, err := ParsePush(in, max)
		if err != nil {
			for _, e := range []error{ErrNoChannel, ErrBadHostID, ErrBadMode, ErrBadChannel, ErrTooManyChannels} {
				if errors.Is(err, e) {
					return
				}
			}
			t.Fatalf("ParsePush(%q) error %v is none of the sentinels", in, err)
		}
		elems := strings.Split(in, "/")
		if len(elems) < 3 || p.HostID != elems[0] || !ValidHostID(p.HostID) {
			t.Fatalf("ParsePush(%q): host id %q", in, p.HostID)
		}
		if p.Mode != strings.ToLower(elems[1]) || !validWord(p.Mode) || strings.ToLower(p.Mode) != p.Mode {
			t.Fatalf("ParsePush(%q): mode %q", in, p.Mode)
		}
		if len(p.Channels) == 0 || max > 0 && len(p.Channels) > max {
			t.Fatalf("ParsePush(%q, %d): %d channels", in, max, len(p.Channels))
		}
		seen := map[string]bool{}
		for _, c := range p.Channels {
			if !channel.Valid(c.Name) || seen[c.Name] {
				t.Fatalf("ParsePush(%q): channel %q invalid or repeated", in, c.Name)
			}
			seen[c.Name] = true
			// The last element naming the channel decides its query.
			var elem string
			for _, e := range elems[2:] {
				if name, _, _ := strings.Cut(e, "."); name == c.Name {
					elem = e
				}
			}
			if elem == "" {
				t.Fatalf("ParsePush(%q): channel %q is not in the URL", in, c.Name)
			}
			_, suffix, has := strings.Cut(elem, ".")
			q := c.Query
			switch {
			case !has:
				if q != (engine.Query{}) {
					t.Fatalf("ParsePush(%q): %q has query %+v", in, elem, q)
				}
			case suffix[0]|0x20 == 'r':
				if q.Kind != engine.QueryAfter && q.Kind != engine.QueryAll {
					t.Fatalf("ParsePush(%q): %q has query %+v", in, elem, q)
				}
			case suffix[0]|0x20 == 'b':
				if q.Kind != engine.QueryLast && q.Kind != engine.QueryAll && q.Kind != engine.QueryNone || q.Kind == engine.QueryLast && q.Last <= 0 {
					t.Fatalf("ParsePush(%q): %q has query %+v", in, elem, q)
				}
			case suffix[0]|0x20 == 'h':
				if q.Kind != engine.QueryAll {
					t.Fatalf("ParsePush(%q): %q has query %+v", in, elem, q)
				}
			default:
				t.Fatalf("ParsePush(%q): accepted suffix %q", in, suffix)
			}
			for i := 1; i < len(suffix); i++ {
				if suffix[i] < '0' || suffix[i] > '9' {
					t.Fatalf("ParsePush(%q): accepted suffix %q", in, suffix)
				}
			}
		}
		// Every element is empty or one of the channels.
		for _, e := range elems[2:] {
			if name, _, _ := strings.Cut(e, "."); e != "" && !seen[name] {
				t.Fatalf("ParsePush(%q): element %q was dropped", in, e)
			}
		}
	})
}

func TestCleanPath(t *testing.T) {
	for in, want := range map[string]string{
		"/":            "",
		"":             "",
		"/meteor.js":   "meteor.js",
		"/a/b/":        "a/b",
		"//a//b":       "a//b",
		"/A-b_c.9.HTM": "A-b_c.9.HTM",
		"/.hidden":     ".hidden",
	} {
		if got, err := cleanPath(in); err != nil || got != want {
			t.Errorf("cleanPath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"/..", "/a/../b", "/a..", "/a%2e", "/a b", "/a\\b", "/a:b", "/é", "/a\x00"} {
		if got, err := cleanPath(in); !errors.Is(err, errBadPath) {
			t.Errorf("cleanPath(%q) = %q, %v; want errBadPath", in, got, err)
		}
	}
}

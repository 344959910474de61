package version

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func stamped(rev, when, modified string) *debug.BuildInfo {
	return &debug.BuildInfo{GoVersion: "go1.99.1", Settings: []debug.BuildSetting{
		{Key: "-compiler", Value: "gc"},
		{Key: "vcs", Value: "git"},
		{Key: "vcs.revision", Value: rev},
		{Key: "vcs.time", Value: when},
		{Key: "vcs.modified", Value: modified},
	}}
}

func TestResolve(t *testing.T) {
	const rev = "2f2c7b1a9e0d4c3b2a1908f7e6d5c4b3a2918070"
	for _, tt := range []struct {
		name           string
		bi             *debug.BuildInfo
		ver, rev, when string
		want           Info
	}{
		{"go build, clean tree", stamped(rev, "2026-12-03T08:40:00Z", "false"), "1.06-go.1", "", "",
			Info{"1.06-go.1", "2f2c7b1a9e0d", "2026-12-03T08:40:00Z", "go1.99.1"}},
		{"go build, uncommitted changes", stamped(rev, "2026-12-03T08:40:00Z", "true"), "1.06-go.1", "", "",
			Info{"1.06-go.1", "2f2c7b1a9e0d-dirty", "2026-12-03T08:40:00Z", "go1.99.1"}},
		{"a commit time in another zone comes out in UTC", stamped(rev, "2026-12-03T09:40:00+01:00", "false"), "1.06-go.1", "", "",
			Info{"1.06-go.1", "2f2c7b1a9e0d", "2026-12-03T08:40:00Z", "go1.99.1"}},
		{"release build: -X wins over the stamp", stamped(rev, "2026-12-03T08:40:00Z", "true"), "1.06-go.2", "abc123", "2027-01-01T00:00:00Z",
			Info{"1.06-go.2", "abc123", "2027-01-01T00:00:00Z", "go1.99.1"}},
		{"-buildvcs=false with -X", &debug.BuildInfo{GoVersion: "go1.99.1"}, "1.06-go.1", "abc123", "2027-01-01T00:00:00Z",
			Info{"1.06-go.1", "abc123", "2027-01-01T00:00:00Z", "go1.99.1"}},
		{"a full revision from -X is shortened too", nil, "1.06-go.1", rev, "2027-01-01T00:00:00Z",
			Info{"1.06-go.1", "2f2c7b1a9e0d", "2027-01-01T00:00:00Z", runtime.Version()}},
		{"a long commit that is no revision stays", nil, "1.06-go.1", "release-2027-01-branch", "",
			Info{"1.06-go.1", "release-2027-01-branch", Unknown, runtime.Version()}},
		{"go run or a test binary: nothing stamped", &debug.BuildInfo{GoVersion: "go1.99.1"}, "1.06-go.1", "", "",
			Info{"1.06-go.1", Unknown, Unknown, "go1.99.1"}},
		{"no build information at all", nil, "", "", "",
			Info{Unknown, Unknown, Unknown, runtime.Version()}},
		{"a date that is not RFC 3339 is kept as given", nil, "1.06-go.1", "", "yesterday",
			Info{"1.06-go.1", Unknown, "yesterday", runtime.Version()}},
	} {
		if got := resolve(tt.bi, tt.ver, tt.rev, tt.when); got != tt.want {
			t.Errorf("%s: resolve = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestGet(t *testing.T) {
	got := Get()
	// A test binary is not stamped with the commit.
	if got.Version != version || got.GoVersion != runtime.Version() || got.Commit == "" || got.Date == "" {
		t.Fatalf("Get() = %+v", got)
	}
	if Get() != got {
		t.Fatal("Get changed between calls")
	}
}

func TestString(t *testing.T) {
	i := Info{"1.06-go.1", "2f2c7b1a9e0d", "2026-12-03T08:40:00Z", "go1.26.8"}
	if got, want := i.String(), "1.06-go.1 (commit 2f2c7b1a9e0d, 2026-12-03T08:40:00Z, go1.26.8)"; got != want {
		t.Fatalf("String() = %q, want %q", got, want)
	}
}

// Package version says which build of meteord is running: its version,
// the commit it was built from, when that commit was made, and the Go
// release that built it. Every place a user looks (-version, the start-up
// log record, the meteor_build_info metric, /api/stats) takes it from Get.
//
// A plain `go build` inside a git checkout stamps the commit and its time
// into the binary (runtime/debug.ReadBuildInfo: vcs.revision, vcs.time,
// vcs.modified). A release build, or one without the repository (a
// container build without .git), sets them at link time instead:
//
//	go build -buildvcs=false -ldflags "\
//	  -X github.com/meteorpush/meteor/internal/version.version=1.06-go.2 \
//	  -X github.com/meteorpush/meteor/internal/version.commit=$(git rev-parse HEAD) \
//	  -X github.com/meteorpush/meteor/internal/version.date=$(git log -1 --format=%cI)" ./cmd/meteord
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Link-time overrides (-ldflags -X). An empty commit or date means "from
// the build information".
var (
	version = "1.06-go.1"
	commit  = ""
	date    = ""
)

// Unknown is the commit and date of a build that carries neither (go run,
// a test binary, a build with -buildvcs=false and no -X).
const Unknown = "unknown"

// shortCommit is how many hex digits of a revision are kept.
const shortCommit = 12

// Info describes one build.
type Info struct {
	// Version is the release name: Meteor 1.06's with this
	// implementation's suffix, or what the release build set.
	Version string `json:"version"`
	// Commit is the revision, a full one shortened to 12 hex digits
	// wherever it comes from, with "-dirty"
	// when the work tree had uncommitted changes; Unknown when not known.
	Commit string `json:"commit"`
	// Date is the commit's time in RFC 3339, UTC; Unknown when not known.
	Date string `json:"date"`
	// GoVersion is the Go release that built the binary (runtime.Version).
	GoVersion string `json:"goversion"`
}

// String is the line -version prints after "meteord ".
func (i Info) String() string {
	return fmt.Sprintf("%s (commit %s, %s, %s)", i.Version, i.Commit, i.Date, i.GoVersion)
}

var get = sync.OnceValue(func() Info {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return resolve(bi, version, commit, date)
})

// short cuts a full hexadecimal revision to shortCommit digits; anything
// else (a tag, a short revision) stays as given.
func short(rev string) string {
	if len(rev) <= shortCommit {
		return rev
	}
	for _, c := range rev {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return rev
		}
	}
	return rev[:shortCommit]
}

// Get returns this binary's build information.
func Get() Info { return get() }

// resolve combines the link-time values with the build information bi
// (nil when there is none): a non-empty link-time value wins.
func resolve(bi *debug.BuildInfo, ver, rev, when string) Info {
	info := Info{Version: ver, Commit: rev, Date: when, GoVersion: runtime.Version()}
	var modified bool
	if bi != nil {
		if bi.GoVersion != "" {
			info.GoVersion = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if info.Commit == "" {
					info.Commit = s.Value
				}
			case "vcs.time":
				if info.Date == "" {
					info.Date = s.Value
				}
			case "vcs.modified":
				// Only a stamped revision can be dirty; a link-time
				// commit says what it is by itself.
				modified = s.Value == "true" && rev == ""
			}
		}
	}
	info.Commit = short(info.Commit)
	if modified && info.Commit != "" && !strings.HasSuffix(info.Commit, "-dirty") {
		info.Commit += "-dirty"
	}
	if info.Commit == "" {
		info.Commit = Unknown
	}
	if info.Date == "" {
		info.Date = Unknown
	} else if t, err := time.Parse(time.RFC3339, info.Date); err == nil {
		info.Date = t.UTC().Format(time.RFC3339)
	}
	if info.Version == "" {
		info.Version = Unknown
	}
	return info
}

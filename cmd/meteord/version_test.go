package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/version"
)

// TestVersionDefault keeps the version package's release name equal to
// the one the configuration's -help prints.
func TestVersionDefault(t *testing.T) {
	if got := version.Get().Version; got != config.Version {
		t.Fatalf("version.Get().Version = %q, config.Version = %q: keep them equal", got, config.Version)
	}
}

// TestReleaseBuild builds meteord as a release is built (-buildvcs=false,
// the version, commit and date set with -ldflags -X, as the Dockerfile
// does) and finds them in every place a user looks: -version, the
// start-up log record, meteor_build_info and /api/stats.
func TestReleaseBuild(t *testing.T) {
	const (
		ver  = "1.06-go.99"
		rev  = "0123456789abcdef0123456789abcdef01234567"
		abbr = "0123456789ab" // what every place shows
		date = "2027-01-02T03:04:05Z"
	)
	bin := filepath.Join(t.TempDir(), "meteord")
	pkg := "github.com/meteorpush/meteor/internal/version"
	ldflags := fmt.Sprintf("-s -w -X %s.version=%s -X %s.commit=%s -X %s.date=%s", pkg, ver, pkg, rev, pkg, date)
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", bin, ".")
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "-version").Output()
	want := fmt.Sprintf("meteord %s (commit %s, %s, ", ver, abbr, date)
	if err != nil || !strings.HasPrefix(string(out), want) {
		t.Fatalf("meteord -version = %q, %v; want it to start with %q", out, err, want)
	}

	// The process tests run one at a time (none is parallel), so the
	// binary they start may be swapped for this one.
	saved := binary
	binary = bin
	p := startProc(t, restartConf(t))
	binary = saved
	p.waitLog(fmt.Sprintf("msg=starting version=%s commit=%s date=%s", ver, abbr, date))

	resp, err := http.Get("http://" + p.api + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metric := fmt.Sprintf(`meteor_build_info{commit=%q,date=%q,goversion=`, abbr, date)
	if !strings.Contains(string(body), metric) || !strings.Contains(string(body), fmt.Sprintf(`version=%q} 1`, ver)) {
		t.Errorf("/metrics has no %s...version=%q} 1", metric, ver)
	}

	resp, err = http.Get("http://" + p.api + "/api/stats")
	if err != nil {
		t.Fatal(err)
	}
	var stats struct{ Build version.Info }
	err = json.NewDecoder(resp.Body).Decode(&stats)
	resp.Body.Close()
	if err != nil || stats.Build.Version != ver || stats.Build.Commit != abbr || stats.Build.Date != date || !strings.HasPrefix(stats.Build.GoVersion, "go") {
		t.Errorf("/api/stats build = %+v, %v", stats.Build, err)
	}
}

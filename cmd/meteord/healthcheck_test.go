package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

func TestHealthArgs(t *testing.T) {
	for _, tt := range []struct {
		args []string
		url  string
		ok   bool
	}{
		{nil, "", false},
		{[]string{"-version"}, "", false},
		{[]string{"-SubscriberPort", "1"}, "", false},
		{[]string{"-healthcheck"}, defaultHealthURL, true},
		{[]string{"--healthcheck"}, defaultHealthURL, true},
		{[]string{"-healthcheck", "http://x/healthz"}, "http://x/healthz", true},
		{[]string{"-healthcheck=http://x/readyz"}, "http://x/readyz", true},
		{[]string{"--healthcheck=http://x/readyz"}, "http://x/readyz", true},
	} {
		url, ok := healthArgs(tt.args)
		if url != tt.url || ok != tt.ok {
			t.Errorf("healthArgs(%q) = %q, %v; want %q, %v", tt.args, url, ok, tt.url, tt.ok)
		}
	}
}

func TestHealthcheck(t *testing.T) {
	status := http.StatusOK
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer ts.Close()
	check := func(url string, want int) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if got := run([]string{"-healthcheck", url}, &stdout, &stderr); got != want {
			t.Errorf("-healthcheck %s (server answers %d) = %d, want %d; stdout %q stderr %q", url, status, got, want, stdout.String(), stderr.String())
		}
	}
	check(ts.URL+"/healthz", 0)
	check(ts.URL+"/nothing", 1)
	status = http.StatusServiceUnavailable
	check(ts.URL+"/healthz", 1)
	ts.Close()
	check(ts.URL+"/healthz", 1) // nobody listens
	check("::not a url", 1)
}

// TestHealthcheckBinary runs the check as the container's HEALTHCHECK
// does, against a real meteord.
func TestHealthcheckBinary(t *testing.T) {
	p := startProc(t, restartConf(t))
	out, err := exec.Command(binary, "-healthcheck", "http://"+p.api+"/healthz").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "200 OK") {
		t.Errorf("meteord -healthcheck on a running server: %q, %v", out, err)
	}
	p.signal(syscall.SIGTERM)
	<-p.exited
	err = exec.Command(binary, "-healthcheck", "http://"+p.api+"/healthz").Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("meteord -healthcheck on a stopped server: %v, want exit status 1", err)
	}
}

package api_test

import (
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/meteorpush/meteor/internal/config"
)

// TestBrowserGuard checks who may call the API from a browser: listed
// origins and the server's own pages through loopback, nobody else, and
// never a re-bound host name without a token.
func TestBrowserGuard(t *testing.T) {
	ts := start(t, func(c *config.Config) { c.CORSOrigins = "https://app.example" })
	port := ts.SubscriberAddr().String()[strings.LastIndex(ts.SubscriberAddr().String(), ":")+1:]
	cases := []struct {
		name, origin string
		want         int
	}{
		{"no origin (curl)", "", http.StatusCreated},
		{"listed origin", "https://app.example", http.StatusCreated},
		{"the dashboard through localhost", "http://localhost:" + port, http.StatusCreated},
		{"the dashboard through 127.0.0.1", "http://127.0.0.1:" + port, http.StatusCreated},
		{"another site", "https://evil.example", http.StatusForbidden},
		{"another site on the subscriber port", "http://evil.example:" + port, http.StatusForbidden},
		{"loopback on another port", "http://localhost:1", http.StatusForbidden},
		{"null origin", "null", http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var hdr []string
			if c.origin != "" {
				hdr = []string{"Origin", c.origin}
			}
			r := ts.do("POST", "/api/channels/guard/messages", "text/plain", "hi", hdr...)
			if r.status != c.want {
				t.Fatalf("status = %d, want %d: %s", r.status, c.want, r.body)
			}
			acao := r.header.Get("Access-Control-Allow-Origin")
			if c.want == http.StatusCreated && c.origin != "" && acao != c.origin {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", acao, c.origin)
			}
			if c.want == http.StatusForbidden {
				if acao != "" {
					t.Errorf("refused origin got Access-Control-Allow-Origin %q", acao)
				}
				if e := r.errorText(t); !strings.Contains(e, "origin not allowed") {
					t.Errorf("error = %q", e)
				}
			}
		})
	}

	t.Run("preflight", func(t *testing.T) {
		r := ts.do("OPTIONS", "/api/channels/guard/messages", "", nil,
			"Origin", "https://app.example", "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type")
		if r.status != http.StatusNoContent {
			t.Fatalf("preflight status = %d: %s", r.status, r.body)
		}
		if got := r.header.Get("Access-Control-Allow-Methods"); !strings.Contains(got, "POST") {
			t.Errorf("Access-Control-Allow-Methods = %q", got)
		}
		if got := r.header.Get("Access-Control-Allow-Headers"); !strings.Contains(got, "Content-Type") {
			t.Errorf("Access-Control-Allow-Headers = %q", got)
		}
	})

	t.Run("rebound host without token", func(t *testing.T) {
		req, _ := http.NewRequest("GET", ts.base+"/api/stats", nil)
		req.Host = "evil.example:4672"
		resp, err := ts.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("status = %d, want 403", resp.StatusCode)
		}
	})

	t.Run("healthz answers any host", func(t *testing.T) {
		req, _ := http.NewRequest("GET", ts.base+"/healthz", nil)
		req.Host = "lb.internal"
		resp, err := ts.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status = %d, want 200", resp.StatusCode)
		}
	})
}

// TestHostWithToken checks that with a token any Host is answered: the
// token, not the name, protects the API.
func TestHostWithToken(t *testing.T) {
	ts := start(t, func(c *config.Config) { c.APIToken = "s3cret" })
	req, _ := http.NewRequest("GET", ts.base+"/api/stats", nil)
	req.Host = "meteor.internal:4672"
	req.Header.Set("Authorization", "Bearer s3cret")
	resp, err := ts.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", resp.StatusCode)
	}
}

// TestPprof checks that the profiles are served, behind the token.
func TestPprof(t *testing.T) {
	ts := start(t, func(c *config.Config) { c.APIToken = "s3cret" })
	if r := ts.do("GET", "/debug/pprof/heap?debug=1", "", nil); r.status != http.StatusOK || !strings.Contains(string(r.body), "heap profile") {
		t.Errorf("heap profile: %d %.80q", r.status, r.body)
	}
	ts.token = ""
	if r := ts.do("GET", "/debug/pprof/heap?debug=1", "", nil); r.status != http.StatusUnauthorized {
		t.Errorf("heap profile without the token: %d, want 401", r.status)
	}
}

// TestDashboardOriginAndRawPages: the API trusts the dashboard's origin
// (the subscriber port through loopback) only while no mode hands a
// browser publisher text, as it is and without the sandbox header, as a
// page of that origin: a script published there would run with the
// dashboard's trust. A raw mode whose HTTP header ends with bare line
// feeds is sandboxed like the others, and does not cost the dashboard its
// trust; one whose header does not end in HeaderTemplate cannot be
// sandboxed, and does. A reload decides again.
func TestDashboardOriginAndRawPages(t *testing.T) {
	rawMode := func(c *config.Config, name, header string) {
		m := *c.Mode("flashloadvars")
		m.Name, m.HeaderTemplate = name, header
		c.Modes[name] = &m
	}
	ts := start(t, func(c *config.Config) {
		rawMode(c, "lfonly", "HTTP/1.1 ~status~\nContent-Type: text/html\n\n~channelinfo~")
	})
	sub := ts.SubscriberAddr().String()
	dashboard := "http://127.0.0.1:" + sub[strings.LastIndex(sub, ":")+1:]
	publish := func() int {
		t.Helper()
		return ts.do("POST", "/api/channels/guard/messages", "text/plain", "hi", "Origin", dashboard).status
	}
	// pushHeader returns the HTTP header of a subscription in mode.
	pushHeader := func(mode string) http.Header {
		t.Helper()
		resp, err := ts.hc.Get("http://" + sub + "/push/h/" + mode + "/guard")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header
	}

	if h := pushHeader("lfonly"); h.Get("Content-Security-Policy") != "sandbox" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("a raw mode whose header ends with bare LFs is not sandboxed: %v", h)
	}
	if got := publish(); got != http.StatusCreated {
		t.Fatalf("the dashboard, every raw mode sandboxed: %d, want 201", got)
	}

	cfg := *ts.cfg
	cfg.Modes = maps.Clone(ts.cfg.Modes)
	rawMode(&cfg, "open", "HTTP/1.1 ~status~\r\nContent-Type: text/html\r\n~channelinfo~")
	cfg.Mode("open").ChannelInfoTemplate = "\r\n"
	if err := ts.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	if h := pushHeader("open"); h.Get("Content-Type") != "text/html" || h.Get("Content-Security-Policy") != "" {
		t.Fatalf("the unsandboxed mode's header: %v", h)
	}
	if got := publish(); got != http.StatusForbidden {
		t.Errorf("the dashboard's origin while mode open serves raw text unsandboxed: %d, want 403", got)
	}
	if !strings.Contains(ts.log.String(), "does not trust the dashboard's origin: mode open") {
		t.Errorf("the log does not say why the dashboard is not trusted:\n%s", ts.log.String())
	}
	// The page that a published script would be in has no other origin.
	if got := ts.do("POST", "/api/channels/guard/messages", "text/plain", "hi", "Origin", "http://localhost:"+dashboard[len("http://127.0.0.1:"):]).status; got != http.StatusForbidden {
		t.Errorf("the dashboard's origin through localhost: %d, want 403", got)
	}

	if err := ts.Reload(ts.cfg); err != nil {
		t.Fatal(err)
	}
	if got := publish(); got != http.StatusCreated {
		t.Errorf("the dashboard after the mode was removed: %d, want 201", got)
	}
}

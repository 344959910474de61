package api_test

import (
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

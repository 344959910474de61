package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/meteorpush/meteor/internal/config"
)

// moduleSite serves a page of its own origin that imports the ES module
// client from the Meteor server at base, as docs/client.md shows, and
// subscribes with it; window.X records the import's outcome and the
// messages.
func moduleSite(t *testing.T, base *string, module string) *httptest.Server {
	t.Helper()
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>a site that imports the client</title>
<script>window.X = {loaded: false, error: "", got: []};</script>
<script type="module">
import(%q).then((mod) => {
	X.loaded = true;
	const client = new mod.MeteorClient();
	client.subscribe("xm", {}, (m) => X.got.push(m.text));
	client.on("status", (s) => { X.state = s.state; X.transport = s.transport; });
}, (err) => { X.error = String(err); });
</script>`, *base+"/"+module)
	}))
	t.Cleanup(site.Close)
	return site
}

// TestModuleImportCrossOrigin: a page of an origin listed in CORSOrigins
// imports the ES module client from meteord (browsers fetch module
// scripts in CORS mode, so the static files need the CORS header) and
// receives messages with it; a page of an origin not listed cannot import
// it.
func TestModuleImportCrossOrigin(t *testing.T) {
	for _, module := range []string{"meteor.mjs", "meteor.esm.js"} {
		t.Run(module, func(t *testing.T) {
			t.Parallel()
			var base string
			site := moduleSite(t, &base, module)
			m := startServer(t, func(c *config.Config) { c.CORSOrigins = "http://example.invalid " + site.URL })
			base = m.base
			p := openPage(t, site.URL)
			p.wait("the module imported", `X.loaded || X.error !== ""`)
			var errText string
			p.evalInto(`X.error`, &errText)
			if errText != "" {
				t.Fatalf("import from an origin in CORSOrigins failed: %s", errText)
			}
			p.wait("subscribed", `X.state === "open"`)
			m.waitSubscribers(t, p, "xm", 1)
			m.publish(t, "xm", "across origins")
			p.wait("the message", `X.got.length === 1 && X.got[0] === "across origins"`)
			var transport string
			p.evalInto(`X.transport`, &transport)
			if transport != "websocket" {
				t.Errorf("transport %q, want websocket: the client's first choice across origins", transport)
			}
		})
	}

	t.Run("not listed", func(t *testing.T) {
		t.Parallel()
		var base string
		site := moduleSite(t, &base, "meteor.mjs")
		m := startServer(t, func(c *config.Config) { c.CORSOrigins = "http://example.invalid" })
		base = m.base
		p := openPage(t, site.URL)
		p.wait("the import refused", `X.error !== ""`)
		var loaded bool
		p.evalInto(`X.loaded`, &loaded)
		if loaded {
			t.Errorf("a page of an origin not in CORSOrigins imported the client")
		}
	})
}

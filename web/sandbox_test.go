package web_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRawModeSandboxed: a message published with a "<script>" and opened
// in a browser from a raw mode (flashloadvars pastes text as it is into a
// text/html answer) does not run as a page of the subscriber origin, which
// the HTTP API trusts for the dashboard: it cannot publish through the API
// (without APIToken, the API trusts that origin alone).
func TestRawModeSandboxed(t *testing.T) {
	t.Parallel()
	m := startServer(t, nil)
	api := "http://" + m.srv.AdminAddr().String()
	script := fmt.Sprintf(`<script>fetch(%q, {method: "POST", body: "from a published script"}).then(function () { document.title = "sent"; });</script>`,
		api+"/api/channels/pwned/messages")
	m.publish(t, "evil", script)

	p := openPage(t, m.base+"/push/h/flashloadvars/evil.b1")
	var body string
	p.evalInto(`document.documentElement.outerHTML`, &body)
	if !strings.Contains(body, "fetch(") {
		t.Fatalf("the page does not hold the published script: %.300s", body)
	}
	var origin string
	p.evalInto(`self.origin`, &origin)
	if origin != "null" {
		t.Errorf("the raw mode's page has origin %q, want the opaque origin null (sandboxed)", origin)
	}
	// Bounded: a script that ran would have published within a second.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(api + "/api/channels/pwned")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), "from a published script") {
			t.Fatalf("a published script ran on the subscriber origin and published through the API: %s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

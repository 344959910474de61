package subscriber_test

import (
	"strings"
	"testing"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/subscriber"
)

const corsLines = "Access-Control-Allow-Origin: https://app.example\r\nVary: Origin\r\n"

// TestCORS: an allowed origin gets its CORS headers on every transport; a
// denied one gets none (the browser then hides the response); a preflight
// from an allowed origin is answered with 204.
func TestCORS(t *testing.T) {
	ts := mStart(t, func(c *config.Config) { c.CORSOrigins = "https://other.example, https://app.example/" })
	c := ts.get("/sse/c", "Origin: https://app.example")
	if got, want := c.header(), streamHeader("text/event-stream", corsLines); got != want {
		t.Fatalf("sse header %q, want %q", got, want)
	}
	c = ts.get("/ndjson/c", "Origin: https://app.example")
	if got, want := c.header(), streamHeader("application/x-ndjson", corsLines); got != want {
		t.Fatalf("ndjson header %q, want %q", got, want)
	}
	c = ts.get("/poll/c?timeout=0", "Origin: https://app.example")
	c.expectPoll("application/json", `{"messages":[],"cursor":"c:0"}`, corsLines)

	for _, origin := range []string{"https://evil.example", "https://app.example.evil", "null"} {
		c = ts.get("/sse/c", "Origin: "+origin)
		if got, want := c.header(), streamHeader("text/event-stream"); got != want {
			t.Fatalf("origin %s: header %q, want %q", origin, got, want)
		}
	}

	c = ts.request("OPTIONS", "/sse/c", "Origin: https://app.example", "Access-Control-Request-Method: GET", "Access-Control-Request-Headers: last-event-id")
	want := "HTTP/1.1 204 No Content\r\nServer: meteord\r\n" + corsLines +
		"Access-Control-Allow-Methods: GET\r\nAccess-Control-Allow-Headers: Last-Event-ID, Content-Type, Authorization\r\nAccess-Control-Max-Age: 600\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
	if got := c.header(); got != want {
		t.Fatalf("preflight %q, want %q", got, want)
	}
	c.eof()
	c = ts.request("OPTIONS", "/sse/c", "Origin: https://evil.example", "Access-Control-Request-Method: GET")
	if got := c.header(); strings.Contains(got, "Access-Control") || strings.HasPrefix(got, "HTTP/1.1 204") {
		t.Fatalf("preflight from a denied origin: %q", got)
	}
}

// TestCORSAny: "*" allows any origin, echoed.
func TestCORSAny(t *testing.T) {
	ts := mStart(t, func(c *config.Config) { c.CORSOrigins = "*" })
	c := ts.get("/poll/c?timeout=0", "Origin: https://app.example")
	c.expectPoll("application/json", `{"messages":[],"cursor":"c:0"}`, corsLines)
	// No Origin (not a browser): no CORS headers.
	c = ts.get("/poll/c?timeout=0")
	c.expectPoll("application/json", `{"messages":[],"cursor":"c:0"}`)
}

// TestPublisherDocuments: which configurations let a browser open
// publisher text, as it is, as a page of the subscriber origin. The
// built-in flash mode sends an HTTP/0.9 answer, which browsers load only on
// ports 80 and 443; flashloadvars is sandboxed; a raw global mode whose
// HTTP header does not end in its HeaderTemplate cannot be, and is found by
// its empty name.
func TestPublisherDocuments(t *testing.T) {
	cfg := config.Defaults()
	set, err := subscriber.NewSettings(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		port int
		mode string
		ok   bool
	}{{4670, "", false}, {8080, "", false}, {80, "flash", true}, {443, "flash", true}} {
		if mode, ok := set.PublisherDocuments(tt.port); mode != tt.mode || ok != tt.ok {
			t.Errorf("built-in modes on port %d: %q, %v; want %q, %v", tt.port, mode, ok, tt.mode, tt.ok)
		}
	}
	cfg.Default.TextEncoding = "raw"
	if set, err = subscriber.NewSettings(cfg, nil); err != nil {
		t.Fatal(err)
	}
	if mode, ok := set.PublisherDocuments(4670); ok {
		t.Errorf("a raw global mode with an HTTP header (sandboxed): %q, %v; want none", mode, ok)
	}
	cfg.Default.HeaderTemplate = "HTTP/1.1 ~status~\r\n~channelinfo~"
	if set, err = subscriber.NewSettings(cfg, nil); err != nil {
		t.Fatal(err)
	}
	if mode, ok := set.PublisherDocuments(4670); mode != "" || !ok {
		t.Errorf("a raw global mode: %q, %v; want the global mode", mode, ok)
	}
}

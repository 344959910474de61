package server

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/web"
)

// docHeader is the header 1.06 sent with a static file.
func docHeader(status, contentType string, n int) string {
	return "HTTP/1.1 " + status + "\r\nServer: meteord\r\nContent-Type: " + contentType + "; charset=utf-8\r\n" +
		"Pragma: no-cache\r\nCache-Control: no-cache, no-store, must-revalidate\r\n" +
		"Expires: Thu, 1 Jan 1970 00:00:00 GMT\r\nContent-length: " + strconv.Itoa(n) + "\r\n\r\n"
}

func TestBuiltinFiles(t *testing.T) {
	ts := start(t, nil)
	js, err := fs.ReadFile(web.Files(), "meteor.js")
	if err != nil {
		t.Fatal(err)
	}
	index, err := fs.ReadFile(web.Files(), "index.html")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, want string }{
		{"/meteor.js", docHeader("200 OK", "text/javascript", len(js)) + string(js)},
		{"/meteor.js?v=3", docHeader("200 OK", "text/javascript", len(js)) + string(js)},
		{"/", docHeader("200 OK", "text/html", len(index)) + string(index)},
		{"/index.html", docHeader("200 OK", "text/html", len(index)) + string(index)},
		{"/nosuch.js", docHeader("404 Not Found", "text/html", 0)},
		{"/push", docHeader("404 Not Found", "text/html", 0)},
	}
	for _, tt := range tests {
		if got := ts.get(tt.path).readAll(); got != tt.want {
			t.Errorf("GET %s:\n got %.300q\nwant %.300q", tt.path, got, tt.want)
		}
	}
	// Without the built-in files there is nothing to serve.
	ts2 := start(t, func(cfg *config.Config) { cfg.BuiltinFiles = false })
	if got, want := ts2.get("/meteor.js").readAll(), docHeader("404 Not Found", "text/html", 0); got != want {
		t.Errorf("BuiltinFiles 0: GET /meteor.js = %q", got)
	}
}

func TestDocumentRoot(t *testing.T) {
	root := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("meteor.js", "// mine\n")
	write("index.html", "<p>root</p>")
	write("sub/index.html", "<p>sub</p>")
	write("sub/a.txt", "text")
	write("Up_per-1.2.HTML", "ok")
	ts := start(t, func(cfg *config.Config) { cfg.SubscriberDocumentRoot = root })
	ok := func(ct, body string) string { return docHeader("200 OK", ct, len(body)) + body }
	notFound := docHeader("404 Not Found", "text/html", 0)
	tests := []struct{ path, want string }{
		{"/meteor.js", ok("text/javascript", "// mine\n")},
		{"/", ok("text/html", "<p>root</p>")},
		{"/sub", ok("text/html", "<p>sub</p>")},
		{"/sub/", ok("text/html", "<p>sub</p>")},
		{"/sub/a.txt", ok("text/html", "text")},
		{"/Up_per-1.2.HTML", ok("text/html", "ok")},
		{"/stream.html", ""}, // built in, beneath the root: checked below
		{"/missing.html", notFound},
		// Paths outside 1.06's rule are answered as 1.06 answered them,
		// as missing files.
		{"/sub/../index.html", notFound},
		{"/..", notFound},
		{"/../etc/passwd", notFound},
		{"/a/../../etc/passwd", notFound},
		{"/a..b", notFound},
		{"/a%20b", notFound},
		{"/a~b", notFound},
		{"/a;b", notFound},
		{"/%2e%2e/etc/passwd", notFound},
		{"/%2E%2E/etc/passwd", notFound},
	}
	for _, tt := range tests {
		got := ts.get(tt.path).readAll()
		switch {
		case tt.want == "":
			if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\n") || !strings.Contains(got, "Content-Type: text/html") {
				t.Errorf("GET %s: %.100q", tt.path, got)
			}
		case got != tt.want:
			t.Errorf("GET %s:\n got %q\nwant %q", tt.path, got, tt.want)
		}
	}

	// Files are cached until ClearDocuments or a reload.
	write("meteor.js", "// changed\n")
	write("new.html", "new")
	if got := ts.get("/meteor.js").readAll(); got != ok("text/javascript", "// mine\n") {
		t.Errorf("cached file: got %q", got)
	}
	if got := ts.get("/new.html").readAll(); got != ok("text/html", "new") {
		t.Errorf("a file not served before is read from disk: got %q", got)
	}
	ts.ClearDocuments()
	if got := ts.get("/meteor.js").readAll(); got != ok("text/javascript", "// changed\n") {
		t.Errorf("after ClearDocuments: got %q", got)
	}
	write("meteor.js", "// again\n")
	cfg := testConfig()
	cfg.SubscriberDocumentRoot = root
	if err := ts.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if got := ts.get("/meteor.js").readAll(); got != ok("text/javascript", "// again\n") {
		t.Errorf("after Reload: got %q", got)
	}
	st := ts.controller().Cmd("SHOWSTATS")
	// missing.html and the ten paths outside the rule.
	for _, want := range []string{"documents_served: ", "documents_not_found: 11"} {
		found := false
		for _, l := range st {
			found = found || l == want || strings.HasSuffix(want, " ") && strings.HasPrefix(l, want)
		}
		if !found {
			t.Errorf("SHOWSTATS has no %q line: %q", want, st)
		}
	}
}

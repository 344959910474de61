package subscriber

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
)

// errBadPath means a static path breaks the rules: only [A-Za-z0-9._/-]
// and never "..".
var errBadPath = errors.New("bad path")

// document is a static file held in memory.
type document struct {
	body        []byte
	contentType string
}

// documents serves static files from a document root, falling back to the
// built-in files, and caches them until Reset.
type documents struct {
	root    string // "" or "/": none from disk
	builtin fs.FS  // nil: none built in
	index   string

	mu    sync.Mutex
	cache map[string]*document // guarded by mu; by cleaned path
}

func newDocuments(root string, builtin fs.FS, index string) *documents {
	if index == "" {
		index = "index.html"
	}
	return &documents{root: root, builtin: builtin, index: index, cache: make(map[string]*document)}
}

// cleanPath applies Meteor 1.06's rules to a request path: strip leading
// and trailing slashes, allow only [A-Za-z0-9._/-], refuse "..".
func cleanPath(p string) (string, error) {
	p = strings.Trim(p, "/")
	if strings.Contains(p, "..") {
		return "", errBadPath
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '/' || c == '-') {
			return "", errBadPath
		}
	}
	return p, nil
}

// get returns the document for a request path, or nil.
func (d *documents) get(reqPath string) (*document, error) {
	p, err := cleanPath(reqPath)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	doc, ok := d.cache[p]
	d.mu.Unlock()
	if ok {
		return doc, nil
	}
	doc = d.load(p)
	if doc != nil {
		d.mu.Lock()
		d.cache[p] = doc
		d.mu.Unlock()
	}
	return doc, nil
}

func (d *documents) load(p string) *document {
	if d.root != "" && d.root != "/" {
		full := d.root + "/" + p
		if st, err := os.Stat(full); err == nil && st.IsDir() {
			full += "/" + d.index
		}
		if body, err := os.ReadFile(full); err == nil {
			return &document{body: body, contentType: contentType(full)}
		}
	}
	if d.builtin != nil {
		name := p
		if name == "" {
			name = "."
		}
		if st, err := fs.Stat(d.builtin, name); err == nil && st.IsDir() {
			name = path.Join(name, d.index)
		}
		if body, err := fs.ReadFile(d.builtin, name); err == nil {
			return &document{body: body, contentType: contentType(name)}
		}
	}
	return nil
}

// contentType is Meteor 1.06's rule, .js is JavaScript and everything else
// HTML, extended with the types today's pages load: ES modules (which
// browsers refuse as text/html), style sheets, JSON and TypeScript
// declarations.
func contentType(name string) string {
	switch path.Ext(name) {
	case ".js", ".mjs":
		return "text/javascript"
	case ".css":
		return "text/css"
	case ".json", ".map":
		return "application/json"
	case ".ts":
		return "text/plain"
	case ".svg":
		return "image/svg+xml"
	}
	return "text/html"
}

// documentHeader renders the fixed header Meteor 1.06 sends with a static
// file or a missing one, with extra header lines (CORS) before its end.
func documentHeader(status, server, contentType string, length int, extra []byte) []byte {
	b := make([]byte, 0, 256)
	b = append(b, "HTTP/1.1 "...)
	b = append(b, status...)
	b = append(b, "\r\nServer: "...)
	b = append(b, server...)
	b = append(b, "\r\nContent-Type: "...)
	b = append(b, contentType...)
	b = append(b, "; charset=utf-8\r\nPragma: no-cache\r\nCache-Control: no-cache, no-store, must-revalidate\r\nExpires: Thu, 1 Jan 1970 00:00:00 GMT\r\nContent-length: "...)
	b = strconv.AppendInt(b, int64(length), 10)
	b = append(b, "\r\n"...)
	b = append(b, extra...)
	return append(b, "\r\n"...)
}

// reset drops the cache.
func (d *documents) reset() {
	d.mu.Lock()
	d.cache = make(map[string]*document)
	d.mu.Unlock()
}

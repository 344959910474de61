package rawhttp

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// FuzzCheckRequest: what the subscriber port accepts of a request head,
// ReadRequest then checkRequest, never panics, and an accepted request has
// a Host (HTTP/1.1), header names that are tokens, and a query that
// url.ParseQuery reads whole (no pair dropped).
func FuzzCheckRequest(f *testing.F) {
	for _, s := range []string{
		"GET /sse/chat?since=chat:1 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /push/h/stream/chat.r5?token=a.b.c HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer x\r\n\r\n",
		"GET /poll/a?since=x:1;y:2 HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n",
		"GET /?a=%zz HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://b/x HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b)))
		if err != nil {
			return
		}
		if err := checkRequest(r); err != nil {
			return
		}
		if r.ProtoAtLeast(1, 1) && r.Host == "" {
			t.Fatalf("accepted HTTP/1.1 without a Host: %q", b)
		}
		for k := range r.Header {
			if !validHeaderName(k) || strings.ContainsAny(k, " \t") {
				t.Fatalf("accepted header name %q", k)
			}
		}
		if strings.Contains(r.URL.RawQuery, ";") {
			t.Fatalf("accepted a ';' in the query %q", r.URL.RawQuery)
		}
		if _, err := url.ParseQuery(r.URL.RawQuery); err != nil {
			t.Fatalf("accepted a query that does not parse: %q: %v", r.URL.RawQuery, err)
		}
	})
}

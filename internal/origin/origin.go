// Package origin decides which browser origins may use the server across
// origins: the CORSOrigins setting, shared by the subscriber transports and
// the HTTP API.
package origin

import (
	"net"
	"net/url"
	"strconv"
	"strings"
)

// Valid reports whether origin can be echoed in a response header: not
// empty, not too long, printable ASCII without spaces.
func Valid(origin string) bool {
	if origin == "" || len(origin) > 256 {
		return false
	}
	for i := 0; i < len(origin); i++ {
		if origin[i] <= ' ' || origin[i] >= 0x7f {
			return false
		}
	}
	return true
}

// Listed reports whether origin is in list, a space- or comma-separated
// CORSOrigins value where "*" allows any origin.
func Listed(list, origin string) bool {
	if !Valid(origin) {
		return false
	}
	for o := range strings.FieldsFuncSeq(list, func(r rune) bool { return r == ' ' || r == ',' }) {
		if o == "*" || strings.EqualFold(strings.TrimRight(o, "/"), origin) {
			return true
		}
	}
	return false
}

// LoopbackHost reports whether host (a Host header or a URL's host, with or
// without a port) names this machine's loopback: localhost, 127.0.0.0/8 or
// ::1.
func LoopbackHost(host string) bool {
	h := host
	if sh, _, err := net.SplitHostPort(host); err == nil {
		h = sh
	}
	h = strings.Trim(h, "[]")
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// SamePort reports whether origin is a loopback origin on the given port:
// a page served by this server's own subscriber listener, such as the
// dashboard, reached through localhost.
func SamePort(origin string, port int) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	if !LoopbackHost(u.Host) {
		return false
	}
	p := u.Port()
	if p == "" {
		p = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return p == strconv.Itoa(port)
}

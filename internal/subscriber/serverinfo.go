package subscriber

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/meteorpush/meteor/internal/origin"
	"github.com/meteorpush/meteor/internal/stats"
)

// ServerInfoPath is where the subscriber listener describes the server to
// the dashboard, when BuiltinFiles is on (docs/dashboard.md).
const ServerInfoPath = "/meteor/server.json"

// Listeners is what the server tells ServerInfo about its other listeners:
// their settings and the ports they really listen on (which differ from
// the settings when those are 0). It holds no secret.
type Listeners struct {
	APIOn          bool   // AdminAPI
	AdminIP        string // AdminIP as configured: "" or "*" for every interface
	AdminPort      int    // the API listener's real port
	APIToken       bool   // APIToken is set
	ControllerIP   string // ControllerIP as configured
	ControllerPort int    // the controller listener's real port
	UDPIP          string // UDPIP as configured
	UDPPort        int    // the UDP listener's real port; 0: off
	// ControllerToken is whether ControllerToken is set: the controller
	// wants AUTH <token> first.
	ControllerToken bool
}

// Endpoint is a listener's address as a shell on the server reaches it.
type Endpoint struct {
	Host string `json:"host"`
	Port int    `json:"port"`
}

// ServerInfo is the JSON document GET /meteor/server.json answers, for the
// dashboard (web/public/index.html) to find its own server whatever the
// settings:
//
//   - api: the HTTP API's base URL, "http://host:port", or null when
//     AdminAPI is off. The host is AdminIP, except when AdminIP is every
//     interface, or loopback and the page was reached through loopback:
//     then it is the host the request came to (so that the page's origin
//     and the API's host agree, localhost with localhost).
//   - apiToken: whether the API wants "Authorization: Bearer"; never the
//     token itself.
//   - controller: the controller's host and port, for a shell on the
//     server (every interface is shown as 127.0.0.1).
//   - udp: the UDP controller's host and port, or null when it is off.
//   - time: the server's clock, Unix milliseconds, so that the page can
//     measure latencies against the server's clock rather than its own.
//   - controllerToken: whether the controller wants AUTH <token> first;
//     never the token itself.
type ServerInfo struct {
	API        *string   `json:"api"`
	APIToken   bool      `json:"apiToken"`
	Controller Endpoint  `json:"controller"`
	UDP        *Endpoint `json:"udp"`
	Time       int64     `json:"time"`
	// ControllerToken: the controller wants AUTH <token> first.
	ControllerToken bool `json:"controllerToken"`
}

// SetListeners tells the server, before Serve, what ServerInfo reports.
func (s *Server) SetListeners(l Listeners) { s.listeners.Store(&l) }

// anyIP reports whether an IP setting means every interface.
func anyIP(ip string) bool {
	if ip == "" || ip == "*" {
		return true
	}
	p := net.ParseIP(strings.Trim(ip, "[]"))
	return p != nil && p.IsUnspecified()
}

// shellHost is the host a shell on the server reaches a listener on ip at.
func shellHost(ip string) string {
	if anyIP(ip) {
		return "127.0.0.1"
	}
	return strings.Trim(ip, "[]")
}

// NewServerInfo describes the listeners l to a page requested through
// reqHost (the request's Host header), at now.
func NewServerInfo(l Listeners, reqHost string, now time.Time) ServerInfo {
	info := ServerInfo{
		APIToken:   l.APIOn && l.APIToken,
		Controller: Endpoint{Host: shellHost(l.ControllerIP), Port: l.ControllerPort},
		Time:       now.UnixMilli(),

		ControllerToken: l.ControllerToken,
	}
	if l.UDPPort > 0 {
		info.UDP = &Endpoint{Host: shellHost(l.UDPIP), Port: l.UDPPort}
	}
	if l.APIOn {
		host := strings.Trim(l.AdminIP, "[]")
		rh := reqHost
		if h, _, err := net.SplitHostPort(reqHost); err == nil {
			rh = h
		}
		rh = strings.Trim(rh, "[]")
		if !hostChars(rh) {
			rh = ""
		}
		if rh != "" && (anyIP(l.AdminIP) || origin.LoopbackHost(l.AdminIP) && origin.LoopbackHost(rh)) {
			host = rh
		} else if anyIP(l.AdminIP) {
			host = "127.0.0.1"
		}
		u := "http://" + net.JoinHostPort(host, strconv.Itoa(l.AdminPort))
		info.API = &u
	}
	return info
}

// hostChars reports whether h has only the characters of a host name or
// an IP address, so that no Host header puts anything else in the URL.
func hostChars(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':') {
			return false
		}
	}
	return true
}

// serverInfo answers GET /meteor/server.json.
func (s *Server) serverInfo(w http.ResponseWriter, r *http.Request, set *Settings) {
	var l Listeners
	if p := s.listeners.Load(); p != nil {
		l = *p
	}
	body, _ := json.Marshal(NewServerInfo(l, r.Host, time.Now()))
	body = append(body, '\n')
	s.stats.Inc(stats.DocumentsServed)
	b := documentHeader("200 OK", ServerName, "application/json", len(body), nil)
	s.reply(w, append(b, body...), set.WriteTimeout)
}

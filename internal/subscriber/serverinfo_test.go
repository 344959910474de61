package subscriber_test

import (
	"encoding/json"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/subscriber"
)

// TestNewServerInfo: the document names the API at the host the page came
// to when the API listens on loopback or every interface, at AdminIP
// otherwise; says whether a token is needed without ever carrying it; and
// gives the controller and UDP addresses a shell on the server uses.
func TestNewServerInfo(t *testing.T) {
	now := time.UnixMilli(1795641900351)
	base := subscriber.Listeners{APIOn: true, AdminIP: "127.0.0.1", AdminPort: 5672, ControllerIP: "127.0.0.1", ControllerPort: 5671}
	for _, tc := range []struct {
		name    string
		edit    func(*subscriber.Listeners)
		reqHost string
		want    string
	}{
		{"loopback through localhost", nil, "localhost:5670",
			`{"api":"http://localhost:5672","apiToken":false,"controller":{"host":"127.0.0.1","port":5671},"udp":null,"time":1795641900351,"controllerToken":false}`},
		{"loopback through 127.0.0.1", nil, "127.0.0.1:5670",
			`{"api":"http://127.0.0.1:5672","apiToken":false,"controller":{"host":"127.0.0.1","port":5671},"udp":null,"time":1795641900351,"controllerToken":false}`},
		{"loopback through ::1", nil, "[::1]:5670",
			`{"api":"http://[::1]:5672","apiToken":false,"controller":{"host":"127.0.0.1","port":5671},"udp":null,"time":1795641900351,"controllerToken":false}`},
		{"loopback through another name", nil, "push.example:5670",
			`{"api":"http://127.0.0.1:5672","apiToken":false,"controller":{"host":"127.0.0.1","port":5671},"udp":null,"time":1795641900351,"controllerToken":false}`},
		{"every interface, token, UDP", func(l *subscriber.Listeners) {
			l.AdminIP, l.APIToken, l.ControllerIP, l.UDPIP, l.UDPPort = "*", true, "", "0.0.0.0", 5673
		}, "push.example:5670",
			`{"api":"http://push.example:5672","apiToken":true,"controller":{"host":"127.0.0.1","port":5671},"udp":{"host":"127.0.0.1","port":5673},"time":1795641900351,"controllerToken":false}`},
		{"every interface, a Host header that is no host", func(l *subscriber.Listeners) { l.AdminIP, l.APIToken = "::", true }, `evil/"x`,
			`{"api":"http://127.0.0.1:5672","apiToken":true,"controller":{"host":"127.0.0.1","port":5671},"udp":null,"time":1795641900351,"controllerToken":false}`},
		{"a given address", func(l *subscriber.Listeners) { l.AdminIP, l.APIToken, l.ControllerIP = "10.1.2.3", true, "10.1.2.4" }, "localhost:5670",
			`{"api":"http://10.1.2.3:5672","apiToken":true,"controller":{"host":"10.1.2.4","port":5671},"udp":null,"time":1795641900351,"controllerToken":false}`},
		{"API off", func(l *subscriber.Listeners) { l.APIOn, l.APIToken = false, true }, "localhost:5670",
			`{"api":null,"apiToken":false,"controller":{"host":"127.0.0.1","port":5671},"udp":null,"time":1795641900351,"controllerToken":false}`},
	} {
		l := base
		if tc.edit != nil {
			tc.edit(&l)
		}
		b, err := json.Marshal(subscriber.NewServerInfo(l, tc.reqHost, now))
		if err != nil {
			t.Fatal(err)
		}
		if string(b) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, b, tc.want)
		}
	}
}

// TestServerInfoServed: a running server answers /meteor/server.json on
// its subscriber port with its real ports (the settings are 0) and no
// token, and only when BuiltinFiles is on.
func TestServerInfoServed(t *testing.T) {
	const token = "s3cret-token-value"
	ts := mStart(t, func(c *config.Config) {
		c.APIToken = token
	})
	c := ts.get(subscriber.ServerInfoPath) // Host: meteor.test
	h := c.header()
	if !strings.HasPrefix(h, "HTTP/1.1 200 OK\r\n") || !strings.Contains(h, "Content-Type: application/json; charset=utf-8\r\n") ||
		!strings.Contains(h, "Cache-Control: no-cache, no-store") {
		t.Fatalf("header %q", h)
	}
	body := c.body()
	if strings.Contains(body, token) {
		t.Fatalf("the document carries the token: %s", body)
	}
	var info subscriber.ServerInfo
	if err := json.Unmarshal([]byte(body), &info); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	apiPort := ts.AdminAddr().(*net.TCPAddr).Port
	// The API listens on 127.0.0.1, which meteor.test may not be.
	if info.API == nil || *info.API != "http://127.0.0.1:"+strconv.Itoa(apiPort) {
		t.Errorf("api %v, want http://127.0.0.1:%d (%s)", info.API, apiPort, body)
	}
	if !info.APIToken {
		t.Errorf("apiToken false with a token set (%s)", body)
	}
	if want := (subscriber.Endpoint{Host: "127.0.0.1", Port: ts.ControllerAddr().(*net.TCPAddr).Port}); info.Controller != want || want.Port == 0 {
		t.Errorf("controller %+v, want %+v", info.Controller, want)
	}
	if info.UDP != nil {
		t.Errorf("udp %+v with UDPPort 0 (off)", info.UDP)
	}
	if d := time.Since(time.UnixMilli(info.Time)); d < -time.Minute || d > time.Minute {
		t.Errorf("time %d is %v from now", info.Time, d)
	}

	off := mStart(t, func(c *config.Config) { c.BuiltinFiles = false })
	if h := off.get(subscriber.ServerInfoPath).header(); !strings.HasPrefix(h, "HTTP/1.1 404 ") {
		t.Errorf("with BuiltinFiles 0: %q, want a 404", h)
	}
}

package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/meteorpush/meteor/internal/config"
)

// TestAccessLog: with AccessLog 1 every API request, refused ones too, gets
// one access line with its status and size once answered; with 0, none; a
// reload turns it on.
func TestAccessLog(t *testing.T) {
	ts := start(t, func(c *config.Config) { c.APIToken = "secret" })
	ts.do("GET", "/api/stats", "", nil)
	if strings.Contains(ts.log.String(), "msg=access") {
		t.Fatalf("AccessLog 0 logged an access line:\n%s", ts.log.String())
	}

	ts.cfg.AccessLog = true
	if err := ts.Reload(ts.cfg); err != nil {
		t.Fatal(err)
	}
	if r := ts.do("POST", "/api/channels/demo/messages", "text/plain", "hello"); r.status != http.StatusCreated && r.status != http.StatusOK {
		t.Fatalf("publish: %d", r.status)
	}
	ts.do("GET", "/api/nothing", "", nil)
	ts.token = ""
	ts.do("GET", "/api/stats?x=1", "", nil)
	log := ts.log.String()
	for _, want := range []string{
		`msg=access ip=127.0.0.1 method=POST uri=/api/channels/demo/messages status=20`,
		`msg=access ip=127.0.0.1 method=GET uri=/api/nothing status=404 bytes=`,
		`msg=access ip=127.0.0.1 method=GET uri="/api/stats?x=1" status=401 bytes=`,
		`useragent=Go-http-client/1.1`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("no %q in the log:\n%s", want, log)
		}
	}
	if n := strings.Count(log, "msg=access"); n != 3 {
		t.Errorf("%d access lines, want 3:\n%s", n, log)
	}
	if strings.Contains(log, "bytes=0 ") {
		// Every answer here has a JSON body.
		t.Errorf("an access line counted no bytes:\n%s", log)
	}
}

package metrics

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/version"
)

// TestNilSafe checks that code without metrics can call every method.
func TestNilSafe(t *testing.T) {
	var m *Metrics
	m.Published(1)
	m.Subscribed(1)
	m.GaugeFunc("x", "x", func() float64 { return 1 })
	tr := m.For(SSE)
	if tr != nil {
		t.Fatal("For on nil Metrics returned a Transport")
	}
	tr.Connected()
	tr.Delivered(1, 10, time.Now())
	tr.Sent(3)
	tr.Closed("slowConsumer")
}

// TestValues checks that the exported series move with the calls.
func TestValues(t *testing.T) {
	m := New()
	m.Published(3)
	m.Subscribed(2)
	tr := m.For(WebSocket)
	tr.Connected()
	tr.Connected()
	tr.Closed("slowConsumer")
	tr.Delivered(4, 100, time.Now())
	tr.Delivered(2, 50, time.Time{}) // history: no latency
	tr.Sent(7)
	m.GaugeFunc("meteor_test_gauge", "test", func() float64 { return 42 })
	if m.For("nope") != nil {
		t.Error("For(unknown) should be nil")
	}

	b := version.Get()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{
		"meteor_messages_published_total 3",
		"meteor_subscriptions 2",
		`meteor_connections{transport="websocket"} 1`,
		`meteor_subscriber_closes_total{reason="slowConsumer",transport="websocket"} 1`,
		`meteor_messages_delivered_total{transport="websocket"} 6`,
		`meteor_bytes_sent_total{transport="websocket"} 157`,
		`meteor_delivery_latency_seconds_count{transport="websocket"} 1`,
		"meteor_test_gauge 42",
		"go_goroutines",
		fmt.Sprintf(`meteor_build_info{commit=%q,date=%q,goversion=%q,version=%q} 1`, b.Commit, b.Date, b.GoVersion, b.Version),
	} {
		if !strings.Contains(string(body), want+"\n") && !strings.Contains(string(body), want+" ") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

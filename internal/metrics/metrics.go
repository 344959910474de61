// Package metrics exposes the server's Prometheus metrics. Every method is
// safe on a nil *Metrics or nil *Transport, so code under test may run
// without metrics.
package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/meteorpush/meteor/internal/version"
)

// Transport names, the values of the "transport" label.
const (
	Legacy    = "legacy" // Meteor 1.06 template modes
	SSE       = "sse"
	WebSocket = "websocket"
	NDJSON    = "ndjson"
	LongPoll  = "longpoll" // JSON long-poll
)

// Metrics holds the collectors of one server.
type Metrics struct {
	reg           *prometheus.Registry
	published     prometheus.Counter
	subscriptions prometheus.Gauge
	connections   *prometheus.GaugeVec
	delivered     *prometheus.CounterVec
	bytes         *prometheus.CounterVec
	closes        *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	refused       prometheus.Counter
	limited       *prometheus.CounterVec
	maxConns      prometheus.Gauge
	authRefused   *prometheus.CounterVec
	pubRefused    *prometheus.CounterVec
	conflated     prometheus.Counter
	transports    map[string]*Transport
}

// New creates the collectors and registers them, with the Go runtime and
// process collectors, in a registry of their own.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meteor_messages_published_total", Help: "Messages published, by any means.",
		}),
		subscriptions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meteor_subscriptions", Help: "Channel subscriptions of connected clients.",
		}),
		connections: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "meteor_connections", Help: "Open subscriber connections, by transport.",
		}, []string{"transport"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meteor_messages_delivered_total", Help: "Messages written to subscribers, by transport.",
		}, []string{"transport"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meteor_bytes_sent_total", Help: "Bytes written to subscribers, by transport.",
		}, []string{"transport"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meteor_subscriber_closes_total", Help: "Subscriber connections closed, by transport and reason (slowConsumer, writeTimeout, remoteClosed, ...).",
		}, []string{"transport", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "meteor_delivery_latency_seconds",
			Help:    "Time from a message's publication to its hand-off to a subscriber's socket, live messages only, by transport.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"transport"}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meteor_subscriber_refused_total", Help: "Subscriber connections refused at accept because this process held MaxConnections.",
		}),
		limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meteor_subscriber_limited_total", Help: "Subscriber requests refused with 429 by a per-address limit: limit is maxConnectionsPerIP or connectionRatePerIP.",
		}, []string{"limit"}),
		maxConns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "meteor_subscriber_max_connections", Help: "The subscriber connections this process may hold (MaxConnections, or derived from the open-files limit); 0: no cap.",
		}),
		authRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meteor_subscriber_auth_refused_total", Help: "Subscriptions refused or ended by SubscriberAuth, by the check that failed: missing, malformed, signature, algorithm, expired, not yet valid, audience, channel.",
		}, []string{"reason"}),
		pubRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "meteor_publish_refused_total", Help: "Messages refused at publication, by reason: too large (MaxMessageBytes), rate (PublishRate of the channel), credential rate (PublishRatePerCredential).",
		}, []string{"reason"}),
		conflated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "meteor_conflated_total", Help: "Messages of conflated channels (ConflateInterval) not sent to this node's subscribers because a newer one replaced them within the interval.",
		}),
		transports: make(map[string]*Transport),
	}
	b := version.Get()
	buildInfo := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "meteor_build_info", Help: "Always 1; the labels say which build is running: version, commit, date (the commit's), goversion.",
		ConstLabels: prometheus.Labels{"version": b.Version, "commit": b.Commit, "date": b.Date, "goversion": b.GoVersion},
	})
	buildInfo.Set(1)
	m.reg.MustRegister(buildInfo, m.published, m.subscriptions, m.connections, m.delivered, m.bytes, m.closes, m.latency, m.refused, m.limited, m.maxConns,
		m.authRefused, m.pubRefused, m.conflated,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, name := range []string{Legacy, SSE, WebSocket, NDJSON, LongPoll} {
		m.transports[name] = &Transport{
			connections: m.connections.WithLabelValues(name),
			delivered:   m.delivered.WithLabelValues(name),
			bytes:       m.bytes.WithLabelValues(name),
			latency:     m.latency.WithLabelValues(name),
			closes:      m.closes.MustCurryWith(prometheus.Labels{"transport": name}),
		}
	}
	return m
}

// Registry returns the registry, for collectors added by other packages.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// Published counts n published messages.
func (m *Metrics) Published(n int) {
	if m != nil {
		m.published.Add(float64(n))
	}
}

// Subscribed adds n (which may be negative) to the subscriptions gauge.
func (m *Metrics) Subscribed(n int) {
	if m != nil {
		m.subscriptions.Add(float64(n))
	}
}

// Limited counts a subscriber request refused by a per-address limit.
func (m *Metrics) Limited(limit string) {
	if m != nil {
		m.limited.WithLabelValues(limit).Inc()
	}
}

// AuthRefused counts a subscription refused (or a connection ended) by
// SubscriberAuth; check is the auth.Error Check that failed.
func (m *Metrics) AuthRefused(check string) {
	if m != nil {
		m.authRefused.WithLabelValues(check).Inc()
	}
}

// PublishRefused counts n messages refused at publication for reason ("too
// large", "rate", "credential rate").
func (m *Metrics) PublishRefused(reason string, n int) {
	if m != nil {
		m.pubRefused.WithLabelValues(reason).Add(float64(n))
	}
}

// Conflated counts n messages a conflated channel did not send to this
// node's subscribers because a newer one replaced them.
func (m *Metrics) Conflated(n int) {
	if m != nil {
		m.conflated.Add(float64(n))
	}
}

// Refused counts a subscriber connection refused at the cap.
func (m *Metrics) Refused() {
	if m != nil {
		m.refused.Inc()
	}
}

// SetMaxConnections records the cap on subscriber connections (0: none).
func (m *Metrics) SetMaxConnections(n int) {
	if m != nil {
		m.maxConns.Set(float64(n))
	}
}

// GaugeFunc registers a gauge whose value f computes at scrape time, such
// as the number of channels.
func (m *Metrics) GaugeFunc(name, help string, f func() float64) {
	if m != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
	}
}

// CounterFunc registers a counter whose value f reads at scrape time from
// a count kept elsewhere (the hub's resyncs, say).
func (m *Metrics) CounterFunc(name, help string, f func() float64) {
	if m != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f))
	}
}

// LabeledCounterFunc is CounterFunc for one series of a labelled
// counter: the same name registered with other label values is another
// series of it.
func (m *Metrics) LabeledCounterFunc(name, help string, labels map[string]string, f func() float64) {
	if m != nil {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, f))
	}
}

// For returns the collectors of one transport (one of the names above), or
// nil for an unknown name or a nil m.
func (m *Metrics) For(transport string) *Transport {
	if m == nil {
		return nil
	}
	return m.transports[transport]
}

// Transport is the collectors of one transport, resolved once so that the
// delivery path does no label lookup.
type Transport struct {
	connections prometheus.Gauge
	delivered   prometheus.Counter
	bytes       prometheus.Counter
	latency     prometheus.Observer
	closes      *prometheus.CounterVec
}

// Connected counts a new connection.
func (t *Transport) Connected() {
	if t != nil {
		t.connections.Inc()
	}
}

// Closed counts a closed connection and why it closed.
func (t *Transport) Closed(reason string) {
	if t != nil {
		t.connections.Dec()
		t.closes.WithLabelValues(reason).Inc()
	}
}

// Delivered counts n messages and size bytes handed to a connection. For a
// live message, published is its publication time and the latency is
// observed; for history it is the zero time.
func (t *Transport) Delivered(n, size int, published time.Time) {
	if t == nil {
		return
	}
	t.delivered.Add(float64(n))
	t.bytes.Add(float64(size))
	if !published.IsZero() {
		t.latency.Observe(time.Since(published).Seconds())
	}
}

// Latency observes the publish-to-write latency of one more live message
// of a delivery that Delivered counted.
func (t *Transport) Latency(published time.Time) {
	if t != nil {
		t.latency.Observe(time.Since(published).Seconds())
	}
}

// Sent counts bytes that are not messages (headers, pings).
func (t *Transport) Sent(size int) {
	if t != nil {
		t.bytes.Add(float64(size))
	}
}

package testkit

import (
	"testing"

	"github.com/meteorpush/meteor/internal/metrics"
)

// Metric returns the value of the counter or gauge name in m's registry,
// of its first series whose labels include every pair of labels (name,
// value, name, value, ...); 0 when there is no such series (a counter
// never incremented has none).
func Metric(t testing.TB, m *metrics.Metrics, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, s := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, l := range s.GetLabel() {
					if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			if c := s.GetCounter(); c != nil {
				return c.GetValue()
			}
			return s.GetGauge().GetValue()
		}
	}
	return 0
}

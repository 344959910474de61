package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"
)

// parseSources parses a comma-separated list of IPv4 addresses and ranges
// ("127.0.0.2-127.0.0.50"). An empty list means "let the kernel choose".
func parseSources(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := netip.ParseAddr(lo)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", part, err)
		}
		if !isRange {
			out = append(out, a)
			continue
		}
		b, err := netip.ParseAddr(hi)
		if err != nil {
			return nil, fmt.Errorf("source %q: %w", part, err)
		}
		if a.Is4() != b.Is4() || b.Less(a) {
			return nil, fmt.Errorf("source %q: not an ascending range of one family", part)
		}
		for ; ; a = a.Next() {
			out = append(out, a)
			if len(out) > 1<<16 {
				return nil, fmt.Errorf("source %q: more than 65536 addresses", part)
			}
			if a == b {
				break
			}
		}
	}
	return out, nil
}

// formatSources writes addrs back in the form parseSources reads, as one
// address per item (short enough for the few dozen addresses used here).
func formatSources(addrs []netip.Addr) string {
	parts := make([]string, len(addrs))
	for i, a := range addrs {
		parts[i] = a.String()
	}
	return strings.Join(parts, ",")
}

// dialers spreads connections over source addresses.
type dialers struct {
	d []*net.Dialer // one per source; one dialer with no source when none
}

func newDialers(sources []netip.Addr, timeout time.Duration) *dialers {
	ds := &dialers{}
	for _, a := range sources {
		ds.d = append(ds.d, &net.Dialer{
			Timeout:   timeout,
			LocalAddr: &net.TCPAddr{IP: a.AsSlice()},
			Control:   bindNoPort, // nil off Linux
		})
	}
	if len(ds.d) == 0 {
		ds.d = append(ds.d, &net.Dialer{Timeout: timeout})
	}
	return ds
}

// dial connects to target from the i-th source, round robin.
func (ds *dialers) dial(ctx context.Context, i int, target string) (net.Conn, error) {
	return ds.d[i%len(ds.d)].DialContext(ctx, "tcp", target)
}

// errStatus is returned when the server answers a subscription with a
// status other than 200.
var errStatus = errors.New("subscription refused")

// errBusy is wrapped by errStatus for a 503: the server asks the client to
// come back, which the generator does, as a client would.
var errBusy = errors.New("server busy")

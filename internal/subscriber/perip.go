package subscriber

import (
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/meteorpush/meteor/internal/logx"
	"github.com/meteorpush/meteor/internal/stats"
)

// PerIPLimits are the per-address limits of the subscriber port. A zero
// field is no limit. Behind a proxy every client has the proxy's address:
// set them there, not here.
type PerIPLimits struct {
	// MaxOpen is the most subscriptions (open subscriber connections that
	// joined channels) one address may hold: MaxConnectionsPerIP.
	MaxOpen int
	// Rate is the requests per second one address may make, on average
	// (ConnectionRatePerIP), in a token bucket of Burst
	// (ConnectionBurstPerIP; 0: twice Rate, at least 1).
	Rate  float64
	Burst int
}

func (l *PerIPLimits) burst() int {
	if l.Burst > 0 {
		return l.Burst
	}
	return max(1, int(2*l.Rate))
}

// Per-address limit names, in metrics (meteor_subscriber_limited_total)
// and logs.
const (
	limitOpen = "maxConnectionsPerIP"
	limitRate = "connectionRatePerIP"
)

// perIP is the state behind PerIPLimits: the open subscriptions and the
// rate bucket of each address. Its zero value is ready.
type perIP struct {
	mu     sync.Mutex
	open   map[string]int32     // guarded by mu; addresses with none are deleted
	bucket map[string]*ipBucket // guarded by mu; pruned when full (prune)
}

type ipBucket struct {
	lim   *rate.Limiter
	rate  float64 // the settings lim was made with
	burst int
}

// opened and closed count one registered connection of ip. The Server
// calls them from addLocked and removeLocked, the one place every
// transport's connection is registered and unregistered.
func (p *perIP) opened(ip string) {
	p.mu.Lock()
	if p.open == nil {
		p.open = make(map[string]int32)
	}
	p.open[ip]++
	p.mu.Unlock()
}

func (p *perIP) closed(ip string) {
	p.mu.Lock()
	if n := p.open[ip] - 1; n > 0 {
		p.open[ip] = n
	} else {
		delete(p.open, ip)
	}
	p.mu.Unlock()
}

// check applies the limits to a request of ip, a subscription when sub is
// set, at now. It returns "" when the request may go on, else the limit's
// name and why, for the client. The open count is compared, not taken: a
// few requests of one address arriving together may each pass it.
func (p *perIP) check(l *PerIPLimits, ip string, sub bool, now time.Time) (limit, why string) {
	if l.MaxOpen <= 0 && l.Rate <= 0 {
		return "", ""
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if l.Rate > 0 {
		b := p.bucket[ip]
		if b == nil || b.rate != l.Rate || b.burst != l.burst() {
			if p.bucket == nil {
				p.bucket = make(map[string]*ipBucket)
			}
			b = &ipBucket{lim: rate.NewLimiter(rate.Limit(l.Rate), l.burst()), rate: l.Rate, burst: l.burst()}
			p.bucket[ip] = b
		}
		if !b.lim.AllowN(now, 1) {
			return limitRate, fmt.Sprintf("too many requests from %s: at most %s a second (ConnectionRatePerIP)", ip, strconv.FormatFloat(l.Rate, 'f', -1, 64))
		}
	}
	if sub && l.MaxOpen > 0 && int(p.open[ip]) >= l.MaxOpen {
		return limitOpen, fmt.Sprintf("too many connections from %s: at most %d (MaxConnectionsPerIP)", ip, l.MaxOpen)
	}
	return "", ""
}

// prune forgets the buckets that are full again at now: their addresses
// have been quiet long enough that a new bucket would be the same.
func (p *perIP) prune(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for ip, b := range p.bucket {
		if b.lim.TokensAt(now) >= float64(b.burst) {
			delete(p.bucket, ip)
		}
	}
}

// subscribes reports whether the request path p opens a subscription.
func subscribes(set *Settings, p string) bool {
	return strings.HasPrefix(p, "/sse/") || strings.HasPrefix(p, "/ndjson/") ||
		strings.HasPrefix(p, "/poll/") || p == "/ws" ||
		set.Prefix != "" && strings.HasPrefix(p, set.Prefix+"/")
}

// limited answers a request refused by a per-address limit: 429 with
// Retry-After and the reason in plain text; counted and logged (a line a
// second).
func (s *Server) limited(w http.ResponseWriter, r *http.Request, set *Settings, limit, why string) {
	s.stats.Inc(stats.ErrorsServed)
	s.Metrics.Limited(limit)
	s.limitLog.Log(s.log, slog.LevelInfo, "subscriber request refused", "ip", remoteIP(r), "limit", limit, "uri", logx.URI(r.RequestURI))
	body := why + "\n"
	b := fmt.Appendf(nil, "HTTP/1.1 429 Too Many Requests\r\nServer: %s\r\nRetry-After: 1\r\nContent-Type: text/plain; charset=utf-8\r\nCache-Control: no-store\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		ServerName, corsHeader(set, r), len(body), body)
	s.reply(w, b, set.WriteTimeout)
}

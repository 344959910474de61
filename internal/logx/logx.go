// Package logx holds the logging rule that every listener follows: a
// message that clients can cause (bad input, a store that fails under
// load) is logged at most once a second per Limiter, with the number of
// those it kept back, so that a flood does not flood the log.
package logx

import (
	"context"
	"github.com/meteorpush/meteor/internal/auth"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"time"
)

// Every is the shortest interval between two messages of a Limiter.
const Every = time.Second

// Limiter logs at most one message per Every and counts the rest. Its zero
// value is ready; it is safe for concurrent use.
type Limiter struct {
	last       atomic.Int64 // UnixNano of the last message logged
	suppressed atomic.Int64
}

// Log logs msg at level on log, unless a message went through l less than
// Every ago; the first message after a pause carries "suppressed", the
// number kept back.
func (l *Limiter) Log(log *slog.Logger, level slog.Level, msg string, args ...any) {
	if log == nil || !log.Enabled(context.Background(), level) {
		return
	}
	now := time.Now().UnixNano()
	last := l.last.Load()
	if now-last < int64(Every) || !l.last.CompareAndSwap(last, now) {
		l.suppressed.Add(1)
		return
	}
	if n := l.suppressed.Swap(0); n > 0 {
		args = append(args, "suppressed", n)
	}
	log.Log(context.Background(), level, msg, args...)
}

// Warn is Log at slog.LevelWarn.
func (l *Limiter) Warn(log *slog.Logger, msg string, args ...any) {
	l.Log(log, slog.LevelWarn, msg, args...)
}

// Error is Log at slog.LevelError.
func (l *Limiter) Error(log *slog.Logger, msg string, args ...any) {
	l.Log(log, slog.LevelError, msg, args...)
}

// secretParams are the query parameters whose values are credentials: a
// subscriber's token and a signed URL's signature.
var secretParams = [...]string{"token", "sig"}

// URI returns a request URI for the log with the values of its credential
// parameters (token, sig) replaced by "REDACTED", so that a log reader
// cannot replay them. It works on the raw text (a URI that does not parse
// is redacted all the same) and returns uri itself when there is nothing
// to hide.
func URI(uri string) string {
	uri = redactHostIDs(uri)
	q := strings.IndexByte(uri, '?')
	if q < 0 {
		return uri
	}
	var b []byte
	start := q + 1
	for start <= len(uri) {
		end := strings.IndexByte(uri[start:], '&')
		if end < 0 {
			end = len(uri)
		} else {
			end += start
		}
		pair := uri[start:end]
		if eq := strings.IndexByte(pair, '='); eq >= 0 && isSecret(pair[:eq]) {
			if b == nil {
				b = append(make([]byte, 0, len(uri)), uri[:start]...)
			}
			b = append(b, pair[:eq+1]...)
			b = append(b, "REDACTED"...)
		} else if b != nil {
			b = append(b, pair...)
		}
		if end < len(uri) && b != nil {
			b = append(b, '&')
		}
		start = end + 1
	}
	if b == nil {
		return uri
	}
	return string(b)
}

// redactHostIDs replaces the signature of each signed hostid in uri's path
// (auth.SplitHostID: a 1.06 page's credential) with "REDACTED", keeping
// its id and expiry.
func redactHostIDs(uri string) string {
	path, query, hasQuery := strings.Cut(uri, "?")
	var b strings.Builder
	changed := false
	for i, seg := range strings.Split(path, "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		if id, exp, _, ok := auth.SplitHostID(seg); ok {
			seg, changed = id+"s"+exp+"sREDACTED", true
		}
		b.WriteString(seg)
	}
	if !changed {
		return uri
	}
	if hasQuery {
		b.WriteByte('?')
		b.WriteString(query)
	}
	return b.String()
}

// HostID returns a 1.06 hostid as the log and the presence lists show it:
// a signed hostid (a credential) by its id alone.
func HostID(hostid string) string {
	if id, _, _, ok := auth.SplitHostID(hostid); ok {
		return id
	}
	return hostid
}

// secretText finds credentials in free text (an error that quotes a
// request line): a token= or sig= value, and a signed hostid's signature.
var secretText = regexp.MustCompile(`(?i)((?:^|[^0-9a-z_])(?:token|sig)=)[^&\s"']+|([0-9a-z]+s[0-9]+s)[0-9a-f]{64}`)

// Text returns s with the credentials it quotes replaced by "REDACTED",
// for an error whose text may hold a request line or URL (a parse error
// of a malformed request quotes it whole).
func Text(s string) string {
	return secretText.ReplaceAllString(s, "${1}${2}REDACTED")
}

func isSecret(name string) bool {
	// A name is compared as the server reads it: %74oken is token.
	if strings.IndexByte(name, '%') >= 0 || strings.IndexByte(name, '+') >= 0 {
		if n, err := url.QueryUnescape(name); err == nil {
			name = n
		}
	}
	for _, p := range secretParams {
		if strings.EqualFold(name, p) {
			return true
		}
	}
	return false
}

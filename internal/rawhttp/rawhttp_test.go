package rawhttp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// start serves a Server whose handler answers "hello <path>" raw on the
// taken connection.
func start(t *testing.T) (*Server, string, *atomic.Int64) {
	t.Helper()
	return startLog(t, slog.New(slog.DiscardHandler))
}

// startLog is start with the server's log going to log.
func startLog(t *testing.T, log *slog.Logger) (*Server, string, *atomic.Int64) {
	t.Helper()
	var open atomic.Int64
	s := &Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/ignore" {
				return // not taken: closed by the loop
			}
			nc, err := Take(w)
			if err != nil {
				t.Error(err)
				return
			}
			io.WriteString(nc, "hello "+r.URL.Path)
			nc.Close()
		}),
		RequestTimeout: time.Second,
		MaxHeaderBytes: 1024,
		ServerName:     "test",
		Name:           "test",
		Log:            log,
		OnAccept:       func() { open.Add(1) },
		OnUnhijacked:   func() { open.Add(-1) },
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Wait(ctx)
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String(), &open
}

func roundTrip(t *testing.T, addr, req string) string {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(5 * time.Second))
	io.WriteString(nc, req)
	b, _ := io.ReadAll(nc)
	return string(b)
}

func TestServeTakeAndRefusals(t *testing.T) {
	_, addr, open := start(t)
	if got := roundTrip(t, addr, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"); got != "hello /a" {
		t.Errorf("taken: %q", got)
	}
	if got := roundTrip(t, addr, "GET /a HTTP/1.1\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 400 Bad Request\r\nServer: test\r\n") || !strings.HasSuffix(got, "missing required Host header\n") {
		t.Errorf("no Host: %q", got)
	}
	if got := roundTrip(t, addr, "GET /a HTTP/1.1\r\nHost: x\r\nX: "+strings.Repeat("y", 2000)+"\r\n\r\n"); !strings.HasPrefix(got, "HTTP/1.1 431 ") {
		t.Errorf("large header: %q", got)
	}
	if got := roundTrip(t, addr, "GET /ignore HTTP/1.1\r\nHost: x\r\n\r\n"); got != "" {
		t.Errorf("not taken: %q, want the connection closed", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for open.Load() != 1 && time.Now().Before(deadline) {
		// The taken one stays counted: its owner (here the handler,
		// which closed it) counts it down; the others were closed by
		// the loop.
		time.Sleep(10 * time.Millisecond)
	}
	if n := open.Load(); n != 1 {
		t.Errorf("%d connections counted open, want 1 (the taken one)", n)
	}
}

func TestStopClosesReading(t *testing.T) {
	s, addr, _ := start(t)
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, "GET /slow HTTP/1.1\r\n") // and nothing more
	time.Sleep(50 * time.Millisecond)
	s.Stop()
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(nc); err != nil || len(b) != 0 {
		t.Errorf("a connection still reading its request after Stop: %q, %v; want it closed", b, err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("the listener still accepts after Stop")
	}
}

// TestHostileRequests: what RFC 9112 refuses and what the routes would
// misread is answered 400 with the reason; refusals and timeouts are
// logged at info (rate-limited), without -d.
func TestHostileRequests(t *testing.T) {
	var logged strings.Builder
	var mu sync.Mutex
	_, addr, _ := startLog(t, slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelInfo})))
	for _, tt := range []struct{ req, reason string }{
		{"GET /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n", "invalid header name"},
		{"GET /a HTTP/1.1\r\nHost: x\r\nX Y: z\r\n\r\n", "invalid header name"},
		{"GET /sse/c?since=x:1;y:2 HTTP/1.1\r\nHost: x\r\n\r\n", "a ';' in the query"},
		{"GET /poll/c?callback=a;b HTTP/1.1\r\nHost: x\r\n\r\n", "a ';' in the query"},
		{"GET /sse/c?since=%zz HTTP/1.1\r\nHost: x\r\n\r\n", `malformed query: invalid URL escape "%zz"`},
		{"GET /poll/c?callback=a&x=%4 HTTP/1.1\r\nHost: x\r\n\r\n", "malformed query"},
	} {
		got := roundTrip(t, addr, tt.req)
		if !strings.HasPrefix(got, "HTTP/1.1 400 Bad Request\r\n") || !strings.Contains(got, tt.reason) {
			t.Errorf("%q: got %q, want a 400 saying %q", tt.req, got, tt.reason)
		}
	}
	// Escaped, a ';' is a value's byte like any other.
	if got := roundTrip(t, addr, "GET /a?callback=a%3Bb HTTP/1.1\r\nHost: x\r\n\r\n"); got != "hello /a" {
		t.Errorf("an escaped ';': %q", got)
	}
	mu.Lock()
	log := logged.String()
	mu.Unlock()
	if !strings.Contains(log, "request refused") || !strings.Contains(log, "status=400") {
		t.Errorf("the 400 was not logged at info: %q", log)
	}
}

// TestRefusalsLoggedAtInfo: a 431 and a request that does not come in
// time are logged without debug.
func TestRefusalsLoggedAtInfo(t *testing.T) {
	for _, tt := range []struct {
		name, req, want string
	}{
		{"431", "GET /a HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("y", 2000) + "\r\n\r\n", "status=431"},
		{"timeout", "GET /a HTTP/1.1\r\n", "request not received in time"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logged strings.Builder
			var mu sync.Mutex
			_, addr, _ := startLog(t, slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
				mu.Lock()
				defer mu.Unlock()
				return logged.Write(p)
			}), &slog.HandlerOptions{Level: slog.LevelInfo})))
			roundTrip(t, addr, tt.req)
			deadline := time.Now().Add(5 * time.Second)
			for {
				mu.Lock()
				log := logged.String()
				mu.Unlock()
				if strings.Contains(log, tt.want) {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("log %q lacks %q", log, tt.want)
				}
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestRefusalsLoggedEachKind: a request that timed out, a malformed one
// and one with too large a head, within a second, are all logged: each
// kind has its own rate limit, so a flood of one (a slow-loris attack's
// timeouts) does not hide the others.
func TestRefusalsLoggedEachKind(t *testing.T) {
	var logged strings.Builder
	var mu sync.Mutex
	log := func() string {
		mu.Lock()
		defer mu.Unlock()
		return logged.String()
	}
	_, addr, _ := startLog(t, slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logged.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelInfo})))
	roundTrip(t, addr, "GET /a HTTP/1.1\r\n") // the server closes it after RequestTimeout
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(log(), "request not received in time") {
		if time.Now().After(deadline) {
			t.Fatalf("the timeout was not logged: %q", log())
		}
		time.Sleep(5 * time.Millisecond)
	}
	roundTrip(t, addr, "GET /a HTTP/1.1\r\nHost: x\r\nX Y: z\r\n\r\n")
	roundTrip(t, addr, "GET /a HTTP/1.1\r\nHost: x\r\nX: "+strings.Repeat("y", 2000)+"\r\n\r\n")
	for _, want := range []string{"status=400", "status=431"} {
		if !strings.Contains(log(), want) {
			t.Errorf("log lacks %q after a timeout within the second:\n%s", want, log())
		}
	}
}

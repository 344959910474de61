package rawhttp

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// start serves a Server whose handler answers "hello <path>" raw on the
// taken connection.
func start(t *testing.T) (*Server, string, *atomic.Int64) {
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
		Log:            slog.New(slog.DiscardHandler),
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

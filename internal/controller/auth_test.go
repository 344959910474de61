package controller

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/stats"
	"github.com/meteorpush/meteor/internal/testkit"
)

// TestAuthRequired: with a Token, every line before a right AUTH is
// refused with an ERR line and publishes nothing; the third refusal
// closes the connection, and the client reads all three ERR lines (the
// close lingers over the input it still sent, so there is no reset).
func TestAuthRequired(t *testing.T) {
	var logs testkit.Log
	be := newFakeBackend()
	srv := newServer(be)
	srv.Token = "s3cret"
	srv.Logger = testLogger(&logs)
	addr := start(t, srv)

	c := dial(t, addr)
	send(t, c, "ADDMESSAGE demo early\r\n")
	expect(t, c, "ERR authentication required\r\n")
	send(t, c, "AUTH wrong-token\r\nAUTH s3cret2\r\nADDMESSAGE demo lost\r\nAUTH s3cret\r\n")
	expect(t, c, "ERR authentication failed\r\nERR authentication failed\r\n")
	expectEOF(t, c)

	if got := be.texts("demo"); len(got) != 0 {
		t.Errorf("published before authentication: %q", got)
	}
	if n := srv.Refused(RefusedAuth); n != 3 {
		t.Errorf("Refused(RefusedAuth) = %d, want 3", n)
	}
	waitFor(t, "the disconnect log line", func() bool { return strings.Contains(logs.String(), "reason=authFailed") })
	log := logs.String()
	if !strings.Contains(log, "refused for authentication") {
		t.Errorf("no warning of the refusals:\n%s", log)
	}
	if strings.Contains(log, "wrong-token") || strings.Contains(log, "s3cret") {
		t.Errorf("a token reached the log:\n%s", log)
	}

	// A syntax error before AUTH is refused the same way; QUIT is
	// answered.
	c = dial(t, addr)
	send(t, c, "AUTH\r\nQUIT\r\n")
	expect(t, c, "ERR authentication required\r\nOK\r\n")
	expectEOF(t, c)
}

// TestAuthOK: after the right AUTH, pipelined or not, every command works,
// and AUTH again is answered OK.
func TestAuthOK(t *testing.T) {
	be := newFakeBackend()
	be.subs["demo"] = 2
	srv := newServer(be)
	srv.Token = "s3 cret"
	addr := start(t, srv)

	c := dial(t, addr)
	send(t, c, "AUTH  s3 cret\r\nADDMESSAGE demo one\r\nADDMESSAGE demo two\r\nCOUNTSUBSCRIBERS demo\r\n")
	expect(t, c, "OK\r\nOK\t0\r\nOK\t1\r\nOK 2\r\n")
	send(t, c, "AUTH anything\r\nLISTCHANNELS\r\nQUIT\r\n")
	expect(t, c, "OK\r\nOK\r\ndemo(2/2)\r\n--EOT--\r\nOK\r\n")
	expectEOF(t, c)
	if got := be.texts("demo"); len(got) != 2 || got[0] != "one" || got[1] != "two" {
		t.Errorf("messages %q", got)
	}
	if n := srv.Refused(RefusedAuth); n != 0 {
		t.Errorf("Refused(RefusedAuth) = %d, want 0", n)
	}
}

// TestSetToken: a new token applies to the connections accepted after it;
// one authenticated before keeps working. Without a token AUTH is
// answered OK.
func TestSetToken(t *testing.T) {
	be := newFakeBackend()
	srv := newServer(be)
	addr := start(t, srv)

	open := dial(t, addr)
	send(t, open, "AUTH whatever\r\nADDMESSAGE demo a\r\n")
	expect(t, open, "OK\r\nOK\t0\r\n")

	srv.SetToken("new")
	c := dial(t, addr)
	send(t, c, "ADDMESSAGE demo b\r\n")
	expect(t, c, "ERR authentication required\r\n")
	send(t, c, "AUTH new\r\nADDMESSAGE demo c\r\n")
	expect(t, c, "OK\r\nOK\t1\r\n")
	send(t, open, "ADDMESSAGE demo d\r\n")
	expect(t, open, "OK\t2\r\n")

	srv.SetToken("")
	c = dial(t, addr)
	send(t, c, "ADDMESSAGE demo e\r\n")
	expect(t, c, "OK\t3\r\n")
}

// TestIdleTimeout: a connection that sends no complete line within
// IdleTimeout gets ERR idle timeout and is closed; a partial line does
// not count.
func TestIdleTimeout(t *testing.T) {
	var logs testkit.Log
	be := newFakeBackend()
	srv := newServer(be)
	srv.IdleTimeout = 20 * time.Millisecond
	srv.Logger = testLogger(&logs)
	addr := start(t, srv)

	c := dial(t, addr)
	send(t, c, "ADDMESSAGE demo x\r\nADDMESS")
	expect(t, c, "OK\t0\r\nERR idle timeout\r\n")
	expectEOF(t, c)
	if n := srv.Refused(RefusedIdle); n != 1 {
		t.Errorf("Refused(RefusedIdle) = %d, want 1", n)
	}
	waitFor(t, "the disconnect log line", func() bool { return strings.Contains(logs.String(), "reason=idleTimeout") })
	if !strings.Contains(logs.String(), "idle connection closed") {
		t.Errorf("no log line of the idle close:\n%s", logs.String())
	}
}

// TestIdleTimeoutShutdown: Shutdown does not wait for the idle timeout of
// a connection waiting for input.
func TestIdleTimeoutShutdown(t *testing.T) {
	be := newFakeBackend()
	srv := newServer(be)
	srv.IdleTimeout = time.Hour
	srv.ShutdownMsg = "BYE\r\n"
	addr := start(t, srv)
	c := dial(t, addr)
	send(t, c, "ADDMESSAGE demo x\r\n")
	expect(t, c, "OK\t0\r\n")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	expect(t, c, "BYE\r\n")
	expectEOF(t, c)
}

// TestMaxConnections: one connection more than MaxConnections gets ERR
// too many controller connections and is closed, whatever it sent; once
// one closes, a new one is served.
func TestMaxConnections(t *testing.T) {
	be := newFakeBackend()
	srv := newServer(be)
	srv.MaxConnections = 2
	addr := start(t, srv)

	a, b := dial(t, addr), dial(t, addr)
	send(t, a, "COUNTSUBSCRIBERS demo\r\n")
	expect(t, a, "OK 0\r\n")
	send(t, b, "COUNTSUBSCRIBERS demo\r\n")
	expect(t, b, "OK 0\r\n")

	c := dial(t, addr)
	send(t, c, "ADDMESSAGE demo refused\r\n")
	expect(t, c, "ERR too many controller connections\r\n")
	expectEOF(t, c)
	if n := srv.Refused(RefusedLimit); n != 1 {
		t.Errorf("Refused(RefusedLimit) = %d, want 1", n)
	}
	if got := be.texts("demo"); len(got) != 0 {
		t.Errorf("a refused connection published %q", got)
	}

	send(t, a, "QUIT\r\n")
	expect(t, a, "OK\r\n")
	expectEOF(t, a)
	waitFor(t, "the quit connection to end", func() bool { return srv.Stats.Get(stats.CurrentControllers) == 1 })
	c = dial(t, addr)
	send(t, c, "ADDMESSAGE demo served\r\n")
	expect(t, c, "OK\t0\r\n")

	// 0 is no limit.
	srv.SetMaxConnections(0)
	d := dial(t, addr)
	send(t, d, "COUNTSUBSCRIBERS demo\r\n")
	expect(t, d, "OK 0\r\n")
}

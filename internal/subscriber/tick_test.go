package subscriber

import (
	"strings"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/testkit"
)

// tickPanicker is a connection whose tick panics.
type tickPanicker struct {
	registered
	aborted bool
}

func (c *tickPanicker) tick(time.Time)         { panic("tick bug") }
func (c *tickPanicker) shutdown(reason.Reason) {}
func (c *tickPanicker) abort()                 { c.aborted = true }
func (c *tickPanicker) remote() string         { return "" }

// TestTickPanicContained: a panic in one connection's tick is logged and
// closes that connection; the ticker goes on.
func TestTickPanicContained(t *testing.T) {
	lg := &testkit.Log{}
	s := &Server{log: lg.Logger()}
	c := &tickPanicker{}
	s.tickOne(c, time.Now())
	if !c.aborted {
		t.Error("the panicking connection was not closed")
	}
	if out := lg.String(); !strings.Contains(out, "tick bug") || !strings.Contains(out, "panic in a connection's tick") {
		t.Errorf("log lacks the panic: %s", out)
	}
}

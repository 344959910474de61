package enginetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/meteorpush/meteor/internal/engine"
)

// testTwoNodes: on a shared store, two engines are two nodes: what one
// publishes reaches the other's handler, in order, once; both read the
// same history; a command one broadcasts reaches both.
func testTwoNodes(t *testing.T, st Store) {
	if !st.Shared {
		t.Skip("each engine has its own store")
	}
	a, recA := start(t, st, engine.Limits{MaxMessages: 100})
	b, recB := start(t, st, engine.Limits{MaxMessages: 100})
	c := unique(t, "two")
	subscribe(t, a, c)
	subscribe(t, b, c)
	var want []uint64
	for i := range 10 {
		e := a
		if i%2 == 1 {
			e = b
		}
		want = append(want, publish(t, e, pub(c, fmt.Sprint(i)))[0].ID)
	}
	if !slices.IsSorted(want) {
		t.Fatalf("ids from two nodes not increasing: %v", want)
	}
	for _, rec := range []*Recorder{recA, recB} {
		rec.waitDelivered(c, len(want))
		rec.Complete(t, c, want)
	}
	ha := history(t, a, c, engine.Query{Kind: engine.QueryAll})
	hb := history(t, b, c, engine.Query{Kind: engine.QueryAll})
	if !slices.Equal(ids(ha.Messages), want) || !slices.Equal(ids(hb.Messages), want) || ha.Stream != hb.Stream {
		t.Errorf("the nodes read different histories: %+v / %+v", ha.Stream, hb.Stream)
	}
	if ctl, ok := a.(engine.Control); ok {
		cmd := engine.Command{Kind: engine.Disconnect, Node: "a", HostID: "h"}
		if err := ctl.Broadcast(bg(), cmd); err != nil {
			t.Fatal(err)
		}
		for _, rec := range []*Recorder{recA, recB} {
			if !rec.Wait(wait, func() bool { return slices.Contains(rec.commands, cmd) }) {
				t.Errorf("a broadcast did not reach every node")
			}
		}
	}
}

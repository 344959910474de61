package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/enginetest"
	"github.com/meteorpush/meteor/internal/engine/memory"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/testkit"
)

// presenceNodes returns a presence per node name on one redis-server of
// t's own, and the server.
func presenceNodes(t *testing.T, names ...string) (*testkit.Redis, []*presence) {
	t.Helper()
	r := testkit.StartRedis(t)
	var out []*presence
	for _, n := range names {
		rdb := goredis.NewClient(&goredis.Options{Addr: r.Addr(), MaxRetries: -1})
		t.Cleanup(func() { rdb.Close() })
		out = append(out, newPresence(rdb, "mt", n))
	}
	return r, out
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func others(t *testing.T, p *presence, channels ...string) []int {
	t.Helper()
	n, err := p.OtherCounts(ctx(t), channels...)
	if err != nil {
		t.Fatalf("OtherCounts: %v", err)
	}
	return n
}

func TestPresenceCountsOfTwoNodes(t *testing.T) {
	_, ps := presenceNodes(t, "n1", "n2", "observer")
	n1, n2, obs := ps[0], ps[1], ps[2]
	if err := n1.ReportCounts(ctx(t), map[string]int{"a": 3, "b": 1}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := n2.ReportCounts(ctx(t), map[string]int{"a": 2}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := others(t, n1, "a", "b", "c"); !slices.Equal(got, []int{2, 0, 0}) {
		t.Errorf("n1 sees %v, want [2 0 0]", got)
	}
	if got := others(t, n2, "a", "b"); !slices.Equal(got, []int{3, 1}) {
		t.Errorf("n2 sees %v, want [3 1]", got)
	}
	if got := others(t, obs, "a", "b"); !slices.Equal(got, []int{5, 1}) {
		t.Errorf("a third node sees %v, want [5 1]", got)
	}
	// A report replaces the one before: b left n1, a changed.
	if err := n1.ReportCounts(ctx(t), map[string]int{"a": 7}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := others(t, obs, "a", "b"); !slices.Equal(got, []int{9, 0}) {
		t.Errorf("after n1's second report a third node sees %v, want [9 0]", got)
	}
}

func TestPresenceDeadNodeExpires(t *testing.T) {
	r, ps := presenceNodes(t, "dead", "alive")
	dead, alive := ps[0], ps[1]
	ttl := 800 * time.Millisecond
	if err := dead.ReportCounts(ctx(t), map[string]int{"a": 4}, ttl); err != nil {
		t.Fatal(err)
	}
	add := []engine.SubscriberChange{{Channel: "a", Key: 1, Sub: engine.Subscriber{ID: "h1", Transport: "legacy", Since: time.UnixMilli(1e12)}}}
	if err := dead.ReportSubscribers(ctx(t), add, true, ttl); err != nil {
		t.Fatal(err)
	}
	if err := alive.ReportCounts(ctx(t), map[string]int{"a": 1}, time.Minute); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if got := others(t, alive, "a"); got[0] != 4 {
		t.Fatalf("before the ttl: %v, want [4]", got)
	}
	subs, _, err := enginetest.ListAll(ctx(t), alive, "a", 10)
	if err != nil || len(subs) != 1 || subs[0] != (engine.Subscriber{ID: "h1", Node: "dead", Transport: "legacy", Since: time.UnixMilli(1e12)}) {
		t.Fatalf("before the ttl: %+v, %v", subs, err)
	}
	// "dead" reports nothing more: gone within its ttl.
	testkit.EventuallyWithin(t, 5*time.Second, "the dead node's count and entries to expire", func() bool {
		subs, _, err = enginetest.ListAll(ctx(t), alive, "a", 10)
		return err == nil && len(subs) == 0 && others(t, alive, "a")[0] == 0
	})
	if d := time.Since(start); d > ttl+time.Second {
		t.Errorf("gone after %v, ttl %v", d, ttl)
	}
	// The readers removed what they found expired.
	if n := r.Do("HLEN", "mt:{a}:n"); n != "1" {
		t.Errorf("HLEN of the counts = %s, want only the live node's", n)
	}
	if n := r.Do("HLEN", "mt:{a}:s"); n != "0" {
		t.Errorf("HLEN of the entries = %s, want 0", n)
	}
	// The node comes back: its entries were lost, and it is told so.
	if err := dead.ReportSubscribers(ctx(t), nil, false, ttl); !errors.Is(err, engine.ErrPresenceLost) {
		t.Fatalf("a report after the node expired: %v, want ErrPresenceLost", err)
	}
	if err := dead.ReportSubscribers(ctx(t), add, true, time.Minute); err != nil {
		t.Fatal(err)
	}
	if subs, _, err = enginetest.ListAll(ctx(t), alive, "a", 10); err != nil || len(subs) != 1 {
		t.Errorf("after a full report: %+v, %v", subs, err)
	}
}

func TestPresenceKeysExpire(t *testing.T) {
	r, ps := presenceNodes(t, "n1")
	ttl := 500 * time.Millisecond
	if err := ps[0].ReportCounts(ctx(t), map[string]int{"a": 1}, ttl); err != nil {
		t.Fatal(err)
	}
	add := []engine.SubscriberChange{{Channel: "a", Key: 1, Sub: engine.Subscriber{ID: "x", Transport: "sse", Since: time.Now()}}}
	if err := ps[0].ReportSubscribers(ctx(t), add, true, ttl); err != nil {
		t.Fatal(err)
	}
	if n := r.Do("DBSIZE"); n != "4" {
		t.Fatalf("DBSIZE = %s, want 4 (:n, :nx, :s, nodes)", n)
	}
	testkit.EventuallyWithin(t, 5*time.Second, "the keys of a dead cluster to expire", func() bool { return r.Do("DBSIZE") == "0" })
}

func TestPresenceEntriesPaged(t *testing.T) {
	rr, ps := presenceNodes(t, "n1", "n2")
	n1, n2 := ps[0], ps[1]
	// A hash small enough to be a listpack is scanned in one page.
	rr.Do("CONFIG", "SET", "hash-max-listpack-entries", "64")
	const total = 300
	var changes []engine.SubscriberChange
	for i := range total {
		changes = append(changes, engine.SubscriberChange{Channel: "a", Key: uint64(i + 1),
			Sub: engine.Subscriber{ID: fmt.Sprintf("h%d", i), Transport: "websocket", Since: time.Now()}})
	}
	if err := n1.ReportSubscribers(ctx(t), changes[:100], true, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := n1.ReportSubscribers(ctx(t), changes[100:], false, time.Minute); err != nil {
		t.Fatal(err)
	}
	// Its own entries are not listed to itself.
	if own, _, err := enginetest.ListAll(ctx(t), n1, "a", 50); err != nil || len(own) != 0 {
		t.Errorf("n1 lists %d of its own, %v", len(own), err)
	}
	subs, pages, err := enginetest.ListAll(ctx(t), n2, "a", 50)
	if err != nil {
		t.Fatal(err)
	}
	if pages < 3 {
		t.Errorf("%d entries came in %d pages of 50", total, pages)
	}
	seen := map[string]bool{}
	for _, s := range subs {
		if s.Node != "n1" || s.Transport != "websocket" {
			t.Fatalf("entry %+v", s)
		}
		seen[s.ID] = true
	}
	if len(seen) != total {
		t.Errorf("listed %d distinct of %d", len(seen), total)
	}
	// Removals, batched with an addition of another channel.
	var gone []engine.SubscriberChange
	for i := range 250 {
		gone = append(gone, engine.SubscriberChange{Channel: "a", Key: uint64(i + 1), Gone: true})
	}
	gone = append(gone, engine.SubscriberChange{Channel: "b", Key: 1000, Sub: engine.Subscriber{ID: "hb"}})
	if err := n1.ReportSubscribers(ctx(t), gone, false, time.Minute); err != nil {
		t.Fatal(err)
	}
	subs, _, _ = enginetest.ListAll(ctx(t), n2, "a", 50)
	if len(subs) != 50 {
		t.Errorf("after 250 removals %d listed, want 50", len(subs))
	}
	if subs, _, _ = enginetest.ListAll(ctx(t), n2, "b", 50); len(subs) != 1 || subs[0].ID != "hb" {
		t.Errorf("channel b lists %+v", subs)
	}
	if _, _, err := n2.ListSubscribers(ctx(t), "a", "x", 10); !errors.Is(err, engine.ErrBadCursor) {
		t.Errorf("a bad cursor: %v", err)
	}
}

// TestPresenceFunctionReloaded: the clean-up function comes back after
// the store lost it (FUNCTION FLUSH, as an empty restart does).
func TestPresenceFunctionReloaded(t *testing.T) {
	r, ps := presenceNodes(t, "n1", "n2")
	now := time.Now().UnixMilli()
	// n1's count expired a second ago, and nothing cleaned it yet.
	r.Do("HSET", "mt:{a}:n", "n1", "3")
	r.Do("ZADD", "mt:{a}:nx", strconv.FormatInt(now-1000, 10), "n1")
	r.Do("FUNCTION", "FLUSH")
	if got := others(t, ps[1], "a"); got[0] != 0 {
		t.Errorf("an expired count is counted: %v", got)
	}
	if n := r.Do("HLEN", "mt:{a}:n"); n != "0" {
		t.Errorf("HLEN after the clean-up = %s, want 0", n)
	}
}

func TestPresenceStoreDown(t *testing.T) {
	r, ps := presenceNodes(t, "n1")
	r.Stop()
	if err := ps[0].ReportCounts(ctx(t), map[string]int{"a": 1}, time.Minute); !engine.Unavailable(err) {
		t.Errorf("ReportCounts: %v", err)
	}
	if _, err := ps[0].OtherCounts(ctx(t), "a"); !engine.Unavailable(err) {
		t.Errorf("OtherCounts: %v", err)
	}
	if err := ps[0].ReportSubscribers(ctx(t), nil, true, time.Minute); !engine.Unavailable(err) {
		t.Errorf("ReportSubscribers: %v", err)
	}
	if _, _, err := ps[0].ListSubscribers(ctx(t), "a", "", 10); !engine.Unavailable(err) {
		t.Errorf("ListSubscribers: %v", err)
	}
}

// presenceEngine is a memory engine with a node's presence on Redis: the
// conformance suite's presence part, on the type the Redis Engine embeds.
type presenceEngine struct {
	engine.Engine
	*presence
}

func TestPresenceConformance(t *testing.T) {
	r := testkit.StartRedis(t)
	nodes := 0
	enginetest.RunPresence(t, enginetest.Store{
		Shared: true,
		New: func(t *testing.T, limits engine.Limits) engine.Engine {
			rdb := goredis.NewClient(&goredis.Options{Addr: r.Addr()})
			t.Cleanup(func() { rdb.Close() })
			nodes++
			return presenceEngine{memory.New(limits), newPresence(rdb, "conf", fmt.Sprintf("node%d", nodes))}
		},
	})
}

// hubClient is a hub.Client with a hostid that takes every message.
type hubClient struct{ id string }

func (c *hubClient) Deliver([]*engine.Message, bool) bool { return true }
func (c *hubClient) Close(reason.Reason)                  {}
func (c *hubClient) Describe() (id, transport string)     { return c.id, "test" }

// TestPresenceThroughHubs: two hubs, each on a node's presence in one
// redis-server, count and list each other's subscribers, and forget a
// node that closed.
func TestPresenceThroughHubs(t *testing.T) {
	r := testkit.StartRedis(t)
	opts := hub.Options{PresenceFlush: 10 * time.Millisecond, CountCache: 10 * time.Millisecond, PresenceTTL: 3 * time.Second}
	hubs := make([]*hub.Hub, 2)
	for i := range hubs {
		rdb := goredis.NewClient(&goredis.Options{Addr: r.Addr()})
		node := fmt.Sprintf("n%d", i+1)
		eng := presenceEngine{memory.New(engine.Limits{MaxMessages: 10}), newPresence(rdb, "hubs", node)}
		o := opts
		o.Node = node
		h := hub.New(eng, o)
		h.Start()
		if err := eng.Start(ctx(t), h); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			h.Close()
			eng.Close(context.Background())
			rdb.Close()
		})
		hubs[i] = h
	}
	join := func(h *hub.Hub, id string) {
		res, activate := h.Subscribe(ctx(t), &hubClient{id}, []hub.Sub{{Channel: "c"}}, true)
		if res[0].Err != nil {
			t.Fatal(res[0].Err)
		}
		activate()
	}
	join(hubs[0], "a")
	join(hubs[0], "b")
	join(hubs[1], "z")
	testkit.Eventually(t, "both hubs to count 3", func() bool {
		return hubs[0].CountSubscribers("c") == 3 && hubs[1].CountSubscribers("c") == 3
	})
	var got []string
	testkit.Eventually(t, "n2 to list n1's subscribers", func() bool {
		got = got[:0]
		cursor := ""
		for {
			subs, next, err := hubs[1].ListSubscribers(ctx(t), "c", cursor, 10)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range subs {
				got = append(got, s.Node+"/"+s.ID)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		slices.Sort(got)
		return slices.Equal(got, []string{"n1/a", "n1/b", "n2/z"})
	})
	// n1 closes: it says so, and n2 counts its own alone at once.
	hubs[0].Close()
	// Well within the ttl (3 s): the closing node's own report.
	testkit.EventuallyWithin(t, time.Second, "n2 to forget n1", func() bool {
		subs, _, err := hubs[1].ListSubscribers(ctx(t), "c", "", 10)
		return err == nil && len(subs) == 1 && hubs[1].CountSubscribers("c") == 1
	})
}

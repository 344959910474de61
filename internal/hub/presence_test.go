package hub_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/memory"
	"github.com/meteorpush/meteor/internal/hub"
)

// presenceStore is the presence part of a store that several nodes
// share: each node's view of it is a nodeEngine.
type presenceStore struct {
	mu         sync.Mutex
	counts     map[string]map[string]int                          // node → channel → count
	entries    map[string]map[string]map[uint64]engine.Subscriber // node → channel → key → entry
	lost       map[string]bool                                    // node → its entries were lost
	otherCalls int
	fail       error // reports fail with it
	reports    int   // ReportSubscribers calls
	fulls      int   // of them, full
}

func newPresenceStore() *presenceStore {
	return &presenceStore{counts: map[string]map[string]int{}, entries: map[string]map[string]map[uint64]engine.Subscriber{}, lost: map[string]bool{}}
}

// nodeEngine is a memory engine whose presence is node's in st.
type nodeEngine struct {
	engine.Engine
	st   *presenceStore
	node string
}

var (
	_ engine.Presence         = (*nodeEngine)(nil)
	_ engine.SubscriberLister = (*nodeEngine)(nil)
)

func (e *nodeEngine) ReportCounts(_ context.Context, counts map[string]int, _ time.Duration) error {
	e.st.mu.Lock()
	defer e.st.mu.Unlock()
	if e.st.fail != nil {
		return e.st.fail
	}
	e.st.counts[e.node] = maps(counts)
	return nil
}

func maps(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (e *nodeEngine) OtherCounts(_ context.Context, channels ...string) ([]int, error) {
	e.st.mu.Lock()
	defer e.st.mu.Unlock()
	e.st.otherCalls++
	out := make([]int, len(channels))
	for node, counts := range e.st.counts {
		if node == e.node {
			continue
		}
		for i, ch := range channels {
			out[i] += counts[ch]
		}
	}
	return out, nil
}

func (e *nodeEngine) ReportSubscribers(_ context.Context, changes []engine.SubscriberChange, full bool, _ time.Duration) error {
	e.st.mu.Lock()
	defer e.st.mu.Unlock()
	if e.st.fail != nil {
		return e.st.fail
	}
	e.st.reports++
	if full {
		e.st.fulls++
		e.st.entries[e.node] = nil
		e.st.lost[e.node] = false
	} else if e.st.lost[e.node] {
		return engine.ErrPresenceLost
	}
	if e.st.entries[e.node] == nil {
		e.st.entries[e.node] = map[string]map[uint64]engine.Subscriber{}
	}
	for _, c := range changes {
		m := e.st.entries[e.node][c.Channel]
		if m == nil {
			m = map[uint64]engine.Subscriber{}
			e.st.entries[e.node][c.Channel] = m
		}
		if c.Gone {
			delete(m, c.Key)
		} else {
			s := c.Sub
			s.Node = e.node
			m[c.Key] = s
		}
	}
	return nil
}

// ListSubscribers pages one entry at a time, the cursor an index.
func (e *nodeEngine) ListSubscribers(_ context.Context, channel, cursor string, _ int) ([]engine.Subscriber, string, error) {
	e.st.mu.Lock()
	defer e.st.mu.Unlock()
	var all []engine.Subscriber
	for node, chans := range e.st.entries {
		if node == e.node {
			continue
		}
		for _, s := range chans[channel] {
			all = append(all, s)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	i := 0
	if cursor != "" {
		var err error
		if i, err = strconv.Atoi(cursor); err != nil {
			return nil, "", engine.ErrBadCursor
		}
	}
	if i >= len(all) {
		return nil, "", nil
	}
	next := ""
	if i+1 < len(all) {
		next = strconv.Itoa(i + 1)
	}
	return all[i : i+1], next, nil
}

func (st *presenceStore) lose(node string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.lost[node] = true
	st.entries[node] = nil
}

func (st *presenceStore) listed(node, channel string) []string {
	st.mu.Lock()
	defer st.mu.Unlock()
	var ids []string
	for _, s := range st.entries[node][channel] {
		ids = append(ids, s.ID)
	}
	slices.Sort(ids)
	return ids
}

// described is a recorder with a hostid.
type described struct {
	recorder
	id string
}

func (d *described) Describe() (id, transport string) { return d.id, "test" }

var fastPresence = hub.Options{PresenceFlush: 5 * time.Millisecond, CountCache: time.Millisecond, PresenceTTL: time.Minute}

func nodeHub(t *testing.T, st *presenceStore, node string, opts hub.Options) *hub.Hub {
	opts.Node = node
	return startHub(t, &nodeEngine{Engine: memory.New(engine.Limits{MaxMessages: 10}), st: st, node: node}, opts)
}

// TestPresenceOtherNodes: the subscribers of another node count in
// CountSubscribers and Channels, and are listed, and leave both once they
// left or their node closed.
func TestPresenceOtherNodes(t *testing.T) {
	st := newPresenceStore()
	h1 := nodeHub(t, st, "n1", fastPresence)
	h2 := nodeHub(t, st, "n2", fastPresence)
	a, b := &described{id: "ha"}, &described{id: "hb"}
	subscribe(t, h1, a, hub.Sub{Channel: "c"})
	subscribe(t, h1, b, hub.Sub{Channel: "c"})
	subscribe(t, h2, &described{id: "hz"}, hub.Sub{Channel: "c"})
	if !waitFor(func() bool { return h2.CountSubscribers("c") == 3 && h1.CountSubscribers("c") == 3 }) {
		t.Fatalf("counts %d on n1, %d on n2; want 3 (2 on n1, 1 on n2)", h1.CountSubscribers("c"), h2.CountSubscribers("c"))
	}
	if n := h2.LocalSubscribers("c"); n != 1 {
		t.Errorf("LocalSubscribers on n2 = %d, want 1", n)
	}
	chans, err := h2.Channels(context.Background())
	if err != nil || len(chans) != 1 || chans[0].Subscribers != 3 {
		t.Errorf("Channels on n2 = %+v, %v; want c with 3", chans, err)
	}
	if !waitFor(func() bool { return slices.Equal(st.listed("n1", "c"), []string{"ha", "hb"}) }) {
		t.Fatalf("n1 reported %v", st.listed("n1", "c"))
	}
	// n2's own first, then n1's, one page each (the fake's pages are one
	// entry; the hub's are limit).
	var got []string
	cursor, pages := "", 0
	for {
		subs, next, err := h2.ListSubscribers(context.Background(), "c", cursor, 1)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range subs {
			got = append(got, s.Node+"/"+s.ID+"/"+s.Transport)
			if time.Since(s.Since) > time.Minute || s.Since.After(time.Now()) {
				t.Errorf("entry %+v: since is not about now", s)
			}
		}
		pages++
		if next == "" {
			break
		}
		cursor = next
	}
	if want := []string{"n2/hz/test", "n1/ha/test", "n1/hb/test"}; !slices.Equal(got, want) {
		t.Errorf("listed %v, want %v", got, want)
	}
	if _, _, err := h2.ListSubscribers(context.Background(), "c", "zz", 1); !errors.Is(err, engine.ErrBadCursor) {
		t.Errorf("a bad cursor: %v", err)
	}

	h1.Unsubscribe(a)
	if !waitFor(func() bool {
		return h2.CountSubscribers("c") == 2 && slices.Equal(st.listed("n1", "c"), []string{"hb"})
	}) {
		t.Fatalf("after a left: count %d, n1 lists %v", h2.CountSubscribers("c"), st.listed("n1", "c"))
	}
	// A node that closes says it has none.
	h1.Close()
	if !waitFor(func() bool { return h2.CountSubscribers("c") == 1 && len(st.listed("n1", "c")) == 0 }) {
		t.Fatalf("after n1 closed: count %d, n1 lists %v", h2.CountSubscribers("c"), st.listed("n1", "c"))
	}
}

// TestPresenceCountCached: CountSubscribers asks the engine at most once
// per CountCache, however often it is called.
func TestPresenceCountCached(t *testing.T) {
	st := newPresenceStore()
	opts := fastPresence
	opts.CountCache = time.Hour
	h := nodeHub(t, st, "n1", opts)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				h.CountSubscribers("c")
			}
		}()
	}
	wg.Wait()
	st.mu.Lock()
	calls := st.otherCalls
	st.mu.Unlock()
	if calls != 1 {
		t.Errorf("800 counts of one channel made %d engine calls, want 1", calls)
	}
}

// TestPresenceLostEntries: when the store lost this node's entries, the
// hub reports them all again.
func TestPresenceLostEntries(t *testing.T) {
	st := newPresenceStore()
	h := nodeHub(t, st, "n1", fastPresence)
	for i := range 3 {
		subscribe(t, h, &described{id: fmt.Sprintf("h%d", i)}, hub.Sub{Channel: "c"})
	}
	want := []string{"h0", "h1", "h2"}
	if !waitFor(func() bool { return slices.Equal(st.listed("n1", "c"), want) }) {
		t.Fatalf("reported %v", st.listed("n1", "c"))
	}
	st.lose("n1")
	subscribe(t, h, &described{id: "h3"}, hub.Sub{Channel: "c"})
	want = append(want, "h3")
	if !waitFor(func() bool { return slices.Equal(st.listed("n1", "c"), want) }) {
		t.Fatalf("after the store lost them: %v, want %v", st.listed("n1", "c"), want)
	}
	st.mu.Lock()
	fulls := st.fulls
	st.mu.Unlock()
	if fulls != 2 {
		t.Errorf("%d full reports, want 2 (the first, and after the loss)", fulls)
	}
}

// TestPresenceReportsRetried: reports that failed are made again, in
// order, once the store answers; the failures are told.
func TestPresenceReportsRetried(t *testing.T) {
	st := newPresenceStore()
	var failures sync.WaitGroup
	failures.Add(1)
	var once sync.Once
	opts := fastPresence
	opts.OnPresenceError = func(err error) {
		if errors.Is(err, engine.ErrUnavailable) {
			once.Do(failures.Done)
		}
	}
	h := nodeHub(t, st, "n1", opts)
	h2 := nodeHub(t, st, "n2", fastPresence)
	if !waitFor(func() bool { st.mu.Lock(); defer st.mu.Unlock(); return st.fulls == 2 }) {
		t.Fatal("no first full reports")
	}
	st.mu.Lock()
	st.fail = fmt.Errorf("%w: down", engine.ErrUnavailable)
	st.mu.Unlock()
	a, b := &described{id: "a"}, &described{id: "b"}
	subscribe(t, h, a, hub.Sub{Channel: "c"})
	subscribe(t, h, b, hub.Sub{Channel: "c"})
	h.Unsubscribe(a)
	failures.Wait()
	time.Sleep(20 * time.Millisecond) // a few failed ticks
	if got := st.listed("n1", "c"); len(got) != 0 || h2.CountSubscribers("c") != 0 {
		t.Fatalf("reported while the store failed: %v", got)
	}
	st.mu.Lock()
	st.fail = nil
	st.mu.Unlock()
	if !waitFor(func() bool { return slices.Equal(st.listed("n1", "c"), []string{"b"}) && h2.CountSubscribers("c") == 1 }) {
		t.Fatalf("after the store came back: n1 lists %v, n2 counts %d", st.listed("n1", "c"), h2.CountSubscribers("c"))
	}
}

// listAll returns every subscriber h lists of channel, as node/id.
func listAll(t *testing.T, h *hub.Hub, channel string) []string {
	t.Helper()
	var got []string
	for cursor := ""; ; {
		subs, next, err := h.ListSubscribers(context.Background(), channel, cursor, 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range subs {
			got = append(got, s.Node+"/"+s.ID)
		}
		if next == "" {
			return got
		}
		cursor = next
	}
}

// TestPresenceOff: a channel whose namespace has Presence 0 is counted
// but not listed, on this node or in the store; turning it off while
// running takes its entries out of the store, and turning it on again
// lists them again.
func TestPresenceOff(t *testing.T) {
	st := newPresenceStore()
	h1 := nodeHub(t, st, "n1", fastPresence)
	h2 := nodeHub(t, st, "n2", fastPresence)
	off := func(ch string) bool { return ch != "secret" }
	h1.SetPresence(off)
	h2.SetPresence(off)
	subscribe(t, h1, &described{id: "s1"}, hub.Sub{Channel: "secret"})
	subscribe(t, h1, &described{id: "o1"}, hub.Sub{Channel: "open"})
	subscribe(t, h2, &described{id: "s2"}, hub.Sub{Channel: "secret"})
	if !waitFor(func() bool {
		return h2.CountSubscribers("secret") == 2 && slices.Equal(st.listed("n1", "open"), []string{"o1"})
	}) {
		t.Fatalf("count of secret %d (want 2: counted still), n1 lists open %v", h2.CountSubscribers("secret"), st.listed("n1", "open"))
	}
	if got := st.listed("n1", "secret"); len(got) != 0 {
		t.Errorf("n1 reported entries of secret to the store: %v", got)
	}
	for _, h := range []*hub.Hub{h1, h2} {
		if got := listAll(t, h, "secret"); len(got) != 0 {
			t.Errorf("secret listed %v", got)
		}
	}
	if got := listAll(t, h2, "open"); !slices.Equal(got, []string{"n1/o1"}) {
		t.Errorf("open listed %v on n2", got)
	}
	// On again (a reload): listed, reported; off again: gone from the
	// store.
	h1.SetPresence(nil)
	if !waitFor(func() bool { return slices.Equal(st.listed("n1", "secret"), []string{"s1"}) }) {
		t.Fatalf("after SetPresence(nil), n1 reports %v", st.listed("n1", "secret"))
	}
	if got := listAll(t, h1, "secret"); !slices.Equal(got, []string{"n1/s1"}) {
		t.Errorf("secret listed %v on n1 with presence on", got)
	}
	h1.SetPresence(off)
	if !waitFor(func() bool {
		return len(st.listed("n1", "secret")) == 0 && slices.Equal(st.listed("n1", "open"), []string{"o1"})
	}) {
		t.Fatalf("after presence went off, n1 reports secret %v, open %v", st.listed("n1", "secret"), st.listed("n1", "open"))
	}
}

// TestActiveSubscribers: a client counts as active once its subscription
// has begun (activate ran), and no longer once it left.
func TestActiveSubscribers(t *testing.T) {
	h, _ := newHub(t, bare, engine.Limits{MaxMessages: 10}, hub.Options{})
	r := &recorder{}
	joined, activate := h.Subscribe(context.Background(), r, []hub.Sub{{Channel: "a"}}, true)
	if joined[0].Err != nil {
		t.Fatal(joined[0].Err)
	}
	if n, m := h.CountSubscribers("a"), h.ActiveSubscribers("a"); n != 1 || m != 0 {
		t.Fatalf("before activate: counted %d, active %d; want 1, 0", n, m)
	}
	activate()
	if m := h.ActiveSubscribers("a"); m != 1 {
		t.Fatalf("after activate: active %d, want 1", m)
	}
	h.Unsubscribe(r)
	if m := h.ActiveSubscribers("a"); m != 0 {
		t.Fatalf("after Unsubscribe: active %d, want 0", m)
	}
}

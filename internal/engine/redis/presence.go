package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/meteorpush/meteor/internal/engine"
)

// presence keeps the subscriber counts and the presence entries of every
// node in Redis 7.0 (no hash-field TTL, so an index ZSET stands in for
// it). The Redis Engine embeds it: its methods implement engine.Presence
// and engine.SubscriberLister.
//
// Keys, all with a PEXPIRE of the last report's ttl, so that a cluster
// whose nodes all died leaves nothing behind:
//
//	<prefix>:{<channel>}:n   HASH  node → subscribers of channel on node
//	<prefix>:{<channel>}:nx  ZSET  node → expiry of that count (Unix ms)
//	<prefix>:{<channel>}:s   HASH  <node>\x00<inc>\x00<key> → <transport>\x00<since ms>\x00<id>
//	<prefix>:nodes           ZSET  <node>\x00<inc> → expiry of its entries (Unix ms)
//
// A count is the sum over the nodes whose :nx score is in the future, so
// O(nodes) whatever the number of subscribers; expired fields are removed
// lazily by the readers that find them (the meteorpresence library's
// clean function, atomic per channel). An entry is listed while the
// member <node>\x00<inc> of :nodes, its node's incarnation, is live.
// Each full report (the node's first, or after its entries were lost)
// draws a new incarnation, so that whatever the store kept of an older
// one is dead at once, whichever channels it is in: readers drop such
// fields as they page over them (HSCAN). The channel is a hash tag, so
// one channel's keys share a slot of a Redis Cluster; :nodes is one key
// of its own, and no command touches two slots.
//
// The Redis Engine embeds a *presence made by newPresence(rdb, prefix,
// node), with its command client, RedisPrefix and its node id (the
// hub's Options.Node, so that a node leaves its own counts out), and
// gets the four methods: the hub calls them (see each method for who
// calls what, how often). presence owns no goroutine and no connection:
// the Engine's Close closes rdb, after which the methods fail with an
// error wrapping engine.ErrUnavailable; an Engine that must answer
// engine.ErrClosed checks its own state first.
//
// Times are the store's: a ReportCounts that renews every count (once per
// ttl/4) reads Redis's TIME, and the node's clock is corrected by the
// difference, so that the nodes' clocks need not agree.
type presence struct {
	rdb    goredis.UniversalClient
	prefix string
	node   string

	offset atomic.Int64 // the store's clock minus this node's, in ns

	mu       sync.Mutex
	reported map[string]int // guarded by mu; the counts the store holds for this node
	renewed  time.Time      // guarded by mu; when every count's expiry was last renewed
	ttl      time.Duration  // guarded by mu; of the last count report
	inc      string         // guarded by mu; this node's incarnation; "" until a full report succeeded
}

// newPresence returns the presence of node on rdb, its keys under prefix.
func newPresence(rdb goredis.UniversalClient, prefix, node string) *presence {
	return &presence{rdb: rdb, prefix: prefix, node: node, reported: make(map[string]int)}
}

var (
	_ engine.Presence         = (*presence)(nil)
	_ engine.SubscriberLister = (*presence)(nil)
)

func (p *presence) countKey(channel string) string   { return p.prefix + ":{" + channel + "}:n" }
func (p *presence) expiryKey(channel string) string  { return p.prefix + ":{" + channel + "}:nx" }
func (p *presence) entriesKey(channel string) string { return p.prefix + ":{" + channel + "}:s" }
func (p *presence) nodesKey() string                 { return p.prefix + ":nodes" }

// now returns the store's time, in Unix milliseconds.
func (p *presence) now() int64 {
	return time.Now().Add(time.Duration(p.offset.Load())).UnixMilli()
}

// unavailable wraps an error of the store.
func unavailable(what string, err error) error {
	return fmt.Errorf("%w: redis presence: %s: %w", engine.ErrUnavailable, what, err)
}

// ReportCounts implements engine.Presence: counts replaces this node's
// subscriber count per channel, and every count lasts ttl unless renewed.
//
// The hub calls it from one goroutine (calls do not overlap) whenever its
// counts changed, at most every few hundred milliseconds, and at least
// every ttl/3. It writes only what changed since the call before, and
// renews every count's expiry when the last renewal is ttl/4 old: a report
// costs the channels that changed, and every channel of the node once per
// ttl/4. A store that lost its data (a flush, a restart) gets the node's
// unchanged counts back within ttl/4. A count that fell to 0 is removed.
// Each channel's count and expiry are written together (MULTI), so that a
// reader's clean-up never removes a count that was just renewed. It also
// renews the expiry of the channels' :s keys, where the node's entries
// are (ReportSubscribers renews the liveness of the entries themselves).
func (p *presence) ReportCounts(ctx context.Context, counts map[string]int, ttl time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	renew := time.Since(p.renewed) >= p.ttl/4 || ttl != p.ttl
	if renew {
		p.syncClock(ctx)
	}
	exp := float64(p.now() + ttl.Milliseconds())
	queued := 0
	_, err := p.rdb.TxPipelined(ctx, func(pl goredis.Pipeliner) error {
		for ch, n := range counts {
			if n <= 0 {
				continue
			}
			if old, ok := p.reported[ch]; ok && old == n && !renew {
				continue
			}
			pl.HSet(ctx, p.countKey(ch), p.node, n)
			pl.ZAdd(ctx, p.expiryKey(ch), goredis.Z{Score: exp, Member: p.node})
			pl.PExpire(ctx, p.countKey(ch), ttl)
			pl.PExpire(ctx, p.expiryKey(ch), ttl)
			pl.PExpire(ctx, p.entriesKey(ch), ttl)
			queued++
		}
		for ch := range p.reported {
			if counts[ch] <= 0 {
				pl.HDel(ctx, p.countKey(ch), p.node)
				pl.ZRem(ctx, p.expiryKey(ch), p.node)
				queued++
			}
		}
		return nil
	})
	if queued == 0 {
		err = nil // an empty transaction
	}
	if err != nil {
		// What was written is unknown: the next report writes every
		// count, and removes what p.reported still holds.
		p.renewed = time.Time{}
		return unavailable("reporting counts", err)
	}
	clear(p.reported)
	for ch, n := range counts {
		if n > 0 {
			p.reported[ch] = n
		}
	}
	p.ttl = ttl
	if renew {
		p.renewed = time.Now()
	}
	return nil
}

// syncClock reads the store's clock and keeps its difference from this
// node's. Without an answer the last difference stands.
func (p *presence) syncClock(ctx context.Context) {
	sent := time.Now()
	t, err := p.rdb.Time(ctx).Result()
	if err != nil {
		return
	}
	rtt := time.Since(sent)
	p.offset.Store(int64(t.Sub(sent.Add(rtt / 2))))
}

// OtherCounts implements engine.Presence: the subscribers of each channel
// that the other nodes reported and whose report has not expired, in one
// round trip for all the channels. It may be called concurrently; the hub
// calls it for the counts it does not have cached, in batches (a channel
// list), never once per subscriber. A channel holding expired counts is
// cleaned up by a second call.
func (p *presence) OtherCounts(ctx context.Context, channels ...string) ([]int, error) {
	now := p.now()
	from := "(" + strconv.FormatInt(now, 10)
	counts := make([]*goredis.MapStringStringCmd, len(channels))
	lives := make([]*goredis.StringSliceCmd, len(channels))
	_, err := p.rdb.Pipelined(ctx, func(pl goredis.Pipeliner) error {
		for i, ch := range channels {
			counts[i] = pl.HGetAll(ctx, p.countKey(ch))
			lives[i] = pl.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: p.expiryKey(ch), Start: from, Stop: "+inf", ByScore: true})
		}
		return nil
	})
	if err != nil {
		return nil, unavailable("reading counts", err)
	}
	out := make([]int, len(channels))
	var dirty []string
	for i := range channels {
		live := lives[i].Val()
		fields := counts[i].Val()
		for _, node := range live {
			if node == p.node {
				continue
			}
			if n, err := strconv.Atoi(fields[node]); err == nil && n > 0 {
				out[i] += n
			}
		}
		if len(fields) > len(live) {
			dirty = append(dirty, channels[i])
		}
	}
	if len(dirty) > 0 {
		// Counts are right without it; a failure is the next reader's.
		_ = p.clean(ctx, dirty, now)
	}
	return out, nil
}

// presenceLibrary is the meteorpresence function library. clean removes,
// atomically, the counts of a channel whose expiry passed (or that have
// none): KEYS[1] is the :n HASH, KEYS[2] the :nx ZSET, ARGV[1] now in
// Unix ms.
const presenceLibrary = `#!lua name=meteorpresence
redis.register_function('meteorpresence_clean', function(keys, args)
  local now = tonumber(args[1])
  local removed = 0
  for _, node in ipairs(redis.call('HKEYS', keys[1])) do
    local exp = redis.call('ZSCORE', keys[2], node)
    if not exp or tonumber(exp) <= now then
      redis.call('HDEL', keys[1], node)
      removed = removed + 1
    end
  end
  redis.call('ZREMRANGEBYSCORE', keys[2], '-inf', args[1])
  return removed
end)
`

// clean runs the library's clean on channels, loading the library where
// the store has not got it: functions are kept by the store's data, and
// a server that restarted empty, a flushed one or a new cluster master
// has none.
func (p *presence) clean(ctx context.Context, channels []string, now int64) error {
	run := func() error {
		_, err := p.rdb.Pipelined(ctx, func(pl goredis.Pipeliner) error {
			for _, ch := range channels {
				pl.FCall(ctx, "meteorpresence_clean", []string{p.countKey(ch), p.expiryKey(ch)}, now)
			}
			return nil
		})
		return err
	}
	err := run()
	if !functionMissing(err) {
		return err
	}
	if err := p.loadLibrary(ctx); err != nil {
		return err
	}
	return run()
}

// functionMissing reports whether err is the store's answer to a call of
// a function it has not got. Redis says so only in the error's text.
func functionMissing(err error) bool {
	return err != nil && goredis.HasErrorPrefix(err, "Function not found")
}

// loadLibrary loads the meteorpresence library, on every master of a
// cluster.
func (p *presence) loadLibrary(ctx context.Context) error {
	if c, ok := p.rdb.(*goredis.ClusterClient); ok {
		return c.ForEachMaster(ctx, func(ctx context.Context, m *goredis.Client) error {
			return m.FunctionLoadReplace(ctx, presenceLibrary).Err()
		})
	}
	return p.rdb.FunctionLoadReplace(ctx, presenceLibrary).Err()
}

// ReportSubscribers implements engine.SubscriberLister. The hub calls it
// from one goroutine (calls do not overlap) with the changes of its
// entries batched, every 250 ms while there are changes and with none at
// least every ttl/3, which renews the node's liveness. A full report (the
// hub's first, and its answer to ErrPresenceLost) draws a new
// incarnation, makes it live, writes every entry under it and then
// retires the old one: during that call a listing may miss some of the
// node's entries or see them twice. A report that is not full returns
// ErrPresenceLost when the node's incarnation is no longer live: the
// store counted it dead (no report for ttl) or lost it, and readers may
// have removed its entries.
func (p *presence) ReportSubscribers(ctx context.Context, changes []engine.SubscriberChange, full bool, ttl time.Duration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	exp := float64(p.now() + ttl.Milliseconds())
	nodes := p.nodesKey()
	if !full && p.inc == "" {
		return engine.ErrPresenceLost // the store holds nothing of this node's
	}
	if full {
		old := p.inc
		p.inc = newIncarnation()
		member := p.node + "\x00" + p.inc
		// Live first: a reader that pages over an entry of an
		// incarnation it does not know of removes it.
		if err := p.rdb.ZAdd(ctx, nodes, goredis.Z{Score: exp, Member: member}).Err(); err != nil {
			p.inc = ""
			return unavailable("reporting subscribers", err)
		}
		_, err := p.rdb.Pipelined(ctx, func(pl goredis.Pipeliner) error {
			p.writeEntries(ctx, pl, changes, ttl)
			pl.PExpire(ctx, nodes, ttl)
			if old != "" {
				pl.ZRem(ctx, nodes, p.node+"\x00"+old)
			}
			return nil
		})
		if err != nil {
			p.inc = "" // until a full report succeeds
			return unavailable("reporting subscribers", err)
		}
		return nil
	}
	member := p.node + "\x00" + p.inc
	var score *goredis.FloatCmd
	_, err := p.rdb.Pipelined(ctx, func(pl goredis.Pipeliner) error {
		// What is past its expiry goes first, so that a member still
		// present is live and ZADD XX renews only a live one.
		pl.ZRemRangeByScore(ctx, nodes, "-inf", strconv.FormatInt(p.now(), 10))
		score = pl.ZScore(ctx, nodes, member)
		pl.ZAddArgs(ctx, nodes, goredis.ZAddArgs{XX: true, Members: []goredis.Z{{Score: exp, Member: member}}})
		pl.PExpire(ctx, nodes, ttl)
		p.writeEntries(ctx, pl, changes, ttl)
		return nil
	})
	if errors.Is(score.Err(), goredis.Nil) {
		// The changes went under a dead incarnation: nobody lists them.
		p.inc = ""
		return engine.ErrPresenceLost
	}
	if err != nil {
		return unavailable("reporting subscribers", err)
	}
	return nil
}

// writeEntries queues changes on pl under this node's incarnation, one
// HSET and one HDEL per channel. A key is never added again once gone,
// so its last change is its state.
func (p *presence) writeEntries(ctx context.Context, pl goredis.Pipeliner, changes []engine.SubscriberChange, ttl time.Duration) {
	type batch struct {
		set []any
		del []string
	}
	owner := p.node + "\x00" + p.inc + "\x00"
	byChannel := make(map[string]*batch)
	var order []string
	last := make(map[string]int, len(changes)) // field → index of its last change
	for i, c := range changes {
		last[c.Channel+"\x00"+strconv.FormatUint(c.Key, 10)] = i
	}
	for i, c := range changes {
		key := strconv.FormatUint(c.Key, 10)
		if last[c.Channel+"\x00"+key] != i {
			continue
		}
		b := byChannel[c.Channel]
		if b == nil {
			b = &batch{}
			byChannel[c.Channel] = b
			order = append(order, c.Channel)
		}
		field := owner + key
		if c.Gone {
			b.del = append(b.del, field)
		} else {
			b.set = append(b.set, field, encodeEntry(c.Sub))
		}
	}
	for _, ch := range order {
		b := byChannel[ch]
		if len(b.set) > 0 {
			pl.HSet(ctx, p.entriesKey(ch), b.set...)
			pl.PExpire(ctx, p.entriesKey(ch), ttl)
		}
		if len(b.del) > 0 {
			pl.HDel(ctx, p.entriesKey(ch), b.del...)
		}
	}
}

// ListSubscribers implements engine.SubscriberLister: one HSCAN of the
// channel's entries from cursor, then the live incarnations, so that an
// entry written under an incarnation made live meanwhile is not taken for
// a dead one. Entries of dead incarnations on the page are removed. The
// cursor is Redis's HSCAN cursor: an entry present during the whole
// listing is returned at least once, possibly twice. It may be called
// concurrently; the API calls it on an administrator's request.
func (p *presence) ListSubscribers(ctx context.Context, channel, cursor string, limit int) ([]engine.Subscriber, string, error) {
	var at uint64
	if cursor != "" {
		var err error
		if at, err = strconv.ParseUint(cursor, 10, 64); err != nil || at == 0 {
			return nil, "", fmt.Errorf("%w: %q", engine.ErrBadCursor, cursor)
		}
	}
	key := p.entriesKey(channel)
	kvs, next, err := p.rdb.HScan(ctx, key, at, "", int64(max(limit, 1))).Result()
	if err != nil {
		return nil, "", unavailable("listing subscribers", err)
	}
	live, err := p.rdb.ZRangeArgs(ctx, goredis.ZRangeArgs{Key: p.nodesKey(), Start: "(" + strconv.FormatInt(p.now(), 10), Stop: "+inf", ByScore: true}).Result()
	if err != nil {
		return nil, "", unavailable("listing subscribers", err)
	}
	alive := make(map[string]bool, len(live))
	for _, m := range live {
		alive[m] = true
	}
	var out []engine.Subscriber
	var dead []string
	for i := 0; i+1 < len(kvs); i += 2 {
		field, value := kvs[i], kvs[i+1]
		j := strings.LastIndexByte(field, 0)
		if j < 0 || !alive[field[:j]] {
			dead = append(dead, field)
			continue
		}
		node, _, _ := strings.Cut(field, "\x00")
		if node == p.node {
			continue
		}
		s, ok := decodeEntry(value)
		if !ok {
			dead = append(dead, field)
			continue
		}
		s.Node = node
		out = append(out, s)
	}
	if len(dead) > 0 {
		// The listing is right without it; a failure is the next reader's.
		_ = p.rdb.HDel(ctx, key, dead...).Err()
	}
	if next == 0 {
		return out, "", nil
	}
	return out, strconv.FormatUint(next, 10), nil
}

// encodeEntry returns s as the store keeps it: transport, since in Unix
// ms and id, separated by NUL (none of them holds one).
func encodeEntry(s engine.Subscriber) string {
	return s.Transport + "\x00" + strconv.FormatInt(s.Since.UnixMilli(), 10) + "\x00" + s.ID
}

// decodeEntry reverses encodeEntry.
func decodeEntry(v string) (engine.Subscriber, bool) {
	transport, rest, ok1 := strings.Cut(v, "\x00")
	since, id, ok2 := strings.Cut(rest, "\x00")
	ms, err := strconv.ParseInt(since, 10, 64)
	if !ok1 || !ok2 || err != nil {
		return engine.Subscriber{}, false
	}
	return engine.Subscriber{ID: id, Transport: transport, Since: time.UnixMilli(ms)}, true
}

// newIncarnation draws an incarnation: 8 random bytes in hex.
func newIncarnation() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

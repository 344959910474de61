// Package redis is the cluster engine: channel streams in a shared Redis
// (7.0 or later, standalone), so that every meteord on the same Redis and
// prefix is a node of one cluster. Any node accepts publishes, history is
// shared, and each node delivers each message of the channels it has
// subscribers for once, in id order, to its hub.
//
// # Data
//
// Each channel c has a stream P:{c}:h (entries <id>-0 with the text and
// the publish time) and a meta hash P:{c}:m (the newest id handed out, the
// epoch, the newest id dropped). Storing a message and publishing it on
// the pub/sub channel P:{c} is one Redis function (library.lua), so every
// node sees one order per channel. Ids are engine.NextID's max(last+1, now
// in µs) on the Redis server's clock, computed in the function: they keep
// growing after a FLUSHALL, a restart without data or a fail-over that
// lost the last writes (as long as the new server's clock is not behind
// the lost writes), which the dense offsets of other servers do not.
//
// # Delivery and repair
//
// A published message carries its id and the id before it in its channel
// (prev). A node keeps, per subscribed channel, the newest id it delivered
// (last): a message with prev == last is delivered; one with id <= last
// is a duplicate; one with prev > last shows a gap, which the node fills
// from the stream before it delivers the message (a catch-up). A pub/sub
// reconnection, a probe that did not come back (a connection that is open
// but no longer receives), and the audit of idle channels (which finds
// trailing loss: a last message that never arrived) all lead to a
// catch-up of the channels concerned. Clients never see any of it: the
// node repairs, nobody is disconnected. Only when the stream no longer
// holds what the node missed (trimmed, flushed, a new epoch) does the
// engine call HandleReset, and the hub resynchronises those channels'
// subscribers from history, telling each of its gap.
//
// Why go-redis (github.com/redis/go-redis/v9): the client Redis itself
// maintains, with Redis Functions (FCALL), explicit pipelines on one
// connection (one round trip for a batch of publishes or history reads,
// in order), a PubSub that reports reconnections through its subscription
// confirmations, and pool limits (MaxActiveConns) that keep a reconnect
// storm inside the open-files budget. rueidis auto-pipelines and
// allocates less, but its pub/sub hooks hide the confirmations that the
// repair above is built on; go-redis at v9.22 or later has the pub/sub
// reconnect and health-check fixes this engine relies on.
package redis

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/logx"
)

//go:embed library.lua
var library string

// Options configure an Engine.
type Options struct {
	// URL is the Redis server: redis://[user:password@]host:port/db, or
	// rediss:// for TLS.
	URL string
	// Prefix starts every key and pub/sub channel name ("meteor").
	Prefix string
	// Node names this node in commands and presence.
	Node string
	// Timeout bounds each command or pipeline, and dialling (2 s).
	Timeout time.Duration
	// PoolSize bounds the command connections (32).
	PoolSize int
	// Limits bound each channel's stream.
	Limits engine.Limits
	// Logger receives what the engine repairs; nil: slog.Default().
	Logger *slog.Logger

	// Shards is the number of pub/sub connections channels are spread
	// over (2).
	Shards int
	// ProbeInterval is how often each pub/sub connection's probe is sent
	// (5 s); a probe that has not come back after Timeout recycles the
	// connection.
	ProbeInterval time.Duration
	// AuditInterval is how often the channels that received nothing since
	// the last audit are compared with their streams (10 s).
	AuditInterval time.Duration
}

// metaTTL is the shortest life of a channel's meta hash after its last
// publish: far longer than its messages, so that a client coming back to
// an idle channel is told of its gap, and ids go on from the newest one.
const metaTTL = 30 * 24 * time.Hour

// heldMax bounds the messages a channel holds while it catches up; past
// it they are dropped and read from the stream instead.
const heldMax = 4096

// catchUpBatch is the most channels one catch-up pipeline reads.
const catchUpBatch = 256

// subscribeBatch is the most channels one SUBSCRIBE names.
const subscribeBatch = 512

// Engine is the Redis engine. New makes one; Start starts it.
type Engine struct {
	// presence gives the engine its cluster-wide subscriber counts and
	// lists (engine.Presence, engine.SubscriberLister).
	*presence

	opts   Options
	rdb    *goredis.Client
	log    *slog.Logger
	limits atomic.Pointer[engine.Limits]

	handler engine.Handler        // written by Start
	control engine.ControlHandler // written by Start; nil when handler is not one

	ctx    context.Context // ends with Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine Start started

	mu       sync.Mutex
	started  bool                  // guarded by mu
	channels map[string]*chanState // guarded by mu: the subscribed channels
	shards   []*shard              // written by Start
	closed   atomic.Bool

	catchUp   chan struct{}     // wakes the catch-up goroutine
	pendingMu sync.Mutex        // guards pending
	pending   map[string]string // channel → why it must catch up

	libMu     sync.Mutex // one FUNCTION LOAD at a time
	libLoaded atomic.Bool

	subWaitsMu sync.Mutex                 // guards subWaits
	subWaits   map[string][]chan struct{} // pub/sub name → SUBSCRIBE confirmations awaited

	stats Stats
	// lossLog keeps the log of lost connections to one line a second.
	lossLog logx.Limiter
}

// Stats counts what the engine repaired; each field only grows.
type Stats struct {
	// CatchUps counts channel catch-ups from the stream, by cause.
	CatchUpGap, CatchUpReconnect, CatchUpAudit atomic.Uint64
	// Recovered counts messages a catch-up delivered that pub/sub had not.
	Recovered atomic.Uint64
	// Resets counts channels handed to HandleReset: what the node missed
	// was no longer in the stream, or the stream began again.
	Resets atomic.Uint64
	// Rollbacks counts messages whose prev was below the node's last id:
	// the store lost writes the node had delivered (a fail-over).
	Rollbacks atomic.Uint64
	// ProbeFailures counts pub/sub connections recycled because their
	// probe did not come back.
	ProbeFailures atomic.Uint64
	// Reconnects counts pub/sub connections that were lost and made again.
	Reconnects atomic.Uint64
}

// chanState is what a node knows of one subscribed channel.
type chanState struct {
	name  string
	shard *shard

	mu      sync.Mutex
	last    uint64            // guarded by mu: newest id delivered to the handler
	epoch   string            // guarded by mu: the stream last is in; "" unknown
	live    bool              // guarded by mu: deliver as messages arrive; else hold them
	held    []*engine.Message // guarded by mu: arrived while not live
	dropped bool              // guarded by mu: held overflowed
	prevs   []uint64          // guarded by mu: prev of each held message
	gone    bool              // guarded by mu: unsubscribed
	// subscribing is set until Subscribe has read the channel's newest id.
	subscribing bool // guarded by mu
	// resub is set when the connection was lost: the next confirmation of
	// the subscription starts a catch-up.
	resub bool // guarded by mu
	quiet bool // guarded by mu: nothing arrived since the last audit
}

var (
	_ engine.Engine           = (*Engine)(nil)
	_ engine.ChannelLister    = (*Engine)(nil)
	_ engine.HealthChecker    = (*Engine)(nil)
	_ engine.Control          = (*Engine)(nil)
	_ engine.LimitSetter      = (*Engine)(nil)
	_ engine.Presence         = (*Engine)(nil)
	_ engine.SubscriberLister = (*Engine)(nil)
)

// quietOnce routes go-redis's own log (one line per failed dial) to
// slog's debug level: the engine logs what matters, rate-limited.
var quietOnce sync.Once

type debugLog struct{}

func (debugLog) Printf(ctx context.Context, format string, v ...any) {
	slog.Default().DebugContext(ctx, "go-redis: "+fmt.Sprintf(format, v...))
}

// New returns an engine on the Redis of opts, not connected: Start
// connects.
func New(opts Options) (*Engine, error) {
	quietOnce.Do(func() { goredis.SetLogger(debugLog{}) })
	ro, err := goredis.ParseURL(opts.URL)
	if err != nil {
		return nil, fmt.Errorf("RedisURL: %w", err)
	}
	if opts.Prefix == "" {
		opts.Prefix = "meteor"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.PoolSize <= 0 {
		opts.PoolSize = 32
	}
	if opts.Shards <= 0 {
		opts.Shards = 2
	}
	if opts.ProbeInterval <= 0 {
		opts.ProbeInterval = 5 * time.Second
	}
	if opts.AuditInterval <= 0 {
		opts.AuditInterval = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	ro.DialTimeout = opts.Timeout
	ro.ReadTimeout = opts.Timeout
	ro.WriteTimeout = opts.Timeout
	ro.ContextTimeoutEnabled = true
	ro.PoolSize = opts.PoolSize
	ro.MaxActiveConns = opts.PoolSize
	ro.PoolTimeout = opts.Timeout
	ro.MaxRetries = 0 // a publish is never sent twice behind the caller's back
	ro.DisableIdentity = true
	e := &Engine{
		opts:     opts,
		rdb:      goredis.NewClient(ro),
		log:      opts.Logger,
		channels: make(map[string]*chanState),
		catchUp:  make(chan struct{}, 1),
		pending:  make(map[string]string),
		subWaits: make(map[string][]chan struct{}),
	}
	e.presence = newPresence(e.rdb, opts.Prefix, opts.Node)
	l := opts.Limits
	e.limits.Store(&l)
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e, nil
}

// Stats returns the engine's repair counters.
func (e *Engine) Stats() *Stats { return &e.stats }

// SetLimits implements engine.LimitSetter.
func (e *Engine) SetLimits(l engine.Limits) { e.limits.Store(&l) }

// key returns the name of one of channel's keys: P:{c}:suffix.
func (e *Engine) key(channel, suffix string) string {
	return e.opts.Prefix + ":{" + channel + "}:" + suffix
}

// pubsubName returns the pub/sub channel of a meteor channel: P:{c}.
func (e *Engine) pubsubName(channel string) string {
	return e.opts.Prefix + ":{" + channel + "}"
}

// channelOf returns the meteor channel of a pub/sub channel name, "" when
// it is not one.
func (e *Engine) channelOf(name string) string {
	p := e.opts.Prefix + ":{"
	if !strings.HasPrefix(name, p) || !strings.HasSuffix(name, "}") {
		return ""
	}
	return name[len(p) : len(name)-1]
}

// controlName is the pub/sub channel of commands between nodes.
func (e *Engine) controlName() string { return e.opts.Prefix + ":ctl" }

// Start implements engine.Engine. It returns at once when Redis cannot be
// reached (Ready says so, and the pub/sub connections keep trying): a node
// that starts before its Redis serves as soon as Redis does.
func (e *Engine) Start(ctx context.Context, h engine.Handler) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed.Load() {
		return engine.ErrClosed
	}
	if e.started {
		return nil
	}
	e.started = true
	e.handler = h
	e.control, _ = h.(engine.ControlHandler)
	if err := e.loadLibrary(ctx); err != nil {
		e.log.Warn("redis engine: Redis cannot be reached at start; retrying", "url", redactURL(e.opts.URL), "error", err)
	}
	for i := range e.opts.Shards {
		s := newShard(e, i)
		e.shards = append(e.shards, s)
	}
	for _, s := range e.shards {
		e.wg.Add(1)
		go s.run()
	}
	e.wg.Add(2)
	go e.catchUpLoop()
	go e.auditLoop()
	return nil
}

// redactURL hides the password of a Redis URL, for the log.
func redactURL(u string) string {
	at := strings.LastIndexByte(u, '@')
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 {
		return u
	}
	return u[:scheme+3] + "…@" + u[at+1:]
}

// Close implements engine.Engine.
func (e *Engine) Close(ctx context.Context) error {
	if e.closed.Swap(true) {
		return nil
	}
	e.cancel()
	for _, s := range e.shards {
		s.close()
	}
	done := make(chan struct{})
	go func() {
		e.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	e.rdb.Close()
	return err
}

// check returns why a call cannot start: the engine is closed, or ctx
// ended.
func (e *Engine) check(ctx context.Context) error {
	if e.closed.Load() {
		return engine.ErrClosed
	}
	return ctx.Err()
}

// fail turns an error of go-redis into the engine's: ctx's own error as
// it is, anything else (a network error, a timeout, a Redis that is
// loading, read-only or out of memory) wrapping engine.ErrUnavailable.
func (e *Engine) fail(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if e.closed.Load() {
		return engine.ErrClosed
	}
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("redis engine: %w", cerr)
	}
	return fmt.Errorf("%w: redis: %v", engine.ErrUnavailable, err)
}

// missingLibrary reports whether err says the function library is not
// loaded (a Redis restarted without data, FUNCTION FLUSH).
func missingLibrary(err error) bool {
	return err != nil && strings.Contains(err.Error(), "Function not found")
}

// loadLibrary loads the function library, replacing any older version.
func (e *Engine) loadLibrary(ctx context.Context) error {
	e.libMu.Lock()
	defer e.libMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	if err := e.rdb.FunctionLoadReplace(ctx, library).Err(); err != nil {
		return err
	}
	e.libLoaded.Store(true)
	return nil
}

// pipeline runs the commands that add adds to a pipeline, in order on one
// connection, loading the library and running them again when Redis had
// lost it. It returns the commands, whose own errors the caller reads.
func (e *Engine) pipeline(ctx context.Context, add func(p goredis.Pipeliner) []goredis.Cmder) ([]goredis.Cmder, error) {
	if err := e.check(ctx); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		ctx2, cancel := context.WithTimeout(ctx, e.opts.Timeout)
		p := e.rdb.Pipeline()
		cmds := add(p)
		_, err := p.Exec(ctx2)
		cancel()
		if attempt == 0 && len(cmds) > 0 && missingLibrary(cmds[0].Err()) {
			if lerr := e.loadLibrary(ctx); lerr != nil {
				return nil, e.fail(ctx, lerr)
			}
			continue
		}
		if err != nil && (len(cmds) == 0 || !isReplyError(err)) {
			return cmds, e.fail(ctx, err)
		}
		return cmds, nil
	}
}

// isReplyError reports whether err is an error reply of Redis (which
// belongs to one command), not a failure of the connection.
func isReplyError(err error) bool {
	var re goredis.Error
	return errors.As(err, &re) && !errors.Is(err, context.DeadlineExceeded)
}

// metaTTLSeconds is the meta hash's life: metaTTL, or twice the age limit
// when that is longer.
func metaTTLSeconds(maxAge time.Duration) int64 {
	return int64(max(metaTTL, 2*maxAge) / time.Second)
}

// limitArgs are one channel's limits as meteor_publish_limits and
// meteor_history take them.
type limitArgs struct {
	channel        string
	maxLen, maxAge string
	ttl            string // of the meta hash, in seconds
}

// channelLimitArgs returns channel's limits as arguments; last, the
// previous answer, is reused when it is of the same channel.
func channelLimitArgs(l *engine.Limits, channel string, last *limitArgs) limitArgs {
	if last != nil && last.channel == channel {
		return *last
	}
	n, age := l.Of(channel)
	return limitArgs{
		channel: channel,
		maxLen:  strconv.Itoa(max(n, 0)),
		maxAge:  strconv.FormatInt(age.Microseconds(), 10),
		ttl:     strconv.FormatInt(metaTTLSeconds(age), 10),
	}
}

// publishBatch is the most messages one meteor_publish_limits call stores.
const publishBatch = 256

// Publish implements engine.Engine: meteor_publish_limits calls of up to
// publishBatch messages each, in one pipeline, in order, on one
// connection; each call is one atomic step in Redis. On error it returns
// the messages stored before it; the messages of a call that failed are
// not stored.
func (e *Engine) Publish(ctx context.Context, pubs ...engine.Publication) ([]*engine.Message, error) {
	if len(pubs) == 0 {
		return nil, e.check(ctx)
	}
	l := e.limits.Load()
	var la limitArgs
	cmds, err := e.pipeline(ctx, func(p goredis.Pipeliner) []goredis.Cmder {
		var cmds []goredis.Cmder
		for rest := pubs; len(rest) > 0; {
			batch := rest[:min(len(rest), publishBatch)]
			rest = rest[len(batch):]
			keys := make([]string, 0, 2*len(batch))
			args := make([]any, 0, 6*len(batch))
			for _, pb := range batch {
				la = channelLimitArgs(l, pb.Channel, &la)
				keys = append(keys, e.key(pb.Channel, "h"), e.key(pb.Channel, "m"))
				args = append(args, e.pubsubName(pb.Channel), pb.Text, engine.NewEpoch(), la.maxLen, la.maxAge, la.ttl)
			}
			cmds = append(cmds, p.FCall(ctx, "meteor_publish_limits", keys, args...))
		}
		return cmds
	})
	if err != nil && cmds == nil {
		return nil, err
	}
	out := make([]*engine.Message, 0, len(pubs))
	for _, c := range cmds {
		if c.Err() != nil {
			if err == nil {
				err = e.fail(ctx, c.Err())
			}
			return out, err
		}
		vals, verr := c.(*goredis.Cmd).StringSlice()
		if verr != nil || len(vals) != 3*min(len(pubs)-len(out), publishBatch) {
			return out, e.fail(ctx, fmt.Errorf("meteor_publish_limits answered %d values, %v", len(vals), verr))
		}
		for i := 0; i < len(vals); i += 3 {
			pb := pubs[len(out)]
			id, _ := strconv.ParseUint(vals[i], 10, 64)
			ms, _ := strconv.ParseInt(vals[i+2], 10, 64)
			out = append(out, &engine.Message{Channel: pb.Channel, ID: id, Epoch: vals[i+1], Text: pb.Text, Time: time.UnixMilli(ms)})
		}
	}
	return out, err
}

// queryArgs returns meteor_history's arguments for q, with the channel's
// limits.
func queryArgs(q engine.Query, la limitArgs) []any {
	kind := "none"
	switch q.Kind {
	case engine.QueryAfter:
		kind = "after"
	case engine.QueryLast:
		kind = "last"
	case engine.QueryAll:
		kind = "all"
	}
	return []any{kind, strconv.FormatUint(q.After.ID, 10), q.After.Epoch, strconv.Itoa(q.Last), la.maxAge, la.maxLen}
}

// History implements engine.Engine: one pipeline of meteor_history calls.
func (e *Engine) History(ctx context.Context, reqs ...engine.HistoryRequest) ([]engine.History, error) {
	if len(reqs) == 0 {
		return nil, e.check(ctx)
	}
	l := e.limits.Load()
	cmds, err := e.pipeline(ctx, func(p goredis.Pipeliner) []goredis.Cmder {
		cmds := make([]goredis.Cmder, len(reqs))
		for i, r := range reqs {
			cmds[i] = p.FCallRO(ctx, "meteor_history", []string{e.key(r.Channel, "h"), e.key(r.Channel, "m")}, queryArgs(r.Query, channelLimitArgs(l, r.Channel, nil))...)
		}
		return cmds
	})
	if err != nil {
		return nil, err
	}
	out := make([]engine.History, len(reqs))
	for i, c := range cmds {
		h, herr := parseHistory(reqs[i].Channel, c)
		if herr != nil {
			return nil, e.fail(ctx, herr)
		}
		out[i] = h
	}
	return out, nil
}

// parseHistory reads meteor_history's answer.
func parseHistory(channel string, c goredis.Cmder) (engine.History, error) {
	if err := c.Err(); err != nil {
		return engine.History{}, err
	}
	vals, err := c.(*goredis.Cmd).Slice()
	if err != nil {
		return engine.History{}, err
	}
	if len(vals) == 0 {
		return engine.History{}, nil
	}
	if len(vals) < 6 || (len(vals)-6)%3 != 0 {
		return engine.History{}, fmt.Errorf("meteor_history answered %d values", len(vals))
	}
	str := func(v any) string { s, _ := v.(string); return s }
	num := func(v any) uint64 {
		switch x := v.(type) {
		case string:
			n, _ := strconv.ParseUint(x, 10, 64)
			return n
		case int64:
			return uint64(x)
		}
		return 0
	}
	h := engine.History{Stream: engine.Stream{
		Epoch: str(vals[0]), Trimmed: num(vals[2]), Count: int(num(vals[3])),
		First: num(vals[4]), Last: num(vals[5]),
	}}
	if top := num(vals[1]); h.Stream.Trimmed == 0 && h.Stream.Last < top && h.Stream.Count == 0 {
		h.Stream.Trimmed = top
	}
	for i := 6; i < len(vals); i += 3 {
		ms := int64(num(vals[i+1]))
		h.Messages = append(h.Messages, &engine.Message{
			Channel: channel, ID: num(vals[i]), Epoch: h.Stream.Epoch, Text: str(vals[i+2]), Time: time.UnixMilli(ms),
		})
	}
	return h, nil
}

// Clear implements engine.Engine. Clear of every channel scans the
// keyspace for the engine's streams: an administrator's command.
func (e *Engine) Clear(ctx context.Context, channel string) error {
	names := []string{channel}
	if channel == "" {
		var err error
		if names, err = e.scanChannels(ctx); err != nil {
			return err
		}
	}
	for len(names) > 0 {
		n := min(len(names), catchUpBatch)
		batch := names[:n]
		names = names[n:]
		cmds, err := e.pipeline(ctx, func(p goredis.Pipeliner) []goredis.Cmder {
			cmds := make([]goredis.Cmder, len(batch))
			for i, c := range batch {
				cmds[i] = p.FCall(ctx, "meteor_clear", []string{e.key(c, "h"), e.key(c, "m")})
			}
			return cmds
		})
		if err != nil {
			return err
		}
		for _, c := range cmds {
			if c.Err() != nil {
				return e.fail(ctx, c.Err())
			}
		}
	}
	return nil
}

// scanChannels returns the channels that have a meta hash, from a SCAN of
// the keyspace.
func (e *Engine) scanChannels(ctx context.Context) ([]string, error) {
	if err := e.check(ctx); err != nil {
		return nil, err
	}
	match := e.opts.Prefix + ":{*}:m"
	head, tail := e.opts.Prefix+":{", "}:m"
	var names []string
	var cursor uint64
	for {
		ctx2, cancel := context.WithTimeout(ctx, e.opts.Timeout)
		keys, next, err := e.rdb.Scan(ctx2, cursor, match, 1000).Result()
		cancel()
		if err != nil {
			return nil, e.fail(ctx, err)
		}
		for _, k := range keys {
			if strings.HasPrefix(k, head) && strings.HasSuffix(k, tail) && len(k) > len(head)+len(tail) {
				names = append(names, k[len(head):len(k)-len(tail)])
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	sort.Strings(names)
	return slicesCompact(names), nil
}

func slicesCompact(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// Channels implements engine.ChannelLister: a SCAN of the keyspace, then
// one pipeline of stream reads per 256 channels. Every node sees the
// same list.
func (e *Engine) Channels(ctx context.Context) ([]engine.ChannelInfo, error) {
	names, err := e.scanChannels(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]engine.ChannelInfo, 0, len(names))
	for len(names) > 0 {
		n := min(len(names), catchUpBatch)
		reqs := make([]engine.HistoryRequest, n)
		for i, c := range names[:n] {
			reqs[i] = engine.HistoryRequest{Channel: c}
		}
		names = names[n:]
		hs, err := e.History(ctx, reqs...)
		if err != nil {
			return nil, err
		}
		for i, h := range hs {
			if h.Stream.Count > 0 {
				out = append(out, engine.ChannelInfo{Name: reqs[i].Channel, Messages: h.Stream.Count, Last: h.Stream.Last})
			}
		}
	}
	return out, nil
}

// Ready implements engine.HealthChecker: Redis answers a PING within the
// timeout and every pub/sub connection is subscribed.
func (e *Engine) Ready(ctx context.Context) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	ctx2, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	if err := e.rdb.Ping(ctx2).Err(); err != nil {
		return e.fail(ctx, err)
	}
	for _, s := range e.shards {
		if !s.up.Load() {
			return fmt.Errorf("%w: redis: pub/sub connection %d is not connected", engine.ErrUnavailable, s.index)
		}
	}
	return nil
}

// Broadcast implements engine.Control: cmd is published on the control
// channel, which every node's first pub/sub connection subscribes.
func (e *Engine) Broadcast(ctx context.Context, cmd engine.Command) error {
	if err := e.check(ctx); err != nil {
		return err
	}
	ctx2, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()
	return e.fail(ctx, e.rdb.Publish(ctx2, e.controlName(), encodeCommand(cmd)).Err())
}

// encodeCommand renders cmd as the control channel's payload:
// "<kind> <node> <hostid> <channel>", each field quoted.
func encodeCommand(cmd engine.Command) string {
	return strconv.Itoa(int(cmd.Kind)) + " " + strconv.Quote(cmd.Node) + " " + strconv.Quote(cmd.HostID) + " " + strconv.Quote(cmd.Channel)
}

// decodeCommand parses encodeCommand's payload.
func decodeCommand(s string) (engine.Command, bool) {
	kind, rest, ok := strings.Cut(s, " ")
	n, err := strconv.Atoi(kind)
	if !ok || err != nil {
		return engine.Command{}, false
	}
	var fields [3]string
	for i := range fields {
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return engine.Command{}, false
		}
		fields[i], _ = strconv.Unquote(q)
		rest = strings.TrimPrefix(rest[len(q):], " ")
	}
	return engine.Command{Kind: engine.CommandKind(n), Node: fields[0], HostID: fields[1], Channel: fields[2]}, true
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A shard is one process's share of the subscribers: it opens them, reads
// and accounts what they receive, and reports on request. The parent talks
// to it with lines and reads one JSON shardReport line per command:
// "status" (cheap, for polling: connection counts and Distinct only),
// "end <published>" (every count, the latency histogram, and the losses
// among publications 0..published-1; 0: no losses counted) and "close". A shard runs in the parent (through
// pipes) or in a worker process (through stdin and stdout): the same code
// either way.

// shardConfig says which subscribers a shard opens.
type shardConfig struct {
	EP             endpoint      // server, transport and URLs
	Channel        string        // channel every subscriber joins
	N              int           // subscribers in this shard
	First          int           // index of the first, for hostids and sources
	Run            string        // run token, [0-9a-z]+, part of every hostid
	Sources        []netip.Addr  // source addresses, round robin
	Concurrency    int           // connections being opened at once
	ConnectTimeout time.Duration // per connection: connect and header
	ReadBuffer     int           // bytes read per call
	TrackSeqs      int           // publications 0..TrackSeqs-1 whose every delivery's latency is kept (burst)
	Resume         bool          // a subscriber the server drops reconnects and resumes (resume.go)
	ResumeJitter   time.Duration // the most a dropped subscriber waits before its first reconnect
	ResumeAddrs    []string      // where dropped subscribers reconnect; none: the next of EP's
}

// args renders c as the command line of a worker process.
func (c shardConfig) args() []string {
	return []string{"shard",
		"-target", c.EP.Kind, "-transport", c.EP.Transport, "-addr", c.EP.Addr,
		"-prefix", c.EP.Prefix, "-mode", c.EP.Mode, "-channel", c.Channel,
		"-n", strconv.Itoa(c.N), "-first", strconv.Itoa(c.First), "-run", c.Run,
		"-sources", formatSources(c.Sources), "-concurrency", strconv.Itoa(c.Concurrency),
		"-connect-timeout", c.ConnectTimeout.String(), "-read-buffer", strconv.Itoa(c.ReadBuffer),
		"-track-seqs", strconv.Itoa(c.TrackSeqs),
		"-resume=" + strconv.FormatBool(c.Resume), "-resume-jitter", c.ResumeJitter.String(),
		"-resume-addr", strings.Join(c.ResumeAddrs, ",")}
}

// hostID returns the hostid of subscriber i (counted over all shards).
func hostID(run string, i int) string {
	return run + "x" + strconv.FormatInt(int64(i), 36)
}

// shardReport is one shard's answer to a command.
type shardReport struct {
	Event       string  `json:"event"` // connected, status, closed
	Wanted      int     `json:"wanted"`
	OK          int     `json:"ok"`
	Failed      int     `json:"failed"`
	Retries     int     `json:"retries"`
	FirstErr    string  `json:"first_err,omitempty"`
	ConnectSecs float64 `json:"connect_secs"`

	Open         int   `json:"open"`          // connections not closed by the server
	ServerClosed int   `json:"server_closed"` // connections the server ended
	Bytes        int64 `json:"bytes"`         // body bytes read
	Pings        int64 `json:"pings"`
	EOFs         int64 `json:"eofs"` // shutdown messages (eof();)

	Received  int64      `json:"received"` // message frames with a stamp
	Distinct  int64      `json:"distinct"`
	Dups      int64      `json:"dups"`
	Disorder  int64      `json:"disorder"`
	Malformed int64      `json:"malformed"` // script elements not understood
	Foreign   int64      `json:"foreign"`   // messages without a stamp
	Lost      int64      `json:"lost"`      // with "end": publications never received
	Latency   *histogram `json:"latency,omitempty"`
	// SeqMaxUS[seq] is the latest delivery of publication seq, in µs after
	// its publication (with "end", for the first TrackSeqs publications).
	SeqMaxUS []int64 `json:"seq_max_us,omitempty"`

	// With "end": how the losses and duplicates fall on the subscribers.
	LostSubs int   `json:"lost_subs"` // subscribers that missed a publication
	LostMax  int64 `json:"lost_max"`  // the most one missed
	DupSubs  int   `json:"dup_subs"`  // subscribers that got one twice
	DupMax   int64 `json:"dup_max"`

	Resume *resumeReport `json:"resume,omitempty"` // with -resume
}

// maxSeqTracked bounds the publications whose latest delivery a shard
// keeps (the burst scenario's).
const maxSeqTracked = 10000

// merge adds o's counts to r.
func (r *shardReport) merge(o *shardReport) {
	r.Wanted += o.Wanted
	r.OK += o.OK
	r.Failed += o.Failed
	r.Retries += o.Retries
	if r.FirstErr == "" {
		r.FirstErr = o.FirstErr
	}
	r.ConnectSecs = max(r.ConnectSecs, o.ConnectSecs)
	r.Open += o.Open
	r.ServerClosed += o.ServerClosed
	r.Bytes += o.Bytes
	r.Pings += o.Pings
	r.EOFs += o.EOFs
	r.Received += o.Received
	r.Distinct += o.Distinct
	r.Dups += o.Dups
	r.Disorder += o.Disorder
	r.Malformed += o.Malformed
	r.Foreign += o.Foreign
	r.Lost += o.Lost
	for len(r.SeqMaxUS) < len(o.SeqMaxUS) {
		r.SeqMaxUS = append(r.SeqMaxUS, 0)
	}
	for i, v := range o.SeqMaxUS {
		r.SeqMaxUS[i] = max(r.SeqMaxUS[i], v)
	}
	if o.Latency != nil {
		if r.Latency == nil {
			r.Latency = &histogram{}
		}
		r.Latency.Merge(o.Latency)
	}
	r.LostSubs += o.LostSubs
	r.LostMax = max(r.LostMax, o.LostMax)
	r.DupSubs += o.DupSubs
	r.DupMax = max(r.DupMax, o.DupMax)
	if o.Resume != nil {
		if r.Resume == nil {
			r.Resume = &resumeReport{}
		}
		r.Resume.merge(o.Resume)
	}
}

type shard struct {
	cfg          shardConfig
	addrs        []string // cfg.EP's subscriber listeners, then cfg.ResumeAddrs
	dialers      *dialers
	closing      atomic.Bool
	quit         chan struct{} // closed with closing set
	quitOnce     sync.Once
	readers      sync.WaitGroup
	serverClosed atomic.Int64 // once per connection, at its end (without Resume: for good)
	resume       resumeState  // with cfg.Resume

	mu    sync.Mutex
	conns []*benchConn // guarded by mu
}

// benchConn is one subscriber connection. Its reader accounts a whole
// read's frames under its own mutex, which nothing else takes until a
// report is asked for: no lock or counter is shared between connections.
type benchConn struct {
	i    int       // the subscriber's index, over all shards
	addr int       // index in shard.addrs of the listener it is on
	br   io.Reader // the body; only the reader uses it after open

	distinct atomic.Int64 // acct.distinct, stored after each read, for "status"

	mu    sync.Mutex
	nc    net.Conn    // guarded by mu: a resume replaces it
	epoch string      // guarded by mu: the stream's, as the handshake said (Centrifugo)
	acct  connAccount // guarded by mu
}

// runShard opens cfg's subscribers, then answers the commands read from
// cmds on events until "close", the end of cmds, or the end of ctx.
func runShard(ctx context.Context, cfg shardConfig, cmds io.Reader, events io.Writer) error {
	s := &shard{cfg: cfg, addrs: append(cfg.EP.addrs(), cfg.ResumeAddrs...), quit: make(chan struct{}), dialers: newDialers(cfg.Sources, cfg.ConnectTimeout)}
	if len(s.addrs) == len(cfg.ResumeAddrs) {
		return fmt.Errorf("no subscriber address in %q", cfg.EP.Addr)
	}
	enc := json.NewEncoder(events)
	rep := s.connect(ctx)
	if err := enc.Encode(rep); err != nil {
		s.closeAll()
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(cmds)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		var line string
		var ok bool
		select {
		case line, ok = <-lines:
		case <-ctx.Done():
		}
		cmd, arg, _ := strings.Cut(line, " ")
		if !ok || cmd == "close" {
			s.closeAll()
			r := s.status(0, true)
			r.Event = "closed"
			return enc.Encode(r)
		}
		switch cmd {
		case "status":
			r := s.status(0, false)
			r.Event = "status"
			if err := enc.Encode(r); err != nil {
				s.closeAll()
				return err
			}
		case "end":
			published, _ := strconv.Atoi(arg)
			r := s.status(published, true)
			r.Event = "status"
			if err := enc.Encode(r); err != nil {
				s.closeAll()
				return err
			}
		}
	}
}

// connect opens the shard's subscribers, at most cfg.Concurrency at once.
func (s *shard) connect(ctx context.Context) *shardReport {
	start := time.Now()
	rep := &shardReport{Event: "connected", Wanted: s.cfg.N}
	var mu sync.Mutex
	sem := make(chan struct{}, max(s.cfg.Concurrency, 1))
	var wg sync.WaitGroup
	for i := 0; i < s.cfg.N; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			mu.Lock()
			rep.Failed += s.cfg.N - i
			if rep.FirstErr == "" {
				rep.FirstErr = ctx.Err().Error()
			}
			mu.Unlock()
			i = s.cfg.N
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			retries, err := s.open(ctx, s.cfg.First+i)
			mu.Lock()
			defer mu.Unlock()
			rep.Retries += retries
			if err != nil {
				rep.Failed++
				if rep.FirstErr == "" {
					rep.FirstErr = err.Error()
				}
				return
			}
			rep.OK++
		}(i)
	}
	wg.Wait()
	rep.ConnectSecs = time.Since(start).Seconds()
	return rep
}

// open opens subscriber i, retrying a few times on errors that a busy
// listener or a crowded port range cause.
func (s *shard) open(ctx context.Context, i int) (retries int, err error) {
	addr := i % (len(s.addrs) - len(s.cfg.ResumeAddrs))
	for attempt := 0; ; attempt++ {
		var nc net.Conn
		nc, err = s.dialers.dial(ctx, i, s.addrs[addr])
		if err == nil {
			var br io.Reader
			var epoch string
			br, epoch, err = s.cfg.EP.subscribeFrom(nc, hostID(s.cfg.Run, i), s.cfg.Channel, resumePos{}, s.cfg.ConnectTimeout)
			if err == nil {
				c := &benchConn{i: i, addr: addr, nc: nc, br: br, epoch: epoch}
				if s.cfg.TrackSeqs > 0 {
					c.acct.seqLat = make([]int64, s.cfg.TrackSeqs)
				}
				s.mu.Lock()
				s.conns = append(s.conns, c)
				s.mu.Unlock()
				s.readers.Add(1)
				go s.read(c)
				return attempt, nil
			}
			nc.Close()
		}
		transient := errors.Is(err, syscall.EADDRNOTAVAIL) || errors.Is(err, syscall.ECONNRESET) ||
			errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, io.EOF) || errors.Is(err, errBusy)
		if !transient || attempt >= 3 || ctx.Err() != nil {
			return attempt, err
		}
		time.Sleep(time.Duration(50<<attempt) * time.Millisecond)
	}
}

// read reads c until it closes, parsing and accounting its frames, and
// answers Centrifugo's pings. With cfg.Resume, a connection the server
// ends is reopened and resumed (resume.go), and reading goes on. Per read
// it takes c's own mutex once and the clock once; per frame it neither
// locks nor allocates.
func (s *shard) read(c *benchConn) {
	defer s.readers.Done()
	buf := make([]byte, max(s.cfg.ReadBuffer, 64))
	p := s.cfg.EP.parser()
	a := &c.acct
	var now int64
	onFrame := func(f *frame) { a.frame(f, now) }
	br := c.br
	for {
		n, err := br.Read(buf)
		if n > 0 {
			now = time.Now().UnixNano()
			c.mu.Lock()
			a.bytes += int64(n)
			p.Feed(buf[:n], onFrame)
			d := a.distinct
			pongs := 0
			if wp, ok := p.(*wsParser); ok && wp.body == wsCentrifugo {
				pongs = wp.pongs()
			}
			nc := c.nc
			c.mu.Unlock()
			c.distinct.Store(d)
			for range pongs {
				nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, werr := nc.Write(wsPong); werr != nil && err == nil {
					err = werr
				}
			}
		}
		if err != nil {
			if s.closing.Load() {
				return
			}
			s.serverClosed.Add(1)
			if !s.cfg.Resume {
				return
			}
			if br = s.reopen(c); br == nil {
				return
			}
			p = s.cfg.EP.parser() // a new connection's framing
		}
	}
}

// status sums the shard's accounts. Without full, only the connection
// counts and Distinct, from each connection's atomic copy (cheap enough
// to poll); with full, everything, and published > 0 also counts the
// losses among publications 0..published-1.
func (s *shard) status(published int, full bool) *shardReport {
	s.mu.Lock()
	conns := s.conns
	s.mu.Unlock()
	r := &shardReport{
		Wanted:       s.cfg.N,
		OK:           len(conns),
		ServerClosed: int(s.serverClosed.Load()),
	}
	r.Open = r.OK - r.ServerClosed
	if s.cfg.Resume {
		r.Resume = s.resume.report()
		r.Open = r.OK - int(r.Resume.Down) - int(r.Resume.GaveUp)
	}
	if !full {
		for _, c := range conns {
			r.Distinct += c.distinct.Load()
		}
		return r
	}
	var lat denseHist
	var seqMax []int64
	if s.cfg.TrackSeqs > 0 && published > 0 {
		seqMax = make([]int64, min(s.cfg.TrackSeqs, published))
	}
	for _, c := range conns {
		c.mu.Lock()
		a := &c.acct
		r.Received += a.received
		r.Distinct += a.distinct
		r.Dups += a.dups
		if a.dups > 0 {
			r.DupSubs++
			r.DupMax = max(r.DupMax, a.dups)
		}
		r.Disorder += a.disorder
		r.Bytes += a.bytes
		r.Pings += a.pings
		r.EOFs += a.eofs
		r.Malformed += a.malformed
		r.Foreign += a.foreign
		if published > 0 {
			lost := a.lost(published)
			r.Lost += lost
			if lost > 0 {
				r.LostSubs++
				r.LostMax = max(r.LostMax, lost)
			}
		}
		lat.merge(&a.lat)
		for i := range seqMax {
			seqMax[i] = max(seqMax[i], a.seqLat[i])
		}
		c.mu.Unlock()
	}
	r.Latency = lat.sparse()
	r.SeqMaxUS = seqMax
	return r
}

// closeAll closes every connection and waits for the readers.
func (s *shard) closeAll() {
	s.closing.Store(true)
	s.quitOnce.Do(func() { close(s.quit) })
	s.mu.Lock()
	conns := s.conns
	s.mu.Unlock()
	for _, c := range conns {
		c.mu.Lock()
		c.nc.Close()
		c.mu.Unlock()
	}
	s.readers.Wait()
}

// runShardCommand is the worker process's side: the shard's configuration
// on the command line, commands on stdin, reports on stdout.
func runShardCommand(ctx context.Context, args []string, stdin io.Reader, stdout io.Writer) error {
	fs := flag.NewFlagSet("shard", flag.ContinueOnError)
	var cfg shardConfig
	var sources string
	fs.StringVar(&cfg.EP.Kind, "target", targetMeteor, "")
	fs.StringVar(&cfg.EP.Transport, "transport", transportStream, "")
	fs.StringVar(&cfg.EP.Addr, "addr", "", "")
	fs.StringVar(&cfg.EP.Prefix, "prefix", "/push", "")
	fs.StringVar(&cfg.EP.Mode, "mode", "xhrinteractive", "")
	fs.StringVar(&cfg.Channel, "channel", "bench", "")
	fs.IntVar(&cfg.N, "n", 0, "")
	fs.IntVar(&cfg.First, "first", 0, "")
	fs.StringVar(&cfg.Run, "run", "b", "")
	fs.StringVar(&sources, "sources", "", "")
	fs.IntVar(&cfg.Concurrency, "concurrency", 100, "")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", 10*time.Second, "")
	fs.IntVar(&cfg.ReadBuffer, "read-buffer", 4096, "")
	fs.IntVar(&cfg.TrackSeqs, "track-seqs", 0, "")
	fs.BoolVar(&cfg.Resume, "resume", false, "")
	fs.DurationVar(&cfg.ResumeJitter, "resume-jitter", time.Second, "")
	resumeAddrs := fs.String("resume-addr", "", "")
	timeout := fs.Duration("timeout", 10*time.Minute, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var err error
	if cfg.Sources, err = parseSources(sources); err != nil {
		return err
	}
	cfg.ResumeAddrs = (&endpoint{Addr: *resumeAddrs}).addrs()
	if cfg.EP.Addr == "" || cfg.N <= 0 {
		return fmt.Errorf("-addr and -n are required")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	return runShard(ctx, cfg, stdin, stdout)
}

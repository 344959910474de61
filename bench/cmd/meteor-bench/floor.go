//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// The floor server is the least work any push server must do for the
// burst scenario, so that a burst against it measures the floor of the
// machine rather than of a server: it speaks just enough of meteord's
// protocol for the unchanged "meteor-bench burst -target meteor" (the
// xhrinteractive stream's GET, the controller's ADDMESSAGE and
// COUNTSUBSCRIBERS) and nothing else. One channel, no history, no pings,
// no hostids, IPv4 only.
//
// Subscribers are accepted with raw syscalls (the sockets are never in an
// epoll set), their request header is read once, a minimal response header
// is written, and the socket is kept as a bare fd in a slice. An
// ADDMESSAGE builds the message's bytes once and writes them to every fd
// with non-blocking write(2), the slice cut into -writers contiguous
// parts, each written by its own goroutine locked to its own thread; the
// reply OK follows the last write. Every publish is logged with each
// writer's wall and thread CPU time over its write loop. Closed subscribers
// are noticed (a peek per fd) only when the subscribers are counted, never
// on the path of a message.
//
// It is a measuring tool, not a server: a subscriber that cannot take a
// message at once misses it (counted as "full"), one that failed a write
// is dropped.
//
// It is Linux only (accept4, write(2) by raw syscall, the thread CPU clock,
// sched_setaffinity); elsewhere floor-server says so (floor_other.go).

// floorConfig is the floor server's configuration.
type floorConfig struct {
	Addr    string // subscriber listener, IPv4 host:port (port 0: any)
	Ctl     string // controller listener, host:port
	Channel string // the one channel
	Writers int    // write goroutines per publish; 1 writes in the controller's goroutine
	Raw     bool   // RawSyscall: no scheduler bookkeeping around each write
	Pin     bool   // pin writer i to the i-th allowed CPU
	MaxSubs int    // subscribers held at most; more are refused
}

// floorServer is a running floor server.
type floorServer struct {
	cfg     floorConfig
	lfd     int // raw listening socket
	subAddr netip.AddrPort
	ctlLn   net.Listener
	log     io.Writer
	closed  atomic.Bool
	wg      sync.WaitGroup
	stop    chan struct{}
	writers []*floorWriter

	mu       sync.Mutex
	fds      []int32               // subscribers; guarded by mu (appended by the accept loop)
	ctlConns map[net.Conn]struct{} // guarded by mu
	refused  int                   // guarded by mu

	pubMu  sync.Mutex // one publish or count at a time
	nextID int64      // guarded by pubMu
	msg    []byte     // guarded by pubMu
	stats  []floorPublish
}

// floorPublish is what one publish cost.
type floorPublish struct {
	ID      int64
	Subs    int
	Wall    time.Duration // ADDMESSAGE read → last write done
	Writers []floorWriterResult
}

// floorWriterResult is one writer's share of a publish.
type floorWriterResult struct {
	Writes int
	Full   int           // EAGAIN: the subscriber's socket buffer was full
	Wall   time.Duration // the write loop
	CPU    time.Duration // the writer thread's CPU time over the loop
	dead   []int32       // fds whose write failed or was short
}

// usPerWrite returns the writer's wall time per write in µs.
func (r floorWriterResult) usPerWrite() float64 {
	if r.Writes == 0 {
		return 0
	}
	return float64(r.Wall.Nanoseconds()) / 1e3 / float64(r.Writes)
}

func runFloor(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("floor-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg floorConfig
	fs.StringVar(&cfg.Addr, "addr", "127.0.0.1:4670", "subscriber listener, IPv4 host:port")
	fs.StringVar(&cfg.Ctl, "controller", "127.0.0.1:4671", "controller listener (ADDMESSAGE, COUNTSUBSCRIBERS), host:port")
	fs.StringVar(&cfg.Channel, "channel", "burst", "the one channel subscribers may join")
	fs.IntVar(&cfg.Writers, "writers", 0, "goroutines (threads) writing a message, each to a contiguous part of the subscribers; 0: GOMAXPROCS; 1: the controller's goroutine writes")
	fs.BoolVar(&cfg.Raw, "raw", false, "write with syscall.RawSyscall, without the scheduler's bookkeeping around each call")
	fs.BoolVar(&cfg.Pin, "pin", false, "pin writer i to the i-th CPU the process may use")
	fs.IntVar(&cfg.MaxSubs, "max-subs", 19500, "subscribers held at most (each is an open file)")
	duration := fs.Duration("duration", time.Hour, "exit after this long")
	stdinEOF := fs.Bool("stdin-eof", false, "also exit when standard input ends")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	s, err := newFloorServer(cfg, stderr)
	if err != nil {
		return err
	}
	variant := ""
	if s.cfg.Raw {
		variant += ", raw syscalls"
	}
	if s.cfg.Pin {
		variant += ", pinned"
	}
	fmt.Fprintf(stdout, "floor-server: subscribers on %s, controller on %s, channel %s, %d writer(s)%s, GOMAXPROCS %d\n",
		s.SubscriberAddr(), s.ControllerAddr(), s.cfg.Channel, s.cfg.Writers, variant, runtime.GOMAXPROCS(0))
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()
	if *stdinEOF {
		go func() {
			io.Copy(io.Discard, stdin)
			cancel()
		}()
	}
	s.serve(ctx)
	s.summary(stdout)
	return nil
}

// newFloorServer opens the listeners and starts the writers.
func newFloorServer(cfg floorConfig, log io.Writer) (*floorServer, error) {
	if cfg.Writers <= 0 {
		cfg.Writers = runtime.GOMAXPROCS(0)
	}
	if cfg.MaxSubs <= 0 {
		return nil, errors.New("-max-subs must be positive")
	}
	if cfg.Channel == "" || strings.ContainsAny(cfg.Channel, "/ \t\r\n?") {
		return nil, fmt.Errorf("bad channel name %q", cfg.Channel)
	}
	ap, err := netip.ParseAddrPort(cfg.Addr)
	if err != nil || !ap.Addr().Is4() {
		return nil, fmt.Errorf("-addr %q: want an IPv4 host:port", cfg.Addr)
	}
	s := &floorServer{cfg: cfg, log: log, stop: make(chan struct{}), ctlConns: map[net.Conn]struct{}{}}
	if s.lfd, s.subAddr, err = floorListen(ap); err != nil {
		return nil, fmt.Errorf("subscriber listener: %w", err)
	}
	if s.ctlLn, err = net.Listen("tcp", cfg.Ctl); err != nil {
		syscall.Close(s.lfd)
		return nil, fmt.Errorf("controller listener: %w", err)
	}
	if cfg.Writers > 1 || cfg.Pin {
		cpus := allowedCPUs()
		for i := range cfg.Writers {
			w := &floorWriter{raw: cfg.Raw, pin: -1, jobs: make(chan []int32, 1), done: make(chan floorWriterResult, 1)}
			if cfg.Pin && len(cpus) > 0 {
				w.pin = cpus[i%len(cpus)]
			}
			s.writers = append(s.writers, w)
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				w.run(s, log)
			}()
		}
	}
	return s, nil
}

// floorListen opens a blocking IPv4 listening socket on ap.
func floorListen(ap netip.AddrPort) (int, netip.AddrPort, error) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, ap, err
	}
	sa := &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	if err = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err == nil {
		if err = syscall.Bind(fd, sa); err == nil {
			err = syscall.Listen(fd, 4096)
		}
	}
	if err == nil {
		var got syscall.Sockaddr
		if got, err = syscall.Getsockname(fd); err == nil {
			if in4, ok := got.(*syscall.SockaddrInet4); ok {
				ap = netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port))
			}
		}
	}
	if err != nil {
		syscall.Close(fd)
		return -1, ap, err
	}
	return fd, ap, nil
}

func (s *floorServer) SubscriberAddr() string { return s.subAddr.String() }
func (s *floorServer) ControllerAddr() string { return s.ctlLn.Addr().String() }

// serve accepts subscribers and controller connections until ctx ends,
// then closes everything.
func (s *floorServer) serve(ctx context.Context) {
	s.wg.Add(2)
	go s.acceptSubscribers()
	go s.acceptControllers()
	<-ctx.Done()
	s.closed.Store(true)
	syscall.Shutdown(s.lfd, syscall.SHUT_RDWR) // wakes the blocked accept
	s.ctlLn.Close()
	s.mu.Lock()
	for c := range s.ctlConns {
		c.Close()
	}
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	syscall.Close(s.lfd)
	s.mu.Lock()
	for _, fd := range s.fds {
		syscall.Close(int(fd))
	}
	s.fds = nil
	s.mu.Unlock()
}

// acceptSubscribers accepts one subscriber at a time, reads its request
// and answers it, in this goroutine: a blocking accept4, a blocking read.
func (s *floorServer) acceptSubscribers() {
	defer s.wg.Done()
	buf := make([]byte, 8192)
	for !s.closed.Load() {
		fd, _, err := syscall.Accept4(s.lfd, syscall.SOCK_CLOEXEC)
		if err != nil {
			if s.closed.Load() {
				return
			}
			if err != syscall.EINTR && err != syscall.ECONNABORTED {
				fmt.Fprintf(s.log, "floor-server: accept: %v\n", err)
				time.Sleep(10 * time.Millisecond) // EMFILE and the like
			}
			continue
		}
		if err := s.admit(fd, buf); err != nil {
			syscall.Close(fd)
		}
	}
}

var (
	floorOK       = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-cache\r\n\r\n")
	floorNotFound = []byte("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	floorFull     = []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
)

// admit reads fd's request header (5 s at most), answers it, and keeps fd
// as a subscriber if the request is a GET of the channel.
func (s *floorServer) admit(fd int, buf []byte) error {
	tv := syscall.Timeval{Sec: 5}
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_SNDTIMEO, &tv)
	n := 0
	for !bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
		if n == len(buf) {
			return errors.New("request header too long")
		}
		m, err := syscall.Read(fd, buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if m == 0 {
			return io.EOF
		}
		n += m
	}
	reply := floorOK
	// GET <prefix>/<hostid>/<mode>/<channel>[?query] HTTP/1.1: only the
	// last path element counts.
	path, ok := bytes.CutPrefix(buf[:n], []byte("GET "))
	if ok {
		path, _, _ = bytes.Cut(path, []byte(" "))
		path, _, _ = bytes.Cut(path, []byte("?"))
		ok = string(path[bytes.LastIndexByte(path, '/')+1:]) == s.cfg.Channel
	}
	s.mu.Lock()
	full := len(s.fds) >= s.cfg.MaxSubs
	if full {
		s.refused++
	}
	s.mu.Unlock()
	switch {
	case !ok:
		reply = floorNotFound
	case full:
		reply = floorFull
	}
	if err := floorWriteAll(fd, reply); err != nil {
		return err
	}
	if !ok || full {
		return errors.New("refused")
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		return err
	}
	s.mu.Lock()
	s.fds = append(s.fds, int32(fd))
	s.mu.Unlock()
	return nil
}

// floorWriteAll writes b to the blocking fd.
func floorWriteAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func (s *floorServer) acceptControllers() {
	defer s.wg.Done()
	for {
		c, err := s.ctlLn.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed.Load() {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.ctlConns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.controller(c)
			s.mu.Lock()
			delete(s.ctlConns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// controller answers one controller connection: ADDMESSAGE <channel>
// <text>, COUNTSUBSCRIBERS <channel> and QUIT, one line each.
func (s *floorServer) controller(c net.Conn) {
	br := bufio.NewReaderSize(c, 64<<10)
	var out []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if err == bufio.ErrBufferFull {
				c.Write([]byte("ERR Line too long\r\n"))
			}
			return
		}
		line = bytes.TrimRight(line, "\r\n")
		verb, rest, _ := bytes.Cut(line, []byte(" "))
		out = out[:0]
		var logged *floorPublish
		switch string(verb) {
		case "ADDMESSAGE":
			ch, text, _ := bytes.Cut(rest, []byte(" "))
			p := s.publish(string(ch), text)
			out = append(strconv.AppendInt(append(out, "OK\t"...), p.ID, 10), "\r\n"...)
			if p.Subs > 0 {
				logged = &p
			}
		case "COUNTSUBSCRIBERS":
			n := s.count(string(bytes.TrimSpace(rest)))
			out = append(strconv.AppendInt(append(out, "OK "...), int64(n), 10), "\r\n"...)
		case "QUIT":
			return
		default:
			out = append(out, "ERR Invalid command syntax\r\n"...)
		}
		if _, err := c.Write(out); err != nil {
			return
		}
		if logged != nil {
			s.logPublish(logged)
		}
	}
}

// publish sends one message to every subscriber of ch and returns its id
// and cost.
func (s *floorServer) publish(ch string, text []byte) floorPublish {
	start := time.Now()
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	p := floorPublish{ID: s.nextID}
	s.nextID++
	if ch != s.cfg.Channel {
		return p
	}
	s.msg = appendFloorMessage(s.msg[:0], p.ID, ch, text)
	s.mu.Lock()
	fds := s.fds[:len(s.fds):len(s.fds)] // the accept loop only appends
	s.mu.Unlock()
	p.Subs = len(fds)
	if len(fds) == 0 {
		return p
	}
	if len(s.writers) == 0 {
		runtime.LockOSThread() // for threadCPU
		r := floorWrite(s.msg, fds, s.cfg.Raw)
		runtime.UnlockOSThread()
		p.Writers = append(p.Writers, r)
	} else {
		// jobs and done hold one each: neither side ever blocks on the
		// other, so a writer that stopped cannot hang a publish.
		k := len(s.writers)
		for i, w := range s.writers {
			w.msg = s.msg
			w.jobs <- fds[i*len(fds)/k : (i+1)*len(fds)/k]
		}
		for _, w := range s.writers {
			select {
			case r := <-w.done:
				p.Writers = append(p.Writers, r)
			case <-s.stop:
				p.Subs = 0 // not logged
				return p
			}
		}
	}
	p.Wall = time.Since(start)
	var dead []int32
	for i := range p.Writers {
		dead = append(dead, p.Writers[i].dead...)
		p.Writers[i].dead = nil
	}
	if len(dead) > 0 {
		s.drop(func(fd int32) bool { return slices.Contains(dead, fd) })
	}
	s.stats = append(s.stats, p)
	return p
}

// count returns ch's subscribers, first dropping those that closed.
func (s *floorServer) count(ch string) int {
	if ch != s.cfg.Channel {
		return 0
	}
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	var b [1]byte
	s.drop(func(fd int32) bool {
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		if err != nil {
			return err != syscall.EAGAIN && err != syscall.EINTR
		}
		return n == 0 // EOF; n > 0 is a subscriber that sent more, still there
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.fds)
}

// drop closes and forgets the subscribers for which gone is true. The
// caller holds pubMu.
func (s *floorServer) drop(gone func(int32) bool) {
	s.mu.Lock()
	fds := s.fds[:len(s.fds):len(s.fds)]
	s.mu.Unlock()
	var closed []int32
	keep := make([]int32, 0, len(fds))
	for _, fd := range fds {
		if gone(fd) {
			closed = append(closed, fd)
		} else {
			keep = append(keep, fd)
		}
	}
	if len(closed) == 0 {
		return
	}
	s.mu.Lock()
	s.fds = append(keep, s.fds[len(fds):]...) // with those accepted meanwhile
	s.mu.Unlock()
	for _, fd := range closed {
		syscall.Close(int(fd))
	}
}

// appendFloorMessage appends the xhrinteractive stream's message element,
// the text escaped for a JavaScript string literal.
func appendFloorMessage(b []byte, id int64, ch string, text []byte) []byte {
	b = append(b, `<script>p(`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"`...)
	b = append(b, ch...)
	b = append(b, `","`...)
	for _, c := range text {
		switch c {
		case '\\', '"':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, `\n`...)
		case '\r':
			b = append(b, `\r`...)
		case '<':
			b = append(b, `\u003c`...)
		default:
			b = append(b, c)
		}
	}
	return append(b, "\");</script>\r\n"...)
}

// floorWriter is one writing goroutine, locked to its thread.
type floorWriter struct {
	raw  bool
	pin  int // CPU, or -1
	msg  []byte
	jobs chan []int32
	done chan floorWriterResult
}

func (w *floorWriter) run(s *floorServer, log io.Writer) {
	// Locked, and never unlocked: the thread ends with the goroutine, so a
	// changed CPU affinity goes with it.
	runtime.LockOSThread()
	if w.pin >= 0 {
		if err := pinThread(w.pin); err != nil {
			fmt.Fprintf(log, "floor-server: pinning a writer to CPU %d: %v\n", w.pin, err)
		}
	}
	for {
		select {
		case fds := <-w.jobs:
			w.done <- floorWrite(w.msg, fds, w.raw)
		case <-s.stop:
			return
		}
	}
}

// floorWrite writes msg to each fd once, non-blocking, and times the loop.
func floorWrite(msg []byte, fds []int32, raw bool) floorWriterResult {
	r := floorWriterResult{Writes: len(fds)}
	p, n := uintptr(unsafe.Pointer(unsafe.SliceData(msg))), uintptr(len(msg))
	cpu0 := threadCPU()
	t0 := time.Now()
	for _, fd := range fds {
		var m uintptr
		var e syscall.Errno
		if raw {
			m, _, e = syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), p, n)
		} else {
			m, _, e = syscall.Syscall(syscall.SYS_WRITE, uintptr(fd), p, n)
		}
		switch {
		case e == 0 && m == n:
		case e == syscall.EAGAIN:
			r.Full++
		default: // an error, or a short write that broke the stream
			r.dead = append(r.dead, fd)
		}
	}
	r.Wall = time.Since(t0)
	r.CPU = threadCPU() - cpu0
	runtime.KeepAlive(msg)
	return r
}

// threadCPU returns the calling thread's CPU time (CLOCK_THREAD_CPUTIME_ID).
// It means something only in a goroutine locked to its thread.
func threadCPU() time.Duration {
	var ts syscall.Timespec
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, 3, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

// allowedCPUs returns the CPUs this thread may run on.
func allowedCPUs() []int {
	var mask [16]uint64
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0, unsafe.Sizeof(mask), uintptr(unsafe.Pointer(&mask)))
	if e != 0 {
		return nil
	}
	var cpus []int
	for i := range len(mask) * 64 {
		if mask[i/64]&(1<<(i%64)) != 0 {
			cpus = append(cpus, i)
		}
	}
	return cpus
}

// pinThread restricts the calling thread to cpu.
func pinThread(cpu int) error {
	var mask [16]uint64
	if cpu < 0 || cpu >= len(mask)*64 {
		return fmt.Errorf("CPU %d out of range", cpu)
	}
	mask[cpu/64] = 1 << (cpu % 64)
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(mask), uintptr(unsafe.Pointer(&mask)))
	if e != 0 {
		return e
	}
	return nil
}

// logPublish writes one line on what a publish cost.
func (s *floorServer) logPublish(p *floorPublish) {
	var b strings.Builder
	fmt.Fprintf(&b, "floor-server: message %d to %d subscribers in %s;", p.ID, p.Subs, us(p.Wall.Microseconds()))
	for i, r := range p.Writers {
		fmt.Fprintf(&b, " writer %d: %d writes in %s (%.2f µs/write, thread CPU %s)", i, r.Writes, us(r.Wall.Microseconds()),
			r.usPerWrite(), us(r.CPU.Microseconds()))
		if r.Full > 0 {
			fmt.Fprintf(&b, ", %d full", r.Full)
		}
		if len(r.dead) > 0 {
			fmt.Fprintf(&b, ", %d failed", len(r.dead))
		}
	}
	fmt.Fprintln(s.log, b.String())
}

// summary writes the medians over the publishes to at least one
// subscriber.
func (s *floorServer) summary(w io.Writer) {
	s.pubMu.Lock()
	stats := slices.Clone(s.stats)
	s.pubMu.Unlock()
	if len(stats) == 0 {
		fmt.Fprintln(w, "floor-server: no message was delivered")
		return
	}
	var walls, loops, perWrite, cpuPerWrite []float64
	full := 0
	for _, p := range stats {
		walls = append(walls, float64(p.Wall.Microseconds()))
		var longest time.Duration
		for _, r := range p.Writers {
			longest = max(longest, r.Wall)
			perWrite = append(perWrite, r.usPerWrite())
			if r.Writes > 0 {
				cpuPerWrite = append(cpuPerWrite, float64(r.CPU.Nanoseconds())/1e3/float64(r.Writes))
			}
			full += r.Full
		}
		loops = append(loops, float64(longest.Microseconds()))
	}
	med := func(v []float64) float64 {
		slices.Sort(v)
		return v[(len(v)-1)/2]
	}
	fmt.Fprintf(w, "floor-server: %d messages; median: publish %s (longest write loop %s), %.2f µs per write per writer (thread CPU %.2f µs); %d full\n",
		len(stats), us(int64(med(walls))), us(int64(med(loops))), med(perWrite), med(cpuPerWrite), full)
}

package hub_test

import (
	"bytes"
	"context"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/engine/memory"
	"github.com/meteorpush/meteor/internal/hub"
	"github.com/meteorpush/meteor/internal/outq"
	"github.com/meteorpush/meteor/internal/reason"
)

// countingClient is a hub.Client that only counts what it is given, so that
// the benchmarks measure the hub and the engine, not a transport.
type countingClient struct {
	msgs atomic.Int64
}

func (c *countingClient) Deliver(msgs []*engine.Message, _ bool) bool {
	c.msgs.Add(int64(len(msgs)))
	return true
}
func (c *countingClient) Close(reason.Reason) {}

var _ hub.Client = (*countingClient)(nil)

// fanoutModes are the ways a hub fans out: on the publisher's goroutine
// for every channel, and on GOMAXPROCS workers for every channel.
var fanoutModes = []struct {
	name  string
	start bool
}{
	{"inline", false},
	{"workers", true},
}

// benchHub returns a hub on a memory engine, with its workers started (and
// every channel queued to them) when start is set.
func benchHub(b *testing.B, workers bool) *hub.Hub {
	eng := memory.New(engine.Limits{MaxMessages: 250, MaxAge: 2 * time.Hour})
	inline := 1 << 30
	if workers {
		inline = -1
	}
	h := hub.New(eng, hub.Options{InlineBelow: inline})
	h.Start()
	if err := eng.Start(context.Background(), h); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { eng.Close(context.Background()); h.Close() })
	return h
}

func subscribeAll(b *testing.B, h *hub.Hub, clients []hub.Client) {
	for _, c := range clients {
		res, activate := h.Subscribe(context.Background(), c, []hub.Sub{{Channel: "bench"}}, true)
		if res[0].Err != nil {
			b.Fatal(res[0].Err)
		}
		activate()
	}
}

// BenchmarkFanout publishes one message per iteration, through the memory
// engine, to a channel with n live clients, and waits for the workers at
// the end only: it measures throughput. The allocations per op are the
// message's own; none may be per delivery.
func BenchmarkFanout(b *testing.B) {
	for _, mode := range fanoutModes {
		for _, n := range []int{1, 1000, 10000} {
			b.Run(mode.name+"/clients="+strconv.Itoa(n), func(b *testing.B) {
				h := benchHub(b, mode.start)
				clients := make([]*countingClient, n)
				all := make([]hub.Client, n)
				for i := range clients {
					clients[i] = &countingClient{}
					all[i] = clients[i]
				}
				subscribeAll(b, h, all)
				ctx := context.Background()
				text := strings.Repeat("x", 100)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if _, err := h.Publish(ctx, engine.Publication{Channel: "bench", Text: text}); err != nil {
						b.Fatal(err)
					}
				}
				h.Flush()
				b.StopTimer()
				var got int64
				for _, c := range clients {
					got += c.msgs.Load()
				}
				if want := int64(b.N) * int64(n); got != want {
					b.Fatalf("%d deliveries, want %d", got, want)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(got), "ns/delivery")
			})
		}
	}
}

// rawEncoder renders a message as its text and a newline.
type rawEncoder struct{}

func (rawEncoder) Encode(m *engine.Message) []byte { return append([]byte(m.Text), '\n') }

// sockClient writes each message to a real socket through outq, as the
// transports do.
type sockClient struct{ out *outq.Conn }

var enc rawEncoder

func (c *sockClient) Deliver(msgs []*engine.Message, _ bool) bool {
	ok := true
	for _, m := range msgs {
		ok = c.out.Write(m.Encoded(enc))
	}
	return ok
}
func (c *sockClient) Close(reason.Reason) {}

// BenchmarkFanoutTCP measures whole fan-outs over n loopback TCP
// connections: an op publishes one 200-byte message and waits until every
// client's write(2) returned (the kernel's send and loopback receive path
// included). The readers are drained between ops, off the clock, so the
// sockets never fill.
func BenchmarkFanoutTCP(b *testing.B) {
	for _, mode := range fanoutModes {
		for _, n := range []int{4, 16, 64, 256, 2000} {
			b.Run(mode.name+"/clients="+strconv.Itoa(n), func(b *testing.B) {
				benchFanoutTCP(b, mode.start, n)
			})
		}
	}
}

func benchFanoutTCP(b *testing.B, start bool, n int) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	readers := make([]net.Conn, n)
	clients := make([]hub.Client, n)
	for i := range n {
		rc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		sc, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		readers[i] = rc
		out := outq.New(sc, outq.Options{})
		clients[i] = &sockClient{out: out}
		b.Cleanup(func() { out.Close(reason.ServerShutdown); rc.Close() })
	}
	h := benchHub(b, start)
	subscribeAll(b, h, clients)
	ctx := context.Background()
	text := strings.Repeat("x", 199)
	buf := make([]byte, 64<<10)
	var want int64
	drain := func() {
		for _, rc := range readers {
			for got := int64(0); got < want; {
				rc.SetReadDeadline(time.Now().Add(5 * time.Second))
				m, err := rc.Read(buf)
				if err != nil {
					b.Fatalf("reader: %v", err)
				}
				got += int64(m)
			}
		}
		want = 0
	}
	b.SetBytes(int64(n) * 200)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := h.Publish(ctx, engine.Publication{Channel: "bench", Text: text}); err != nil {
			b.Fatal(err)
		}
		h.Flush()
		want += 200
		if i%32 == 31 {
			b.StopTimer()
			drain()
			b.StartTimer()
		}
	}
	b.StopTimer()
	drain()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e3, "µs/fanout")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/delivery")
}

// BenchmarkConflation publishes one message per iteration, through the
// memory engine, to a channel of n live clients on the workers, with
// every message delivered (off) and conflated to one per 10 ms (10ms): an
// op is a publication and its share of the fan-out. Conflated, the cost
// of a skipped message is the same whatever n (it never reaches the
// clients); deliveries/op says how many deliveries each publication
// caused.
func BenchmarkConflation(b *testing.B) {
	for _, iv := range []time.Duration{0, 10 * time.Millisecond} {
		name := "off"
		if iv > 0 {
			name = iv.String()
		}
		for _, n := range []int{1, 1000, 10000} {
			b.Run(name+"/clients="+strconv.Itoa(n), func(b *testing.B) {
				h := benchHub(b, true)
				h.SetPolicy(func(string) hub.Policy { return hub.Policy{ConflateInterval: iv} })
				clients := make([]*countingClient, n)
				all := make([]hub.Client, n)
				for i := range clients {
					clients[i] = &countingClient{}
					all[i] = clients[i]
				}
				subscribeAll(b, h, all)
				ctx := context.Background()
				text := strings.Repeat("x", 100)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if _, err := h.Publish(ctx, engine.Publication{Channel: "bench", Text: text}); err != nil {
						b.Fatal(err)
					}
				}
				h.Flush()
				b.StopTimer()
				var got int64
				for _, c := range clients {
					got += c.msgs.Load()
				}
				if iv == 0 && got != int64(b.N)*int64(n) || got == 0 {
					b.Fatalf("%d deliveries for %d messages to %d clients", got, b.N, n)
				}
				b.ReportMetric(float64(got)/float64(b.N), "deliveries/op")
			})
		}
	}
}

// BenchmarkAdmission measures Publish's admission: no policy, and a
// policy with a size limit and a publish rate that every publication is
// within (a token taken each time), on a channel without clients.
func BenchmarkAdmission(b *testing.B) {
	for _, limited := range []bool{false, true} {
		name := "none"
		if limited {
			name = "size+rate"
		}
		b.Run(name, func(b *testing.B) {
			h := benchHub(b, true)
			if limited {
				h.SetPolicy(func(string) hub.Policy {
					return hub.Policy{MaxMessageBytes: 65536, PublishRate: 1 << 30}
				})
			}
			ctx := context.Background()
			text := strings.Repeat("x", 100)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := h.Publish(ctx, engine.Publication{Channel: "bench", Text: text}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConflationTCP measures bursts over n loopback TCP
// connections, as the transports write them (outq): an op publishes 100
// messages of 100 bytes at once to the channel, then Flush (which sends
// a conflated channel's held message at once), and waits until every
// reader has read the burst's last message. Without conflation every
// client is written all 100 (a write each, as sockClient writes);
// conflated to one per 10 ms, about one: the bursts come within 10 ms of
// one another, so the first of each is held and replaced, and the last
// goes out with Flush.
func BenchmarkConflationTCP(b *testing.B) {
	for _, iv := range []time.Duration{0, 10 * time.Millisecond} {
		name := "off"
		if iv > 0 {
			name = iv.String()
		}
		for _, n := range []int{16, 256} {
			b.Run(name+"/clients="+strconv.Itoa(n), func(b *testing.B) {
				benchConflationTCP(b, iv, n)
			})
		}
	}
}

func benchConflationTCP(b *testing.B, iv time.Duration, n int) {
	const burst = 100
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	clients := make([]hub.Client, n)
	seen := make(chan struct{}, n)
	var read atomic.Int64
	var readers sync.WaitGroup
	defer readers.Wait()
	for i := range n {
		rc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		sc, err := ln.Accept()
		if err != nil {
			b.Fatal(err)
		}
		out := outq.New(sc, outq.Options{})
		clients[i] = &sockClient{out: out}
		b.Cleanup(func() { out.Close(reason.ServerShutdown); rc.Close() })
		// The last message of a burst is the only one with a 'y'.
		readers.Go(func() {
			buf := make([]byte, 64<<10)
			for {
				m, err := rc.Read(buf)
				if err != nil {
					return
				}
				read.Add(int64(m))
				if bytes.IndexByte(buf[:m], 'y') >= 0 {
					seen <- struct{}{}
				}
			}
		})
	}
	h := benchHub(b, true)
	h.SetPolicy(func(string) hub.Policy { return hub.Policy{ConflateInterval: iv} })
	subscribeAll(b, h, clients)
	ctx := context.Background()
	text, last := strings.Repeat("x", 99), strings.Repeat("y", 99)
	b.ReportAllocs()
	for b.Loop() {
		for i := range burst {
			t := text
			if i == burst-1 {
				t = last
			}
			if _, err := h.Publish(ctx, engine.Publication{Channel: "bench", Text: t}); err != nil {
				b.Fatal(err)
			}
		}
		h.Flush()
		for range n {
			select {
			case <-seen:
			case <-time.After(10 * time.Second):
				b.Fatal("a reader never got the burst's last message")
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*burst), "ns/msg")
	b.ReportMetric(float64(read.Load())/100/float64(b.N*n), "msgs/client/op")
	for _, c := range clients {
		c.(*sockClient).out.Close(reason.ServerShutdown)
	}
}

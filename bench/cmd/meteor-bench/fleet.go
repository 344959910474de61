package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// fleet is the set of shards of one run, in this process or in workers.
type fleet struct {
	shards []*shardHandle
}

type shardHandle struct {
	name    string
	in      io.WriteCloser
	reports chan *shardReport // closed when the shard's output ends
	done    chan error        // the shard's (or the worker's) end
}

// splitShards cuts n subscribers into workers shards of base's settings.
func splitShards(base shardConfig, n, workers int) []shardConfig {
	out := make([]shardConfig, 0, workers)
	first := 0
	for w := range workers {
		c := base
		c.N = n / workers
		if w < n%workers {
			c.N++
		}
		c.First = first
		c.Concurrency = max(base.Concurrency/workers, 1)
		first += c.N
		if c.N > 0 {
			out = append(out, c)
		}
	}
	return out
}

// startFleet starts the shards: in this process when there is one and
// inProcess is set, else as worker processes, copies of this executable.
func startFleet(ctx context.Context, shards []shardConfig, inProcess bool, timeout time.Duration, stderr io.Writer) (*fleet, error) {
	f := &fleet{}
	for i, cfg := range shards {
		var h *shardHandle
		var err error
		if inProcess && len(shards) == 1 {
			h = startLocalShard(ctx, cfg)
		} else {
			h, err = startWorker(ctx, i, cfg, timeout, stderr)
		}
		if err != nil {
			f.kill()
			return nil, err
		}
		f.shards = append(f.shards, h)
	}
	return f, nil
}

func startLocalShard(ctx context.Context, cfg shardConfig) *shardHandle {
	cmdR, cmdW := io.Pipe()
	evR, evW := io.Pipe()
	h := &shardHandle{name: "local", in: cmdW, reports: make(chan *shardReport, 4), done: make(chan error, 1)}
	go func() {
		err := runShard(ctx, cfg, cmdR, evW)
		cmdR.Close()
		evW.Close()
		h.done <- err
	}()
	go h.readReports(evR)
	return h
}

func startWorker(ctx context.Context, i int, cfg shardConfig, timeout time.Duration, stderr io.Writer) (*shardHandle, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	args := append(cfg.args(), "-timeout", timeout.String())
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stderr = stderr
	cmd.WaitDelay = 5 * time.Second
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("worker %d: %w", i, err)
	}
	h := &shardHandle{name: "worker " + strconv.Itoa(i) + " (pid " + strconv.Itoa(cmd.Process.Pid) + ")",
		in: in, reports: make(chan *shardReport, 4), done: make(chan error, 1)}
	go func() {
		h.readReports(out)
		h.done <- cmd.Wait()
	}()
	return h, nil
}

func (h *shardHandle) readReports(r io.Reader) {
	defer close(h.reports)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		rep := new(shardReport)
		if err := json.Unmarshal(sc.Bytes(), rep); err != nil {
			continue
		}
		h.reports <- rep
	}
	io.Copy(io.Discard, r)
}

// errShardEnded is returned when a shard ends before it answered.
var errShardEnded = errors.New("shard ended without a report")

// collect reads one report from every shard and sums them.
func (f *fleet) collect(ctx context.Context, event string) (*shardReport, error) {
	sum := &shardReport{Event: event}
	for _, h := range f.shards {
		select {
		case r, ok := <-h.reports:
			if !ok {
				return sum, fmt.Errorf("%s: %w", h.name, errShardEnded)
			}
			if r.Event != event {
				return sum, fmt.Errorf("%s: got %q, want %q", h.name, r.Event, event)
			}
			sum.merge(r)
		case <-ctx.Done():
			return sum, fmt.Errorf("waiting for %s from %s: %w", event, h.name, ctx.Err())
		}
	}
	return sum, nil
}

// ask sends cmd to every shard and sums their reports.
func (f *fleet) ask(ctx context.Context, cmd, event string) (*shardReport, error) {
	for _, h := range f.shards {
		if _, err := io.WriteString(h.in, cmd+"\n"); err != nil {
			return nil, fmt.Errorf("%s: %w", h.name, err)
		}
	}
	return f.collect(ctx, event)
}

// close closes every subscriber, collects the final reports and waits for
// the shards to end, at most until grace has passed.
func (f *fleet) close(grace time.Duration) (*shardReport, error) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var wg sync.WaitGroup
	for _, h := range f.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			io.WriteString(h.in, "close\n")
			h.in.Close()
		}()
	}
	wg.Wait()
	sum, err := f.collect(ctx, "closed")
	for _, h := range f.shards {
		select {
		case werr := <-h.done:
			if werr != nil && err == nil {
				err = fmt.Errorf("%s: %w", h.name, werr)
			}
		case <-ctx.Done():
			if err == nil {
				err = fmt.Errorf("%s did not end: %w", h.name, ctx.Err())
			}
		}
	}
	return sum, err
}

// kill ends the shards without waiting for reports.
func (f *fleet) kill() {
	for _, h := range f.shards {
		h.in.Close()
	}
}

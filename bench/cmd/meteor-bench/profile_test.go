package main

import (
	"context"
	"flag"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"
)

var (
	profileN   = flag.Int("idle-profile-n", 0, "TestIdleHeapProfile: subscribers to hold in-process (0 skips the test)")
	profileOut = flag.String("idle-profile-out", "idle-heap.pprof", "TestIdleHeapProfile: heap profile file")
)

// TestIdleHeapProfile holds -idle-profile-n idle subscribers of a server in
// this process and writes a heap profile, to see where an idle
// subscriber's memory goes. The clients' side is in the same heap: read
// the profile by the server's packages. Off unless the flag is given:
//
//	cd bench/cmd/meteor-bench && go test -run IdleHeapProfile -idle-profile-n 10000 -idle-profile-out /tmp/idle.pprof
func TestIdleHeapProfile(t *testing.T) {
	if *profileN <= 0 {
		t.Skip("set -idle-profile-n to run")
	}
	// Both ends of every connection are open files of this process.
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && uint64(2**profileN+100) > uint64(lim.Cur) { // int64 on some BSDs
		t.Fatalf("-idle-profile-n %d needs %d open files here; the limit is %d", *profileN, 2**profileN+100, lim.Cur)
	}
	runtime.MemProfileRate = 512
	srv := startServer(t)
	c := testCommon(t, srv, "prof", *profileN)
	c.workers, c.concurrency, c.connectTimeout = 1, 200, 30*time.Second // in this process, whatever -n
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var before, held runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fl, err := startFleet(ctx, c.shards(), true, c.timeout, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer fl.close(time.Minute)
	if conn, err := fl.collect(ctx, "connected"); err != nil || conn.OK != *profileN {
		t.Fatalf("connected %+v, %v", conn, err)
	}
	for srv.Hub().CountSubscribers("prof") < *profileN {
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&held)
	n := float64(*profileN)
	t.Logf("per subscriber, server and client sides together: heap in use %.0f B, objects %.1f, stacks %.0f B, other runtime (off heap) %.0f B",
		float64(held.HeapInuse-before.HeapInuse)/n, float64(held.HeapObjects-before.HeapObjects)/n,
		float64(held.StackInuse-before.StackInuse)/n,
		float64((held.Sys-held.HeapSys-held.StackSys)-(before.Sys-before.HeapSys-before.StackSys))/n)
	f, err := os.Create(*profileOut)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
}

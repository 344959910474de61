package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFanoutTransports runs a short fan-out over every transport of an
// in-process meteord, publishing over the line protocol and over HTTP:
// every publication reaches every subscriber once, in order.
func TestFanoutTransports(t *testing.T) {
	srv := startServer(t)
	for _, tc := range []struct{ transport, publish string }{
		{transportStream, publishLine}, {transportSSE, publishLine}, {transportWS, publishLine},
		{transportNDJSON, publishLine}, {transportStream, publishHTTP}, {transportWS, publishHTTP},
	} {
		t.Run(tc.transport+"/"+tc.publish, func(t *testing.T) {
			c := testCommonTransport(t, srv, tc.transport, "f"+tc.transport+tc.publish, 6)
			c.ep.Publish = tc.publish
			res, err := fanout(context.Background(), c, fanoutParams{rate: 200, size: 64, duration: 200 * time.Millisecond, drain: 2 * time.Second}, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			checkFanout(t, res, 6)
		})
	}
}

func checkFanout(t *testing.T, res *fanoutResult, n int) {
	t.Helper()
	if res.Published < 10 || res.Delivered != res.Expected || res.Expected != int64(n*res.Published) {
		t.Fatalf("published %d, delivered %d of %d", res.Published, res.Delivered, res.Expected)
	}
	if res.Lost != 0 || res.Dups != 0 || res.Disorder != 0 || res.Malformed != 0 || res.ServerClosed != 0 {
		t.Fatalf("lost %d dups %d disorder %d malformed %d closed %d; want none", res.Lost, res.Dups, res.Disorder, res.Malformed, res.ServerClosed)
	}
	if res.Publish == publishZMQ { // no acknowledgements
		if !res.Valid || res.Acked != 0 || res.AckErrors != 0 {
			t.Fatalf("valid %v (%s), acked %d, %d errors (%s); want valid and none", res.Valid, res.Invalid, res.Acked, res.AckErrors, res.AckFirstErr)
		}
		return
	}
	if !res.Valid || res.Acked != int64(res.Published) || res.AckErrors != 0 || res.AckMaxus <= 0 {
		t.Fatalf("valid %v (%s), acked %d of %d, %d errors (%s), ack max %d µs", res.Valid, res.Invalid, res.Acked, res.Published, res.AckErrors, res.AckFirstErr, res.AckMaxus)
	}
}

func TestBurstSmall(t *testing.T) {
	srv := startServer(t)
	c := testCommonTransport(t, srv, transportWS, "burst", 8)
	res, err := burst(context.Background(), c, 3, 64, 10*time.Millisecond, 2*time.Second, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	if res.Delivered != 24 || res.Lost != 0 || res.Dups != 0 || len(res.LastUS) != 3 {
		t.Fatalf("result %+v", res)
	}
	if res.LastP50us <= 0 || res.LastMaxus < res.LastP50us {
		t.Fatalf("last delivery median %d µs, worst %d µs", res.LastP50us, res.LastMaxus)
	}
}

func TestChurnSmall(t *testing.T) {
	srv := startServer(t)
	c := testCommonTransport(t, srv, transportSSE, "churn", 4)
	p := fanoutParams{rate: 100, size: 64, duration: 500 * time.Millisecond, drain: 2 * time.Second,
		churn: churnParams{rate: 100, hold: 100 * time.Millisecond, max: 100}}
	res, err := fanout(context.Background(), c, p, t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	checkFanout(t, res, 4)
	ch := res.Churn
	if ch == nil || ch.Connects < 20 || ch.Failed != 0 || ch.Disconnects != ch.Connects || ch.BytesRead == 0 {
		t.Fatalf("churn %+v", ch)
	}
	// Every short-lived subscriber has gone.
	cnt, _ := c.ep.newCounter(context.Background())
	defer cnt.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if n, err := waitCount(ctx, cnt, "churn", func(n int) bool { return n == 0 }); err != nil {
		t.Fatalf("count %d after the run: %v", n, err)
	}
}

func TestPublishSmall(t *testing.T) {
	srv := startServer(t)
	c := testCommon(t, srv, "x", 1)
	for _, method := range []string{publishLine, publishHTTP} {
		ep := c.ep
		ep.Publish = method
		res, err := publishRun(context.Background(), &ep, "p"+method, 2, 8, 1, 32, 200*time.Millisecond, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Published < 10 || res.Errors != 0 {
			t.Fatalf("%s: %+v", method, res)
		}
		// The server stored what was acknowledged (up to its buffer).
		resp, err := http.Get(ep.PubURL + "/api/channels/p" + method + "0?history=0")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Contains(body, []byte(`"lastId":`)) {
			t.Fatalf("%s: channel info %s", method, body)
		}
	}
}

func TestReport(t *testing.T) {
	lines := strings.Join([]string{
		`not a result`,
		`{"scenario":"fanout","target":"meteor","transport":"stream","subscribers":100,"wanted_rate":10,"size":200,"delivery_rate":3000,"latency_p50_us":1000,"latency_p99_us":4000,"latency_max_us":9000}`,
		`{"scenario":"fanout","target":"nchan","transport":"stream","subscribers":99,"failed":1,"wanted_rate":10,"size":200,"delivery_rate":1000,"latency_p50_us":2000,"latency_p99_us":2000,"latency_max_us":9000}`,
		`{"scenario":"idle","target":"meteor","transport":"stream","subscribers":10,"pss_kib_per_subscriber":3.2,"cpu_percent":0}`,
		`{"scenario":"publish","target":"meteor","publish":"line","conns":4,"pipeline":64,"rate":400000}`,
		`{"scenario":"publish","target":"nchan","publish":"ws","conns":4,"pipeline":64,"rate":100000}`,
		`{"scenario":"publish","target":"nchan","publish":"http","conns":4,"pipeline":0,"rate":30000}`,
	}, "\n")
	results, err := readResults(strings.NewReader(lines))
	if err != nil || len(results) != 6 {
		t.Fatalf("read %d results, %v", len(results), err)
	}
	var table bytes.Buffer
	rows := buildRows(results, targetNchan)
	writeTable(&table, rows, targetNchan)
	for _, want := range []string{
		"| fanout, 100 subscribers, 10 msg/s x 200 B, stream | deliveries/s | 3,000 | 1,000 | 3.00 | Meteor, 3.00× |",
		"| fanout, 100 subscribers, 10 msg/s x 200 B, stream | latency p99 (ms) | 4.00 | 2.00 | 2.00 | Nchan, 2.00× |",
		"| fanout, 100 subscribers, 10 msg/s x 200 B, stream | latency max (ms) | 9.00 | 9.00 | 1.00 | even |",
		"| idle, 10 subscribers, stream | memory per subscriber (PSS) (KiB) | 3.20 | – | – | – |",
		"| publish, 4 conns x 64 pipelined (Meteor line protocol, Nchan WebSocket) | messages/s | 400,000 | 100,000 | 4.00 | Meteor, 4.00× |",
		"| publish, 4 conns, HTTP | messages/s | – | 30,000 | – | – |",
	} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	// Three runs a side: medians, (min–max), ratios of the medians; one
	// run below the asked rate makes the group not valid.
	var runs []string
	for i, v := range []string{`"delivery_rate":3000,"valid":true`, `"delivery_rate":1000,"valid":true`, `"delivery_rate":2000,"valid":true`} {
		runs = append(runs, fmt.Sprintf(`{"scenario":"fanout","target":"meteor","transport":"ws","subscribers":50,"wanted_rate":20,"size":200,"publish_rate":%d,%s}`, 20-i, v),
			fmt.Sprintf(`{"scenario":"fanout","target":"nchan","transport":"ws","subscribers":50,"wanted_rate":20,"size":200,"publish_rate":20,"delivery_rate":%d,"valid":true}`, 1000+100*i))
	}
	runs = append(runs, strings.ReplaceAll(strings.ReplaceAll(runs[0], `"transport":"ws"`, `"transport":"sse"`), `"valid":true`, `"valid":false`),
		strings.ReplaceAll(runs[1], `"transport":"ws"`, `"transport":"sse"`))
	results, err = readResults(strings.NewReader(strings.Join(runs, "\n")))
	if err != nil || len(results) != 8 {
		t.Fatalf("read %d results, %v", len(results), err)
	}
	table.Reset()
	writeTable(&table, buildRows(results, targetNchan), targetNchan)
	for _, want := range []string{
		"| fanout, 50 subscribers, 20 msg/s x 200 B, ws | valid runs (published ≥ 95 % of the asked rate) | 3 of 3 | 3 of 3 | – | – |",
		"| fanout, 50 subscribers, 20 msg/s x 200 B, ws | publish rate achieved (msg/s) | 19.0 (18.0–20.0) | 20.0 (20.0–20.0) | – | – |",
		"| fanout, 50 subscribers, 20 msg/s x 200 B, ws | deliveries/s | 2,000 (1,000–3,000) | 1,100 (1,000–1,200) | 1.82 | Meteor, 1.82× |",
		"| fanout, 50 subscribers, 20 msg/s x 200 B, sse | valid runs (published ≥ 95 % of the asked rate) | 0 of 1 | 1 of 1 | – | **not valid** |",
		"| fanout, 50 subscribers, 20 msg/s x 200 B, sse | deliveries/s | 3,000 | 1,000 | 3.00 | **not valid** |",
	} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	// Beside Pushpin: Nchan's results are left out.
	results, err = readResults(strings.NewReader(lines + "\n" +
		`{"scenario":"fanout","target":"pushpin","transport":"stream","subscribers":100,"wanted_rate":10,"size":200,"delivery_rate":500,"latency_p50_us":1000,"latency_p99_us":8000,"latency_max_us":9000}`))
	if err != nil || len(results) != 7 {
		t.Fatalf("read %d results, %v", len(results), err)
	}
	table.Reset()
	writeTable(&table, buildRows(results, targetPushpin), targetPushpin)
	for _, want := range []string{
		"| scenario | figure | Meteor | Pushpin | Meteor / Pushpin | better |",
		"| fanout, 100 subscribers, 10 msg/s x 200 B, stream | deliveries/s | 3,000 | 500 | 6.00 | Meteor, 6.00× |",
		"| fanout, 100 subscribers, 10 msg/s x 200 B, stream | latency max (ms) | 9.00 | 9.00 | 1.00 | even |",
	} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if strings.Contains(table.String(), "30,000") || strings.Contains(table.String(), "100,000") || strings.Contains(table.String(), "publish, 4 conns, HTTP") {
		t.Errorf("Nchan's results in the table beside Pushpin:\n%s", table.String())
	}
	var svg bytes.Buffer
	writeSVG(&svg, rows, "a <title>", targetNchan)
	dec := xml.NewDecoder(&svg)
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("SVG is not well-formed: %v", err)
		}
	}
}

var nchanFlag = flag.Bool("nchan", false, "TestNchan: run against a real Nchan (nginx with libnginx-mod-nchan) when installed")

// TestNchan runs short fan-outs against a real Nchan (nginx with
// libnginx-mod-nchan, bench/nchan/nginx.conf on a free port). It starts a
// server of its own, so it runs only when asked for and installed
// (scripts/bench-compare installs it):
//
//	cd bench/cmd/meteor-bench && go test -run TestNchan -nchan
func TestNchan(t *testing.T) {
	if !*nchanFlag || testing.Short() {
		t.Skip("set -nchan to run against a real Nchan")
	}
	nginx, err := exec.LookPath("nginx")
	if err != nil {
		t.Skip("nginx is not installed")
	}
	if _, err := os.Stat("/usr/lib/nginx/modules/ngx_nchan_module.so"); err != nil {
		t.Skip("libnginx-mod-nchan is not installed")
	}
	conf, err := os.ReadFile("../../nchan/nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	prefix := t.TempDir()
	os.MkdirAll(filepath.Join(prefix, "tmp"), 0o755)
	text := strings.ReplaceAll(string(conf), "127.0.0.1:4680", addr)
	text = strings.Replace(text, "worker_processes 2;", "worker_processes 1;", 1)
	if err := os.WriteFile(filepath.Join(prefix, "nginx.conf"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(nginx, "-p", prefix+"/", "-c", filepath.Join(prefix, "nginx.conf"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt) // nginx: fast shutdown
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	for deadline := time.Now().Add(5 * time.Second); ; {
		resp, err := http.Get("http://" + addr + "/nchan_status")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not come up: %v\n%s", err, stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i, tr := range []string{transportStream, transportSSE, transportWS, transportStream + "/" + publishWS, transportWS + "/" + publishWS} {
		t.Run(tr, func(t *testing.T) {
			tr, pub, _ := strings.Cut(tr, "/")
			c := &common{ep: endpoint{Kind: targetNchan, Transport: tr, Addr: addr, Publish: pub},
				channel: fmt.Sprintf("n%d", i), n: 5, concurrency: 5, perWorker: 100,
				connectTimeout: 5 * time.Second, timeout: 30 * time.Second, readBuffer: 512}
			if err := c.check(); err != nil {
				t.Fatal(err)
			}
			res, err := fanout(context.Background(), c, fanoutParams{rate: 200, size: 64, duration: 200 * time.Millisecond, drain: 2 * time.Second}, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			checkFanout(t, res, 5)
		})
	}
}

var pushpinFlag = flag.Bool("pushpin", false, "TestPushpin: run against a real Pushpin when installed")

// freePort returns a port on 127.0.0.1 that nothing listened on a moment
// ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestPushpin runs short fan-outs against a real Pushpin
// (bench/pushpin/pushpin.conf on free ports, its run and log directories
// in a temporary one) with the GRIP origin in the test. It runs only when
// asked for and installed:
//
//	cd bench/cmd/meteor-bench && go test -run TestPushpin -pushpin
func TestPushpin(t *testing.T) {
	if !*pushpinFlag || testing.Short() {
		t.Skip("set -pushpin to run against a real Pushpin")
	}
	bin, err := exec.LookPath("pushpin")
	if err != nil {
		t.Skip("pushpin is not installed")
	}
	conf, err := os.ReadFile("../../pushpin/pushpin.conf")
	if err != nil {
		t.Fatal(err)
	}
	origin := &gripOrigin{}
	osrv := httptest.NewServer(origin)
	defer osrv.Close()
	dir := t.TempDir()
	text := string(conf)
	ports := map[string]int{}
	for _, p := range []string{"4690", "4691", "4692", "4693", "4694"} {
		ports[p] = freePort(t)
		text = strings.ReplaceAll(text, "127.0.0.1:"+p, fmt.Sprintf("127.0.0.1:%d", ports[p]))
		text = strings.ReplaceAll(text, "port="+p, fmt.Sprintf("port=%d", ports[p]))
	}
	if err := os.WriteFile(filepath.Join(dir, "pushpin.conf"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "routes"), []byte("* "+strings.TrimPrefix(osrv.URL, "http://")+",over_http\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config", filepath.Join(dir, "pushpin.conf"))
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt) // the runner stops its services
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", ports["4690"])
	pubURL := fmt.Sprintf("http://127.0.0.1:%d", ports["4691"])
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get(pubURL + "/")
		if err == nil {
			resp.Body.Close()
			if nc, err := net.Dial("tcp", addr); err == nil {
				nc.Close()
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("pushpin did not come up: %v\n%s", err, out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	zmqAddr := fmt.Sprintf("127.0.0.1:%d", ports["4692"])
	for i, tr := range []string{transportStream, transportSSE, transportWS, transportStream + "/" + publishZMQ, transportWS + "/" + publishZMQ} {
		t.Run(tr, func(t *testing.T) {
			tr, pub, _ := strings.Cut(tr, "/")
			c := &common{ep: endpoint{Kind: targetPushpin, Transport: tr, Addr: addr, PubURL: pubURL, ZMQ: zmqAddr, Publish: pub},
				channel: fmt.Sprintf("p%d", i), n: 5, concurrency: 5, perWorker: 100,
				connectTimeout: 5 * time.Second, timeout: 30 * time.Second, readBuffer: 512}
			if err := c.check(); err != nil {
				t.Fatal(err)
			}
			res, err := fanout(context.Background(), c, fanoutParams{rate: 200, size: 64, duration: 200 * time.Millisecond, drain: 2 * time.Second, pubConns: 1, pids: pidList{cmd.Process.Pid}}, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			checkFanout(t, res, 5)
		})
	}
	if origin.holds.Load() != 15 || origin.opens.Load() != 10 {
		t.Errorf("the origin held %d streams and opened %d websockets; want 15 and 10", origin.holds.Load(), origin.opens.Load())
	}
	// The runner's services are its children: -pid sums them.
	if s, err := readTree(cmd.Process.Pid); err != nil || s.Procs < 4 {
		t.Errorf("pushpin's process tree: %d processes besides the runner, %v; want condure, zurl, pushpin-proxy, pushpin-handler", s.Procs, err)
	}
}

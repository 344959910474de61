// Command meteor-bench is a load generator for meteord. It opens many
// subscriber connections and measures what the server pays for them.
//
// Scenarios:
//
//	meteor-bench idle   -n 10000 -pid <server pid> ...
//	    N streaming subscribers that receive nothing but pings: the server's
//	    resident memory per subscriber and its CPU while they sit idle.
//	meteor-bench fanout -n 1000 -rate 100 -size 200 ...
//	    N subscribers of one channel while messages are published at a fixed
//	    rate: deliveries per second, latency from publish to read, lost and
//	    duplicated messages.
//	meteor-bench burst -n 10000 -bursts 10 ...
//	    one message at a time to N subscribers: time until the last has it.
//	meteor-bench churn -n 1000 -rate 50 -churn-rate 200 ...
//	    fanout while short-lived subscribers connect and disconnect.
//	meteor-bench publish -publish line -conns 4 -pipeline 64 ...
//	    messages accepted per second, no subscriber.
//	meteor-bench resume -addr A,B -controller B -kill-pid <A's pid> ...
//	    a resume storm: the subscribers of a killed node reconnect to the
//	    others and resume; time until all have, lost and duplicated messages.
//	meteor-bench report -o table.md -svg chart.svg results.jsonl
//	    a markdown table (Meteor/Nchan ratios) and an SVG chart.
//
// -target meteor|nchan chooses the server (Nchan as bench/nchan/nginx.conf
// configures it), -transport stream|sse|ws the subscribers' wire format.
// -publish line|http|ws how messages are published: Meteor's controller
// line protocol (Meteor's default), HTTP POSTs (Nchan's default), or, on
// Nchan, text frames pipelined on one WebSocket to its publisher location,
// each answered with a channel-info frame that is timed as the
// acknowledgement (wspub.go).
// -addr takes several listeners (subscriber i on the (i mod n)-th: nodes
// of a cluster), -count-at the nodes whose subscriber counts are summed.
// -target centrifugo drives Centrifugo v6 (bench/centrifugo/config.json)
// with its JSON protocol on WebSocket and its HTTP publish API
// (centrifugo.go).
// -target pushpin drives Pushpin (bench/pushpin/pushpin.conf) with the
// hidden grip-origin scenario as the origin behind it (pushpin.go):
// meteor-bench grip-origin -listen 127.0.0.1:4695.
//
// One process holds at most -per-worker connections (the machine allows
// 20,000 open files per process); a larger -n is spread over worker
// processes, copies of this program started with the hidden "shard"
// scenario, which report back on their standard output.
//
// Every run ends by itself: -timeout bounds it as a whole.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	switch args[0] {
	case "idle":
		err = runIdle(ctx, args[1:], stdout, stderr)
	case "fanout":
		err = runFanout(ctx, args[1:], stdout, stderr)
	case "burst":
		err = runBurst(ctx, args[1:], stdout, stderr)
	case "churn":
		err = runChurn(ctx, args[1:], stdout, stderr)
	case "publish":
		err = runPublish(ctx, args[1:], stdout, stderr)
	case "resume":
		err = runResume(ctx, args[1:], stdout, stderr)
	case "report":
		err = runReport(args[1:], stdout, stderr)
	case "shard":
		err = runShardCommand(ctx, args[1:], stdin, stdout)
	case "grip-origin":
		err = runGripOrigin(ctx, args[1:], stdout, stderr)
	case "floor-server":
		err = runFloor(ctx, args[1:], stdin, stdout, stderr)
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "meteor-bench: unknown scenario %q\n", args[0])
		usage(stderr)
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "meteor-bench %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: meteor-bench <scenario> [flags]

scenarios:
  idle     N idle subscribers: server memory per subscriber, CPU while idle
  fanout   N subscribers, messages published at a fixed rate: rate, latency, loss
  burst    one message at a time to N subscribers: time until the last has it
  churn    fanout while short-lived subscribers connect and disconnect at a rate
  publish  publishing throughput, pipelined line protocol or HTTP, no subscribers
  resume   a resume storm: kill a node under N subscribers and a publisher; time until
           all have resumed on the others, lost and duplicated messages per subscriber
  report   JSON results (-json lines) to a markdown table and an SVG chart
  floor-server  the least work a server must do for burst (meteor protocol): the machine's floor (Linux only)

Every scenario takes -target meteor|nchan and -transport stream|sse|ws
(ndjson on meteor); the message text carries its sequence number and
publication time, so loss, duplicates and latency are counted the same way
for every server.

Fan-out, churn, burst and publish take -publish line|http|ws: Meteor's
controller line protocol (Meteor's default), HTTP POSTs (Nchan's default),
or ws, Nchan's WebSocket publisher: text frames pipelined on one
connection, each answered with a channel-info frame (the acknowledgement).

-target pushpin is Pushpin (bench/pushpin/pushpin.conf), with
"meteor-bench grip-origin -listen 127.0.0.1:4695" as its GRIP origin; it
publishes with -publish http (POST /publish/) or zmq (its handler's
ZeroMQ PULL socket, -pub-zmq; pipelined, no acknowledgements).

-target centrifugo is Centrifugo v6 (bench/centrifugo/config.json) over
its JSON WebSocket protocol, publishing with its HTTP API (-api-key).

-addr takes several listeners (nodes of a cluster): subscriber i connects
to the (i mod n)-th; -count-at names the nodes whose counts are summed.

Run "meteor-bench <scenario> -h" for the flags of a scenario.
`)
}

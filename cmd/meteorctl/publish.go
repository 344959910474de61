package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// Batch bounds of publish from standard input: the API takes at most 1000
// messages in one request, and a body of at least 16 MB (a text's JSON may
// be six times its size).
const (
	maxBatch      = 1000
	maxBatchBytes = 2 << 20
)

// pubMessage is one message of a POST /api/publish body.
type pubMessage struct {
	Channel string `json:"channel"`
	Text    string `json:"text"`
}

// pubResult is one published message, as the API answers it; Line is
// the line of standard input it came from (0 for TEXT), for -json.
type pubResult struct {
	Line    int    `json:"line,omitempty"`
	ID      uint64 `json:"id"`
	Channel string `json:"channel"`
	Time    int64  `json:"time"`
}

// pubAnswer is the answer of POST /api/publish, also of a 503 that
// published part of the batch.
type pubAnswer struct {
	Results   []pubResult `json:"results"`
	Published int         `json:"published"`
}

// batch is messages to publish and the input line of each (0 for TEXT).
type batch struct {
	msgs  []pubMessage
	lines []int
	size  int // bytes of text
}

func (b *batch) add(m pubMessage, line int) {
	b.msgs = append(b.msgs, m)
	b.lines = append(b.lines, line)
	b.size += len(m.Text)
}

// runPublish publishes TEXT to CHANNEL, or each line of standard input as
// a message, in batches, and prints each message's id.
func runPublish(ctx context.Context, c *cli, args []string) error {
	cmd := lookup("publish")
	rest, err := c.parse(cmd, c.flags(cmd.name), args, 1, 2)
	if err != nil {
		return err
	}
	channel := rest[0]
	if len(rest) == 2 {
		var b batch
		b.add(pubMessage{channel, rest[1]}, 0)
		return c.publish(ctx, &b)
	}
	// The input is read by a goroutine of its own, so that a signal ends
	// a publish whose standard input stays open and silent: a read cannot
	// be cancelled, and the process exits with the goroutine still in it.
	// It hands over a batch when the batch is full or when the input has
	// nothing more buffered, so that a publisher fed line by line
	// (tail -f | meteorctl publish) does not wait for the batch to fill;
	// it reads on while the batch is published.
	batches := make(chan *batch)
	errc := make(chan error, 1)
	go func() { errc <- readBatches(c.stdin, channel, batches) }()
	for {
		select {
		case b, ok := <-batches:
			if !ok {
				return <-errc
			}
			if err := c.publish(ctx, b); err != nil {
				return err
			}
		case <-ctx.Done():
			return exit(ctx.Err())
		}
	}
}

// readBatches reads r line by line into batches of messages to channel,
// sends each on out, and closes out at the end of r; the error is one
// reading r.
func readBatches(r io.Reader, channel string, out chan<- *batch) error {
	defer close(out)
	br := bufio.NewReaderSize(r, 1<<20)
	b := new(batch)
	for n := 1; ; n++ {
		line, err := br.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			if len(b.msgs) > 0 {
				out <- b
			}
			return usageError("reading standard input, line %d: %v", n, err)
		}
		eof := err != nil
		if line != "" {
			line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
			b.add(pubMessage{channel, line}, n)
		}
		if len(b.msgs) > 0 && (eof || len(b.msgs) == maxBatch || b.size >= maxBatchBytes || br.Buffered() == 0) {
			out <- b
			b = new(batch)
		}
		if eof {
			return nil
		}
	}
}

// publish sends b in one POST /api/publish and prints the messages' ids.
// When the store fails part way (503 naming what was published), or a
// channel's publish rate is reached (429, the same), it prints those and
// sends the rest again after the server's Retry-After, a few times at
// most; a broken connection is not retried, as it may have published.
func (c *cli) publish(ctx context.Context, b *batch) error {
	msgs, lines := b.msgs, b.lines
	for try := 1; ; try++ {
		body, err := json.Marshal(struct {
			Messages []pubMessage `json:"messages"`
		}{msgs})
		if err != nil {
			return err
		}
		var ans pubAnswer
		err = c.call(ctx, http.MethodPost, "/api/publish", body, false, &ans)
		var ae *apiError
		if errors.As(err, &ae) {
			ae.reason = nameLine(ae.reason, lines)
			if !partial(ae.status) || json.Unmarshal(ae.body, &ans) != nil {
				ans = pubAnswer{}
			}
		} else if err != nil {
			return exit(err)
		}
		n := min(len(ans.Results), len(msgs))
		for i, r := range ans.Results[:n] {
			r.Line = lines[i]
			if err := c.printResult(r); err != nil {
				return err
			}
		}
		if err == nil {
			return nil
		}
		msgs, lines = msgs[n:], lines[n:]
		if !partial(ae.status) || try == attempts || len(msgs) == 0 {
			if n > 0 || len(b.msgs) > len(msgs) {
				return exit(fmt.Errorf("%w; %d of %d messages published", err, len(b.msgs)-len(msgs), len(b.msgs)))
			}
			return exit(err)
		}
		wait := backoff(try - 1)
		if ae.retryAfter > 0 {
			wait = min(ae.retryAfter, maxBackoff)
		}
		fmt.Fprintf(c.stderr, "meteorctl publish: %v; %d messages left, again in %v\n", err, len(msgs), wait.Round(1e8))
		if !sleep(ctx, wait) {
			return exit(ctx.Err())
		}
	}
}

// partial reports whether a refused POST /api/publish names what it
// published, the rest to be sent again later: 503 (the store failed part
// way) and 429 (a channel's publish rate).
func partial(status int) bool {
	return status == http.StatusServiceUnavailable || status == http.StatusTooManyRequests
}

// batchIndex is how the API names a message of a batch in its errors.
var batchIndex = regexp.MustCompile(`^messages\[(\d+)\]: `)

// nameLine rewrites the API's "messages[i]: " in reason as the line of
// standard input the message came from, and drops it for TEXT.
func nameLine(reason string, lines []int) string {
	m := batchIndex.FindStringSubmatch(reason)
	if m == nil {
		return reason
	}
	rest := reason[len(m[0]):]
	i, err := strconv.Atoi(m[1])
	if err != nil || i >= len(lines) {
		return reason
	}
	if lines[i] == 0 {
		return rest
	}
	return fmt.Sprintf("line %d: %s", lines[i], rest)
}

// printResult prints one published message: its id, or its JSON.
func (c *cli) printResult(r pubResult) error {
	if c.json {
		return c.printJSON(r)
	}
	_, err := fmt.Fprintln(c.stdout, r.ID)
	return outErr(err)
}

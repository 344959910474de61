package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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

// pubResult is one published message, as the API answers it.
type pubResult struct {
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

// runPublish publishes TEXT to CHANNEL, or each line of standard input as
// a message, in batches, and prints each message's id.
func runPublish(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("publish")
	rest, err := c.parse(fs, args, commands["publish"].synopsis, 1, 2)
	if err != nil {
		return err
	}
	channel := rest[0]
	if len(rest) == 2 {
		return c.publish(ctx, []pubMessage{{channel, rest[1]}})
	}
	// A batch goes when it is full, or when the input has nothing more
	// buffered: a publisher fed line by line (tail -f | meteorctl publish)
	// does not wait for the batch to fill.
	br := bufio.NewReaderSize(c.stdin, 1<<20)
	var batch []pubMessage
	size := 0
	for {
		line, err := br.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return &exitError{exitUsage, fmt.Errorf("reading standard input: %v", err)}
		}
		eof := err != nil
		if line != "" {
			line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
			batch = append(batch, pubMessage{channel, line})
			size += len(line)
		}
		if len(batch) > 0 && (eof || len(batch) == maxBatch || size >= maxBatchBytes || br.Buffered() == 0) {
			if err := c.publish(ctx, batch); err != nil {
				return err
			}
			batch, size = batch[:0], 0
		}
		if eof {
			return nil
		}
	}
}

// publish sends msgs in one POST /api/publish and prints their ids. When
// the store fails part way (503 naming what was published), it prints
// those and sends the rest again after the server's Retry-After, a few
// times at most; a broken connection is not retried, as it may have
// published.
func (c *cli) publish(ctx context.Context, msgs []pubMessage) error {
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
		if errors.As(err, &ae) && ae.status == http.StatusServiceUnavailable {
			if json.Unmarshal(ae.body, &ans) != nil {
				ans = pubAnswer{}
			}
		} else if err != nil {
			return exit(err)
		}
		n := min(len(ans.Results), len(msgs))
		for _, r := range ans.Results[:n] {
			if err := c.printResult(r); err != nil {
				return err
			}
		}
		if err == nil {
			return nil
		}
		msgs = msgs[n:]
		if try == attempts || len(msgs) == 0 {
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

// printResult prints one published message: its id, or its JSON.
func (c *cli) printResult(r pubResult) error {
	if c.json {
		return c.printJSON(r)
	}
	_, err := fmt.Fprintln(c.stdout, r.ID)
	return err
}

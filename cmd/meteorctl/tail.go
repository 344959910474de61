package main

// tail subscribes over the NDJSON transport rather than SSE: each NDJSON
// message is a whole JSON object with its channel, id and time (an SSE
// event carries the text alone, its channel only with ?event=channel and
// no time), which is what both the readable and the -json output print;
// subscribed, epoch, gap and close lines are JSON too, so one decoder
// reads the stream. The price is that the client keeps the resume cursor
// itself (SSE hands it over in id:), from the rules of docs/transports.md.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// streamClient is the client of the subscription: no keep-alive (the
// server closes the stream's connection), no limit on the body's time.
var streamClient = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	ResponseHeaderTimeout: 30 * time.Second,
	DisableKeepAlives:     true,
}}

// streamLine is any line of the NDJSON stream.
type streamLine struct {
	Type      string `json:"type"`
	Channel   string `json:"channel"`
	ID        uint64 `json:"id"`
	Text      string `json:"text"`
	Time      int64  `json:"time"`
	LastID    uint64 `json:"lastId"`
	Epoch     string `json:"epoch"`
	Since     uint64 `json:"since"`
	Trimmed   uint64 `json:"trimmed"`
	Reset     bool   `json:"reset"`
	Reason    string `json:"reason"`
	Code      int    `json:"code"`
	Reconnect bool   `json:"reconnect"`
}

// position is where tail is in one channel: the last message it printed
// (or where its subscription started), in the stream epoch.
type position struct {
	id    uint64
	epoch string
	// reset reports whether a reset gap came and no message since: the
	// next message is of a new stream, whose ids may be below id.
	reset bool
}

// tailer is one tail: its channels and where it is in each.
type tailer struct {
	c        *cli
	channels []string
	last     int                  // -last: history first, on the first connection
	pos      map[string]*position // nil entries until subscribed
}

// runTail prints each message of the channels as it arrives, reconnecting
// and resuming after the last message printed when the connection ends,
// and reporting gaps; it ends on SIGINT or SIGTERM (ctx), or when a
// connection is refused in a way that retrying cannot mend.
func runTail(ctx context.Context, c *cli, args []string) error {
	cmd := lookup("tail")
	fs := c.flags(cmd.name)
	last := fs.Int("last", 0, "print the newest `N` stored messages of each channel first")
	rest, err := c.parse(cmd, fs, args, 1, -1)
	if err != nil {
		return err
	}
	if *last < 0 {
		return usageError("-last %d: want 0 or more", *last)
	}
	t := &tailer{c: c, channels: rest, last: *last, pos: make(map[string]*position)}
	return t.run(ctx)
}

// run connects, reads, and reconnects until ctx ends or an error that
// retrying cannot mend: the first connection failing (a wrong -url, a
// server that is down), a 4xx answer, the output failing. Once subscribed
// it comes back after every end of the stream, a close that says not to
// reconnect (an administrator's close of a channel) included: a tail is
// an operator's, who stops it with SIGINT.
func (t *tailer) run(ctx context.Context) error {
	subscribedOnce := false
	fails := 0 // connections in a row that did not subscribe
	for {
		subscribed, err := t.stream(ctx)
		if ctx.Err() != nil {
			return nil // interrupted: that is how a tail ends
		}
		var ae *apiError
		var ee *exitError
		switch {
		case errors.As(err, &ee) && ee.code != exitUnreachable:
			return err
		case errors.As(err, &ae) && ae.status/100 == 4:
			return exit(err)
		case !subscribed && !subscribedOnce:
			return exit(err)
		case ee != nil:
			err = ee.err
		}
		if subscribed {
			subscribedOnce, fails = true, 0
		} else {
			fails++
		}
		wait := backoff(max(fails-1, 0))
		if ae != nil && ae.retryAfter > 0 {
			wait = min(ae.retryAfter, maxBackoff)
		}
		fmt.Fprintf(t.c.stderr, "meteorctl tail: %v; reconnecting in %v\n", err, wait.Round(time.Millisecond))
		if !sleep(ctx, wait) {
			return nil
		}
	}
}

// url is the subscription's address: the channels, with -last's history
// on a channel not yet subscribed, and the cursor of those that were.
func (t *tailer) url() string {
	var path, cursor []string
	for _, ch := range t.channels {
		p := t.pos[ch]
		switch {
		case p != nil:
			path = append(path, ch)
			pc := ch + ":" + strconv.FormatUint(p.id, 10)
			if p.epoch != "" {
				pc += "@" + p.epoch
			}
			cursor = append(cursor, pc)
		case t.last > 0:
			path = append(path, ch+".b"+strconv.Itoa(t.last))
		default:
			path = append(path, ch)
		}
	}
	u := t.c.url + "/ndjson/" + strings.Join(path, "/")
	if len(cursor) > 0 {
		u += "?since=" + url.QueryEscape(strings.Join(cursor, ","))
	}
	return u
}

// stream runs one connection until it ends, and reports whether it
// subscribed. Its error says why it ended: errClosed (wrapped) for a close
// with reconnect false, an *apiError for an answer that is not 200.
func (t *tailer) stream(ctx context.Context) (subscribed bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.url(), nil)
	if err != nil {
		return false, usageError("-url %q: %v", t.c.url, err)
	}
	resp, err := streamClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the request's URL, cursor and all
		}
		return false, &exitError{exitUnreachable, fmt.Errorf("cannot reach %s: %w", t.c.url, err)}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		reason := strings.TrimSpace(string(b))
		if reason == "" {
			reason = "(no reason given)"
		}
		ae := &apiError{status: resp.StatusCode, reason: reason}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			ae.retryAfter = time.Duration(s) * time.Second
		}
		return false, ae
	}
	br := bufio.NewReaderSize(resp.Body, 64<<10)
	live := false // a line other than subscribed and gap came
	for {
		b, err := br.ReadBytes('\n')
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("the server ended the stream")
			}
			return subscribed, err
		}
		var l streamLine
		if err := json.Unmarshal(b, &l); err != nil {
			return subscribed, fmt.Errorf("a line that is not JSON: %v: %.80q", err, b)
		}
		switch l.Type {
		case "subscribed":
			subscribed = true
			t.pos[l.Channel] = &position{id: l.LastID, epoch: l.Epoch}
		case "epoch":
			live = true
			if p := t.pos[l.Channel]; p != nil {
				p.epoch = l.Epoch
			}
		case "gap":
			if err := t.gap(l, live); err != nil {
				return subscribed, err
			}
		case "message":
			live = true
			p := t.pos[l.Channel]
			if p != nil && !p.reset && l.ID <= p.id {
				continue // already printed: never twice
			}
			if p != nil {
				p.id, p.reset = l.ID, false
			}
			if err := t.c.printMessage(message{Type: l.Type, ID: l.ID, Channel: l.Channel, Text: l.Text, Time: l.Time}); err != nil {
				return subscribed, err
			}
		case "close":
			if t.c.json {
				err := t.c.printJSON(struct {
					Type      string `json:"type"`
					Reason    string `json:"reason"`
					Code      int    `json:"code"`
					Reconnect bool   `json:"reconnect"`
				}{l.Type, l.Reason, l.Code, l.Reconnect})
				if err != nil {
					return subscribed, err
				}
			}
			return subscribed, fmt.Errorf("the server closed the stream: %s (code %d, reconnect %t)", l.Reason, l.Code, l.Reconnect)
		default:
			live = true // ping, and what a later server may add
		}
	}
}

// gap moves the channel's position past a gap and reports it: on stderr,
// and as a JSON line with -json. live reports whether the gap comes in
// the stream rather than right after the subscription.
func (t *tailer) gap(l streamLine, live bool) error {
	p := t.pos[l.Channel]
	if p == nil {
		p = &position{}
		t.pos[l.Channel] = p
	}
	p.epoch = l.Epoch
	if l.Reset {
		// Right after the subscription, the subscribed line gave the
		// position in the new stream; in the stream, the message that
		// follows will: until then, nothing of it was seen.
		p.reset = true
		if live {
			p.id = 0
		}
		fmt.Fprintf(t.c.stderr, "meteorctl tail: gap in %s: the stream was reset (the server lost its history); messages after %d may be lost\n", l.Channel, l.Since)
	} else {
		p.id = l.Trimmed
		fmt.Fprintf(t.c.stderr, "meteorctl tail: gap in %s: the messages after %d up to %d were dropped before they could be sent\n", l.Channel, l.Since, l.Trimmed)
	}
	if !t.c.json {
		return nil
	}
	return t.c.printJSON(struct {
		Type    string `json:"type"`
		Channel string `json:"channel"`
		Since   uint64 `json:"since"`
		Trimmed uint64 `json:"trimmed"`
		Epoch   string `json:"epoch"`
		Reset   bool   `json:"reset,omitempty"`
	}{"gap", l.Channel, l.Since, l.Trimmed, l.Epoch, l.Reset})
}

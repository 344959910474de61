package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Retries of a request that the server answered 503 (shutting down, store
// unavailable): attempts in all, and the first wait, which doubles up to
// maxBackoff, with up to a quarter off at random; the server's
// Retry-After, when it gives one, is the wait instead.
const (
	attempts    = 3
	backoffBase = 250 * time.Millisecond
	maxBackoff  = 8 * time.Second
)

// httpClient is the client of every API call: each call has its own
// deadline through its context.
var httpClient = &http.Client{Transport: &http.Transport{
	Proxy:                 http.ProxyFromEnvironment,
	DialContext:           (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
	ResponseHeaderTimeout: 30 * time.Second,
	MaxIdleConnsPerHost:   2,
}}

// callTimeout bounds one API call, its body included.
const callTimeout = time.Minute

// apiError is the server's refusal or failure: its status and its reason.
type apiError struct {
	status     int
	reason     string        // the "error" field, else the body
	hint       string        // what to do about it, or ""
	retryAfter time.Duration // from Retry-After, 0 when absent
	body       []byte        // the answer, for a partial publish
}

func (e *apiError) Error() string {
	s := fmt.Sprintf("%d %s: %s", e.status, http.StatusText(e.status), e.reason)
	if e.hint != "" {
		s += " (" + e.hint + ")"
	}
	return s
}

// code is the exit code of e.
func (e *apiError) code() int {
	if e.status == http.StatusUnauthorized {
		return exitToken
	}
	return exitServer
}

// exit wraps err, from a call, in the exitError it stands for.
func exit(err error) error {
	var ae *apiError
	var ee *exitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		return err
	case errors.As(err, &ae):
		return &exitError{ae.code(), err}
	case errors.Is(err, context.Canceled):
		return &exitError{exitInterrupted, errors.New("interrupted")}
	default:
		return &exitError{exitUnreachable, fmt.Errorf("cannot reach the server: %w", err)}
	}
}

// call sends one request to the API, path relative to its base (already
// escaped), and decodes a 2xx answer's JSON into out (when not nil). A
// request that is safe to repeat (retry) is tried again, after a wait, when
// the server answers 503; a publish is not (publish retries what a 503
// names as unpublished), nor is any request whose connection failed: a
// broken connection may have published, and a server that cannot be
// reached is said at once. The error is an *apiError for an answer that is
// not 2xx, another error when there was none.
func (c *cli) call(ctx context.Context, method, path string, body []byte, retry bool, out any) error {
	var err error
	n := 1
	if retry {
		n = attempts
	}
	for i := range n {
		if i > 0 {
			wait := backoff(i - 1)
			var ae *apiError
			if errors.As(err, &ae) && ae.retryAfter > 0 {
				wait = min(ae.retryAfter, maxBackoff)
			}
			if !sleep(ctx, wait) {
				return ctx.Err()
			}
		}
		err = c.callOnce(ctx, method, path, body, out)
		var ae *apiError
		if err == nil || ctx.Err() != nil || !errors.As(err, &ae) || ae.status != http.StatusServiceUnavailable {
			return err
		}
	}
	return err
}

// callOnce is one attempt of call.
func (c *cli) callOnce(ctx context.Context, method, path string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.api+path, rd)
	if err != nil {
		return usageError("-api %q: %v", c.api, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		ae := &apiError{status: resp.StatusCode, reason: strings.TrimSpace(string(b)), body: b}
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			ae.reason = e.Error
		}
		if ae.reason == "" {
			ae.reason = "(no reason given)"
		}
		if resp.StatusCode == http.StatusUnauthorized {
			if c.token == "" {
				ae.hint = "the server wants a token: set METEOR_TOKEN"
			} else {
				ae.hint = "the server refused the token of METEOR_TOKEN or -token-file"
			}
		}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			ae.retryAfter = time.Duration(s) * time.Second
		}
		return ae
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return &exitError{exitServer, fmt.Errorf("%s %s: the answer is not the JSON expected: %v", method, path, err)}
	}
	return nil
}

// channelPath is the API path of a channel, with what follows it.
func channelPath(channel, rest string) string {
	return "/api/channels/" + url.PathEscape(channel) + rest
}

// backoff is the wait before retry i (0 the first): backoffBase doubled i
// times, at most maxBackoff, less up to a quarter at random so that clients
// that failed together do not come back together.
func backoff(i int) time.Duration {
	d := backoffBase
	for range i {
		d *= 2
		if d >= maxBackoff {
			d = maxBackoff
			break
		}
	}
	return d - time.Duration(rand.Int64N(int64(d)/4+1))
}

// sleep waits d or until ctx ends, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// printJSON writes v as one line of JSON.
func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetEscapeHTML(false)
	return outErr(enc.Encode(v))
}

// outErr is an error writing the output, as the exitError it stands for.
func outErr(err error) error {
	if err == nil {
		return nil
	}
	return &exitError{exitUsage, fmt.Errorf("writing the output: %w", err)}
}

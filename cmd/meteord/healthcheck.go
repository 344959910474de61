package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// defaultHealthURL is what -healthcheck asks without a URL: the HTTP
// API's /healthz at its default address.
const defaultHealthURL = "http://127.0.0.1:4672/healthz"

// healthcheckTimeout bounds the whole request of -healthcheck.
const healthcheckTimeout = 5 * time.Second

// healthArgs reports whether args ask for the health check
// (-healthcheck [URL], --healthcheck, -healthcheck=URL as the first
// argument) and which URL it is to fetch.
func healthArgs(args []string) (url string, ok bool) {
	if len(args) == 0 {
		return "", false
	}
	name, val, hasVal := strings.Cut(strings.TrimPrefix(args[0], "-"), "=")
	if name != "-healthcheck" && name != "healthcheck" {
		return "", false
	}
	switch {
	case hasVal:
		return val, true
	case len(args) > 1:
		return args[1], true
	}
	return defaultHealthURL, true
}

// healthcheck GETs url and returns 0 when it answers 2xx within
// healthcheckTimeout, 1 otherwise, saying which on stdout or stderr. It is
// the container image's HEALTHCHECK, which has neither a shell nor curl.
func healthcheck(url string, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), healthcheckTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		fmt.Fprintf(stderr, "meteord: -healthcheck: %v\n", err)
		return 1
	}
	// A proxy in the environment must not answer for this process.
	client := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "meteord: -healthcheck: %v\n", err)
		return 1
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		fmt.Fprintf(stderr, "meteord: -healthcheck: %s answered %s\n", url, resp.Status)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s\n", url, resp.Status)
	return 0
}

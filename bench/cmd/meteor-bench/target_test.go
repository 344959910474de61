package main

import "testing"

// TestTokenPaths: -token adds ?token= to every Meteor subscription, the
// resuming ones' cursors after it, and nothing to the other servers'.
func TestTokenPaths(t *testing.T) {
	for _, c := range []struct {
		kind, transport string
		pos             resumePos
		want            string
	}{
		{targetMeteor, transportSSE, resumePos{}, "/sse/c?token=a.b%2Bc"},
		{targetMeteor, transportSSE, resumePos{ID: 7}, "/sse/c?token=a.b%2Bc&lastEventId=c%3A7"},
		{targetMeteor, transportNDJSON, resumePos{ID: 7}, "/ndjson/c?token=a.b%2Bc&since=c%3A7"},
		{targetMeteor, transportStream, resumePos{ID: 7}, "/push/h/xhrinteractive/c.r8?token=a.b%2Bc"},
		{targetMeteor, transportWS, resumePos{}, "/ws?token=a.b%2Bc"},
		{targetNchan, transportSSE, resumePos{}, "/sub/sse/c"},
	} {
		e := endpoint{Kind: c.kind, Transport: c.transport, Token: "a.b+c"}
		if err := e.defaults(); err != nil {
			t.Fatal(err)
		}
		if got := e.resumePath("h", "c", c.pos); got != c.want {
			t.Errorf("%s %s %+v: %q, want %q", c.kind, c.transport, c.pos, got, c.want)
		}
	}
}

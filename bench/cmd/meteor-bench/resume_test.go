package main

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestResumeSmall runs the resume scenario against an in-process meteord
// over every transport: while publishing, the channel's subscribers are
// closed by the API (someone else's "kill": the first drop marks it), and
// each reconnects to the same server and resumes after the last message
// it saw. The server kept its history, so nothing is lost or duplicated.
func TestResumeSmall(t *testing.T) {
	srv := startServer(t)
	for _, tc := range []struct{ transport, resumeAddr string }{
		{transportStream, ""}, {transportSSE, ""}, {transportWS, ""}, {transportNDJSON, ""},
		{transportSSE, srv.SubscriberAddr().String()}, // -resume-addr: the same server here
	} {
		t.Run(tc.transport+map[bool]string{true: "/resume-addr"}[tc.resumeAddr != ""], func(t *testing.T) {
			c := testCommonTransport(t, srv, tc.transport, "r"+tc.transport+map[bool]string{true: "a"}[tc.resumeAddr != ""], 6)
			c.resume, c.resumeJitter, c.resumeAddrs = true, 50*time.Millisecond, tc.resumeAddr
			go func() {
				time.Sleep(300 * time.Millisecond)
				resp, err := http.Post(c.ep.PubURL+"/api/channels/"+c.channel+"/close", "text/plain", nil)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
			}()
			res, err := resumeStorm(context.Background(), c, resumeParams{rate: 100, size: 64, duration: time.Second,
				drain: 2 * time.Second, killAfter: 300 * time.Millisecond, wait: 10 * time.Second}, t.Logf)
			if err != nil {
				t.Fatal(err)
			}
			if res.Dropped != 6 || res.Resumed != 6 || res.GaveUp != 0 || res.StillDown != 0 || res.AllResumedMS < 0 {
				t.Fatalf("dropped %d, resumed %d, gave up %d, still down %d, all resumed %.0f ms; want 6 dropped and resumed",
					res.Dropped, res.Resumed, res.GaveUp, res.StillDown, res.AllResumedMS)
			}
			if res.Published < 50 || res.Delivered != res.Expected || res.Lost != 0 || res.Dups != 0 || res.Disorder != 0 {
				t.Fatalf("published %d, delivered %d of %d, lost %d, dups %d, disorder %d; want every one once, in order",
					res.Published, res.Delivered, res.Expected, res.Lost, res.Dups, res.Disorder)
			}
		})
	}
}

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// message is a message as the API's history and the NDJSON transport
// give it.
type message struct {
	Type    string `json:"type,omitempty"`
	ID      uint64 `json:"id"`
	Channel string `json:"channel"`
	Text    string `json:"text"`
	Time    int64  `json:"time"`
}

// printMessage prints m: its JSON, or its local time, channel, id and
// text (the text quoted when it holds a line break or another control
// character, so that one message is one line).
func (c *cli) printMessage(m message) error {
	if c.json {
		return c.printJSON(m)
	}
	text := m.Text
	if strings.ContainsFunc(text, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		text = strconv.Quote(text)
	}
	_, err := fmt.Fprintf(c.stdout, "%s %s %d %s\n", stamp(m.Time), m.Channel, m.ID, text)
	return outErr(err)
}

// stamp is a Unix millisecond time as a local date and time.
func stamp(ms int64) string {
	return time.UnixMilli(ms).Format("2006-01-02 15:04:05.000")
}

// runStats prints GET /api/stats: one counter a line, sorted, or the
// server's object.
func runStats(ctx context.Context, c *cli, args []string) error {
	if _, err := c.parse(lookup("stats"), c.flags("stats"), args, 0, 0); err != nil {
		return err
	}
	var st map[string]json.RawMessage
	if err := c.call(ctx, http.MethodGet, "/api/stats", nil, true, &st); err != nil {
		return exit(err)
	}
	if c.json {
		return c.printJSON(st)
	}
	lines := make([]string, 0, len(st))
	for k, v := range st {
		var sub map[string]json.RawMessage
		if json.Unmarshal(v, &sub) == nil {
			for k2, v2 := range sub {
				lines = append(lines, k+"."+k2+"\t"+plain(v2))
			}
			continue
		}
		lines = append(lines, k+"\t"+plain(v))
	}
	sort.Strings(lines)
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	for _, l := range lines {
		fmt.Fprintln(tw, l)
	}
	return outErr(tw.Flush())
}

// plain is a JSON value as the readable output shows it: a string
// without its quotes, anything else as it is.
func plain(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

// channelInfo is one entry of GET /api/channels.
type channelInfo struct {
	Name        string `json:"name"`
	Messages    int    `json:"messages"`
	Subscribers int    `json:"subscribers"`
	LastID      uint64 `json:"lastId"`
}

// runChannels prints GET /api/channels: a table, or one object a channel.
func runChannels(ctx context.Context, c *cli, args []string) error {
	if _, err := c.parse(lookup("channels"), c.flags("channels"), args, 0, 0); err != nil {
		return err
	}
	var ans struct {
		Channels []channelInfo `json:"channels"`
	}
	if err := c.call(ctx, http.MethodGet, "/api/channels", nil, true, &ans); err != nil {
		return exit(err)
	}
	if c.json {
		for _, ch := range ans.Channels {
			if err := c.printJSON(ch); err != nil {
				return err
			}
		}
		return nil
	}
	if len(ans.Channels) == 0 {
		_, err := fmt.Fprintln(c.stdout, "no channels")
		return outErr(err)
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANNEL\tMESSAGES\tSUBSCRIBERS\tLAST ID")
	for _, ch := range ans.Channels {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\n", ch.Name, ch.Messages, ch.Subscribers, ch.LastID)
	}
	return outErr(tw.Flush())
}

// runHistory prints the newest -n messages of a channel, oldest first.
func runHistory(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("history")
	n := fs.Int("n", 10, "how many of the newest messages (the server caps it at MaxMessagesPerChannel)")
	rest, err := c.parse(lookup("history"), fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *n < 0 {
		return usageError("-n %d: want 0 or more", *n)
	}
	msgs, err := c.history(ctx, rest[0], *n)
	if err != nil {
		return exit(err)
	}
	for _, m := range msgs {
		if err := c.printMessage(m); err != nil {
			return err
		}
	}
	return nil
}

// history returns a channel's newest n messages, oldest first.
func (c *cli) history(ctx context.Context, channel string, n int) ([]message, error) {
	var ans struct {
		History []message `json:"history"`
	}
	err := c.call(ctx, http.MethodGet, channelPath(channel, "?history="+strconv.Itoa(n)), nil, true, &ans)
	return ans.History, err
}

// subscriber is one entry of GET /api/channels/{c}/subscribers.
type subscriber struct {
	ID        string `json:"id"`
	Node      string `json:"node"`
	Transport string `json:"transport"`
	Since     int64  `json:"since"`
}

// runPresence lists a channel's subscribers, following the listing's
// cursor page after page: a table after the count, or one object a
// subscriber.
func runPresence(ctx context.Context, c *cli, args []string) error {
	fs := c.flags("presence")
	limit := fs.Int("limit", 100, "subscribers a page (1 to 1000)")
	rest, err := c.parse(lookup("presence"), fs, args, 1, 1)
	if err != nil {
		return err
	}
	if *limit < 1 || *limit > 1000 {
		return usageError("-limit %d: want 1 to 1000", *limit)
	}
	channel := rest[0]
	var tw *tabwriter.Writer
	cursor := ""
	for page := 0; ; page++ {
		var ans struct {
			Count       int          `json:"count"`
			Subscribers []subscriber `json:"subscribers"`
			Next        string       `json:"next"`
		}
		q := url.Values{"limit": {strconv.Itoa(*limit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		if err := c.call(ctx, http.MethodGet, channelPath(channel, "/subscribers?"+q.Encode()), nil, true, &ans); err != nil {
			return exit(err)
		}
		if page == 0 && !c.json {
			fmt.Fprintf(c.stdout, "%s: %d subscribers\n", channel, ans.Count)
		}
		for _, s := range ans.Subscribers {
			if c.json {
				if err := c.printJSON(s); err != nil {
					return err
				}
				continue
			}
			if tw == nil {
				tw = tabwriter.NewWriter(c.stdout, 0, 8, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tNODE\tTRANSPORT\tSINCE")
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, s.Node, s.Transport, stamp(s.Since))
		}
		if ans.Next == "" || ans.Next == cursor {
			break
		}
		cursor = ans.Next
	}
	if tw != nil {
		return outErr(tw.Flush())
	}
	return nil
}

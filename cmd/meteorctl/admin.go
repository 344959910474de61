package main

import (
	"context"
	"fmt"
	"net/http"
)

// runClear drops a channel's stored messages (DELETE
// /api/channels/{c}/messages) and says how many.
func runClear(ctx context.Context, c *cli, args []string) error {
	rest, err := c.parse(lookup("clear"), c.flags("clear"), args, 1, 1)
	if err != nil {
		return err
	}
	var ans struct {
		Channel string `json:"channel"`
		Cleared int    `json:"cleared"`
	}
	if err := c.call(ctx, http.MethodDelete, channelPath(rest[0], "/messages"), nil, true, &ans); err != nil {
		return exit(err)
	}
	if c.json {
		return c.printJSON(ans)
	}
	_, err = fmt.Fprintf(c.stdout, "%s: cleared %d messages\n", ans.Channel, ans.Cleared)
	return outErr(err)
}

// runClose closes every subscriber connection of a channel (POST
// /api/channels/{c}/close) and says how many this node closed.
func runClose(ctx context.Context, c *cli, args []string) error {
	rest, err := c.parse(lookup("close"), c.flags("close"), args, 1, 1)
	if err != nil {
		return err
	}
	var ans struct {
		Channel string `json:"channel"`
		Closed  int    `json:"closed"`
	}
	if err := c.call(ctx, http.MethodPost, channelPath(rest[0], "/close"), nil, true, &ans); err != nil {
		return exit(err)
	}
	if c.json {
		return c.printJSON(ans)
	}
	_, err = fmt.Fprintf(c.stdout, "%s: closed %d subscriber connections on this node\n", ans.Channel, ans.Closed)
	return outErr(err)
}

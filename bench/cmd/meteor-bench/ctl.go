package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// ctlClient speaks the controller protocol on one connection.
type ctlClient struct {
	nc net.Conn
	br *bufio.Reader
	wb []byte
}

func dialCtl(ctx context.Context, addr string) (*ctlClient, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("controller: %w", err)
	}
	return &ctlClient{nc: nc, br: bufio.NewReader(nc)}, nil
}

func (c *ctlClient) Close() error { return c.nc.Close() }

// command sends one line and reads the one-line reply.
func (c *ctlClient) command(line string) (string, error) {
	c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	c.wb = append(append(c.wb[:0], line...), '\r', '\n')
	if _, err := c.nc.Write(c.wb); err != nil {
		return "", fmt.Errorf("controller: %w", err)
	}
	reply, err := c.br.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("controller: %w", err)
	}
	return strings.TrimRight(reply, "\r\n"), nil
}

// Count returns COUNTSUBSCRIBERS of channel.
func (c *ctlClient) Count(channel string) (int, error) {
	reply, err := c.command("COUNTSUBSCRIBERS " + channel)
	if err != nil {
		return 0, err
	}
	n, ok := strings.CutPrefix(reply, "OK ")
	if !ok {
		return 0, fmt.Errorf("controller: COUNTSUBSCRIBERS: %q", reply)
	}
	return strconv.Atoi(n)
}

// Publish adds a message and returns its id.
func (c *ctlClient) Publish(channel, text string) (uint64, error) {
	reply, err := c.command("ADDMESSAGE " + channel + " " + text)
	if err != nil {
		return 0, err
	}
	id, ok := strings.CutPrefix(reply, "OK\t")
	if !ok {
		return 0, fmt.Errorf("controller: ADDMESSAGE: %q", reply)
	}
	return strconv.ParseUint(id, 10, 64)
}

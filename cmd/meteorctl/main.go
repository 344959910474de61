// Command meteorctl is a command-line client of meteord: it publishes
// through the HTTP API, reads channels, history, presence and statistics,
// clears and closes channels, and tails channels over the NDJSON
// transport, resuming after a reconnect. See docs/meteorctl.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Exit codes: what failed, for scripts.
const (
	exitOK          = 0 // done
	exitUsage       = 1 // bad command line, or a local file that cannot be read
	exitUnreachable = 2 // no connection to the server, or it broke before an answer
	exitRefused     = 3 // the server answered 4xx: credentials, not found, bad request
	exitServer      = 4 // the server answered 5xx: it failed, is shutting down, or its store is unavailable
	exitClosed      = 5 // tail: the server ended the subscription and said not to come back
)

// Default addresses: the subscriber and API ports of a meteord with the
// built-in settings.
const (
	defaultAPI = "http://127.0.0.1:4672"
	defaultURL = "http://127.0.0.1:4670"
)

// command is one subcommand: its one-line synopsis and what it runs.
type command struct {
	synopsis string
	run      func(ctx context.Context, c *cli, args []string) error
}

// commands are the subcommands by name; set by init, as their functions
// read it.
var commands map[string]command

func init() {
	commands = map[string]command{
		"publish":  {"publish CHANNEL [TEXT]     publish TEXT, or one message per line of standard input", runPublish},
		"tail":     {"tail [-last N] [-forever] CHANNEL...  print each new message as it arrives", runTail},
		"history":  {"history [-n N] CHANNEL     the channel's newest N stored messages (default 10), oldest first", runHistory},
		"channels": {"channels                   every channel with messages or subscribers", runChannels},
		"presence": {"presence [-limit N] CHANNEL  the channel's subscribers on every node", runPresence},
		"stats":    {"stats                      the server's counters", runStats},
		"clear":    {"clear CHANNEL              drop the channel's stored messages", runClear},
		"close":    {"close CHANNEL              close every subscriber connection of the channel", runClose},
	}
}

// usageText is the top of -help; the command list and the exit codes
// follow it.
const usageText = `meteorctl: a command-line client of meteord

usage: meteorctl [flags] COMMAND [command flags] [ARGS]

Flags (before or after the command):
  -api URL         the HTTP API (env METEOR_API, default ` + defaultAPI + `)
  -url URL         the subscriber port, for tail (env METEOR_URL, default ` + defaultURL + `)
  -json            JSON for scripts: one object per line
  -token-file F    read the API token from file F (else env METEOR_TOKEN)

Commands:
`

// exitText is the end of -help.
const exitText = `
Exit codes:
  0  done
  1  usage: a bad command line, or a token file that cannot be read
  2  the server is unreachable (no connection, or it broke before answering)
  3  the server refused the request (4xx: credentials, not found, bad request); its reason is printed
  4  the server failed (5xx: an error, shutting down, or its store unavailable)
  5  tail: the server closed the subscription and said not to reconnect (an administrator closed the channel)

The token, when the server has APIToken set, comes from METEOR_TOKEN or
-token-file, never from a flag (a flag shows in ps). Documentation:
docs/meteorctl.md.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// cli is one invocation's settings and streams.
type cli struct {
	api, url  string // bases without a trailing slash
	json      bool
	tokenFile string
	token     string

	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// exitError is an error with the exit code it stands for.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageError returns an error that exits with exitUsage.
func usageError(format string, a ...any) error {
	return &exitError{exitUsage, fmt.Errorf(format, a...)}
}

// errHelp stands for -help: the usage goes to stdout and the exit is 0.
var errHelp = errors.New("help")

// run is meteorctl with its arguments (without the program name), its
// streams and its environment; it returns the exit code. ctx ends a tail.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	c := &cli{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv}
	fs := c.flags("meteorctl")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.usage(stdout)
			return exitOK
		}
		fmt.Fprintf(stderr, "meteorctl: %v (meteorctl -help lists the flags)\n", err)
		return exitUsage
	}
	rest := fs.Args()
	if len(rest) == 0 {
		c.usage(stderr)
		return exitUsage
	}
	name := rest[0]
	if name == "help" {
		c.usage(stdout)
		return exitOK
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "meteorctl: unknown command %q (meteorctl -help lists them)\n", name)
		return exitUsage
	}
	err := cmd.run(ctx, c, rest[1:])
	if err == nil {
		return exitOK
	}
	if errors.Is(err, errHelp) {
		return exitOK
	}
	code := exitUsage
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	fmt.Fprintf(stderr, "meteorctl %s: %v\n", name, err)
	return code
}

// flags returns a flag set with the flags every command takes, bound to c.
func (c *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.api, "api", c.orEnv(c.api, "METEOR_API", defaultAPI), "the HTTP API's base URL")
	fs.StringVar(&c.url, "url", c.orEnv(c.url, "METEOR_URL", defaultURL), "the subscriber port's base URL")
	fs.BoolVar(&c.json, "json", c.json, "JSON output, one object per line")
	fs.StringVar(&c.tokenFile, "token-file", c.tokenFile, "a file holding the API token")
	return fs
}

// orEnv returns cur when set, else the environment variable, else def.
func (c *cli) orEnv(cur, env, def string) string {
	if cur != "" {
		return cur
	}
	if v := c.getenv(env); v != "" {
		return v
	}
	return def
}

// parse parses a command's flags (fs, from c.flags plus its own) and
// checks the number of arguments; it prints the command's usage for -help.
func (c *cli) parse(fs *flag.FlagSet, args []string, synopsis string, min, max int) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(c.stdout, "usage: meteorctl %s\n", synopsis)
			fs.SetOutput(c.stdout)
			fs.PrintDefaults()
			return nil, errHelp
		}
		return nil, usageError("%v", err)
	}
	rest := fs.Args()
	if len(rest) < min || (max >= 0 && len(rest) > max) {
		return nil, usageError("usage: meteorctl %s", strings.TrimSpace(synopsis))
	}
	c.api = strings.TrimRight(c.api, "/")
	c.url = strings.TrimRight(c.url, "/")
	if err := c.loadToken(); err != nil {
		return nil, err
	}
	return rest, nil
}

// loadToken sets c.token from -token-file, else METEOR_TOKEN.
func (c *cli) loadToken() error {
	if c.tokenFile == "" {
		c.token = strings.TrimSpace(c.getenv("METEOR_TOKEN"))
		return nil
	}
	b, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return usageError("token file: %v", err)
	}
	c.token = strings.TrimSpace(string(b))
	if c.token == "" {
		return usageError("token file %s is empty", c.tokenFile)
	}
	return nil
}

// usage writes -help to w.
func (c *cli) usage(w io.Writer) {
	fmt.Fprint(w, usageText)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %s\n", commands[n].synopsis)
	}
	fmt.Fprint(w, exitText)
}

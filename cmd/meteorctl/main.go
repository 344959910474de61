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
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit codes: what failed, for scripts. exitCodes below is the same table
// in words, for -help; docs/meteorctl.md copies it.
const (
	exitOK          = 0   // done
	exitServer      = 1   // the server answered with an error (4xx but 401, 5xx), or with something unexpected
	exitUsage       = 2   // bad command line, or a local file or stream that cannot be read or written
	exitUnreachable = 3   // no answer: no connection, or it broke before the answer
	exitToken       = 4   // 401: the server wants a token and none was given, or refused it
	exitInterrupted = 130 // SIGINT or SIGTERM before the command was done (tail ends with 0)
)

// exitCodes is the exit codes' table as -help prints it.
var exitCodes = []struct {
	code    int
	meaning string
}{
	{exitOK, "done (tail: stopped by SIGINT or SIGTERM)"},
	{exitServer, "the server refused or failed the request (HTTP 4xx but 401, 5xx); its status and reason are printed"},
	{exitUsage, "usage: a bad command, flag or argument; standard input or the token file cannot be read, the output cannot be written"},
	{exitUnreachable, "the server cannot be reached (no connection, or it broke before answering)"},
	{exitToken, "the server wants a token and METEOR_TOKEN is empty, or it refused the token (401)"},
	{exitInterrupted, "interrupted (SIGINT, SIGTERM) before the command was done"},
}

// Default addresses: the subscriber and API ports of a meteord with the
// built-in settings.
const (
	defaultAPI = "http://127.0.0.1:4672"
	defaultURL = "http://127.0.0.1:4670"
)

// command is one subcommand.
type command struct {
	name    string
	args    string // the synopsis after the name: flags and arguments
	summary string // one line for the command list
	detail  string // more lines for the command's own -help, or ""
	run     func(ctx context.Context, c *cli, args []string) error
}

// commands are the subcommands in the order -help lists them; set by
// init, as their functions read it.
var commands []*command

func init() {
	commands = []*command{
		{"publish", "CHANNEL [TEXT]", "publish TEXT, or each line of standard input as a message",
			`Without TEXT, each line of standard input is one message (its line end
removed; an empty line is an empty message), sent in batches of up to 1000
through POST /api/publish; a batch also goes as soon as standard input has
nothing more to read, so a slow producer's lines go out at once. Prints the
id of each message published, in order. An error names the line.`, runPublish},
		{"tail", "[-last N] CHANNEL...", "print each new message of the channels as it arrives",
			`Subscribes on the subscriber port (-url) over NDJSON and prints each
message. When the connection ends (a restart, a network failure, an
administrator closing the channel) it reconnects and resumes after the
last message it printed: no message is lost or printed twice while the
server still holds them. A gap or reset (messages the server no longer
holds) is reported on standard error. Runs until SIGINT or SIGTERM.`, runTail},
		{"history", "[-n N] CHANNEL", "the channel's newest N stored messages, oldest first", "", runHistory},
		{"channels", "", "every channel with messages or subscribers", "", runChannels},
		{"presence", "[-limit N] CHANNEL", "the channel's subscribers on every node", "", runPresence},
		{"stats", "", "the server's counters", "", runStats},
		{"clear", "CHANNEL", "drop the channel's stored messages", "", runClear},
		{"close", "CHANNEL", "close every subscriber connection of the channel", "", runClose},
	}
}

// lookup returns the command called name, or nil.
func lookup(name string) *command {
	for _, cmd := range commands {
		if cmd.name == name {
			return cmd
		}
	}
	return nil
}

// synopsis is the command's usage line.
func (cmd *command) synopsis() string {
	return strings.TrimSpace("meteorctl " + cmd.name + " " + cmd.args)
}

// usageText is the top of -help; the command list and the exit codes
// follow it.
const usageText = `meteorctl: a command-line client of meteord

usage: meteorctl [flags] COMMAND [flags] [ARGS]
       meteorctl help [COMMAND]

Flags (before the command, or after it and before its arguments):
  -api URL         the HTTP API (env METEOR_API, default ` + defaultAPI + `)
  -url URL         the subscriber port, for tail (env METEOR_URL, default ` + defaultURL + `)
  -json            output for scripts: one JSON object per line
  -token-file F    read the API token from file F (else env METEOR_TOKEN)

Commands:
`

// tokenText is the end of -help.
const tokenText = `
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

// errHelp stands for -help: the usage went to stdout and the exit is 0.
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
		if len(rest) == 1 {
			c.usage(stdout)
			return exitOK
		}
		name, rest = rest[1], []string{rest[1], "-help"}
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "meteorctl: unknown command %q (meteorctl -help lists them)\n", name)
		return exitUsage
	}
	err := cmd.run(ctx, c, rest[1:])
	if err == nil || errors.Is(err, errHelp) {
		return exitOK
	}
	code := exitServer
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
	fs.StringVar(&c.api, "api", c.orEnv(c.api, "METEOR_API", defaultAPI), "the HTTP API's base `URL` (env METEOR_API)")
	fs.StringVar(&c.url, "url", c.orEnv(c.url, "METEOR_URL", defaultURL), "the subscriber port's base `URL`, for tail (env METEOR_URL)")
	fs.BoolVar(&c.json, "json", c.json, "output for scripts: one JSON object per line")
	fs.StringVar(&c.tokenFile, "token-file", c.tokenFile, "a `file` holding the API token (else env METEOR_TOKEN)")
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

// parse parses the flags of cmd (fs, from c.flags plus its own), checks
// the number of arguments (max -1: any), the addresses and the token; it
// prints the command's usage for -help and returns errHelp.
func (c *cli) parse(cmd *command, fs *flag.FlagSet, args []string, min, max int) ([]string, error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(c.stdout, "usage: %s\n\n%s.\n", cmd.synopsis(), cmd.summary)
			if cmd.detail != "" {
				fmt.Fprintf(c.stdout, "\n%s\n", cmd.detail)
			}
			fmt.Fprintf(c.stdout, "\nFlags:\n")
			fs.SetOutput(c.stdout)
			fs.PrintDefaults()
			return nil, errHelp
		}
		return nil, usageError("%v (usage: %s)", err, cmd.synopsis())
	}
	rest := fs.Args()
	if len(rest) < min || (max >= 0 && len(rest) > max) {
		return nil, usageError("usage: %s", cmd.synopsis())
	}
	var err error
	if c.api, err = baseURL("-api", c.api); err != nil {
		return nil, err
	}
	if c.url, err = baseURL("-url", c.url); err != nil {
		return nil, err
	}
	if err := c.loadToken(); err != nil {
		return nil, err
	}
	return rest, nil
}

// baseURL checks an address given to flag: http or https, a host, no
// query; "host:port" alone is taken as http://host:port. It returns it
// without a trailing slash.
func baseURL(flag, s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil {
		return "", usageError("%s %q: %v", flag, s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", usageError("%s %q: want http://host:port or https://host:port", flag, s)
	}
	return strings.TrimRight(s, "/"), nil
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
	for _, cmd := range commands {
		fmt.Fprintf(w, "  %-36s %s\n", strings.TrimPrefix(cmd.synopsis(), "meteorctl "), cmd.summary)
	}
	fmt.Fprint(w, "\nEach command's flags: meteorctl COMMAND -help, or meteorctl help COMMAND.\n\nExit codes:\n")
	for _, e := range exitCodes {
		fmt.Fprintf(w, "  %3d  %s\n", e.code, e.meaning)
	}
	fmt.Fprint(w, tokenText)
}

package controller

import (
	"bytes"
	"errors"

	"github.com/meteorpush/meteor/internal/channel"
)

// Kind is the verb of a controller command.
type Kind uint8

// The commands of the controller protocol. The zero Kind is not a command.
const (
	AddMessage Kind = iota + 1
	CountSubscribers
	ListChannels
	ShowStats
	Quit
	// Auth is AUTH <token>, an extension: the credential that a Server
	// with a Token wants before any other command.
	Auth
)

var kindNames = [...]string{
	AddMessage:       "ADDMESSAGE",
	CountSubscribers: "COUNTSUBSCRIBERS",
	ListChannels:     "LISTCHANNELS",
	ShowStats:        "SHOWSTATS",
	Quit:             "QUIT",
	Auth:             "AUTH",
}

// String returns the command word as it appears on the wire, or "INVALID".
func (k Kind) String() string {
	if k == 0 || int(k) >= len(kindNames) {
		return "INVALID"
	}
	return kindNames[k]
}

// Command is one parsed controller command.
type Command struct {
	Kind Kind
	// Channel is the channel name of ADDMESSAGE and COUNTSUBSCRIBERS, empty
	// otherwise. A Command returned by ParseCommand always has a channel that
	// satisfies channel.Valid.
	Channel string
	// Text is the message of ADDMESSAGE, byte for byte; it may be empty but
	// is never nil for ADDMESSAGE. For AUTH it is the token, never empty.
	// ParseCommand returns a slice of its input, not a copy.
	Text []byte
}

var (
	// ErrSyntax reports a line that is not a command of the protocol: an
	// unknown or misspelt verb, a missing or extra argument. The controller
	// replies "ERR Invalid command syntax", as Meteor 1.06 does.
	ErrSyntax = errors.New("controller: invalid command syntax")

	// ErrInvalidChannel reports a channel name outside [A-Za-z0-9_%-]+, the
	// grammar of the subscriber URL: a message published to such a channel
	// could never be delivered. The controller replies
	// "ERR Invalid channel name". Meteor 1.06 accepted any such name.
	ErrInvalidChannel = errors.New("controller: invalid channel name")

	// ErrLineTooLong reports a command line longer than the server's MaxLine.
	// The controller replies "ERR Line too long" and closes the connection,
	// since it cannot tell where the next command starts.
	ErrLineTooLong = errors.New("controller: line too long")
)

// isSpace reports whether c is white space as Perl's \s understood it on
// byte strings in 2008 (Perl 5.8 and 5.10): SP, HT, LF, FF and CR. VT (0x0B)
// only joined \s in Perl 5.18, so it is not white space here.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
}

// ParseCommand parses one command line, given without its LF or CRLF.
//
// The rules are those of Meteor 1.06. Verbs are case-sensitive and must be
// followed by white space when they take an argument. ADDMESSAGE takes one or
// more white-space characters, the channel (the run of non-white-space that
// follows), exactly one white-space character, and the text: the rest of the
// line, possibly empty. COUNTSUBSCRIBERS takes white space and the channel,
// and nothing after it. LISTCHANNELS and QUIT take nothing. SHOWSTATS ignores
// whatever follows it, even with no white space in between. AUTH, an
// extension, takes white space and the token: the rest of the line without
// the white space around it, which must leave something. White space is
// SP, HT, FF and CR (see isSpace).
//
// The errors are ErrSyntax and ErrInvalidChannel. On success the Text of the
// command is a slice of line.
func ParseCommand(line []byte) (Command, error) {
	switch {
	case bytes.HasPrefix(line, []byte("ADDMESSAGE")):
		rest := line[len("ADDMESSAGE"):]
		ch, rest, ok := channelArg(rest)
		if !ok || len(rest) == 0 || !isSpace(rest[0]) {
			return Command{}, ErrSyntax
		}
		if !channel.ValidBytes(ch) {
			return Command{}, ErrInvalidChannel
		}
		return Command{Kind: AddMessage, Channel: string(ch), Text: rest[1:len(rest):len(rest)]}, nil
	case bytes.HasPrefix(line, []byte("COUNTSUBSCRIBERS")):
		ch, rest, ok := channelArg(line[len("COUNTSUBSCRIBERS"):])
		if !ok || len(rest) != 0 {
			return Command{}, ErrSyntax
		}
		if !channel.ValidBytes(ch) {
			return Command{}, ErrInvalidChannel
		}
		return Command{Kind: CountSubscribers, Channel: string(ch)}, nil
	case string(line) == "LISTCHANNELS":
		return Command{Kind: ListChannels}, nil
	case bytes.HasPrefix(line, []byte("SHOWSTATS")):
		return Command{Kind: ShowStats}, nil
	case string(line) == "QUIT":
		return Command{Kind: Quit}, nil
	case bytes.HasPrefix(line, []byte("AUTH")):
		rest := line[len("AUTH"):]
		if len(rest) == 0 || !isSpace(rest[0]) {
			return Command{}, ErrSyntax
		}
		tok := bytes.TrimFunc(rest, func(r rune) bool { return r < 0x80 && isSpace(byte(r)) })
		if len(tok) == 0 {
			return Command{}, ErrSyntax
		}
		return Command{Kind: Auth, Text: tok[:len(tok):len(tok)]}, nil
	}
	return Command{}, ErrSyntax
}

// channelArg splits b, the part of a line after the verb, as Perl's
// /^\s+(\S+)/ does: it reports false unless b starts with white space
// followed by at least one non-white-space byte.
func channelArg(b []byte) (ch, rest []byte, ok bool) {
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	if i == 0 {
		return nil, nil, false
	}
	j := i
	for j < len(b) && !isSpace(b[j]) {
		j++
	}
	if j == i {
		return nil, nil, false
	}
	return b[i:j], b[j:], true
}

// AppendText appends the command in its canonical form, without a line
// ending, to b: single spaces between the words, and for SHOWSTATS nothing
// after the verb. Parsing the result gives back c. It reports ErrSyntax for
// an invalid Kind, a Text that holds an LF (which no line can carry), or an
// AUTH token that is empty or has white space around it, and
// ErrInvalidChannel for a bad channel name.
func (c Command) AppendText(b []byte) ([]byte, error) {
	switch c.Kind {
	case AddMessage:
		if !channel.Valid(c.Channel) {
			return b, ErrInvalidChannel
		}
		if bytes.IndexByte(c.Text, '\n') >= 0 {
			return b, ErrSyntax
		}
		b = append(b, "ADDMESSAGE "...)
		b = append(b, c.Channel...)
		b = append(b, ' ')
		return append(b, c.Text...), nil
	case CountSubscribers:
		if !channel.Valid(c.Channel) {
			return b, ErrInvalidChannel
		}
		b = append(b, "COUNTSUBSCRIBERS "...)
		return append(b, c.Channel...), nil
	case ListChannels, ShowStats, Quit:
		return append(b, c.Kind.String()...), nil
	case Auth:
		t := c.Text
		if len(t) == 0 || isSpace(t[0]) || isSpace(t[len(t)-1]) || bytes.IndexByte(t, '\n') >= 0 {
			return b, ErrSyntax
		}
		b = append(b, "AUTH "...)
		return append(b, t...), nil
	}
	return b, ErrSyntax
}

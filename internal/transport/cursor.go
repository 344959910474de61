package transport

// The resume cursor of the SSE, NDJSON and JSON long-poll transports: one
// string that says, for each channel of a subscription, the id of the last
// message the client saw. Ids are compared per channel only, so a cursor
// stays valid when a cluster engine numbers each channel on its own.

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Position is where a client stands in one channel: ID is the last message
// id it saw (or chose to skip); it resumes with the messages after ID.
type Position struct {
	Channel string
	ID      uint64
}

// Cursor is a client's position in each channel of a subscription, written
// "<chan>:<id>[,<chan>:<id>...]". A channel appears at most once.
type Cursor []Position

// MaxCursor bounds the length of a cursor string, in bytes. A request line
// is bounded by MaxHeaderBytes anyway; this keeps a cursor from an
// EventSource's Last-Event-ID within reason too.
const MaxCursor = 8192

// Errors of ParseCursor, wrapped in ErrBadCursor.
var (
	// ErrBadCursor means a cursor breaks the grammar
	// <chan>:<id>[,<chan>:<id>...]; every error of ParseCursor wraps it.
	ErrBadCursor = errors.New("bad cursor")
	// errCursorLong means the cursor is longer than MaxCursor.
	errCursorLong = errors.New("longer than 8192 bytes")
	// errCursorChannel means a channel name is not [A-Za-z0-9_%-]+.
	errCursorChannel = errors.New("channel names are letters, digits, _, % and -")
	// errCursorID means an id is not a decimal number without leading
	// zeros below 2^64-1.
	errCursorID = errors.New("ids are decimal numbers without leading zeros")
	// errCursorTwice means a channel appears twice.
	errCursorTwice = errors.New("a channel appears twice")
)

// ParseCursor parses a cursor strictly: the empty string is the empty
// cursor; anything else is one or more <chan>:<id> separated by commas,
// with no spaces, no empty element, no leading zeros and no channel twice,
// so that AppendCursor gives back the same string.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return nil, nil
	}
	if len(s) > MaxCursor {
		return nil, cursorError(errCursorLong)
	}
	c := make(Cursor, 0, strings.Count(s, ",")+1)
	for elem := range strings.SplitSeq(s, ",") {
		name, digits, ok := strings.Cut(elem, ":")
		if !ok || !validChannel(name) {
			return nil, cursorError(errCursorChannel)
		}
		if digits == "" || len(digits) > 1 && digits[0] == '0' || digits[0] < '0' || digits[0] > '9' {
			return nil, cursorError(errCursorID)
		}
		id, err := strconv.ParseUint(digits, 10, 64)
		if err != nil || id == math.MaxUint64 {
			// MaxUint64 has no successor to resume from.
			return nil, cursorError(errCursorID)
		}
		if _, dup := c.Get(name); dup {
			return nil, cursorError(errCursorTwice)
		}
		c = append(c, Position{Channel: name, ID: id})
	}
	return c, nil
}

func cursorError(why error) error { return fmt.Errorf("%w: %w", ErrBadCursor, why) }

// Get returns the position of channel and whether c names it.
func (c Cursor) Get(channel string) (uint64, bool) {
	for _, p := range c {
		if p.Channel == channel {
			return p.ID, true
		}
	}
	return 0, false
}

// AppendCursor appends c in its string form.
func AppendCursor(b []byte, c Cursor) []byte {
	for i, p := range c {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, p.Channel...)
		b = append(b, ':')
		b = strconv.AppendUint(b, p.ID, 10)
	}
	return b
}

// String returns c in its string form.
func (c Cursor) String() string { return string(AppendCursor(nil, c)) }

// validChannel reports whether s is a channel name: [A-Za-z0-9_%-]+.
func validChannel(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '%' || c == '-') {
			return false
		}
	}
	return true
}

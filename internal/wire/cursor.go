package wire

// The resume cursor of the SSE, NDJSON and JSON long-poll transports: one
// string that says, for each channel of a subscription, where the client
// stands: the id of the last message it saw and the epoch of the stream it
// saw it in. Ids are compared per channel only, so a cursor stays valid
// when a cluster engine numbers each channel on its own; the epoch tells
// a client whose stream was lost (a restart, a flush) that it was.

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/meteorpush/meteor/internal/channel"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/reason"
	"github.com/meteorpush/meteor/internal/tmpl"
)

// Position is where a client stands in one channel: ID is the last message
// id it saw (or chose to skip), Epoch the stream it saw it in ("" when
// unknown); it resumes with the messages after ID.
type Position struct {
	Channel string
	engine.Position
}

// Cursor is a client's position in each channel of a subscription, written
// "<chan>:<id>[@<epoch>][,<chan>:<id>[@<epoch>]...]". A channel appears at
// most once.
type Cursor []Position

// MaxCursor bounds the length of a cursor string, in bytes. A request line
// is bounded by MaxHeaderBytes anyway; this keeps a cursor from an
// EventSource's Last-Event-ID within reason too.
const MaxCursor = 8192

// MaxEpoch bounds the length of an epoch in a cursor or a WebSocket
// operation.
const MaxEpoch = 32

// Errors of ParseCursor, wrapped in ErrBadCursor.
var (
	// ErrBadCursor means a cursor breaks the grammar
	// <chan>:<id>[@<epoch>][,...]; every error of ParseCursor wraps it.
	ErrBadCursor = errors.New("bad cursor")
	// errCursorLong means the cursor is longer than MaxCursor.
	errCursorLong = errors.New("longer than 8192 bytes")
	// errCursorChannel means a channel name breaks the channel rule.
	errCursorChannel = errors.New(channel.Rule)
	// errCursorID means an id is not a decimal number without leading
	// zeros below 2^64-1.
	errCursorID = errors.New("ids are decimal numbers without leading zeros")
	// errCursorEpoch means an epoch is not 1 to 32 of [0-9a-z].
	errCursorEpoch = errors.New("epochs are 1 to 32 of 0-9 and a-z")
	// errCursorTwice means a channel appears twice.
	errCursorTwice = errors.New("a channel appears twice")
)

// ValidEpoch reports whether s can be an epoch: 1 to MaxEpoch of [0-9a-z].
func ValidEpoch(s string) bool {
	if s == "" || len(s) > MaxEpoch {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z') {
			return false
		}
	}
	return true
}

// ParseCursor parses a cursor strictly: the empty string is the empty
// cursor; anything else is one or more <chan>:<id>[@<epoch>] separated by
// commas, with no spaces, no empty element, no leading zeros and no
// channel twice, so that AppendCursor gives back the same string.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return nil, nil
	}
	if len(s) > MaxCursor {
		return nil, cursorError(errCursorLong)
	}
	c := make(Cursor, 0, strings.Count(s, ",")+1)
	for elem := range strings.SplitSeq(s, ",") {
		name, rest, ok := strings.Cut(elem, ":")
		if !ok || !channel.Valid(name) {
			return nil, cursorError(errCursorChannel)
		}
		digits, epoch, hasEpoch := strings.Cut(rest, "@")
		if digits == "" || len(digits) > 1 && digits[0] == '0' || digits[0] < '0' || digits[0] > '9' {
			return nil, cursorError(errCursorID)
		}
		id, err := strconv.ParseUint(digits, 10, 64)
		if err != nil || id == math.MaxUint64 {
			// MaxUint64 has no successor to resume from.
			return nil, cursorError(errCursorID)
		}
		if hasEpoch && !ValidEpoch(epoch) {
			return nil, cursorError(errCursorEpoch)
		}
		if _, dup := c.Get(name); dup {
			return nil, cursorError(errCursorTwice)
		}
		c = append(c, Position{Channel: name, Position: engine.Position{ID: id, Epoch: epoch}})
	}
	return c, nil
}

func cursorError(why error) error { return fmt.Errorf("%w: %w", ErrBadCursor, why) }

// Get returns the position of channel and whether c names it.
func (c Cursor) Get(channel string) (engine.Position, bool) {
	for _, p := range c {
		if p.Channel == channel {
			return p.Position, true
		}
	}
	return engine.Position{}, false
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
		if p.Epoch != "" {
			b = append(b, '@')
			b = append(b, p.Epoch...)
		}
	}
	return b
}

// String returns c in its string form.
func (c Cursor) String() string { return string(AppendCursor(nil, c)) }

// Gap says that messages of Channel that a client has not seen are no
// longer stored: the ids after Since up to and including Trimmed. Reset
// says that the client's position belongs to a stream that was lost (a
// restart of the memory engine, a flush of the store): nothing can be said
// of what it missed there (Trimmed is 0), and it goes on in the stream
// Epoch.
type Gap struct {
	Channel string
	Since   uint64
	Trimmed uint64
	Epoch   string
	Reset   bool
}

// GapAt returns the gap of a client at p in a channel whose stream is s,
// and whether there is one (engine.Stream.Gap).
func GapAt(name string, p engine.Position, s engine.Stream) (Gap, bool) {
	if !s.Gap(p) {
		return Gap{}, false
	}
	g := Gap{Channel: name, Since: p.ID, Epoch: s.Epoch}
	if s.Reset(p) {
		g.Reset = true
	} else {
		g.Trimmed = s.Trimmed
	}
	return g, true
}

// appendGapObject appends the gap as a JSON object.
func appendGapObject(b []byte, g Gap) []byte {
	b = append(b, '{')
	return append(appendGapFields(b, g), '}')
}

// appendGapFields appends "channel":..,"since":..,"trimmed":..,"epoch":..
// and "reset":true when it is one: the fields of a gap object, shared by
// every transport that reports gaps.
func appendGapFields(b []byte, g Gap) []byte {
	b = append(b, `"channel":"`...)
	b = tmpl.JSONString(b, g.Channel)
	b = append(b, `","since":`...)
	b = strconv.AppendUint(b, g.Since, 10)
	b = append(b, `,"trimmed":`...)
	b = strconv.AppendUint(b, g.Trimmed, 10)
	b = append(b, `,"epoch":"`...)
	b = append(b, g.Epoch...) // [0-9a-z]: nothing to escape
	b = append(b, '"')
	if g.Reset {
		b = append(b, `,"reset":true`...)
	}
	return b
}

// appendPositionFields appends "channel":..,"lastId":..,"epoch":.. (where
// a client stands in a channel, in the subscribed line or frame).
func appendPositionFields(b []byte, name string, p engine.Position) []byte {
	b = append(b, `"channel":"`...)
	b = tmpl.JSONString(b, name)
	b = append(b, `","lastId":`...)
	b = strconv.AppendUint(b, p.ID, 10)
	b = append(b, `,"epoch":"`...)
	b = append(b, p.Epoch...)
	return append(b, '"')
}

// AppendEpochObject appends {"type":"epoch","channel":..,"epoch":..}: the
// stream a channel's messages come from from now on (EpochFrame).
func AppendEpochObject(b []byte, name, epoch string) []byte {
	b = append(b, `{"type":"epoch","channel":"`...)
	b = tmpl.JSONString(b, name)
	b = append(b, `","epoch":"`...)
	b = append(b, epoch...)
	return append(b, `"}`...)
}

// AppendCloseObject appends the JSON object that tells a client why the
// server ended its stream: {"type":typ,"reason":..,"code":..,"reconnect":..}
// ("type" left out when typ is ""). The JS client decides by code.
func AppendCloseObject(b []byte, typ string, r reason.Reason) []byte {
	b = append(b, '{')
	if typ != "" {
		b = append(b, `"type":"`...)
		b = append(b, typ...)
		b = append(b, `",`...)
	}
	b = append(b, `"reason":"`...)
	b = tmpl.JSONString(b, r.String())
	b = append(b, `","code":`...)
	b = strconv.AppendUint(b, uint64(r.Code()), 10)
	b = append(b, `,"reconnect":`...)
	b = strconv.AppendBool(b, r.Reconnect())
	return append(b, '}')
}

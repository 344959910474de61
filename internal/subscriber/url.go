package subscriber

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/meteorpush/meteor/internal/channel"
	"github.com/meteorpush/meteor/internal/engine"
)

// Errors of ParsePush. ErrNoChannel is answered as Meteor 1.06 did (404 with
// the header template); the others get a 400 with the reason.
var (
	// ErrNoChannel means the subscription URL names no channel.
	ErrNoChannel = errors.New("no channel in subscription URL")
	// ErrBadHostID means the host id is not [0-9a-z]+.
	ErrBadHostID = errors.New("host id must be letters and digits")
	// ErrBadMode means the mode is not [0-9a-z]+.
	ErrBadMode = errors.New("mode must be letters and digits")
	// ErrBadChannel means a channel element breaks the grammar
	// name[.r<N>|.b<N>|.h] with name [A-Za-z0-9_%-]+.
	ErrBadChannel = errors.New("bad channel")
	// ErrTooManyChannels means the URL names more channels than allowed.
	ErrTooManyChannels = errors.New("too many channels")
)

// Push is a parsed subscription URL.
type Push struct {
	HostID   string
	Mode     string
	Channels []ChannelSpec
}

// ChannelSpec is one channel of a subscription and the history it asks for.
type ChannelSpec struct {
	Name  string
	Query engine.Query
}

// ParsePush parses the part of a subscription path after the push address:
// "<hostid>/<mode>/<chan>[/<chan>...]" (a query string must already be
// removed). Empty channel elements are skipped; a channel named twice keeps
// its last element. maxChannels <= 0 means no limit.
func ParsePush(rest string, maxChannels int) (Push, error) {
	var p Push
	hostID, rest, ok := strings.Cut(rest, "/")
	if !validWord(hostID) {
		return p, ErrBadHostID
	}
	mode, rest, _ := strings.Cut(rest, "/")
	if !ok || !validWord(mode) {
		if !ok || mode == "" {
			return p, ErrNoChannel
		}
		return p, ErrBadMode
	}
	p.HostID, p.Mode = hostID, strings.ToLower(mode)
	for elem := range strings.SplitSeq(rest, "/") {
		if elem == "" {
			continue
		}
		spec, err := parseChannel(elem)
		if err != nil {
			return Push{}, err
		}
		replaced := false
		for i := range p.Channels {
			if p.Channels[i].Name == spec.Name {
				p.Channels[i] = spec
				replaced = true
			}
		}
		if !replaced {
			if maxChannels > 0 && len(p.Channels) == maxChannels {
				return Push{}, fmt.Errorf("%w: at most %d per request", ErrTooManyChannels, maxChannels)
			}
			p.Channels = append(p.Channels, spec)
		}
	}
	if len(p.Channels) == 0 {
		return Push{}, ErrNoChannel
	}
	return p, nil
}

// parseChannel parses name[.r<N>|.b<N>|.h].
func parseChannel(elem string) (ChannelSpec, error) {
	name, suffix, hasSuffix := strings.Cut(elem, ".")
	if !channel.Valid(name) {
		return ChannelSpec{}, fmt.Errorf("%w %q: %s", ErrBadChannel, elem, channel.Rule)
	}
	spec := ChannelSpec{Name: name}
	if !hasSuffix {
		return spec, nil
	}
	if suffix == "" {
		return ChannelSpec{}, fmt.Errorf("%w %q: empty suffix", ErrBadChannel, elem)
	}
	kind, digits := suffix[0]|0x20, suffix[1:]
	var n uint64
	if digits != "" {
		var err error
		if n, err = strconv.ParseUint(digits, 10, 64); err != nil {
			return ChannelSpec{}, fmt.Errorf("%w %q: bad number", ErrBadChannel, elem)
		}
	}
	switch kind {
	case 'r':
		// .r<N>: every stored message with id >= N, that is, after N-1;
		// .r and .r0: all.
		if n == 0 {
			spec.Query = engine.Query{Kind: engine.QueryAll}
		} else {
			spec.Query = engine.Query{Kind: engine.QueryAfter, After: engine.Position{ID: n - 1}}
		}
	case 'b':
		// .b<N>: the last N messages; .b alone: all, as in 1.06.
		if digits == "" {
			spec.Query = engine.Query{Kind: engine.QueryAll}
		} else if n > 0 {
			spec.Query = engine.Query{Kind: engine.QueryLast, Last: int(min(n, 1<<31-1))}
		}
	case 'h':
		// 1.06 ignores digits after .h.
		spec.Query = engine.Query{Kind: engine.QueryAll}
	default:
		return ChannelSpec{}, fmt.Errorf("%w %q: suffix must be .r<N>, .b<N> or .h", ErrBadChannel, elem)
	}
	return spec, nil
}

// validWord reports whether s is [0-9A-Za-z]+.
func validWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !(c >= 'a' && c <= 'z' || s[i] >= '0' && s[i] <= '9') {
			return false
		}
	}
	return true
}

// ValidHostID reports whether s is a host id: [0-9A-Za-z]+.
func ValidHostID(s string) bool { return validWord(s) }

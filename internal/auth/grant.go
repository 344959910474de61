package auth

import (
	"slices"
	"time"

	"github.com/meteorpush/meteor/internal/channel"
)

// Grant is what a verified token or signed URL allows.
type Grant struct {
	// Subject is the token's sub ("" for signed URLs).
	Subject string
	// Channels are the channel patterns (claim "channels") the token may
	// subscribe to: names, or prefixes ended by '*' ("chat_*"), or "*".
	Channels []string
	// Publish are the channel patterns (claim "publish") the token may
	// publish to through the HTTP API.
	Publish []string
	// Expiry is the token's exp; zero for none (Verify requires exp, and
	// signed URLs always have one).
	Expiry time.Time
	// Path is set, and Channels nil, for a grant from a signed URL
	// (VerifyURL): the signature covers the whole URL path, so every
	// channel named in that path is granted. Allows then reports true for
	// any valid channel name: callers must only ask about the channels
	// parsed from the path given to VerifyURL. A Path grant never allows
	// publishing.
	Path bool
}

// Allows reports whether the grant lets its bearer subscribe to the
// channel name.
func (g Grant) Allows(name string) bool {
	if !channel.Valid(name) {
		return false
	}
	return g.Path || matchAny(g.Channels, name)
}

// AllowsPublish reports whether the grant lets its bearer publish to the
// channel name.
func (g Grant) AllowsPublish(name string) bool {
	return channel.Valid(name) && matchAny(g.Publish, name)
}

// Authorize is Allows as an error: nil, or an *Error with Check "channel"
// (Status 403).
func (g Grant) Authorize(name string) error {
	if g.Allows(name) {
		return nil
	}
	return fail(CheckChannel, ErrNotGranted)
}

// AuthorizePublish is AllowsPublish as an error, like Authorize.
func (g Grant) AuthorizePublish(name string) error {
	if g.AllowsPublish(name) {
		return nil
	}
	return fail(CheckChannel, ErrNotGranted)
}

func matchAny(patterns []string, name string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool {
		return channel.ValidPattern(p) && channel.Match(p, name)
	})
}

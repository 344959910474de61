// Package channel holds the one rule for channel names, used by every edge
// that takes one: controller commands, subscriber URLs, resume cursors,
// WebSocket operations and the HTTP API.
package channel

import "errors"

// Rule describes valid channel names, for error messages and docs.
const Rule = "channel names are letters, digits, _, % and -"

// ErrInvalid reports a channel name that breaks the rule.
var ErrInvalid = errors.New("invalid channel name: " + Rule)

// Valid reports whether name is a channel name: one or more of A-Z, a-z,
// 0-9, '_', '%' and '-' (the names Meteor 1.06 let subscribers ask for).
func Valid(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !validByte(name[i]) {
			return false
		}
	}
	return true
}

// ValidBytes is Valid for a name still in a read buffer.
func ValidBytes(name []byte) bool {
	if len(name) == 0 {
		return false
	}
	for _, c := range name {
		if !validByte(c) {
			return false
		}
	}
	return true
}

func validByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '_' || c == '%' || c == '-'
}

// ValidPattern reports whether p is a channel pattern: a channel name, a
// name ended by '*' (a prefix: "chat_*"), or "*" alone (every channel).
// Tokens' channels claims and API keys grant channels by pattern.
func ValidPattern(p string) bool {
	if p == "*" {
		return true
	}
	if n := len(p); n > 1 && p[n-1] == '*' {
		return Valid(p[:n-1])
	}
	return Valid(p)
}

// Match reports whether the channel name matches pattern p (ValidPattern):
// the same name, or a name that starts with the prefix before a final '*'.
func Match(p, name string) bool {
	if n := len(p); n > 0 && p[n-1] == '*' {
		return len(name) >= n-1 && name[:n-1] == p[:n-1]
	}
	return p == name
}

package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/meteorpush/meteor/internal/channel"
)

// Scope is a set of things an API key may do.
type Scope uint8

// The scopes of an API key.
const (
	// ScopePublish: POST /api/channels/{channel}/messages, POST /api/publish.
	ScopePublish Scope = 1 << iota
	// ScopeRead: GET /api/channels, /api/channels/{channel} (history) and
	// its subscribers.
	ScopeRead
	// ScopeAdmin: clear and close channels, /api/stats, /metrics,
	// /debug/pprof.
	ScopeAdmin
)

var scopeNames = map[string]Scope{"publish": ScopePublish, "read": ScopeRead, "admin": ScopeAdmin}

func (s Scope) String() string {
	var names []string
	for _, n := range []string{"publish", "read", "admin"} {
		if s&scopeNames[n] != 0 {
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}

// Key is one API key of an APIKeysFile: a name for logs and errors, the
// SHA-256 of its secret (the secret itself is stored nowhere), what it may
// do, and the channels it may do it to (channel patterns: "chat_*", "*").
type Key struct {
	Name     string
	Scopes   Scope
	Channels []string
	hash     [sha256.Size]byte
}

// Allows reports whether k may act on the named channel.
func (k *Key) Allows(name string) bool {
	for _, p := range k.Channels {
		if channel.Match(p, name) {
			return true
		}
	}
	return false
}

// Keys is a parsed APIKeysFile, looked up by the hash of a secret.
type Keys struct {
	byHash map[[sha256.Size]byte]*Key
}

// Len returns the number of keys.
func (ks *Keys) Len() int {
	if ks == nil {
		return 0
	}
	return len(ks.byHash)
}

// lookup returns the key whose secret hashes to h, or nil.
func (ks *Keys) lookup(h [sha256.Size]byte) *Key {
	if ks == nil {
		return nil
	}
	return ks.byHash[h]
}

// ParseKeys reads an APIKeysFile: one key a line,
//
//	<name> sha256:<hex of the SHA-256 of the secret> <scopes> <channel pattern>...
//
// where scopes is a comma-separated list of publish, read and admin, and
// the channel patterns are names, prefixes ending in '*', or "*". Blank
// lines and lines starting with '#' are ignored. Names and hashes must be
// unique. Every error names its line.
func ParseKeys(data []byte) (*Keys, error) {
	ks := &Keys{byHash: make(map[[sha256.Size]byte]*Key)}
	names := make(map[string]bool)
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		k, err := parseKey(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", i+1, err)
		}
		if names[k.Name] {
			return nil, fmt.Errorf("line %d: key %q named twice", i+1, k.Name)
		}
		if ks.byHash[k.hash] != nil {
			return nil, fmt.Errorf("line %d: key %q has the secret of key %q", i+1, k.Name, ks.byHash[k.hash].Name)
		}
		names[k.Name] = true
		ks.byHash[k.hash] = k
	}
	return ks, nil
}

func parseKey(line string) (*Key, error) {
	f := strings.Fields(line)
	if len(f) < 4 {
		return nil, fmt.Errorf("want <name> sha256:<hex> <scopes> <channel pattern>..., got %d fields", len(f))
	}
	k := &Key{Name: f[0]}
	if !channel.Valid(k.Name) {
		return nil, fmt.Errorf("key name %q: %s", k.Name, channel.Rule)
	}
	h, ok := strings.CutPrefix(f[1], "sha256:")
	b, err := hex.DecodeString(h)
	if !ok || err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("key %q: the secret's hash must be sha256: and 64 hexadecimal digits (printf %%s \"$secret\" | sha256sum)", k.Name)
	}
	copy(k.hash[:], b)
	for _, n := range strings.Split(f[2], ",") {
		s, ok := scopeNames[strings.ToLower(n)]
		if !ok {
			return nil, fmt.Errorf("key %q: unknown scope %q (publish, read, admin)", k.Name, n)
		}
		k.Scopes |= s
	}
	for _, p := range f[3:] {
		if !channel.ValidPattern(p) {
			return nil, fmt.Errorf("key %q: channel pattern %q: a channel name, a prefix ending in *, or *", k.Name, p)
		}
		k.Channels = append(k.Channels, p)
	}
	return k, nil
}

// scoped wraps a handler that needs scope: a request made with a key
// without it, or naming a {channel} the key does not cover, gets 403 with
// why; so does a JWT anywhere but on a channel its publish claim grants.
func (s *Server) scoped(scope Scope, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c := requestCredential(r); c != nil && c.grant != nil && !s.jwtScoped(w, r, c, scope) {
			return
		}
		if k := requestKey(r); k != nil {
			if k.Scopes&scope == 0 {
				s.keyRefused(w, r, k, fmt.Sprintf("key %s may not %s (its scopes: %s)", k.Name, scope, k.Scopes))
				return
			}
			if c := r.PathValue("channel"); c != "" && !k.Allows(c) {
				s.keyRefused(w, r, k, fmt.Sprintf("key %s is not granted channel %s", k.Name, c))
				return
			}
		}
		h(w, r)
	}
}

// allowChannels checks that the request's key, or JWT, covers every
// channel of a batch, answering 403 for the first one that it does not
// cover.
func (s *Server) allowChannels(w http.ResponseWriter, r *http.Request, names func(yield func(int, string) bool)) bool {
	if c := requestCredential(r); c != nil && c.grant != nil {
		for i, ch := range names {
			if c.grant.AuthorizePublish(ch) != nil {
				s.jwtRefused(w, r, c, fmt.Sprintf("messages[%d]: the JWT does not grant publishing to channel %s", i, ch))
				return false
			}
		}
		return true
	}
	k := requestKey(r)
	if k == nil {
		return true
	}
	for i, c := range names {
		if !k.Allows(c) {
			s.keyRefused(w, r, k, fmt.Sprintf("messages[%d]: key %s is not granted channel %s", i, k.Name, c))
			return false
		}
	}
	return true
}

// keyRefused answers 403 and logs the refusal, a line a second.
func (s *Server) keyRefused(w http.ResponseWriter, r *http.Request, k *Key, why string) {
	s.authLog.Log(s.log, slog.LevelInfo, "api: key refused", "key", k.Name, "method", r.Method, "path", r.URL.Path, "reason", why)
	writeError(w, http.StatusForbidden, why)
}

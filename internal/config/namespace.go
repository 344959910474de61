package config

import (
	"sort"
	"strings"

	"github.com/meteorpush/meteor/internal/channel"
)

// Namespace holds the settings that may differ per channel: the global
// values, or those of the [namespace <pattern>] section of the
// configuration file that matches the channel best. A key that the
// section does not set has the global value.
type Namespace struct {
	// Pattern is the section's channel pattern (channel.ValidPattern): a
	// channel name, a prefix ended by '*', or "*". It is "" for the global
	// values, which channels that no section matches get.
	Pattern               string
	SubscriberAuth        bool // every subscription of the channel needs a token
	MaxMessagesPerChannel int  // messages kept
	MaxMessageAge         int  // seconds a message is kept
	Presence              bool // the channel's subscribers are listed
	MaxMessageBytes       int  // largest message text
	PublishRate           int  // messages a second; 0 = no limit
	PublishBurst          int  // the bucket of PublishRate; 0 = twice the rate
	ConflateInterval      int  // milliseconds; 0 = no conflation
}

// namespaceKeys are the settings a [namespace] section may set, each with
// its field in a Config (the global value) and in a Namespace: the one
// list of them. Their values are parsed by the params table's setters.
var namespaceKeys = []nsKey{
	key("SubscriberAuth", func(c *Config) *bool { return &c.SubscriberAuth }, func(n *Namespace) *bool { return &n.SubscriberAuth }),
	key("MaxMessagesPerChannel", func(c *Config) *int { return &c.MaxMessagesPerChannel }, func(n *Namespace) *int { return &n.MaxMessagesPerChannel }),
	key("MaxMessageAge", func(c *Config) *int { return &c.MaxMessageAge }, func(n *Namespace) *int { return &n.MaxMessageAge }),
	key("Presence", func(c *Config) *bool { return &c.Presence }, func(n *Namespace) *bool { return &n.Presence }),
	key("MaxMessageBytes", func(c *Config) *int { return &c.MaxMessageBytes }, func(n *Namespace) *int { return &n.MaxMessageBytes }),
	key("PublishRate", func(c *Config) *int { return &c.PublishRate }, func(n *Namespace) *int { return &n.PublishRate }),
	key("PublishBurst", func(c *Config) *int { return &c.PublishBurst }, func(n *Namespace) *int { return &n.PublishBurst }),
	key("ConflateInterval", func(c *Config) *int { return &c.ConflateInterval }, func(n *Namespace) *int { return &n.ConflateInterval }),
}

// nsKey is one setting a namespace may set.
type nsKey struct {
	name string
	// copy stores c's global value in n.
	copy func(n *Namespace, c *Config)
	// same reports whether n holds c's global value.
	same func(n *Namespace, c *Config) bool
}

// key makes the nsKey of a field of type T.
func key[T comparable](name string, global func(*Config) *T, field func(*Namespace) *T) nsKey {
	return nsKey{
		name: name,
		copy: func(n *Namespace, c *Config) { *field(n) = *global(c) },
		same: func(n *Namespace, c *Config) bool { return *field(n) == *global(c) },
	}
}

// perNamespace reports whether p may be set in a [namespace] section.
func perNamespace(p *param) bool {
	for _, k := range namespaceKeys {
		if k.name == p.name {
			return true
		}
	}
	return false
}

// namespaceKeyNames lists namespaceKeys' names, for errors.
func namespaceKeyNames() string {
	names := make([]string, len(namespaceKeys))
	for i, k := range namespaceKeys {
		names[i] = k.name
	}
	return strings.Join(names, ", ")
}

// namespaceOf returns c's values of the namespace keys, named pattern.
func namespaceOf(c *Config, pattern string) Namespace {
	n := Namespace{Pattern: pattern}
	for _, k := range namespaceKeys {
		k.copy(&n, c)
	}
	return n
}

// section is a [namespace <pattern>] line of the file.
type section struct {
	pattern string
	where   string // file:line
}

// nsEntry is one resolved namespace, and the lines that set it.
type nsEntry struct {
	ns       Namespace
	where    string    // the section's line
	settings []setting // the section's lines, in order
}

// namespaces are a configuration's namespaces, ready to match.
type namespaces struct {
	// base is the global values the entries inherited from: a Config
	// whose fields were changed in code since differs from it.
	base     Namespace
	exact    map[string]*nsEntry
	prefixes []*nsEntry // longest prefix first; "*" last
	all      []*nsEntry // in the order of the file
}

// resolveNamespaces builds c's namespaces from the file's sections and
// settings (those with an ns): each starts from c's global values, which
// its section's lines then change.
func resolveNamespaces(c *Config, sections []section, file []setting) (*namespaces, error) {
	t := &namespaces{base: namespaceOf(c, ""), exact: make(map[string]*nsEntry)}
	for _, sec := range sections {
		e := &nsEntry{ns: Namespace{Pattern: sec.pattern}, where: sec.where}
		for _, s := range file {
			if s.ns == sec.pattern {
				e.settings = append(e.settings, s)
			}
		}
		var err error
		if e.ns, err = e.resolve(c); err != nil {
			return nil, err
		}
		t.all = append(t.all, e)
		if strings.HasSuffix(sec.pattern, "*") {
			t.prefixes = append(t.prefixes, e)
		} else {
			t.exact[sec.pattern] = e
		}
	}
	sort.SliceStable(t.prefixes, func(i, j int) bool {
		return len(t.prefixes[i].ns.Pattern) > len(t.prefixes[j].ns.Pattern)
	})
	return t, nil
}

// resolve returns the namespace's values over c's global ones.
func (e *nsEntry) resolve(c *Config) (Namespace, error) {
	scratch := *c
	for _, s := range e.settings {
		if err := s.apply(&scratch, &scratch.Default); err != nil {
			return Namespace{}, err
		}
	}
	return namespaceOf(&scratch, e.ns.Pattern), nil
}

// current reports whether c's global fields are still those t was
// resolved over.
func (t *namespaces) current(c *Config) bool {
	if t == nil {
		return false
	}
	for _, k := range namespaceKeys {
		if !k.same(&t.base, c) {
			return false
		}
	}
	return true
}

// match returns the entry that matches channel name best: the section
// of that exact name, else the one of the longest prefix; nil when none
// does.
func (t *namespaces) match(name string) *nsEntry {
	if t == nil {
		return nil
	}
	if e := t.exact[name]; e != nil {
		return e
	}
	for _, e := range t.prefixes {
		if channel.Match(e.ns.Pattern, name) {
			return e
		}
	}
	return nil
}

// Namespace returns the settings of channel ch: those of the
// [namespace <pattern>] section that matches it best (the section of its
// exact name, else the one of the longest prefix, "*" last), or the
// global values (Pattern "") when none does. It never returns nil and,
// on a configuration as Load made it, does not allocate: it is called
// on every publish. A Config whose global fields were changed in code
// after Load gets values computed from them (allocated) instead.
func (c *Config) Namespace(ch string) *Namespace {
	e := c.namespaces.match(ch)
	if c.namespaces.current(c) {
		if e == nil {
			return &c.namespaces.base
		}
		return &e.ns
	}
	// Changed in code since Load: compute again, over the fields as they
	// are now.
	if e == nil {
		n := namespaceOf(c, "")
		return &n
	}
	n, err := e.resolve(c)
	if err != nil { // the lines parsed at Load; they parse again
		n = e.ns
	}
	return &n
}

// Namespaces returns the namespaces of the configuration file, in the
// order of the file.
func (c *Config) Namespaces() []Namespace {
	if c.namespaces == nil {
		return nil
	}
	out := make([]Namespace, len(c.namespaces.all))
	for i, e := range c.namespaces.all {
		out[i] = e.ns
	}
	return out
}

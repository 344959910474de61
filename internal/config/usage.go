package config

import (
	"fmt"
	"io"
	"strings"
)

// Usage writes the command-line help: how to give parameters, then every
// parameter with its default, whether it may be set per mode, and what it
// does.
func Usage(w io.Writer) {
	var b strings.Builder
	fmt.Fprintf(&b, `meteord %s: a Comet server compatible with Meteor 1.06

Usage:

	meteord [-Name [value] [-Name [value]...]]

Names are case-insensitive and may be abbreviated to any unique prefix.
A name without a value means 1; a value that begins with "-" is written
with "--" ("-PingMessage --x" gives "-x"). -Name.mode value sets the value
for one subscriber mode, for the parameters marked "per mode". In values,
\r \n \t \0 \s stand for CR, LF, TAB, NUL and space, \\ for a backslash.

Parameters:
`, Version)
	for _, p := range params {
		fmt.Fprintf(&b, "\n  -%s", p.name)
		if p.perMode {
			b.WriteString("  (per mode)")
		}
		b.WriteByte('\n')
		wrap(&b, p.desc, "\t", 72)
		if p.set != nil {
			def := p.def
			if def == "" {
				def = "(empty)"
			}
			fmt.Fprintf(&b, "\tDefault: %s\n", def)
		}
	}
	fmt.Fprintf(&b, `
  -version
	Print the version and exit. -v is short for -version.

Every parameter except ConfigFileLocation and Help may also be set in the
configuration file (default %s), one "Name value" per line,
with [mode] lines before per-mode values. The command line takes precedence
over the file, which takes precedence over the defaults. See
docs/configuration.md.
`, DefaultConfigFile)
	io.WriteString(w, b.String())
}

// wrap writes text as lines of at most width bytes (a longer word gets a
// line of its own), each starting with indent (counted as 8).
func wrap(b *strings.Builder, text, indent string, width int) {
	n := 0
	for _, word := range strings.Fields(text) {
		if n > 0 && n+1+len(word) > width-8 {
			b.WriteByte('\n')
			n = 0
		}
		if n == 0 {
			b.WriteString(indent)
		} else {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += len(word)
	}
	if n > 0 {
		b.WriteByte('\n')
	}
}

package config

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/meteorpush/meteor/internal/channel"
)

// setting is one value found on the command line or in a file, not yet
// checked: the value is kept as written (escapes still in it) until it is
// applied.
type setting struct {
	p       *param
	mode    string // lower case; "" for the global value
	ns      string // the [namespace <pattern>] it is in; "" for none
	value   string
	where   string // "command line" or "file:line"
	written string // the name as written, for errors
}

// apply stores the setting in c (or in m, for a per-mode parameter).
func (s setting) apply(c *Config, m *Mode) error {
	if err := s.p.set(c, m, unescape(s.value)); err != nil {
		detail := err.Error()
		if strings.HasPrefix(s.value, "=") {
			detail += "; settings are `Name value`, not `Name = value`"
		}
		return &Error{Where: s.where, Name: s.written, Value: s.value, Err: ErrInvalidValue, Detail: detail}
	}
	return nil
}

// space is what separates a name from its value in a file: Perl's \s,
// without the newline that ends the line.
const space = " \t\r\f\v"

// wantsVersion reports whether any argument asks for the version: -v,
// -version, or anything in between, in any case. As in 1.06 it wins over
// everything else on the command line.
func wantsVersion(args []string) bool {
	const v = "-version"
	for _, a := range args {
		if len(a) >= 2 && len(a) <= len(v) && equalFoldASCII(a, v[:len(a)]) {
			return true
		}
	}
	return false
}

// parseArgs reads "-Name value" pairs. A name is followed by a value unless
// the next argument starts with a single dash (or there is none): then the
// value is 1. A value that starts with "--" loses its first dash, so that
// "--5" passes -5. help reports whether -help came before any error.
func parseArgs(args []string) (cmd []setting, help bool, err error) {
	const where = "command line"
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if len(arg) < 2 || arg[0] != '-' {
			return nil, false, &Error{Where: where, Name: arg, Err: ErrSyntax, Detail: "want -Name [value]"}
		}
		if arg[1] == '-' {
			if equalFoldASCII(arg, "--help") {
				return nil, true, nil
			}
			detail := "names take a single dash; a value that begins with a dash is written with two"
			if n, _, _ := strings.Cut(arg[2:], "."); n != "" {
				if p, _ := lookupArg(n); p != nil {
					detail = "names take a single dash: -" + arg[2:] + "; a value that begins with a dash is written with two"
				}
			}
			return nil, false, &Error{Where: where, Name: arg, Err: ErrSyntax, Detail: detail}
		}
		name, mode, hasMode := strings.Cut(arg[1:], ".")
		if name == "" {
			return nil, false, &Error{Where: where, Name: arg, Err: ErrUnknownParameter}
		}
		p, candidates := lookupArg(name)
		if p == nil {
			if len(candidates) > 0 {
				return nil, false, &Error{Where: where, Name: arg, Err: ErrAmbiguousParameter,
					Detail: "could be " + strings.Join(candidates, ", ")}
			}
			return nil, false, &Error{Where: where, Name: arg, Err: ErrUnknownParameter, Detail: unknownDetail(name, "-", false)}
		}
		if p.set == nil { // Help
			return nil, true, nil
		}
		if hasMode {
			var ok bool
			if mode, ok = modeName(mode); !ok {
				return nil, false, &Error{Where: where, Name: arg, Err: ErrInvalidModeName, Detail: "want [0-9a-z]+"}
			}
			if !p.perMode {
				return nil, false, &Error{Where: where, Name: arg, Err: ErrNotPerMode}
			}
		}
		value := "1"
		if i+1 < len(args) && !isName(args[i+1]) {
			i++
			value = args[i]
			if strings.HasPrefix(value, "--") {
				value = value[1:]
			}
		}
		cmd = append(cmd, setting{p: p, mode: mode, value: value, where: where, written: arg})
	}
	return cmd, false, nil
}

// isName reports whether a command-line argument is a name rather than a
// value: it starts with one dash, not two.
func isName(arg string) bool {
	return strings.HasPrefix(arg, "-") && !strings.HasPrefix(arg, "--")
}

// parseFile reads a configuration file: "Name value" lines, where the value
// is the rest of the line after the white space that follows the name;
// blank lines; lines whose first non-blank character is #; "[mode]"
// lines, after which names set that mode's values; and
// "[namespace <pattern>]" lines, after which names set the values of the
// channels the pattern matches (namespace.go). It returns the settings and
// the namespace sections, in the order of the file.
func parseFile(path string, data []byte) ([]setting, []section, error) {
	var out []setting
	var sections []section
	seen := make(map[string]string) // pattern → where its section is
	mode, ns := "", ""
	for n := 1; len(data) > 0; n++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		s := strings.TrimRight(string(line), "\r")
		where := fmt.Sprintf("%s:%d", path, n)
		s = strings.TrimLeft(s, space) // 1.06 refused indented lines
		if s == "" || s[0] == '#' {
			continue
		}
		if s[0] == '[' {
			inner, ok := strings.CutSuffix(strings.TrimRight(s, space), "]")
			if !ok {
				return nil, nil, &Error{Where: where, Name: s, Err: ErrSyntax, Detail: "want [mode] or [namespace <pattern>]"}
			}
			inner = strings.Trim(inner[1:], space)
			if pattern, ok := namespaceHeader(inner); ok {
				if !channel.ValidPattern(pattern) {
					return nil, nil, &Error{Where: where, Name: s, Err: ErrInvalidNamespace,
						Detail: "want [namespace <pattern>], the pattern a channel name, a prefix ended by * (chat_*), or * alone; " + channel.Rule}
				}
				if first, dup := seen[pattern]; dup {
					return nil, nil, &Error{Where: where, Name: s, Err: ErrDuplicateNamespace, Detail: "first at " + first}
				}
				seen[pattern] = where
				sections = append(sections, section{pattern: pattern, where: where})
				mode, ns = "", pattern
				continue
			}
			if mode, ok = modeName(inner); !ok {
				return nil, nil, &Error{Where: where, Name: s, Err: ErrInvalidModeName, Detail: "want [0-9a-z]+, or [namespace <pattern>]"}
			}
			ns = ""
			continue
		}
		name, value := s, ""
		if i := strings.IndexAny(s, space); i >= 0 {
			name, value = s[:i], strings.TrimLeft(s[i:], space)
		}
		p := lookupFile(name)
		switch {
		case p == nil:
			return nil, nil, &Error{Where: where, Name: name, Err: ErrUnknownParameter, Detail: unknownDetail(name, "", true)}
		case p.cmdOnly:
			return nil, nil, &Error{Where: where, Name: name, Err: ErrNotInFile}
		case ns != "" && !perNamespace(p):
			return nil, nil, &Error{Where: where, Name: name, Err: ErrNotPerNamespace,
				Detail: "inside [namespace " + ns + "]; a namespace sets " + namespaceKeyNames()}
		case mode != "" && !p.perMode:
			detail := "inside [" + mode + "]"
			if mode == "namespace" {
				detail += "; a namespace section is [namespace <pattern>]"
			}
			return nil, nil, &Error{Where: where, Name: name, Err: ErrNotPerMode, Detail: detail}
		}
		if strings.HasPrefix(value, "--") { // as in 1.06
			value = value[1:]
		}
		out = append(out, setting{p: p, mode: mode, ns: ns, value: value, where: where, written: name})
	}
	return out, sections, nil
}

// namespaceHeader reports whether inner, a section line without its
// brackets, is "namespace <pattern>" (the word in any case), and returns
// the pattern. "[namespace]" alone stays a mode's name, as before
// namespaces.
func namespaceHeader(inner string) (string, bool) {
	i := strings.IndexAny(inner, space)
	if i < 0 || !equalFoldASCII(inner[:i], "namespace") {
		return "", false
	}
	return strings.TrimLeft(inner[i:], space), true
}

// modeName checks a mode name, [0-9a-z]+ in any case, and returns it in
// lower case: subscription URLs match modes case-insensitively.
func modeName(s string) (string, bool) {
	s = toLowerASCII(s)
	if s == "" || strings.IndexFunc(s, func(r rune) bool { return !('a' <= r && r <= 'z' || '0' <= r && r <= '9') }) >= 0 {
		return "", false
	}
	return s, true
}

// unescape undoes the escapes of 1.06: \r, \n, \t, \0 and \s stand for CR,
// LF, TAB, NUL and space; a backslash before any other character stands for
// that character (so \\ is a backslash). A backslash at the end, or before a
// line feed, stays.
func unescape(s string) string {
	i := strings.IndexByte(s, '\\')
	if i < 0 {
		return s
	}
	b := make([]byte, 0, len(s))
	b = append(b, s[:i]...)
	for ; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) || s[i+1] == '\n' {
			b = append(b, c)
			continue
		}
		i++
		switch c = s[i]; c {
		case 'r':
			c = '\r'
		case 'n':
			c = '\n'
		case 't':
			c = '\t'
		case '0':
			c = 0
		case 's':
			c = ' '
		}
		b = append(b, c)
	}
	return string(b)
}

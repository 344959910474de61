package tmpl

import (
	"fmt"
	"unicode/utf8"
)

// Escaper appends s to dst, escaped for one output context.
type Escaper func(dst []byte, s string) []byte

// EscaperFor returns the escaper for a TextEncoding setting: "js", "json",
// "html" or "raw".
func EscaperFor(name string) (Escaper, error) {
	switch name {
	case "js", "":
		return JSString, nil
	case "json":
		return JSONString, nil
	case "html":
		return HTML, nil
	case "raw":
		return Raw, nil
	}
	return nil, fmt.Errorf("tmpl: unknown text encoding %q", name)
}

const hexDigits = "0123456789abcdef"

func appendU(dst []byte, r rune) []byte {
	return append(dst, '\\', 'u', hexDigits[r>>12&0xf], hexDigits[r>>8&0xf], hexDigits[r>>4&0xf], hexDigits[r&0xf])
}

// JSString escapes s as the inside of a JavaScript string literal in either
// quote style that is itself inside an HTML <script> element: quotes,
// backslashes and line terminators are escaped, and so are <, > and & so
// that no "</script>" or "<!--" can end or change the element. Invalid
// UTF-8 becomes U+FFFD.
func JSString(dst []byte, s string) []byte { return jsEscape(dst, s, true) }

// JSONString escapes s as the inside of a JSON string, with the same
// protection as JSString for JSON embedded in HTML.
func JSONString(dst []byte, s string) []byte { return jsEscape(dst, s, false) }

func jsEscape(dst []byte, s string, single bool) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			var esc string
			switch c {
			case '\\':
				esc = `\\`
			case '"':
				esc = `\"`
			case '\'':
				if !single {
					i++
					continue
				}
				esc = `\'`
			case '\n':
				esc = `\n`
			case '\r':
				esc = `\r`
			case '\t':
				esc = `\t`
			default:
				if c >= 0x20 && c != '<' && c != '>' && c != '&' && c != 0x7f {
					i++
					continue
				}
			}
			dst = append(dst, s[start:i]...)
			if esc != "" {
				dst = append(dst, esc...)
			} else {
				dst = appendU(dst, rune(c))
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = appendU(dst, utf8.RuneError)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = appendU(dst, r)
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...)
}

// HTML escapes s as HTML text or a quoted attribute value.
func HTML(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&#34;"
		case '\'':
			esc = "&#39;"
		default:
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = append(dst, esc...)
		start = i + 1
	}
	return append(dst, s[start:]...)
}

// Raw appends s unchanged. Only a configuration that asks for it uses Raw.
func Raw(dst []byte, s string) []byte { return append(dst, s...) }

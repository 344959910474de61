// Package tmpl compiles Meteor's templates: literal text with ~name~
// placeholders, where ~~ is a literal ~ and an unknown name renders empty.
// A template is compiled once and rendered into a caller's buffer.
package tmpl

import "strings"

// Template is a compiled template.
type Template struct {
	parts []part
}

type part struct {
	lit   string
	field string // placeholder name when lit is empty and isField is set
	isFld bool
}

// Compile parses s. Every string is a valid template: a ~ with no closing ~
// is literal text.
func Compile(s string) *Template {
	t := &Template{}
	var lit strings.Builder
	for len(s) > 0 {
		i := strings.IndexByte(s, '~')
		if i < 0 {
			lit.WriteString(s)
			break
		}
		lit.WriteString(s[:i])
		j := strings.IndexByte(s[i+1:], '~')
		if j < 0 {
			lit.WriteString(s[i:])
			break
		}
		name := s[i+1 : i+1+j]
		s = s[i+2+j:]
		if name == "" {
			lit.WriteByte('~')
			continue
		}
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{lit: lit.String()})
			lit.Reset()
		}
		t.parts = append(t.parts, part{field: name, isFld: true})
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, part{lit: lit.String()})
	}
	return t
}

// Render appends the template to dst, calling field for each placeholder
// to append its value; field appends nothing for a name it does not know.
func (t *Template) Render(dst []byte, field func(dst []byte, name string) []byte) []byte {
	for _, p := range t.parts {
		if p.isFld {
			dst = field(dst, p.field)
		} else {
			dst = append(dst, p.lit...)
		}
	}
	return dst
}

// Uses reports whether the template has a placeholder called name.
func (t *Template) Uses(name string) bool {
	for _, p := range t.parts {
		if p.isFld && p.field == name {
			return true
		}
	}
	return false
}

// Empty reports whether the template renders nothing at all.
func (t *Template) Empty() bool { return len(t.parts) == 0 }

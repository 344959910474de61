package main

import (
	"bytes"
	"strconv"
	"unicode/utf8"
)

// frameKind says what a <script>...</script> element of a legacy stream is.
type frameKind uint8

const (
	frameMessage     frameKind = iota // p(id,"channel","text");
	framePing                         // p(-1,"");
	frameChannelInfo                  // ch("name", lastid);
	frameEOF                          // eof();
	frameOther                        // any other script, or a malformed p(...)
)

// frame is one parsed element. Channel and Text are unescaped and valid
// only until the next call of the parser.
type frame struct {
	Kind    frameKind
	ID      int64
	Channel []byte
	Text    []byte
}

// frameParser splits the body of a legacy-mode stream (the xhrinteractive
// and iframe modes' default templates) into frames. Bytes outside
// <script>...</script> (padding, the header if fed) are skipped. It keeps
// only an unfinished element between calls.
type frameParser struct {
	f       frame
	tail    carry
	scratch []byte // unescaped channel and text
}

var (
	scriptOpen  = []byte("<script>")
	scriptClose = []byte("</script>")
)

// Feed parses data and calls fn for each complete frame, in order.
func (p *frameParser) Feed(data []byte, fn func(*frame)) {
	buf := p.tail.join(data)
	f := &p.f // not a local: fn would make it escape, one allocation per call
	for {
		i := bytes.Index(buf, scriptOpen)
		if i < 0 {
			// Keep what could be the start of "<script>".
			buf = buf[max(0, len(buf)-len(scriptOpen)+1):]
			break
		}
		body := buf[i+len(scriptOpen):]
		j := bytes.Index(body, scriptClose)
		if j < 0 {
			buf = buf[i:]
			break
		}
		p.parse(body[:j], f)
		fn(f)
		buf = body[j+len(scriptClose):]
	}
	p.tail.keep(buf)
}

// carry is a parser's unfinished tail of the stream, kept between reads.
type carry struct{ buf []byte }

// join returns what there is to parse: the tail kept from the last read,
// then data.
func (c *carry) join(data []byte) []byte {
	if len(c.buf) == 0 {
		return data
	}
	c.buf = append(c.buf, data...)
	return c.buf
}

// keep keeps rest, the unparsed end of what join returned, for the next
// read.
func (c *carry) keep(rest []byte) { c.buf = append(c.buf[:0], rest...) }

// parse reads one script body.
func (p *frameParser) parse(b []byte, f *frame) {
	*f = frame{Kind: frameOther}
	switch {
	case bytes.Equal(b, []byte("eof();")):
		f.Kind = frameEOF
		return
	case bytes.HasPrefix(b, []byte("ch(")):
		f.Kind = frameChannelInfo
		return
	case !bytes.HasPrefix(b, []byte("p(")) || !bytes.HasSuffix(b, []byte(");")):
		return
	}
	b = b[2 : len(b)-2]
	comma := bytes.IndexByte(b, ',')
	if comma < 0 {
		return
	}
	id, err := strconv.ParseInt(string(b[:comma]), 10, 64)
	if err != nil {
		return
	}
	p.scratch = p.scratch[:0]
	ch, rest, ok := p.jsString(b[comma+1:])
	if !ok {
		return
	}
	if id == -1 && len(rest) == 0 && len(ch) == 0 {
		f.Kind, f.ID = framePing, -1
		return
	}
	if len(rest) == 0 || rest[0] != ',' {
		return
	}
	text, rest, ok := p.jsString(rest[1:])
	if !ok || len(rest) != 0 {
		return
	}
	f.Kind, f.ID, f.Channel, f.Text = frameMessage, id, ch, text
}

// jsString reads a double-quoted JavaScript string literal at the start of
// b, unescaped into p.scratch, and returns it and what follows it.
func (p *frameParser) jsString(b []byte) (s, rest []byte, ok bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, nil, false
	}
	start := len(p.scratch)
	for i := 1; i < len(b); i++ {
		c := b[i]
		switch c {
		case '"':
			return p.scratch[start:], b[i+1:], true
		case '\\':
			if i+1 >= len(b) {
				return nil, nil, false
			}
			i++
			switch b[i] {
			case 'n':
				p.scratch = append(p.scratch, '\n')
			case 'r':
				p.scratch = append(p.scratch, '\r')
			case 't':
				p.scratch = append(p.scratch, '\t')
			case 'u':
				if i+4 >= len(b) {
					return nil, nil, false
				}
				r, err := strconv.ParseUint(string(b[i+1:i+5]), 16, 16)
				if err != nil {
					return nil, nil, false
				}
				p.scratch = utf8.AppendRune(p.scratch, rune(r))
				i += 4
			default:
				p.scratch = append(p.scratch, b[i])
			}
		default:
			p.scratch = append(p.scratch, c)
		}
	}
	return nil, nil, false
}

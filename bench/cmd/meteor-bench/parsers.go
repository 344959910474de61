package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"strconv"
)

// A streamParser splits a subscriber connection's body into frames. Feed
// calls fn for each complete frame in order and keeps only an unfinished
// tail between calls; the frame is valid only during the call. The legacy
// stream's frameParser is one; the others are below, one per wire format.
type streamParser interface {
	Feed(data []byte, fn func(*frame))
}

var (
	_ streamParser = (*frameParser)(nil)
	_ streamParser = (*sseParser)(nil)
	_ streamParser = (*lineParser)(nil)
	_ streamParser = (*wsParser)(nil)
)

// sseParser reads a text/event-stream (Meteor's /sse and Nchan's
// EventSource subscriber): an event is its data lines joined by "\n" and
// is dispatched at the blank line. Comments (": ping", Nchan's ": hi")
// count as pings; a "close" event (Meteor's end of stream) as EOF; other
// named events ("gap", Nchan's "ping") as other frames.
type sseParser struct {
	f     frame
	ids   bool   // Meteor's: an id: line is a cursor, <chan>:<id>[@<epoch>], whose id is the message's
	id    int64  // the id: line's, since the last dispatch
	tail  carry  // the unfinished line
	data  []byte // data lines of the event being read
	event []byte
	has   bool // a data line was read since the last dispatch
	ping  bool // a comment was read since the last dispatch
}

func (p *sseParser) Feed(data []byte, fn func(*frame)) {
	buf := p.tail.join(data)
	f := &p.f // not a local: fn would make it escape, one allocation per call
	for {
		line, rest, ok := nextLine(buf)
		if !ok {
			break
		}
		buf = rest
		switch {
		case len(line) == 0:
			p.dispatch(f, fn)
		case line[0] == ':':
			p.ping = true
		default:
			field, val, _ := bytes.Cut(line, []byte(":"))
			val = bytes.TrimPrefix(val, []byte(" "))
			switch string(field) {
			case "data":
				if p.has {
					p.data = append(p.data, '\n')
				}
				p.data = append(p.data, val...)
				p.has = true
			case "event":
				p.event = append(p.event[:0], val...)
			case "id":
				if p.ids {
					p.id = cursorID(val)
				}
			}
		}
	}
	p.tail.keep(buf)
}

func (p *sseParser) dispatch(f *frame, fn func(*frame)) {
	*f = frame{Kind: frameOther}
	switch {
	case len(p.event) > 0 && string(p.event) != "message":
		if string(p.event) == "close" {
			f.Kind = frameEOF
		}
		if string(p.event) == "ping" {
			f.Kind = framePing
		}
	case p.has:
		f.Kind, f.Text, f.ID = frameMessage, p.data, p.id
	case p.ping:
		f.Kind = framePing
	default: // a block of id or retry lines alone
		p.event, p.ping, p.id = p.event[:0], false, 0
		return
	}
	fn(f)
	p.data, p.event = p.data[:0], p.event[:0]
	p.has, p.ping, p.id = false, false, 0
}

// cursorID returns the id of a one-channel resume cursor,
// <chan>:<id>[@<epoch>], or 0.
func cursorID(c []byte) int64 {
	i := bytes.LastIndexByte(c, ':')
	if i < 0 || bytes.IndexByte(c, ',') >= 0 {
		return 0
	}
	num := c[i+1:]
	if j := bytes.IndexByte(num, '@'); j >= 0 {
		num = num[:j]
	}
	id, _ := parseDigits(num)
	return id
}

// nextLine cuts buf at its first LF: the line before it without a
// trailing CR, and what follows; ok is false when buf holds no whole line.
func nextLine(buf []byte) (line, rest []byte, ok bool) {
	nl := bytes.IndexByte(buf, '\n')
	if nl < 0 {
		return nil, buf, false
	}
	return bytes.TrimSuffix(buf[:nl], []byte("\r")), buf[nl+1:], true
}

// lineParser reads one frame per line: Meteor's NDJSON stream (json set:
// each line a JSON object) or Nchan's http-raw-stream (each non-empty line
// a message's text).
type lineParser struct {
	f    frame
	json bool
	tail carry
	js   jsonFrames
}

func (p *lineParser) Feed(data []byte, fn func(*frame)) {
	buf := p.tail.join(data)
	f := &p.f // not a local: fn would make it escape, one allocation per call
	for {
		line, rest, ok := nextLine(buf)
		if !ok {
			break
		}
		buf = rest
		switch {
		case p.json:
			p.js.parse(line, f)
			fn(f)
		case len(line) > 0:
			*f = frame{Kind: frameMessage, Text: line}
			fn(f)
		}
	}
	p.tail.keep(buf)
}

// jsonFrames reads the JSON objects of Meteor's WebSocket and NDJSON
// transports: {"type":"message","id":..,"channel":..,"text":..}, and the
// ping, subscribed, gap, close and error objects.
type jsonFrames struct{ scratch []byte }

var (
	jsonMessage = []byte(`{"type":"message",`)
	jsonID      = []byte(`"id":`)
	jsonText    = []byte(`"text":"`)
)

func (j *jsonFrames) parse(b []byte, f *frame) {
	*f = frame{Kind: frameOther}
	if !bytes.HasPrefix(b, jsonMessage) {
		switch {
		case bytes.HasPrefix(b, []byte(`{"type":"ping"`)), bytes.HasPrefix(b, []byte(`{"type":"pong"`)):
			f.Kind = framePing
		case bytes.HasPrefix(b, []byte(`{"type":"subscribed"`)), bytes.HasPrefix(b, []byte(`{"type":"epoch"`)):
			// The epoch frame (a channel's stream began after the
			// subscription) says where the channel stands, as subscribed does.
			f.Kind = frameChannelInfo
		case bytes.HasPrefix(b, []byte(`{"type":"close"`)):
			f.Kind = frameEOF
		}
		return
	}
	rest := b[len(jsonMessage):]
	if i := bytes.Index(rest, jsonID); i >= 0 {
		num := rest[i+len(jsonID):]
		end := 0
		for end < len(num) && num[end] >= '0' && num[end] <= '9' {
			end++
		}
		f.ID, _ = strconv.ParseInt(string(num[:end]), 10, 64)
	}
	i := bytes.Index(rest, jsonText)
	if i < 0 {
		return
	}
	s := rest[i+len(jsonText)-1:] // from the opening quote
	end, escaped := 1, false
	for ; end < len(s) && s[end] != '"'; end++ {
		if s[end] == '\\' {
			escaped = true
			end++
		}
	}
	if end >= len(s) {
		return
	}
	text := s[1:end]
	if escaped {
		var str string
		if json.Unmarshal(s[:end+1], &str) != nil {
			return
		}
		j.scratch = append(j.scratch[:0], str...)
		text = j.scratch
	}
	f.Kind, f.Text = frameMessage, text
}

// wsParser reads the server's side of a WebSocket: unmasked frames, text
// or binary messages (fragments joined), control frames. Each message is
// a JSON object (Meteor), a message's bare text (Nchan, Pushpin), or
// Centrifugo's replies, one JSON object a line (centrifugo.go).
type wsParser struct {
	f    frame
	body wsBody
	tail carry
	msg  []byte // the fragments of an unfinished message
	js   jsonFrames
	cf   centrifugoFrames
}

// wsBody says what a WebSocket message holds.
type wsBody uint8

const (
	wsBare       wsBody = iota // the message's text
	wsMeteorJSON               // one of Meteor's JSON objects
	wsCentrifugo               // Centrifugo's JSON replies, "\n" between them
)

func (p *wsParser) Feed(data []byte, fn func(*frame)) {
	buf := p.tail.join(data)
	f := &p.f // not a local: fn would make it escape, one allocation per call
	for len(buf) >= 2 {
		fin, op := buf[0]&0x80 != 0, buf[0]&0x0f
		masked := buf[1]&0x80 != 0
		n, hdr := uint64(buf[1]&0x7f), 2
		switch n {
		case 126:
			if len(buf) < 4 {
				goto short
			}
			n, hdr = uint64(binary.BigEndian.Uint16(buf[2:])), 4
		case 127:
			if len(buf) < 10 {
				goto short
			}
			n, hdr = binary.BigEndian.Uint64(buf[2:]), 10
		}
		if masked {
			hdr += 4
		}
		if uint64(len(buf)-hdr) < n {
			goto short
		}
		payload := buf[hdr : hdr+int(n)]
		if masked {
			key := buf[hdr-4 : hdr]
			for i := range payload {
				payload[i] ^= key[i%4]
			}
		}
		buf = buf[hdr+int(n):]
		switch op {
		case 0x8: // close
			*f = frame{Kind: frameEOF}
			fn(f)
			continue
		case 0x9, 0xa: // ping, pong
			*f = frame{Kind: framePing}
			fn(f)
			continue
		}
		if !fin || len(p.msg) > 0 {
			p.msg = append(p.msg, payload...)
			if !fin {
				continue
			}
			payload = p.msg
		}
		switch p.body {
		case wsMeteorJSON:
			p.js.parse(payload, f)
			fn(f)
		case wsCentrifugo:
			p.cf.parse(payload, f, fn)
		default:
			*f = frame{Kind: frameMessage, Text: payload}
			fn(f)
		}
		p.msg = p.msg[:0]
	}
short:
	p.tail.keep(buf)
}

package main

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// got is what a parser reported, as comparable strings.
func collect(p streamParser, chunks ...[]byte) []string {
	var out []string
	for _, c := range chunks {
		p.Feed(c, func(f *frame) {
			switch f.Kind {
			case frameMessage:
				out = append(out, fmt.Sprintf("msg %d %q", f.ID, f.Text))
			case framePing:
				out = append(out, "ping")
			case frameEOF:
				out = append(out, "eof")
			case frameChannelInfo:
				out = append(out, "info")
			default:
				out = append(out, "other")
			}
		})
	}
	return out
}

// checkSplits feeds stream whole, then split at every position, then byte
// by byte, into new parsers and wants the same frames each time.
func checkSplits(t *testing.T, name string, newParser func() streamParser, stream []byte, want []string) {
	t.Helper()
	if got := collect(newParser(), stream); !slices.Equal(got, want) {
		t.Fatalf("%s whole: got %q, want %q", name, got, want)
	}
	for i := 1; i < len(stream); i++ {
		a, b := slices.Clone(stream[:i]), slices.Clone(stream[i:])
		if got := collect(newParser(), a, b); !slices.Equal(got, want) {
			t.Fatalf("%s split at %d: got %q, want %q", name, i, got, want)
		}
	}
	var bytes [][]byte
	for i := range stream {
		bytes = append(bytes, []byte{stream[i]})
	}
	if got := collect(newParser(), bytes...); !slices.Equal(got, want) {
		t.Fatalf("%s byte by byte: got %q, want %q", name, got, want)
	}
}

func TestSSEParser(t *testing.T) {
	// Meteor's header block, Nchan's ": hi" comment, a message in two
	// data lines, one with CRLF, a gap event, a named ping, a close event.
	stream := "retry: 3000\nid: abc\n\n" +
		": hi\n\n" +
		"id: 1795642283:0\ndata: s=1 t=2 xx\n\n" +
		"id: x\r\ndata: line one\r\ndata: line two\r\n\r\n" +
		"event: gap\ndata: {\"channel\":\"c\"}\n\n" +
		"event: ping\ndata:\n\n" +
		"event: close\ndata: {\"reason\":\"shutdown\"}\n\n"
	want := []string{"ping", `msg 0 "s=1 t=2 xx"`, `msg 0 "line one\nline two"`, "other", "ping", "eof"}
	checkSplits(t, "sse", func() streamParser { return &sseParser{} }, []byte(stream), want)
}

func TestLineParser(t *testing.T) {
	raw := "s=0 t=5 xx\n\ns=1 t=6 yy\r\n"
	checkSplits(t, "raw", func() streamParser { return &lineParser{} }, []byte(raw),
		[]string{`msg 0 "s=0 t=5 xx"`, `msg 0 "s=1 t=6 yy"`})
	nd := `{"type":"subscribed","channel":"c","lastId":0}` + "\n" +
		`{"type":"message","id":7,"channel":"c","text":"s=3 t=9 a\"b\\c\u003c","time":1}` + "\n" +
		`{"type":"message","id":8,"channel":"c","text":"plain","time":1}` + "\n" +
		`{"type":"ping"}` + "\n" + `{"type":"gap","channel":"c","since":1,"trimmed":2}` + "\n" +
		`{"type":"close","reason":"shutdown"}` + "\n"
	checkSplits(t, "ndjson", func() streamParser { return &lineParser{json: true} }, []byte(nd),
		[]string{"info", `msg 7 "s=3 t=9 a\"b\\c<"`, `msg 8 "plain"`, "ping", "other", "eof"})
}

// wsFrame builds a server frame (unmasked).
func wsFrame(fin bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		b = append(b, byte(n))
	case n < 1<<16:
		b = append(b, 126, byte(n>>8), byte(n))
	default:
		b = append(b, 127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, payload...)
}

func TestWSParser(t *testing.T) {
	long := strings.Repeat("x", 300)
	var stream []byte
	stream = append(stream, wsFrame(true, 1, []byte(`{"type":"subscribed","channel":"c","lastId":0,"epoch":""}`))...)
	stream = append(stream, wsFrame(true, 1, []byte(`{"type":"epoch","channel":"c","epoch":"k2x9ab01"}`))...)
	stream = append(stream, wsFrame(true, 1, []byte(`{"type":"message","id":1,"channel":"c","text":"s=0 t=1 `+long+`","time":1}`))...)
	stream = append(stream, wsFrame(false, 1, []byte(`{"type":"message","id":2,`))...)
	stream = append(stream, wsFrame(true, 9, []byte("hi"))...) // a ping between fragments
	stream = append(stream, wsFrame(true, 0, []byte(`"channel":"c","text":"s=1 t=2 ","time":1}`))...)
	stream = append(stream, wsFrame(true, 8, []byte{3, 233})...)
	checkSplits(t, "ws json", func() streamParser { return &wsParser{body: wsMeteorJSON} }, stream,
		[]string{"info", "info", `msg 1 "s=0 t=1 ` + long + `"`, "ping", `msg 2 "s=1 t=2 "`, "eof"})

	big := strings.Repeat("y", 70000)
	var raw []byte
	raw = append(raw, wsFrame(true, 1, []byte("s=0 t=1 a"))...)
	raw = append(raw, wsFrame(true, 2, []byte("s=1 t=1 "+big))...)
	got := collect(&wsParser{}, raw)
	want := []string{`msg 0 "s=0 t=1 a"`, fmt.Sprintf("msg 0 %q", "s=1 t=1 "+big)}
	if !slices.Equal(got, want) {
		t.Fatalf("ws raw: got %d frames, want %d", len(got), len(want))
	}
}

func TestWSClientText(t *testing.T) {
	for _, n := range []int{0, 5, 125, 126, 1000} {
		payload := []byte(strings.Repeat("z", n))
		f := wsClientText(payload)
		// A server parses masked frames too: the parser unmasks.
		got := collect(&wsParser{}, f)
		if n == 0 {
			if len(got) != 1 || got[0] != `msg 0 ""` {
				t.Fatalf("n=0: %q", got)
			}
			continue
		}
		if want := fmt.Sprintf("msg 0 %q", payload); len(got) != 1 || got[0] != want {
			t.Fatalf("n=%d: got %q", n, got)
		}
	}
}

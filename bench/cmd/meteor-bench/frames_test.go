package main

import (
	"fmt"
	"strings"
	"testing"
)

type gotFrame struct {
	kind          frameKind
	id            int64
	channel, text string
}

func collectFrames(p *frameParser, chunks ...string) []gotFrame {
	var out []gotFrame
	for _, c := range chunks {
		p.Feed([]byte(c), func(f *frame) {
			out = append(out, gotFrame{f.Kind, f.ID, string(f.Channel), string(f.Text)})
		})
	}
	return out
}

const sampleStream = "HTTP/1.1 200 OK\r\nServer: meteord\r\n\r\n....\r\n" +
	`<script>ch("demo", 0);</script>` + "\r\n" +
	`<script>p(7,"demo","hello \"you\"\\ \n\u003cb\u003e");</script>` + "\r\n" +
	`<script>p(-1,"");</script>` + "\r\n" +
	`<script>p(8,"demo","");</script>` + "\r\n" +
	`<script>p(x,"demo","bad id");</script>` + "\r\n" +
	`<script>eof();</script>` + "\r\n"

var sampleFrames = []gotFrame{
	{kind: frameChannelInfo},
	{kind: frameMessage, id: 7, channel: "demo", text: "hello \"you\"\\ \n<b>"},
	{kind: framePing, id: -1},
	{kind: frameMessage, id: 8, channel: "demo", text: ""},
	{kind: frameOther},
	{kind: frameEOF},
}

func TestFrameParserWhole(t *testing.T) {
	got := collectFrames(&frameParser{}, sampleStream)
	if fmt.Sprint(got) != fmt.Sprint(sampleFrames) {
		t.Fatalf("frames:\n got %v\nwant %v", got, sampleFrames)
	}
}

// TestFrameParserSplit feeds the stream cut at every position, and byte by
// byte: the frames must not depend on how the reads fall.
func TestFrameParserSplit(t *testing.T) {
	for i := range len(sampleStream) + 1 {
		got := collectFrames(&frameParser{}, sampleStream[:i], sampleStream[i:])
		if fmt.Sprint(got) != fmt.Sprint(sampleFrames) {
			t.Fatalf("split at %d:\n got %v\nwant %v", i, got, sampleFrames)
		}
	}
	var p frameParser
	var got []gotFrame
	for i := range len(sampleStream) {
		got = append(got, collectFrames(&p, sampleStream[i:i+1])...)
	}
	if fmt.Sprint(got) != fmt.Sprint(sampleFrames) {
		t.Fatalf("byte by byte:\n got %v\nwant %v", got, sampleFrames)
	}
	if len(p.tail.buf) > len(scriptOpen) {
		t.Fatalf("parser keeps %d bytes after the stream, want at most %d", len(p.tail.buf), len(scriptOpen))
	}
}

func TestFrameParserMalformed(t *testing.T) {
	for _, body := range []string{`p(1,"a");`, `p(1,"a","b")`, `p(1,"a","b);`, `p(1 "a","b");`, `p(-1,"x");`, `p(1,"a","b"x);`, `p(1,"a","\u12");`} {
		got := collectFrames(&frameParser{}, "<script>"+body+"</script>")
		if len(got) != 1 || got[0].kind != frameOther {
			t.Errorf("%s: got %v, want one frameOther", body, got)
		}
	}
}

func TestFrameParserLongPadding(t *testing.T) {
	// Padding without any element must not accumulate.
	var p frameParser
	collectFrames(&p, strings.Repeat(".", 100000))
	if len(p.tail.buf) >= len(scriptOpen) {
		t.Fatalf("parser keeps %d bytes of padding", len(p.tail.buf))
	}
}

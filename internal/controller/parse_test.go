package controller

import (
	"bytes"
	"errors"
	"testing"

	"github.com/meteorpush/meteor/internal/channel"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		line    string
		want    Command
		wantErr error
	}{
		{line: "ADDMESSAGE demo hello", want: Command{Kind: AddMessage, Channel: "demo", Text: []byte("hello")}},
		{line: "ADDMESSAGE demo hello world", want: Command{Kind: AddMessage, Channel: "demo", Text: []byte("hello world")}},
		{line: "ADDMESSAGE demo ", want: Command{Kind: AddMessage, Channel: "demo", Text: []byte{}}},
		{line: "ADDMESSAGE demo  two", want: Command{Kind: AddMessage, Channel: "demo", Text: []byte(" two")}},
		{line: "ADDMESSAGE demo x ", want: Command{Kind: AddMessage, Channel: "demo", Text: []byte("x ")}},
		{line: "ADDMESSAGE \t demo\ttab", want: Command{Kind: AddMessage, Channel: "demo", Text: []byte("tab")}},
		{line: "ADDMESSAGE\fdemo\rcr", want: Command{Kind: AddMessage, Channel: "demo", Text: []byte("cr")}},
		{line: "ADDMESSAGE demo a\rb\r", want: Command{Kind: AddMessage, Channel: "demo", Text: []byte("a\rb\r")}},
		{line: `ADDMESSAGE a-b_c%20D9 "q" 'x' <b>`, want: Command{Kind: AddMessage, Channel: "a-b_c%20D9", Text: []byte(`"q" 'x' <b>`)}},
		{line: "ADDMESSAGE demo \xff\x00", want: Command{Kind: AddMessage, Channel: "demo", Text: []byte("\xff\x00")}},
		{line: "ADDMESSAGE demo", wantErr: ErrSyntax},
		{line: "ADDMESSAGE demo\v", wantErr: ErrSyntax}, // VT is not white space
		{line: "ADDMESSAGE ", wantErr: ErrSyntax},
		{line: "ADDMESSAGE", wantErr: ErrSyntax},
		{line: "ADDMESSAGEdemo x", wantErr: ErrSyntax},
		{line: "ADDMESSAGE\vdemo x", wantErr: ErrSyntax},
		{line: "addmessage demo x", wantErr: ErrSyntax},
		{line: " ADDMESSAGE demo x", wantErr: ErrSyntax},
		{line: "ADDMESSAGE bad!name x", wantErr: ErrInvalidChannel},
		{line: "ADDMESSAGE caf\xc3\xa9 x", wantErr: ErrInvalidChannel},
		{line: "ADDMESSAGE a.b x", wantErr: ErrInvalidChannel},
		{line: "COUNTSUBSCRIBERS demo", want: Command{Kind: CountSubscribers, Channel: "demo"}},
		{line: "COUNTSUBSCRIBERS \t demo", want: Command{Kind: CountSubscribers, Channel: "demo"}},
		{line: "COUNTSUBSCRIBERS demo ", wantErr: ErrSyntax},
		{line: "COUNTSUBSCRIBERS a b", wantErr: ErrSyntax},
		{line: "COUNTSUBSCRIBERS", wantErr: ErrSyntax},
		{line: "COUNTSUBSCRIBERS ", wantErr: ErrSyntax},
		{line: "COUNTSUBSCRIBERSdemo", wantErr: ErrSyntax},
		{line: "COUNTSUBSCRIBERS b/d", wantErr: ErrInvalidChannel},
		{line: "LISTCHANNELS", want: Command{Kind: ListChannels}},
		{line: "LISTCHANNELS ", wantErr: ErrSyntax},
		{line: "LISTCHANNELS x", wantErr: ErrSyntax},
		{line: "LISTCHANNELSx", wantErr: ErrSyntax},
		{line: "SHOWSTATS", want: Command{Kind: ShowStats}},
		{line: "SHOWSTATS please", want: Command{Kind: ShowStats}},
		{line: "SHOWSTATSX", want: Command{Kind: ShowStats}},
		{line: "QUIT", want: Command{Kind: Quit}},
		{line: "QUIT ", wantErr: ErrSyntax},
		{line: "QUIT now", wantErr: ErrSyntax},
		{line: "quit", wantErr: ErrSyntax},
		{line: "", wantErr: ErrSyntax},
		{line: "HELLO", wantErr: ErrSyntax},
		{line: "AUTH s3cret", want: Command{Kind: Auth, Text: []byte("s3cret")}},
		{line: "AUTH \t s3 cret \r", want: Command{Kind: Auth, Text: []byte("s3 cret")}},
		{line: "AUTH", wantErr: ErrSyntax},
		{line: "AUTH ", wantErr: ErrSyntax},
		{line: "AUTHs3cret", wantErr: ErrSyntax},
		{line: "auth s3cret", wantErr: ErrSyntax},
	}
	for _, tt := range tests {
		got, err := ParseCommand([]byte(tt.line))
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ParseCommand(%q) error = %v, want %v", tt.line, err, tt.wantErr)
			}
			if got.Kind != 0 {
				t.Errorf("ParseCommand(%q) with error returned Kind %v, want none", tt.line, got.Kind)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseCommand(%q) error = %v, want %+v", tt.line, err, tt.want)
			continue
		}
		if !sameCommand(got, tt.want) {
			t.Errorf("ParseCommand(%q) = %+v (text %q), want %+v (text %q)", tt.line, got, got.Text, tt.want, tt.want.Text)
		}
		if tt.want.Kind == AddMessage && got.Text == nil {
			t.Errorf("ParseCommand(%q) returned a nil Text", tt.line)
		}
	}
}

func sameCommand(a, b Command) bool {
	return a.Kind == b.Kind && a.Channel == b.Channel && bytes.Equal(a.Text, b.Text)
}

func TestAppendText(t *testing.T) {
	tests := []struct {
		cmd     Command
		want    string
		wantErr error
	}{
		{cmd: Command{Kind: AddMessage, Channel: "c", Text: []byte(" a b ")}, want: "ADDMESSAGE c  a b "},
		{cmd: Command{Kind: AddMessage, Channel: "c"}, want: "ADDMESSAGE c "},
		{cmd: Command{Kind: CountSubscribers, Channel: "c"}, want: "COUNTSUBSCRIBERS c"},
		{cmd: Command{Kind: ListChannels}, want: "LISTCHANNELS"},
		{cmd: Command{Kind: ShowStats}, want: "SHOWSTATS"},
		{cmd: Command{Kind: Quit}, want: "QUIT"},
		{cmd: Command{Kind: Auth, Text: []byte("s3 cret")}, want: "AUTH s3 cret"},
		{cmd: Command{Kind: Auth}, wantErr: ErrSyntax},
		{cmd: Command{Kind: Auth, Text: []byte(" x")}, wantErr: ErrSyntax},
		{cmd: Command{Kind: AddMessage, Channel: "c", Text: []byte("a\nb")}, wantErr: ErrSyntax},
		{cmd: Command{Kind: AddMessage, Channel: "c d", Text: []byte("x")}, wantErr: ErrInvalidChannel},
		{cmd: Command{Kind: CountSubscribers}, wantErr: ErrInvalidChannel},
		{cmd: Command{}, wantErr: ErrSyntax},
	}
	for _, tt := range tests {
		got, err := tt.cmd.AppendText([]byte("> "))
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%+v.AppendText error = %v, want %v", tt.cmd, err, tt.wantErr)
			}
			continue
		}
		if err != nil || string(got) != "> "+tt.want {
			t.Errorf("%+v.AppendText = %q, %v; want %q", tt.cmd, got, err, "> "+tt.want)
		}
		back, err := ParseCommand(got[2:])
		if err != nil || !sameCommand(back, Command{Kind: tt.cmd.Kind, Channel: tt.cmd.Channel, Text: tt.cmd.Text}) {
			t.Errorf("ParseCommand(%q) = %+v, %v; want %+v", got[2:], back, err, tt.cmd)
		}
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{AddMessage: "ADDMESSAGE", Quit: "QUIT", Auth: "AUTH", 0: "INVALID", 99: "INVALID"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", k, got, want)
		}
	}
}

// FuzzParseCommand checks that ParseCommand never panics, that it splits an
// ADDMESSAGE line into pieces that put back together give the line, and
// that the canonical encoding of every command parses back to it. Its seeds
// are in testdata/fuzz/FuzzParseCommand.
func FuzzParseCommand(f *testing.F) {
	f.Fuzz(func(t *testing.T, line []byte) {
		orig := bytes.Clone(line)
		cmd, err := ParseCommand(line)
		if !bytes.Equal(line, orig) {
			t.Fatalf("ParseCommand modified its input %q to %q", orig, line)
		}
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrInvalidChannel) {
				t.Fatalf("ParseCommand(%q) returned an unknown error %v", line, err)
			}
			if cmd.Kind != 0 {
				t.Fatalf("ParseCommand(%q) returned Kind %v with error %v", line, cmd.Kind, err)
			}
			return
		}
		if cmd.Kind == AddMessage || cmd.Kind == CountSubscribers {
			if !channel.Valid(cmd.Channel) {
				t.Fatalf("ParseCommand(%q) accepted channel %q", line, cmd.Channel)
			}
		} else if cmd.Kind == Auth {
			if cmd.Channel != "" || len(cmd.Text) == 0 || isSpace(cmd.Text[0]) || isSpace(cmd.Text[len(cmd.Text)-1]) {
				t.Fatalf("ParseCommand(%q) = %+v, want a token without white space around it", line, cmd)
			}
		} else if cmd.Channel != "" || cmd.Text != nil {
			t.Fatalf("ParseCommand(%q) = %+v, want no arguments", line, cmd)
		}

		switch cmd.Kind {
		case AddMessage:
			// Re-encode with the separators of the input: white space, the
			// channel, one white-space byte, the text. That must be the input.
			rest := line[len("ADDMESSAGE"):]
			n := 0
			for n < len(rest) && isSpace(rest[n]) {
				n++
			}
			if n == 0 || n+len(cmd.Channel) >= len(rest) {
				t.Fatalf("ParseCommand(%q): no room for separators around channel %q", line, cmd.Channel)
			}
			sep := rest[n+len(cmd.Channel)]
			if !isSpace(sep) {
				t.Fatalf("ParseCommand(%q): channel %q followed by %q, not white space", line, cmd.Channel, sep)
			}
			var re []byte
			re = append(re, "ADDMESSAGE"...)
			re = append(re, rest[:n]...)
			re = append(re, cmd.Channel...)
			re = append(re, sep)
			re = append(re, cmd.Text...)
			if !bytes.Equal(re, line) {
				t.Fatalf("ParseCommand(%q) = channel %q text %q; re-encoded as %q", line, cmd.Channel, cmd.Text, re)
			}
		case CountSubscribers:
			if !bytes.HasPrefix(line, []byte("COUNTSUBSCRIBERS")) || !bytes.HasSuffix(line, []byte(cmd.Channel)) {
				t.Fatalf("ParseCommand(%q) = channel %q", line, cmd.Channel)
			}
		case ListChannels, Quit:
			if string(line) != cmd.Kind.String() {
				t.Fatalf("ParseCommand(%q) = %v", line, cmd.Kind)
			}
		case ShowStats:
			if !bytes.HasPrefix(line, []byte("SHOWSTATS")) {
				t.Fatalf("ParseCommand(%q) = SHOWSTATS", line)
			}
		case Auth:
			if !bytes.HasPrefix(line, []byte("AUTH")) || !bytes.Contains(line, cmd.Text) {
				t.Fatalf("ParseCommand(%q) = token %q", line, cmd.Text)
			}
		default:
			t.Fatalf("ParseCommand(%q) returned Kind %d without error", line, cmd.Kind)
		}

		if (cmd.Kind == AddMessage || cmd.Kind == Auth) && bytes.IndexByte(cmd.Text, '\n') >= 0 {
			return // not representable as a line
		}
		enc, err := cmd.AppendText(nil)
		if err != nil {
			t.Fatalf("AppendText(%+v) from %q: %v", cmd, line, err)
		}
		back, err := ParseCommand(enc)
		if err != nil || !sameCommand(back, cmd) {
			t.Fatalf("ParseCommand(%q) = %+v, %v; want %+v (from %q)", enc, back, err, cmd, line)
		}
	})
}

func BenchmarkParseCommand(b *testing.B) {
	line := []byte("ADDMESSAGE demo {\"price\": 101.25, \"symbol\": \"ACME\"}")
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for b.Loop() {
		if _, err := ParseCommand(line); err != nil {
			b.Fatal(err)
		}
	}
}

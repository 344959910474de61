package tmpl

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCompileRender(t *testing.T) {
	vals := map[string]string{"a": "A", "name": "N", "x~y": "bad"}
	field := func(dst []byte, name string) []byte { return append(dst, vals[name]...) }
	for _, tt := range []struct{ in, want string }{
		{"", ""},
		{"plain", "plain"},
		{"~a~", "A"},
		{"<~a~|~name~>", "<A|N>"},
		{"~~", "~"},
		{"a~~b~~~a~", "a~b~A"},
		{"~unknown~x", "x"},
		{"open ~a", "open ~a"},
		{"~a~~", "A~"},
		{"~a~ ~", "A ~"},
		{"\r\n~a~\x00", "\r\nA\x00"},
	} {
		got := string(Compile(tt.in).Render(nil, field))
		if got != tt.want {
			t.Errorf("Compile(%q) renders %q, want %q", tt.in, got, tt.want)
		}
	}
	tp := Compile("x~a~y")
	if !tp.Uses("a") || tp.Uses("b") || tp.Empty() {
		t.Errorf("Uses/Empty wrong for %q", "x~a~y")
	}
	if !Compile("").Empty() || Compile("~~").Empty() {
		t.Errorf("Empty wrong")
	}
	// Render appends.
	if got := string(tp.Render([]byte("pre:"), field)); got != "pre:xAy" {
		t.Errorf("Render into a buffer: %q", got)
	}
}

func TestEscapers(t *testing.T) {
	in := "q\"s'b\\</script><!--&\r\n\t\x00\x1f\x7f\u2028\u2029\xffé€😀"
	tests := []struct {
		name string
		want string
	}{
		{"js", `q\"s\'b\\\u003c/script\u003e\u003c!--\u0026\r\n\t\u0000\u001f\u007f\u2028\u2029\ufffdé€😀`},
		{"", `q\"s\'b\\\u003c/script\u003e\u003c!--\u0026\r\n\t\u0000\u001f\u007f\u2028\u2029\ufffdé€😀`},
		{"json", `q\"s'b\\\u003c/script\u003e\u003c!--\u0026\r\n\t\u0000\u001f\u007f\u2028\u2029\ufffdé€😀`},
		{"html", "q&#34;s&#39;b\\&lt;/script&gt;&lt;!--&amp;\r\n\t\x00\x1f\x7f\u2028\u2029\xffé€😀"},
		{"raw", in},
	}
	for _, tt := range tests {
		esc, err := EscaperFor(tt.name)
		if err != nil {
			t.Fatalf("EscaperFor(%q): %v", tt.name, err)
		}
		if got := string(esc([]byte("pre"), in)); got != "pre"+tt.want {
			t.Errorf("%q escaper:\n got %q\nwant %q", tt.name, got, "pre"+tt.want)
		}
	}
	if _, err := EscaperFor("base64"); err == nil {
		t.Errorf("EscaperFor(base64) did not fail")
	}
}

// checkJS checks the promises of JSString and JSONString for one input.
func checkJS(t *testing.T, s string) {
	t.Helper()
	want := string([]rune(s)) // invalid bytes as U+FFFD, one each
	for _, tt := range []struct {
		name string
		esc  Escaper
	}{{"JSString", JSString}, {"JSONString", JSONString}} {
		out := string(tt.esc(nil, s))
		if strings.Contains(out, "</") || strings.Contains(out, "<!--") || strings.ContainsAny(out, "\n\r\u2028\u2029<>&") {
			t.Fatalf("%s(%q) = %q holds a character unsafe in <script>", tt.name, s, out)
		}
		if !utf8.ValidString(out) {
			t.Fatalf("%s(%q) = %q is not UTF-8", tt.name, s, out)
		}
		for i := 0; i < len(out); i++ {
			if out[i] < 0x20 || out[i] == 0x7f {
				t.Fatalf("%s(%q) = %q holds control byte %#x", tt.name, s, out, out[i])
			}
			if out[i] == '\\' {
				i++ // the escaped character
				continue
			}
			if out[i] == '"' || tt.name == "JSString" && out[i] == '\'' {
				t.Fatalf("%s(%q) = %q holds an unescaped quote at %d", tt.name, s, out, i)
			}
		}
		var got string
		lit := out
		if tt.name == "JSString" {
			lit = strings.ReplaceAll(out, `\'`, `'`) // the one escape JSON lacks
		}
		if err := json.Unmarshal([]byte(`"`+lit+`"`), &got); err != nil {
			t.Fatalf("%s(%q) = %q does not decode: %v", tt.name, s, out, err)
		}
		if got != want {
			t.Fatalf("%s(%q) decodes to %q, want %q", tt.name, s, got, want)
		}
	}
}

func TestJSStringCases(t *testing.T) {
	for _, s := range []string{"", "a", `\'`, `\\'`, "'\\", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc3", "é\xc3", "</SCRIPT>", strings.Repeat("\\", 5) + "'"} {
		checkJS(t, s)
	}
}

func FuzzJSString(f *testing.F) {
	for _, s := range []string{"", "plain", `q"s'b\`, "</script>", "\r\n\u2028", "\xff\xfe", "é€😀", "<!--x-->"} {
		f.Add(s)
	}
	f.Fuzz(checkJS)
}

package channel

import "testing"

func TestValid(t *testing.T) {
	for name, want := range map[string]bool{
		"demo": true, "a_b-c%20": true, "X9": true,
		"": false, "a b": false, "a.b": false, "a/b": false, "é": false, "a:b": false, "a@b": false, "a,b": false,
	} {
		if got := Valid(name); got != want {
			t.Errorf("Valid(%q) = %v, want %v", name, got, want)
		}
		if got := ValidBytes([]byte(name)); got != want {
			t.Errorf("ValidBytes(%q) = %v, want %v", name, got, want)
		}
	}
}

func FuzzValid(f *testing.F) {
	f.Add("demo")
	f.Add("a.b")
	f.Fuzz(func(t *testing.T, s string) {
		if Valid(s) != ValidBytes([]byte(s)) {
			t.Fatalf("Valid and ValidBytes disagree on %q", s)
		}
		for i := 0; i < len(s) && Valid(s); i++ {
			if c := s[i]; c == '.' || c == ':' || c == ',' || c == '@' || c == '/' {
				t.Fatalf("Valid(%q) accepts a separator", s)
			}
		}
	})
}

func TestPatterns(t *testing.T) {
	for _, tt := range []struct {
		p, name string
		valid   bool
		match   bool
	}{
		{"news", "news", true, true},
		{"news", "news2", true, false},
		{"chat_*", "chat_1", true, true},
		{"chat_*", "chat_", true, true},
		{"chat_*", "chat", true, false},
		{"chat_*", "xchat_1", true, false},
		{"*", "anything", true, true},
		{"a*b", "a*b", false, false},
		{"**", "x", false, false},
		{"", "", false, true},
		{"a.b*", "a.bc", false, true},
	} {
		if got := ValidPattern(tt.p); got != tt.valid {
			t.Errorf("ValidPattern(%q) = %v, want %v", tt.p, got, tt.valid)
		}
		if tt.valid {
			if got := Match(tt.p, tt.name); got != tt.match {
				t.Errorf("Match(%q, %q) = %v, want %v", tt.p, tt.name, got, tt.match)
			}
		}
	}
}

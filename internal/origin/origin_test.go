package origin

import "testing"

func TestListed(t *testing.T) {
	for _, c := range []struct {
		list, origin string
		want         bool
	}{
		{"", "https://a.example", false},
		{"*", "https://a.example", true},
		{"https://a.example", "https://a.example", true},
		{"https://a.example/", "https://a.example", true},
		{"https://A.example", "https://a.example", true},
		{"https://a.example, https://b.example", "https://b.example", true},
		{"https://a.example https://b.example", "https://c.example", false},
		{"https://a.example", "https://a.example.evil", false},
		{"*", "", false},
		{"*", "https://a.example\r\nX-Evil: 1", false},
		{"*", "https://a example", false},
	} {
		if got := Listed(c.list, c.origin); got != c.want {
			t.Errorf("Listed(%q, %q) = %v, want %v", c.list, c.origin, got, c.want)
		}
	}
}

func TestLoopbackHost(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LOCALHOST:4672": true, "127.0.0.1": true, "127.9.9.9:80": true,
		"[::1]:4672": true, "::1": true, "10.0.0.1": false, "example.com:4672": false,
		"localhost.example.com": false, "": false,
	} {
		if got := LoopbackHost(host); got != want {
			t.Errorf("LoopbackHost(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestSamePort(t *testing.T) {
	for _, c := range []struct {
		origin string
		port   int
		want   bool
	}{
		{"http://localhost:4670", 4670, true},
		{"http://127.0.0.1:4670", 4670, true},
		{"https://[::1]:4670", 4670, true},
		{"http://localhost", 80, true},
		{"https://localhost", 443, true},
		{"http://localhost:4671", 4670, false},
		{"http://evil.example:4670", 4670, false},
		{"file://localhost:4670", 4670, false},
		{"null", 4670, false},
		{"http://localhost:4670/path", 4670, true},
	} {
		if got := SamePort(c.origin, c.port); got != c.want {
			t.Errorf("SamePort(%q, %d) = %v, want %v", c.origin, c.port, got, c.want)
		}
	}
}

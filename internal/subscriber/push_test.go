package subscriber

import (
	"strings"
	"testing"
	"unsafe"
)

// TestCompact: the hostid, the channel names and the address keep their
// values and no longer point into the request line or the remote address
// they were cut from, and they share one allocation.
func TestCompact(t *testing.T) {
	path := "h1/xhrinteractive/a/bb.r3/ccc.h"
	req, err := ParsePush(strings.Clone(path), 0)
	if err != nil {
		t.Fatal(err)
	}
	remote := strings.Clone("127.0.0.9:4567")
	orig := unsafe.StringData(req.HostID)
	hostID, ip, channels := compact(&req, remote[:9])
	if hostID != "h1" || req.HostID != "h1" || ip != "127.0.0.9" || channels != "a/bb/ccc/" {
		t.Errorf("hostid %q (req %q), ip %q, channels %q", hostID, req.HostID, ip, channels)
	}
	var names []string
	for _, ch := range req.Channels {
		names = append(names, ch.Name)
	}
	if got := strings.Join(names, ","); got != "a,bb,ccc" {
		t.Errorf("channels %q, want a,bb,ccc", got)
	}
	within := func(s, in string, base *byte) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		o := uintptr(unsafe.Pointer(base))
		return p >= o && p < o+uintptr(len(in))
	}
	for _, s := range append(names, hostID, ip, channels) {
		if within(s, path, orig) || within(s, remote, unsafe.StringData(remote)) {
			t.Errorf("%q still points into the request", s)
		}
	}
	// One allocation: the copies follow each other.
	if unsafe.StringData(ip) != (*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(hostID)), len(hostID))) ||
		unsafe.StringData(channels) != (*byte)(unsafe.Add(unsafe.Pointer(unsafe.StringData(ip)), len(ip))) ||
		unsafe.StringData(names[0]) != unsafe.StringData(channels) {
		t.Errorf("hostid, ip and channels are not one allocation")
	}
}

// TestCompactStrings: each string keeps its value, and separators go
// after the strings from skip on only.
func TestCompactStrings(t *testing.T) {
	a, b, c := "one", "", "three"
	all := compactStrings(",", 1, &a, &b, &c)
	if a != "one" || b != "" || c != "three" || all != "one,three," {
		t.Errorf("a %q b %q c %q all %q", a, b, c, all)
	}
	x, y := "x", "yy"
	if all := compactStrings("", 0, &x, &y); all != "xyy" || x != "x" || y != "yy" {
		t.Errorf("x %q y %q all %q", x, y, all)
	}
}

// TestIdleFootprint: what every idle subscriber keeps stays within the
// size classes measured in bench/results/history.md ("Idle memory under 2 KiB"). A
// field added to one of these structs costs every subscriber; keep it out
// (a long-poll's in pollConn, which no stream carries) or move the budget knowingly.
func TestIdleFootprint(t *testing.T) {
	for _, c := range []struct {
		name       string
		size, most uintptr
	}{
		{"sseConn", unsafe.Sizeof(sseConn{}), 128},
		{"ndjsonConn", unsafe.Sizeof(ndjsonConn{}), 128},
		{"client", unsafe.Sizeof(client{}), 128},
	} {
		if c.size > c.most {
			t.Errorf("%s is %d bytes, more than %d", c.name, c.size, c.most)
		}
	}
}

package subscriber

import (
	"strings"
	"testing"
	"unsafe"
)

// TestCompact: the hostid and channel names keep their values and no
// longer point into the request they were parsed from.
func TestCompact(t *testing.T) {
	path := "h1/xhrinteractive/a/bb.r3/ccc.h"
	req, err := ParsePush(strings.Clone(path), 0)
	if err != nil {
		t.Fatal(err)
	}
	orig := unsafe.StringData(req.HostID)
	compact(&req)
	if req.HostID != "h1" {
		t.Errorf("HostID = %q", req.HostID)
	}
	var names []string
	for _, ch := range req.Channels {
		names = append(names, ch.Name)
	}
	if got := strings.Join(names, ","); got != "a,bb,ccc" {
		t.Errorf("channels %q, want a,bb,ccc", got)
	}
	within := func(s string) bool {
		p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
		o := uintptr(unsafe.Pointer(orig))
		return p >= o && p < o+uintptr(len(path))
	}
	for _, s := range append(names, req.HostID) {
		if within(s) {
			t.Errorf("%q still points into the request", s)
		}
	}
}

package auth

import (
	"strings"
	"testing"
	"time"
)

func TestSignedHostID(t *testing.T) {
	secret := []byte(strings.Repeat("k", 32))
	v := mustNew(t, Options{URLSecret: secret, Leeway: 5 * time.Second})
	now := time.Now()
	h := SignHostID(secret, "page42", []string{"news", "chat", "news"}, now.Add(time.Hour))
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			t.Fatalf("signed hostid %q is not a 1.06 hostid", h)
		}
	}
	g, err := v.VerifyHostID(h, []string{"chat", "news"}, now)
	if err != nil || !g.Path || g.Expiry.Unix() != now.Add(time.Hour).Unix() {
		t.Fatalf("VerifyHostID = %+v, %v", g, err)
	}
	// Case does not matter to a 1.06 hostid.
	if _, err := v.VerifyHostID(strings.ToUpper(h), []string{"news", "chat"}, now); err != nil {
		t.Errorf("upper case: %v", err)
	}
	_, err = v.VerifyHostID(h, []string{"chat"}, now)
	wantCheck(t, err, CheckSignature)
	_, err = v.VerifyHostID(h, []string{"chat", "news", "admin"}, now)
	wantCheck(t, err, CheckSignature)
	_, err = v.VerifyHostID(h, []string{"chat", "news"}, now.Add(time.Hour+5*time.Second))
	wantCheck(t, err, CheckExpired)
	_, err = v.VerifyHostID("page42", []string{"chat"}, now)
	wantCheck(t, err, CheckMissing)
	other := mustNew(t, Options{URLSecret: []byte(strings.Repeat("x", 32))})
	_, err = other.VerifyHostID(h, []string{"chat", "news"}, now)
	wantCheck(t, err, CheckSignature)
	_, err = mustNew(t, Options{Secret: secret}).VerifyHostID(h, []string{"chat", "news"}, now)
	wantCheck(t, err, CheckSignature)
	// A changed id or exp breaks the signature.
	id, exp, sig, ok := SplitHostID(h)
	if !ok || id != "page42" {
		t.Fatalf("SplitHostID(%q) = %q %q %q %v", h, id, exp, sig, ok)
	}
	_, err = v.VerifyHostID("page43s"+exp+"s"+sig, []string{"chat", "news"}, now)
	wantCheck(t, err, CheckSignature)
	_, err = v.VerifyHostID("page42s9"+exp+"s"+sig, []string{"chat", "news"}, now)
	wantCheck(t, err, CheckSignature)
}

func TestSplitHostID(t *testing.T) {
	sig := strings.Repeat("ab", 32)
	for _, c := range []struct {
		in, id, exp string
		ok          bool
	}{
		{"xs1s" + sig, "x", "1", true},
		{"a1s2s99s" + sig, "a1s2", "99", true},
		{"s1s" + sig, "", "", false},
		{"xs" + sig, "", "", false},
		{"xss" + sig, "", "", false},
		{"x1" + sig, "", "", false},
		{"plainhostid", "", "", false},
		{"", "", "", false},
	} {
		id, exp, _, ok := SplitHostID(c.in)
		if ok != c.ok || id != c.id || exp != c.exp {
			t.Errorf("SplitHostID(%q) = %q, %q, %v; want %q, %q, %v", c.in, id, exp, ok, c.id, c.exp, c.ok)
		}
	}
}

// FuzzVerifyHostID: no input panics, and an accepted hostid is one that
// SignHostID makes for the same channels.
func FuzzVerifyHostID(f *testing.F) {
	secret := []byte(strings.Repeat("k", 32))
	f.Add(SignHostID(secret, "page42", []string{"chat"}, time.Unix(4102444800, 0)), "chat")
	f.Add("xs1s"+strings.Repeat("0", 64), "a,b")
	f.Add("plain", "")
	v, err := New(Options{URLSecret: secret})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, hostid, channels string) {
		chans := strings.Split(channels, ",")
		g, err := v.VerifyHostID(hostid, chans, time.Unix(1700000000, 0))
		if err != nil {
			return
		}
		id, exp, _, _ := SplitHostID(hostid)
		if want := SignHostID(secret, id, chans, g.Expiry); !strings.EqualFold(want, hostid) || exp != want[len(id)+1:len(id)+1+len(exp)] {
			t.Fatalf("accepted %q for %q; SignHostID makes %q", hostid, channels, want)
		}
	})
}

package config

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const nsFile = `MaxMessagesPerChannel 100
Presence 1
JWTSecret 0123456789abcdef0123456789abcdef

[namespace chat_*]
MaxMessagesPerChannel 10
Presence 0

[iframe]
MaxTime 5

[ NameSpace	chat_vip* ]
MaxMessageAge 60
SubscriberAuth yes

[namespace chat_vip]
ConflateInterval 100
MaxMessageBytes 512

[namespace *]
PublishRate 5
PublishBurst 7

[namespace ticker]
`

func TestNamespacePrecedence(t *testing.T) {
	c := mustLoad(t, nsFile)
	global := Namespace{SubscriberAuth: false, MaxMessagesPerChannel: 100, MaxMessageAge: 7200, Presence: true, MaxMessageBytes: 65536}
	with := func(pattern string, f func(n *Namespace)) Namespace {
		n := global
		n.Pattern = pattern
		f(&n)
		return n
	}
	for ch, want := range map[string]Namespace{
		// A prefix section: its own keys, the global values for the rest
		// (not those of "*", which matches too but is less specific).
		"chat_x": with("chat_*", func(n *Namespace) { n.MaxMessagesPerChannel, n.Presence = 10, false }),
		"chat_":  with("chat_*", func(n *Namespace) { n.MaxMessagesPerChannel, n.Presence = 10, false }),
		// The longer prefix wins, and inherits the global values, not
		// those of chat_*.
		"chat_vip1": with("chat_vip*", func(n *Namespace) { n.MaxMessageAge, n.SubscriberAuth = 60, true }),
		// The exact name beats every prefix.
		"chat_vip": with("chat_vip", func(n *Namespace) { n.ConflateInterval, n.MaxMessageBytes = 100, 512 }),
		"other":    with("*", func(n *Namespace) { n.PublishRate, n.PublishBurst = 5, 7 }),
		"chat":     with("*", func(n *Namespace) { n.PublishRate, n.PublishBurst = 5, 7 }),
		// An empty section: its name, every global value.
		"ticker": with("ticker", func(*Namespace) {}),
		// Names are compared as they are (channel names are).
		"CHAT_x": with("*", func(n *Namespace) { n.PublishRate, n.PublishBurst = 5, 7 }),
	} {
		if got := *c.Namespace(ch); got != want {
			t.Errorf("Namespace(%q) = %+v\nwant %+v", ch, got, want)
		}
	}
	if m := c.Mode("iframe"); m.MaxTime != 5 {
		t.Errorf("a [mode] after a namespace: MaxTime %d", m.MaxTime)
	}
	if got := len(c.Namespaces()); got != 5 {
		t.Errorf("Namespaces() has %d, want 5", got)
	}
	// Namespace lines do not change the global values.
	if c.MaxMessagesPerChannel != 100 || !c.Presence || c.PublishRate != 0 || c.ConflateInterval != 0 || c.SubscriberAuth {
		t.Errorf("global values changed by namespaces: %d %v %d %d %v", c.MaxMessagesPerChannel, c.Presence, c.PublishRate, c.ConflateInterval, c.SubscriberAuth)
	}
}

func TestNamespaceNoMatch(t *testing.T) {
	c := mustLoad(t, "MaxMessageAge 30\n[namespace news_*]\nMaxMessagesPerChannel 5\n", "-MaxMessageAge", "40", "-MaxMessagesPerChannel", "9")
	n := c.Namespace("sport")
	if n == nil || n.Pattern != "" || n.MaxMessageAge != 40 || n.MaxMessagesPerChannel != 9 {
		t.Fatalf("unmatched channel: %+v; want the global values (command line over file)", n)
	}
	// A namespace inherits the command line's global value, and its own
	// lines beat it.
	if n := c.Namespace("news_1"); n.MaxMessageAge != 40 || n.MaxMessagesPerChannel != 5 {
		t.Fatalf("news_1: %+v", n)
	}
	for _, c := range []*Config{Defaults(), {}} {
		if n := c.Namespace("x"); n == nil || n.Pattern != "" || n.MaxMessagesPerChannel != c.MaxMessagesPerChannel {
			t.Errorf("Namespace of a configuration without sections: %+v", n)
		}
	}
}

// TestNamespaceChangedInCode: a Config changed after Load (as tests and
// code-built configurations do) gets namespaces over its fields as they
// are now.
func TestNamespaceChangedInCode(t *testing.T) {
	c := mustLoad(t, "[namespace a*]\nMaxMessageAge 5\n")
	c.MaxMessagesPerChannel, c.Presence = 3, false
	if n := c.Namespace("b"); n.MaxMessagesPerChannel != 3 || n.Presence {
		t.Errorf("unmatched: %+v", n)
	}
	if n := c.Namespace("a1"); n.MaxMessagesPerChannel != 3 || n.Presence || n.MaxMessageAge != 5 || n.Pattern != "a*" {
		t.Errorf("a1: %+v", n)
	}
}

func TestNamespaceAllocs(t *testing.T) {
	c := mustLoad(t, nsFile)
	names := []string{"chat_x", "chat_vip", "chat_vip1", "other", "ticker"}
	var sum int
	if n := testing.AllocsPerRun(1000, func() {
		for _, ch := range names {
			sum += c.Namespace(ch).MaxMessagesPerChannel
		}
	}); n != 0 {
		t.Fatalf("Namespace allocates %v times a run", n)
	}
	d := Defaults()
	if n := testing.AllocsPerRun(1000, func() { sum += d.Namespace("x").MaxMessagesPerChannel }); n != 0 {
		t.Fatalf("Namespace of Defaults allocates %v times", n)
	}
}

func TestNamespaceErrors(t *testing.T) {
	for _, tc := range []struct {
		file    string
		want    error
		mention []string
	}{
		{"[namespace a*]\nMaxMessagesPerChanel 1\n", ErrUnknownParameter, []string{DefaultConfigFile + ":2", "MaxMessagesPerChanel"}},
		{"[namespace a*]\n\nControllerPort 1\n", ErrNotPerNamespace, []string{DefaultConfigFile + ":3", "ControllerPort", "[namespace a*]", "PublishRate"}},
		{"[namespace a*]\nMaxTime 1\n", ErrNotPerNamespace, []string{":2", "MaxTime"}},
		{"[namespace a*]\nMaxMessageAge -1\n", ErrInvalidValue, []string{":2", "MaxMessageAge"}},
		{"[namespace a*]\nPresence maybe\n", ErrInvalidValue, []string{":2", "Presence"}},
		{"# x\n[namespace a*b]\n", ErrInvalidNamespace, []string{":2", "a*b"}},
		{"[namespace **]\n", ErrInvalidNamespace, []string{":1"}},
		{"[namespace a b]\n", ErrInvalidNamespace, []string{":1"}},
		{"[namespace a.b]\n", ErrInvalidNamespace, []string{":1"}},
		{"[namespace a*]\nPresence 0\n[namespace b]\n[namespace a*]\n", ErrDuplicateNamespace, []string{":4", "first at " + DefaultConfigFile + ":1"}},
		{"[iframe]\nPresence 0\n", ErrNotPerMode, []string{":2"}},
		// [namespace] alone is a mode's name, as it was before namespaces.
		{"[namespace]\nPresence 0\n", ErrNotPerMode, []string{":2", "[namespace <pattern>]"}},
		{"[namespace a*]\nSubscriberAuth 1\n", ErrCredentialRequired, []string{":1", "[namespace a*]"}},
	} {
		_, _, err := loadFile(tc.file)
		checkError(t, err, tc.want, tc.mention...)
		checkRefusal(t, err)
	}
}

func TestNamespaceReload(t *testing.T) {
	fs := files{"/etc/m.conf": "[namespace a*]\nMaxMessagesPerChannel 5\n"}
	c, _, err := Load([]string{"-ConfigFileLocation", "/etc/m.conf"}, fs.read)
	if err != nil {
		t.Fatal(err)
	}
	fs["/etc/m.conf"] = "[namespace a*]\nMaxMessagesPerChannel 6\n[namespace b]\nPresence off\n"
	re, err := c.Reload(fs.read)
	if err != nil {
		t.Fatal(err)
	}
	if re.Namespace("a1").MaxMessagesPerChannel != 6 || re.Namespace("b").Presence || !re.Namespace("bb").Presence {
		t.Errorf("after Reload: %+v %+v", *re.Namespace("a1"), *re.Namespace("b"))
	}
	if c.Namespace("a1").MaxMessagesPerChannel != 5 {
		t.Errorf("Reload changed the old configuration")
	}
}

// TestNamespacesDoc loads the example of docs/namespaces.md and checks its
// table of which namespace each channel gets.
func TestNamespacesDoc(t *testing.T) {
	data, err := os.ReadFile("../../docs/namespaces.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(data), "```\n")
	example, rest, _ := strings.Cut(rest, "```\n")
	c := mustLoad(t, example, "-JWTSecret", "0123456789abcdef0123456789abcdef")
	rows := 0
	for line := range strings.Lines(rest) {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) != 7 || !strings.HasPrefix(strings.TrimSpace(f[1]), "`") {
			continue
		}
		cell := func(i int) string { return strings.Trim(strings.TrimSpace(f[i]), "`") }
		ch, pattern := cell(1), cell(2)
		if pattern == "none" {
			pattern = ""
		}
		n := c.Namespace(ch)
		got := []string{n.Pattern, strconv.Itoa(n.MaxMessagesPerChannel), strconv.Itoa(n.MaxMessageAge), map[bool]string{true: "1", false: "0"}[n.Presence]}
		if want := []string{pattern, cell(3), cell(4), cell(5)}; !slices.Equal(got, want) {
			t.Errorf("docs/namespaces.md says %s gets %v; it gets %v", ch, want, got)
		}
		rows++
	}
	if rows < 4 {
		t.Fatalf("found %d rows of the table in docs/namespaces.md", rows)
	}
}

// BenchmarkNamespace is the lookup every publish makes: with five sections
// (one exact match, prefixes, "*", none).
func BenchmarkNamespace(b *testing.B) {
	c, _, err := loadFile(nsFile)
	if err != nil {
		b.Fatal(err)
	}
	names := []string{"chat_x", "chat_vip", "chat_vip1", "other", "ticker"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.Namespace(names[i%len(names)])
	}
}

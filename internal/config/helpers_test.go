package config

import (
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/meteorpush/meteor/internal/channel"
)

// files is a fake file system for Load: path → content.
type files map[string]string

func (f files) read(path string) ([]byte, error) {
	if s, ok := f[path]; ok {
		return []byte(s), nil
	}
	return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
}

// loadFile loads args with text as the default configuration file.
func loadFile(text string, args ...string) (*Config, Action, error) {
	return Load(args, files{DefaultConfigFile: text}.read)
}

// mustLoad loads args with text as the default file and fails on error.
func mustLoad(t *testing.T, text string, args ...string) *Config {
	t.Helper()
	c, a, err := loadFile(text, args...)
	if err != nil || a != ActionRun {
		t.Fatalf("Load(%q) with file %q = %v, %v; want a configuration", args, text, a, err)
	}
	return c
}

var sentinels = []error{ErrCredentialRequired, ErrUnknownParameter, ErrAmbiguousParameter, ErrInvalidValue,
	ErrNotPerMode, ErrInvalidModeName, ErrSyntax, ErrNotInFile,
	ErrInvalidNamespace, ErrDuplicateNamespace, ErrNotPerNamespace}

// checkError fails unless err wraps want and is an *Error mentioning every
// string of mention.
func checkError(t *testing.T, err, want error, mention ...string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v; want %v", err, want)
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is no *Error", err, err)
	}
	for _, m := range mention {
		if !strings.Contains(err.Error(), m) {
			t.Errorf("error %q does not mention %q", err, m)
		}
	}
}

// checkInvariants fails if c breaks a promise that every loaded
// configuration keeps, whatever its input.
func checkInvariants(t *testing.T, c *Config) {
	t.Helper()
	if c == nil {
		t.Fatal("nil configuration")
	}
	for _, name := range []string{"iframe", "xhrinteractive", "simplepoll", "smartpoll", "longpoll", "flash", "flashloadvars"} {
		if c.Modes[name] == nil {
			t.Errorf("built-in mode %q missing", name)
		}
	}
	if c.Default.Name != "" || c.Mode("") != &c.Default {
		t.Errorf("Default mode is named %q or not returned for \"\"", c.Default.Name)
	}
	checkMode := func(m *Mode) {
		if m.PingInterval != 0 && m.PingInterval < 3 {
			t.Errorf("mode %q: PingInterval %d", m.Name, m.PingInterval)
		}
		if m.MaxMessages < 0 || m.MaxTime < 0 {
			t.Errorf("mode %q: negative MaxMessages %d or MaxTime %d", m.Name, m.MaxMessages, m.MaxTime)
		}
		switch m.TextEncoding {
		case "js", "json", "html", "raw":
		default:
			t.Errorf("mode %q: TextEncoding %q", m.Name, m.TextEncoding)
		}
	}
	checkMode(&c.Default)
	for name, m := range c.Modes {
		if m == nil {
			t.Fatalf("mode %q is nil", name)
		}
		if n, ok := modeName(name); !ok || n != name || m.Name != name {
			t.Errorf("mode key %q, Name %q: want a lower-case [0-9a-z]+ name equal to the key", name, m.Name)
		}
		if c.Mode(name) != m {
			t.Errorf("Mode(%q) does not return Modes[%q]", name, name)
		}
		checkMode(m)
	}
	for _, p := range []int{c.ControllerPort, c.SubscriberPort, c.UDPPort} {
		if p < 0 || p > 65535 {
			t.Errorf("port %d out of range", p)
		}
	}
	for _, n := range []int{c.MaxControllerLine, c.MaxHeaderBytes, c.MaxChannelsPerRequest, c.RequestTimeout,
		c.SubscriberWriteTimeout, c.MaxPendingBytes, c.ShutdownTimeout} {
		if n < 1 {
			t.Errorf("limit %d below 1", n)
		}
	}
	if c.MaxMessageAge < 0 || c.MaxMessagesPerChannel < 0 {
		t.Errorf("negative MaxMessageAge %d or MaxMessagesPerChannel %d", c.MaxMessageAge, c.MaxMessagesPerChannel)
	}
	if c.LogTimeFormat != "human" && c.LogTimeFormat != "unix" {
		t.Errorf("LogTimeFormat %q", c.LogTimeFormat)
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		t.Errorf("LogFormat %q", c.LogFormat)
	}
	if !slices.Contains(facilities, c.SyslogFacility) {
		t.Errorf("SyslogFacility %q", c.SyslogFacility)
	}
	for _, n := range c.Namespaces() {
		if !channel.ValidPattern(n.Pattern) {
			t.Errorf("namespace pattern %q", n.Pattern)
		}
		if n.MaxMessageAge < 0 || n.MaxMessagesPerChannel < 0 || n.MaxMessageBytes < 1 || n.PublishRate < 0 || n.PublishBurst < 0 || n.ConflateInterval < 0 {
			t.Errorf("namespace %q: out of range: %+v", n.Pattern, n)
		}
		if !strings.HasSuffix(n.Pattern, "*") && *c.Namespace(n.Pattern) != n {
			t.Errorf("Namespace(%q) = %+v; want its own section %+v", n.Pattern, *c.Namespace(n.Pattern), n)
		}
	}
	for _, ch := range []string{"a", "chat_1", "x-y", "%"} {
		n := c.Namespace(ch)
		if n == nil || n.Pattern != "" && !channel.Match(n.Pattern, ch) {
			t.Errorf("Namespace(%q) = %+v", ch, n)
		}
	}
}

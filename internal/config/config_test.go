package config

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
)

func TestDefaults(t *testing.T) {
	c := Defaults()
	checkInvariants(t, c)
	want := Config{
		ConfigFileLocation:           "/etc/meteord.conf",
		ControllerIP:                 "127.0.0.1",
		ControllerPort:               4671,
		DirectoryIndex:               "index.html",
		LogTimeFormat:                "human",
		MaxMessageAge:                7200,
		MaxMessagesPerChannel:        250,
		SubscriberPort:               4670,
		SubscriberDocumentRoot:       "/usr/local/meteor/public_html",
		SubscriberDynamicPageAddress: "/push",
		SyslogFacility:               "none",
		MaxControllerLine:            65536,
		MaxHeaderBytes:               8192,
		MaxChannelsPerRequest:        64,
		RequestTimeout:               10,
		SubscriberWriteTimeout:       120,
		MaxPendingBytes:              1048576,
		ShutdownTimeout:              10,
		BuiltinFiles:                 true,
		LogFormat:                    "text",
		LogLevel:                     "info",
		AdminAPI:                     true,
		AdminIP:                      "127.0.0.1",
		AdminPort:                    4672,
		HeartbeatInterval:            15,
		SSERetry:                     3000,
		LongPollTimeout:              30,
		SubscribeTimeout:             5,
		PublishTimeout:               5,
		MaxMessageBytes:              65536,
		SubscriberNoDelay:            true,
		GCPercent:                    50,
		Engine:                       "memory",
		RedisURL:                     "redis://127.0.0.1:6379/0",
		RedisPrefix:                  "meteor",
		RedisTimeout:                 2000,
		RedisPoolSize:                32,
		PresenceTTL:                  60,
		DrainTime:                    15,
		UDPIP:                        "127.0.0.1",
		MaxControllerConnections:     1000,
		JWTLeeway:                    5,
		Presence:                     true,
		Default: Mode{
			ChannelInfoTemplate:   "<script>ch(\"~name~\", ~lastMsgID~);</script>\r\n",
			HeaderTemplate:        "HTTP/1.1 ~status~\r\nServer: ~server~\r\nContent-Type: text/html; charset=utf-8\r\nPragma: no-cache\r\nCache-Control: no-cache, no-store, must-revalidate\r\nExpires: Thu, 1 Jan 1970 00:00:00 GMT\r\n\r\n",
			MessageTemplate:       "<script>p(~id~,\"~channel~\",\"~text~\");</script>\r\n",
			PingMessage:           "<script>p(-1,\"\");</script>\r\n",
			SubscriberShutdownMsg: "<script>eof();</script>\r\n",
			PingInterval:          5,
			TextEncoding:          "js",
		},
	}
	got := *c
	got.Modes, got.namespaces = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Defaults() =\n%+v\nwant\n%+v", got, want)
	}
}

// TestBuiltinModes checks the built-in modes against the per-mode values of
// 1.06's sample configuration file.
func TestBuiltinModes(t *testing.T) {
	c := Defaults()
	d := c.Default
	header := d.HeaderTemplate
	type row struct {
		persist       bool
		maxMessages   int
		header        string // prefix
		headerEnd     string // suffix
		msg, ping     string
		shutdown, chi string
		enc           string
	}
	script := row{msg: d.MessageTemplate, ping: d.PingMessage, shutdown: d.SubscriberShutdownMsg, chi: d.ChannelInfoTemplate, enc: "js"}
	with := func(r row, f func(*row)) row { f(&r); return r }
	tests := map[string]row{
		"iframe": with(script, func(r *row) {
			r.persist, r.header, r.headerEnd = true, header+"<html><head>", "<body onload=\"try { parent.Meteor.reset(this) } catch (e) {}\">\r\n~channelinfo~\r\n"
		}),
		"xhrinteractive": with(script, func(r *row) {
			r.persist, r.header, r.headerEnd = true, header+strings.Repeat(".", 1409)+"\r\n", "\r\n~channelinfo~\r\n"
		}),
		"simplepoll": with(script, func(r *row) { r.header, r.headerEnd = header+"~channelinfo~", header+"~channelinfo~" }),
		"smartpoll":  with(script, func(r *row) { r.header, r.headerEnd = header+"~channelinfo~", header+"~channelinfo~" }),
		"longpoll": with(script, func(r *row) {
			r.persist, r.maxMessages, r.header, r.headerEnd = true, 1, header+"~channelinfo~", header+"~channelinfo~"
		}),
		"flash": {persist: true, header: "~channelinfo~", headerEnd: "~channelinfo~", msg: "~id~/~channel~/~text~\x00",
			ping: ".\x00", shutdown: "x\x00", chi: "CH/~name~/~lastMsgID~\x00", enc: "raw"},
		"flashloadvars": {persist: true, maxMessages: 1, header: header + "~channelinfo~", headerEnd: header + "~channelinfo~",
			msg: "~id~/~channel~/~text~\n", ping: "", shutdown: "x\n", chi: "CH/~name~/~lastMsgID~\n", enc: "raw"},
	}
	if len(c.Modes) != len(tests) {
		t.Errorf("built-in modes %v; want %d", c.ModeNames(), len(tests))
	}
	for name, want := range tests {
		m := c.Modes[name]
		if m == nil {
			t.Errorf("mode %q missing", name)
			continue
		}
		if m.Persist != want.persist || m.MaxMessages != want.maxMessages || m.TextEncoding != want.enc ||
			m.MessageTemplate != want.msg || m.PingMessage != want.ping || m.SubscriberShutdownMsg != want.shutdown ||
			m.ChannelInfoTemplate != want.chi || !strings.HasPrefix(m.HeaderTemplate, want.header) ||
			!strings.HasSuffix(m.HeaderTemplate, want.headerEnd) {
			t.Errorf("mode %q = %#v\nwant %#v", name, *m, want)
		}
		if m.MaxTime != 0 || m.PingInterval != 5 {
			t.Errorf("mode %q: MaxTime %d, PingInterval %d; want the global 0 and 5", name, m.MaxTime, m.PingInterval)
		}
	}
	iframe := c.Modes["iframe"].HeaderTemplate
	for _, s := range []string{
		"parent.Meteor.register(this);",
		"try {\r\nvar domainparts = document.domain.split(\".\");\r\ndocument.domain = domainparts[domainparts.length-2]+\".\"+domainparts[domainparts.length-1];\r\n} catch (e) {}\r\n",
	} {
		if !strings.Contains(iframe, s) {
			t.Errorf("iframe header lacks %q", s)
		}
	}
}

// TestExampleFile checks that meteord.conf.example spells out the built-in
// configuration exactly.
func TestExampleFile(t *testing.T) {
	data, err := os.ReadFile("../../meteord.conf.example")
	if err != nil {
		t.Fatal(err)
	}
	c, err := load(nil, nil, files{DefaultConfigFile: string(data)}.read)
	if err != nil {
		t.Fatal(err)
	}
	c.args = nil
	if want := Defaults(); !reflect.DeepEqual(c, want) {
		t.Errorf("meteord.conf.example gives\n%+v\nwant the built-in\n%+v", c, want)
	}
	// Uncommenting the global lines must not change anything either.
	var b strings.Builder
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "#"); ok && rest != "" && rest[0] >= 'A' && rest[0] <= 'Z' {
			line = rest
		}
		b.WriteString(line)
	}
	c, err = load(nil, nil, files{DefaultConfigFile: b.String()}.read)
	if err != nil {
		t.Fatalf("meteord.conf.example with its settings uncommented: %v", err)
	}
	c.args = nil
	if want := Defaults(); !reflect.DeepEqual(c, want) {
		t.Errorf("meteord.conf.example with its settings uncommented gives\n%+v\nwant\n%+v", c, want)
	}
}

// TestLegacySample loads a file laid out like 1.06's sample: global lines,
// then sections with the original iframe header.
func TestLegacySample(t *testing.T) {
	legacyIframe := strings.Replace(iframePage, `try {\r\n`, "", 1)
	legacyIframe = strings.Replace(legacyIframe, `} catch (e) {}\r\n`, "", 1)
	text := "MaxTime 240\nPingInterval 3\nDebug 0\nSyslogFacility none\n\n[iframe]\nHeaderTemplate " +
		httpHeader + legacyIframe + "\nPersist 1\n\n[flashloadvars]\nPingMessage \nMaxMessages 1\n"
	c := mustLoad(t, text)
	checkInvariants(t, c)
	if c.Default.MaxTime != 240 || c.Default.PingInterval != 3 || c.Debug || c.SyslogFacility != "none" {
		t.Errorf("globals: %+v", c.Default)
	}
	if m := c.Mode("iframe"); m.MaxTime != 240 || m.PingInterval != 3 || strings.Contains(m.HeaderTemplate, "try {\r\nvar") ||
		!strings.Contains(m.HeaderTemplate, "\r\ndocument.domain = ") {
		t.Errorf("iframe: %#v", *m)
	}
	if m := c.Mode("flashloadvars"); m.PingMessage != "" || m.MaxTime != 240 {
		t.Errorf("flashloadvars: %#v", *m)
	}
}

func TestArgs(t *testing.T) {
	tests := []struct {
		args    []string
		check   func(*Config) bool
		action  Action
		err     error
		mention []string
	}{
		// Names: case-insensitive, any unique prefix, exact name first.
		{args: []string{"-SubscriberPort", "80"}, check: func(c *Config) bool { return c.SubscriberPort == 80 }},
		{args: []string{"-subscriberport", "80"}, check: func(c *Config) bool { return c.SubscriberPort == 80 }},
		{args: []string{"-SubscriberP", "80"}, check: func(c *Config) bool { return c.SubscriberPort == 80 }},
		{args: []string{"-subscriberp", "80"}, check: func(c *Config) bool { return c.SubscriberPort == 80 }},
		{args: []string{"-Sub", "80"}, err: ErrAmbiguousParameter,
			mention: []string{"-Sub", "SubscriberIP", "SubscriberPort", "SubscriberShutdownMsg", "SubscriberWriteTimeout"}},
		{args: []string{"-Pi", "x"}, err: ErrAmbiguousParameter, mention: []string{"PingInterval", "PingMessage"}},
		{args: []string{"-MaxMessages", "3"}, check: func(c *Config) bool { return c.Default.MaxMessages == 3 && c.MaxMessagesPerChannel == 250 }},
		{args: []string{"-MaxMessagesP", "3"}, check: func(c *Config) bool { return c.MaxMessagesPerChannel == 3 }},
		{args: []string{"-UDPPORT", "9"}, check: func(c *Config) bool { return c.UDPPort == 9 }},
		// A 1.06 abbreviation keeps its meaning when it also fits an extension.
		{args: []string{"-Log", "unix"}, check: func(c *Config) bool { return c.LogTimeFormat == "unix" && c.LogFormat == "text" }},
		{args: []string{"-l", "unix"}, check: func(c *Config) bool { return c.LogTimeFormat == "unix" }},
		{args: []string{"-LogF", "json"}, check: func(c *Config) bool { return c.LogFormat == "json" && c.LogTimeFormat == "human" }},
		{args: []string{"-MaxC", "100"}, err: ErrAmbiguousParameter, mention: []string{"MaxControllerLine", "MaxChannelsPerRequest"}},
		{args: []string{"-Bogus"}, err: ErrUnknownParameter, mention: []string{"command line", "-Bogus"}},
		{args: []string{"-SubscriberPortX", "1"}, err: ErrUnknownParameter},
		{args: []string{"-.iframe", "1"}, err: ErrUnknownParameter},
		{args: []string{"Debug"}, err: ErrSyntax},
		{args: []string{"-"}, err: ErrSyntax},
		{args: []string{"--Debug"}, err: ErrSyntax},
		{args: []string{"-d", "1", "stray"}, err: ErrSyntax, mention: []string{"stray"}},

		// -d and values of 1.
		{args: []string{"-d"}, check: func(c *Config) bool { return c.Debug }},
		{args: []string{"-D"}, check: func(c *Config) bool { return c.Debug }},
		{args: []string{"-d", "0"}, check: func(c *Config) bool { return !c.Debug }},
		{args: []string{"-Debug", "off"}, check: func(c *Config) bool { return !c.Debug }},
		{args: []string{"-Debug", "yes"}, check: func(c *Config) bool { return c.Debug }},
		{args: []string{"-Deb"}, check: func(c *Config) bool { return c.Debug }},
		{args: []string{"-Di", "x.html"}, check: func(c *Config) bool { return c.DirectoryIndex == "x.html" }},
		{args: []string{"-d", "-Persist"}, check: func(c *Config) bool { return c.Debug && c.Default.Persist }},
		{args: []string{"-UDPPort", "-d"}, check: func(c *Config) bool { return c.UDPPort == 1 && c.Debug }},
		{args: []string{"-PidFile"}, check: func(c *Config) bool { return c.PidFile == "1" }},
		{args: []string{"-BuiltinFiles", "0"}, check: func(c *Config) bool { return !c.BuiltinFiles }},

		// Values that begin with a dash.
		{args: []string{"-PingMessage", "--x"}, check: func(c *Config) bool { return c.Default.PingMessage == "-x" }},
		{args: []string{"-PingMessage", "---x"}, check: func(c *Config) bool { return c.Default.PingMessage == "--x" }},
		{args: []string{"-PingMessage", "--"}, check: func(c *Config) bool { return c.Default.PingMessage == "-" }},
		{args: []string{"-PingMessage", ""}, check: func(c *Config) bool { return c.Default.PingMessage == "" }},
		{args: []string{"-PingMessage", "-x"}, err: ErrUnknownParameter, mention: []string{"-x"}},
		{args: []string{"-MaxTime", "--5"}, err: ErrInvalidValue, mention: []string{"-MaxTime", `"-5"`}},

		// Escapes.
		{args: []string{"-PingMessage", `a\sb\tc\\d\0\r\n\q\`}, check: func(c *Config) bool { return c.Default.PingMessage == "a b\tc\\d\x00\r\nq\\" }},
		{args: []string{"-ControllerShutdownMsg", `bye\r\n`}, check: func(c *Config) bool { return c.ControllerShutdownMsg == "bye\r\n" }},

		// Per-mode values.
		{args: []string{"-MaxTime.iframe", "30"}, check: func(c *Config) bool {
			return c.Modes["iframe"].MaxTime == 30 && c.Default.MaxTime == 0 && c.Modes["longpoll"].MaxTime == 0
		}},
		{args: []string{"-MaxT.IFrame", "30"}, check: func(c *Config) bool { return c.Mode("iframe").MaxTime == 30 }},
		{args: []string{"-Persist.mine"}, check: func(c *Config) bool {
			m := c.Modes["mine"]
			return m != nil && m.Persist && m.Name == "mine" && m.HeaderTemplate == c.Default.HeaderTemplate
		}},
		{args: []string{"-PingInterval.flash", "0", "-PingInterval", "10"}, check: func(c *Config) bool {
			return c.Mode("flash").PingInterval == 0 && c.Mode("iframe").PingInterval == 10 && c.Default.PingInterval == 10
		}},
		{args: []string{"-ControllerPort.iframe", "1"}, err: ErrNotPerMode, mention: []string{"-ControllerPort.iframe"}},
		{args: []string{"-ConfigFileLocation.x", "/f"}, err: ErrNotPerMode},
		{args: []string{"-MaxTime.bad-mode", "1"}, err: ErrInvalidModeName},
		{args: []string{"-MaxTime.", "1"}, err: ErrInvalidModeName},
		{args: []string{"-MaxTime.a.b", "1"}, err: ErrInvalidModeName},
		{args: []string{"-MaxTime.ifráme", "1"}, err: ErrInvalidModeName},

		// Malformed values.
		{args: []string{"-MaxTime", "abc"}, err: ErrInvalidValue, mention: []string{"-MaxTime", `"abc"`}},
		{args: []string{"-MaxTime", "1.5"}, err: ErrInvalidValue},
		{args: []string{"-MaxTime", "99999999999999999999"}, err: ErrInvalidValue},
		{args: []string{"-MaxTime", " 7 "}, check: func(c *Config) bool { return c.Default.MaxTime == 7 }},
		{args: []string{"-ControllerPort", "65536"}, err: ErrInvalidValue},
		{args: []string{"-ControllerPort", "0"}, check: func(c *Config) bool { return c.ControllerPort == 0 }},
		{args: []string{"-RequestTimeout", "0"}, err: ErrInvalidValue},
		{args: []string{"-Debug", "2"}, err: ErrInvalidValue},
		{args: []string{"-Persist.iframe", "maybe"}, err: ErrInvalidValue, mention: []string{"-Persist.iframe"}},
		{args: []string{"-LogTimeFormat", "iso"}, err: ErrInvalidValue, mention: []string{"human", "unix"}},
		{args: []string{"-TextEncoding", "base64"}, err: ErrInvalidValue},
		{args: []string{"-TextEncoding", "JSON"}, check: func(c *Config) bool { return c.Default.TextEncoding == "json" }},
		{args: []string{"-SyslogFacility", "local3"}, check: func(c *Config) bool { return c.SyslogFacility == "local3" }},
		{args: []string{"-SyslogFacility", "bogus"}, err: ErrInvalidValue},

		// PingInterval: 0 is off, 1 and 2 count as 3.
		{args: []string{"-PingInterval", "0"}, check: func(c *Config) bool { return c.Default.PingInterval == 0 }},
		{args: []string{"-PingInterval", "1"}, check: func(c *Config) bool { return c.Default.PingInterval == 3 }},
		{args: []string{"-PingInterval", "2"}, check: func(c *Config) bool { return c.Default.PingInterval == 3 }},
		{args: []string{"-PingInterval", "3"}, check: func(c *Config) bool { return c.Default.PingInterval == 3 }},
		{args: []string{"-PingInterval", "60"}, check: func(c *Config) bool { return c.Default.PingInterval == 60 }},
		{args: []string{"-PingInterval.iframe", "2"}, check: func(c *Config) bool { return c.Mode("iframe").PingInterval == 3 }},
		{args: []string{"-PingInterval", "-1"}, err: ErrUnknownParameter},
		{args: []string{"-PingInterval", "--1"}, err: ErrInvalidValue},

		// The last value given wins.
		{args: []string{"-MaxTime", "1", "-MaxT", "2"}, check: func(c *Config) bool { return c.Default.MaxTime == 2 }},

		// Help and version.
		{args: []string{"-help"}, action: ActionHelp},
		{args: []string{"-Help"}, action: ActionHelp},
		{args: []string{"-hel"}, action: ActionHelp},
		{args: []string{"-h"}, action: ActionHelp},
		{args: []string{"-H"}, action: ActionHelp},
		{args: []string{"-he"}, err: ErrAmbiguousParameter, mention: []string{"HeaderTemplate", "Help"}},
		{args: []string{"-d", "-help", "-Bogus"}, action: ActionHelp},
		{args: []string{"-Bogus", "-help"}, err: ErrUnknownParameter},
		{args: []string{"-v"}, action: ActionVersion},
		{args: []string{"-version"}, action: ActionVersion},
		{args: []string{"-vers"}, action: ActionVersion},
		{args: []string{"-V"}, action: ActionVersion},
		{args: []string{"-Bogus", "-MaxTime", "x", "-v"}, action: ActionVersion},
		{args: []string{"-verbose"}, err: ErrUnknownParameter},
		{args: []string{"-PingMessage", "--v"}, check: func(c *Config) bool { return c.Default.PingMessage == "-v" }},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			c, action, err := loadFile("", tt.args...)
			if tt.err != nil {
				checkError(t, err, tt.err, tt.mention...)
				return
			}
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if action != tt.action {
				t.Fatalf("action %v; want %v", action, tt.action)
			}
			if action != ActionRun {
				if c != nil {
					t.Errorf("configuration returned with action %v", action)
				}
				return
			}
			checkInvariants(t, c)
			if !tt.check(c) {
				t.Errorf("unexpected configuration:\n%+v\nDefault %#v", *c, c.Default)
			}
		})
	}
}

func TestFile(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		check   func(*Config) bool
		err     error
		mention []string
	}{
		{name: "empty", file: "", check: func(c *Config) bool { return reflect.DeepEqual(c.Modes, Defaults().Modes) }},
		{name: "name value", file: "MaxTime 240\nSubscriberPort 8080\n",
			check: func(c *Config) bool { return c.Default.MaxTime == 240 && c.SubscriberPort == 8080 }},
		{name: "comments and blank lines", file: "# a comment\n\n   \n\t# indented comment\nMaxTime 1\n#MaxTime 2\n",
			check: func(c *Config) bool { return c.Default.MaxTime == 1 }},
		{name: "hash inside a value", file: "PingMessage a # b\n",
			check: func(c *Config) bool { return c.Default.PingMessage == "a # b" }},
		{name: "CRLF", file: "MaxTime 3\r\nPingMessage x\r\r\n[iframe]\r\nMaxTime 4\r\n",
			check: func(c *Config) bool {
				return c.Default.MaxTime == 3 && c.Default.PingMessage == "x" && c.Mode("iframe").MaxTime == 4
			}},
		{name: "no final newline", file: "MaxTime 3", check: func(c *Config) bool { return c.Default.MaxTime == 3 }},
		{name: "value is the rest of the line", file: "PingMessage \t  a  b  \n",
			check: func(c *Config) bool { return c.Default.PingMessage == "a  b  " }},
		{name: "empty value", file: "SubscriberShutdownMsg\nControllerShutdownMsg   \n",
			check: func(c *Config) bool { return c.Default.SubscriberShutdownMsg == "" && c.ControllerShutdownMsg == "" }},
		{name: "tab separator", file: "MaxTime\t9\n", check: func(c *Config) bool { return c.Default.MaxTime == 9 }},
		{name: "indented line", file: "  MaxTime 9\n", check: func(c *Config) bool { return c.Default.MaxTime == 9 }},
		{name: "names in any case", file: "maxtime 9\nSUBSCRIBERIP 10.0.0.1\n",
			check: func(c *Config) bool { return c.Default.MaxTime == 9 && c.SubscriberIP == "10.0.0.1" }},
		{name: "escapes", file: `PingMessage \sa\tb\\n\0\r\n\x` + "\n",
			check: func(c *Config) bool { return c.Default.PingMessage == " a\tb\\n\x00\r\nx" }},
		{name: "escaped leading space", file: `PingMessage \s x` + "\n", check: func(c *Config) bool { return c.Default.PingMessage == "  x" }},
		{name: "double dash", file: "PingMessage --x\nMessageTemplate -y\n",
			check: func(c *Config) bool { return c.Default.PingMessage == "-x" && c.Default.MessageTemplate == "-y" }},
		{name: "escaped double dash", file: `PingMessage \--x` + "\n", check: func(c *Config) bool { return c.Default.PingMessage == "--x" }},
		{name: "sections", file: "MaxTime 1\n[iframe]\nMaxTime 2\n[ Mine ]\nPersist 1\n\n[iframe]\nPersist 0\n",
			check: func(c *Config) bool {
				i, m := c.Mode("iframe"), c.Mode("mine")
				return c.Default.MaxTime == 1 && i.MaxTime == 2 && !i.Persist && m.Persist && m.MaxTime == 1 && m.Name == "mine" &&
					strings.Contains(i.HeaderTemplate, "parent.Meteor.register(this);")
			}},
		{name: "section overrides a built-in value by value", file: "[flash]\nPingMessage p\n",
			check: func(c *Config) bool {
				f := c.Mode("flash")
				return f.PingMessage == "p" && f.MessageTemplate == "~id~/~channel~/~text~\x00" && f.TextEncoding == "raw"
			}},
		{name: "bool words", file: "Persist true\nDebug ON\nBuiltinFiles no\n",
			check: func(c *Config) bool { return c.Default.Persist && c.Debug && !c.BuiltinFiles }},

		{name: "unknown name", file: "MaxTime 1\nBogus 2\n", err: ErrUnknownParameter, mention: []string{DefaultConfigFile + ":2", "Bogus"}},
		{name: "no abbreviations in a file", file: "MaxT 2\n", err: ErrUnknownParameter, mention: []string{":1", "MaxT"}},
		{name: "dash before a name", file: "-MaxTime 2\n", err: ErrUnknownParameter},
		{name: "unknown name in a section", file: "[iframe]\n\nNope 1\n", err: ErrUnknownParameter, mention: []string{":3"}},
		{name: "global parameter in a section", file: "[iframe]\nControllerPort 1\n", err: ErrNotPerMode,
			mention: []string{":2", "ControllerPort", "[iframe]"}},
		{name: "ConfigFileLocation", file: "ConfigFileLocation /x\n", err: ErrNotInFile, mention: []string{"ConfigFileLocation"}},
		{name: "Help", file: "Help\n", err: ErrNotInFile},
		{name: "malformed int", file: "\nMaxTime soon\n", err: ErrInvalidValue, mention: []string{":2", "MaxTime", `"soon"`}},
		{name: "malformed int in a section", file: "[iframe]\nMaxMessages -1\n", err: ErrInvalidValue, mention: []string{":2"}},
		{name: "empty int", file: "MaxTime\n", err: ErrInvalidValue},
		{name: "malformed bool", file: "Persist 2\n", err: ErrInvalidValue},
		{name: "malformed encoding", file: "[flash]\nTextEncoding utf8\n", err: ErrInvalidValue, mention: []string{"js, json, html, raw"}},
		{name: "bad mode name", file: "[i-frame]\n", err: ErrInvalidModeName, mention: []string{":1"}},
		{name: "empty mode name", file: "[]\n", err: ErrInvalidModeName},
		{name: "blank mode name", file: "[  ]\n", err: ErrInvalidModeName},
		{name: "two words", file: "[a b]\n", err: ErrInvalidModeName},
		{name: "unclosed section", file: "[iframe\n", err: ErrSyntax, mention: []string{":1"}},
		{name: "text after section", file: "[iframe] x\n", err: ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := loadFile(tt.file)
			if tt.err != nil {
				checkError(t, err, tt.err, tt.mention...)
				return
			}
			if err != nil {
				t.Fatalf("error %v", err)
			}
			checkInvariants(t, c)
			if !tt.check(c) {
				t.Errorf("unexpected configuration:\n%+v\nDefault %#v", *c, c.Default)
			}
		})
	}
}

// TestPrecedence walks the chain: command line per mode > file per mode >
// built-in mode > command line > file > default, with MaxMessages, which
// the built-in longpoll mode sets to 1.
func TestPrecedence(t *testing.T) {
	tests := []struct {
		name                 string
		file                 string
		args                 []string
		global, long, iframe int
		controllerPort       int
	}{
		{name: "defaults", global: 0, long: 1, iframe: 0, controllerPort: 4671},
		{name: "file", file: "MaxMessages 2\nControllerPort 5000\n", global: 2, long: 1, iframe: 2, controllerPort: 5000},
		{name: "command line over file", file: "MaxMessages 2\nControllerPort 5000\n",
			args: []string{"-MaxMessages", "3", "-ControllerPort", "6000"}, global: 3, long: 1, iframe: 3, controllerPort: 6000},
		{name: "command line only", args: []string{"-MaxMessages", "3"}, global: 3, long: 1, iframe: 3, controllerPort: 4671},
		{name: "file mode over built-in mode", file: "MaxMessages 2\n[longpoll]\nMaxMessages 4\n",
			args: []string{"-MaxMessages", "3"}, global: 3, long: 4, iframe: 3, controllerPort: 4671},
		{name: "file mode over command line global", file: "[iframe]\nMaxMessages 4\n",
			args: []string{"-MaxMessages", "3"}, global: 3, long: 1, iframe: 4, controllerPort: 4671},
		{name: "command line mode over everything", file: "MaxMessages 2\n[longpoll]\nMaxMessages 4\n",
			args:   []string{"-MaxMessages.longpoll", "5", "-MaxMessages", "3", "-MaxMessages.iframe", "6"},
			global: 3, long: 5, iframe: 6, controllerPort: 4671},
		{name: "file global set after a section line is still per mode", file: "[iframe]\nMaxMessages 4\n[longpoll]\nMaxMessages 7\n",
			global: 0, long: 7, iframe: 4, controllerPort: 4671},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustLoad(t, tt.file, tt.args...)
			got := []int{c.Default.MaxMessages, c.Mode("longpoll").MaxMessages, c.Mode("iframe").MaxMessages,
				c.Mode("unnamed").MaxMessages, c.ControllerPort}
			want := []int{tt.global, tt.long, tt.iframe, tt.global, tt.controllerPort}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("MaxMessages global, longpoll, iframe, unnamed; ControllerPort = %v; want %v", got, want)
			}
		})
	}
}

func TestConfigFileLocation(t *testing.T) {
	fsys := files{DefaultConfigFile: "MaxTime 1\n", "/other.conf": "MaxTime 2\n"}
	perm := func(string) ([]byte, error) {
		return nil, &fs.PathError{Op: "open", Path: DefaultConfigFile, Err: fs.ErrPermission}
	}
	tests := []struct {
		name    string
		args    []string
		read    func(string) ([]byte, error)
		maxTime int
		err     error
	}{
		{name: "default file", read: fsys.read, maxTime: 1},
		{name: "missing default file", read: files{}.read, maxTime: 0},
		{name: "given file", args: []string{"-ConfigFileLocation", "/other.conf"}, read: fsys.read, maxTime: 2},
		{name: "abbreviated", args: []string{"-Conf", "/other.conf"}, read: fsys.read, maxTime: 2},
		{name: "missing given file", args: []string{"-ConfigFileLocation", "/missing.conf"}, read: fsys.read, err: fs.ErrNotExist},
		{name: "given default file, missing", args: []string{"-ConfigFileLocation", DefaultConfigFile}, read: files{}.read, err: fs.ErrNotExist},
		{name: "unreadable default file", read: perm, err: fs.ErrPermission},
		{name: "no file", args: []string{"-ConfigFileLocation", ""}, read: func(p string) ([]byte, error) {
			t.Errorf("read %q", p)
			return nil, errors.New("read")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := Load(tt.args, tt.read)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error %v; want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Default.MaxTime != tt.maxTime {
				t.Errorf("MaxTime %d; want %d", c.Default.MaxTime, tt.maxTime)
			}
		})
	}
	// The error of a missing given file names it.
	_, _, err := Load([]string{"-ConfigFileLocation", "/missing.conf"}, fsys.read)
	if err == nil || !strings.Contains(err.Error(), "/missing.conf") {
		t.Errorf("error %v does not name /missing.conf", err)
	}
	// A file that names itself is refused; the location comes from the command line.
	c, _, err := Load([]string{"-ConfigFileLocation", "/other.conf"}, fsys.read)
	if err != nil || c.ConfigFileLocation != "/other.conf" {
		t.Errorf("ConfigFileLocation %q, %v", c.ConfigFileLocation, err)
	}
}

func TestReload(t *testing.T) {
	fsys := files{"/m.conf": "MaxTime 1\nControllerPort 5000\n[iframe]\nPersist 0\n"}
	c, _, err := Load([]string{"-Conf", "/m.conf", "-ControllerPort", "6000"}, fsys.read)
	if err != nil {
		t.Fatal(err)
	}
	fsys["/m.conf"] = "MaxTime 2\nControllerPort 5001\n[mine]\nPersist 1\n"
	c2, err := c.Reload(fsys.read)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Default.MaxTime != 2 || c2.ControllerPort != 6000 || !c2.Mode("mine").Persist || !c2.Mode("iframe").Persist {
		t.Errorf("reloaded: MaxTime %d, ControllerPort %d, mine %+v, iframe Persist %v",
			c2.Default.MaxTime, c2.ControllerPort, c2.Mode("mine"), c2.Mode("iframe").Persist)
	}
	if c.Default.MaxTime != 1 || c.Mode("iframe").Persist || c.Modes["mine"] != nil {
		t.Errorf("Reload changed the old configuration")
	}
	fsys["/m.conf"] = "MaxTime x\n"
	if _, err := c.Reload(fsys.read); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("reload of a broken file: %v", err)
	}
	// A configuration from Defaults reloads the default file.
	c3, err := Defaults().Reload(files{DefaultConfigFile: "MaxTime 7\n"}.read)
	if err != nil || c3.Default.MaxTime != 7 {
		t.Errorf("Defaults().Reload: %v", err)
	}
}

func TestMode(t *testing.T) {
	c := mustLoad(t, "[mine]\nPersist 1\n")
	for _, tt := range []struct {
		name string
		want *Mode
	}{
		{"iframe", c.Modes["iframe"]},
		{"IFrame", c.Modes["iframe"]},
		{"mine", c.Modes["mine"]},
		{"MINE", c.Modes["mine"]},
		{"", &c.Default},
		{"stream", &c.Default},
	} {
		if got := c.Mode(tt.name); got != tt.want {
			t.Errorf("Mode(%q) = %p (%q); want %p", tt.name, got, got.Name, tt.want)
		}
	}
	want := []string{"flash", "flashloadvars", "iframe", "longpoll", "mine", "simplepoll", "smartpoll", "xhrinteractive"}
	if got := c.ModeNames(); !reflect.DeepEqual(got, want) {
		t.Errorf("ModeNames() = %v; want %v", got, want)
	}
}

func TestUnescape(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{``, ``},
		{`plain`, `plain`},
		{`\r\n`, "\r\n"},
		{`\t`, "\t"},
		{`\0`, "\x00"},
		{`\s`, " "},
		{`\\`, `\`},
		{`\\n`, `\n`},
		{`\\\n`, "\\\n"},
		{`\x\~`, `x~`},
		{`end\`, `end\`},
		{"a\\\nb", "a\\\nb"},
		{`\é`, `é`},
	} {
		if got := unescape(tt.in); got != tt.want {
			t.Errorf("unescape(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestUsage(t *testing.T) {
	var b bytes.Buffer
	Usage(&b)
	out := b.String()
	for _, p := range params {
		i := strings.Index(out, "\n  -"+p.name+"\n")
		if p.perMode {
			i = strings.Index(out, "\n  -"+p.name+"  (per mode)\n")
		}
		if i < 0 {
			t.Errorf("Usage lacks -%s (per mode: %v)", p.name, p.perMode)
			continue
		}
		entry, _, _ := strings.Cut(out[i+1:], "\n\n")
		if p.set != nil && !strings.Contains(entry, "Default: "+p.def) && !(p.def == "" && strings.Contains(entry, "Default: (empty)")) {
			t.Errorf("Usage entry for -%s lacks its default %q:\n%s", p.name, p.def, entry)
		}
	}
	for _, s := range []string{"-version", Version, "-d", "-h", DefaultConfigFile} {
		if !strings.Contains(out, s) {
			t.Errorf("Usage lacks %q", s)
		}
	}
}

func TestVersion(t *testing.T) {
	if Version != "1.06-go.1" {
		t.Errorf("Version = %q", Version)
	}
	if _, a, err := Load([]string{"-version"}, files{}.read); a != ActionVersion || err != nil {
		t.Errorf("Load(-version) = %v, %v", a, err)
	}
	for a, s := range map[Action]string{ActionRun: "run", ActionHelp: "help", ActionVersion: "version", 7: "Action(7)"} {
		if a.String() != s {
			t.Errorf("%d.String() = %q; want %q", int(a), a.String(), s)
		}
	}
}

// TestParamsTable checks the table itself: names unique and not prefixes
// that shadow others by accident, per-mode setters writing only the mode,
// global setters only the Config, and defaults that parse.
func TestParamsTable(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range params {
		if seen[strings.ToLower(p.name)] {
			t.Errorf("duplicate parameter %s", p.name)
		}
		seen[strings.ToLower(p.name)] = true
		if p.desc == "" {
			t.Errorf("%s has no description", p.name)
		}
		if p.set == nil {
			continue
		}
		var c Config
		var m Mode
		if err := p.set(&c, &m, unescape(p.def)); err != nil {
			t.Errorf("%s: default %q: %v", p.name, p.def, err)
		}
		// Some value other than the zero one shows which struct the setter
		// writes: the Mode for a per-mode parameter, else the Config.
		for _, v := range []string{"7", "1", "x", "unix", "json", "daemon", "700", "redis", "redis://h:1", "warn", "0123456789abcdef0123456789abcdef"} {
			c, m = Config{}, Mode{}
			if p.set(&c, &m, v) == nil && !(reflect.ValueOf(c).IsZero() && reflect.ValueOf(m).IsZero()) {
				break
			}
		}
		if wroteMode, wroteConfig := !reflect.ValueOf(m).IsZero(), !reflect.ValueOf(c).IsZero(); wroteMode != p.perMode || wroteConfig == p.perMode {
			t.Errorf("%s (per mode %v): setter wrote Mode %v, Config %v", p.name, p.perMode, wroteMode, wroteConfig)
		}
		// A per-mode parameter must be settable in a [mode] section, a
		// global one must not.
		_, _, err := parseFile("f", []byte("[m]\n"+p.name+" "+p.def+"\n"))
		if p.perMode != (err == nil) && !p.cmdOnly {
			t.Errorf("%s in a section: %v", p.name, err)
		}
	}
	// Every exported Config and Mode field is set by exactly one parameter.
	fields := map[string]int{}
	for _, typ := range []reflect.Type{reflect.TypeFor[Config](), reflect.TypeFor[Mode]()} {
		for f := range typ.Fields() {
			if f.IsExported() && f.Name != "Default" && f.Name != "Modes" && f.Name != "Name" {
				fields[f.Name] = 0
			}
		}
	}
	for _, p := range params {
		if _, ok := fields[p.name]; ok {
			fields[p.name]++
		} else if p.set != nil {
			t.Errorf("parameter %s sets no field of that name", p.name)
		}
	}
	for f, n := range fields {
		if n != 1 {
			t.Errorf("field %s is set by %d parameters", f, n)
		}
	}
}

// TestDocs checks that docs/configuration.md lists every parameter with its
// default.
func TestDocs(t *testing.T) {
	data, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, p := range params {
		row := "| `" + p.name + "` |"
		i := strings.Index(doc, row)
		if i < 0 {
			t.Errorf("docs/configuration.md has no row %q", row)
			continue
		}
		line, _, _ := strings.Cut(doc[i:], "\n")
		if p.set != nil && p.def != "" && !strings.Contains(line, p.def) && len(p.def) < 60 {
			t.Errorf("docs/configuration.md row for %s lacks its default %q: %s", p.name, p.def, line)
		}
	}
}

// TestReusePortNeedsRedis: ReusePort 1 with Engine memory stops start-up
// (and a reload) with an error that names both settings; with Engine
// redis it is taken, and the other settings of several processes per box
// parse.
func TestReusePortNeedsRedis(t *testing.T) {
	for _, tc := range []struct {
		file string
		args []string
	}{
		{"ReusePort 1\n", nil},
		{"", []string{"-ReusePort", "1"}},
		{"Engine memory\n", []string{"-ReusePort", "1"}},
	} {
		_, _, err := loadFile(tc.file, tc.args...)
		if !errors.Is(err, ErrConflict) {
			t.Errorf("file %q, args %q: error %v; want ErrConflict", tc.file, tc.args, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "ReusePort") || !strings.Contains(msg, "Engine redis") || !strings.Contains(msg, "Engine memory") {
			t.Errorf("the error does not name both settings: %s", msg)
		}
	}
	c := mustLoad(t, "Engine redis\nReusePort 1\nMaxConnections 5000\nDrainTime 30\n")
	if !c.ReusePort || c.MaxConnections != 5000 || c.DrainTime != 30 {
		t.Errorf("ReusePort %v, MaxConnections %d, DrainTime %d", c.ReusePort, c.MaxConnections, c.DrainTime)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	// A reload that would turn Engine memory under ReusePort is refused.
	_, err := c.Reload(files{DefaultConfigFile: "ReusePort 1\n"}.read)
	if !errors.Is(err, ErrConflict) {
		t.Errorf("reload: %v; want ErrConflict", err)
	}
	if _, _, err := loadFile("DrainTime 3601\n"); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("DrainTime 3601: %v", err)
	}
}

// TestCredentialRequired: no path publishes without a credential off
// loopback. A ControllerIP that is not loopback (every interface
// included) needs ControllerToken, and UDPPort needs UDPIP on loopback,
// token or not: start-up and a reload are refused with
// ErrCredentialRequired and an error that says what to set.
func TestCredentialRequired(t *testing.T) {
	for _, tc := range []struct {
		file string
		name string // the setting the error names
	}{
		{"ControllerIP *\n", "ControllerIP"},
		{"ControllerIP\n", "ControllerIP"},
		{"ControllerIP 0.0.0.0\n", "ControllerIP"},
		{"ControllerIP ::\n", "ControllerIP"},
		{"ControllerIP 192.0.2.7\n", "ControllerIP"},
		{"ControllerIP example.com\n", "ControllerIP"},
		{"UDPPort 4673\nUDPIP *\n", "UDPIP"},
		{"UDPPort 4673\nUDPIP 0.0.0.0\nControllerToken s3cret\n", "UDPIP"},
		{"UDPPort 4673\nUDPIP 192.0.2.7\n", "UDPIP"},
	} {
		_, _, err := loadFile(tc.file)
		if !errors.Is(err, ErrCredentialRequired) {
			t.Errorf("file %q: error %v; want ErrCredentialRequired", tc.file, err)
			continue
		}
		msg := err.Error()
		if !strings.Contains(msg, tc.name) || !strings.Contains(msg, "127.0.0.1") {
			t.Errorf("file %q: the error does not say what to set: %s", tc.file, msg)
		}
		if tc.name == "ControllerIP" && !strings.Contains(msg, "ControllerToken") {
			t.Errorf("file %q: the error does not name ControllerToken: %s", tc.file, msg)
		}
	}
	for _, file := range []string{
		"",
		"ControllerIP 127.0.0.1\n",
		"ControllerIP 127.3.4.5\n",
		"ControllerIP ::1\n",
		"ControllerIP [::1]\n",
		"ControllerIP localhost\n",
		"ControllerIP *\nControllerToken s3cret\n",
		"ControllerIP 192.0.2.7\nControllerToken s3cret\n",
		"UDPPort 4673\n", // UDPIP defaults to 127.0.0.1
		"UDPPort 4673\nUDPIP ::1\n",
		"UDPIP *\n", // UDP off: UDPIP is not used
	} {
		c := mustLoad(t, file)
		if err := c.Validate(); err != nil {
			t.Errorf("file %q: Validate: %v", file, err)
		}
	}
	// Validate refuses a configuration built in code, too.
	c := Defaults()
	c.ControllerIP = ""
	if err := c.Validate(); !errors.Is(err, ErrCredentialRequired) {
		t.Errorf("Validate of ControllerIP \"\": %v", err)
	}
	c.ControllerToken = "s3cret"
	if err := c.Validate(); err != nil {
		t.Errorf("Validate with a token: %v", err)
	}
	// A reload that clears the token of a controller off loopback is
	// refused.
	c = mustLoad(t, "ControllerIP *\nControllerToken s3cret\n")
	if _, err := c.Reload(files{DefaultConfigFile: "ControllerIP *\n"}.read); !errors.Is(err, ErrCredentialRequired) {
		t.Errorf("reload without the token: %v; want ErrCredentialRequired", err)
	}
}

func TestControllerLimits(t *testing.T) {
	c := mustLoad(t, "ControllerToken  s3 cret\nControllerIdleTimeout 30\nMaxControllerConnections 0\n")
	if c.ControllerToken != "s3 cret" || c.ControllerIdleTimeout != 30 || c.MaxControllerConnections != 0 {
		t.Errorf("token %q, idle %d, max %d", c.ControllerToken, c.ControllerIdleTimeout, c.MaxControllerConnections)
	}
	for _, file := range []string{"ControllerIdleTimeout -1\n", "MaxControllerConnections x\n"} {
		if _, _, err := loadFile(file); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("%q: %v", file, err)
		}
	}
	for _, arg := range []string{" x", "x ", "a\nb", "a\rb"} {
		if _, _, err := loadFile("", "-ControllerToken", arg); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("-ControllerToken %q: %v", arg, err)
		}
	}
}

func TestErrorString(t *testing.T) {
	_, _, err := loadFile("\n\n[iframe]\nMaxTime x\n")
	want := DefaultConfigFile + `:4: MaxTime: invalid value "x" (want a whole number from 0 to 2147483647)`
	if err == nil || err.Error() != want {
		t.Errorf("error %q; want %q", err, want)
	}
	_, _, err = Load([]string{"-Sub"}, files{}.read)
	if err == nil || !strings.HasPrefix(err.Error(), "command line: -Sub: ambiguous parameter name (could be ") {
		t.Errorf("error %q", err)
	}
}

// TestHints checks that a refused setting says what was probably meant.
func TestHints(t *testing.T) {
	for _, c := range []struct {
		file    string
		args    []string
		err     error
		mention []string
	}{
		{args: []string{"-Enigne", "redis"}, err: ErrUnknownParameter, mention: []string{"did you mean -Engine?"}},
		{args: []string{"-SubscriberPortX", "1"}, err: ErrUnknownParameter, mention: []string{"did you mean -SubscriberPort?"}},
		{args: []string{"-PingIntervall", "5"}, err: ErrUnknownParameter, mention: []string{"did you mean -PingInterval?"}},
		{args: []string{"-SubscriberPort=80"}, err: ErrUnknownParameter, mention: []string{"not `-Name=value`", "write `-SubscriberPort 80`"}},
		{args: []string{"--Debug"}, err: ErrSyntax, mention: []string{"single dash: -Debug"}},
		{args: []string{"-Persist", "maybe"}, err: ErrInvalidValue, mention: []string{"1, 0, true, false, yes, no, on, off"}},
		{args: []string{"-LogFormat", "xml"}, err: ErrInvalidValue, mention: []string{"text, json"}},
		{args: []string{"-CORSOrigins", "https://a.example https://b.example/app"}, err: ErrInvalidValue,
			mention: []string{`"https://b.example/app" has a path`, "write https://b.example"}},
		{args: []string{"-CORSOrigins", "https://a.example?x"}, err: ErrInvalidValue, mention: []string{"has a path"}},
		{args: []string{"-CORSOrigins", "a.example"}, err: ErrInvalidValue, mention: []string{"is no origin", "scheme://host"}},
		{file: "MaxMesages 3\n", err: ErrUnknownParameter, mention: []string{":1:", "did you mean MaxMessages?"}},
		{file: "SubscriberP 80\n", err: ErrUnknownParameter, mention: []string{"did you mean SubscriberPort?"}},
		{file: "Hlp 1\n", err: ErrUnknownParameter},
		{file: "# x\nSubscriberPort=4670\n", err: ErrUnknownParameter,
			mention: []string{":2:", "settings are `Name value`, not `Name=value`", "write `SubscriberPort 4670`"}},
		{file: "SubscriberPort = 4670\n", err: ErrInvalidValue, mention: []string{"not `Name = value`"}},
		{file: "CORSOrigins https://app.example/path\n", err: ErrInvalidValue, mention: []string{"has a path"}},
	} {
		_, _, err := loadFile(c.file, c.args...)
		checkError(t, err, c.err, c.mention...)
		if c.file == "Hlp 1\n" && strings.Contains(err.Error(), "did you mean") {
			t.Errorf("file error %q suggests a command-line-only parameter", err)
		}
	}
	for _, ok := range []string{"*", "null", "https://a.example, http://b.example:8080/", "http://[::1]:4670"} {
		if c := mustLoad(t, "", "-CORSOrigins", ok); c.CORSOrigins != ok {
			t.Errorf("CORSOrigins %q loaded as %q", ok, c.CORSOrigins)
		}
	}
	for _, args := range [][]string{{"--help"}, {"--HELP"}, {"-Debug", "1", "--help"}} {
		if _, a, err := loadFile("", args...); err != nil || a != ActionHelp {
			t.Errorf("Load(%q) = %v, %v; want help", args, a, err)
		}
	}
}

// TestLogLevel checks LogLevel's words and that Debug 1 means debug.
func TestLogLevel(t *testing.T) {
	for _, c := range []struct {
		args []string
		want slog.Level
	}{
		{nil, slog.LevelInfo},
		{[]string{"-LogLevel", "debug"}, slog.LevelDebug},
		{[]string{"-LogLevel", "WARN"}, slog.LevelWarn},
		{[]string{"-LogLevel", "error"}, slog.LevelError},
		{[]string{"-d"}, slog.LevelDebug},
		{[]string{"-LogLevel", "error", "-Debug", "1"}, slog.LevelDebug},
	} {
		if got := mustLoad(t, "", c.args...).Level(); got != c.want {
			t.Errorf("Load(%q).Level() = %v; want %v", c.args, got, c.want)
		}
	}
	_, _, err := loadFile("LogLevel verbose\n")
	checkError(t, err, ErrInvalidValue, "debug, info, warn, error")
	// -Log still abbreviates LogTimeFormat, the one 1.06 parameter.
	if c := mustLoad(t, "", "-Log", "unix"); c.LogTimeFormat != "unix" {
		t.Errorf("-Log unix set LogTimeFormat %q", c.LogTimeFormat)
	}
}

// TestSubscriberAuthNeedsKey: SubscriberAuth 1 without any key stops
// start-up with an error naming the settings; a short JWTSecret is refused.
func TestSubscriberAuthNeedsKey(t *testing.T) {
	_, _, err := Load([]string{"-ConfigFileLocation", "", "-SubscriberAuth", "1"}, nil)
	if !errors.Is(err, ErrCredentialRequired) || !strings.Contains(err.Error(), "JWTSecret") {
		t.Errorf("SubscriberAuth 1 without a key: %v", err)
	}
	key := strings.Repeat("k", 32)
	for _, name := range []string{"JWTSecret", "SignedURLSecret"} {
		if _, _, err := Load([]string{"-ConfigFileLocation", "", "-SubscriberAuth", "1", "-" + name, key}, nil); err != nil {
			t.Errorf("%s of 32 bytes: %v", name, err)
		}
		if _, _, err := Load([]string{"-ConfigFileLocation", "", "-" + name, key[:31]}, nil); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("%s of 31 bytes: %v", name, err)
		}
	}
}

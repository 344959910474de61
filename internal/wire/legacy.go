// Package transport turns hub deliveries into bytes on the wire, one file per
// transport. legacy.go holds the template modes of Meteor 1.06 (iframe,
// xhrinteractive, longpoll, the polling modes, and any mode a configuration
// file defines).
package wire

import (
	"strconv"
	"strings"
	"time"

	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/engine"
	"github.com/meteorpush/meteor/internal/tmpl"
)

// LegacyMode is one template mode, compiled. A LegacyMode is an
// engine.Encoder: a message is rendered once per mode, and every subscriber
// in that mode gets the same bytes.
type LegacyMode struct {
	Name         string
	Persist      bool
	MaxMessages  int
	MaxTime      time.Duration
	PingInterval time.Duration
	Ping         []byte // PingMessage, written as it is
	Shutdown     []byte // SubscriberShutdownMsg, written as it is

	header, info, message *tmpl.Template
	escape                tmpl.Escaper
	http                  bool // HeaderTemplate starts an HTTP/1 answer
	sandboxed             bool // not raw, or its header carries SandboxHeader
}

// NewLegacyMode compiles a mode's settings.
func NewLegacyMode(m *config.Mode) (*LegacyMode, error) {
	esc, err := tmpl.EscaperFor(m.TextEncoding)
	if err != nil {
		return nil, err
	}
	l := &LegacyMode{
		Name:         m.Name,
		Persist:      m.Persist,
		MaxMessages:  m.MaxMessages,
		MaxTime:      time.Duration(m.MaxTime) * time.Second,
		PingInterval: time.Duration(m.PingInterval) * time.Second,
		Ping:         []byte(m.PingMessage),
		Shutdown:     []byte(m.SubscriberShutdownMsg),
		info:         tmpl.Compile(m.ChannelInfoTemplate),
		message:      tmpl.Compile(m.MessageTemplate),
		escape:       esc,
		http:         httpHeader(m.HeaderTemplate),
	}
	header, ok := sandboxed(m.HeaderTemplate, m.TextEncoding)
	l.header, l.sandboxed = tmpl.Compile(header), ok
	return l, nil
}

// SandboxHeader is the header that a mode pasting message text raw into an
// HTTP response carries: the browser renders such a response, if at all,
// as a document of no origin that runs no script, and sniffs no other type
// into it. Without it a published "<script>" opened from a raw mode (the
// flash modes, TextEncoding raw) would run as a page of the subscriber
// origin.
const SandboxHeader = "Content-Security-Policy: sandbox\r\nX-Content-Type-Options: nosniff\r\n"

// sandboxed returns the HeaderTemplate of a mode with TextEncoding raw with
// SandboxHeader added at the end of its HTTP header (before its first empty
// line, CRLF or a bare LF, which browsers accept too), and reports whether
// it could; for another encoding it returns the template as it is and true.
// A template with no HTTP header (the flash mode writes records from the
// first byte, as an HTTP/0.9 answer), or whose header does not end within
// it, has nothing to add to; Settings.PublisherDocuments (package
// subscriber) decides what that means for the HTTP API.
func sandboxed(header, encoding string) (string, bool) {
	if encoding != "raw" {
		return header, true
	}
	if !httpHeader(header) {
		return header, false
	}
	crlf := strings.Index(header, "\r\n\r\n")
	lf := strings.Index(header, "\n\n")
	switch {
	case lf >= 0 && (crlf < 0 || lf < crlf):
		return header[:lf+1] + strings.ReplaceAll(SandboxHeader, "\r\n", "\n") + header[lf+1:], true
	case crlf >= 0:
		return header[:crlf+2] + SandboxHeader + header[crlf+2:], true
	}
	return header, false
}

// httpHeader reports whether a HeaderTemplate starts an HTTP/1 answer, as
// a browser reads one: "HTTP/", in either case.
func httpHeader(header string) bool {
	return len(header) >= 5 && strings.EqualFold(header[:5], "HTTP/")
}

// Sandboxed reports whether the mode's answers carry SandboxHeader, or need
// none (its text is escaped). A mode for which it reports false hands a
// browser publisher text, as it is, in an answer of the subscriber origin.
func (l *LegacyMode) Sandboxed() bool { return l.sandboxed }

// HTTP09 reports whether the mode's answer has no HTTP header: browsers
// load such an answer only on ports 80 and 443.
func (l *LegacyMode) HTTP09() bool { return !l.http }

// Encode renders m with the mode's MessageTemplate. It implements
// engine.Encoder; callers use m.Encoded(mode) to get the cached result.
func (l *LegacyMode) Encode(m *engine.Message) []byte {
	return l.message.Render(make([]byte, 0, len(m.Text)+64), func(dst []byte, name string) []byte {
		switch name {
		case "id":
			return strconv.AppendUint(dst, m.ID, 10)
		case "channel":
			return l.escape(dst, m.Channel)
		case "text":
			return l.escape(dst, m.Text)
		case "timestamp":
			return strconv.AppendInt(dst, m.Time.Unix(), 10)
		}
		return dst
	})
}

// Header renders the mode's HeaderTemplate. server is the program name,
// info the rendered channel information.
func (l *LegacyMode) Header(status, server string, now time.Time, info []byte) []byte {
	return l.header.Render(make([]byte, 0, 512+len(info)), func(dst []byte, name string) []byte {
		switch name {
		case "status":
			return append(dst, status...)
		case "server":
			return append(dst, server...)
		case "servertime":
			return strconv.AppendInt(dst, now.Unix(), 10)
		case "channelinfo":
			return append(dst, info...)
		}
		return dst
	})
}

// AppendChannelInfo renders the mode's ChannelInfoTemplate for one channel.
func (l *LegacyMode) AppendChannelInfo(dst []byte, name string, h engine.History, subscribers int) []byte {
	return l.info.Render(dst, func(dst []byte, field string) []byte {
		switch field {
		case "name":
			return append(dst, name...)
		case "lastMsgID":
			return strconv.AppendUint(dst, h.Stream.Last, 10)
		case "messageCount":
			return strconv.AppendInt(dst, int64(h.Stream.Count), 10)
		case "subscriberCount":
			return strconv.AppendInt(dst, int64(subscribers), 10)
		}
		return dst
	})
}

package config

import "strings"

// httpHeader is 1.06's default HeaderTemplate: the HTTP status line and
// headers that most modes start their response with.
const httpHeader = `HTTP/1.1 ~status~\r\nServer: ~server~\r\nContent-Type: text/html; charset=utf-8\r\nPragma: no-cache\r\nCache-Control: no-cache, no-store, must-revalidate\r\nExpires: Thu, 1 Jan 1970 00:00:00 GMT\r\n\r\n`

// iframePage follows the header in the iframe mode: the page that hands
// itself to the parent's Meteor client. 1.06 set document.domain to the
// last two labels of the host name; browsers now throw when that differs
// from the page's domain (on localhost or an IP address, for instance), which
// stopped the script before parent.Meteor.register, so the assignment is
// wrapped in try/catch.
const iframePage = `<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">\r\n` +
	`<meta http-equiv="Cache-Control" content="no-store">\r\n` +
	`<meta http-equiv="Cache-Control" content="no-cache">\r\n` +
	`<meta http-equiv="Pragma" content="no-cache">\r\n` +
	`<meta http-equiv="Expires" content="Thu, 1 Jan 1970 00:00:00 GMT">\r\n` +
	`<script type="text/javascript">\r\n` +
	`window.onError = null;\r\n` +
	`try {\r\n` +
	`var domainparts = document.domain.split(".");\r\n` +
	`document.domain = domainparts[domainparts.length-2]+"."+domainparts[domainparts.length-1];\r\n` +
	`} catch (e) {}\r\n` +
	`parent.Meteor.register(this);\r\n` +
	`</script>\r\n` +
	`</head>\r\n` +
	`<body onload="try { parent.Meteor.reset(this) } catch (e) {}">\r\n` +
	`~channelinfo~\r\n`

// xhrPadding follows the header in the xhrinteractive mode: old browsers
// fired no readystatechange until this much of the body had arrived.
var xhrPadding = strings.Repeat(".", 1409)

// builtinModes are the modes of 1.06's sample configuration file
// (meteord.conf.dist), in file syntax, read as if from a file read before
// the user's. The sample's global lines (MaxTime 240, PingInterval 3, ...)
// are not built in. meteord.conf.example at the top of the repository spells
// out the same modes.
var builtinModes = `
[iframe]
HeaderTemplate ` + httpHeader + iframePage + `
Persist 1

[xhrinteractive]
HeaderTemplate ` + httpHeader + xhrPadding + `\r\n~channelinfo~\r\n
Persist 1

[simplepoll]
HeaderTemplate ` + httpHeader + `~channelinfo~

[smartpoll]
HeaderTemplate ` + httpHeader + `~channelinfo~

[longpoll]
HeaderTemplate ` + httpHeader + `~channelinfo~
Persist 1
MaxMessages 1

[flash]
HeaderTemplate ~channelinfo~
Persist 1
MessageTemplate ~id~/~channel~/~text~\0
PingMessage .\0
SubscriberShutdownMsg x\0
ChannelInfoTemplate CH/~name~/~lastMsgID~\0
TextEncoding raw

[flashloadvars]
HeaderTemplate ` + httpHeader + `~channelinfo~
MessageTemplate ~id~/~channel~/~text~\n
Persist 1
MaxMessages 1
PingMessage
ChannelInfoTemplate CH/~name~/~lastMsgID~\n
SubscriberShutdownMsg x\n
TextEncoding raw
`

// builtinSettings are builtinModes parsed.
var builtinSettings = func() []setting {
	s, _, err := parseFile("built-in", []byte(builtinModes))
	if err != nil {
		panic("config: built-in modes do not parse: " + err.Error())
	}
	return s
}()

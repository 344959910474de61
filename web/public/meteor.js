/*
 * meteor.js: the browser client of the Meteor Comet server.
 *
 * It defines one global object, Meteor, with the interface of the Meteor
 * 1.06 client, so pages written for that client keep working unchanged:
 *
 *   Meteor.hostid = "...";                  // optional: [0-9a-z]+
 *   Meteor.host = "data.example.com";       // default: this page's host
 *   Meteor.port = 4670;                     // default: this page's port
 *   Meteor.mode = "stream";                 // or longpoll, smartpoll, simplepoll
 *   Meteor.registerEventCallback("process", function (text, channel, id) {});
 *   Meteor.joinChannel("demo", 10);         // with the last 10 messages
 *   Meteor.connect();
 *
 * Messages arrive as <script>p(id,"channel","text");</script> chunks. They
 * are read by a small parser for JavaScript call expressions and string
 * literals, never by eval, so a message can only ever be text. docs/client.md
 * describes the interface, the transports and the wire format.
 */
(function (window, document) {
	"use strict";

	if (window.Meteor && window.Meteor.client === "meteor-go") {
		return; // loaded twice: keep the running client
	}

	var VERSION = "1.06-go.1";

	// Meteor.status values, as in 1.06.
	var UNINITIALISED = 0,
		LOADING = 1, // opening a stream
		LOADING_FRAME = 2, // loading the cross-origin helper frame
		RETRYING = 3, // a request failed or timed out; retrying
		READY = 4, // the server answered
		RECEIVING = 5, // messages or pings are arriving
		ENDED = 6; // the server sent eof(): no reconnection

	// A stream whose response text has grown past this many characters is
	// reopened (resuming after its last message) to bound its memory.
	var RECYCLE_CHARS = 4 << 20;

	// How long the cross-origin helper frame may take to answer.
	var FRAME_TIMEOUT = 5000;

	var CHANNEL_NAME = /^[a-z0-9_%\-]+$/i;
	var HOST_ID = /^[0-9a-z]+$/i;

	function noop() {}

	function now() {
		return Date.now();
	}

	function report(err) {
		// Surface an exception thrown by a page's callback without letting it
		// break the stream that delivered the message.
		window.setTimeout(function () {
			throw err;
		}, 0);
	}

	// ------------------------------------------------------------------
	// The wire parser.
	//
	// A response body is a sequence of <script>CALLS</script> chunks, with
	// anything else (padding, HTML) in between. CALLS is one or more
	// name(arg, ...) calls separated by semicolons, where each argument is a
	// number, a string literal in either quote style, true, false or null.

	var OPEN = "<script>",
		CLOSE = "</script>";
	var NEED = { need: true }, // the input ends before the construct does
		BAD = { bad: true }; // the construct is not well formed

	function isSpace(c) {
		return c === 32 || (c >= 9 && c <= 13) || c === 0xa0 || c === 0xfeff || c === 0x2028 || c === 0x2029;
	}

	function skipSpace(s, i) {
		while (i < s.length && isSpace(s.charCodeAt(i))) {
			i++;
		}
		return i;
	}

	function isIdentChar(c, first) {
		return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 36 || (!first && c >= 48 && c <= 57);
	}

	function hexValue(s, i, n) {
		// the value of the n hex digits at s[i:], NEED or BAD
		if (i + n > s.length) {
			return /^[0-9a-f]*$/i.test(s.slice(i)) ? NEED : BAD;
		}
		var h = s.substr(i, n);
		return /^[0-9a-f]+$/i.test(h) ? parseInt(h, 16) : BAD;
	}

	// readString reads the string literal that starts with the quote at
	// s[i]. It returns {value, end} (end: the index after the closing
	// quote), NEED or BAD. Every escape of ECMAScript is understood, the
	// legacy octal ones included.
	function readString(s, i) {
		var quote = s.charCodeAt(i),
			n = s.length,
			out = "",
			start = ++i;
		while (i < n) {
			var c = s.charCodeAt(i);
			if (c === quote) {
				return { value: out + s.slice(start, i), end: i + 1 };
			}
			if (c === 10 || c === 13) {
				return BAD; // a raw line break cannot be inside a literal
			}
			if (c !== 92) {
				i++;
				continue;
			}
			out += s.slice(start, i);
			if (++i >= n) {
				return NEED;
			}
			var e = s.charAt(i),
				v;
			switch (e) {
				case "n": out += "\n"; i++; break;
				case "r": out += "\r"; i++; break;
				case "t": out += "\t"; i++; break;
				case "b": out += "\b"; i++; break;
				case "f": out += "\f"; i++; break;
				case "v": out += "\v"; i++; break;
				case "x":
					v = hexValue(s, i + 1, 2);
					if (v === NEED || v === BAD) {
						return v;
					}
					out += String.fromCharCode(v);
					i += 3;
					break;
				case "u":
					if (i + 1 >= n) {
						return NEED;
					}
					if (s.charAt(i + 1) === "{") {
						var close = s.indexOf("}", i + 2);
						if (close < 0) {
							return /^[0-9a-f]*$/i.test(s.slice(i + 2)) ? NEED : BAD;
						}
						var digits = s.slice(i + 2, close);
						if (!/^[0-9a-f]+$/i.test(digits)) {
							return BAD;
						}
						v = parseInt(digits, 16);
						if (v > 0x10ffff) {
							return BAD;
						}
						out += String.fromCodePoint(v);
						i = close + 1;
					} else {
						v = hexValue(s, i + 1, 4);
						if (v === NEED || v === BAD) {
							return v;
						}
						out += String.fromCharCode(v);
						i += 5;
					}
					break;
				case "\r":
					// a line continuation: backslash, then CR or CRLF
					if (i + 1 >= n) {
						return NEED;
					}
					i += s.charAt(i + 1) === "\n" ? 2 : 1;
					break;
				case "\n":
				case "\u2028":
				case "\u2029":
					i++;
					break;
				default:
					if (e >= "0" && e <= "7") {
						// \0 alone is NUL; otherwise a legacy octal escape of up
						// to three digits whose value is at most 255
						var j = i,
							max = e <= "3" ? 3 : 2;
						while (j < n && j - i < max && s.charAt(j) >= "0" && s.charAt(j) <= "7") {
							j++;
						}
						if (j === n && j - i < max) {
							return NEED;
						}
						out += String.fromCharCode(parseInt(s.slice(i, j), 8));
						i = j;
					} else {
						// \" \' \\ \/ and every other character stand for
						// themselves
						out += e;
						i++;
					}
			}
			start = i;
		}
		return NEED;
	}

	// readValue reads one argument at s[i]: {value, end}, NEED or BAD.
	function readValue(s, i) {
		var c = s.charCodeAt(i);
		if (c === 34 || c === 39) {
			return readString(s, i);
		}
		var j = i;
		if (isIdentChar(c, true)) {
			while (j < s.length && isIdentChar(s.charCodeAt(j), false)) {
				j++;
			}
			if (j === s.length) {
				return NEED;
			}
			var word = s.slice(i, j);
			if (word === "true") return { value: true, end: j };
			if (word === "false") return { value: false, end: j };
			if (word === "null") return { value: null, end: j };
			return BAD;
		}
		while (j < s.length && /[-+0-9.eExXa-fA-F]/.test(s.charAt(j))) {
			j++;
		}
		if (j === s.length) {
			return NEED;
		}
		var text = s.slice(i, j);
		if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) {
			return BAD;
		}
		return { value: Number(text), end: j };
	}

	// parseScript reads the calls of one script element whose text starts at
	// s[i]: {calls, end} (end: the index after "</script>"), NEED or BAD.
	function parseScript(s, i) {
		var n = s.length,
			calls = [];
		for (;;) {
			i = skipSpace(s, i);
			if (i >= n) {
				return NEED;
			}
			var c = s.charCodeAt(i);
			if (c === 59) { // ;
				i++;
				continue;
			}
			if (c === 60) { // <
				if (n - i < CLOSE.length) {
					return CLOSE.indexOf(s.slice(i)) === 0 ? NEED : BAD;
				}
				return s.substr(i, CLOSE.length) === CLOSE ? { calls: calls, end: i + CLOSE.length } : BAD;
			}
			var j = i;
			while (j < n && isIdentChar(s.charCodeAt(j), j === i)) {
				j++;
			}
			if (j === i) {
				return BAD;
			}
			var name = s.slice(i, j);
			i = skipSpace(s, j);
			if (i >= n) {
				return NEED;
			}
			if (s.charCodeAt(i) !== 40) { // (
				return BAD;
			}
			var args = [];
			i = skipSpace(s, i + 1);
			if (i >= n) {
				return NEED;
			}
			if (s.charCodeAt(i) === 41) { // )
				i++;
			} else {
				for (;;) {
					var v = readValue(s, i);
					if (v === NEED || v === BAD) {
						return v;
					}
					args.push(v.value);
					i = skipSpace(s, v.end);
					if (i >= n) {
						return NEED;
					}
					c = s.charCodeAt(i);
					if (c === 41) {
						i++;
						break;
					}
					if (c !== 44) { // ,
						return BAD;
					}
					i = skipSpace(s, i + 1);
					if (i >= n) {
						return NEED;
					}
				}
			}
			calls.push({ name: name, args: args });
		}
	}

	// ScriptReader turns a response body, given in pieces as it arrives,
	// into calls: onCall(name, args) for each. A malformed script element is
	// skipped whole. stop() ends the delivery of calls, even in the middle of
	// a piece.
	function ScriptReader(onCall) {
		this.buf = "";
		this.onCall = onCall;
		this.stopped = false;
	}

	ScriptReader.prototype.push = function (piece) {
		var s = this.buf + piece,
			pos = 0;
		while (!this.stopped) {
			var start = s.indexOf(OPEN, pos);
			if (start < 0) {
				// keep what may be the beginning of "<script>"
				pos = Math.max(pos, s.length - (OPEN.length - 1));
				break;
			}
			var r = parseScript(s, start + OPEN.length);
			if (r === NEED) {
				pos = start;
				break;
			}
			if (r === BAD) {
				var close = s.indexOf(CLOSE, start + OPEN.length);
				if (close < 0) {
					pos = start; // perhaps complete, and well formed, later
					break;
				}
				pos = close + CLOSE.length;
				continue;
			}
			pos = r.end;
			for (var k = 0; k < r.calls.length && !this.stopped; k++) {
				this.onCall(r.calls[k].name, r.calls[k].args);
			}
		}
		this.buf = this.stopped ? "" : s.slice(pos);
	};

	ScriptReader.prototype.stop = function () {
		this.stopped = true;
		this.buf = "";
	};

	// parse returns the calls in a body, given whole or as an array of the
	// pieces in which it arrived, for tests and tools.
	function parse(body) {
		var calls = [],
			r = new ScriptReader(function (name, args) {
				calls.push([name].concat(args));
			}),
			pieces = typeof body === "string" ? [body] : body;
		for (var i = 0; i < pieces.length; i++) {
			r.push(String(pieces[i]));
		}
		return calls;
	}

	// ------------------------------------------------------------------
	// HTTP requests: a direct XMLHttpRequest, or one made on our behalf by
	// the helper frame (stream.html#bridge) when the server is on another
	// origin. Both report through the same handlers:
	//   head(status)   the response's status is known
	//   data(text)     more of the body arrived
	//   end(ok, status) the response is complete (ok: status 200 and the
	//                  body ended normally) or failed; called once
	// and both return {abort()}, after which no handler is called.

	function xhrRequest(url, h) {
		var x = new XMLHttpRequest(),
			seen = 0,
			done = false,
			headed = false;
		function head() {
			if (!headed && x.readyState >= 2) {
				headed = true;
				h.head(x.status);
			}
		}
		function pull() {
			head();
			if (x.status !== 200) {
				return;
			}
			var t = x.responseText;
			if (t.length > seen) {
				var piece = t.substring(seen);
				seen = t.length;
				h.data(piece, seen);
			}
		}
		function end(ok) {
			if (done) {
				return;
			}
			done = true;
			h.end(ok, x.status);
		}
		x.open("GET", url, true);
		x.onreadystatechange = function () {
			if (done) {
				return;
			}
			if (x.readyState >= 3) {
				pull();
			} else {
				head();
			}
		};
		x.onprogress = function () {
			if (!done) {
				pull();
			}
		};
		x.onload = function () {
			if (!done) {
				pull();
				end(x.status === 200);
			}
		};
		x.onerror = x.ontimeout = function () {
			end(false);
		};
		x.send(null);
		return {
			abort: function () {
				done = true;
				x.onreadystatechange = x.onprogress = x.onload = x.onerror = x.ontimeout = null;
				x.abort();
			}
		};
	}

	function hiddenFrame(src) {
		var f = document.createElement("iframe");
		f.setAttribute("aria-hidden", "true");
		f.setAttribute("tabindex", "-1");
		f.title = "Meteor connection";
		f.style.cssText = "position:absolute;left:-1000px;top:-1000px;width:1px;height:1px;border:0;visibility:hidden";
		f.src = src;
		(document.body || document.documentElement).appendChild(f);
		return f;
	}

	function removeFrame(f) {
		if (f && f.parentNode) {
			f.onload = null;
			f.parentNode.removeChild(f);
		}
	}

	var bridge = null; // the helper frame, for the origin in bridge.origin

	function dropBridge() {
		if (bridge) {
			window.clearTimeout(bridge.timer);
			removeFrame(bridge.frame);
			var reqs = bridge.reqs;
			bridge = null;
			for (var id in reqs) {
				reqs[id].end(false, 0);
			}
		}
	}

	// bridgeFailed gives up the helper frame: requests go direct, which needs
	// CORS headers from the server. A frame that was only slow to answer is
	// taken back when its "ready" comes; a refusal is final.
	function bridgeFailed(b, why, refused) {
		b.refused = b.refused || !!refused;
		if (b.failed) {
			return;
		}
		b.failed = true;
		window.clearTimeout(b.timer);
		M.log("Helper frame unusable (" + why + "): using direct requests, which need CORS");
		var reqs = b.reqs;
		b.reqs = {};
		b.queue = [];
		for (var id in reqs) {
			reqs[id].end(false, 0);
		}
	}

	function getBridge(origin) {
		if (bridge && bridge.origin !== origin) {
			dropBridge();
		}
		if (bridge) {
			return bridge;
		}
		var b = (bridge = { origin: origin, ready: false, failed: false, refused: false, queue: [], reqs: {}, seq: 0 });
		b.frame = hiddenFrame(origin + "/stream.html#bridge");
		b.timer = window.setTimeout(function () {
			if (!b.ready) {
				bridgeFailed(b, "no answer from " + origin + "/stream.html");
			}
		}, FRAME_TIMEOUT);
		return b;
	}

	window.addEventListener("message", function (ev) {
		var b = bridge,
			d = ev.data;
		if (!b || b.refused || ev.origin !== b.origin || ev.source !== b.frame.contentWindow) {
			return;
		}
		if (!d || typeof d !== "object" || typeof d.meteor !== "string") {
			return;
		}
		if (d.meteor === "ready") {
			if (!b.ready) {
				b.ready = true;
				b.failed = false;
				window.clearTimeout(b.timer);
				var q = b.queue;
				b.queue = [];
				for (var i = 0; i < q.length; i++) {
					b.frame.contentWindow.postMessage(q[i], b.origin);
				}
			}
			return;
		}
		if (d.meteor === "refused") {
			bridgeFailed(b, "this page's host is not in the Meteor host's domain", true);
			return;
		}
		var h = b.reqs[d.id];
		if (!h) {
			return;
		}
		if (d.meteor === "head") {
			h.head(d.status);
		} else if (d.meteor === "data" && typeof d.text === "string") {
			h.data(d.text);
		} else if (d.meteor === "end") {
			delete b.reqs[d.id];
			h.end(!!d.ok, d.status);
		}
	});

	function bridgeRequest(b, path, h) {
		var id = ++b.seq,
			msg = { meteor: "open", id: id, path: path };
		b.reqs[id] = h;
		if (b.ready) {
			b.frame.contentWindow.postMessage(msg, b.origin);
		} else {
			b.queue.push(msg);
		}
		return {
			abort: function () {
				if (!b.reqs[id]) {
					return;
				}
				delete b.reqs[id];
				if (b.ready) {
					b.frame.contentWindow.postMessage({ meteor: "abort", id: id }, b.origin);
				} else {
					b.queue = b.queue.filter(function (m) {
						return m.id !== id;
					});
				}
			}
		};
	}

	// ------------------------------------------------------------------
	// The client.

	var M = {
		client: "meteor-go",
		version: VERSION,

		// Settings. host and port default to this page's.
		host: window.location.hostname || null,
		port: Number(window.location.port) || (window.location.protocol === "https:" ? 443 : 80),
		scheme: window.location.protocol === "https:" ? "https" : "http",
		pushpath: "/push",
		hostid: null,
		mode: "stream",
		pollfreq: 3000,
		minpollfreq: 2000,
		maxpollfreq: 60000,
		polltimeout: 30000,
		pingtimeout: 20000,
		debugmode: false,

		// State, readable by pages.
		status: UNINITIALISED,
		transport: null, // the transport in use: xhrinteractive, iframe, longpoll, ...
		channels: {}, // name -> {backtrack, lastmsgreceived}
		channelcount: 0,
		callbacks: {
			process: noop,
			reset: noop,
			eof: noop,
			statuschanged: noop,
			changemode: noop
		}
	};

	var wanted = false, // connect() was called, and neither disconnect() nor eof since
		conn = null, // the current request, or null between requests
		retryTimer = null,
		pingTimer = null,
		failures = 0, // consecutive failed requests
		pollRate = null, // smartpoll: messages per millisecond, smoothed
		lastPoll = 0, // smartpoll: when the previous poll ended
		seq = 0,
		suspended = false; // the page went into the back/forward cache

	function isStream(kind) {
		return kind === "xhrinteractive" || kind === "iframe";
	}

	function baseOrigin() {
		var host = String(M.host).toLowerCase(),
			port = Number(M.port),
			scheme = String(M.scheme || "http").toLowerCase();
		if (host.indexOf(":") >= 0 && host.charAt(0) !== "[") {
			host = "[" + host + "]"; // an IPv6 address
		}
		var dflt = scheme === "https" ? 443 : 80;
		return scheme + "://" + host + (port === dflt ? "" : ":" + port);
	}

	function crossOrigin() {
		return baseOrigin() !== window.location.origin;
	}

	function request(path, h) {
		var origin = baseOrigin();
		if (origin !== window.location.origin) {
			var b = getBridge(origin);
			if (!b.failed) {
				if (!b.ready) {
					setstatus(LOADING_FRAME);
				}
				return bridgeRequest(b, path, h);
			}
		}
		return xhrRequest(origin + path, h);
	}

	function setstatus(s) {
		if (M.status !== s) {
			M.status = s;
			M.log("Status " + s);
			fire("statuschanged", s);
		}
	}

	function fire(evt) {
		var fn = M.callbacks[evt];
		if (typeof fn !== "function") {
			return;
		}
		try {
			fn.apply(M, Array.prototype.slice.call(arguments, 1));
		} catch (e) {
			report(e);
		}
	}

	function armPingTimer() {
		window.clearTimeout(pingTimer);
		pingTimer = null;
		if (wanted && isStream(M.transport) && Number(M.pingtimeout) > 0) {
			pingTimer = window.setTimeout(pingTimeout, Number(M.pingtimeout));
		}
	}

	function pingTimeout() {
		pingTimer = null;
		if (!wanted || !isStream(M.transport)) {
			return;
		}
		M.log("No data for " + M.pingtimeout + " ms: switching to smartpoll");
		M.mode = "smartpoll";
		halt();
		fire("changemode", "poll", "smartpoll");
		if (wanted && !conn && !retryTimer) {
			M.connect();
		}
	}

	// halt stops the current request and every timer, and leaves the
	// settings and the channels' positions alone.
	function halt() {
		window.clearTimeout(retryTimer);
		window.clearTimeout(pingTimer);
		retryTimer = pingTimer = null;
		if (conn) {
			finish(conn);
		}
	}

	function finish(c) {
		c.dead = true;
		c.reader.stop();
		window.clearTimeout(c.timer);
		if (c.req) {
			c.req.abort();
		}
		removeFrame(c.frame);
		if (conn === c) {
			conn = null;
		}
	}

	function schedule(delay) {
		window.clearTimeout(retryTimer);
		retryTimer = window.setTimeout(open, Math.max(0, delay));
	}

	// resumeSuffix returns what the subscription URL says after a channel's
	// name: where its messages should start.
	function resumeSuffix(c) {
		if (c.last !== null) {
			return ".r" + (c.last + 1);
		}
		if (c.base !== null) {
			return ".r" + (c.base + 1);
		}
		var b = Number(c.backtrack);
		if (b > 0) {
			return ".b" + Math.floor(b);
		}
		if (b < 0 || isNaN(b)) {
			return ".h"; // as in 1.06, a missing backtrack asks for the history
		}
		return "";
	}

	function open() {
		retryTimer = null;
		if (!wanted || conn || !M.channelcount) {
			return;
		}
		var kind = M.transport,
			c = (conn = {
				id: ++seq,
				kind: kind,
				started: now(),
				dead: false,
				ok: false, // the server answered 200
				messages: 0, // new messages delivered
				chars: 0,
				timer: null,
				req: null,
				frame: null
			});
		c.reader = new ScriptReader(function (name, args) {
			call(c, name, args);
		});
		if (isStream(kind)) {
			setstatus(LOADING);
		}
		var path = subsPath(kind);
		M.log("Opening " + path);
		if (kind === "iframe") {
			c.frame = hiddenFrame(baseOrigin() + path);
			c.frame.onload = function () {
				ended(c, c.ok);
			};
			return;
		}
		var polltimeout = Number(M.polltimeout);
		if (!isStream(kind) && polltimeout > 0) {
			// longpoll: an idle timeout, restarted whenever data arrives;
			// the other polls: a limit on the whole request
			c.timer = window.setTimeout(function () {
				M.log("Poll timeout");
				ended(c, kind === "longpoll" && c.ok);
			}, polltimeout);
		}
		c.req = request(path, {
			head: function (status) {
				if (!c.dead && status === 200) {
					answered(c);
				}
			},
			data: function (text) {
				if (c.dead) {
					return;
				}
				c.chars += text.length;
				alive(c);
				c.reader.push(text);
				if (!c.dead && isStream(kind) && c.chars > RECYCLE_CHARS) {
					M.log("Reopening a long stream");
					ended(c, true);
				}
			},
			end: function (ok) {
				ended(c, ok && c.ok);
			}
		});
	}

	function answered(c) {
		c.ok = true;
		failures = 0;
		if (M.status !== RECEIVING) {
			setstatus(READY);
		}
	}

	function alive(c) {
		if (isStream(c.kind)) {
			armPingTimer();
		} else if (c.kind === "longpoll" && c.timer !== null) {
			window.clearTimeout(c.timer);
			c.timer = window.setTimeout(function () {
				ended(c, c.ok);
			}, Number(M.polltimeout));
		}
	}

	// call runs one call of the wire format on behalf of request c.
	function call(c, name, args) {
		if (c.dead) {
			return;
		}
		if (name === "p") {
			if (Number(args[0]) !== -1 && message(args[0], args[1], args[2], args.slice(3))) {
				c.messages++;
			}
			setstatus(RECEIVING);
		} else if (name === "ch") {
			channelInfo(args[0], args[1]);
		} else if (name === "eof") {
			M.eof();
		}
	}

	// ended handles the end of request c: ok if the server answered and then
	// closed the response (a poll's answer, a long poll's message, a stream
	// that hit MaxTime...), false if it failed.
	function ended(c, ok) {
		if (c.dead) {
			return;
		}
		finish(c);
		if (!wanted) {
			return;
		}
		var kind = c.kind,
			elapsed = now() - c.started,
			delay;
		if (ok) {
			failures = 0;
			if (isStream(kind)) {
				fire("reset");
				delay = Number(M.pollfreq) - elapsed;
			} else if (kind === "longpoll") {
				delay = c.messages > 0 || elapsed >= 1000 ? 0 : Number(M.minpollfreq) - elapsed;
			} else {
				if (kind === "smartpoll") {
					adapt(c);
				}
				delay = Number(M.pollfreq) - elapsed;
			}
			delay = Math.max(10, delay || 0);
		} else {
			failures++;
			setstatus(RETRYING);
			var base = isStream(kind) ? 1000 : Math.max(1000, Number(M.pollfreq) || 0);
			var cap = Math.max(base, Number(M.maxpollfreq) || 0);
			delay = Math.min(cap, base * Math.pow(2, Math.min(failures - 1, 10)));
			delay = delay / 2 + (Math.random() * delay) / 2; // spread the retries of many clients
		}
		if (wanted && !conn && !retryTimer) {
			schedule(delay);
		}
	}

	// adapt sets the smartpoll interval from the message rate: a smoothed
	// estimate of messages per millisecond, polled twice per expected
	// message, within minpollfreq..maxpollfreq.
	function adapt(c) {
		var min = Number(M.minpollfreq) || 1000,
			max = Math.max(min, Number(M.maxpollfreq) || min),
			t = now(),
			sample = c.messages / Math.max(t - (lastPoll || c.started), 1);
		lastPoll = t;
		pollRate = pollRate === null ? sample : 0.7 * pollRate + 0.3 * sample;
		var target = pollRate > 0 ? 1 / (2 * pollRate) : max;
		M.pollfreq = Math.round(Math.min(max, Math.max(min, target)));
	}

	// message delivers message id of channel if it is new. It reports
	// whether it did.
	function message(id, channel, text, extra) {
		var c = Object.prototype.hasOwnProperty.call(M.channels, channel) ? M.channels[channel] : null;
		id = Number(id);
		if (!c || isNaN(id)) {
			return false;
		}
		if (c.last !== null && id <= c.last) {
			return false; // had it already
		}
		c.last = id;
		c.lastmsgreceived = id;
		fire.apply(null, ["process", text === undefined || text === null ? "" : String(text), channel, id].concat(extra || []));
		return true;
	}

	// channelInfo records where a channel's history stands on the server:
	// lastId is the id of its newest stored message, 0 if none.
	function channelInfo(name, lastId) {
		var c = Object.prototype.hasOwnProperty.call(M.channels, name) ? M.channels[name] : null;
		lastId = Number(lastId);
		if (!c || isNaN(lastId)) {
			return;
		}
		if (c.last === null) {
			if (c.base === null) {
				c.base = lastId; // resume after it if nothing comes
			}
		} else if (lastId < c.last) {
			// The server's ids went back (a memory-only server restarted):
			// what it numbers after lastId is new.
			M.log("Channel " + name + ": server restarted its ids at " + lastId);
			c.last = lastId;
			c.lastmsgreceived = lastId;
		}
	}

	function subsPath(kind) {
		var p = String(M.pushpath || "/push").replace(/\/+$/, "") + "/" + M.hostid + "/" + kind;
		for (var name in M.channels) {
			if (Object.prototype.hasOwnProperty.call(M.channels, name)) {
				p += "/" + name + resumeSuffix(M.channels[name]);
			}
		}
		return p + "?nc=" + now();
	}

	function newHostId() {
		var id = "";
		if (window.crypto && window.crypto.getRandomValues) {
			var a = window.crypto.getRandomValues(new Uint32Array(3));
			for (var i = 0; i < a.length; i++) {
				id += a[i].toString(36);
			}
		} else {
			id = now().toString(36) + Math.floor(Math.random() * 1e9).toString(36);
		}
		return id;
	}

	function pickTransport() {
		var mode = String(M.mode || "stream").toLowerCase();
		if (mode === "stream") {
			return "xhrinteractive";
		}
		if (mode === "iframe" && crossOrigin()) {
			return "xhrinteractive"; // an iframe on another origin cannot reach this page
		}
		return mode;
	}

	// ---- the interface

	M.joinChannel = function (name, backtrack) {
		name = String(name);
		if (!CHANNEL_NAME.test(name)) {
			throw new Error("Meteor: invalid channel name " + JSON.stringify(name) + " (letters, digits, _ % - only)");
		}
		if (Object.prototype.hasOwnProperty.call(M.channels, name)) {
			throw new Error("Meteor: cannot join channel " + name + ": already subscribed");
		}
		M.channels[name] = { backtrack: backtrack, lastmsgreceived: 0, last: null, base: null };
		M.channelcount++;
		M.log("Joined channel " + name);
		if (wanted || M.status !== UNINITIALISED) {
			M.connect();
		}
	};

	M.leaveChannel = function (name) {
		name = String(name);
		if (!Object.prototype.hasOwnProperty.call(M.channels, name)) {
			throw new Error("Meteor: cannot leave channel " + name + ": not subscribed");
		}
		delete M.channels[name];
		M.channelcount--;
		M.log("Left channel " + name);
		if (wanted || M.status !== UNINITIALISED) {
			if (M.channelcount > 0) {
				M.connect();
			} else {
				halt(); // nothing to listen to; a later joinChannel reconnects
				setstatus(UNINITIALISED);
			}
		}
	};

	M.registerEventCallback = function (evt, fn) {
		if (typeof fn !== "function") {
			throw new Error("Meteor: the callback for " + evt + " is not a function");
		}
		var prev = M.callbacks[evt];
		if (typeof prev !== "function" || prev === noop) {
			M.callbacks[evt] = fn;
			return;
		}
		M.callbacks[evt] = function () {
			try {
				prev.apply(this, arguments);
			} catch (e) {
				report(e);
			}
			return fn.apply(this, arguments);
		};
	};

	M.connect = function () {
		if (!M.host) {
			throw new Error("Meteor: host not specified");
		}
		var port = Number(M.port);
		if (!(port > 0 && port < 65536 && Math.floor(port) === port)) {
			throw new Error("Meteor: port not specified");
		}
		if (!M.channelcount) {
			throw new Error("Meteor: no channels specified");
		}
		if (!M.hostid) {
			M.hostid = newHostId();
		}
		if (!HOST_ID.test(String(M.hostid))) {
			throw new Error("Meteor: hostid must be letters and digits only");
		}
		halt();
		wanted = true;
		suspended = false;
		failures = 0;
		M.transport = pickTransport();
		pollRate = null;
		lastPoll = 0;
		M.log("Connecting with " + M.transport);
		setstatus(LOADING);
		armPingTimer();
		open();
	};

	M.disconnect = function () {
		wanted = false;
		halt();
		if (M.status !== ENDED) {
			setstatus(UNINITIALISED);
		}
		M.log("Disconnected");
	};

	// register is called by a page of the iframe transport (the server's
	// iframe HeaderTemplate runs parent.Meteor.register(this)); it gives
	// that window the functions its scripts call.
	M.register = function (win) {
		var c = conn;
		if (c && c.frame && c.frame.contentWindow === win) {
			win.p = function () {
				call(c, "p", Array.prototype.slice.call(arguments));
				alive(c);
			};
			win.ch = function () {
				call(c, "ch", Array.prototype.slice.call(arguments));
				alive(c);
			};
			win.eof = function () {
				call(c, "eof", []);
			};
			win.r = function () {
				ended(c, c.ok);
			};
			answered(c);
			alive(c);
			return;
		}
		// Some other page (a 1.06 helper page, say): the plain entry points.
		win.p = M.process;
		win.ch = M.channelInfo;
		win.eof = M.eof;
		win.r = M.reset;
	};

	// reset is called when an iframe transport page finishes loading, that
	// is when the server ends the stream: reconnect.
	M.reset = function (win) {
		var c = conn;
		if (!c) {
			return;
		}
		if (win && c.frame) {
			var w = c.frame.contentWindow;
			if (win !== w && !(w && (win === w.document || win === w.document.body))) {
				return; // an old frame
			}
		}
		ended(c, c.ok);
	};

	// process, channelInfo and eof are the calls of the wire format.
	M.process = function (id, channel, text) {
		if (Number(id) === -1) {
			M.ping();
			return;
		}
		message(id, channel, text, Array.prototype.slice.call(arguments, 3));
		setstatus(RECEIVING);
	};

	M.ping = function () {
		if (conn) {
			alive(conn);
		}
		setstatus(RECEIVING);
	};

	M.channelInfo = function (name, lastId) {
		channelInfo(name, lastId);
	};

	M.eof = function () {
		M.log("End of stream: will not reconnect");
		wanted = false;
		halt();
		setstatus(ENDED);
		fire("eof");
	};

	// getSubsUrl returns the URL that subscribes to the joined channels,
	// each resuming after the last message received.
	M.getSubsUrl = function (kind) {
		if (!M.hostid) {
			M.hostid = newHostId();
		}
		return baseOrigin() + subsPath(kind || M.transport || pickTransport());
	};

	M.setstatus = setstatus;

	M.log = function (text) {
		if (M.debugmode && window.console) {
			window.console.log("Meteor: " + text);
		}
	};

	// parse exposes the wire parser: the calls found in a response body
	// (a string, or an array of pieces), as arrays [name, arg...].
	M.parse = parse;

	// A page leaving for the back/forward cache closes its connection and
	// reopens it when it comes back.
	window.addEventListener("pagehide", function (e) {
		if (e.persisted && wanted) {
			halt();
			suspended = true;
		}
	});
	window.addEventListener("pageshow", function (e) {
		if (e.persisted && suspended && wanted) {
			suspended = false;
			armPingTimer();
			open();
		}
	});

	// ------------------------------------------------------------------
	// The helper pages. stream.html and poll.html, served by the Meteor
	// server next to this script, call Meteor.frame(kind) in a hidden frame:
	//  - with "#bridge" in their URL, loaded by this client on a page of
	//    another origin: they make requests to their own origin for the page
	//    and pass the answers back with postMessage;
	//  - otherwise, loaded by the 1.06 client: they register with
	//    parent.Meteor and stream (stream.html) or poll (poll.html) as 1.06's
	//    pages did, without eval.

	// relatedHost reports whether a page on host page may use the helper
	// frame on host self: the same host, or one in self's parent domain.
	function relatedHost(page, self) {
		page = String(page).toLowerCase();
		self = String(self).toLowerCase();
		if (page === self) {
			return true;
		}
		if (/^[\d.]+$/.test(self) || self.indexOf(":") >= 0 || self.indexOf("[") >= 0) {
			return false; // an address: only itself
		}
		var labels = self.split(".");
		var domain = labels.length > 2 ? labels.slice(1).join(".") : self;
		return page === domain || page.slice(-domain.length - 1) === "." + domain;
	}

	function serveBridge() {
		var parentWin = window.parent,
			reqs = {};
		window.addEventListener("message", function (ev) {
			var d = ev.data;
			if (ev.source !== parentWin || !d || typeof d !== "object") {
				return;
			}
			var host = "";
			try {
				host = new URL(ev.origin).hostname.replace(/^\[|\]$/g, "");
			} catch (e) {}
			var self = window.location.hostname.replace(/^\[|\]$/g, "");
			var origin = ev.origin;
			function post(m) {
				parentWin.postMessage(m, origin);
			}
			if (!relatedHost(host, self)) {
				post({ meteor: "refused", id: d.id });
				return;
			}
			if (d.meteor === "open") {
				var id = d.id,
					path = d.path;
				if (typeof path !== "string" || path.charAt(0) !== "/" || path.charAt(1) === "/" || path.indexOf("\\") >= 0 || reqs[id]) {
					post({ meteor: "end", id: id, ok: false, status: 0 });
					return;
				}
				reqs[id] = xhrRequest(path, {
					head: function (status) {
						post({ meteor: "head", id: id, status: status });
					},
					data: function (text) {
						post({ meteor: "data", id: id, text: text });
					},
					end: function (ok, status) {
						delete reqs[id];
						post({ meteor: "end", id: id, ok: ok, status: status });
					}
				});
			} else if (d.meteor === "abort" && reqs[d.id]) {
				reqs[d.id].abort();
				delete reqs[d.id];
			}
		});
		parentWin.postMessage({ meteor: "ready" }, "*");
	}

	function legacyFrame(kind, P) {
		try {
			// 1.06's parent set document.domain to its last two labels; a
			// frame must do the same to reach it where browsers still allow it.
			var parts = document.domain.split(".");
			if (parts.length >= 2 && !/^[\d.]+$/.test(document.domain)) {
				document.domain = parts.slice(-2).join(".");
			}
		} catch (e) {}
		P.register(window);
		function dispatch(name, args) {
			if ((name === "p" || name === "ch" || name === "eof") && typeof window[name] === "function") {
				window[name].apply(window, args);
			}
		}
		if (kind === "stream") {
			var reader = new ScriptReader(dispatch);
			xhrRequest(P.getSubsUrl(), {
				head: noop,
				data: function (t) {
					reader.push(t);
				},
				end: function () {
					if (typeof window.r === "function") {
						window.r();
					}
				}
			});
			return;
		}
		var poll = function () {
			var url;
			try {
				url = P.getSubsUrl();
			} catch (e) {
				return;
			}
			var started = now(),
				done = false,
				timer = null,
				reader = new ScriptReader(dispatch);
			var next = function () {
				if (P.status) {
					window.setTimeout(poll, Math.max(10, Number(P.pollfreq) - (now() - started)));
				}
			};
			var req = xhrRequest(url, {
				head: noop,
				data: function (t) {
					reader.push(t);
				},
				end: function () {
					if (!done) {
						done = true;
						window.clearTimeout(timer);
						next();
					}
				}
			});
			if (Number(P.polltimeout) > 0) {
				timer = window.setTimeout(function () {
					if (!done) {
						done = true;
						req.abort();
						next();
					}
				}, Number(P.polltimeout));
			}
		};
		poll();
	}

	// frame runs a helper page; kind is "stream" or "poll".
	M.frame = function (kind) {
		if (window.parent === window) {
			return; // opened on its own: nothing to do
		}
		if (window.location.hash === "#bridge") {
			serveBridge();
			return;
		}
		var P = null;
		try {
			P = window.parent.Meteor;
		} catch (e) {}
		if (P && P !== M && typeof P.register === "function" && typeof P.getSubsUrl === "function") {
			legacyFrame(kind, P);
		}
	};

	window.Meteor = M;
})(window, document);

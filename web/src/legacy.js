// legacy.js: the global Meteor, with the interface of the Meteor 1.06
// client. createMeteor builds it; the classic script (classic.js) calls it
// once per page and sets window.Meteor.

import { RECYCLE_CHARS, CHANNEL_NAME, HOST_ID, noop, now, report, hasOwn, newHostId } from "./util.js";
import { ScriptReader, parse } from "./parser.js";
import { hiddenFrame, removeFrame, requestAt, listenBridge, setLog } from "./http.js";
import { CLOSE_CODES } from "./closecodes.js";
import { TRANSPORTS } from "./transports/index.js";
import { STREAM_LADDER, Engine } from "./reconnect.js";
import { MeteorClient } from "./client.js";
import { Auth } from "./auth.js";
import { serveBridge, legacyFrame } from "./helpers.js";

var VERSION = "1.06-go.1";

// Meteor.status values, as in 1.06.
var UNINITIALISED = 0,
	LOADING = 1, // opening a stream
	LOADING_FRAME = 2, // loading the cross-origin helper frame
	RETRYING = 3, // a request failed or timed out; retrying
	READY = 4, // the server answered
	RECEIVING = 5, // messages or pings are arriving
	ENDED = 6; // the server sent eof(): no reconnection

export function createMeteor() {
	listenBridge();
	setLog(function (text) {
		M.log(text);
	});

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
		// A JWT sent with every subscription (SubscriberAuth), and/or a
		// function that returns a fresh one (mode "stream" renews with it).
		token: null,
		getToken: null,
		mode: "stream",
		pollfreq: 3000,
		minpollfreq: 2000,
		maxpollfreq: 60000,
		polltimeout: 30000,
		pingtimeout: 20000,
		debugmode: false,
		// mode "stream": the transports tried in turn (an extension)
		transports: STREAM_LADDER.slice(),

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
			changemode: noop,
			gap: noop
		},

		// The modern client (an extension); meteor.mjs exports it.
		Client: MeteorClient,

		// closeCodes: what each close code of the server means (read-only;
		// a browser test compares it with the server's table).
		closeCodes: JSON.parse(JSON.stringify(CLOSE_CODES))
	};

	var wanted = false, // connect() was called, and neither disconnect() nor eof since
		conn = null, // the current request, or null between requests
		retryTimer = null,
		pingTimer = null,
		failures = 0, // consecutive failed requests
		pollRate = null, // smartpoll: messages per millisecond, smoothed
		lastPoll = 0, // smartpoll: when the previous poll ended
		seq = 0,
		suspended = false, // the page went into the back/forward cache
		engine = null; // mode "stream": the running Engine

	// startEngine runs mode "stream": the transport ladder of the engine
	// above, on the channels of Meteor.channels (whose entries it updates).
	function startEngine() {
		var e = (engine = new Engine(
			{
				origin: baseOrigin(),
				transports: M.transports,
				heartbeatTimeout: Number(M.pingtimeout) || 0,
				connectTimeout: 10000,
				retryDelay: 1000,
				maxRetryDelay: Math.max(1000, Number(M.maxpollfreq) || 60000),
				pushpath: M.pushpath,
				auth: M.token || M.getToken ? new Auth(M.token, M.getToken || function () {
					return M.token; // the page sets Meteor.token to a fresh one
				}) : null,
				hostid: function () {
					return M.hostid;
				}
			},
			{
				deliver: function (rec, msg) {
					fire.apply(null, ["process", msg.text, msg.channel, msg.id].concat(msg.extra || []));
				},
				status: function (state, transport) {
					if (engine !== e) {
						return;
					}
					M.transport = transport;
					if (state === "connecting") {
						setstatus(LOADING);
					} else if (state === "open") {
						setstatus(READY);
					} else if (state === "reconnecting") {
						setstatus(RETRYING);
					} else if (state === "idle") {
						setstatus(UNINITIALISED);
					}
				},
				alive: function () {
					if (engine === e) {
						setstatus(RECEIVING);
					}
				},
				gap: function (g) {
					fire("gap", g.channel, g.since, g.trimmed);
				},
				error: function (err) {
					M.log(err.message);
				},
				reset: function (why) {
					M.log(why);
					fire("reset");
				},
				fatal: function (reason) {
					M.log(reason + ": will not reconnect");
					if (engine === e) {
						engine = null;
					}
					M.eof();
				}
			}
		));
		for (var name in M.channels) {
			if (hasOwn(M.channels, name)) {
				e.recs.set(name, M.channels[name]);
			}
		}
		M.log("Connecting with the transports " + e.ladder.join(", "));
		e.start();
	}

	function streamMode() {
		return String(M.mode || "stream").toLowerCase() === "stream";
	}

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
		return requestAt(baseOrigin(), path, h, function () {
			setstatus(LOADING_FRAME);
		});
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
		if (engine) {
			var e = engine;
			engine = null;
			e.stop();
		}
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
			c.lost = 0;
		}
	}

	function subsPath(kind) {
		var p = String(M.pushpath || "/push").replace(/\/+$/, "") + "/" + M.hostid + "/" + kind;
		for (var name in M.channels) {
			if (Object.prototype.hasOwnProperty.call(M.channels, name)) {
				p += "/" + name + resumeSuffix(M.channels[name]);
			}
		}
		return p + "?nc=" + now() + (M.token ? "&token=" + encodeURIComponent(M.token) : "");
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
		var rec = (M.channels[name] = { backtrack: backtrack, lastmsgreceived: 0, last: null, base: null });
		M.channelcount++;
		M.log("Joined channel " + name);
		if (engine && wanted) {
			engine.add(name, rec); // the others go on where they are
			return;
		}
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
			if (M.channelcount > 0 && engine && wanted) {
				engine.remove(name);
			} else if (M.channelcount > 0) {
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
		if (streamMode()) {
			startEngine();
			return;
		}
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
		if (!kind) {
			// a 1.06 helper page speaks the template modes only
			kind = !M.transport ? pickTransport() : hasOwn(TRANSPORTS, M.transport) ? "xhrinteractive" : M.transport;
		}
		return baseOrigin() + subsPath(kind);
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
			if (streamMode()) {
				startEngine();
				return;
			}
			armPingTimer();
			open();
		}
	});

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

	return M;
}

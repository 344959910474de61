// reconnect.js: the engine of mode "stream" and of MeteorClient: the
// transport ladder, the back-off, resuming by channel position.

import { hasOwn, jitter } from "./util.js";
import { startOf, parseCursor } from "./channels.js";
import { closeInfo } from "./closecodes.js";
import { expiredReason } from "./auth.js";
import { TRANSPORTS } from "./transports/index.js";

// ------------------------------------------------------------------
// The stream engine: Meteor.mode "stream" and the MeteorClient class.
//
// It holds one connection at a time, over the first transport of its
// ladder that works: WebSocket, then Server-Sent Events, then an NDJSON
// stream read with fetch, then JSON long polls (and, for the global
// Meteor, the 1.06 xhrinteractive stream last). A transport that fails
// before it brought anything, or goes silent (no message and no heartbeat
// for heartbeatTimeout ms), is left for the next one. Per channel the
// engine keeps the id of the last message it delivered, resumes after it
// on every reconnection, and drops any id not above it: nothing is lost
// and nothing is repeated.
//
// With a token (opts.auth, MeteorClient's token and getToken) the engine
// fetches one before connecting when it has none or the one it has is
// due for renewal, renews it before it expires (a WebSocket is told the
// new one; the HTTP transports use it on their next request), and when
// the server ends a connection because the token expired (tokenExpired:
// WebSocket 4003, a close event, a closed answer, a 401 whose reason is
// expired) fetches a new one and resumes. Any other refusal (401, 403)
// is fatal: a new connection would be refused alike.

var LADDER = ["websocket", "sse", "ndjson", "poll"];
var STREAM_LADDER = LADDER.concat(["xhrinteractive"]);

// Engine runs the ladder for a set of channels. opts: origin,
// transports, heartbeatTimeout, connectTimeout, retryDelay,
// maxRetryDelay, pollTimeout, pushpath, hostid (a function), auth (an
// Auth, or none), tokenHeader (the fetch transports send the token as
// Authorization: Bearer rather than ?token=). sink
// receives what happens: deliver(rec, msg), status(state, transport),
// gap(g), error(err), reset(), fatal(reason, info).
function Engine(opts, sink) {
	this.opts = opts;
	this.sink = sink;
	this.origin = String(opts.origin).replace(/\/+$/, "");
	this.ladder = (opts.transports && opts.transports.length ? opts.transports : LADDER).filter(function (t) {
		return hasOwn(TRANSPORTS, t);
	});
	if (!this.ladder.length) {
		throw new Error("Meteor: no known transport in " + JSON.stringify(opts.transports));
	}
	this.recs = new Map(); // channel name -> {last, base, start...}
	this.wanted = false;
	this.conn = null;
	this.idx = 0; // the rung in use
	this.proven = {}; // transports that brought data in this session
	this.failures = 0; // consecutive failures
	this.expiries = 0; // consecutive tokenExpired ends of connections that brought nothing
	this.timer = null;
	this.seq = 0;
	this.tokenWait = null; // the getToken call a connection waits for
	this.state = "closed";
	this.transport = null;
}

Engine.prototype.hostid = function () {
	return typeof this.opts.hostid === "function" ? this.opts.hostid() : this.opts.hostid;
};

Engine.prototype.pollSeconds = function () {
	var hb = Number(this.opts.heartbeatTimeout) || 0,
		t = Number(this.opts.pollTimeout) || 25;
	if (hb > 0) {
		t = Math.min(t, Math.floor(hb / 1000) - 5);
	}
	return Math.max(1, t);
};

Engine.prototype.setState = function (state) {
	var t = this.conn ? this.conn.name : this.transport;
	if (state !== this.state || t !== this.transport) {
		this.state = state;
		this.transport = t;
		this.sink.status(state, t);
	}
};

Engine.prototype.start = function () {
	this.wanted = true;
	this.failures = 0;
	if (!this.conn && !this.timer) {
		this.open();
	}
};

Engine.prototype.stop = function () {
	this.wanted = false;
	window.clearTimeout(this.timer);
	this.timer = null;
	this.tokenWait = null;
	if (this.conn) {
		this.drop(this.conn);
	}
	this.setState("closed");
};

// add subscribes to one more channel: live on a WebSocket, else by
// reconnecting with the new set (the others resume where they were).
Engine.prototype.add = function (name, rec) {
	this.recs.set(name, rec);
	this.changed(function (impl) {
		impl.add(name, rec);
	}, "add");
};

Engine.prototype.remove = function (name) {
	if (!this.recs.delete(name)) {
		return;
	}
	this.changed(function (impl) {
		impl.remove(name);
	}, "remove");
};

Engine.prototype.changed = function (live, method) {
	if (!this.wanted) {
		return;
	}
	var c = this.conn;
	if (!this.recs.size) {
		// nothing to listen to: idle until a channel is added
		if (c) {
			this.drop(c);
		}
		window.clearTimeout(this.timer);
		this.timer = null;
		this.setState("idle");
		return;
	}
	if (c && c.impl && c.impl[method]) {
		live(c.impl);
		return;
	}
	if (c) {
		this.drop(c);
	}
	if (!this.timer) {
		this.open();
	}
};

// open opens a connection over the current rung, once a token is at hand
// when one is needed (fresh: one was just fetched; do not ask again).
Engine.prototype.open = function (fresh) {
	window.clearTimeout(this.timer);
	this.timer = null;
	if (!this.wanted || this.conn || !this.recs.size || this.tokenWait) {
		return;
	}
	var a = this.opts.auth,
		self = this;
	if (a && !fresh && a.needed()) {
		var w = (this.tokenWait = {});
		this.setState("connecting");
		a.fetch().then(
			function () {
				if (self.tokenWait === w) {
					self.tokenWait = null;
					self.open(true);
				}
			},
			function (err) {
				if (self.tokenWait === w) {
					self.tokenWait = null;
					self.tokenFailed(err);
				}
			}
		);
		return;
	}
	var name = this.ladder[this.idx % this.ladder.length],
		c = (this.conn = { id: ++this.seq, name: name, dead: false, opened: false, useful: false, timer: null, impl: null, token: a ? a.token : null, renewal: null });
	this.setState("connecting");
	this.planRenewal(c);
	this.arm(c, Number(this.opts.connectTimeout) || 10000, "no answer within the connect timeout");
	try {
		c.impl = TRANSPORTS[name](this, c);
	} catch (err) {
		window.setTimeout(function () {
			self.ended(c, { reason: name + ": " + err.message });
		}, 0);
	}
};

// tokenFailed: getToken failed (threw, or returned no token) before a
// connection: reported, and tried again after a back-off.
Engine.prototype.tokenFailed = function (err) {
	if (!this.wanted) {
		return;
	}
	this.sink.error({ transport: null, message: "getToken: " + (err && err.message ? err.message : err), code: "getToken" });
	this.failures++;
	this.setState("reconnecting");
	var self = this;
	this.timer = window.setTimeout(function () {
		self.open();
	}, this.backoff());
};

// backoff returns the delay before the next try after this.failures
// consecutive failures.
Engine.prototype.backoff = function () {
	var base = Number(this.opts.retryDelay) || 1000,
		cap = Math.max(base, Number(this.opts.maxRetryDelay) || 30000);
	return jitter(Math.min(cap, base * Math.pow(2, Math.min(this.failures, 16) - 1)));
};

// planRenewal arms the renewal of the token before it expires, for as
// long as connection c lasts. A WebSocket is given the new token
// (impl.auth); the long poll uses it on its next request; SSE and NDJSON
// keep it for when the server ends them at the old one's expiry.
Engine.prototype.planRenewal = function (c) {
	var a = this.opts.auth,
		self = this;
	window.clearTimeout(c.renewal);
	c.renewal = null;
	var ms = a ? a.refreshDelay() : -1;
	if (ms < 0 || c.dead) {
		return;
	}
	c.renewal = window.setTimeout(function () {
		c.renewal = null;
		a.fetch().then(
			function (t) {
				if (c.dead) {
					return;
				}
				if (c.impl && c.impl.auth) {
					c.impl.auth(t);
					c.token = t;
				}
				self.planRenewal(c);
			},
			function (err) {
				if (c.dead) {
					return;
				}
				// The connection goes on with the old token; try again
				// soon (if it expires first, the server says so).
				self.sink.error({ transport: c.name, message: "getToken: " + (err && err.message ? err.message : err), code: "getToken" });
				c.renewal = window.setTimeout(function () {
					c.renewal = null;
					self.planRenewal(c);
				}, jitter(Math.max(2000, Number(self.opts.retryDelay) || 1000)));
			}
		);
	}, ms);
};

// token returns the token for a request of connection c (recorded on c:
// the token its end may be blamed on), or null.
Engine.prototype.token = function (c) {
	var a = this.opts.auth;
	if (!a || !a.token) {
		return null;
	}
	c.token = a.token;
	return a.token;
};

// arm (re)starts c's silence timer.
Engine.prototype.arm = function (c, ms, why) {
	var self = this;
	window.clearTimeout(c.timer);
	c.timer = null;
	if (ms > 0) {
		c.timer = window.setTimeout(function () {
			self.ended(c, { silent: true, reason: c.name + ": " + why });
		}, ms);
	}
};

Engine.prototype.drop = function (c) {
	c.dead = true;
	window.clearTimeout(c.timer);
	window.clearTimeout(c.renewal);
	if (c.impl) {
		try {
			c.impl.close();
		} catch (err) {}
	}
	if (this.conn === c) {
		this.conn = null;
	}
};

Engine.prototype.opened = function (c) {
	if (c.dead || c.opened) {
		return;
	}
	c.opened = true;
	this.arm(c, Number(this.opts.heartbeatTimeout) || 0, "no message or heartbeat for " + this.opts.heartbeatTimeout + " ms");
	this.setState("open");
};

// alive: data arrived on c (a message, a heartbeat, anything).
Engine.prototype.alive = function (c) {
	if (c.dead) {
		return;
	}
	if (!c.opened) {
		this.opened(c);
	}
	if (!c.useful) {
		c.useful = true;
		this.proven[c.name] = true;
		this.failures = 0;
		this.expiries = 0;
	}
	this.arm(c, Number(this.opts.heartbeatTimeout) || 0, "no message or heartbeat for " + this.opts.heartbeatTimeout + " ms");
	this.sink.alive(c.name);
};

// line handles one line of JSON: a WebSocket frame or an NDJSON line.
Engine.prototype.line = function (c, line) {
	line = line.trim();
	if (!line || c.dead) {
		return;
	}
	var o;
	try {
		o = JSON.parse(line);
	} catch (err) {
		this.sink.error({ transport: c.name, message: "unreadable data: " + line.slice(0, 100) });
		return;
	}
	var list = Array.isArray(o) ? o : [o];
	for (var i = 0; i < list.length && !c.dead; i++) {
		this.frame(c, list[i]);
	}
};

// event handles one SSE event: name is its type, data its data (null:
// none), id its id, the connection's cursor (null: none). A block with
// an id and no data (the first one) says where each channel starts.
Engine.prototype.event = function (c, name, data, id) {
	var cur = id === null ? null : parseCursor(id),
		ch;
	if (data === null) {
		for (ch in cur) {
			if (hasOwn(cur, ch) && !c.dead) {
				this.frame(c, { type: "subscribed", channel: ch, lastId: cur[ch].id, epoch: cur[ch].epoch });
			}
		}
		return;
	}
	if (name === "gap" || name === "close") {
		var o = null;
		try {
			o = JSON.parse(data);
		} catch (err) {}
		if (o && typeof o === "object" && !Array.isArray(o)) {
			this.frame(c, Object.assign({}, o, { type: name }));
		} else {
			this.sink.error({ transport: c.name, message: "unreadable " + name + " event: " + data.slice(0, 100) });
		}
		return;
	}
	ch = name;
	if (ch === "message" && this.recs.size === 1 && !this.recs.has(ch)) {
		ch = this.recs.keys().next().value; // a stream without ?event=channel
	}
	if (!this.recs.has(ch) || !cur || !hasOwn(cur, ch)) {
		this.sink.error({ transport: c.name, message: "an event of no channel: " + name });
		return;
	}
	if (cur[ch].epoch && this.recs.get(ch).epoch !== cur[ch].epoch) {
		this.recs.get(ch).epoch = cur[ch].epoch; // the stream's first message
	}
	this.frame(c, { type: "message", channel: ch, id: cur[ch].id, text: data });
};

// frame handles one object of the JSON transports.
Engine.prototype.frame = function (c, o) {
	if (c.dead || !o || typeof o !== "object") {
		return;
	}
	var rec = typeof o.channel === "string" && this.recs.has(o.channel) ? this.recs.get(o.channel) : null;
	switch (o.type) {
		case "message":
			if (rec && c.name === "xhrinteractive" && rec.epoch) {
				// A transport without epochs moved the position: the
				// epoch known before may be another stream's (a restart
				// since), so the next resume compares ids only.
				rec.epoch = "";
			}
			this.message(rec, o);
			break;
		case "subscribed":
			if (rec && o.epoch) {
				rec.epoch = String(o.epoch);
			}
			// Where the channel stands: resume after it if nothing comes.
			if (rec && rec.last === null && rec.base === null && !startOf(rec).last && !startOf(rec).history) {
				var id = Number(o.lastId);
				if (id >= 0) {
					rec.base = id;
				}
			}
			break;
		case "unsubscribed":
			// A leave the client did not ask for: a renewed token no
			// longer grants the channel (the WebSocket's auth op). As a
			// 403: a new connection would be refused it.
			if (rec && !(c.impl && c.impl.leaving && c.impl.leaving(o.channel))) {
				this.ended(c, { status: 403, why: "channel", error: "the renewed token does not grant " + o.channel, reason: "the server left " + o.channel + ": the renewed token does not grant it" });
			}
			break;
		case "epoch":
			// The stream the channel's messages come from, when it had
			// none as the client subscribed.
			if (rec && o.epoch) {
				rec.epoch = String(o.epoch);
			}
			break;
		case "gap":
			if (rec && o.reset) {
				// The stream the client stood in was lost (a restart, a
				// flush): it goes on in the new one, from its start.
				rec.epoch = o.epoch ? String(o.epoch) : "";
				rec.last = 0;
				rec.base = null;
				rec.lost = 0;
			} else if (rec && Number(o.trimmed) > 0) {
				rec.lost = Math.max(rec.lost || 0, Number(o.trimmed));
			}
			this.sink.gap({ channel: o.channel, since: o.since, trimmed: o.trimmed, reset: !!o.reset, epoch: o.epoch, transport: c.name });
			break;
		case "error":
			var status = Number(o.status || o.code);
			if (status === 401 || status === 403) {
				// A refusal of the token or of a channel: as the HTTP
				// transports' 401 and 403.
				this.ended(c, { status: status, why: o.reason, error: o.error || o.message, reason: "the server refused" + (o.channel ? " " + o.channel : "") + ": " + String(o.error || o.message || o.reason || status) });
				break;
			}
			this.sink.error({ transport: c.name, channel: o.channel, message: String(o.message || o.error || o.reason || "error"), code: o.code });
			if (o.op === "subscribe" && rec && c.impl && c.impl.add) {
				// Only this channel failed (the store was unavailable):
				// subscribe it again when the server says.
				var self = this,
					impl = c.impl,
					cap = Math.max(Number(this.opts.retryDelay) || 1000, Number(this.opts.maxRetryDelay) || 30000);
				window.setTimeout(function () {
					if (!c.dead && self.recs.get(o.channel) === rec) {
						impl.add(o.channel, rec);
					}
				}, jitter(2000 * Math.min(Number(o.retryAfter) || 3, cap / 1000)));
			}
			break;
		case "close":
			// By the code: channelClose (an administrator closed a
			// channel) stops; shutdown, slowConsumer come back and
			// resume.
			var info = closeInfo(Number(o.code), o.reconnect);
			info.tokenExpired = info.tokenExpired || o.reason === "tokenExpired";
			info.kicked = info.fatal;
			info.reason = "the server closed the stream" + (o.reason ? ": " + o.reason : "");
			this.ended(c, info);
			break;
	}
};

Engine.prototype.message = function (rec, o) {
	var id = Number(o.id);
	if (!rec || !(id >= 0)) {
		return;
	}
	if ((rec.last !== null && id <= rec.last) || id <= (rec.lost || 0)) {
		return; // had it already, or its gap was reported
	}
	rec.last = id;
	if (hasOwn(rec, "lastmsgreceived")) {
		rec.lastmsgreceived = id;
	}
	var msg = { id: id, channel: o.channel, text: o.text === undefined || o.text === null ? "" : String(o.text) };
	if (o.time !== undefined) {
		msg.time = Number(o.time);
	}
	if (o.extra && o.extra.length) {
		msg.extra = o.extra;
	}
	this.sink.deliver(rec, msg);
};

// ended handles the end of connection c. info: clean (the server ended
// a connection that worked: reconnect the same way), fatal (do not
// reconnect), silent (it went quiet), tokenExpired (the server ended it
// because its token expired), status (401, 403: refused; why, error: the
// refusal's reason and error), reason.
Engine.prototype.ended = function (c, info) {
	if (c.dead) {
		return;
	}
	var useful = c.useful,
		a = this.opts.auth;
	this.drop(c);
	if (!this.wanted) {
		return;
	}
	if (info.status === 401 || info.status === 403) {
		// A 401 for an expired token (said by its reason, or, when the
		// answer has none, by the token's exp or a newer token) is
		// renewed; any other refusal would come again: stop.
		info.code = info.status;
		if (info.status === 401 && a && (expiredReason(info.why) || (!info.why && (c.token !== a.token || a.pastExpiry(c.token))))) {
			info.tokenExpired = true;
		} else {
			info.fatal = true;
			info.refused = true;
		}
	} else if (a && a.getToken && !info.fatal && !info.clean && a.pastExpiry(c.token)) {
		// A failure while the token is past its exp (a WebSocket refused
		// at its handshake shows no status): renew it first.
		info.tokenExpired = true;
	}
	if (info.tokenExpired && a) {
		if (!a.getToken) {
			info.fatal = true;
			info.reason = "the token expired and there is no getToken to renew it (" + info.reason + ")";
		} else {
			a.expired(c.token);
			var delay = 0;
			if (useful) {
				this.failures = 0;
			} else {
				// Expired before anything came: a fresh token at once the
				// first time, then back off (getToken may keep giving an
				// expired one).
				this.failures++;
				if (++this.expiries > 1) {
					this.sink.error({ transport: c.name, message: info.reason, code: info.code });
					delay = this.backoff();
				}
			}
			this.setState("reconnecting");
			var me = this;
			this.timer = window.setTimeout(function () {
				me.open();
			}, delay);
			return;
		}
	}
	if (info.fatal) {
		this.wanted = false;
		this.setState("closed");
		this.sink.fatal(info.reason, info);
		return;
	}
	var delay,
		base = Number(this.opts.retryDelay) || 1000,
		cap = Math.max(base, Number(this.opts.maxRetryDelay) || 30000);
	if (info.retryAfter > 0) {
		// 503 with Retry-After: the server works but its store does not
		// now; 429: this address is past a per-address limit. The same
		// transport, after the time it asked for.
		this.sink.error({ transport: c.name, message: info.reason });
		delay = jitter(2000 * Math.min(info.retryAfter, cap / 1000));
	} else if (info.clean && useful) {
		// The server closed a connection that worked (a restart, a
		// slow-consumer cut, MaxTime): come back the same way.
		if (!info.quiet) {
			this.sink.reset(info.reason);
		}
		this.failures = 0;
		delay = info.quiet ? 0 : jitter(Math.min(base, 1000));
	} else {
		this.sink.error({ transport: c.name, message: info.reason });
		this.failures++;
		var proven = this.proven[c.name] && !info.silent;
		if (proven && this.failures <= 3) {
			// It worked before: the server or the network is down for a
			// while; keep this transport and back off.
			delay = jitter(Math.min(cap, base * Math.pow(2, this.failures - 1)));
		} else {
			// It never worked here, went silent, or keeps failing: the
			// next rung, at once; from the top again, after a pause,
			// when the ladder is exhausted.
			this.idx++;
			if (this.idx >= this.ladder.length) {
				this.idx = 0;
				delay = jitter(Math.min(cap, base * Math.pow(2, Math.min(this.failures, 16) - 1)));
			} else {
				delay = 0;
			}
		}
	}
	this.setState("reconnecting");
	var self = this;
	this.timer = window.setTimeout(function () {
		self.open();
	}, delay);
};

export { LADDER, STREAM_LADDER, Engine };

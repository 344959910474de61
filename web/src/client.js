// client.js: MeteorClient, the modern interface (Meteor.Client; meteor.mjs
// exports it as MeteorClient).

import { CHANNEL_NAME, noop, report, newHostId } from "./util.js";
import { LADDER, Engine } from "./reconnect.js";
import { Auth } from "./auth.js";

// The origin this script was loaded from: the default server of a
// MeteorClient.
var SCRIPT_ORIGIN = (function () {
	try {
		return new URL(document.currentScript.src).origin;
	} catch (e) {
		return window.location.origin;
	}
})();

// ------------------------------------------------------------------
// MeteorClient: the modern interface.

function Emitter() {
	this.handlers = {};
}

Emitter.prototype.on = function (evt, fn) {
	if (typeof fn !== "function") {
		throw new TypeError("Meteor: the handler of " + evt + " is not a function");
	}
	(this.handlers[evt] = this.handlers[evt] || []).push(fn);
	var self = this;
	return function () {
		self.off(evt, fn);
	};
};

Emitter.prototype.off = function (evt, fn) {
	var list = this.handlers[evt];
	if (list) {
		var i = list.indexOf(fn);
		if (i >= 0) {
			list.splice(i, 1);
		}
	}
};

Emitter.prototype.emit = function (evt, arg) {
	var list = (this.handlers[evt] || []).slice();
	for (var i = 0; i < list.length; i++) {
		try {
			list[i].call(this, arg);
		} catch (e) {
			report(e);
		}
	}
};

function checkChannel(name) {
	name = String(name);
	if (!CHANNEL_NAME.test(name)) {
		throw new Error("Meteor: invalid channel name " + JSON.stringify(name) + " (letters, digits, _ % - only)");
	}
	return name;
}

// Subscription is one subscribe() call: a callback, an async iterator,
// or both.
function Subscription(client, channel, rec, callback) {
	Emitter.call(this);
	this.client = client;
	this.channel = channel;
	this.rec = rec;
	this.callback = callback || null;
	this.closed = false;
	this.queue = []; // messages not yet taken by the iterator
	this.waiting = []; // pending next() calls
	this.iterated = false;
}

Subscription.prototype = Object.create(Emitter.prototype);

Object.defineProperty(Subscription.prototype, "lastId", {
	get: function () {
		return this.rec.last;
	}
});

Subscription.prototype.push = function (msg) {
	if (this.closed) {
		return;
	}
	if (this.callback) {
		try {
			this.callback(msg);
		} catch (e) {
			report(e);
		}
	}
	this.emit("message", msg);
	if (this.waiting.length) {
		this.waiting.shift()({ value: msg, done: false });
	} else if (this.iterated) {
		this.queue.push(msg);
	}
};

Subscription.prototype.close = function () {
	if (this.closed) {
		return;
	}
	this.closed = true;
	this.client.unsubscribe(this);
	var w = this.waiting;
	this.waiting = [];
	for (var i = 0; i < w.length; i++) {
		w[i]({ value: undefined, done: true });
	}
};

Subscription.prototype.next = function () {
	var self = this;
	this.iterated = true;
	if (this.queue.length) {
		return Promise.resolve({ value: this.queue.shift(), done: false });
	}
	if (this.closed) {
		return Promise.resolve({ value: undefined, done: true });
	}
	return new Promise(function (resolve) {
		self.waiting.push(resolve);
	});
};

Subscription.prototype["return"] = function () {
	this.close();
	this.queue = [];
	return Promise.resolve({ value: undefined, done: true });
};

Subscription.prototype[Symbol.asyncIterator] = function () {
	this.iterated = true;
	return this;
};

// MeteorClient(options): options.url (the server, default: where this
// script came from), transports (the ladder), heartbeatTimeout,
// connectTimeout, retryDelay, maxRetryDelay, pollTimeout; token (a
// subscriber token), getToken (a function returning a fresh token or a
// promise of one: called before connecting and before the token expires),
// tokenHeader (SSE, NDJSON and long-poll send the token as Authorization:
// Bearer rather than ?token=).
function MeteorClient(options) {
	if (!(this instanceof MeteorClient)) {
		throw new TypeError("MeteorClient must be called with new");
	}
	if (options && options.getToken !== undefined && options.getToken !== null && typeof options.getToken !== "function") {
		throw new TypeError("Meteor: getToken is not a function");
	}
	Emitter.call(this);
	var o = Object.assign(
		{ url: SCRIPT_ORIGIN, transports: LADDER, heartbeatTimeout: 35000, connectTimeout: 10000, retryDelay: 1000, maxRetryDelay: 30000, pollTimeout: 25 },
		options || {}
	);
	var url = new URL(String(o.url), window.location.href);
	this.url = url.origin;
	this.options = o;
	this.subs = new Map(); // channel -> Set of Subscription
	this.closed = false;
	this.hostID = newHostId();
	var self = this;
	this.engine = new Engine(
		{
			origin: this.url,
			transports: o.transports,
			heartbeatTimeout: o.heartbeatTimeout,
			connectTimeout: o.connectTimeout,
			retryDelay: o.retryDelay,
			maxRetryDelay: o.maxRetryDelay,
			pollTimeout: o.pollTimeout,
			pushpath: o.pushpath,
			auth: o.token || o.getToken ? new Auth(o.token, o.getToken) : null,
			tokenHeader: !!o.tokenHeader,
			hostid: function () {
				return self.hostID;
			}
		},
		{
			deliver: function (rec, msg) {
				self.emit("message", msg);
				var set = self.subs.get(msg.channel);
				if (set) {
					set.forEach(function (s) {
						s.push(msg);
					});
				}
			},
			status: function (state, transport) {
				self.emit("status", { state: state, transport: transport });
			},
			alive: noop,
			gap: function (g) {
				self.emit("gap", g);
				var set = self.subs.get(g.channel);
				if (set) {
					set.forEach(function (s) {
						s.emit("gap", g);
					});
				}
			},
			error: function (err) {
				self.emit("error", err);
			},
			reset: noop,
			fatal: function (reason, info) {
				var err = { transport: self.engine.transport, message: reason, fatal: true, code: info.code };
				if (info.refused) {
					// 401 or 403: the server's error and reason ("expired",
					// "signature", "channel", ...)
					err.status = info.status;
					if (info.why) {
						err.reason = info.why;
					}
					if (info.error) {
						err.error = info.error;
					}
				} else if (info.tokenExpired) {
					err.reason = "tokenExpired";
				}
				self.emit("error", err);
				self.close();
			}
		}
	);
}

MeteorClient.prototype = Object.create(Emitter.prototype);
MeteorClient.prototype.constructor = MeteorClient;

Object.defineProperty(MeteorClient.prototype, "status", {
	get: function () {
		return this.engine.state;
	}
});
Object.defineProperty(MeteorClient.prototype, "transport", {
	get: function () {
		return this.engine.transport;
	}
});

// subscribe(channel, [options], [callback]): options.since (the last id
// already seen: what follows it), last (the last N stored messages
// first), history ("all": every stored message first).
MeteorClient.prototype.subscribe = function (channel, options, callback) {
	if (typeof options === "function") {
		callback = options;
		options = null;
	}
	if (this.closed) {
		throw new Error("Meteor: the client is closed");
	}
	channel = checkChannel(channel);
	options = options || {};
	var rec = this.engine.recs.get(channel),
		fresh = !rec;
	if (fresh) {
		var start = {};
		if (options.last > 0) {
			start.last = Math.floor(options.last);
		} else if (options.history === "all" || options.history === true) {
			start.history = true;
		}
		var since = options.since === undefined || options.since === null ? null : Number(options.since);
		if (since !== null && !(since >= 0)) {
			throw new Error("Meteor: since must be a message id");
		}
		rec = { last: since, base: null, start: start };
	}
	var sub = new Subscription(this, channel, rec, callback);
	if (!this.subs.has(channel)) {
		this.subs.set(channel, new Set());
	}
	this.subs.get(channel).add(sub);
	if (fresh) {
		this.engine.add(channel, rec);
		if (!this.engine.wanted) {
			var self = this,
				e = this.engine;
			// start once the caller's other subscribe() calls are in
			Promise.resolve().then(function () {
				if (!e.wanted && e.recs.size && !self.closed) {
					e.start();
				}
			});
		}
	}
	return sub;
};

MeteorClient.prototype.unsubscribe = function (sub) {
	var set = this.subs.get(sub.channel);
	if (!set || !set.delete(sub)) {
		return;
	}
	if (!set.size) {
		this.subs.delete(sub.channel);
		this.engine.remove(sub.channel);
	}
};

// close ends the connection and every subscription.
MeteorClient.prototype.close = function () {
	if (this.closed) {
		return;
	}
	this.closed = true;
	this.engine.stop();
	var all = [];
	this.subs.forEach(function (set) {
		set.forEach(function (s) {
			all.push(s);
		});
	});
	for (var i = 0; i < all.length; i++) {
		all[i].close();
	}
};

export { MeteorClient };

// helpers.js: the helper pages stream.html and poll.html (Meteor.frame).

import { noop, now } from "./util.js";
import { ScriptReader } from "./parser.js";
import { xhrRequest } from "./http.js";

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

export { relatedHost, serveBridge, legacyFrame };

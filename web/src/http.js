// http.js: the requests of the script-based transports, direct or through
// the cross-origin helper frame.

import { noop } from "./util.js";

// How long the cross-origin helper frame may take to answer.
var FRAME_TIMEOUT = 5000;

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

// log is Meteor.log of the global Meteor that uses these requests
// (setLog): the messages of the helper frame go there.
var log = noop;

function setLog(fn) {
	log = fn;
}

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
	log("Helper frame unusable (" + why + "): using direct requests, which need CORS");
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

// listenBridge makes the page listen to the helper frame's answers; the
// global Meteor calls it once, as it is built.
function listenBridge() {
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
}


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

// requestAt makes a request to origin: directly on this page's origin,
// else through the helper frame (direct, needing CORS, when the frame
// is refused). showFrame, if given, is called when the request waits for
// the frame to load (the global Meteor shows it in Meteor.status).
function requestAt(origin, path, h, showFrame) {
	if (origin !== window.location.origin) {
		var b = getBridge(origin);
		if (!b.failed) {
			if (!b.ready && showFrame) {
				showFrame();
			}
			return bridgeRequest(b, path, h);
		}
	}
	return xhrRequest(origin + path, h);
}

export { xhrRequest, hiddenFrame, removeFrame, requestAt, listenBridge, setLog };

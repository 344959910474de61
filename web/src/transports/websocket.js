// websocket.js: the WebSocket transport (GET /ws).

import { noop } from "../util.js";
import { wsSubscribe } from "../channels.js";
import { closeInfo } from "../closecodes.js";

// authOp is the operation that gives an open WebSocket a new token.
function authOp(token) {
	return JSON.stringify({ op: "auth", token: token });
}

export default function websocket(e, c) {
	var ws,
		tok = e.token(c),
		renewed = null, // a token renewed before the socket opened
		leaves = Object.create(null); // channel -> unsubscribe ops not yet answered
	try {
		// A browser's WebSocket cannot set headers: the token goes in the URL.
		ws = new WebSocket(e.origin.replace(/^http/, "ws") + "/ws" + (tok ? "?token=" + encodeURIComponent(tok) : ""));
	} catch (err) {
		window.setTimeout(function () {
			e.ended(c, { reason: "WebSocket: " + err.message });
		}, 0);
		return { close: noop };
	}
	ws.onopen = function () {
		e.opened(c);
		if (renewed) {
			ws.send(authOp(renewed));
			renewed = null;
		}
		e.recs.forEach(function (rec, name) {
			ws.send(wsSubscribe(name, rec));
		});
	};
	ws.onmessage = function (ev) {
		if (typeof ev.data !== "string") {
			return;
		}
		e.alive(c);
		ev.data.split("\n").forEach(function (line) {
			e.line(c, line);
		});
	};
	ws.onclose = function (ev) {
		var info = closeInfo(ev.code);
		info.kicked = info.fatal;
		info.reason = "WebSocket closed (" + ev.code + (ev.reason ? " " + ev.reason : "") + ")";
		e.ended(c, info);
	};
	return {
		close: function () {
			ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
			try {
				ws.close(1000);
			} catch (err) {}
		},
		// auth gives the server a renewed token (it answers nothing; a
		// token it refuses closes the socket).
		auth: function (token) {
			if (ws.readyState === 1) {
				ws.send(authOp(token));
			} else {
				renewed = token;
			}
		},
		add: function (name, rec) {
			if (ws.readyState === 1) {
				ws.send(wsSubscribe(name, rec));
			}
		},
		remove: function (name) {
			if (ws.readyState === 1) {
				ws.send(JSON.stringify({ op: "unsubscribe", channel: name }));
				leaves[name] = (leaves[name] || 0) + 1;
			}
		},
		// leaving reports whether an unsubscribed frame for name answers
		// a remove (else the server left the channel on its own).
		leaving: function (name) {
			if (leaves[name] > 0) {
				leaves[name]--;
				return true;
			}
			return false;
		}
	};
}

// websocket.js: the WebSocket transport (GET /ws).

import { noop } from "../util.js";
import { wsSubscribe } from "../channels.js";
import { closeInfo } from "../closecodes.js";

export default function websocket(e, c) {
	var ws;
	try {
		ws = new WebSocket(e.origin.replace(/^http/, "ws") + "/ws");
	} catch (err) {
		window.setTimeout(function () {
			e.ended(c, { reason: "WebSocket: " + err.message });
		}, 0);
		return { close: noop };
	}
	ws.onopen = function () {
		e.opened(c);
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
		add: function (name, rec) {
			if (ws.readyState === 1) {
				ws.send(wsSubscribe(name, rec));
			}
		},
		remove: function (name) {
			if (ws.readyState === 1) {
				ws.send(JSON.stringify({ op: "unsubscribe", channel: name }));
			}
		}
	};
}

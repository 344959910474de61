// longpoll.js: the JSON long-poll transport (GET /poll/...), the ladder's
// "poll".

import { hasOwn } from "../util.js";
import { parseCursor } from "../channels.js";
import { httpURL, headers, refusal } from "../stream.js";

export default function poll(e, c) {
	var ctl = null,
		timer = null,
		closed = false;
	function poll() {
		if (closed || c.dead) {
			return;
		}
		ctl = new AbortController();
		var url = httpURL(e, c, "poll");
		fetch(url, { signal: ctl.signal, cache: "no-store", headers: headers(e, c, "application/json") })
			.then(function (resp) {
				if (resp.status !== 200) {
					return refusal(resp, url).then(function (info) {
						e.ended(c, info);
						return null;
					});
				}
				return resp.json();
			})
			.then(function (body) {
				if (!body || closed || c.dead) {
					return;
				}
				e.opened(c);
				e.alive(c);
				(body.gaps || []).forEach(function (g) {
					e.frame(c, Object.assign({}, g, { type: "gap" }));
				});
				(body.messages || []).forEach(function (m) {
					if (!c.dead) {
						e.frame(c, m);
					}
				});
				// The cursor names where each channel stands, also those
				// with no message yet: resume there.
				var cur = parseCursor(body.cursor);
				for (var name in cur) {
					if (hasOwn(cur, name) && !c.dead) {
						e.frame(c, { type: "subscribed", channel: name, lastId: cur[name].id, epoch: cur[name].epoch });
					}
				}
				// An answer forced by a kick or a shutdown says so: a
				// kick stops the client, a shutdown makes it come back.
				if (body.closed && !c.dead) {
					// (tokenExpired: renew the token and resume)
					e.frame(c, { type: "close", reason: body.closed, code: body.code, reconnect: body.reconnect });
					return;
				}
				timer = window.setTimeout(poll, 0);
			})
			.catch(function (err) {
				if (!closed) {
					e.ended(c, { reason: url.split("?")[0] + ": " + (err && err.message ? err.message : err) });
				}
			});
	}
	poll();
	return {
		close: function () {
			closed = true;
			window.clearTimeout(timer);
			if (ctl) {
				ctl.abort();
			}
		}
	};
}

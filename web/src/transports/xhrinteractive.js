// xhrinteractive.js: the 1.06 stream as a rung of the ladder.

import { RECYCLE_CHARS, now } from "../util.js";
import { ScriptReader } from "../parser.js";
import { requestAt } from "../http.js";
import { elements } from "../channels.js";

// xhrinteractive: the 1.06 stream of <script> calls, the last rung of
// the global Meteor's ladder. Through the helper frame on another origin.
export default function xhrinteractive(e, c) {
	var path = String(e.opts.pushpath || "/push").replace(/\/+$/, "") + "/" + e.hostid() + "/xhrinteractive/" + elements(e) + "?nc=" + now(),
		tok = e.token(c);
	if (tok) {
		path += "&token=" + encodeURIComponent(tok);
	}
	var reader = new ScriptReader(function (name, args) {
		if (c.dead) {
			return;
		}
		if (name === "p") {
			if (Number(args[0]) !== -1) {
				e.frame(c, { type: "message", id: Number(args[0]), channel: String(args[1]), text: args[2] === undefined || args[2] === null ? "" : String(args[2]), extra: args.slice(3) });
			}
		} else if (name === "ch") {
			e.frame(c, { type: "subscribed", channel: String(args[0]), lastId: Number(args[1]) });
		} else if (name === "eof") {
			e.ended(c, { fatal: true, eof: true, reason: "the server sent eof()" });
		}
	});
	var chars = 0;
	var req = requestAt(e.origin, path, {
		head: function (status) {
			if (status === 200) {
				e.opened(c);
			}
		},
		data: function (text) {
			if (c.dead) {
				return;
			}
			e.alive(c);
			reader.push(text);
			chars += text.length;
			if (!c.dead && chars > RECYCLE_CHARS) {
				e.ended(c, { clean: true, quiet: true, reason: "reopening a long stream" });
			}
		},
		end: function (ok, status) {
			e.ended(c, { clean: ok, status: status, reason: ok ? "the server ended the stream" : "xhrinteractive: " + (status ? "HTTP " + status : "failed") });
		}
	});
	return {
		close: function () {
			reader.stop();
			req.abort();
		}
	};
}

// stream.js: what the HTTP transports (SSE, NDJSON, long-poll) share: the
// URL, the reading of a body by lines, a 503's Retry-After.

import { now } from "./util.js";
import { elements, cursor } from "./channels.js";

function httpURL(e, kind, extra) {
	var url = e.origin + "/" + kind + "/" + elements(e),
		q = extra ? [extra] : [],
		cur = cursor(e);
	if (cur) {
		q.push("since=" + encodeURIComponent(cur));
	}
	if (kind === "poll") {
		q.push("timeout=" + e.pollSeconds());
	}
	q.push("nc=" + now().toString(36));
	return url + "?" + q.join("&");
}

// lineReader calls onLine for each line of a body read with fetch.
// onChunk is called for every piece, so that any data counts as life.
function readBody(resp, onChunk, onLine) {
	var reader = resp.body.getReader(),
		dec = new TextDecoder(),
		buf = "";
	function pump() {
		return reader.read().then(function (r) {
			if (r.done) {
				buf += dec.decode();
				if (buf) {
					onLine(buf);
				}
				return;
			}
			onChunk();
			buf += dec.decode(r.value, { stream: true });
			var i;
			while ((i = buf.search(/\r\n|\r|\n/)) >= 0) {
				if (buf.charAt(i) === "\r" && i === buf.length - 1) {
					break; // perhaps CRLF split between pieces
				}
				var line = buf.slice(0, i);
				buf = buf.slice(buf.charAt(i) === "\r" && buf.charAt(i + 1) === "\n" ? i + 2 : i + 1);
				onLine(line);
			}
			return pump();
		});
	}
	return pump();
}

// The transports. Each opens a connection for engine e, reports on
// connection c through e's methods, and returns {close()} (after which it

// retryAfter returns the seconds of a 503's Retry-After (3 when the
// header is absent or hidden from a cross-origin page), 0 for any
// other status.
function retryAfter(resp) {
	if (resp.status !== 503) {
		return 0;
	}
	var n = Number(resp.headers.get("Retry-After"));
	return n > 0 ? n : 3;
}

// fetchStream runs one streaming GET: onLine for each line of the body,
// then e.ended. A status other than 200 is a failure.
function fetchStream(e, c, url, accept, onLine) {
	var ctl = new AbortController();
	fetch(url, { signal: ctl.signal, cache: "no-store", headers: { Accept: accept } })
		.then(function (resp) {
			if (c.dead) {
				return;
			}
			if (resp.status !== 200 || !resp.body) {
				e.ended(c, { reason: url.split("?")[0] + ": HTTP " + resp.status, fatal: resp.status === 403, retryAfter: retryAfter(resp) });
				return;
			}
			e.opened(c);
			return readBody(
				resp,
				function () {
					if (!c.dead) {
						e.alive(c);
					}
				},
				function (line) {
					if (!c.dead) {
						onLine(line);
					}
				}
			).then(function () {
				e.ended(c, { clean: true, reason: "the server ended the stream" });
			});
		})
		.catch(function (err) {
			e.ended(c, { reason: url.split("?")[0] + ": " + (err && err.message ? err.message : err) });
		});
	return {
		close: function () {
			ctl.abort();
		}
	};
}

export { httpURL, readBody, retryAfter, fetchStream };

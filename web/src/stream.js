// stream.js: what the HTTP transports (SSE, NDJSON, long-poll) share: the
// URL and headers (with the token), the reading of a body by lines, a
// 503's Retry-After, a 401's or 403's reason.

import { now } from "./util.js";
import { elements, cursor } from "./channels.js";

// httpURL returns the URL of a request of connection c: the channels,
// the cursor, and the token unless it goes in a header (tokenHeader).
function httpURL(e, c, kind, extra) {
	var url = e.origin + "/" + kind + "/" + elements(e),
		q = extra ? [extra] : [],
		cur = cursor(e),
		tok = e.token(c);
	if (cur) {
		q.push("since=" + encodeURIComponent(cur));
	}
	if (kind === "poll") {
		q.push("timeout=" + e.pollSeconds());
	}
	if (tok && !e.opts.tokenHeader) {
		q.push("token=" + encodeURIComponent(tok));
	}
	q.push("nc=" + now().toString(36));
	return url + "?" + q.join("&");
}

// headers returns the headers of a request of connection c (made after
// httpURL: c.token is its token).
function headers(e, c, accept) {
	var h = { Accept: accept };
	if (c.token && e.opts.tokenHeader) {
		h.Authorization = "Bearer " + c.token;
	}
	return h;
}

// refusal returns a promise of what ended a connection for a response
// that is not a 200, for e.ended: a 401's or 403's error and reason (from
// its JSON body {"error", "reason"}), a 503's Retry-After.
function refusal(resp, url) {
	var info = { reason: url.split("?")[0] + ": HTTP " + resp.status, status: resp.status, retryAfter: retryAfter(resp) };
	if (resp.status !== 401 && resp.status !== 403) {
		return Promise.resolve(info);
	}
	return resp
		.json()
		.then(
			function (b) {
				if (b && typeof b === "object") {
					if (typeof b.reason === "string") {
						info.why = b.reason;
					}
					if (typeof b.error === "string") {
						info.error = b.error;
						info.reason += " (" + b.error + (info.why ? ": " + info.why : "") + ")";
					}
				}
			},
			function () {}
		)
		.then(function () {
			return info;
		});
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

// retryAfter returns the seconds of a 503's or 429's Retry-After (when
// the header is absent or hidden from a cross-origin page: 3 for a 503,
// 1 for a 429, a per-address limit), 0 for any other status.
function retryAfter(resp) {
	if (resp.status !== 503 && resp.status !== 429) {
		return 0;
	}
	var n = Number(resp.headers.get("Retry-After"));
	return n > 0 ? n : resp.status === 429 ? 1 : 3;
}

// fetchStream runs one streaming GET: onLine for each line of the body,
// then e.ended. A status other than 200 is a failure; 401 and 403 are
// refusals (e.ended decides).
function fetchStream(e, c, url, accept, onLine) {
	var ctl = new AbortController();
	fetch(url, { signal: ctl.signal, cache: "no-store", headers: headers(e, c, accept) })
		.then(function (resp) {
			if (c.dead) {
				return;
			}
			if (resp.status !== 200 || !resp.body) {
				return refusal(resp, url).then(function (info) {
					e.ended(c, info);
				});
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

export { httpURL, headers, refusal, readBody, retryAfter, fetchStream };

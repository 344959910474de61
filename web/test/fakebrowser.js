// fakebrowser.js: the little of a browser that MeteorClient (web/src) uses,
// for node tests: a window with a fake clock (setTimeout and Date.now move
// only when a test advances them), a WebSocket the test plays the server
// of, and fetch with responses the test writes. Import it before src/.

export const clock = { now: 1_800_000_000_000, timers: [], seq: 0 };

Date.now = () => clock.now;

function setTimeout_(fn, ms) {
	const id = ++clock.seq;
	clock.timers.push({ id, at: Math.ceil(clock.now + Math.max(0, Number(ms) || 0)), fn });
	return id;
}

function clearTimeout_(id) {
	clock.timers = clock.timers.filter((t) => t.id !== id);
}

globalThis.window = {
	location: { hostname: "site.example", port: "", protocol: "https:", origin: "https://site.example", href: "https://site.example/app/" },
	addEventListener() {},
	setTimeout: setTimeout_,
	clearTimeout: clearTimeout_,
	crypto: globalThis.crypto,
};

// flush lets pending promise callbacks (fetch answers, body reads) run.
export async function flush() {
	for (let i = 0; i < 10; i++) {
		await new Promise((r) => setImmediate(r));
	}
}

// advance moves the clock ms forward, running the timers that come due in
// order, with the promise callbacks each one leads to.
export async function advance(ms) {
	const end = clock.now + ms;
	for (;;) {
		await flush();
		clock.timers.sort((a, b) => a.at - b.at || a.id - b.id);
		const t = clock.timers[0];
		if (!t || t.at > end) {
			break;
		}
		clock.timers.shift();
		clock.now = Math.max(clock.now, t.at);
		t.fn();
	}
	clock.now = end;
	await flush();
}

// reset forgets every timer, socket and request of the previous test.
export function reset() {
	clock.timers = [];
	sockets.length = 0;
	requests.length = 0;
}

// ------------------------------------------------------------------
// WebSocket: each one made is in sockets; the test accepts it, sends it
// frames and closes it as the server would.

export const sockets = [];

export class FakeWebSocket {
	constructor(url) {
		this.url = url;
		this.readyState = 0;
		this.sent = [];
		this.closedWith = null;
		this.onopen = this.onmessage = this.onclose = this.onerror = null;
		sockets.push(this);
	}
	send(data) {
		if (this.readyState !== 1) {
			throw new Error("send on a WebSocket that is not open");
		}
		this.sent.push(JSON.parse(data));
	}
	close(code) {
		this.readyState = 3;
		this.closedWith = code;
	}
	// the server's side
	accept() {
		this.readyState = 1;
		if (this.onopen) this.onopen({});
	}
	frame(obj) {
		if (this.onmessage) this.onmessage({ data: JSON.stringify(obj) });
	}
	serverClose(code, reason = "") {
		this.readyState = 3;
		if (this.onclose) this.onclose({ code, reason });
	}
	ops(op) {
		return this.sent.filter((o) => o.op === op);
	}
}

globalThis.WebSocket = FakeWebSocket;

// ------------------------------------------------------------------
// fetch: each request is in requests, {url, headers, signal}; the test
// answers it with stream(), json() or status().

export const requests = [];

class Body {
	constructor() {
		this.chunks = [];
		this.waiting = null;
		this.done = false;
		this.error = null;
	}
	getReader() {
		return {
			read: () => {
				if (this.error) return Promise.reject(this.error);
				if (this.chunks.length) return Promise.resolve({ done: false, value: this.chunks.shift() });
				if (this.done) return Promise.resolve({ done: true, value: undefined });
				return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
			},
		};
	}
	push(text) {
		const value = new TextEncoder().encode(text);
		if (this.waiting) {
			const w = this.waiting;
			this.waiting = null;
			w.resolve({ done: false, value });
		} else {
			this.chunks.push(value);
		}
	}
	end() {
		this.done = true;
		if (this.waiting) {
			const w = this.waiting;
			this.waiting = null;
			w.resolve({ done: true, value: undefined });
		}
	}
	fail(err) {
		this.error = err;
		if (this.waiting) {
			const w = this.waiting;
			this.waiting = null;
			w.reject(err);
		}
	}
}

function response(status, body, json, hdrs = {}) {
	return {
		status,
		headers: { get: (name) => hdrs[name.toLowerCase()] ?? null },
		body,
		json: () => (json === undefined ? Promise.reject(new SyntaxError("not JSON")) : Promise.resolve(json)),
	};
}

globalThis.fetch = function (url, opts = {}) {
	return new Promise((resolve, reject) => {
		const req = {
			url,
			headers: opts.headers || {},
			aborted: false,
			body: null,
			query(name) {
				return new URL(url).searchParams.get(name);
			},
			// stream answers 200 with a body the test writes (req.body.push, end)
			stream() {
				req.body = new Body();
				resolve(response(200, req.body));
				return req.body;
			},
			json(obj, status = 200) {
				resolve(response(status, new Body(), obj));
			},
			status(status, obj, hdrs) {
				resolve(response(status, new Body(), obj, hdrs));
			},
		};
		if (opts.signal) {
			opts.signal.addEventListener("abort", () => {
				req.aborted = true;
				const err = new Error("aborted");
				err.name = "AbortError";
				if (req.body) req.body.fail(err);
				reject(err);
			});
		}
		requests.push(req);
	});
};

// ------------------------------------------------------------------
// Tokens.

function b64url(s) {
	return Buffer.from(s).toString("base64url");
}

// jwt returns an unsigned-looking JWT with the given claims (the client
// reads the payload only).
export function jwt(claims) {
	return b64url(JSON.stringify({ alg: "HS256", typ: "JWT" })) + "." + b64url(JSON.stringify(claims)) + "." + b64url("sig");
}

// nowSec is the fake clock in Unix seconds.
export function nowSec() {
	return Math.floor(clock.now / 1000);
}

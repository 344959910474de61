// MeteorClient with tokens (SubscriberAuth): getToken before connecting,
// the token on every transport, its renewal before it expires (the
// WebSocket's auth operation), renewing and resuming without loss when
// the server says tokenExpired (WebSocket 4003, an SSE or NDJSON close
// event, a long poll's closed answer, a 401 whose reason is expired), and
// the end, reported once and with no reconnect loop, of any other
// refusal. The server's side is played by the test (fakebrowser.js).
import { test, beforeEach } from "node:test";
import assert from "node:assert/strict";
import { advance, clock, jwt, nowSec, requests, reset, sockets } from "./fakebrowser.js";
import { MeteorClient } from "../src/client.js";
import { Auth, jwtClaims } from "../src/auth.js";

beforeEach(reset);

const URL_ = "https://push.example";

// tokens returns a getToken that makes a new token each call, valid for
// life seconds, and the list of the tokens it made.
function tokens(life = 600) {
	const made = [];
	const getToken = async () => {
		const t = jwt({ sub: "u1", channels: ["demo"], iat: nowSec(), exp: nowSec() + life, n: made.length + 1 });
		made.push(t);
		return t;
	};
	return { made, getToken };
}

function client(opts) {
	const c = new MeteorClient({ url: URL_, heartbeatTimeout: 0, ...opts });
	const log = { ids: [], errors: [], states: [] };
	c.on("error", (e) => log.errors.push(e));
	c.on("status", (s) => log.states.push(s.state));
	c.subscribe("demo", (m) => log.ids.push(m.id));
	return { c, log };
}

function q(url, name) {
	return new URL(url).searchParams.get(name);
}

test("jwtClaims reads a JWT's payload, and nothing else", () => {
	assert.deepEqual(jwtClaims(jwt({ exp: 5, sub: "\u00e9" }).replace(/=/g, "")).exp, 5);
	assert.equal(jwtClaims("opaque-token"), null);
	assert.equal(jwtClaims("a.b.c"), null);
	assert.equal(jwtClaims("a." + Buffer.from("[1]").toString("base64url") + ".c"), null);
});

test("the renewal time: a tenth of the lifetime, at least 30 s, at most half; from iat, whatever the client's clock", () => {
	const at = clock.now;
	const cases = [
		[3600, 3600 - 360], // an hour: 6 minutes before
		[300, 270], // 5 minutes: 30 s before
		[40, 20], // 40 s: halfway
	];
	for (const [life, renew] of cases) {
		const a = new Auth(null, () => "x");
		a.set(jwt({ iat: 1000, exp: 1000 + life })); // a clock far off: iat counts
		assert.equal(a.refreshAt() - at, renew * 1000, `lifetime ${life}`);
	}
	// no iat: exp against the client's clock
	const a = new Auth(null, () => "x");
	a.set(jwt({ exp: nowSec() + 600 }));
	assert.ok(Math.abs(a.refreshAt() - (at + 540_000)) < 1000);
	// no exp, or no getToken: nothing to plan
	a.set("opaque");
	assert.equal(a.refreshAt(), null);
	assert.equal(new Auth(jwt({ iat: 1, exp: 100 })).refreshAt(), null);
	assert.equal(new Auth(jwt({ iat: 1, exp: 100 })).needed(), false);
});

test("getToken is called before connecting, the token goes in the WebSocket URL, and an auth operation renews it before exp", async () => {
	const t = tokens(600);
	const { c, log } = client({ transports: ["websocket"], getToken: t.getToken });
	await advance(0);
	assert.equal(t.made.length, 1);
	assert.equal(sockets.length, 1);
	const ws = sockets[0];
	assert.equal(ws.url.split("?")[0], "wss://push.example/ws");
	assert.equal(q(ws.url, "token"), t.made[0]);
	ws.accept();
	assert.deepEqual(ws.ops("subscribe"), [{ op: "subscribe", channel: "demo" }]);
	ws.frame({ type: "message", channel: "demo", id: 5, text: "a" });

	// 600 s: renewed 60 s before its end
	await advance(539_000);
	assert.equal(t.made.length, 1);
	assert.deepEqual(ws.ops("auth"), []);
	await advance(1000);
	assert.equal(t.made.length, 2);
	assert.deepEqual(ws.ops("auth"), [{ op: "auth", token: t.made[1] }]);
	// and the new one in its turn
	await advance(540_000);
	assert.deepEqual(ws.ops("auth"), [
		{ op: "auth", token: t.made[1] },
		{ op: "auth", token: t.made[2] },
	]);
	assert.equal(sockets.length, 1, "a renewal reconnected");
	assert.deepEqual(log.errors, []);
	assert.deepEqual(log.ids, [5]);
	c.close();
	await advance(2_000_000);
	assert.equal(t.made.length, 3, "getToken called after close");
});

test("a token renewed while the WebSocket is still opening is sent as it opens, before the subscriptions", async () => {
	const t = tokens(2); // renewed after 1 s
	const { c } = client({ transports: ["websocket"], getToken: t.getToken });
	await advance(0);
	await advance(1500);
	assert.equal(t.made.length, 2);
	const ws = sockets[0];
	assert.equal(q(ws.url, "token"), t.made[0]);
	ws.accept();
	assert.deepEqual(ws.sent, [
		{ op: "auth", token: t.made[1] },
		{ op: "subscribe", channel: "demo" },
	]);
	c.close();
});

test("WebSocket 4003 tokenExpired: a new token, and the channel resumes after its last message", async () => {
	const t = tokens(3600);
	const { c, log } = client({ transports: ["websocket"], getToken: t.getToken });
	await advance(0);
	let ws = sockets[0];
	ws.accept();
	ws.frame({ type: "subscribed", channel: "demo", lastId: 4, epoch: "ep1" });
	ws.frame({ type: "message", channel: "demo", id: 5, text: "a" });
	ws.serverClose(4003, "tokenExpired");
	await advance(0);
	assert.equal(t.made.length, 2, "the server said the token expired: a new one, though its exp is far");
	assert.equal(sockets.length, 2);
	ws = sockets[1];
	assert.equal(q(ws.url, "token"), t.made[1]);
	ws.accept();
	assert.deepEqual(ws.ops("subscribe"), [{ op: "subscribe", channel: "demo", since: 5, epoch: "ep1" }]);
	ws.frame({ type: "message", channel: "demo", id: 5, text: "a" }); // a repeat is dropped
	ws.frame({ type: "message", channel: "demo", id: 6, text: "b" });
	assert.deepEqual(log.ids, [5, 6]);
	assert.deepEqual(log.errors, []);
	assert.equal(c.status, "open");
	c.close();
});

test("a token due for renewal is renewed before a reconnection, not before", async () => {
	const t = tokens(600);
	let failing = false;
	const { c, log } = client({
		transports: ["websocket"],
		retryDelay: 1000,
		getToken: () => (failing ? Promise.reject(new Error("offline")) : t.getToken()),
	});
	await advance(0);
	sockets[0].accept();
	sockets[0].frame({ type: "message", channel: "demo", id: 5, text: "a" });
	await advance(100_000);
	sockets[0].serverClose(1006); // the network
	await advance(3000);
	assert.equal(sockets.length, 2);
	assert.equal(t.made.length, 1, "a token with 500 s left was renewed");
	assert.equal(q(sockets[1].url, "token"), t.made[0]);
	sockets[1].accept();
	// its renewal fails (the page's back end is away), then the socket drops
	failing = true;
	await advance(540_000 - 103_000);
	assert.deepEqual(log.errors.filter((e) => e.code === "getToken").length, 1);
	failing = false;
	sockets[1].serverClose(1006);
	await advance(0);
	assert.equal(sockets.length, 2);
	await advance(2000);
	assert.equal(t.made.length, 2, "a token due for renewal was not renewed before connecting");
	assert.equal(sockets.length, 3);
	assert.equal(q(sockets[2].url, "token"), t.made[1]);
	c.close();
});

// sse writes the server's side of an SSE stream.
function sseMessage(id, text, epoch = "ep1") {
	return `event: demo\nid: demo:${id}@${epoch}\ndata: ${text}\n\n`;
}
const SSE_EXPIRED = 'event: close\ndata: {"reason":"tokenExpired","code":4003,"reconnect":true}\n\n';

test("SSE: the token in the URL, renewed ahead, and a tokenExpired close event resumes with it at once", async () => {
	const t = tokens(60); // renewed halfway: 30 s
	const { c, log } = client({ transports: ["sse"], getToken: t.getToken });
	await advance(0);
	assert.equal(requests.length, 1);
	let r = requests[0];
	assert.match(r.url, /^https:\/\/push\.example\/sse\/demo\?/);
	assert.equal(q(r.url, "token"), t.made[0]);
	assert.equal(r.headers.Authorization, undefined);
	let body = r.stream();
	body.push("id: demo:4@ep1\n\n" + sseMessage(5, "a"));
	await advance(30_000);
	assert.equal(t.made.length, 2, "renewed before exp");
	assert.equal(requests.length, 1, "SSE keeps its connection until the server ends it");
	await advance(15_000);
	body.push(SSE_EXPIRED);
	body.end();
	await advance(0);
	assert.equal(t.made.length, 2, "the token renewed ahead serves: no getToken");
	assert.equal(requests.length, 2);
	r = requests[1];
	assert.equal(q(r.url, "token"), t.made[1]);
	assert.equal(q(r.url, "since"), "demo:5@ep1");
	body = r.stream();
	body.push("id: demo:5@ep1\n\n" + sseMessage(6, "b"));
	await advance(0);
	assert.deepEqual(log.ids, [5, 6]);
	assert.deepEqual(log.errors, []);
	c.close();
});

test("NDJSON: a tokenExpired close line gets a new token and resumes from the cursor", async () => {
	const t = tokens(3600);
	const { c, log } = client({ transports: ["ndjson"], getToken: t.getToken });
	await advance(0);
	let r = requests[0];
	assert.match(r.url, /^https:\/\/push\.example\/ndjson\/demo\?/);
	assert.equal(q(r.url, "token"), t.made[0]);
	let body = r.stream();
	body.push('{"type":"subscribed","channel":"demo","lastId":4,"epoch":"ep1"}\n{"type":"message","channel":"demo","id":5,"text":"a"}\n');
	body.push('{"type":"close","reason":"tokenExpired","code":4003,"reconnect":true}\n');
	body.end();
	await advance(0);
	assert.equal(t.made.length, 2);
	r = requests[1];
	assert.equal(q(r.url, "token"), t.made[1]);
	assert.equal(q(r.url, "since"), "demo:5@ep1");
	r.stream().push('{"type":"message","channel":"demo","id":6,"text":"b"}\n');
	await advance(0);
	assert.deepEqual(log.ids, [5, 6]);
	assert.deepEqual(log.errors, []);
	c.close();
});

test("long-poll: each poll carries the current token; a closed tokenExpired answer gets a new one and polls on from the cursor", async () => {
	const t = tokens(60);
	const { c, log } = client({ transports: ["poll"], getToken: t.getToken });
	await advance(0);
	let r = requests[0];
	assert.match(r.url, /^https:\/\/push\.example\/poll\/demo\?/);
	assert.equal(q(r.url, "token"), t.made[0]);
	r.json({ messages: [{ type: "message", channel: "demo", id: 5, text: "a" }], cursor: "demo:5@ep1" });
	await advance(0);
	assert.equal(requests.length, 2);
	assert.equal(q(requests[1].url, "token"), t.made[0]);
	await advance(30_000); // renewed while the poll waits
	assert.equal(t.made.length, 2);
	requests[1].json({ messages: [], cursor: "demo:5@ep1" });
	await advance(0);
	assert.equal(q(requests[2].url, "token"), t.made[1], "the next poll carries the renewed token");
	requests[2].json({ messages: [], cursor: "demo:5@ep1", closed: "tokenExpired" }); // the reason alone says it
	await advance(0);
	assert.equal(t.made.length, 3);
	r = requests[3];
	assert.equal(q(r.url, "token"), t.made[2]);
	assert.equal(q(r.url, "since"), "demo:5@ep1");
	r.json({ messages: [{ type: "message", channel: "demo", id: 6, text: "b" }], cursor: "demo:6@ep1" });
	await advance(0);
	assert.deepEqual(log.ids, [5, 6]);
	assert.deepEqual(log.errors, []);
	c.close();
});

test("401 with reason expired: a new token at once, then a back-off if getToken keeps giving expired ones", async () => {
	const t = tokens(3600);
	const first = jwt({ iat: nowSec(), exp: nowSec() + 3600 });
	const { c, log } = client({ transports: ["sse"], token: first, getToken: t.getToken, retryDelay: 1000 });
	await advance(0);
	assert.equal(t.made.length, 0, "the token given serves the first connection");
	assert.equal(q(requests[0].url, "token"), first);
	requests[0].status(401, { error: "token expired", reason: "expired" });
	await advance(0);
	assert.equal(t.made.length, 1);
	assert.equal(requests.length, 2);
	assert.equal(q(requests[1].url, "token"), t.made[0]);
	assert.deepEqual(log.errors, [], "one expiry is not an error");
	requests[1].status(401, { error: "token expired", reason: "expired" });
	await advance(0);
	assert.equal(t.made.length, 1);
	assert.equal(requests.length, 2, "a second expiry in a row: not at once");
	assert.equal(log.errors.length, 1);
	assert.equal(log.errors[0].fatal, undefined);
	await advance(2000);
	assert.equal(t.made.length, 2, "a new token again");
	assert.equal(requests.length, 3);
	assert.equal(q(requests[2].url, "token"), t.made[1]);
	requests[2].stream().push("id: demo:4@ep1\n\n" + sseMessage(5, "a"));
	await advance(0);
	assert.deepEqual(log.ids, [5]);
	assert.equal(c.status, "open");
	c.close();
});

// fatal checks that the client stopped for good after a refusal.
async function stopped(c, log, t, want) {
	await advance(0);
	assert.equal(log.errors.length, 1, JSON.stringify(log.errors));
	const e = log.errors[0];
	assert.equal(e.fatal, true);
	for (const k in want) {
		assert.equal(e[k], want[k], k);
	}
	assert.equal(c.status, "closed");
	const n = requests.length + sockets.length,
		made = t.made.length;
	await advance(600_000);
	assert.equal(requests.length + sockets.length, n, "it reconnected");
	assert.equal(t.made.length, made, "it asked for tokens");
	assert.equal(log.errors.length, 1);
}

for (const transport of ["sse", "ndjson", "poll"]) {
	test(`${transport}: 403 (channel not granted) stops the client and says why`, async () => {
		const t = tokens();
		const { c, log } = client({ transports: [transport], getToken: t.getToken });
		const it = c.subscribe("other")[Symbol.asyncIterator]();
		const done = it.next();
		await advance(0);
		requests[0].status(403, { error: "the token does not grant this channel", reason: "channel" });
		await stopped(c, log, t, { status: 403, code: 403, reason: "channel", error: "the token does not grant this channel", transport });
		assert.deepEqual(await done, { value: undefined, done: true });
	});

	test(`${transport}: a 401 other than expired stops the client`, async () => {
		const t = tokens();
		const { c, log } = client({ transports: [transport], getToken: t.getToken });
		await advance(0);
		requests[0].status(401, { error: "signature is invalid", reason: "signature" });
		await stopped(c, log, t, { status: 401, reason: "signature" });
	});
}

test("a 401 without a readable body stops the client, unless its token is past exp or was renewed since", async () => {
	let t = tokens();
	let { c, log } = client({ transports: ["sse"], getToken: t.getToken });
	await advance(0);
	requests[0].status(401);
	await stopped(c, log, t, { status: 401 });

	// renewed since the request
	reset();
	t = tokens(60);
	({ c, log } = client({ transports: ["poll"], getToken: t.getToken }));
	await advance(0);
	requests[0].json({ messages: [], cursor: "demo:4@ep1" });
	await advance(30_000);
	assert.equal(t.made.length, 2);
	assert.equal(requests.length, 2);
	assert.equal(q(requests[1].url, "token"), t.made[0]);
	requests[1].status(401);
	await advance(0);
	assert.equal(requests.length, 3);
	assert.equal(q(requests[2].url, "token"), t.made[1]);
	assert.deepEqual(log.errors, []);
	c.close();

	// past exp: the renewal failed
	reset();
	t = tokens(60);
	let failing = false;
	({ c, log } = client({ transports: ["poll"], getToken: () => (failing ? Promise.reject(new Error("offline")) : t.getToken()) }));
	await advance(0);
	requests[0].json({ messages: [], cursor: "demo:4@ep1" });
	failing = true;
	await advance(61_000);
	assert.ok(log.errors.length > 0 && log.errors.every((e) => e.code === "getToken" && !e.fatal), JSON.stringify(log.errors));
	failing = false;
	assert.equal(requests.length, 2);
	requests[1].status(401);
	await advance(0);
	assert.equal(t.made.length, 2);
	assert.equal(requests.length, 3);
	assert.equal(q(requests[2].url, "token"), t.made[1]);
	assert.ok(log.errors.every((e) => !e.fatal));
	c.close();
});

test("WebSocket: an error frame refusing a channel (403) stops the client", async () => {
	const t = tokens();
	const { c, log } = client({ transports: ["websocket"], getToken: t.getToken });
	await advance(0);
	sockets[0].accept();
	sockets[0].frame({ type: "error", op: "subscribe", channel: "demo", code: 403, error: "the token does not grant this channel", reason: "channel" });
	await stopped(c, log, t, { status: 403, reason: "channel" });
	assert.equal(sockets[0].closedWith, 1000);
});

test("WebSocket: the server leaving a channel that the renewed token no longer grants stops the client; a leave it asked for does not", async () => {
	const t = tokens();
	const { c, log } = client({ transports: ["websocket"], getToken: t.getToken });
	await advance(0);
	const ws = sockets[0];
	ws.accept();
	const other = c.subscribe("other");
	ws.frame({ type: "subscribed", channel: "other", lastId: 0, epoch: "" });
	other.close(); // the client leaves, and joins again before the answer
	c.subscribe("other");
	ws.frame({ type: "unsubscribed", channel: "other" });
	await advance(0);
	assert.deepEqual(log.errors, []);
	assert.equal(c.status, "open");
	ws.frame({ type: "unsubscribed", channel: "demo" });
	await stopped(c, log, t, { status: 403, reason: "channel" });
});

test("a token without getToken: it is used, and its expiry stops the client", async () => {
	const tok = jwt({ iat: nowSec(), exp: nowSec() + 600 });
	const t = { made: [] };
	const { c, log } = client({ transports: ["websocket"], token: tok });
	await advance(0);
	assert.equal(q(sockets[0].url, "token"), tok);
	sockets[0].accept();
	await advance(600_000);
	assert.deepEqual(sockets[0].ops("auth"), [], "nothing to renew it with");
	sockets[0].serverClose(4003, "tokenExpired");
	await stopped(c, log, t, { reason: "tokenExpired", code: 4003 });
	assert.match(log.errors[0].message, /getToken/);
});

test("getToken failing before a connection: reported, tried again after a back-off", async () => {
	let calls = 0;
	const { c, log } = client({
		transports: ["websocket"],
		retryDelay: 1000,
		getToken: () => {
			calls++;
			if (calls === 1) throw new Error("offline");
			if (calls === 2) return Promise.resolve("");
			return Promise.resolve("opaque-token");
		},
	});
	await advance(0);
	assert.equal(calls, 1);
	assert.equal(sockets.length, 0);
	assert.deepEqual(
		log.errors.map((e) => [e.code, e.message, !!e.fatal]),
		[["getToken", "getToken: offline", false]],
	);
	assert.equal(c.status, "reconnecting");
	await advance(1000);
	assert.equal(calls, 2);
	assert.equal(log.errors[1].message, "getToken: getToken returned no token");
	await advance(2000);
	assert.equal(calls, 3);
	assert.equal(sockets.length, 1);
	assert.equal(q(sockets[0].url, "token"), "opaque-token");
	sockets[0].accept();
	await advance(3_600_000);
	assert.equal(calls, 3, "a token without exp is not renewed");
	c.close();
});

test("tokenHeader: the fetch transports send Authorization: Bearer instead of ?token=", async () => {
	const t = tokens();
	const { c } = client({ transports: ["ndjson"], getToken: t.getToken, tokenHeader: true });
	await advance(0);
	assert.equal(q(requests[0].url, "token"), null);
	assert.equal(requests[0].headers.Authorization, "Bearer " + t.made[0]);
	c.close();
});

test("429 (a per-address limit) keeps the transport and waits its Retry-After", async () => {
	const t = tokens();
	const { c, log } = client({ transports: ["sse", "ndjson"], getToken: t.getToken });
	await advance(0);
	requests[0].status(429, undefined, { "retry-after": "2" });
	await advance(0);
	assert.equal(requests.length, 1);
	assert.equal(log.errors.length, 1);
	assert.equal(log.errors[0].fatal, undefined);
	await advance(4000);
	assert.equal(requests.length, 2);
	assert.match(requests[1].url, /\/sse\//, "a 429 moved the client down the ladder");
	assert.equal(t.made.length, 1);
	c.close();
});

test("getToken must be a function", () => {
	assert.throws(() => new MeteorClient({ url: URL_, getToken: "abc" }), /getToken is not a function/);
});

// The served files (public/meteor.js, meteor.mjs, meteor.esm.js) are what
// `npm run build` makes of src/ now: a change to src/ that was not built,
// or a hand edit of a built file, fails here.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { runInNewContext } from "node:vm";
import { build, stale } from "../build.js";

test("public/ is up to date with src/", async () => {
	assert.deepEqual(await stale(), [], "public/ differs from a fresh build: run npm run build in web/");
});

test("the build is deterministic", async () => {
	assert.deepEqual(await build(), await build());
});

// The built classic script, run with the little of a browser it touches
// while it loads, defines the global Meteor once, with its parser.
test("public/meteor.js defines Meteor, once", () => {
	const listeners = [];
	const window = {
		location: { hostname: "push.example.com", port: "4670", protocol: "http:", origin: "http://push.example.com:4670", href: "http://push.example.com:4670/" },
		addEventListener: (type) => listeners.push(type),
		setTimeout,
		clearTimeout,
	};
	const ctx = { window, document: {}, URL };
	const src = readFileSync(new URL("../public/meteor.js", import.meta.url), "utf8");
	runInNewContext(src, ctx);
	const M = window.Meteor;
	assert.equal(M.client, "meteor-go");
	assert.equal(M.version, "1.06-go.1");
	assert.equal(M.host, "push.example.com");
	assert.equal(M.port, 4670);
	assert.equal(typeof M.Client, "function");
	assert.equal(M.closeCodes[4000].reconnect, false);
	assert.deepEqual(JSON.parse(JSON.stringify(M.parse('<script>p(7,"demo","a\\u00e9");eof()</script>'))), [["p", 7, "demo", "a\u00e9"], ["eof"]]);
	assert.deepEqual(listeners.sort(), ["message", "pagehide", "pageshow"]);
	runInNewContext(src, ctx);
	assert.equal(window.Meteor, M, "a second load replaced the running client");
	assert.equal(listeners.length, 3, "a second load added listeners");
});

test("meteor.esm.js is meteor.mjs", () => {
	const a = readFileSync(new URL("../public/meteor.mjs", import.meta.url));
	const b = readFileSync(new URL("../public/meteor.esm.js", import.meta.url));
	assert.ok(a.equals(b));
});

// The 1.06 call parser (src/parser.js) under node's test runner. The
// browser tests (parser_test... in web/*_test.go) compare it with
// Chromium's own JavaScript parser; these pin its results down without a
// browser.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parse, readString, ScriptReader } from "../src/parser.js";

test("messages, pings, channel info and eof", () => {
	const body =
		"<html><body>padding\r\n" +
		'<script>p(1,"demo","hello");</script>\r\n' +
		"<script>p(-1,\"\");</script>" +
		'<script>ch("demo", 17);</script>' +
		"<script>eof();</script>";
	assert.deepEqual(parse(body), [
		["p", 1, "demo", "hello"],
		["p", -1, ""],
		["ch", "demo", 17],
		["eof"],
	]);
});

test("several calls in one element, spaces, both quotes, extra arguments", () => {
	assert.deepEqual(parse("<script> p( 2 , 'a' , \"x\" , 1700000000 ) ; ;p(3,'a','y');</script>"), [
		["p", 2, "a", "x", 1700000000],
		["p", 3, "a", "y"],
	]);
});

test("literals: numbers, true, false, null", () => {
	assert.deepEqual(parse("<script>f(0, -1, +2.5, .5, 1e3, 1.5E-2, true, false, null)</script>"), [
		["f", 0, -1, 2.5, 0.5, 1000, 0.015, true, false, null],
	]);
});

test("every escape of a string literal", () => {
	const cases = [
		[String.raw`"a\"b"`, 'a"b'],
		[String.raw`'a\'b'`, "a'b"],
		[String.raw`"\\ \/"`, "\\ /"],
		[String.raw`"\n\r\t\b\f\v"`, "\n\r\t\b\f\v"],
		[String.raw`"\0"`, "\0"],
		[String.raw`"\x41\x7e"`, "A~"],
		[String.raw`"\u00e9\u2028"`, "\u00e9\u2028"],
		[String.raw`"\u{1F600}\u{41}"`, "\u{1F600}A"],
		[String.raw`"\101\7\08"`, "A\x07\x008"],
		[String.raw`"\377\400"`, "\xff\x200"],
		['"a\\\nb"', "ab"],
		['"a\\\r\nb"', "ab"],
		['"a\\\rb"', "ab"],
		['"a\\\u2028b"', "ab"],
		[String.raw`"\q\</script>"`, "q</script>"],
		['"</script>"', "</script>"],
		['"é€😀"', "é€😀"],
	];
	for (const [lit, want] of cases) {
		const r = readString(lit, 0);
		assert.deepEqual(r, { value: want, end: lit.length }, lit);
		assert.deepEqual(parse(`<script>p(1,"c",${lit})</script>`), [["p", 1, "c", want]], lit);
	}
});

test("a malformed element is skipped whole; the next ones are read", () => {
	const bad = [
		'<script>p(1,"c","a\nb")</script>', // a raw line break in a literal
		'<script>p(1,"c",x)</script>', // a name, not a literal
		'<script>p(1,"c","x"</script>', // no closing parenthesis
		'<script>p(1 2)</script>',
		'<script>p(1,"c","\\x4")</script>',
		'<script>p(1,"c","\\u{110000}")</script>',
		'<script>p(1,"c","x");alert(1)+1</script>',
		'<script>p(1,"c",01x)</script>',
		"<script>(1)</script>",
		'<script>p(1,"c",x,"<script>p(5,\'c\',\'inside\')</script>', // skipped up to its first </script>
	];
	for (const b of bad) {
		const body = b + '<script>p(9,"c","ok")</script>';
		assert.deepEqual(parse(body), [["p", 9, "c", "ok"]], b);
		for (let i = 0; i <= body.length; i++) {
			assert.deepEqual(parse([body.slice(0, i), body.slice(i)]), [["p", 9, "c", "ok"]], `${b} split at ${i}`);
		}
	}
});

test("script elements with attributes and text outside elements are ignored", () => {
	assert.deepEqual(parse('<script type="text/javascript">p(1,"c","no")</script>p(2,"c","no")<script>p(3,"c","yes")</script>'), [
		["p", 3, "c", "yes"],
	]);
});

test("a body split at every position gives the same calls", () => {
	const body =
		'junk<scr<script>p(1,"ch","a\\"b\\u00e9\\u{1F600}\\x41\\101");ch(\'ch\',0)</script>\r\n' +
		'<script>p(-1,"")</script><script>p(2,"ch","\\\r\nx", true, null, -3.5e2)</script><script>eof()</script>';
	const whole = parse(body);
	assert.equal(whole.length, 5);
	for (let i = 0; i <= body.length; i++) {
		assert.deepEqual(parse([body.slice(0, i), body.slice(i)]), whole, `split at ${i}`);
	}
	for (let i = 0; i < body.length; i++) {
		for (let j = i; j <= body.length; j += 7) {
			assert.deepEqual(parse([body.slice(0, i), body.slice(i, j), body.slice(j)]), whole, `split at ${i}, ${j}`);
		}
	}
});

test("an incomplete element waits for the rest", () => {
	const calls = [];
	const r = new ScriptReader((name, args) => calls.push([name, ...args]));
	r.push('<script>p(1,"c","ab');
	assert.deepEqual(calls, []);
	r.push('c")</scr');
	assert.deepEqual(calls, []);
	r.push("ipt>");
	assert.deepEqual(calls, [["p", 1, "c", "abc"]]);
});

test("stop() ends the delivery, also within a piece", () => {
	const calls = [];
	const r = new ScriptReader((name, args) => {
		calls.push([name, ...args]);
		if (name === "eof") {
			r.stop();
		}
	});
	r.push('<script>p(1,"c","a");eof();p(2,"c","b")</script><script>p(3,"c","c")</script>');
	r.push('<script>p(4,"c","d")</script>');
	assert.deepEqual(calls, [["p", 1, "c", "a"], ["eof"]]);
});

// parser.js: the parser of the 1.06 wire format, the <script>p(...);</script>
// calls of the legacy modes. It has no dependency and touches no browser
// API, so that node's test runner can test it (web/test/parser.test.js).

// ------------------------------------------------------------------
// The wire parser.
//
// A response body is a sequence of <script>CALLS</script> chunks, with
// anything else (padding, HTML) in between. CALLS is one or more
// name(arg, ...) calls separated by semicolons, where each argument is a
// number, a string literal in either quote style, true, false or null.

var OPEN = "<script>",
	CLOSE = "</script>";
var NEED = { need: true }, // the input ends before the construct does
	BAD = { bad: true }; // the construct is not well formed

function isSpace(c) {
	return c === 32 || (c >= 9 && c <= 13) || c === 0xa0 || c === 0xfeff || c === 0x2028 || c === 0x2029;
}

function skipSpace(s, i) {
	while (i < s.length && isSpace(s.charCodeAt(i))) {
		i++;
	}
	return i;
}

function isIdentChar(c, first) {
	return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 36 || (!first && c >= 48 && c <= 57);
}

function hexValue(s, i, n) {
	// the value of the n hex digits at s[i:], NEED or BAD
	if (i + n > s.length) {
		return /^[0-9a-f]*$/i.test(s.slice(i)) ? NEED : BAD;
	}
	var h = s.substr(i, n);
	return /^[0-9a-f]+$/i.test(h) ? parseInt(h, 16) : BAD;
}

// readString reads the string literal that starts with the quote at
// s[i]. It returns {value, end} (end: the index after the closing
// quote), NEED or BAD. Every escape of ECMAScript is understood, the
// legacy octal ones included.
function readString(s, i) {
	var quote = s.charCodeAt(i),
		n = s.length,
		out = "",
		start = ++i;
	while (i < n) {
		var c = s.charCodeAt(i);
		if (c === quote) {
			return { value: out + s.slice(start, i), end: i + 1 };
		}
		if (c === 10 || c === 13) {
			return BAD; // a raw line break cannot be inside a literal
		}
		if (c !== 92) {
			i++;
			continue;
		}
		out += s.slice(start, i);
		if (++i >= n) {
			return NEED;
		}
		var e = s.charAt(i),
			v;
		switch (e) {
			case "n": out += "\n"; i++; break;
			case "r": out += "\r"; i++; break;
			case "t": out += "\t"; i++; break;
			case "b": out += "\b"; i++; break;
			case "f": out += "\f"; i++; break;
			case "v": out += "\v"; i++; break;
			case "x":
				v = hexValue(s, i + 1, 2);
				if (v === NEED || v === BAD) {
					return v;
				}
				out += String.fromCharCode(v);
				i += 3;
				break;
			case "u":
				if (i + 1 >= n) {
					return NEED;
				}
				if (s.charAt(i + 1) === "{") {
					var close = s.indexOf("}", i + 2);
					if (close < 0) {
						return /^[0-9a-f]*$/i.test(s.slice(i + 2)) ? NEED : BAD;
					}
					var digits = s.slice(i + 2, close);
					if (!/^[0-9a-f]+$/i.test(digits)) {
						return BAD;
					}
					v = parseInt(digits, 16);
					if (v > 0x10ffff) {
						return BAD;
					}
					out += String.fromCodePoint(v);
					i = close + 1;
				} else {
					v = hexValue(s, i + 1, 4);
					if (v === NEED || v === BAD) {
						return v;
					}
					out += String.fromCharCode(v);
					i += 5;
				}
				break;
			case "\r":
				// a line continuation: backslash, then CR or CRLF
				if (i + 1 >= n) {
					return NEED;
				}
				i += s.charAt(i + 1) === "\n" ? 2 : 1;
				break;
			case "\n":
			case "\u2028":
			case "\u2029":
				i++;
				break;
			default:
				if (e >= "0" && e <= "7") {
					// \0 alone is NUL; otherwise a legacy octal escape of up
					// to three digits whose value is at most 255
					var j = i,
						max = e <= "3" ? 3 : 2;
					while (j < n && j - i < max && s.charAt(j) >= "0" && s.charAt(j) <= "7") {
						j++;
					}
					if (j === n && j - i < max) {
						return NEED;
					}
					out += String.fromCharCode(parseInt(s.slice(i, j), 8));
					i = j;
				} else {
					// \" \' \\ \/ and every other character stand for
					// themselves
					out += e;
					i++;
				}
		}
		start = i;
	}
	return NEED;
}

// readValue reads one argument at s[i]: {value, end}, NEED or BAD.
function readValue(s, i) {
	var c = s.charCodeAt(i);
	if (c === 34 || c === 39) {
		return readString(s, i);
	}
	var j = i;
	if (isIdentChar(c, true)) {
		while (j < s.length && isIdentChar(s.charCodeAt(j), false)) {
			j++;
		}
		if (j === s.length) {
			return NEED;
		}
		var word = s.slice(i, j);
		if (word === "true") return { value: true, end: j };
		if (word === "false") return { value: false, end: j };
		if (word === "null") return { value: null, end: j };
		return BAD;
	}
	while (j < s.length && /[-+0-9.eExXa-fA-F]/.test(s.charAt(j))) {
		j++;
	}
	if (j === s.length) {
		return NEED;
	}
	var text = s.slice(i, j);
	if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) {
		return BAD;
	}
	return { value: Number(text), end: j };
}

// parseScript reads the calls of one script element whose text starts at
// s[i]: {calls, end} (end: the index after "</script>"), NEED or BAD.
function parseScript(s, i) {
	var n = s.length,
		calls = [];
	for (;;) {
		i = skipSpace(s, i);
		if (i >= n) {
			return NEED;
		}
		var c = s.charCodeAt(i);
		if (c === 59) { // ;
			i++;
			continue;
		}
		if (c === 60) { // <
			if (n - i < CLOSE.length) {
				return CLOSE.indexOf(s.slice(i)) === 0 ? NEED : BAD;
			}
			return s.substr(i, CLOSE.length) === CLOSE ? { calls: calls, end: i + CLOSE.length } : BAD;
		}
		var j = i;
		while (j < n && isIdentChar(s.charCodeAt(j), j === i)) {
			j++;
		}
		if (j === i) {
			return BAD;
		}
		var name = s.slice(i, j);
		i = skipSpace(s, j);
		if (i >= n) {
			return NEED;
		}
		if (s.charCodeAt(i) !== 40) { // (
			return BAD;
		}
		var args = [];
		i = skipSpace(s, i + 1);
		if (i >= n) {
			return NEED;
		}
		if (s.charCodeAt(i) === 41) { // )
			i++;
		} else {
			for (;;) {
				var v = readValue(s, i);
				if (v === NEED || v === BAD) {
					return v;
				}
				args.push(v.value);
				i = skipSpace(s, v.end);
				if (i >= n) {
					return NEED;
				}
				c = s.charCodeAt(i);
				if (c === 41) {
					i++;
					break;
				}
				if (c !== 44) { // ,
					return BAD;
				}
				i = skipSpace(s, i + 1);
				if (i >= n) {
					return NEED;
				}
			}
		}
		calls.push({ name: name, args: args });
	}
}

// ScriptReader turns a response body, given in pieces as it arrives,
// into calls: onCall(name, args) for each. A malformed script element is
// skipped whole. stop() ends the delivery of calls, even in the middle of
// a piece.
function ScriptReader(onCall) {
	this.buf = "";
	this.onCall = onCall;
	this.stopped = false;
}

ScriptReader.prototype.push = function (piece) {
	var s = this.buf + piece,
		pos = 0;
	while (!this.stopped) {
		var start = s.indexOf(OPEN, pos);
		if (start < 0) {
			// keep what may be the beginning of "<script>"
			pos = Math.max(pos, s.length - (OPEN.length - 1));
			break;
		}
		var r = parseScript(s, start + OPEN.length);
		if (r === NEED) {
			pos = start;
			break;
		}
		if (r === BAD) {
			var close = s.indexOf(CLOSE, start + OPEN.length);
			if (close < 0) {
				pos = start; // perhaps complete, and well formed, later
				break;
			}
			pos = close + CLOSE.length;
			continue;
		}
		pos = r.end;
		for (var k = 0; k < r.calls.length && !this.stopped; k++) {
			this.onCall(r.calls[k].name, r.calls[k].args);
		}
	}
	this.buf = this.stopped ? "" : s.slice(pos);
};

ScriptReader.prototype.stop = function () {
	this.stopped = true;
	this.buf = "";
};

// parse returns the calls in a body, given whole or as an array of the
// pieces in which it arrived, for tests and tools.
function parse(body) {
	var calls = [],
		r = new ScriptReader(function (name, args) {
			calls.push([name].concat(args));
		}),
		pieces = typeof body === "string" ? [body] : body;
	for (var i = 0; i < pieces.length; i++) {
		r.push(String(pieces[i]));
	}
	return calls;
}

export { ScriptReader, parse, readString };

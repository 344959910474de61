// util.js: what the modules share: limits, checks, time, the reporting of
// a page's exceptions.

// A stream whose response text has grown past this many characters is
// reopened (resuming after its last message) to bound its memory.
var RECYCLE_CHARS = 4 << 20;

var CHANNEL_NAME = /^[a-z0-9_%\-]+$/i;
var HOST_ID = /^[0-9a-z]+$/i;

function noop() {}

function now() {
	return Date.now();
}

function report(err) {
	// Surface an exception thrown by a page's callback without letting it
	// break the stream that delivered the message.
	window.setTimeout(function () {
		throw err;
	}, 0);
}

var hasOwn = function (o, k) {
	return Object.prototype.hasOwnProperty.call(o, k);
};

function jitter(ms) {
	// between half and all of ms, so that clients do not all come back
	// in the same instant after a restart
	return ms / 2 + (Math.random() * ms) / 2;
}

function newHostId() {
	var id = "";
	if (window.crypto && window.crypto.getRandomValues) {
		var a = window.crypto.getRandomValues(new Uint32Array(3));
		for (var i = 0; i < a.length; i++) {
			id += a[i].toString(36);
		}
	} else {
		id = now().toString(36) + Math.floor(Math.random() * 1e9).toString(36);
	}
	return id;
}

export { RECYCLE_CHARS, CHANNEL_NAME, HOST_ID, noop, now, report, hasOwn, jitter, newHostId };

// closecodes.js: the server's close codes.

// CLOSE_CODES says, for each close code the server sends (WebSocket
// close frames; the "code" of SSE and NDJSON close events and of a
// long-poll's "closed" answer), the first reason with that code and
// whether to reconnect. It is internal/reason's table (a browser test
// compares the two): the client decides by code, never by the name.
var CLOSE_CODES = {
	1000: { name: "responseComplete", reconnect: true },
	1001: { name: "shutdown", reconnect: true },
	1002: { name: "protocolError", reconnect: false },
	1008: { name: "policyViolation", reconnect: false },
	1009: { name: "messageTooBig", reconnect: false },
	1011: { name: "writeError", reconnect: true },
	1012: { name: "restart", reconnect: true },
	4000: { name: "channelClose", reconnect: false },
	4001: { name: "slowConsumer", reconnect: true },
	4002: { name: "streamReset", reconnect: true },
	4003: { name: "tokenExpired", reconnect: true },
	4004: { name: "storeUnavailable", reconnect: true },
	4005: { name: "newSubscriberWithSameID", reconnect: false },
	4006: { name: "disconnectRequested", reconnect: false }
};

// closeInfo returns how a connection the server closed with code ends:
// fatal (do not reconnect), clean (reconnect the same way at once), or
// neither (a failure: back off). A store that is unavailable and a
// server error are failures; an unknown code (1006: the connection
// dropped) too. tokenExpired: the token that admitted the connection
// expired; a client with getToken renews it and resumes.
function closeInfo(code, reconnect) {
	var known = CLOSE_CODES[code];
	if (typeof reconnect !== "boolean") {
		reconnect = known ? known.reconnect : true;
	}
	return {
		fatal: !reconnect,
		clean: reconnect && !!known && code !== 4004 && code !== 1011,
		code: code,
		tokenExpired: code === 4003
	};
}

export { CLOSE_CODES, closeInfo };

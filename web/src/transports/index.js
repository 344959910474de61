// transports/index.js: the transports of the ladder, by name.

import websocket from "./websocket.js";
import sse from "./sse.js";
import ndjson from "./ndjson.js";
import poll from "./longpoll.js";
import xhrinteractive from "./xhrinteractive.js";

// The transports. Each opens a connection for engine e, reports on
// connection c through e's methods, and returns {close()} (after which it
// reports nothing), with add(name, rec) and remove(name) when it can
// change its channels without reconnecting.
var TRANSPORTS = {};

TRANSPORTS.websocket = websocket;
TRANSPORTS.sse = sse;
TRANSPORTS.ndjson = ndjson;
TRANSPORTS.poll = poll;
TRANSPORTS.xhrinteractive = xhrinteractive;

export { TRANSPORTS };

/*
 * meteor.js: the browser client of the Meteor Comet server.
 *
 * It defines one global object, Meteor, with the interface of the Meteor
 * 1.06 client, so pages written for that client keep working unchanged:
 *
 *   Meteor.hostid = "...";                  // optional: [0-9a-z]+
 *   Meteor.host = "data.example.com";       // default: this page's host
 *   Meteor.port = 4670;                     // default: this page's port
 *   Meteor.mode = "stream";                 // or longpoll, smartpoll, simplepoll
 *                                           // "stream": WebSocket, SSE, NDJSON,
 *                                           // long-poll, then xhrinteractive
 *   Meteor.registerEventCallback("process", function (text, channel, id) {});
 *   Meteor.joinChannel("demo", 10);         // with the last 10 messages
 *   Meteor.connect();
 *
 * Messages arrive as <script>p(id,"channel","text");</script> chunks. They
 * are read by a small parser for JavaScript call expressions and string
 * literals, never by eval, so a message can only ever be text. The new
 * transports (WebSocket, SSE, NDJSON, JSON long-poll) carry JSON objects.
 *
 * The same file holds the modern interface, Meteor.Client, which meteor.mjs
 * exports as MeteorClient:
 *
 *   const client = new Meteor.Client({url: "http://data.example.com:4670"});
 *   const sub = client.subscribe("demo", {last: 10}, msg => console.log(msg));
 *   for await (const msg of client.subscribe("other")) { ... }
 *
 * docs/client.md describes both interfaces, the transports and the wire
 * formats.
 *
 * This file is built from the ES modules in web/src (entry point
 * src/classic.js) by `npm run build` in web/, with esbuild: edit those,
 * not this file.
 */

// classic.js, the entry point of public/meteor.js: it
// sets the global Meteor (the 1.06 interface, with the modern client as
// Meteor.Client), once: a page that loads the script twice keeps the
// running client.

import { createMeteor } from "./legacy.js";

if (!(window.Meteor && window.Meteor.client === "meteor-go")) {
	window.Meteor = createMeteor();
}

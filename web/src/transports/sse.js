// sse.js: the Server-Sent Events transport (GET /sse/...), read with fetch.

import { fetchStream, httpURL } from "../stream.js";

export default function sse(e, c) {
	// EventSource hides the heartbeat comments and retries on its own,
	// with its own cursor, so the stream is read with fetch and parsed
	// here. With ?event=channel a message is an event named after its
	// channel whose data lines are the text and whose id is the
	// connection's cursor after it, which holds the message's id.
	var ev = { event: "", data: null, id: null };
	return fetchStream(e, c, httpURL(e, c, "sse", "event=channel"), "text/event-stream", function (line) {
		if (line === "") {
			if (ev.data !== null || ev.id !== null) {
				e.event(c, ev.event || "message", ev.data, ev.id);
			}
			ev = { event: "", data: null, id: null };
			return;
		}
		if (line.charAt(0) === ":") {
			return; // a comment: the heartbeat ": ping" (any data is life)
		}
		var i = line.indexOf(":"),
			field = i < 0 ? line : line.slice(0, i),
			value = i < 0 ? "" : line.slice(line.charAt(i + 1) === " " ? i + 2 : i + 1);
		if (field === "event") {
			ev.event = value;
		} else if (field === "data") {
			ev.data = ev.data === null ? value : ev.data + "\n" + value;
		} else if (field === "id" && value.indexOf("\0") < 0) {
			ev.id = value;
		}
	});
}

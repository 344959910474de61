// ndjson.js: the NDJSON stream transport (GET /ndjson/...), read with fetch.

import { fetchStream, httpURL } from "../stream.js";

export default function ndjson(e, c) {
	return fetchStream(e, c, httpURL(e, c, "ndjson"), "application/x-ndjson", function (line) {
		e.line(c, line);
	});
}

// channels.js: where each channel stands, in the forms the transports ask
// for it: a path element, a cursor, a WebSocket subscribe.

// position returns the id after which a channel's messages are wanted,
// or null when the channel's start (none, the last N, the history)
// still applies.
function position(rec) {
	var p = rec.last !== null ? rec.last : rec.base;
	if (rec.lost > 0 && (p === null || rec.lost > p)) {
		p = rec.lost; // a gap: what is lost is not asked for again
	}
	return p;
}

// startOf returns a channel's first-connection request: {last: N},
// {history: true} or {} (only new messages).
function startOf(rec) {
	if (rec.start) {
		return rec.start;
	}
	var b = Number(rec.backtrack); // a Meteor.channels entry
	if (b > 0) {
		return { last: Math.floor(b) };
	}
	if (b < 0 || isNaN(b)) {
		return { history: true };
	}
	return {};
}

// element returns a channel's path element for the HTTP transports.
function element(name, rec) {
	var pos = position(rec);
	if (pos !== null) {
		return name + ".r" + (pos + 1);
	}
	var s = startOf(rec);
	if (s.last > 0) {
		return name + ".b" + s.last;
	}
	return s.history ? name + ".h" : name;
}

function elements(e) {
	var out = [];
	e.recs.forEach(function (rec, name) {
		out.push(element(name, rec));
	});
	return out.join("/");
}

// cursor returns "chan:lastId[@epoch],..." for the channels whose
// position is known: the resume cursor of the SSE, NDJSON and long-poll
// transports. The epoch names the stream the position is in, so that
// a server whose stream was lost (a restart) says so with a reset gap.
function cursor(e) {
	var out = [];
	e.recs.forEach(function (rec, name) {
		var pos = position(rec);
		if (pos !== null) {
			out.push(name + ":" + pos + (rec.epoch ? "@" + rec.epoch : ""));
		}
	});
	return out.join(",");
}

// parseCursor returns {channel: {id, epoch}} ("" when the cursor has
// no epoch for the channel).
function parseCursor(s) {
	var out = Object.create(null); // a channel may be named __proto__
	String(s || "").split(",").forEach(function (part) {
		var i = part.lastIndexOf(":");
		if (i > 0) {
			var rest = part.slice(i + 1),
				at = rest.indexOf("@"),
				id = Number(at < 0 ? rest : rest.slice(0, at));
			if (id >= 0) {
				out[part.slice(0, i)] = { id: id, epoch: at < 0 ? "" : rest.slice(at + 1) };
			}
		}
	});
	return out;
}

function wsSubscribe(name, rec) {
	var op = { op: "subscribe", channel: name },
		pos = position(rec);
	if (pos !== null) {
		op.since = pos;
		if (rec.epoch) {
			op.epoch = rec.epoch;
		}
	} else {
		var s = startOf(rec);
		if (s.last > 0) {
			op.last = s.last;
		} else if (s.history) {
			op.history = "all";
		}
	}
	return JSON.stringify(op);
}

export { position, startOf, element, elements, cursor, parseCursor, wsSubscribe };

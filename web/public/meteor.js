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
"use strict";
(() => {
  // src/util.js
  var RECYCLE_CHARS = 4 << 20;
  var CHANNEL_NAME = /^[a-z0-9_%\-]+$/i;
  var HOST_ID = /^[0-9a-z]+$/i;
  function noop() {
  }
  function now() {
    return Date.now();
  }
  function report(err) {
    window.setTimeout(function() {
      throw err;
    }, 0);
  }
  var hasOwn = function(o, k) {
    return Object.prototype.hasOwnProperty.call(o, k);
  };
  function jitter(ms) {
    return ms / 2 + Math.random() * ms / 2;
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

  // src/parser.js
  var OPEN = "<script>";
  var CLOSE = "<\/script>";
  var NEED = { need: true };
  var BAD = { bad: true };
  function isSpace(c) {
    return c === 32 || c >= 9 && c <= 13 || c === 160 || c === 65279 || c === 8232 || c === 8233;
  }
  function skipSpace(s, i) {
    while (i < s.length && isSpace(s.charCodeAt(i))) {
      i++;
    }
    return i;
  }
  function isIdentChar(c, first) {
    return c >= 97 && c <= 122 || c >= 65 && c <= 90 || c === 95 || c === 36 || !first && c >= 48 && c <= 57;
  }
  function hexValue(s, i, n) {
    if (i + n > s.length) {
      return /^[0-9a-f]*$/i.test(s.slice(i)) ? NEED : BAD;
    }
    var h = s.substr(i, n);
    return /^[0-9a-f]+$/i.test(h) ? parseInt(h, 16) : BAD;
  }
  function readString(s, i) {
    var quote = s.charCodeAt(i), n = s.length, out = "", start = ++i;
    while (i < n) {
      var c = s.charCodeAt(i);
      if (c === quote) {
        return { value: out + s.slice(start, i), end: i + 1 };
      }
      if (c === 10 || c === 13) {
        return BAD;
      }
      if (c !== 92) {
        i++;
        continue;
      }
      out += s.slice(start, i);
      if (++i >= n) {
        return NEED;
      }
      var e = s.charAt(i), v;
      switch (e) {
        case "n":
          out += "\n";
          i++;
          break;
        case "r":
          out += "\r";
          i++;
          break;
        case "t":
          out += "	";
          i++;
          break;
        case "b":
          out += "\b";
          i++;
          break;
        case "f":
          out += "\f";
          i++;
          break;
        case "v":
          out += "\v";
          i++;
          break;
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
            if (v > 1114111) {
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
            var j = i, max = e <= "3" ? 3 : 2;
            while (j < n && j - i < max && s.charAt(j) >= "0" && s.charAt(j) <= "7") {
              j++;
            }
            if (j === n && j - i < max) {
              return NEED;
            }
            out += String.fromCharCode(parseInt(s.slice(i, j), 8));
            i = j;
          } else {
            out += e;
            i++;
          }
      }
      start = i;
    }
    return NEED;
  }
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
  function parseScript(s, i) {
    var n = s.length, calls = [];
    for (; ; ) {
      i = skipSpace(s, i);
      if (i >= n) {
        return NEED;
      }
      var c = s.charCodeAt(i);
      if (c === 59) {
        i++;
        continue;
      }
      if (c === 60) {
        if (n - i < CLOSE.length) {
          return CLOSE.indexOf(s.slice(i)) === 0 ? NEED : BAD;
        }
        return s.substr(i, CLOSE.length) === CLOSE ? { calls, end: i + CLOSE.length } : BAD;
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
      if (s.charCodeAt(i) !== 40) {
        return BAD;
      }
      var args = [];
      i = skipSpace(s, i + 1);
      if (i >= n) {
        return NEED;
      }
      if (s.charCodeAt(i) === 41) {
        i++;
      } else {
        for (; ; ) {
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
          if (c !== 44) {
            return BAD;
          }
          i = skipSpace(s, i + 1);
          if (i >= n) {
            return NEED;
          }
        }
      }
      calls.push({ name, args });
    }
  }
  function ScriptReader(onCall) {
    this.buf = "";
    this.onCall = onCall;
    this.stopped = false;
  }
  ScriptReader.prototype.push = function(piece) {
    var s = this.buf + piece, pos = 0;
    while (!this.stopped) {
      var start = s.indexOf(OPEN, pos);
      if (start < 0) {
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
          pos = start;
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
  ScriptReader.prototype.stop = function() {
    this.stopped = true;
    this.buf = "";
  };
  function parse(body) {
    var calls = [], r = new ScriptReader(function(name, args) {
      calls.push([name].concat(args));
    }), pieces = typeof body === "string" ? [body] : body;
    for (var i = 0; i < pieces.length; i++) {
      r.push(String(pieces[i]));
    }
    return calls;
  }

  // src/http.js
  var FRAME_TIMEOUT = 5e3;
  function xhrRequest(url, h) {
    var x = new XMLHttpRequest(), seen = 0, done = false, headed = false;
    function head() {
      if (!headed && x.readyState >= 2) {
        headed = true;
        h.head(x.status);
      }
    }
    function pull() {
      head();
      if (x.status !== 200) {
        return;
      }
      var t = x.responseText;
      if (t.length > seen) {
        var piece = t.substring(seen);
        seen = t.length;
        h.data(piece, seen);
      }
    }
    function end(ok) {
      if (done) {
        return;
      }
      done = true;
      h.end(ok, x.status);
    }
    x.open("GET", url, true);
    x.onreadystatechange = function() {
      if (done) {
        return;
      }
      if (x.readyState >= 3) {
        pull();
      } else {
        head();
      }
    };
    x.onprogress = function() {
      if (!done) {
        pull();
      }
    };
    x.onload = function() {
      if (!done) {
        pull();
        end(x.status === 200);
      }
    };
    x.onerror = x.ontimeout = function() {
      end(false);
    };
    x.send(null);
    return {
      abort: function() {
        done = true;
        x.onreadystatechange = x.onprogress = x.onload = x.onerror = x.ontimeout = null;
        x.abort();
      }
    };
  }
  function hiddenFrame(src) {
    var f = document.createElement("iframe");
    f.setAttribute("aria-hidden", "true");
    f.setAttribute("tabindex", "-1");
    f.title = "Meteor connection";
    f.style.cssText = "position:absolute;left:-1000px;top:-1000px;width:1px;height:1px;border:0;visibility:hidden";
    f.src = src;
    (document.body || document.documentElement).appendChild(f);
    return f;
  }
  function removeFrame(f) {
    if (f && f.parentNode) {
      f.onload = null;
      f.parentNode.removeChild(f);
    }
  }
  var bridge = null;
  var log = noop;
  function setLog(fn) {
    log = fn;
  }
  function dropBridge() {
    if (bridge) {
      window.clearTimeout(bridge.timer);
      removeFrame(bridge.frame);
      var reqs = bridge.reqs;
      bridge = null;
      for (var id in reqs) {
        reqs[id].end(false, 0);
      }
    }
  }
  function bridgeFailed(b, why, refused) {
    b.refused = b.refused || !!refused;
    if (b.failed) {
      return;
    }
    b.failed = true;
    window.clearTimeout(b.timer);
    log("Helper frame unusable (" + why + "): using direct requests, which need CORS");
    var reqs = b.reqs;
    b.reqs = {};
    b.queue = [];
    for (var id in reqs) {
      reqs[id].end(false, 0);
    }
  }
  function getBridge(origin) {
    if (bridge && bridge.origin !== origin) {
      dropBridge();
    }
    if (bridge) {
      return bridge;
    }
    var b = bridge = { origin, ready: false, failed: false, refused: false, queue: [], reqs: {}, seq: 0 };
    b.frame = hiddenFrame(origin + "/stream.html#bridge");
    b.timer = window.setTimeout(function() {
      if (!b.ready) {
        bridgeFailed(b, "no answer from " + origin + "/stream.html");
      }
    }, FRAME_TIMEOUT);
    return b;
  }
  function listenBridge() {
    window.addEventListener("message", function(ev) {
      var b = bridge, d = ev.data;
      if (!b || b.refused || ev.origin !== b.origin || ev.source !== b.frame.contentWindow) {
        return;
      }
      if (!d || typeof d !== "object" || typeof d.meteor !== "string") {
        return;
      }
      if (d.meteor === "ready") {
        if (!b.ready) {
          b.ready = true;
          b.failed = false;
          window.clearTimeout(b.timer);
          var q = b.queue;
          b.queue = [];
          for (var i = 0; i < q.length; i++) {
            b.frame.contentWindow.postMessage(q[i], b.origin);
          }
        }
        return;
      }
      if (d.meteor === "refused") {
        bridgeFailed(b, "this page's host is not in the Meteor host's domain", true);
        return;
      }
      var h = b.reqs[d.id];
      if (!h) {
        return;
      }
      if (d.meteor === "head") {
        h.head(d.status);
      } else if (d.meteor === "data" && typeof d.text === "string") {
        h.data(d.text);
      } else if (d.meteor === "end") {
        delete b.reqs[d.id];
        h.end(!!d.ok, d.status);
      }
    });
  }
  function bridgeRequest(b, path, h) {
    var id = ++b.seq, msg = { meteor: "open", id, path };
    b.reqs[id] = h;
    if (b.ready) {
      b.frame.contentWindow.postMessage(msg, b.origin);
    } else {
      b.queue.push(msg);
    }
    return {
      abort: function() {
        if (!b.reqs[id]) {
          return;
        }
        delete b.reqs[id];
        if (b.ready) {
          b.frame.contentWindow.postMessage({ meteor: "abort", id }, b.origin);
        } else {
          b.queue = b.queue.filter(function(m) {
            return m.id !== id;
          });
        }
      }
    };
  }
  function requestAt(origin, path, h, showFrame) {
    if (origin !== window.location.origin) {
      var b = getBridge(origin);
      if (!b.failed) {
        if (!b.ready && showFrame) {
          showFrame();
        }
        return bridgeRequest(b, path, h);
      }
    }
    return xhrRequest(origin + path, h);
  }

  // src/closecodes.js
  var CLOSE_CODES = {
    1e3: { name: "responseComplete", reconnect: true },
    1001: { name: "shutdown", reconnect: true },
    1002: { name: "protocolError", reconnect: false },
    1008: { name: "policyViolation", reconnect: false },
    1009: { name: "messageTooBig", reconnect: false },
    1011: { name: "writeError", reconnect: true },
    1012: { name: "restart", reconnect: true },
    4e3: { name: "channelClose", reconnect: false },
    4001: { name: "slowConsumer", reconnect: true },
    4002: { name: "streamReset", reconnect: true },
    4003: { name: "tokenExpired", reconnect: true },
    4004: { name: "storeUnavailable", reconnect: true },
    4005: { name: "newSubscriberWithSameID", reconnect: false },
    4006: { name: "disconnectRequested", reconnect: false }
  };
  function closeInfo(code, reconnect) {
    var known = CLOSE_CODES[code];
    if (typeof reconnect !== "boolean") {
      reconnect = known ? known.reconnect : true;
    }
    return {
      fatal: !reconnect,
      clean: reconnect && !!known && code !== 4004 && code !== 1011,
      code,
      tokenExpired: code === 4003
    };
  }

  // src/channels.js
  function position(rec) {
    var p = rec.last !== null ? rec.last : rec.base;
    if (rec.lost > 0 && (p === null || rec.lost > p)) {
      p = rec.lost;
    }
    return p;
  }
  function startOf(rec) {
    if (rec.start) {
      return rec.start;
    }
    var b = Number(rec.backtrack);
    if (b > 0) {
      return { last: Math.floor(b) };
    }
    if (b < 0 || isNaN(b)) {
      return { history: true };
    }
    return {};
  }
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
    e.recs.forEach(function(rec, name) {
      out.push(element(name, rec));
    });
    return out.join("/");
  }
  function cursor(e) {
    var out = [];
    e.recs.forEach(function(rec, name) {
      var pos = position(rec);
      if (pos !== null) {
        out.push(name + ":" + pos + (rec.epoch ? "@" + rec.epoch : ""));
      }
    });
    return out.join(",");
  }
  function parseCursor(s) {
    var out = /* @__PURE__ */ Object.create(null);
    String(s || "").split(",").forEach(function(part) {
      var i = part.lastIndexOf(":");
      if (i > 0) {
        var rest = part.slice(i + 1), at = rest.indexOf("@"), id = Number(at < 0 ? rest : rest.slice(0, at));
        if (id >= 0) {
          out[part.slice(0, i)] = { id, epoch: at < 0 ? "" : rest.slice(at + 1) };
        }
      }
    });
    return out;
  }
  function wsSubscribe(name, rec) {
    var op = { op: "subscribe", channel: name }, pos = position(rec);
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

  // src/transports/websocket.js
  function authOp(token) {
    return JSON.stringify({ op: "auth", token });
  }
  function websocket(e, c) {
    var ws, tok = e.token(c), renewed = null, leaves = /* @__PURE__ */ Object.create(null);
    try {
      ws = new WebSocket(e.origin.replace(/^http/, "ws") + "/ws" + (tok ? "?token=" + encodeURIComponent(tok) : ""));
    } catch (err) {
      window.setTimeout(function() {
        e.ended(c, { reason: "WebSocket: " + err.message });
      }, 0);
      return { close: noop };
    }
    ws.onopen = function() {
      e.opened(c);
      if (renewed) {
        ws.send(authOp(renewed));
        renewed = null;
      }
      e.recs.forEach(function(rec, name) {
        ws.send(wsSubscribe(name, rec));
      });
    };
    ws.onmessage = function(ev) {
      if (typeof ev.data !== "string") {
        return;
      }
      e.alive(c);
      ev.data.split("\n").forEach(function(line) {
        e.line(c, line);
      });
    };
    ws.onclose = function(ev) {
      var info = closeInfo(ev.code);
      info.kicked = info.fatal;
      info.reason = "WebSocket closed (" + ev.code + (ev.reason ? " " + ev.reason : "") + ")";
      e.ended(c, info);
    };
    return {
      close: function() {
        ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
        try {
          ws.close(1e3);
        } catch (err) {
        }
      },
      // auth gives the server a renewed token (it answers nothing; a
      // token it refuses closes the socket).
      auth: function(token) {
        if (ws.readyState === 1) {
          ws.send(authOp(token));
        } else {
          renewed = token;
        }
      },
      add: function(name, rec) {
        if (ws.readyState === 1) {
          ws.send(wsSubscribe(name, rec));
        }
      },
      remove: function(name) {
        if (ws.readyState === 1) {
          ws.send(JSON.stringify({ op: "unsubscribe", channel: name }));
          leaves[name] = (leaves[name] || 0) + 1;
        }
      },
      // leaving reports whether an unsubscribed frame for name answers
      // a remove (else the server left the channel on its own).
      leaving: function(name) {
        if (leaves[name] > 0) {
          leaves[name]--;
          return true;
        }
        return false;
      }
    };
  }

  // src/stream.js
  function httpURL(e, c, kind, extra) {
    var url = e.origin + "/" + kind + "/" + elements(e), q = extra ? [extra] : [], cur = cursor(e), tok = e.token(c);
    if (cur) {
      q.push("since=" + encodeURIComponent(cur));
    }
    if (kind === "poll") {
      q.push("timeout=" + e.pollSeconds());
    }
    if (tok && !e.opts.tokenHeader) {
      q.push("token=" + encodeURIComponent(tok));
    }
    q.push("nc=" + now().toString(36));
    return url + "?" + q.join("&");
  }
  function headers(e, c, accept) {
    var h = { Accept: accept };
    if (c.token && e.opts.tokenHeader) {
      h.Authorization = "Bearer " + c.token;
    }
    return h;
  }
  function refusal(resp, url) {
    var info = { reason: url.split("?")[0] + ": HTTP " + resp.status, status: resp.status, retryAfter: retryAfter(resp) };
    if (resp.status !== 401 && resp.status !== 403) {
      return Promise.resolve(info);
    }
    return resp.json().then(
      function(b) {
        if (b && typeof b === "object") {
          if (typeof b.reason === "string") {
            info.why = b.reason;
          }
          if (typeof b.error === "string") {
            info.error = b.error;
            info.reason += " (" + b.error + (info.why ? ": " + info.why : "") + ")";
          }
        }
      },
      function() {
      }
    ).then(function() {
      return info;
    });
  }
  function readBody(resp, onChunk, onLine) {
    var reader = resp.body.getReader(), dec = new TextDecoder(), buf = "";
    function pump() {
      return reader.read().then(function(r) {
        if (r.done) {
          buf += dec.decode();
          if (buf) {
            onLine(buf);
          }
          return;
        }
        onChunk();
        buf += dec.decode(r.value, { stream: true });
        var i;
        while ((i = buf.search(/\r\n|\r|\n/)) >= 0) {
          if (buf.charAt(i) === "\r" && i === buf.length - 1) {
            break;
          }
          var line = buf.slice(0, i);
          buf = buf.slice(buf.charAt(i) === "\r" && buf.charAt(i + 1) === "\n" ? i + 2 : i + 1);
          onLine(line);
        }
        return pump();
      });
    }
    return pump();
  }
  function retryAfter(resp) {
    if (resp.status !== 503 && resp.status !== 429) {
      return 0;
    }
    var n = Number(resp.headers.get("Retry-After"));
    return n > 0 ? n : resp.status === 429 ? 1 : 3;
  }
  function fetchStream(e, c, url, accept, onLine) {
    var ctl = new AbortController();
    fetch(url, { signal: ctl.signal, cache: "no-store", headers: headers(e, c, accept) }).then(function(resp) {
      if (c.dead) {
        return;
      }
      if (resp.status !== 200 || !resp.body) {
        return refusal(resp, url).then(function(info) {
          e.ended(c, info);
        });
      }
      e.opened(c);
      return readBody(
        resp,
        function() {
          if (!c.dead) {
            e.alive(c);
          }
        },
        function(line) {
          if (!c.dead) {
            onLine(line);
          }
        }
      ).then(function() {
        e.ended(c, { clean: true, reason: "the server ended the stream" });
      });
    }).catch(function(err) {
      e.ended(c, { reason: url.split("?")[0] + ": " + (err && err.message ? err.message : err) });
    });
    return {
      close: function() {
        ctl.abort();
      }
    };
  }

  // src/transports/sse.js
  function sse(e, c) {
    var ev = { event: "", data: null, id: null };
    return fetchStream(e, c, httpURL(e, c, "sse", "event=channel"), "text/event-stream", function(line) {
      if (line === "") {
        if (ev.data !== null || ev.id !== null) {
          e.event(c, ev.event || "message", ev.data, ev.id);
        }
        ev = { event: "", data: null, id: null };
        return;
      }
      if (line.charAt(0) === ":") {
        return;
      }
      var i = line.indexOf(":"), field = i < 0 ? line : line.slice(0, i), value = i < 0 ? "" : line.slice(line.charAt(i + 1) === " " ? i + 2 : i + 1);
      if (field === "event") {
        ev.event = value;
      } else if (field === "data") {
        ev.data = ev.data === null ? value : ev.data + "\n" + value;
      } else if (field === "id" && value.indexOf("\0") < 0) {
        ev.id = value;
      }
    });
  }

  // src/transports/ndjson.js
  function ndjson(e, c) {
    return fetchStream(e, c, httpURL(e, c, "ndjson"), "application/x-ndjson", function(line) {
      e.line(c, line);
    });
  }

  // src/transports/longpoll.js
  function poll(e, c) {
    var ctl = null, timer = null, closed = false;
    function poll2() {
      if (closed || c.dead) {
        return;
      }
      ctl = new AbortController();
      var url = httpURL(e, c, "poll");
      fetch(url, { signal: ctl.signal, cache: "no-store", headers: headers(e, c, "application/json") }).then(function(resp) {
        if (resp.status !== 200) {
          return refusal(resp, url).then(function(info) {
            e.ended(c, info);
            return null;
          });
        }
        return resp.json();
      }).then(function(body) {
        if (!body || closed || c.dead) {
          return;
        }
        e.opened(c);
        e.alive(c);
        (body.gaps || []).forEach(function(g) {
          e.frame(c, Object.assign({}, g, { type: "gap" }));
        });
        (body.messages || []).forEach(function(m) {
          if (!c.dead) {
            e.frame(c, m);
          }
        });
        var cur = parseCursor(body.cursor);
        for (var name in cur) {
          if (hasOwn(cur, name) && !c.dead) {
            e.frame(c, { type: "subscribed", channel: name, lastId: cur[name].id, epoch: cur[name].epoch });
          }
        }
        if (body.closed && !c.dead) {
          e.frame(c, { type: "close", reason: body.closed, code: body.code, reconnect: body.reconnect });
          return;
        }
        timer = window.setTimeout(poll2, 0);
      }).catch(function(err) {
        if (!closed) {
          e.ended(c, { reason: url.split("?")[0] + ": " + (err && err.message ? err.message : err) });
        }
      });
    }
    poll2();
    return {
      close: function() {
        closed = true;
        window.clearTimeout(timer);
        if (ctl) {
          ctl.abort();
        }
      }
    };
  }

  // src/transports/xhrinteractive.js
  function xhrinteractive(e, c) {
    var path = String(e.opts.pushpath || "/push").replace(/\/+$/, "") + "/" + e.hostid() + "/xhrinteractive/" + elements(e) + "?nc=" + now(), tok = e.token(c);
    if (tok) {
      path += "&token=" + encodeURIComponent(tok);
    }
    var reader = new ScriptReader(function(name, args) {
      if (c.dead) {
        return;
      }
      if (name === "p") {
        if (Number(args[0]) !== -1) {
          e.frame(c, { type: "message", id: Number(args[0]), channel: String(args[1]), text: args[2] === void 0 || args[2] === null ? "" : String(args[2]), extra: args.slice(3) });
        }
      } else if (name === "ch") {
        e.frame(c, { type: "subscribed", channel: String(args[0]), lastId: Number(args[1]) });
      } else if (name === "eof") {
        e.ended(c, { fatal: true, eof: true, reason: "the server sent eof()" });
      }
    });
    var chars = 0;
    var req = requestAt(e.origin, path, {
      head: function(status) {
        if (status === 200) {
          e.opened(c);
        }
      },
      data: function(text) {
        if (c.dead) {
          return;
        }
        e.alive(c);
        reader.push(text);
        chars += text.length;
        if (!c.dead && chars > RECYCLE_CHARS) {
          e.ended(c, { clean: true, quiet: true, reason: "reopening a long stream" });
        }
      },
      end: function(ok, status) {
        e.ended(c, { clean: ok, status, reason: ok ? "the server ended the stream" : "xhrinteractive: " + (status ? "HTTP " + status : "failed") });
      }
    });
    return {
      close: function() {
        reader.stop();
        req.abort();
      }
    };
  }

  // src/transports/index.js
  var TRANSPORTS = {};
  TRANSPORTS.websocket = websocket;
  TRANSPORTS.sse = sse;
  TRANSPORTS.ndjson = ndjson;
  TRANSPORTS.poll = poll;
  TRANSPORTS.xhrinteractive = xhrinteractive;

  // src/auth.js
  var REFRESH_MARGIN = 3e4;
  var MIN_REFRESH_DELAY = 1e3;
  function jwtClaims(token) {
    var parts = String(token).split(".");
    if (parts.length !== 3) {
      return null;
    }
    try {
      var b = parts[1].replace(/-/g, "+").replace(/_/g, "/");
      while (b.length % 4) {
        b += "=";
      }
      var o = JSON.parse(atob(b));
      return o && typeof o === "object" && !Array.isArray(o) ? o : null;
    } catch (e) {
      return null;
    }
  }
  function expiredReason(r) {
    return r === "tokenExpired" || r === "expired";
  }
  function Auth(token, getToken) {
    this.getToken = typeof getToken === "function" ? getToken : null;
    this.token = null;
    this.lifetime = null;
    this.at = 0;
    this.stale = false;
    this.pending = null;
    if (token !== void 0 && token !== null && token !== "") {
      this.set(String(token));
    }
  }
  Auth.prototype.set = function(t) {
    var c = jwtClaims(t), life = null;
    this.at = now();
    if (c && typeof c.exp === "number") {
      life = typeof c.iat === "number" && c.exp > c.iat ? (c.exp - c.iat) * 1e3 : c.exp * 1e3 - this.at;
    }
    this.token = t;
    this.lifetime = life > 0 ? life : null;
    this.stale = false;
  };
  Auth.prototype.refreshAt = function() {
    if (!this.getToken || this.lifetime === null) {
      return null;
    }
    var l = this.lifetime, margin = Math.min(Math.max(l / 10, REFRESH_MARGIN), l / 2);
    return this.at + l - margin;
  };
  Auth.prototype.refreshDelay = function() {
    var at = this.refreshAt();
    return at === null ? -1 : Math.max(MIN_REFRESH_DELAY, at - now());
  };
  Auth.prototype.needed = function() {
    if (!this.getToken) {
      return false;
    }
    var at = this.refreshAt();
    return !this.token || this.stale || at !== null && now() >= at;
  };
  Auth.prototype.pastExpiry = function(t) {
    return t === this.token && this.lifetime !== null && now() >= this.at + this.lifetime;
  };
  Auth.prototype.expired = function(t) {
    if (t === this.token) {
      this.stale = true;
    }
  };
  Auth.prototype.fetch = function() {
    if (this.pending) {
      return this.pending;
    }
    var self = this, p;
    try {
      p = Promise.resolve(this.getToken());
    } catch (err) {
      p = Promise.reject(err);
    }
    p = this.pending = p.then(
      function(t) {
        if (self.pending === p) {
          self.pending = null;
        }
        if (typeof t !== "string" || !t) {
          throw new Error("getToken returned no token");
        }
        self.set(t);
        return t;
      },
      function(err) {
        if (self.pending === p) {
          self.pending = null;
        }
        throw err;
      }
    );
    return p;
  };

  // src/reconnect.js
  var LADDER = ["websocket", "sse", "ndjson", "poll"];
  var STREAM_LADDER = LADDER.concat(["xhrinteractive"]);
  function Engine(opts, sink) {
    this.opts = opts;
    this.sink = sink;
    this.origin = String(opts.origin).replace(/\/+$/, "");
    this.ladder = (opts.transports && opts.transports.length ? opts.transports : LADDER).filter(function(t) {
      return hasOwn(TRANSPORTS, t);
    });
    if (!this.ladder.length) {
      throw new Error("Meteor: no known transport in " + JSON.stringify(opts.transports));
    }
    this.recs = /* @__PURE__ */ new Map();
    this.wanted = false;
    this.conn = null;
    this.idx = 0;
    this.proven = {};
    this.failures = 0;
    this.expiries = 0;
    this.timer = null;
    this.seq = 0;
    this.tokenWait = null;
    this.state = "closed";
    this.transport = null;
  }
  Engine.prototype.hostid = function() {
    return typeof this.opts.hostid === "function" ? this.opts.hostid() : this.opts.hostid;
  };
  Engine.prototype.pollSeconds = function() {
    var hb = Number(this.opts.heartbeatTimeout) || 0, t = Number(this.opts.pollTimeout) || 25;
    if (hb > 0) {
      t = Math.min(t, Math.floor(hb / 1e3) - 5);
    }
    return Math.max(1, t);
  };
  Engine.prototype.setState = function(state) {
    var t = this.conn ? this.conn.name : this.transport;
    if (state !== this.state || t !== this.transport) {
      this.state = state;
      this.transport = t;
      this.sink.status(state, t);
    }
  };
  Engine.prototype.start = function() {
    this.wanted = true;
    this.failures = 0;
    if (!this.conn && !this.timer) {
      this.open();
    }
  };
  Engine.prototype.stop = function() {
    this.wanted = false;
    window.clearTimeout(this.timer);
    this.timer = null;
    this.tokenWait = null;
    if (this.conn) {
      this.drop(this.conn);
    }
    this.setState("closed");
  };
  Engine.prototype.add = function(name, rec) {
    this.recs.set(name, rec);
    this.changed(function(impl) {
      impl.add(name, rec);
    }, "add");
  };
  Engine.prototype.remove = function(name) {
    if (!this.recs.delete(name)) {
      return;
    }
    this.changed(function(impl) {
      impl.remove(name);
    }, "remove");
  };
  Engine.prototype.changed = function(live, method) {
    if (!this.wanted) {
      return;
    }
    var c = this.conn;
    if (!this.recs.size) {
      if (c) {
        this.drop(c);
      }
      window.clearTimeout(this.timer);
      this.timer = null;
      this.setState("idle");
      return;
    }
    if (c && c.impl && c.impl[method]) {
      live(c.impl);
      return;
    }
    if (c) {
      this.drop(c);
    }
    if (!this.timer) {
      this.open();
    }
  };
  Engine.prototype.open = function(fresh) {
    window.clearTimeout(this.timer);
    this.timer = null;
    if (!this.wanted || this.conn || !this.recs.size || this.tokenWait) {
      return;
    }
    var a = this.opts.auth, self = this;
    if (a && !fresh && a.needed()) {
      var w = this.tokenWait = {};
      this.setState("connecting");
      a.fetch().then(
        function() {
          if (self.tokenWait === w) {
            self.tokenWait = null;
            self.open(true);
          }
        },
        function(err) {
          if (self.tokenWait === w) {
            self.tokenWait = null;
            self.tokenFailed(err);
          }
        }
      );
      return;
    }
    var name = this.ladder[this.idx % this.ladder.length], c = this.conn = { id: ++this.seq, name, dead: false, opened: false, useful: false, timer: null, impl: null, token: a ? a.token : null, renewal: null };
    this.setState("connecting");
    this.planRenewal(c);
    this.arm(c, Number(this.opts.connectTimeout) || 1e4, "no answer within the connect timeout");
    try {
      c.impl = TRANSPORTS[name](this, c);
    } catch (err) {
      window.setTimeout(function() {
        self.ended(c, { reason: name + ": " + err.message });
      }, 0);
    }
  };
  Engine.prototype.tokenFailed = function(err) {
    if (!this.wanted) {
      return;
    }
    this.sink.error({ transport: null, message: "getToken: " + (err && err.message ? err.message : err), code: "getToken" });
    this.failures++;
    this.setState("reconnecting");
    var self = this;
    this.timer = window.setTimeout(function() {
      self.open();
    }, this.backoff());
  };
  Engine.prototype.backoff = function() {
    var base = Number(this.opts.retryDelay) || 1e3, cap = Math.max(base, Number(this.opts.maxRetryDelay) || 3e4);
    return jitter(Math.min(cap, base * Math.pow(2, Math.min(this.failures, 16) - 1)));
  };
  Engine.prototype.planRenewal = function(c) {
    var a = this.opts.auth, self = this;
    window.clearTimeout(c.renewal);
    c.renewal = null;
    var ms = a ? a.refreshDelay() : -1;
    if (ms < 0 || c.dead) {
      return;
    }
    c.renewal = window.setTimeout(function() {
      c.renewal = null;
      a.fetch().then(
        function(t) {
          if (c.dead) {
            return;
          }
          if (c.impl && c.impl.auth) {
            c.impl.auth(t);
            c.token = t;
          }
          self.planRenewal(c);
        },
        function(err) {
          if (c.dead) {
            return;
          }
          self.sink.error({ transport: c.name, message: "getToken: " + (err && err.message ? err.message : err), code: "getToken" });
          c.renewal = window.setTimeout(function() {
            c.renewal = null;
            self.planRenewal(c);
          }, jitter(Math.max(2e3, Number(self.opts.retryDelay) || 1e3)));
        }
      );
    }, ms);
  };
  Engine.prototype.token = function(c) {
    var a = this.opts.auth;
    if (!a || !a.token) {
      return null;
    }
    c.token = a.token;
    return a.token;
  };
  Engine.prototype.arm = function(c, ms, why) {
    var self = this;
    window.clearTimeout(c.timer);
    c.timer = null;
    if (ms > 0) {
      c.timer = window.setTimeout(function() {
        self.ended(c, { silent: true, reason: c.name + ": " + why });
      }, ms);
    }
  };
  Engine.prototype.drop = function(c) {
    c.dead = true;
    window.clearTimeout(c.timer);
    window.clearTimeout(c.renewal);
    if (c.impl) {
      try {
        c.impl.close();
      } catch (err) {
      }
    }
    if (this.conn === c) {
      this.conn = null;
    }
  };
  Engine.prototype.opened = function(c) {
    if (c.dead || c.opened) {
      return;
    }
    c.opened = true;
    this.arm(c, Number(this.opts.heartbeatTimeout) || 0, "no message or heartbeat for " + this.opts.heartbeatTimeout + " ms");
    this.setState("open");
  };
  Engine.prototype.alive = function(c) {
    if (c.dead) {
      return;
    }
    if (!c.opened) {
      this.opened(c);
    }
    if (!c.useful) {
      c.useful = true;
      this.proven[c.name] = true;
      this.failures = 0;
      this.expiries = 0;
    }
    this.arm(c, Number(this.opts.heartbeatTimeout) || 0, "no message or heartbeat for " + this.opts.heartbeatTimeout + " ms");
    this.sink.alive(c.name);
  };
  Engine.prototype.line = function(c, line) {
    line = line.trim();
    if (!line || c.dead) {
      return;
    }
    var o;
    try {
      o = JSON.parse(line);
    } catch (err) {
      this.sink.error({ transport: c.name, message: "unreadable data: " + line.slice(0, 100) });
      return;
    }
    var list = Array.isArray(o) ? o : [o];
    for (var i = 0; i < list.length && !c.dead; i++) {
      this.frame(c, list[i]);
    }
  };
  Engine.prototype.event = function(c, name, data, id) {
    var cur = id === null ? null : parseCursor(id), ch;
    if (data === null) {
      for (ch in cur) {
        if (hasOwn(cur, ch) && !c.dead) {
          this.frame(c, { type: "subscribed", channel: ch, lastId: cur[ch].id, epoch: cur[ch].epoch });
        }
      }
      return;
    }
    if (name === "gap" || name === "close") {
      var o = null;
      try {
        o = JSON.parse(data);
      } catch (err) {
      }
      if (o && typeof o === "object" && !Array.isArray(o)) {
        this.frame(c, Object.assign({}, o, { type: name }));
      } else {
        this.sink.error({ transport: c.name, message: "unreadable " + name + " event: " + data.slice(0, 100) });
      }
      return;
    }
    ch = name;
    if (ch === "message" && this.recs.size === 1 && !this.recs.has(ch)) {
      ch = this.recs.keys().next().value;
    }
    if (!this.recs.has(ch) || !cur || !hasOwn(cur, ch)) {
      this.sink.error({ transport: c.name, message: "an event of no channel: " + name });
      return;
    }
    if (cur[ch].epoch && this.recs.get(ch).epoch !== cur[ch].epoch) {
      this.recs.get(ch).epoch = cur[ch].epoch;
    }
    this.frame(c, { type: "message", channel: ch, id: cur[ch].id, text: data });
  };
  Engine.prototype.frame = function(c, o) {
    if (c.dead || !o || typeof o !== "object") {
      return;
    }
    var rec = typeof o.channel === "string" && this.recs.has(o.channel) ? this.recs.get(o.channel) : null;
    switch (o.type) {
      case "message":
        if (rec && c.name === "xhrinteractive" && rec.epoch) {
          rec.epoch = "";
        }
        this.message(rec, o);
        break;
      case "subscribed":
        if (rec && o.epoch) {
          rec.epoch = String(o.epoch);
        }
        if (rec && rec.last === null && rec.base === null && !startOf(rec).last && !startOf(rec).history) {
          var id = Number(o.lastId);
          if (id >= 0) {
            rec.base = id;
          }
        }
        break;
      case "unsubscribed":
        if (rec && !(c.impl && c.impl.leaving && c.impl.leaving(o.channel))) {
          this.ended(c, { status: 403, why: "channel", error: "the renewed token does not grant " + o.channel, reason: "the server left " + o.channel + ": the renewed token does not grant it" });
        }
        break;
      case "epoch":
        if (rec && o.epoch) {
          rec.epoch = String(o.epoch);
        }
        break;
      case "gap":
        if (rec && o.reset) {
          rec.epoch = o.epoch ? String(o.epoch) : "";
          rec.last = 0;
          rec.base = null;
          rec.lost = 0;
        } else if (rec && Number(o.trimmed) > 0) {
          rec.lost = Math.max(rec.lost || 0, Number(o.trimmed));
        }
        this.sink.gap({ channel: o.channel, since: o.since, trimmed: o.trimmed, reset: !!o.reset, epoch: o.epoch, transport: c.name });
        break;
      case "error":
        var status = Number(o.status || o.code);
        if (status === 401 || status === 403) {
          this.ended(c, { status, why: o.reason, error: o.error || o.message, reason: "the server refused" + (o.channel ? " " + o.channel : "") + ": " + String(o.error || o.message || o.reason || status) });
          break;
        }
        this.sink.error({ transport: c.name, channel: o.channel, message: String(o.message || o.error || o.reason || "error"), code: o.code });
        if (o.op === "subscribe" && rec && c.impl && c.impl.add) {
          var self = this, impl = c.impl, cap = Math.max(Number(this.opts.retryDelay) || 1e3, Number(this.opts.maxRetryDelay) || 3e4);
          window.setTimeout(function() {
            if (!c.dead && self.recs.get(o.channel) === rec) {
              impl.add(o.channel, rec);
            }
          }, jitter(2e3 * Math.min(Number(o.retryAfter) || 3, cap / 1e3)));
        }
        break;
      case "close":
        var info = closeInfo(Number(o.code), o.reconnect);
        info.tokenExpired = info.tokenExpired || o.reason === "tokenExpired";
        info.kicked = info.fatal;
        info.reason = "the server closed the stream" + (o.reason ? ": " + o.reason : "");
        this.ended(c, info);
        break;
    }
  };
  Engine.prototype.message = function(rec, o) {
    var id = Number(o.id);
    if (!rec || !(id >= 0)) {
      return;
    }
    if (rec.last !== null && id <= rec.last || id <= (rec.lost || 0)) {
      return;
    }
    rec.last = id;
    if (hasOwn(rec, "lastmsgreceived")) {
      rec.lastmsgreceived = id;
    }
    var msg = { id, channel: o.channel, text: o.text === void 0 || o.text === null ? "" : String(o.text) };
    if (o.time !== void 0) {
      msg.time = Number(o.time);
    }
    if (o.extra && o.extra.length) {
      msg.extra = o.extra;
    }
    this.sink.deliver(rec, msg);
  };
  Engine.prototype.ended = function(c, info) {
    if (c.dead) {
      return;
    }
    var useful = c.useful, a = this.opts.auth;
    this.drop(c);
    if (!this.wanted) {
      return;
    }
    if (info.status === 401 || info.status === 403) {
      info.code = info.status;
      if (info.status === 401 && a && (expiredReason(info.why) || !info.why && (c.token !== a.token || a.pastExpiry(c.token)))) {
        info.tokenExpired = true;
      } else {
        info.fatal = true;
        info.refused = true;
      }
    } else if (a && a.getToken && !info.fatal && !info.clean && a.pastExpiry(c.token)) {
      info.tokenExpired = true;
    }
    if (info.tokenExpired && a) {
      if (!a.getToken) {
        info.fatal = true;
        info.reason = "the token expired and there is no getToken to renew it (" + info.reason + ")";
      } else {
        a.expired(c.token);
        var delay = 0;
        if (useful) {
          this.failures = 0;
        } else {
          this.failures++;
          if (++this.expiries > 1) {
            this.sink.error({ transport: c.name, message: info.reason, code: info.code });
            delay = this.backoff();
          }
        }
        this.setState("reconnecting");
        var me = this;
        this.timer = window.setTimeout(function() {
          me.open();
        }, delay);
        return;
      }
    }
    if (info.fatal) {
      this.wanted = false;
      this.setState("closed");
      this.sink.fatal(info.reason, info);
      return;
    }
    var delay, base = Number(this.opts.retryDelay) || 1e3, cap = Math.max(base, Number(this.opts.maxRetryDelay) || 3e4);
    if (info.retryAfter > 0) {
      this.sink.error({ transport: c.name, message: info.reason });
      delay = jitter(2e3 * Math.min(info.retryAfter, cap / 1e3));
    } else if (info.clean && useful) {
      if (!info.quiet) {
        this.sink.reset(info.reason);
      }
      this.failures = 0;
      delay = info.quiet ? 0 : jitter(Math.min(base, 1e3));
    } else {
      this.sink.error({ transport: c.name, message: info.reason });
      this.failures++;
      var proven = this.proven[c.name] && !info.silent;
      if (proven && this.failures <= 3) {
        delay = jitter(Math.min(cap, base * Math.pow(2, this.failures - 1)));
      } else {
        this.idx++;
        if (this.idx >= this.ladder.length) {
          this.idx = 0;
          delay = jitter(Math.min(cap, base * Math.pow(2, Math.min(this.failures, 16) - 1)));
        } else {
          delay = 0;
        }
      }
    }
    this.setState("reconnecting");
    var self = this;
    this.timer = window.setTimeout(function() {
      self.open();
    }, delay);
  };

  // src/client.js
  var SCRIPT_ORIGIN = (function() {
    try {
      return new URL(document.currentScript.src).origin;
    } catch (e) {
      return window.location.origin;
    }
  })();
  function Emitter() {
    this.handlers = {};
  }
  Emitter.prototype.on = function(evt, fn) {
    if (typeof fn !== "function") {
      throw new TypeError("Meteor: the handler of " + evt + " is not a function");
    }
    (this.handlers[evt] = this.handlers[evt] || []).push(fn);
    var self = this;
    return function() {
      self.off(evt, fn);
    };
  };
  Emitter.prototype.off = function(evt, fn) {
    var list = this.handlers[evt];
    if (list) {
      var i = list.indexOf(fn);
      if (i >= 0) {
        list.splice(i, 1);
      }
    }
  };
  Emitter.prototype.emit = function(evt, arg) {
    var list = (this.handlers[evt] || []).slice();
    for (var i = 0; i < list.length; i++) {
      try {
        list[i].call(this, arg);
      } catch (e) {
        report(e);
      }
    }
  };
  function checkChannel(name) {
    name = String(name);
    if (!CHANNEL_NAME.test(name)) {
      throw new Error("Meteor: invalid channel name " + JSON.stringify(name) + " (letters, digits, _ % - only)");
    }
    return name;
  }
  function Subscription(client, channel, rec, callback) {
    Emitter.call(this);
    this.client = client;
    this.channel = channel;
    this.rec = rec;
    this.callback = callback || null;
    this.closed = false;
    this.queue = [];
    this.waiting = [];
    this.iterated = false;
  }
  Subscription.prototype = Object.create(Emitter.prototype);
  Object.defineProperty(Subscription.prototype, "lastId", {
    get: function() {
      return this.rec.last;
    }
  });
  Subscription.prototype.push = function(msg) {
    if (this.closed) {
      return;
    }
    if (this.callback) {
      try {
        this.callback(msg);
      } catch (e) {
        report(e);
      }
    }
    this.emit("message", msg);
    if (this.waiting.length) {
      this.waiting.shift()({ value: msg, done: false });
    } else if (this.iterated) {
      this.queue.push(msg);
    }
  };
  Subscription.prototype.close = function() {
    if (this.closed) {
      return;
    }
    this.closed = true;
    this.client.unsubscribe(this);
    var w = this.waiting;
    this.waiting = [];
    for (var i = 0; i < w.length; i++) {
      w[i]({ value: void 0, done: true });
    }
  };
  Subscription.prototype.next = function() {
    var self = this;
    this.iterated = true;
    if (this.queue.length) {
      return Promise.resolve({ value: this.queue.shift(), done: false });
    }
    if (this.closed) {
      return Promise.resolve({ value: void 0, done: true });
    }
    return new Promise(function(resolve) {
      self.waiting.push(resolve);
    });
  };
  Subscription.prototype["return"] = function() {
    this.close();
    this.queue = [];
    return Promise.resolve({ value: void 0, done: true });
  };
  Subscription.prototype[Symbol.asyncIterator] = function() {
    this.iterated = true;
    return this;
  };
  function MeteorClient(options) {
    if (!(this instanceof MeteorClient)) {
      throw new TypeError("MeteorClient must be called with new");
    }
    if (options && options.getToken !== void 0 && options.getToken !== null && typeof options.getToken !== "function") {
      throw new TypeError("Meteor: getToken is not a function");
    }
    Emitter.call(this);
    var o = Object.assign(
      { url: SCRIPT_ORIGIN, transports: LADDER, heartbeatTimeout: 35e3, connectTimeout: 1e4, retryDelay: 1e3, maxRetryDelay: 3e4, pollTimeout: 25 },
      options || {}
    );
    var url = new URL(String(o.url), window.location.href);
    this.url = url.origin;
    this.options = o;
    this.subs = /* @__PURE__ */ new Map();
    this.closed = false;
    this.hostID = newHostId();
    var self = this;
    this.engine = new Engine(
      {
        origin: this.url,
        transports: o.transports,
        heartbeatTimeout: o.heartbeatTimeout,
        connectTimeout: o.connectTimeout,
        retryDelay: o.retryDelay,
        maxRetryDelay: o.maxRetryDelay,
        pollTimeout: o.pollTimeout,
        pushpath: o.pushpath,
        auth: o.token || o.getToken ? new Auth(o.token, o.getToken) : null,
        tokenHeader: !!o.tokenHeader,
        hostid: function() {
          return self.hostID;
        }
      },
      {
        deliver: function(rec, msg) {
          self.emit("message", msg);
          var set = self.subs.get(msg.channel);
          if (set) {
            set.forEach(function(s) {
              s.push(msg);
            });
          }
        },
        status: function(state, transport) {
          self.emit("status", { state, transport });
        },
        alive: noop,
        gap: function(g) {
          self.emit("gap", g);
          var set = self.subs.get(g.channel);
          if (set) {
            set.forEach(function(s) {
              s.emit("gap", g);
            });
          }
        },
        error: function(err) {
          self.emit("error", err);
        },
        reset: noop,
        fatal: function(reason, info) {
          var err = { transport: self.engine.transport, message: reason, fatal: true, code: info.code };
          if (info.refused) {
            err.status = info.status;
            if (info.why) {
              err.reason = info.why;
            }
            if (info.error) {
              err.error = info.error;
            }
          } else if (info.tokenExpired) {
            err.reason = "tokenExpired";
          }
          self.emit("error", err);
          self.close();
        }
      }
    );
  }
  MeteorClient.prototype = Object.create(Emitter.prototype);
  MeteorClient.prototype.constructor = MeteorClient;
  Object.defineProperty(MeteorClient.prototype, "status", {
    get: function() {
      return this.engine.state;
    }
  });
  Object.defineProperty(MeteorClient.prototype, "transport", {
    get: function() {
      return this.engine.transport;
    }
  });
  MeteorClient.prototype.subscribe = function(channel, options, callback) {
    if (typeof options === "function") {
      callback = options;
      options = null;
    }
    if (this.closed) {
      throw new Error("Meteor: the client is closed");
    }
    channel = checkChannel(channel);
    options = options || {};
    var rec = this.engine.recs.get(channel), fresh = !rec;
    if (fresh) {
      var start = {};
      if (options.last > 0) {
        start.last = Math.floor(options.last);
      } else if (options.history === "all" || options.history === true) {
        start.history = true;
      }
      var since = options.since === void 0 || options.since === null ? null : Number(options.since);
      if (since !== null && !(since >= 0)) {
        throw new Error("Meteor: since must be a message id");
      }
      rec = { last: since, base: null, start };
    }
    var sub = new Subscription(this, channel, rec, callback);
    if (!this.subs.has(channel)) {
      this.subs.set(channel, /* @__PURE__ */ new Set());
    }
    this.subs.get(channel).add(sub);
    if (fresh) {
      this.engine.add(channel, rec);
      if (!this.engine.wanted) {
        var self = this, e = this.engine;
        Promise.resolve().then(function() {
          if (!e.wanted && e.recs.size && !self.closed) {
            e.start();
          }
        });
      }
    }
    return sub;
  };
  MeteorClient.prototype.unsubscribe = function(sub) {
    var set = this.subs.get(sub.channel);
    if (!set || !set.delete(sub)) {
      return;
    }
    if (!set.size) {
      this.subs.delete(sub.channel);
      this.engine.remove(sub.channel);
    }
  };
  MeteorClient.prototype.close = function() {
    if (this.closed) {
      return;
    }
    this.closed = true;
    this.engine.stop();
    var all = [];
    this.subs.forEach(function(set) {
      set.forEach(function(s) {
        all.push(s);
      });
    });
    for (var i = 0; i < all.length; i++) {
      all[i].close();
    }
  };

  // src/helpers.js
  function relatedHost(page, self) {
    page = String(page).toLowerCase();
    self = String(self).toLowerCase();
    if (page === self) {
      return true;
    }
    if (/^[\d.]+$/.test(self) || self.indexOf(":") >= 0 || self.indexOf("[") >= 0) {
      return false;
    }
    var labels = self.split(".");
    var domain = labels.length > 2 ? labels.slice(1).join(".") : self;
    return page === domain || page.slice(-domain.length - 1) === "." + domain;
  }
  function serveBridge() {
    var parentWin = window.parent, reqs = {};
    window.addEventListener("message", function(ev) {
      var d = ev.data;
      if (ev.source !== parentWin || !d || typeof d !== "object") {
        return;
      }
      var host = "";
      try {
        host = new URL(ev.origin).hostname.replace(/^\[|\]$/g, "");
      } catch (e) {
      }
      var self = window.location.hostname.replace(/^\[|\]$/g, "");
      var origin = ev.origin;
      function post(m) {
        parentWin.postMessage(m, origin);
      }
      if (!relatedHost(host, self)) {
        post({ meteor: "refused", id: d.id });
        return;
      }
      if (d.meteor === "open") {
        var id = d.id, path = d.path;
        if (typeof path !== "string" || path.charAt(0) !== "/" || path.charAt(1) === "/" || path.indexOf("\\") >= 0 || reqs[id]) {
          post({ meteor: "end", id, ok: false, status: 0 });
          return;
        }
        reqs[id] = xhrRequest(path, {
          head: function(status) {
            post({ meteor: "head", id, status });
          },
          data: function(text) {
            post({ meteor: "data", id, text });
          },
          end: function(ok, status) {
            delete reqs[id];
            post({ meteor: "end", id, ok, status });
          }
        });
      } else if (d.meteor === "abort" && reqs[d.id]) {
        reqs[d.id].abort();
        delete reqs[d.id];
      }
    });
    parentWin.postMessage({ meteor: "ready" }, "*");
  }
  function legacyFrame(kind, P) {
    try {
      var parts = document.domain.split(".");
      if (parts.length >= 2 && !/^[\d.]+$/.test(document.domain)) {
        document.domain = parts.slice(-2).join(".");
      }
    } catch (e) {
    }
    P.register(window);
    function dispatch(name, args) {
      if ((name === "p" || name === "ch" || name === "eof") && typeof window[name] === "function") {
        window[name].apply(window, args);
      }
    }
    if (kind === "stream") {
      var reader = new ScriptReader(dispatch);
      xhrRequest(P.getSubsUrl(), {
        head: noop,
        data: function(t) {
          reader.push(t);
        },
        end: function() {
          if (typeof window.r === "function") {
            window.r();
          }
        }
      });
      return;
    }
    var poll2 = function() {
      var url;
      try {
        url = P.getSubsUrl();
      } catch (e) {
        return;
      }
      var started = now(), done = false, timer = null, reader2 = new ScriptReader(dispatch);
      var next = function() {
        if (P.status) {
          window.setTimeout(poll2, Math.max(10, Number(P.pollfreq) - (now() - started)));
        }
      };
      var req = xhrRequest(url, {
        head: noop,
        data: function(t) {
          reader2.push(t);
        },
        end: function() {
          if (!done) {
            done = true;
            window.clearTimeout(timer);
            next();
          }
        }
      });
      if (Number(P.polltimeout) > 0) {
        timer = window.setTimeout(function() {
          if (!done) {
            done = true;
            req.abort();
            next();
          }
        }, Number(P.polltimeout));
      }
    };
    poll2();
  }

  // src/legacy.js
  var VERSION = "1.06-go.1";
  var UNINITIALISED = 0;
  var LOADING = 1;
  var LOADING_FRAME = 2;
  var RETRYING = 3;
  var READY = 4;
  var RECEIVING = 5;
  var ENDED = 6;
  function createMeteor() {
    listenBridge();
    setLog(function(text) {
      M.log(text);
    });
    var M = {
      client: "meteor-go",
      version: VERSION,
      // Settings. host and port default to this page's.
      host: window.location.hostname || null,
      port: Number(window.location.port) || (window.location.protocol === "https:" ? 443 : 80),
      scheme: window.location.protocol === "https:" ? "https" : "http",
      pushpath: "/push",
      hostid: null,
      // A JWT sent with every subscription (SubscriberAuth), and/or a
      // function that returns a fresh one (mode "stream" renews with it).
      token: null,
      getToken: null,
      mode: "stream",
      pollfreq: 3e3,
      minpollfreq: 2e3,
      maxpollfreq: 6e4,
      polltimeout: 3e4,
      pingtimeout: 2e4,
      debugmode: false,
      // mode "stream": the transports tried in turn (an extension)
      transports: STREAM_LADDER.slice(),
      // State, readable by pages.
      status: UNINITIALISED,
      transport: null,
      // the transport in use: xhrinteractive, iframe, longpoll, ...
      channels: {},
      // name -> {backtrack, lastmsgreceived}
      channelcount: 0,
      callbacks: {
        process: noop,
        reset: noop,
        eof: noop,
        statuschanged: noop,
        changemode: noop,
        gap: noop
      },
      // The modern client (an extension); meteor.mjs exports it.
      Client: MeteorClient,
      // closeCodes: what each close code of the server means (read-only;
      // a browser test compares it with the server's table).
      closeCodes: JSON.parse(JSON.stringify(CLOSE_CODES))
    };
    var wanted = false, conn = null, retryTimer = null, pingTimer = null, failures = 0, pollRate = null, lastPoll = 0, seq = 0, suspended = false, engine = null;
    function startEngine() {
      var e = engine = new Engine(
        {
          origin: baseOrigin(),
          transports: M.transports,
          heartbeatTimeout: Number(M.pingtimeout) || 0,
          connectTimeout: 1e4,
          retryDelay: 1e3,
          maxRetryDelay: Math.max(1e3, Number(M.maxpollfreq) || 6e4),
          pushpath: M.pushpath,
          auth: M.token || M.getToken ? new Auth(M.token, M.getToken || function() {
            return M.token;
          }) : null,
          hostid: function() {
            return M.hostid;
          }
        },
        {
          deliver: function(rec, msg) {
            fire.apply(null, ["process", msg.text, msg.channel, msg.id].concat(msg.extra || []));
          },
          status: function(state, transport) {
            if (engine !== e) {
              return;
            }
            M.transport = transport;
            if (state === "connecting") {
              setstatus(LOADING);
            } else if (state === "open") {
              setstatus(READY);
            } else if (state === "reconnecting") {
              setstatus(RETRYING);
            } else if (state === "idle") {
              setstatus(UNINITIALISED);
            }
          },
          alive: function() {
            if (engine === e) {
              setstatus(RECEIVING);
            }
          },
          gap: function(g) {
            fire("gap", g.channel, g.since, g.trimmed);
          },
          error: function(err) {
            M.log(err.message);
          },
          reset: function(why) {
            M.log(why);
            fire("reset");
          },
          fatal: function(reason) {
            M.log(reason + ": will not reconnect");
            if (engine === e) {
              engine = null;
            }
            M.eof();
          }
        }
      );
      for (var name in M.channels) {
        if (hasOwn(M.channels, name)) {
          e.recs.set(name, M.channels[name]);
        }
      }
      M.log("Connecting with the transports " + e.ladder.join(", "));
      e.start();
    }
    function streamMode() {
      return String(M.mode || "stream").toLowerCase() === "stream";
    }
    function isStream(kind) {
      return kind === "xhrinteractive" || kind === "iframe";
    }
    function baseOrigin() {
      var host = String(M.host).toLowerCase(), port = Number(M.port), scheme = String(M.scheme || "http").toLowerCase();
      if (host.indexOf(":") >= 0 && host.charAt(0) !== "[") {
        host = "[" + host + "]";
      }
      var dflt = scheme === "https" ? 443 : 80;
      return scheme + "://" + host + (port === dflt ? "" : ":" + port);
    }
    function crossOrigin() {
      return baseOrigin() !== window.location.origin;
    }
    function request(path, h) {
      return requestAt(baseOrigin(), path, h, function() {
        setstatus(LOADING_FRAME);
      });
    }
    function setstatus(s) {
      if (M.status !== s) {
        M.status = s;
        M.log("Status " + s);
        fire("statuschanged", s);
      }
    }
    function fire(evt) {
      var fn = M.callbacks[evt];
      if (typeof fn !== "function") {
        return;
      }
      try {
        fn.apply(M, Array.prototype.slice.call(arguments, 1));
      } catch (e) {
        report(e);
      }
    }
    function armPingTimer() {
      window.clearTimeout(pingTimer);
      pingTimer = null;
      if (wanted && isStream(M.transport) && Number(M.pingtimeout) > 0) {
        pingTimer = window.setTimeout(pingTimeout, Number(M.pingtimeout));
      }
    }
    function pingTimeout() {
      pingTimer = null;
      if (!wanted || !isStream(M.transport)) {
        return;
      }
      M.log("No data for " + M.pingtimeout + " ms: switching to smartpoll");
      M.mode = "smartpoll";
      halt();
      fire("changemode", "poll", "smartpoll");
      if (wanted && !conn && !retryTimer) {
        M.connect();
      }
    }
    function halt() {
      if (engine) {
        var e = engine;
        engine = null;
        e.stop();
      }
      window.clearTimeout(retryTimer);
      window.clearTimeout(pingTimer);
      retryTimer = pingTimer = null;
      if (conn) {
        finish(conn);
      }
    }
    function finish(c) {
      c.dead = true;
      c.reader.stop();
      window.clearTimeout(c.timer);
      if (c.req) {
        c.req.abort();
      }
      removeFrame(c.frame);
      if (conn === c) {
        conn = null;
      }
    }
    function schedule(delay) {
      window.clearTimeout(retryTimer);
      retryTimer = window.setTimeout(open, Math.max(0, delay));
    }
    function resumeSuffix(c) {
      if (c.last !== null) {
        return ".r" + (c.last + 1);
      }
      if (c.base !== null) {
        return ".r" + (c.base + 1);
      }
      var b = Number(c.backtrack);
      if (b > 0) {
        return ".b" + Math.floor(b);
      }
      if (b < 0 || isNaN(b)) {
        return ".h";
      }
      return "";
    }
    function open() {
      retryTimer = null;
      if (!wanted || conn || !M.channelcount) {
        return;
      }
      var kind = M.transport, c = conn = {
        id: ++seq,
        kind,
        started: now(),
        dead: false,
        ok: false,
        // the server answered 200
        messages: 0,
        // new messages delivered
        chars: 0,
        timer: null,
        req: null,
        frame: null
      };
      c.reader = new ScriptReader(function(name, args) {
        call(c, name, args);
      });
      if (isStream(kind)) {
        setstatus(LOADING);
      }
      var path = subsPath(kind);
      M.log("Opening " + path);
      if (kind === "iframe") {
        c.frame = hiddenFrame(baseOrigin() + path);
        c.frame.onload = function() {
          ended(c, c.ok);
        };
        return;
      }
      var polltimeout = Number(M.polltimeout);
      if (!isStream(kind) && polltimeout > 0) {
        c.timer = window.setTimeout(function() {
          M.log("Poll timeout");
          ended(c, kind === "longpoll" && c.ok);
        }, polltimeout);
      }
      c.req = request(path, {
        head: function(status) {
          if (!c.dead && status === 200) {
            answered(c);
          }
        },
        data: function(text) {
          if (c.dead) {
            return;
          }
          c.chars += text.length;
          alive(c);
          c.reader.push(text);
          if (!c.dead && isStream(kind) && c.chars > RECYCLE_CHARS) {
            M.log("Reopening a long stream");
            ended(c, true);
          }
        },
        end: function(ok) {
          ended(c, ok && c.ok);
        }
      });
    }
    function answered(c) {
      c.ok = true;
      failures = 0;
      if (M.status !== RECEIVING) {
        setstatus(READY);
      }
    }
    function alive(c) {
      if (isStream(c.kind)) {
        armPingTimer();
      } else if (c.kind === "longpoll" && c.timer !== null) {
        window.clearTimeout(c.timer);
        c.timer = window.setTimeout(function() {
          ended(c, c.ok);
        }, Number(M.polltimeout));
      }
    }
    function call(c, name, args) {
      if (c.dead) {
        return;
      }
      if (name === "p") {
        if (Number(args[0]) !== -1 && message(args[0], args[1], args[2], args.slice(3))) {
          c.messages++;
        }
        setstatus(RECEIVING);
      } else if (name === "ch") {
        channelInfo(args[0], args[1]);
      } else if (name === "eof") {
        M.eof();
      }
    }
    function ended(c, ok) {
      if (c.dead) {
        return;
      }
      finish(c);
      if (!wanted) {
        return;
      }
      var kind = c.kind, elapsed = now() - c.started, delay;
      if (ok) {
        failures = 0;
        if (isStream(kind)) {
          fire("reset");
          delay = Number(M.pollfreq) - elapsed;
        } else if (kind === "longpoll") {
          delay = c.messages > 0 || elapsed >= 1e3 ? 0 : Number(M.minpollfreq) - elapsed;
        } else {
          if (kind === "smartpoll") {
            adapt(c);
          }
          delay = Number(M.pollfreq) - elapsed;
        }
        delay = Math.max(10, delay || 0);
      } else {
        failures++;
        setstatus(RETRYING);
        var base = isStream(kind) ? 1e3 : Math.max(1e3, Number(M.pollfreq) || 0);
        var cap = Math.max(base, Number(M.maxpollfreq) || 0);
        delay = Math.min(cap, base * Math.pow(2, Math.min(failures - 1, 10)));
        delay = delay / 2 + Math.random() * delay / 2;
      }
      if (wanted && !conn && !retryTimer) {
        schedule(delay);
      }
    }
    function adapt(c) {
      var min = Number(M.minpollfreq) || 1e3, max = Math.max(min, Number(M.maxpollfreq) || min), t = now(), sample = c.messages / Math.max(t - (lastPoll || c.started), 1);
      lastPoll = t;
      pollRate = pollRate === null ? sample : 0.7 * pollRate + 0.3 * sample;
      var target = pollRate > 0 ? 1 / (2 * pollRate) : max;
      M.pollfreq = Math.round(Math.min(max, Math.max(min, target)));
    }
    function message(id, channel, text, extra) {
      var c = Object.prototype.hasOwnProperty.call(M.channels, channel) ? M.channels[channel] : null;
      id = Number(id);
      if (!c || isNaN(id)) {
        return false;
      }
      if (c.last !== null && id <= c.last) {
        return false;
      }
      c.last = id;
      c.lastmsgreceived = id;
      fire.apply(null, ["process", text === void 0 || text === null ? "" : String(text), channel, id].concat(extra || []));
      return true;
    }
    function channelInfo(name, lastId) {
      var c = Object.prototype.hasOwnProperty.call(M.channels, name) ? M.channels[name] : null;
      lastId = Number(lastId);
      if (!c || isNaN(lastId)) {
        return;
      }
      if (c.last === null) {
        if (c.base === null) {
          c.base = lastId;
        }
      } else if (lastId < c.last) {
        M.log("Channel " + name + ": server restarted its ids at " + lastId);
        c.last = lastId;
        c.lastmsgreceived = lastId;
        c.lost = 0;
      }
    }
    function subsPath(kind) {
      var p = String(M.pushpath || "/push").replace(/\/+$/, "") + "/" + M.hostid + "/" + kind;
      for (var name in M.channels) {
        if (Object.prototype.hasOwnProperty.call(M.channels, name)) {
          p += "/" + name + resumeSuffix(M.channels[name]);
        }
      }
      return p + "?nc=" + now() + (M.token ? "&token=" + encodeURIComponent(M.token) : "");
    }
    function pickTransport() {
      var mode = String(M.mode || "stream").toLowerCase();
      if (mode === "stream") {
        return "xhrinteractive";
      }
      if (mode === "iframe" && crossOrigin()) {
        return "xhrinteractive";
      }
      return mode;
    }
    M.joinChannel = function(name, backtrack) {
      name = String(name);
      if (!CHANNEL_NAME.test(name)) {
        throw new Error("Meteor: invalid channel name " + JSON.stringify(name) + " (letters, digits, _ % - only)");
      }
      if (Object.prototype.hasOwnProperty.call(M.channels, name)) {
        throw new Error("Meteor: cannot join channel " + name + ": already subscribed");
      }
      var rec = M.channels[name] = { backtrack, lastmsgreceived: 0, last: null, base: null };
      M.channelcount++;
      M.log("Joined channel " + name);
      if (engine && wanted) {
        engine.add(name, rec);
        return;
      }
      if (wanted || M.status !== UNINITIALISED) {
        M.connect();
      }
    };
    M.leaveChannel = function(name) {
      name = String(name);
      if (!Object.prototype.hasOwnProperty.call(M.channels, name)) {
        throw new Error("Meteor: cannot leave channel " + name + ": not subscribed");
      }
      delete M.channels[name];
      M.channelcount--;
      M.log("Left channel " + name);
      if (wanted || M.status !== UNINITIALISED) {
        if (M.channelcount > 0 && engine && wanted) {
          engine.remove(name);
        } else if (M.channelcount > 0) {
          M.connect();
        } else {
          halt();
          setstatus(UNINITIALISED);
        }
      }
    };
    M.registerEventCallback = function(evt, fn) {
      if (typeof fn !== "function") {
        throw new Error("Meteor: the callback for " + evt + " is not a function");
      }
      var prev = M.callbacks[evt];
      if (typeof prev !== "function" || prev === noop) {
        M.callbacks[evt] = fn;
        return;
      }
      M.callbacks[evt] = function() {
        try {
          prev.apply(this, arguments);
        } catch (e) {
          report(e);
        }
        return fn.apply(this, arguments);
      };
    };
    M.connect = function() {
      if (!M.host) {
        throw new Error("Meteor: host not specified");
      }
      var port = Number(M.port);
      if (!(port > 0 && port < 65536 && Math.floor(port) === port)) {
        throw new Error("Meteor: port not specified");
      }
      if (!M.channelcount) {
        throw new Error("Meteor: no channels specified");
      }
      if (!M.hostid) {
        M.hostid = newHostId();
      }
      if (!HOST_ID.test(String(M.hostid))) {
        throw new Error("Meteor: hostid must be letters and digits only");
      }
      halt();
      wanted = true;
      suspended = false;
      failures = 0;
      if (streamMode()) {
        startEngine();
        return;
      }
      M.transport = pickTransport();
      pollRate = null;
      lastPoll = 0;
      M.log("Connecting with " + M.transport);
      setstatus(LOADING);
      armPingTimer();
      open();
    };
    M.disconnect = function() {
      wanted = false;
      halt();
      if (M.status !== ENDED) {
        setstatus(UNINITIALISED);
      }
      M.log("Disconnected");
    };
    M.register = function(win) {
      var c = conn;
      if (c && c.frame && c.frame.contentWindow === win) {
        win.p = function() {
          call(c, "p", Array.prototype.slice.call(arguments));
          alive(c);
        };
        win.ch = function() {
          call(c, "ch", Array.prototype.slice.call(arguments));
          alive(c);
        };
        win.eof = function() {
          call(c, "eof", []);
        };
        win.r = function() {
          ended(c, c.ok);
        };
        answered(c);
        alive(c);
        return;
      }
      win.p = M.process;
      win.ch = M.channelInfo;
      win.eof = M.eof;
      win.r = M.reset;
    };
    M.reset = function(win) {
      var c = conn;
      if (!c) {
        return;
      }
      if (win && c.frame) {
        var w = c.frame.contentWindow;
        if (win !== w && !(w && (win === w.document || win === w.document.body))) {
          return;
        }
      }
      ended(c, c.ok);
    };
    M.process = function(id, channel, text) {
      if (Number(id) === -1) {
        M.ping();
        return;
      }
      message(id, channel, text, Array.prototype.slice.call(arguments, 3));
      setstatus(RECEIVING);
    };
    M.ping = function() {
      if (conn) {
        alive(conn);
      }
      setstatus(RECEIVING);
    };
    M.channelInfo = function(name, lastId) {
      channelInfo(name, lastId);
    };
    M.eof = function() {
      M.log("End of stream: will not reconnect");
      wanted = false;
      halt();
      setstatus(ENDED);
      fire("eof");
    };
    M.getSubsUrl = function(kind) {
      if (!M.hostid) {
        M.hostid = newHostId();
      }
      if (!kind) {
        kind = !M.transport ? pickTransport() : hasOwn(TRANSPORTS, M.transport) ? "xhrinteractive" : M.transport;
      }
      return baseOrigin() + subsPath(kind);
    };
    M.setstatus = setstatus;
    M.log = function(text) {
      if (M.debugmode && window.console) {
        window.console.log("Meteor: " + text);
      }
    };
    M.parse = parse;
    window.addEventListener("pagehide", function(e) {
      if (e.persisted && wanted) {
        halt();
        suspended = true;
      }
    });
    window.addEventListener("pageshow", function(e) {
      if (e.persisted && suspended && wanted) {
        suspended = false;
        if (streamMode()) {
          startEngine();
          return;
        }
        armPingTimer();
        open();
      }
    });
    M.frame = function(kind) {
      if (window.parent === window) {
        return;
      }
      if (window.location.hash === "#bridge") {
        serveBridge();
        return;
      }
      var P = null;
      try {
        P = window.parent.Meteor;
      } catch (e) {
      }
      if (P && P !== M && typeof P.register === "function" && typeof P.getSubsUrl === "function") {
        legacyFrame(kind, P);
      }
    };
    return M;
  }

  // src/classic.js
  if (!(window.Meteor && window.Meteor.client === "meteor-go")) {
    window.Meteor = createMeteor();
  }
})();

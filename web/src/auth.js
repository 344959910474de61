// auth.js: the subscriber token of a MeteorClient: where it comes from
// (options.token, options.getToken), when it expires, when to renew it.

import { now } from "./util.js";

// How long before its expiry a token is renewed: a tenth of its lifetime,
// at least REFRESH_MARGIN ms, at most half of the lifetime (a token of a
// few seconds is renewed halfway).
var REFRESH_MARGIN = 30000;

// A renewal is never planned sooner than this after the last one, so that
// a getToken that keeps returning a token near its end is not called in a
// loop.
var MIN_REFRESH_DELAY = 1000;

// jwtClaims returns the claims of a JWT (its payload), or null when the
// token is not a readable JWT. The signature is the server's business.
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

// expiredReason reports whether the reason of a refusal (the "reason" of a
// 401's JSON body, a close event's reason) says the token expired.
function expiredReason(r) {
	return r === "tokenExpired" || r === "expired";
}

// Auth holds the token of one client. token: the first token (optional);
// getToken: the page's function that returns a fresh one (a string or a
// promise of one; optional). Without getToken the token cannot be
// renewed: its expiry ends the client.
function Auth(token, getToken) {
	this.getToken = typeof getToken === "function" ? getToken : null;
	this.token = null;
	this.lifetime = null; // ms from this.at to the expiry; null: unknown
	this.at = 0; // when this.token was received (now())
	this.stale = false; // the server said this.token expired
	this.pending = null; // the getToken call under way
	if (token !== undefined && token !== null && token !== "") {
		this.set(String(token));
	}
}

// set makes t the token. Its lifetime is exp - iat when the token has both
// (the client's clock may be off; the token was just issued), else exp
// against the client's clock.
Auth.prototype.set = function (t) {
	var c = jwtClaims(t),
		life = null;
	this.at = now();
	if (c && typeof c.exp === "number") {
		life = typeof c.iat === "number" && c.exp > c.iat ? (c.exp - c.iat) * 1000 : c.exp * 1000 - this.at;
	}
	this.token = t;
	this.lifetime = life > 0 ? life : null;
	this.stale = false;
};

// refreshAt returns when the token should be renewed (a now() time), or
// null when that cannot be known (no exp, or no getToken to renew it).
Auth.prototype.refreshAt = function () {
	if (!this.getToken || this.lifetime === null) {
		return null;
	}
	var l = this.lifetime,
		margin = Math.min(Math.max(l / 10, REFRESH_MARGIN), l / 2);
	return this.at + l - margin;
};

// refreshDelay returns the ms until the token should be renewed, or -1
// when it need not be.
Auth.prototype.refreshDelay = function () {
	var at = this.refreshAt();
	return at === null ? -1 : Math.max(MIN_REFRESH_DELAY, at - now());
};

// needed reports whether a token must be fetched before connecting: there
// is none yet, the server said it expired, or it is due for renewal.
Auth.prototype.needed = function () {
	if (!this.getToken) {
		return false;
	}
	var at = this.refreshAt();
	return !this.token || this.stale || (at !== null && now() >= at);
};

// pastExpiry reports whether token t, when it is the current token, has
// expired by the client's reckoning.
Auth.prototype.pastExpiry = function (t) {
	return t === this.token && this.lifetime !== null && now() >= this.at + this.lifetime;
};

// expired notes that the server ended a connection because token t
// expired: unless a newer token came since, the next connection fetches one.
Auth.prototype.expired = function (t) {
	if (t === this.token) {
		this.stale = true;
	}
};

// fetch calls getToken (once, however many wait for it) and returns a
// promise of the new token.
Auth.prototype.fetch = function () {
	if (this.pending) {
		return this.pending;
	}
	var self = this,
		p;
	try {
		p = Promise.resolve(this.getToken());
	} catch (err) {
		p = Promise.reject(err);
	}
	p = this.pending = p.then(
		function (t) {
			if (self.pending === p) {
				self.pending = null;
			}
			if (typeof t !== "string" || !t) {
				throw new Error("getToken returned no token");
			}
			self.set(t);
			return t;
		},
		function (err) {
			if (self.pending === p) {
				self.pending = null;
			}
			throw err;
		}
	);
	return p;
};

export { Auth, jwtClaims, expiredReason, REFRESH_MARGIN };

package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Signed URLs let Meteor 1.06 pages, which cannot send an Authorization
// header, subscribe: the site's back end appends
//
//	exp=<unix seconds>&sig=<base64url, no padding, of HMAC-SHA256(URLSecret, path + "\n" + exp)>
//
// to the subscriber URL, where path is the URL's path only, as written in
// the URL (not percent-decoded; Go: r.URL.EscapedPath()), without the query:
// "/push/host/longpoll/chat.r1". The channels are in the path, so the
// signature grants exactly them.

// maxExpDigits bounds the exp parameter: 19 digits always fit an int64
// once 9223372036854775807 is excluded by ParseInt.
const maxExpDigits = 19

// SignURL signs path until exp, returning the exp and sig query parameter
// values (unescaped; both are URL-safe).
func SignURL(secret []byte, path string, exp time.Time) (expParam, sigParam string) {
	expParam = strconv.FormatInt(exp.Unix(), 10)
	return expParam, base64.RawURLEncoding.EncodeToString(urlMAC(secret, path, expParam))
}

func urlMAC(secret []byte, path, exp string) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(path))
	m.Write([]byte{'\n'})
	m.Write([]byte(exp))
	return m.Sum(nil)
}

// VerifyURL checks a signed URL's path and its exp and sig query
// parameters at time now (time.Now when zero). The Grant has Path set (see
// Grant.Path) and Expiry exp. Refusals: "missing" (no exp or sig),
// "malformed" (exp not decimal unix seconds), "signature" (no URLSecret
// configured, or sig does not match), "expired" (exp, plus Leeway, is not
// after now).
func (v *Verifier) VerifyURL(path string, exp string, sig string, now time.Time) (Grant, error) {
	if exp == "" || sig == "" {
		return Grant{}, fail(CheckMissing, errors.New("signed URL needs exp and sig"))
	}
	if v.urlSecret == nil {
		return Grant{}, fail(CheckSignature, ErrUnconfigured)
	}
	if len(exp) > maxExpDigits {
		return Grant{}, fail(CheckMalformed, errors.New("exp: too long"))
	}
	for i := 0; i < len(exp); i++ {
		if exp[i] < '0' || exp[i] > '9' {
			return Grant{}, fail(CheckMalformed, fmt.Errorf("exp %q: not unix seconds", exp))
		}
	}
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return Grant{}, fail(CheckMalformed, fmt.Errorf("exp: %w", err))
	}
	// The signature is compared as text, never decoded: base64 decoding
	// skips CR and LF (even in Strict mode), so a decoded comparison would
	// accept many spellings of one signature (found by FuzzVerifyURL).
	want := base64.RawURLEncoding.EncodeToString(urlMAC(v.urlSecret, path, exp))
	if !hmac.Equal([]byte(sig), []byte(want)) {
		return Grant{}, fail(CheckSignature, errors.New("signed URL: sig does not match path and exp"))
	}
	if now.IsZero() {
		now = time.Now()
	}
	expiry := time.Unix(secs, 0)
	if !now.Before(expiry.Add(v.leeway)) {
		return Grant{}, fail(CheckExpired, fmt.Errorf("signed URL expired at %s", expiry.UTC().Format(time.RFC3339)))
	}
	return Grant{Expiry: expiry, Path: true}, nil
}

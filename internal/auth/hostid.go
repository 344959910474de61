package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Signed host ids let an unchanged Meteor 1.06 page subscribe when
// SubscriberAuth is on. Such a page builds its URL itself,
// /push/<hostid>/<mode>/<chan>.r<N>..., and changes it on every reconnect
// (the .r<N> that resumes, the mode that smartpoll falls back to), so a
// signature over the path would break at the first reconnect; but the
// page's hostid is what its back end wrote into it (Meteor.hostid = "..."),
// and a hostid may carry a signature. A signed hostid is
//
//	<id> "s" <exp> "s" <sig>
//
// where id is the page's own id ([0-9a-z]+, lower case: a 1.06 hostid is
// case-insensitive, so the id is lower-cased before it is checked), exp decimal Unix seconds, and
// sig the 64 lower-case hex digits of
//
//	HMAC-SHA256(SignedURLSecret, "hostid\n" + id + "\n" + exp + "\n" + channels)
//
// with channels the names the page joins, sorted (byte order), without
// duplicates, joined by ",". The signature grants exactly that set of
// channels: a URL naming any other set is refused (check "signature").
// A hostid is parsed from its end, so id may hold anything a hostid may.

// hostIDSigLen is the length of a signed hostid's signature, in hex digits.
const hostIDSigLen = 2 * sha256.Size

// SignHostID returns the signed hostid for id ([0-9a-z]+) and the channels
// that the page joins, valid until exp.
func SignHostID(secret []byte, id string, channels []string, exp time.Time) string {
	e := strconv.FormatInt(exp.Unix(), 10)
	return id + "s" + e + "s" + hex.EncodeToString(hostIDMAC(secret, id, e, channels))
}

// hostIDMAC is the MAC of a signed hostid. channels is not modified.
func hostIDMAC(secret []byte, id, exp string, channels []string) []byte {
	names := slices.Clone(channels)
	slices.Sort(names)
	names = slices.Compact(names)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("hostid\n" + id + "\n" + exp + "\n" + strings.Join(names, ",")))
	return m.Sum(nil)
}

// SplitHostID cuts a signed hostid into its id, exp and sig; ok is false
// when hostid does not have the form of one (it is then a plain hostid).
func SplitHostID(hostid string) (id, exp, sig string, ok bool) {
	n := len(hostid)
	if n < hostIDSigLen+4 || hostid[n-hostIDSigLen-1]|0x20 != 's' {
		return "", "", "", false
	}
	sig, rest := hostid[n-hostIDSigLen:], hostid[:n-hostIDSigLen-1]
	i := len(rest)
	for i > 0 && rest[i-1] >= '0' && rest[i-1] <= '9' {
		i--
	}
	if i == len(rest) || i < 2 || rest[i-1]|0x20 != 's' {
		return "", "", "", false
	}
	return rest[:i-1], rest[i:], sig, true
}

// VerifyHostID checks a signed hostid for the channel names of the URL at
// time now (time.Now when zero). The Grant has Path set: every channel of
// that set is granted. Refusals: "missing" (hostid not signed),
// "malformed" (exp too long), "signature" (no SignedURLSecret, or sig does
// not match id, exp and these channels), "expired".
func (v *Verifier) VerifyHostID(hostid string, channels []string, now time.Time) (Grant, error) {
	id, exp, sig, ok := SplitHostID(hostid)
	if !ok {
		return Grant{}, fail(CheckMissing, errors.New("hostid is not signed"))
	}
	if v.urlSecret == nil {
		return Grant{}, fail(CheckSignature, ErrUnconfigured)
	}
	if len(exp) > maxExpDigits {
		return Grant{}, fail(CheckMalformed, errors.New("hostid exp: too long"))
	}
	secs, err := strconv.ParseInt(exp, 10, 64)
	if err != nil {
		return Grant{}, fail(CheckMalformed, fmt.Errorf("hostid exp: %w", err))
	}
	// Compared as text, lower-cased (a 1.06 hostid is case-insensitive),
	// never decoded: see VerifyURL.
	want := hex.EncodeToString(hostIDMAC(v.urlSecret, strings.ToLower(id), exp, channels))
	if !hmac.Equal([]byte(strings.ToLower(sig)), []byte(want)) {
		return Grant{}, fail(CheckSignature, errors.New("signed hostid: sig does not match id, exp and the channels"))
	}
	if now.IsZero() {
		now = time.Now()
	}
	expiry := time.Unix(secs, 0)
	if !now.Before(expiry.Add(v.leeway)) {
		return Grant{}, fail(CheckExpired, fmt.Errorf("signed hostid expired at %s", expiry.UTC().Format(time.RFC3339)))
	}
	return Grant{Expiry: expiry, Path: true}, nil
}

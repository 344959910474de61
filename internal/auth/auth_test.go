package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/meteorpush/meteor/internal/auth/authtest"
)

var now = time.Unix(1_800_000_000, 0)

func claimsAt(exp time.Time, channels ...string) jwt.MapClaims {
	return jwt.MapClaims{"sub": "u1", "channels": channels, "exp": exp.Unix()}
}

func mustNew(t *testing.T, o Options) *Verifier {
	t.Helper()
	v, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantCheck asserts err is an *Error with the check.
func wantCheck(t *testing.T, err error, check string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want an *Error with Check %q", err, err, check)
	}
	if e.Check != check {
		t.Fatalf("Check = %q (%v), want %q", e.Check, e, check)
	}
}

func TestEveryAlgorithm(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	rsaKey := authtest.RSA(t, 0, "")
	ecKey := authtest.ECDSA(t, "")
	edKey := authtest.Ed25519(t, "")
	pemKeys := authtest.PEM(t, rsaKey, ecKey, edKey)
	v := mustNew(t, Options{Secret: secret, PublicKeys: pemKeys})
	exp := now.Add(time.Hour)
	for name, tok := range map[string]string{
		"HS256": authtest.SignHS256(t, secret, claimsAt(exp, "chat_*", "news")),
		"RS256": authtest.Sign(t, rsaKey, claimsAt(exp, "chat_*", "news")),
		"ES256": authtest.Sign(t, ecKey, claimsAt(exp, "chat_*", "news")),
		"EdDSA": authtest.Sign(t, edKey, claimsAt(exp, "chat_*", "news")),
	} {
		t.Run(name, func(t *testing.T) {
			g, err := v.Verify(tok, now)
			if err != nil {
				t.Fatal(err)
			}
			if g.Subject != "u1" || !g.Expiry.Equal(exp) || len(g.Channels) != 2 || g.Path {
				t.Fatalf("grant %+v", g)
			}
			if !g.Allows("chat_1") || !g.Allows("news") || g.Allows("news2") || g.AllowsPublish("news") {
				t.Fatalf("grant %+v allows the wrong channels", g)
			}
		})
	}
	// Certificates and JWKS give the same keys.
	for name, keys := range map[string][]byte{
		"certificates": append(authtest.Certificate(t, rsaKey), authtest.Certificate(t, ecKey)...),
		"JWKS":         authtest.JWKS(t, rsaKey, ecKey, edKey),
	} {
		v := mustNew(t, Options{PublicKeys: keys})
		for _, k := range []authtest.Key{rsaKey, ecKey, edKey} {
			if name == "certificates" && k.Alg == "EdDSA" {
				continue
			}
			if _, err := v.Verify(authtest.Sign(t, k, claimsAt(exp)), now); err != nil {
				t.Errorf("%s, %s: %v", name, k.Alg, err)
			}
		}
	}
}

func TestWrongKey(t *testing.T) {
	exp := now.Add(time.Hour)
	for _, pair := range [][2]authtest.Key{
		{authtest.RSA(t, 0, ""), authtest.RSA(t, 1, "")},
		{authtest.ECDSA(t, ""), authtest.ECDSA(t, "")},
		{authtest.Ed25519(t, ""), authtest.Ed25519(t, "")},
	} {
		v := mustNew(t, Options{PublicKeys: authtest.PEM(t, pair[0])})
		_, err := v.Verify(authtest.Sign(t, pair[1], claimsAt(exp)), now)
		wantCheck(t, err, CheckSignature)
	}
	v := mustNew(t, Options{Secret: []byte("right")})
	_, err := v.Verify(authtest.SignHS256(t, []byte("wrong"), claimsAt(exp)), now)
	wantCheck(t, err, CheckSignature)
	// A tampered payload.
	tok := authtest.SignHS256(t, []byte("right"), claimsAt(exp, "a"))
	parts := strings.Split(tok, ".")
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"u1","channels":["*"],"exp":` + jsonNum(exp) + `}`))
	_, err = v.Verify(strings.Join(parts, "."), now)
	wantCheck(t, err, CheckSignature)
}

func jsonNum(t time.Time) string {
	b, _ := json.Marshal(t.Unix())
	return string(b)
}

func TestAlgNone(t *testing.T) {
	v := mustNew(t, Options{Secret: []byte("s"), PublicKeys: authtest.PEM(t, authtest.Ed25519(t, ""))})
	_, err := v.Verify(authtest.Unsigned(t, claimsAt(now.Add(time.Hour), "*")), now)
	wantCheck(t, err, CheckAlgorithm)
	// Unknown and missing algs.
	for _, header := range []string{`{"alg":"HS512"}`, `{"alg":"RS384"}`, `{"alg":"PS256"}`, `{"alg":"nope"}`, `{}`, `{"alg":1}`} {
		tok := seg(header) + "." + seg(`{"exp":1900000000}`) + ".c2ln"
		_, err := v.Verify(tok, now)
		wantCheck(t, err, CheckAlgorithm)
	}
}

func seg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// hs256 signs claims with key by hand, as an attacker would.
func hs256(header, payload string, key []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(seg(header) + "." + seg(payload)))
	return seg(header) + "." + seg(payload) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func TestAlgorithmConfusion(t *testing.T) {
	k := authtest.RSA(t, 0, "")
	pemKeys := authtest.PEM(t, k)
	payload := `{"sub":"evil","channels":["*"],"exp":` + jsonNum(now.Add(time.Hour)) + `}`
	forged := hs256(`{"alg":"HS256","typ":"JWT"}`, payload, pemKeys)
	// Public keys only: HS256 is not an accepted alg.
	v := mustNew(t, Options{PublicKeys: pemKeys})
	_, err := v.Verify(forged, now)
	wantCheck(t, err, CheckAlgorithm)
	// With a secret as well, HS256 verifies with the secret only.
	v = mustNew(t, Options{Secret: []byte("the real secret"), PublicKeys: pemKeys})
	_, err = v.Verify(forged, now)
	wantCheck(t, err, CheckSignature)
	// The JWKS document's bytes as the secret.
	jwks := authtest.JWKS(t, k)
	v = mustNew(t, Options{PublicKeys: jwks})
	_, err = v.Verify(hs256(`{"alg":"HS256"}`, payload, jwks), now)
	wantCheck(t, err, CheckAlgorithm)
	// An RS256 token on a secret-only verifier.
	v = mustNew(t, Options{Secret: []byte("s")})
	_, err = v.Verify(authtest.Sign(t, k, claimsAt(now.Add(time.Hour))), now)
	wantCheck(t, err, CheckAlgorithm)
	// ES256 alg with an RSA key configured only.
	v = mustNew(t, Options{PublicKeys: pemKeys})
	_, err = v.Verify(authtest.Sign(t, authtest.ECDSA(t, ""), claimsAt(now.Add(time.Hour))), now)
	wantCheck(t, err, CheckAlgorithm)
}

func TestTimes(t *testing.T) {
	secret := []byte("s")
	v := mustNew(t, Options{Secret: secret})
	vl := mustNew(t, Options{Secret: secret, Leeway: time.Minute})
	sign := func(c jwt.MapClaims) string { return authtest.SignHS256(t, secret, c) }

	expired := sign(claimsAt(now.Add(-30 * time.Second)))
	_, err := v.Verify(expired, now)
	wantCheck(t, err, CheckExpired)
	if _, err := vl.Verify(expired, now); err != nil {
		t.Errorf("within leeway: %v", err)
	}
	_, err = vl.Verify(sign(claimsAt(now.Add(-2*time.Minute))), now)
	wantCheck(t, err, CheckExpired)
	_, err = v.Verify(sign(claimsAt(now)), now) // exp is the first instant not valid
	wantCheck(t, err, CheckExpired)

	future := claimsAt(now.Add(time.Hour))
	future["nbf"] = now.Add(30 * time.Second).Unix()
	_, err = v.Verify(sign(future), now)
	wantCheck(t, err, CheckNotYetValid)
	if _, err := vl.Verify(sign(future), now); err != nil {
		t.Errorf("nbf within leeway: %v", err)
	}
	if _, err := v.Verify(sign(future), now.Add(time.Minute)); err != nil {
		t.Errorf("nbf past: %v", err)
	}

	noExp := jwt.MapClaims{"sub": "u1", "channels": []string{"a"}}
	_, err = v.Verify(sign(noExp), now)
	wantCheck(t, err, CheckMalformed)
	_, err = v.Verify(sign(jwt.MapClaims{"exp": "tomorrow"}), now)
	wantCheck(t, err, CheckMalformed)

	// The current time when now is zero.
	if _, err := v.Verify(sign(authtest.Claims("u", nil, time.Minute)), time.Time{}); err != nil {
		t.Errorf("zero now: %v", err)
	}
}

func TestAudience(t *testing.T) {
	secret := []byte("s")
	v := mustNew(t, Options{Secret: secret, Audience: "meteor"})
	c := claimsAt(now.Add(time.Hour))
	for _, tt := range []struct {
		aud  any
		want string
	}{
		{"meteor", ""},
		{"other", CheckAudience},
		{nil, CheckAudience},
		{"", CheckAudience},
		{[]string{"x", "meteor"}, ""},
		{[]string{"x", "y"}, CheckAudience},
		{[]any{1}, CheckMalformed},
		{float64(3), CheckMalformed},
	} {
		aud, want := tt.aud, tt.want
		c := jwt.MapClaims{"exp": c["exp"]}
		if aud != nil {
			c["aud"] = aud
		}
		_, err := v.Verify(authtest.SignHS256(t, secret, c), now)
		if want == "" {
			if err != nil {
				t.Errorf("aud %v: %v", aud, err)
			}
			continue
		}
		var e *Error
		if !errors.As(err, &e) || e.Check != want {
			t.Errorf("aud %v: %v, want Check %q", aud, err, want)
		}
	}
	// No Audience configured: aud is not checked.
	v = mustNew(t, Options{Secret: secret})
	c["aud"] = "whatever"
	if _, err := v.Verify(authtest.SignHS256(t, secret, c), now); err != nil {
		t.Error(err)
	}
}

func TestKidSelection(t *testing.T) {
	a := authtest.ECDSA(t, "a")
	b := authtest.ECDSA(t, "b")
	r := authtest.RSA(t, 2, "r")
	v := mustNew(t, Options{PublicKeys: authtest.JWKS(t, a, b, r)})
	exp := now.Add(time.Hour)
	for _, k := range []authtest.Key{a, b, r} {
		if _, err := v.Verify(authtest.Sign(t, k, claimsAt(exp)), now); err != nil {
			t.Errorf("kid %s: %v", k.Kid, err)
		}
	}
	// b's signature under kid "a" fails: the kid picks a's key only.
	misnamed := b
	misnamed.Kid = "a"
	_, err := v.Verify(authtest.Sign(t, misnamed, claimsAt(exp)), now)
	wantCheck(t, err, CheckSignature)
	// An unknown kid.
	unknown := b
	unknown.Kid = "zzz"
	_, err = v.Verify(authtest.Sign(t, unknown, claimsAt(exp)), now)
	wantCheck(t, err, CheckSignature)
	if !errors.Is(err, ErrUnknownKey) {
		t.Errorf("err = %v, want ErrUnknownKey", err)
	}
	// No kid in the token: every key of the alg is tried.
	anon := b
	anon.Kid = ""
	if _, err := v.Verify(authtest.Sign(t, anon, claimsAt(exp)), now); err != nil {
		t.Errorf("no kid: %v", err)
	}
	// PEM keys have no kid: a token's kid does not matter.
	vp := mustNew(t, Options{PublicKeys: authtest.PEM(t, a, b)})
	if _, err := vp.Verify(authtest.Sign(t, b, claimsAt(exp)), now); err != nil {
		t.Errorf("PEM, kid b: %v", err)
	}
}

func TestChannelsClaim(t *testing.T) {
	secret := []byte("s")
	v := mustNew(t, Options{Secret: secret})
	exp := now.Add(time.Hour).Unix()
	g, err := v.Verify(authtest.SignHS256(t, secret, jwt.MapClaims{
		"exp": exp, "channels": []string{"chat_*", "news"}, "publish": []string{"news"},
	}), now)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"chat_": true, "chat_42": true, "chat": false, "news": true, "news_x": false, "": false, "chat_a.b": false} {
		if got := g.Allows(name); got != want {
			t.Errorf("Allows(%q) = %v, want %v", name, got, want)
		}
	}
	if !g.AllowsPublish("news") || g.AllowsPublish("chat_1") {
		t.Errorf("AllowsPublish wrong for %+v", g)
	}
	if err := g.Authorize("chat_1"); err != nil {
		t.Error(err)
	}
	err = g.AuthorizePublish("chat_1")
	wantCheck(t, err, CheckChannel)
	if err.(*Error).Status() != 403 {
		t.Errorf("Status = %d", err.(*Error).Status())
	}
	all, err := v.Verify(authtest.SignHS256(t, secret, jwt.MapClaims{"exp": exp, "channels": []string{"*"}}), now)
	if err != nil || !all.Allows("anything") || all.Allows("a b") {
		t.Errorf("'*' grant: %+v, %v", all, err)
	}
	none, err := v.Verify(authtest.SignHS256(t, secret, jwt.MapClaims{"exp": exp}), now)
	if err != nil || none.Allows("a") || none.AllowsPublish("a") {
		t.Errorf("no channels: %+v, %v", none, err)
	}
	for _, bad := range []any{"chat", []any{"a", 1}, map[string]any{"a": 1}, []string{"a*b"}, []string{"**"}, []string{""}, []string{"a.b"}, true} {
		for _, claim := range []string{"channels", "publish"} {
			_, err := v.Verify(authtest.SignHS256(t, secret, jwt.MapClaims{"exp": exp, claim: bad}), now)
			var e *Error
			if !errors.As(err, &e) || e.Check != CheckMalformed {
				t.Errorf("%s %v: %v, want malformed", claim, bad, err)
			}
		}
	}
}

func TestMissingMalformedUnconfigured(t *testing.T) {
	v := mustNew(t, Options{Secret: []byte("s")})
	_, err := v.Verify("", now)
	wantCheck(t, err, CheckMissing)
	for _, tok := range []string{"x", "a.b", "a.b.c.d", "!!.!!.!!", seg("{") + "." + seg("{}") + ".x", seg(`{"alg":"HS256"}`) + "." + seg("[]") + ".x"} {
		_, err := v.Verify(tok, now)
		wantCheck(t, err, CheckMalformed)
	}
	// A valid token spelled with a CR or LF inside a part, which base64
	// decoding would skip, is refused.
	good := authtest.SignHS256(t, []byte("s"), claimsAt(now.Add(time.Hour)))
	if _, err := v.Verify(good, now); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{good[:len(good)-5] + "\r" + good[len(good)-5:], good[:10] + "\n" + good[10:], good + " "} {
		_, err := v.Verify(tok, now)
		wantCheck(t, err, CheckMalformed)
	}
	empty := mustNew(t, Options{})
	_, err = empty.Verify(authtest.SignHS256(t, []byte("s"), claimsAt(now.Add(time.Hour))), now)
	wantCheck(t, err, CheckSignature)
	if !errors.Is(err, ErrUnconfigured) {
		t.Errorf("err = %v, want ErrUnconfigured", err)
	}
	_, err = empty.VerifyURL("/p", "1", "x", now)
	wantCheck(t, err, CheckSignature)
	if !errors.Is(err, ErrUnconfigured) {
		t.Errorf("err = %v, want ErrUnconfigured", err)
	}
}

func TestStatus(t *testing.T) {
	for _, c := range []string{CheckMissing, CheckMalformed, CheckSignature, CheckAlgorithm, CheckExpired, CheckNotYetValid, CheckAudience} {
		if s := (&Error{Check: c}).Status(); s != 401 {
			t.Errorf("%s: Status %d", c, s)
		}
	}
	if s := (&Error{Check: CheckChannel}).Status(); s != 403 {
		t.Errorf("channel: Status %d", s)
	}
	e := &Error{Check: CheckExpired, Err: jwt.ErrTokenExpired}
	if !errors.Is(e, jwt.ErrTokenExpired) || !strings.Contains(e.Error(), "expired") {
		t.Errorf("Error %q does not wrap", e)
	}
}

func TestNewErrors(t *testing.T) {
	ec := authtest.ECDSA(t, "k")
	jwk := func(edit func(m map[string]any)) []byte {
		m := authtest.JWK(ec)
		edit(m)
		b, _ := json.Marshal(map[string]any{"keys": []any{m}})
		return b
	}
	for name, keys := range map[string][]byte{
		"garbage":     []byte("not a key"),
		"private PEM": []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
		"bad PEM":     []byte("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"),
		"bad JSON":    []byte(`{"keys": [`),
		"empty JWKS":  []byte(`{"keys": []}`),
		"kty":         jwk(func(m map[string]any) { m["kty"] = "oct" }),
		"crv":         jwk(func(m map[string]any) { m["crv"] = "P-384" }),
		"off curve":   jwk(func(m map[string]any) { m["y"] = m["x"] }),
		"short x":     jwk(func(m map[string]any) { m["x"] = "AAAA" }),
		"padded":      jwk(func(m map[string]any) { m["x"] = m["x"].(string) + "=" }),
		"private JWK": jwk(func(m map[string]any) { m["d"] = "AAAA" }),
		"alg":         jwk(func(m map[string]any) { m["alg"] = "RS256" }),
		"small RSA":   []byte(`{"kty":"RSA","n":"` + seg(strings.Repeat("\xff", 128)) + `","e":"AQAB"}`),
		"even e":      []byte(`{"kty":"RSA","n":"` + seg(strings.Repeat("\xff", 256)) + `","e":"AQAA"}`),
	} {
		if _, err := New(Options{PublicKeys: keys}); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := New(Options{Leeway: -time.Second}); err == nil {
		t.Error("negative leeway accepted")
	}
	// An encryption key is skipped; a single JWK is a set of one.
	enc := jwk(func(m map[string]any) { m["use"] = "enc" })
	if _, err := New(Options{PublicKeys: enc}); err == nil {
		t.Error("a JWKS of encryption keys only accepted")
	}
	single, _ := json.Marshal(authtest.JWK(ec))
	if n, err := ParsePublicKeys(single); n != 1 || err != nil {
		t.Errorf("single JWK: %d, %v", n, err)
	}
}

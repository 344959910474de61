package auth

import (
	"errors"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/auth/authtest"
)

// fuzzVerifier accepts every kind of token, keys from the fixed JWKS below
// and a fixed secret, so fuzzed tokens reach every code path.
func fuzzVerifier(f *testing.F) (*Verifier, []authtest.Key) {
	keys := []authtest.Key{authtest.RSA(f, 0, "r"), authtest.ECDSA(f, "e"), authtest.Ed25519(f, "")}
	pem := authtest.PEM(f, keys...)
	v, err := New(Options{Secret: []byte("fuzz"), PublicKeys: pem, Audience: "meteor", Leeway: time.Second, URLSecret: []byte("url")})
	if err != nil {
		f.Fatal(err)
	}
	return v, keys
}

func checkErr(t *testing.T, err error) {
	var e *Error
	if err != nil && !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not an *Error", err, err)
	}
	if e != nil && e.Check == "" {
		t.Fatalf("error %v has no Check", err)
	}
}

func FuzzVerify(f *testing.F) {
	v, keys := fuzzVerifier(f)
	c := claimsAt(now.Add(time.Hour), "chat_*")
	c["aud"] = "meteor"
	for _, k := range keys {
		f.Add(authtest.Sign(f, k, c))
	}
	f.Add(authtest.SignHS256(f, []byte("fuzz"), c))
	f.Add(authtest.Unsigned(f, c))
	f.Add("")
	f.Add("a.b.c")
	f.Add(seg(`{"alg":"HS256","kid":1}`) + "." + seg(`{"exp":1e300,"nbf":-1e300,"aud":[1],"channels":[null]}`) + ".")
	f.Fuzz(func(t *testing.T, tok string) {
		g, err := v.Verify(tok, now)
		checkErr(t, err)
		if err == nil {
			if g.Expiry.IsZero() {
				t.Fatalf("verified a token with no exp: %q", tok)
			}
			g.Allows("chat_1")
			g.AllowsPublish("chat_1")
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	f.Add(authtest.JWKS(f, authtest.RSA(f, 0, "r"), authtest.ECDSA(f, "e"), authtest.Ed25519(f, "d")))
	f.Add([]byte(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","x":"","y":""},{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`))
	f.Add(authtest.PEM(f, authtest.ECDSA(f, "")))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := parsePublicKeys(data)
		if err == nil && len(keys) == 0 {
			t.Fatal("no error and no keys")
		}
		for _, k := range keys {
			if keyAlg(k.key) != k.alg || k.alg == "" {
				t.Fatalf("key %T with alg %q", k.key, k.alg)
			}
		}
		if err == nil {
			v, err := New(Options{PublicKeys: data})
			if err != nil {
				t.Fatal(err)
			}
			_, err = v.Verify(seg(`{"alg":"ES256","kid":"e"}`)+"."+seg(`{"exp":1900000000}`)+"."+seg(string(make([]byte, 64))), now)
			checkErr(t, err)
		}
	})
}

func FuzzVerifyURL(f *testing.F) {
	secret := []byte("url")
	v, _ := fuzzVerifier(f)
	path := "/push/host/longpoll/chat.r1"
	exp, sig := SignURL(secret, path, now.Add(time.Hour))
	f.Add(path, exp, sig)
	f.Add(path, "", "")
	f.Add("", "-1", "====")
	f.Add(path, "99999999999999999999", sig)
	f.Fuzz(func(t *testing.T, p, e, s string) {
		g, err := v.VerifyURL(p, e, s, now)
		checkErr(t, err)
		if err == nil {
			if !g.Path || g.Expiry.IsZero() {
				t.Fatalf("grant %+v", g)
			}
			if want, wantSig := SignURL(secret, p, g.Expiry); want != e || wantSig != s {
				t.Fatalf("accepted %q %q %q, not what SignURL makes (%q %q)", p, e, s, want, wantSig)
			}
		}
	})
}

package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/meteorpush/meteor/internal/auth/authtest"
)

// BenchmarkVerify is the cost of checking one subscription's credential:
// a JWT of each algorithm, a signed URL, a signed hostid.
func BenchmarkVerify(b *testing.B) {
	secret := []byte(strings.Repeat("k", 32))
	claims := authtest.Claims("user42", []string{"chat_*"}, time.Hour)
	hsTok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		b.Fatal(err)
	}
	rsa, ec, ed := authtest.RSA(b, 2048, ""), authtest.ECDSA(b, ""), authtest.Ed25519(b, "")
	for _, c := range []struct {
		name string
		v    Options
		tok  string
	}{
		{"HS256", Options{Secret: secret}, hsTok},
		{"RS256", Options{PublicKeys: authtest.PEM(b, rsa)}, authtest.Sign(b, rsa, claims)},
		{"ES256", Options{PublicKeys: authtest.PEM(b, ec)}, authtest.Sign(b, ec, claims)},
		{"EdDSA", Options{PublicKeys: authtest.PEM(b, ed)}, authtest.Sign(b, ed, claims)},
	} {
		b.Run(c.name, func(b *testing.B) {
			v, err := New(c.v)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(c.tok, time.Time{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	v, err := New(Options{URLSecret: secret})
	if err != nil {
		b.Fatal(err)
	}
	exp, sig := SignURL(secret, "/sse/chat_1", time.Now().Add(time.Hour))
	b.Run("SignedURL", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.VerifyURL("/sse/chat_1", exp, sig, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	})
	h := SignHostID(secret, "page42", []string{"chat", "news"}, time.Now().Add(time.Hour))
	chans := []string{"news", "chat"}
	b.Run("SignedHostID", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.VerifyHostID(h, chans, time.Time{}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Package authtest makes keys, key files and signed tokens for tests of
// package auth and of the packages that use it.
package authtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Key is a private key with its JWT alg and an optional kid.
type Key struct {
	Alg     string // "RS256", "ES256" or "EdDSA"
	Kid     string // put in the JWKS and in tokens' headers when not ""
	Private crypto.Signer
}

// Public is the key's public half.
func (k Key) Public() crypto.PublicKey { return k.Private.Public() }

var (
	rsaOnce sync.Once
	rsaKeys []*rsa.PrivateKey
)

// RSA returns a 2048-bit RSA key. The first few calls in a test binary
// generate keys; later ones reuse them, n modulo the pool, so that tests
// stay fast: calls with different n give different keys for n < 4.
func RSA(t testing.TB, n int, kid string) Key {
	t.Helper()
	rsaOnce.Do(func() {
		for range 4 {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			rsaKeys = append(rsaKeys, k)
		}
	})
	return Key{Alg: "RS256", Kid: kid, Private: rsaKeys[n%len(rsaKeys)]}
}

// ECDSA returns a new P-256 key.
func ECDSA(t testing.TB, kid string) Key {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return Key{Alg: "ES256", Kid: kid, Private: k}
}

// Ed25519 returns a new Ed25519 key.
func Ed25519(t testing.TB, kid string) Key {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return Key{Alg: "EdDSA", Kid: kid, Private: k}
}

// PEM is the keys' public halves as "PUBLIC KEY" PEM blocks.
func PEM(t testing.TB, keys ...Key) []byte {
	t.Helper()
	var out []byte
	for _, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(k.Public())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})...)
	}
	return out
}

// Certificate is a self-signed certificate for the key, as a PEM block.
func Certificate(t testing.TB, k Key) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k.Private)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// JWK is the key's public half as a JSON Web Key (a map, to edit in tests).
func JWK(k Key) map[string]any {
	b := base64.RawURLEncoding.EncodeToString
	m := map[string]any{}
	switch p := k.Public().(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = b(p.N.Bytes())
		m["e"] = b(big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PublicKey:
		raw, err := p.Bytes()
		if err != nil {
			panic(err)
		}
		m["kty"], m["crv"] = "EC", "P-256"
		m["x"], m["y"] = b(raw[1:33]), b(raw[33:65])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b(p)
	}
	if k.Kid != "" {
		m["kid"] = k.Kid
	}
	return m
}

// JWKS is the keys' public halves as a JWKS document.
func JWKS(t testing.TB, keys ...Key) []byte {
	t.Helper()
	set := []map[string]any{}
	for _, k := range keys {
		set = append(set, JWK(k))
	}
	out, err := json.Marshal(map[string]any{"keys": set})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Claims makes the usual claims: sub, channels and exp (ttl from now).
func Claims(sub string, channels []string, ttl time.Duration) jwt.MapClaims {
	return jwt.MapClaims{"sub": sub, "channels": channels, "exp": time.Now().Add(ttl).Unix()}
}

// Sign signs claims with the key (and its kid, if any).
func Sign(t testing.TB, k Key, claims jwt.Claims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(k.Alg), claims)
	if k.Kid != "" {
		tok.Header["kid"] = k.Kid
	}
	s, err := tok.SignedString(k.Private)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// SignHS256 signs claims with an HMAC secret.
func SignHS256(t testing.TB, secret []byte, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Unsigned makes an alg "none" token, which a verifier must refuse.
func Unsigned(t testing.TB, claims jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestSubscriberKeysOnHUP: a real meteord with SubscriberAuth 1 checks
// subscribers' ES256 tokens with the keys of JWTPublicKeyFile, reads the
// file again on HUP (a rotated key is taken, the old one refused), and a
// file that no longer parses leaves the running keys in place.
func TestSubscriberKeysOnHUP(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "keys.pem")
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	writeKey := func(k *ecdsa.PrivateKey) {
		der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sign := func(k *ecdsa.PrivateKey) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{
			"sub": "user42", "channels": []string{"c"}, "exp": time.Now().Add(time.Hour).Unix(),
		}).SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a, b := newKey(), newKey()
	writeKey(a)
	conf := filepath.Join(dir, "meteord.conf")
	if err := os.WriteFile(conf, []byte("SubscriberAuth 1\nJWTPublicKeyFile "+keyFile+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, conf)
	status := func(tok string) string {
		t.Helper()
		nc, err := net.Dial("tcp", p.sub)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(wait))
		io.WriteString(nc, "GET /poll/c?timeout=0&token="+tok+" HTTP/1.1\r\nHost: x\r\n\r\n")
		line := make([]byte, 12)
		if _, err := io.ReadFull(nc, line); err != nil {
			t.Fatal(err)
		}
		return strings.TrimPrefix(string(line), "HTTP/1.1 ")
	}
	if s := status(sign(a)); s != "200" {
		t.Fatalf("token of key A: %s", s)
	}
	if s := status(sign(b)); s != "401" {
		t.Fatalf("token of key B before the rotation: %s", s)
	}
	writeKey(b)
	p.signal(syscall.SIGHUP)
	p.waitLog("configuration reloaded")
	if s := status(sign(b)); s != "200" {
		t.Fatalf("token of key B after HUP: %s", s)
	}
	if s := status(sign(a)); s != "401" {
		t.Fatalf("token of key A after HUP: %s", s)
	}
	if err := os.WriteFile(keyFile, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGHUP)
	p.waitLog("reload refused")
	if s := status(sign(b)); s != "200" {
		t.Fatalf("token of key B after a broken key file: %s", s)
	}
	if !strings.Contains(p.log(), "check=signature") {
		t.Errorf("the refusals' check is not logged:\n%s", p.log())
	}
}

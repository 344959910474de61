package auth

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
)

// publicKey is one configured verification key.
type publicKey struct {
	kid string // "" for PEM keys and JWKs without one
	alg string // "RS256", "ES256" or "EdDSA"
	key any    // *rsa.PublicKey, *ecdsa.PublicKey (P-256) or ed25519.PublicKey
}

// RSA modulus sizes accepted, in bits.
const (
	minRSABits = 2048
	maxRSABits = 8192
)

// ParsePublicKeys parses the contents of a JWTPublicKeyFile as New does: a
// JWKS document ({"keys": [...]}) or a single JWK when it starts with '{',
// otherwise PEM. It returns how many keys it found, or why it fails, for
// config checks.
func ParsePublicKeys(data []byte) (int, error) {
	keys, err := parsePublicKeys(data)
	return len(keys), err
}

func parsePublicKeys(data []byte) ([]publicKey, error) {
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		return parseJWKS(t)
	}
	return parsePEM(data)
}

func parsePEM(data []byte) ([]publicKey, error) {
	var keys []publicKey
	for n := 1; ; n++ {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		var key any
		var err error
		switch b.Type {
		case "PUBLIC KEY":
			key, err = x509.ParsePKIXPublicKey(b.Bytes)
		case "RSA PUBLIC KEY":
			key, err = x509.ParsePKCS1PublicKey(b.Bytes)
		case "CERTIFICATE":
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(b.Bytes); err == nil {
				key = c.PublicKey
			}
		default:
			err = fmt.Errorf("PEM block type %q is not a public key or certificate", b.Type)
		}
		if err == nil {
			err = checkKey(key)
		}
		if err != nil {
			return nil, fmt.Errorf("auth: public keys: PEM block %d: %w", n, err)
		}
		keys = append(keys, publicKey{alg: keyAlg(key), key: key})
	}
	if len(keys) == 0 {
		return nil, errors.New("auth: public keys: no PEM public key or certificate, and not a JWKS document")
	}
	return keys, nil
}

// checkKey refuses keys Verify would not use: other types, other curves,
// RSA moduli out of range.
func checkKey(key any) error {
	if k, ok := key.(*rsa.PublicKey); ok {
		if b := k.N.BitLen(); b < minRSABits || b > maxRSABits {
			return fmt.Errorf("RSA key of %d bits (want %d to %d)", b, minRSABits, maxRSABits)
		}
	}
	if keyAlg(key) == "" {
		return fmt.Errorf("unsupported key type %T (want RSA, ECDSA P-256 or Ed25519)", key)
	}
	return nil
}

// jwk is the part of a JSON Web Key (RFC 7517, 7518, 8037) read here.
type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
	D   string `json:"d"`
}

func parseJWKS(data []byte) ([]publicKey, error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("auth: public keys: JWKS: %w", err)
	}
	if set.Keys == nil { // a single JWK
		set.Keys = []json.RawMessage{data}
	}
	var keys []publicKey
	for i, raw := range set.Keys {
		var j jwk
		if err := json.Unmarshal(raw, &j); err != nil {
			return nil, fmt.Errorf("auth: public keys: JWKS key %d: %w", i, err)
		}
		k, err := j.parse()
		if err != nil {
			return nil, fmt.Errorf("auth: public keys: JWKS key %d (kid %q): %w", i, j.Kid, err)
		}
		if k.key != nil {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, errors.New("auth: public keys: JWKS has no signature key")
	}
	return keys, nil
}

var b64 = base64.RawURLEncoding.Strict()

func b64field(name, s string) ([]byte, error) {
	if s == "" {
		return nil, fmt.Errorf("no %q", name)
	}
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%q is not base64url without padding: %w", name, err)
	}
	return b, nil
}

// parse makes the key; a key with "use" other than "sig" is skipped
// (returned with a nil key).
func (j *jwk) parse() (publicKey, error) {
	if j.D != "" {
		return publicKey{}, errors.New("a private key (has \"d\"): give public keys only")
	}
	if j.Use != "" && j.Use != "sig" {
		return publicKey{}, nil
	}
	var key any
	switch j.Kty {
	case "RSA":
		n, err := b64field("n", j.N)
		if err != nil {
			return publicKey{}, err
		}
		e, err := b64field("e", j.E)
		if err != nil {
			return publicKey{}, err
		}
		if len(e) > 4 || len(e) == 0 || e[0] == 0 || len(n) == 0 || n[0] == 0 {
			return publicKey{}, errors.New("RSA \"n\" or \"e\" not a minimal big-endian integer, or \"e\" too big")
		}
		ei := new(big.Int).SetBytes(e).Int64()
		if ei < 3 || ei%2 == 0 || ei > 1<<31-1 {
			return publicKey{}, fmt.Errorf("RSA exponent %d", ei)
		}
		key = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ei)}
	case "EC":
		if j.Crv != "P-256" {
			return publicKey{}, fmt.Errorf("EC curve %q (want P-256)", j.Crv)
		}
		x, err := b64field("x", j.X)
		if err != nil {
			return publicKey{}, err
		}
		y, err := b64field("y", j.Y)
		if err != nil {
			return publicKey{}, err
		}
		if len(x) != 32 || len(y) != 32 {
			return publicKey{}, errors.New("P-256 \"x\" and \"y\" must be 32 bytes")
		}
		k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return publicKey{}, err
		}
		key = k
	case "OKP":
		if j.Crv != "Ed25519" {
			return publicKey{}, fmt.Errorf("OKP curve %q (want Ed25519)", j.Crv)
		}
		x, err := b64field("x", j.X)
		if err != nil {
			return publicKey{}, err
		}
		if len(x) != ed25519.PublicKeySize {
			return publicKey{}, errors.New("Ed25519 \"x\" must be 32 bytes")
		}
		key = ed25519.PublicKey(x)
	default:
		return publicKey{}, fmt.Errorf("key type %q (want RSA, EC or OKP)", j.Kty)
	}
	if err := checkKey(key); err != nil {
		return publicKey{}, err
	}
	alg := keyAlg(key)
	if j.Alg != "" && j.Alg != alg {
		return publicKey{}, fmt.Errorf("alg %q for a %s key (want %s)", j.Alg, j.Kty, alg)
	}
	return publicKey{kid: j.Kid, alg: alg, key: key}, nil
}

// Package auth checks the tokens subscribers and publishers present: JSON Web
// Tokens (HS256 with a shared secret; RS256, ES256 and EdDSA with public keys
// from a PEM file or a JWKS document) and, for Meteor 1.06 pages that cannot
// send headers, signed URLs (an HMAC-SHA256 of the path and an expiry).
//
// A token's claims say what it grants: "channels", channel patterns it may
// subscribe to, and "publish", channel patterns it may publish to (both
// patterns as in package channel: a name, a prefix ended by '*', or "*").
// "exp" is required; "nbf" is checked; "aud" must match when an audience is
// configured. docs/tokens.md shows back ends how to make both kinds.
//
// Every failure is an *Error whose Check names the check that failed and
// whose Status is the HTTP status to answer with.
package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/meteorpush/meteor/internal/channel"
)

// Options configure a Verifier. The zero Options is allowed: a Verifier with
// nothing configured refuses every token with Check "signature" and
// ErrUnconfigured.
type Options struct {
	// Secret is the HS256 key (JWTSecret); nil or empty: no HMAC tokens.
	Secret []byte
	// PublicKeys is the contents of JWTPublicKeyFile: PEM (one or more RSA,
	// ECDSA P-256 or Ed25519 public keys or certificates) or a JWKS JSON
	// document (or a single JWK); nil or empty: none.
	PublicKeys []byte
	// Audience, when not empty, is the aud a token must name.
	Audience string
	// Leeway is the clock skew allowed for exp and nbf (and signed URLs' exp).
	Leeway time.Duration
	// URLSecret is the SignedURLSecret for signed URLs; nil or empty: off.
	URLSecret []byte
}

// Verifier checks subscriber and publisher tokens. It is safe for
// concurrent use.
type Verifier struct {
	secret    []byte
	keys      []publicKey
	methods   []string // accepted algs, by configured key type
	audience  string
	leeway    time.Duration
	urlSecret []byte
}

// Check values of Error.
const (
	CheckMissing     = "missing"
	CheckMalformed   = "malformed"
	CheckSignature   = "signature"
	CheckAlgorithm   = "algorithm"
	CheckExpired     = "expired"
	CheckNotYetValid = "not yet valid"
	CheckAudience    = "audience"
	CheckChannel     = "channel"
)

var (
	// ErrUnconfigured is the Err of a Check "signature" Error from a
	// Verifier with no key for the kind of token presented.
	ErrUnconfigured = errors.New("unconfigured: no key for this kind of token")
	// ErrMissing is the Err of a Check "missing" Error.
	ErrMissing = errors.New("no token")
	// ErrUnknownKey is the Err of a Check "signature" Error for a token whose
	// kid names no configured key.
	ErrUnknownKey = errors.New("no key with the token's kid")
	// ErrNotGranted is the Err of a Check "channel" Error.
	ErrNotGranted = errors.New("the token does not grant this channel")
)

// Error is why a token or signed URL was refused.
type Error struct {
	// Check is the check that failed: "missing", "malformed", "signature",
	// "algorithm", "expired", "not yet valid", "audience" or "channel".
	Check string
	Err   error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return "auth: " + e.Check
	}
	return "auth: " + e.Check + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// Status is the HTTP status for the refusal: 403 Forbidden when a valid
// token does not grant the channel, 401 Unauthorized for everything else.
func (e *Error) Status() int {
	if e.Check == CheckChannel {
		return http.StatusForbidden
	}
	return http.StatusUnauthorized
}

func fail(check string, err error) *Error { return &Error{Check: check, Err: err} }

// New makes a Verifier. It fails when PublicKeys does not parse (or holds
// no key, or a key of a type or curve not supported) or Leeway is negative.
func New(o Options) (*Verifier, error) {
	if o.Leeway < 0 {
		return nil, errors.New("auth: negative leeway")
	}
	v := &Verifier{audience: o.Audience, leeway: o.Leeway}
	if len(o.Secret) > 0 {
		v.secret = slices.Clone(o.Secret)
		v.methods = append(v.methods, jwt.SigningMethodHS256.Alg())
	}
	if len(o.URLSecret) > 0 {
		v.urlSecret = slices.Clone(o.URLSecret)
	}
	if len(o.PublicKeys) > 0 {
		keys, err := parsePublicKeys(o.PublicKeys)
		if err != nil {
			return nil, err
		}
		v.keys = keys
		for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
			if slices.ContainsFunc(keys, func(k publicKey) bool { return k.alg == alg }) {
				v.methods = append(v.methods, alg)
			}
		}
	}
	return v, nil
}

// Leeway returns the clock skew the Verifier allows on exp and nbf
// (JWTLeeway): a token verifies until its exp plus it.
func (v *Verifier) Leeway() time.Duration { return v.leeway }

// claims are the claims Verify reads. Channels and Publish must be arrays of
// strings (or absent); anything else fails to decode, Check "malformed".
type claims struct {
	jwt.RegisteredClaims
	Channels []string `json:"channels,omitempty"`
	Publish  []string `json:"publish,omitempty"`
}

// Verify checks a JWT at time now (time.Now when zero) and returns what it
// grants. token is the bare token, without "Bearer ".
func (v *Verifier) Verify(token string, now time.Time) (Grant, error) {
	if token == "" {
		return Grant{}, fail(CheckMissing, ErrMissing)
	}
	if len(v.methods) == 0 {
		return Grant{}, fail(CheckSignature, ErrUnconfigured)
	}
	if i := strings.IndexFunc(token, notCompact); i >= 0 {
		// A compact JWT is base64url and dots only. The library's base64
		// decoding would skip a CR or LF, so that one token had many
		// spellings; refuse them all but the one.
		return Grant{}, fail(CheckMalformed, fmt.Errorf("token: byte %q at %d is not base64url", token[i], i))
	}
	if now.IsZero() {
		now = time.Now()
	}
	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.methods),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	}
	if v.audience != "" {
		opts = append(opts, jwt.WithAudience(v.audience))
	}
	var c claims
	tok, err := jwt.NewParser(opts...).ParseWithClaims(token, &c, v.key)
	if err != nil {
		return Grant{}, v.mapError(tok, &c, err)
	}
	for _, p := range c.Channels {
		if !channel.ValidPattern(p) {
			return Grant{}, fail(CheckMalformed, fmt.Errorf("channels claim: invalid pattern %q: %s", p, channel.Rule))
		}
	}
	for _, p := range c.Publish {
		if !channel.ValidPattern(p) {
			return Grant{}, fail(CheckMalformed, fmt.Errorf("publish claim: invalid pattern %q: %s", p, channel.Rule))
		}
	}
	g := Grant{Subject: c.Subject, Channels: c.Channels, Publish: c.Publish}
	if c.ExpiresAt != nil {
		g.Expiry = c.ExpiresAt.Time
	}
	return g, nil
}

// mapError turns a jwt error into an *Error.
func (v *Verifier) mapError(tok *jwt.Token, c *claims, err error) *Error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fail(CheckMalformed, err)
	case tok != nil && tok.Method != nil && !slices.Contains(v.methods, tok.Method.Alg()):
		return fail(CheckAlgorithm, fmt.Errorf("alg %q not accepted (accepted: %v)", tok.Method.Alg(), v.methods))
	case errors.Is(err, jwt.ErrTokenUnverifiable) && (tok == nil || tok.Method == nil):
		return fail(CheckAlgorithm, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return fail(CheckSignature, err)
	case c.ExpiresAt == nil:
		return fail(CheckMalformed, errors.New("exp claim is required"))
	case errors.Is(err, jwt.ErrTokenExpired):
		return fail(CheckExpired, err)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return fail(CheckNotYetValid, err)
	case errors.Is(err, jwt.ErrTokenInvalidAudience), errors.Is(err, jwt.ErrTokenRequiredClaimMissing) && v.audience != "":
		return fail(CheckAudience, err)
	}
	return fail(CheckMalformed, err)
}

// key is the jwt.Keyfunc: the HMAC secret for HS256, else the public keys of
// the token's alg, narrowed by kid when the keys have kids.
func (v *Verifier) key(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if alg == jwt.SigningMethodHS256.Alg() {
		if v.secret == nil {
			return nil, fail(CheckAlgorithm, ErrUnconfigured)
		}
		return v.secret, nil
	}
	kid, hasKid := t.Header["kid"].(string)
	var all, byKid, noKid []jwt.VerificationKey
	for _, k := range v.keys {
		if k.alg != alg {
			continue
		}
		all = append(all, k.key)
		switch {
		case k.kid == "":
			noKid = append(noKid, k.key)
		case hasKid && k.kid == kid:
			byKid = append(byKid, k.key)
		}
	}
	switch {
	case len(all) == 0:
		return nil, fail(CheckAlgorithm, ErrUnconfigured)
	case !hasKid:
		return jwt.VerificationKeySet{Keys: all}, nil
	case len(byKid) > 0:
		return jwt.VerificationKeySet{Keys: byKid}, nil
	case len(noKid) > 0:
		return jwt.VerificationKeySet{Keys: noKid}, nil
	}
	return nil, fail(CheckSignature, fmt.Errorf("%w %q", ErrUnknownKey, kid))
}

// keyAlg is the JWT alg verified with key, or "" for a key type or curve
// not supported.
func keyAlg(key any) string {
	switch k := key.(type) {
	case *rsa.PublicKey:
		return "RS256"
	case *ecdsa.PublicKey:
		if k.Curve != nil && k.Curve.Params().Name == "P-256" {
			return "ES256"
		}
	case ed25519.PublicKey:
		if len(k) == ed25519.PublicKeySize {
			return "EdDSA"
		}
	}
	return ""
}

// notCompact reports whether r cannot appear in a compact JWS: base64url
// (RFC 4648 section 5) and the dots between the parts.
func notCompact(r rune) bool {
	return !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.')
}

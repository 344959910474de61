package server

import (
	"fmt"
	"os"
	"time"

	"github.com/meteorpush/meteor/internal/auth"
	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/ratelimit"
)

// NewVerifier builds the token verifier of cfg: JWTSecret, the keys of
// JWTPublicKeyFile (read now: a reload reads it again), JWTAudience,
// JWTLeeway and SignedURLSecret. The HTTP API's publishing JWTs and the
// subscriber port's tokens are checked by the one verifier it returns. A
// cfg with none of the keys gives a Verifier that refuses every token
// (auth.ErrUnconfigured).
func NewVerifier(cfg *config.Config) (*auth.Verifier, error) {
	o := auth.Options{
		Secret:    []byte(cfg.JWTSecret),
		Audience:  cfg.JWTAudience,
		Leeway:    time.Duration(cfg.JWTLeeway) * time.Second,
		URLSecret: []byte(cfg.SignedURLSecret),
	}
	if cfg.JWTPublicKeyFile != "" {
		b, err := os.ReadFile(cfg.JWTPublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("JWTPublicKeyFile: %w", err)
		}
		o.PublicKeys = b
	}
	v, err := auth.New(o)
	if err != nil {
		return nil, fmt.Errorf("JWTPublicKeyFile %s: %w", cfg.JWTPublicKeyFile, err)
	}
	return v, nil
}

// setCredentialRate applies PublishRatePerCredential and
// PublishBurstPerCredential to the buckets that the API and the controller
// share.
func setCredentialRate(b *ratelimit.Buckets, cfg *config.Config) {
	b.SetLimit(float64(cfg.PublishRatePerCredential), cfg.PublishBurstPerCredential)
}

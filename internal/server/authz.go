package server

import (
	"fmt"
	"os"
	"time"

	"github.com/meteorpush/meteor/internal/auth"
	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/subscriber"
	"github.com/meteorpush/meteor/web"
)

// newVerifier makes the Verifier of cfg's keys: JWTSecret, the keys of
// JWTPublicKeyFile (read now: at start and on every reload), JWTAudience,
// JWTLeeway and SignedURLSecret. A key file that cannot be read or parsed
// is an error, so a reload with a broken file keeps the running keys.
func newVerifier(cfg *config.Config) (*auth.Verifier, error) {
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

// subscriberSettings compiles the subscriber settings of cfg, with the
// Verifier of its keys.
func subscriberSettings(cfg *config.Config) (*subscriber.Settings, error) {
	set, err := subscriber.NewSettings(cfg, web.Files())
	if err != nil {
		return nil, err
	}
	if set.Auth.Verifier, err = newVerifier(cfg); err != nil {
		return nil, err
	}
	return set, nil
}

package server

import (
	"github.com/meteorpush/meteor/internal/auth"
	"github.com/meteorpush/meteor/internal/config"
	"github.com/meteorpush/meteor/internal/subscriber"
	"github.com/meteorpush/meteor/web"
)

// subscriberSettings compiles the subscriber settings of cfg, with v, the
// Verifier that the HTTP API shares (NewVerifier).
func subscriberSettings(cfg *config.Config, v *auth.Verifier) (*subscriber.Settings, error) {
	set, err := subscriber.NewSettings(cfg, web.Files())
	if err != nil {
		return nil, err
	}
	set.Auth.Verifier = v
	return set, nil
}

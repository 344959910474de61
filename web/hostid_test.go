package web_test

import (
	"fmt"
	"github.com/golang-jwt/jwt/v5"
	"strings"
	"testing"
	"time"

	"github.com/meteorpush/meteor/internal/auth"
	"github.com/meteorpush/meteor/internal/config"
)

// TestSignedHostID: a 1.06 page whose only change is the hostid its back
// end wrote (docs/tokens.md, signed hostids) subscribes under
// SubscriberAuth 1 in each 1.06 mode, across the reconnects that change
// its URL's mode and resume suffixes, and loses nothing; the same page
// with a plain hostid receives nothing.
func TestSignedHostID(t *testing.T) {
	secret := strings.Repeat("h", 32)
	for _, mode := range []string{"longpoll", "simplepoll", "xhrinteractive", "plain"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			m := startServer(t, func(c *config.Config) {
				c.SubscriberAuth = true
				c.SignedURLSecret = secret
			})
			hostid := auth.SignHostID([]byte(secret), "page42", []string{"news"}, time.Now().Add(time.Hour))
			settings := fastPolls()
			settings["mode"] = mode
			settings["hostid"] = hostid
			if mode == "plain" {
				settings["mode"] = "longpoll"
				settings["hostid"] = "page42"
			}
			p := openClient(t, m)
			p.connect(clientSetup{Settings: settings, Channels: [][2]any{{"news", 0}}})
			if mode == "plain" {
				m.publish(t, "news", "secret")
				p.never("a message without a signed hostid", "T.got.length > 0", 2*time.Second)
				return
			}
			waitConnected(t, m, p, mode, "news")
			var want []received
			for i := range 4 {
				// Each message ends a long poll: the page comes back with
				// news.r<N>, which the signature still covers.
				text := fmt.Sprintf("signed %d", i)
				want = append(want, received{m.publish(t, "news", text), "news", text})
				p.expectGot(want)
			}
		})
	}
}

// TestLegacyToken: the global Meteor with Meteor.token (a page that can
// add one line) subscribes under SubscriberAuth 1 in a 1.06 mode and in
// mode "stream", with a real HS256 token.
func TestLegacyToken(t *testing.T) {
	secret := strings.Repeat("j", 32)
	for _, mode := range []string{"longpoll", "simplepoll", "stream"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			m := startServer(t, func(c *config.Config) {
				quickBeats(c)
				c.SubscriberAuth = true
				c.JWTSecret = secret
			})
			tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
				"sub": "page-user", "channels": []string{"news"}, "exp": time.Now().Add(time.Hour).Unix(),
			}).SignedString([]byte(secret))
			if err != nil {
				t.Fatal(err)
			}
			settings := fastPolls()
			settings["mode"] = mode
			settings["token"] = tok
			p := openClient(t, m)
			p.connect(clientSetup{Settings: settings, Channels: [][2]any{{"news", 0}}})
			waitConnected(t, m, p, mode, "news")
			var want []received
			for i := range 3 {
				text := fmt.Sprintf("with a token %d", i)
				want = append(want, received{m.publish(t, "news", text), "news", text})
				p.expectGot(want)
			}
		})
	}
}

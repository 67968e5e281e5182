package mattermost

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/chimaops/chima/core/chat"
)

// Config is an adapters: entry of type mattermost.
type Config struct {
	// URL is the server's base URL. Required.
	URL string `yaml:"url"`
	// TokenEnv names the variable holding the bot account's personal
	// access token. Required.
	TokenEnv string `yaml:"token_env"`
	// Team is the team whose channel names rooms use. Required.
	Team string `yaml:"team"`
	// SlashTokenEnv names the variable holding the /chima slash command's
	// token; without it no slash command is served.
	SlashTokenEnv string `yaml:"slash_token_env"`
	// ActionsURL is the public base URL of Chima's HTTP server, to which
	// Mattermost posts button clicks; without it buttons are shown as text.
	ActionsURL string `yaml:"actions_url"`
	// ActionSecretEnv names the variable holding the key that signs
	// buttons; without it a random key is made at start, and buttons
	// posted before a restart stop working.
	ActionSecretEnv string `yaml:"action_secret_env"`
	// PingTimeout is how long the websocket may be silent before it is
	// dialled again (default 65s: the server pings every minute).
	PingTimeout time.Duration `yaml:"ping_timeout"`
	// PingInterval, when set, makes the bot ping the server this often
	// itself, so that ping_timeout may be shorter than the server's minute
	// (a dead connection is then found sooner). Default: no pings of its own.
	PingInterval time.Duration `yaml:"ping_interval"`
	// CatchUp is how far back the bot looks, when its websocket is back,
	// for posts made while it was down (default 5m); commands older than
	// that are not run so late. Negative fetches none.
	CatchUp time.Duration `yaml:"catch_up"`
}

// Factory builds a Mattermost adapter from its config entry, without
// touching the network.
func Factory(s chat.Setup) (chat.Adapter, error) {
	var c Config
	if err := s.Decode(&c); err != nil {
		return nil, err
	}
	var missing []error
	for key, v := range map[string]string{"url": c.URL, "token_env": c.TokenEnv, "team": c.Team} {
		if v == "" {
			missing = append(missing, fmt.Errorf("%s is required", key))
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("mattermost adapter %q: %w", s.Name, errors.Join(missing...))
	}
	if c.PingInterval < 0 || c.PingTimeout < 0 {
		return nil, fmt.Errorf("mattermost adapter %q: ping_interval and ping_timeout cannot be negative", s.Name)
	}
	if c.PingInterval > 0 && c.PingTimeout > 0 && c.PingTimeout <= c.PingInterval {
		return nil, fmt.Errorf("mattermost adapter %q: ping_timeout (%s) must be longer than ping_interval (%s), or every connection times out", s.Name, c.PingTimeout, c.PingInterval)
	}
	o := Options{Name: s.Name, URL: c.URL, Team: c.Team, ActionsURL: c.ActionsURL, Logger: s.Logger,
		PingTimeout: c.PingTimeout, PingInterval: c.PingInterval, CatchUp: c.CatchUp}
	var err error
	if o.Token, err = s.Secret(c.TokenEnv); err != nil {
		return nil, fmt.Errorf("mattermost adapter %q: token_env: %w", s.Name, err)
	}
	if c.SlashTokenEnv != "" {
		if o.SlashToken, err = s.Secret(c.SlashTokenEnv); err != nil {
			return nil, fmt.Errorf("mattermost adapter %q: slash_token_env: %w", s.Name, err)
		}
	}
	if c.ActionSecretEnv != "" {
		key, err := s.Secret(c.ActionSecretEnv)
		if err != nil {
			return nil, fmt.Errorf("mattermost adapter %q: action_secret_env: %w", s.Name, err)
		}
		o.ActionKey = []byte(key)
	} else {
		// Without a key of its own, buttons are signed with one derived
		// from the bot's token: stable across restarts (a button posted
		// before one still works after it) and as secret as the token.
		o.ActionKey = derivedButtonKey(o.Token, s.Name)
	}
	a, err := New(o)
	if err != nil {
		return nil, fmt.Errorf("mattermost adapter %q: %w", s.Name, err)
	}
	return a, nil
}

// derivedButtonKey is the key that signs buttons when no action_secret_env
// is configured: an HMAC of the adapter's name under the bot's token.
func derivedButtonKey(token, adapter string) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("chima mattermost button key v1\x00" + adapter))
	return m.Sum(nil)
}

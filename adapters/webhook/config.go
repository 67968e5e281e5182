package webhook

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"text/template"
	"time"

	"github.com/chimaops/chima/core/chat"
)

// Config is the adapter's config entry:
//
//   - name: hooks
//     type: webhook
//     inbound:
//   - {name: ci, secret_env: HOOK_CI_SECRET, auth: hmac, reply: response, room: deployment, user: ci}
//     notifiers:
//   - {name: teams-ops, preset: teams, url_env: TEAMS_OPS_URL}
type Config struct {
	Inbound   []HookConfig     `yaml:"inbound"`
	Notifiers []NotifierConfig `yaml:"notifiers"`
}

// HookConfig configures one inbound hook, served at POST /<adapter>/<name>.
type HookConfig struct {
	// Name is the hook's path segment: [A-Za-z0-9_-]+.
	Name string `yaml:"name"`
	// SecretEnv names the variable holding the HMAC key or bearer token.
	SecretEnv string `yaml:"secret_env"`
	// Auth is "hmac" (the default: X-Chima-Signature) or "bearer"
	// (Authorization: Bearer <secret>).
	Auth string `yaml:"auth"`
	// RequireTimestamp refuses HMAC requests without X-Chima-Timestamp
	// (which must be within five minutes and is signed with the body).
	RequireTimestamp bool `yaml:"require_timestamp"`
	// Reply is where replies go: "response" (the default), "outbound" or
	// "both".
	Reply string `yaml:"reply"`
	// Room and User are used when the body has none. Room defaults to the
	// hook's name, User to the hook's name too.
	Room string `yaml:"room"`
	User string `yaml:"user"`
	// Mention delivers the hook's messages as mentions of the bot
	// (Message.Mentioned), so the text is a command without the bot's name:
	// "deploy x to edge". It defaults to true; a body's "mention" overrides
	// it per request. With false, only text that names the bot ("chima
	// deploy …") or starts with the prefix is a command.
	Mention *bool `yaml:"mention"`
	// FixedUser ignores the body's user: every message is the hook's User.
	// Without it, whoever holds the secret may act as any user.
	FixedUser bool `yaml:"fixed_user"`
	// Wait bounds how long a request waits for replies (default 10s);
	// Quiet is how long after the last reply it answers (default 1s).
	Wait  time.Duration `yaml:"wait"`
	Quiet time.Duration `yaml:"quiet"`
	// OutboundURLEnv names the variable holding the URL that replies go to
	// with reply "outbound" or "both", and that later replies (progress,
	// job endings) go to. OutboundPreset and OutboundTemplate shape the
	// body as a notifier's preset and template do (default preset "json").
	OutboundURLEnv   string            `yaml:"outbound_url_env"`
	OutboundPreset   string            `yaml:"outbound_preset"`
	OutboundTemplate string            `yaml:"outbound_template"`
	OutboundHeaders  map[string]string `yaml:"outbound_headers"`
}

// NotifierConfig configures one outbound notifier: a room of the adapter.
type NotifierConfig struct {
	// Name is the room ("hooks:teams-ops" in notify_rooms).
	Name string `yaml:"name"`
	// Preset is the body's shape: slack, mattermost, discord, teams,
	// flowdock, campfire or json (the default).
	Preset string `yaml:"preset"`
	// URLEnv names the variable holding the URL: it is a secret.
	URLEnv string `yaml:"url_env"`
	// Headers are sent with every post; SecretHeaders name, per header, the
	// variable holding its value (an Authorization token).
	Headers       map[string]string `yaml:"headers"`
	SecretHeaders map[string]string `yaml:"secret_headers"`
	// Template, when set, is a text/template of the body (see TemplateData),
	// replacing the preset's; ContentType defaults to application/json.
	Template    string `yaml:"template"`
	ContentType string `yaml:"content_type"`
	// Timeout bounds one attempt (default 10s); Attempts bounds the tries
	// of one post on 5xx, timeouts and network errors (default 5); Backoff
	// is the first wait between them, doubling each time (default 500ms).
	Timeout  time.Duration `yaml:"timeout"`
	Attempts int           `yaml:"attempts"`
	Backoff  time.Duration `yaml:"backoff"`
}

// Defaults.
const (
	DefaultWait     = 10 * time.Second
	DefaultQuiet    = time.Second
	DefaultTimeout  = 10 * time.Second
	DefaultAttempts = 5
	DefaultBackoff  = 500 * time.Millisecond
	// MaxBody bounds an inbound request's body.
	MaxBody = 64 << 10
)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Factory builds the adapter from its config entry.
func Factory(s chat.Setup) (chat.Adapter, error) {
	var c Config
	if s.Decode != nil {
		if err := s.Decode(&c); err != nil {
			return nil, fmt.Errorf("webhook adapter %s: %w", s.Name, err)
		}
	}
	return New(s, c)
}

// New builds the adapter from a decoded Config; secrets are read through
// s.Secret.
func New(s chat.Setup, c Config) (*Adapter, error) {
	a, err := build(s, c)
	if err != nil {
		return nil, fmt.Errorf("webhook adapter %s: %w", s.Name, err)
	}
	return a, nil
}

func build(s chat.Setup, c Config) (*Adapter, error) {
	if s.Name == "" {
		return nil, errors.New("the adapter has no name")
	}
	if s.Secret == nil {
		return nil, errors.New("no secret source")
	}
	a := newAdapter(s)
	for i, hc := range c.Inbound {
		key := fmt.Sprintf("inbound[%d]", i)
		if !namePattern.MatchString(hc.Name) {
			return nil, fmt.Errorf("%s.name %q: want letters, digits, '-' or '_'", key, hc.Name)
		}
		if _, dup := a.hooks[hc.Name]; dup {
			return nil, fmt.Errorf("%s.name: hook %q is configured twice", key, hc.Name)
		}
		h := &hook{mention: hc.Mention == nil || *hc.Mention, name: hc.Name, room: hc.Room, user: hc.User, fixedUser: hc.FixedUser, wait: hc.Wait, quiet: hc.Quiet, requireTS: hc.RequireTimestamp}
		if h.room == "" {
			h.room = hc.Name
		}
		if h.user == "" {
			h.user = hc.Name
		}
		if h.wait <= 0 {
			h.wait = DefaultWait
		}
		if h.quiet <= 0 {
			h.quiet = DefaultQuiet
		}
		switch hc.Auth {
		case "", "hmac":
			h.auth = authHMAC
		case "bearer":
			h.auth = authBearer
		default:
			return nil, fmt.Errorf("%s.auth %q: want hmac or bearer", key, hc.Auth)
		}
		switch hc.Reply {
		case "", "response":
			h.toResponse = true
		case "outbound":
			h.toOutbound = true
		case "both":
			h.toResponse, h.toOutbound = true, true
		default:
			return nil, fmt.Errorf("%s.reply %q: want response, outbound or both", key, hc.Reply)
		}
		if hc.SecretEnv == "" {
			return nil, fmt.Errorf("%s.secret_env: every hook needs a secret", key)
		}
		secret, err := s.Secret(hc.SecretEnv)
		if err != nil {
			return nil, fmt.Errorf("%s.secret_env: %w", key, err)
		}
		h.secret = []byte(secret)
		if hc.OutboundURLEnv != "" {
			n, err := a.newNotifier(key, NotifierConfig{
				Name: hc.Name, Preset: hc.OutboundPreset, URLEnv: hc.OutboundURLEnv,
				Template: hc.OutboundTemplate, Headers: hc.OutboundHeaders,
			}, "outbound_")
			if err != nil {
				return nil, err
			}
			h.outbound = n
		} else if h.toOutbound {
			return nil, fmt.Errorf("%s.reply %q needs outbound_url_env", key, hc.Reply)
		}
		a.hooks[h.name] = h
		a.hookOrder = append(a.hookOrder, h.name)
	}
	for i, nc := range c.Notifiers {
		key := fmt.Sprintf("notifiers[%d]", i)
		if nc.Name == "" {
			return nil, fmt.Errorf("%s.name: a notifier needs a name, which is its room", key)
		}
		if _, dup := a.notifiers[nc.Name]; dup {
			return nil, fmt.Errorf("%s.name: notifier %q is configured twice", key, nc.Name)
		}
		n, err := a.newNotifier(key, nc, "")
		if err != nil {
			return nil, err
		}
		a.notifiers[nc.Name] = n
	}
	return a, nil
}

// newNotifier builds a notifier from nc; prefix is the config keys' prefix
// in messages ("outbound_" for a hook's outbound URL).
func (a *Adapter) newNotifier(key string, nc NotifierConfig, prefix string) (*notifier, error) {
	if nc.URLEnv == "" {
		return nil, fmt.Errorf("%s.%surl_env: a notifier needs a URL", key, prefix)
	}
	raw, err := a.setup.Secret(nc.URLEnv)
	if err != nil {
		return nil, fmt.Errorf("%s.%surl_env: %w", key, prefix, err)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		// The URL is a secret: the message names the variable, not the value.
		return nil, fmt.Errorf("%s.%surl_env: $%s is not an http(s) URL", key, prefix, nc.URLEnv)
	}
	n := &notifier{
		a: a, name: nc.Name, url: raw, preset: nc.Preset, contentType: nc.ContentType,
		headers: map[string]string{}, timeout: nc.Timeout, attempts: nc.Attempts, backoff: nc.Backoff,
	}
	if n.preset == "" {
		n.preset = "json"
	}
	if _, ok := presets[n.preset]; !ok && nc.Template == "" {
		return nil, fmt.Errorf("%s.%spreset %q: want one of %s", key, prefix, nc.Preset, presetNames())
	}
	if nc.Template != "" {
		t, err := template.New(nc.Name).Funcs(templateFuncs).Option("missingkey=error").Parse(nc.Template)
		if err != nil {
			return nil, fmt.Errorf("%s.%stemplate: %w", key, prefix, err)
		}
		n.tmpl = t
	}
	for k, v := range nc.Headers {
		n.headers[k] = v
	}
	for k, env := range nc.SecretHeaders {
		v, err := a.setup.Secret(env)
		if err != nil {
			return nil, fmt.Errorf("%s.secret_headers.%s: %w", key, k, err)
		}
		n.headers[k] = v
	}
	if n.contentType == "" {
		n.contentType = "application/json"
	}
	if n.timeout <= 0 {
		n.timeout = DefaultTimeout
	}
	if n.attempts <= 0 {
		n.attempts = DefaultAttempts
	}
	if n.backoff <= 0 {
		n.backoff = DefaultBackoff
	}
	return n, nil
}

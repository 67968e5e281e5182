package slack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/chimaops/chima/core/chat"
)

// Type is the adapter type that config entries name in `type`.
const Type = "slack"

// MaxText is the longest message text Slack takes, in characters.
const MaxText = 40000

// DefaultSlashCommand is the slash command the adapter answers by default.
const DefaultSlashCommand = "/chima"

// Options configures an Adapter built with New.
type Options struct {
	// Name is the adapter's name in refs and config (default "slack").
	Name string
	// BotToken is the bot user OAuth token (xoxb-…). Required.
	BotToken string
	// AppToken is the app-level token (xapp-…) with connections:write; when
	// set, Run receives events over Socket Mode.
	AppToken string
	// SigningSecret verifies the Events API, slash command and
	// interactivity requests that Slack POSTs to the routes; required
	// without AppToken.
	SigningSecret string
	// APIURL is the Slack Web API base (default https://slack.com/api/).
	APIURL string
	// SlashCommand is the command answered (default "/chima").
	SlashCommand string
	// HTTPClient calls the Web API and response URLs (default a client
	// with a 30 s timeout).
	HTTPClient *http.Client
	// Logger logs for the adapter (default slog.Default()).
	Logger *slog.Logger
	// Backoff is the first wait before reconnecting after a failure; it
	// doubles up to MaxBackoff (defaults 1 s and 5 min).
	Backoff, MaxBackoff time.Duration
	// PingInterval is how long Socket Mode waits for Slack's WebSocket
	// ping before it reconnects (default 30 s, slack-go's).
	PingInterval time.Duration
}

// Adapter is the Slack adapter. It implements chat.Adapter and every
// optional capability of core/chat: Editor, Threader, ButtonRenderer,
// Directory, DirectMessenger, EphemeralSender, Limiter and RouteProvider.
// Its methods are safe for concurrent use.
type Adapter struct {
	opts Options
	api  *slackgo.Client
	http *http.Client
	log  *slog.Logger

	mu    sync.Mutex
	self  chat.User
	botID string // the bot's bot_id (B…), to drop its own messages

	// dmu guards the handler; what arrives before Run is ready waits in
	// pending, and Run hands it over, in order, before anything newer.
	dmu     sync.Mutex
	handler chat.Handler
	runCtx  context.Context
	pending []func(ctx context.Context, h chat.Handler)

	seen  *recent     // event ids already handled
	slash *slashStore // response URLs of slash commands
	names *nameCache  // user and room names, for incoming text
}

// Compile-time checks that Adapter has every capability it claims.
var (
	_ chat.Adapter         = (*Adapter)(nil)
	_ chat.Editor          = (*Adapter)(nil)
	_ chat.Threader        = (*Adapter)(nil)
	_ chat.ButtonRenderer  = (*Adapter)(nil)
	_ chat.Directory       = (*Adapter)(nil)
	_ chat.DirectMessenger = (*Adapter)(nil)
	_ chat.EphemeralSender = (*Adapter)(nil)
	_ chat.Limiter         = (*Adapter)(nil)
	_ chat.RouteProvider   = (*Adapter)(nil)
)

// maxPending bounds what is kept for a handler before Run is ready.
const maxPending = 1024

// New builds an adapter without touching the network; Run connects.
func New(o Options) (*Adapter, error) {
	if o.Name == "" {
		o.Name = Type
	}
	if !strings.HasPrefix(o.BotToken, "xoxb-") {
		return nil, errors.New("slack: the bot token must be a bot user OAuth token (xoxb-…)")
	}
	if o.AppToken != "" && !strings.HasPrefix(o.AppToken, "xapp-") {
		return nil, errors.New("slack: the app token must be an app-level token (xapp-…)")
	}
	if o.AppToken == "" && o.SigningSecret == "" {
		return nil, errors.New("slack: without an app token (Socket Mode) a signing secret is needed for the Events API")
	}
	if o.APIURL == "" {
		o.APIURL = slackgo.APIURL
	}
	u, err := url.Parse(o.APIURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("slack: api_url %q is not an http(s) URL", o.APIURL)
	}
	if !strings.HasSuffix(o.APIURL, "/") {
		o.APIURL += "/" // slack-go appends method names to it
	}
	if o.SlashCommand == "" {
		o.SlashCommand = DefaultSlashCommand
	}
	if !strings.HasPrefix(o.SlashCommand, "/") {
		o.SlashCommand = "/" + o.SlashCommand
	}
	if o.HTTPClient == nil {
		// Replies to several rooms go out at once: keep a connection per
		// sender instead of the default two, which would redial for the rest.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 32
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: tr}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	apiOpts := []slackgo.Option{
		slackgo.OptionAPIURL(o.APIURL),
		slackgo.OptionHTTPClient(o.HTTPClient),
	}
	if o.AppToken != "" {
		apiOpts = append(apiOpts, slackgo.OptionAppLevelToken(o.AppToken))
	}
	a := &Adapter{
		opts:  o,
		api:   slackgo.New(o.BotToken, apiOpts...),
		http:  o.HTTPClient,
		log:   o.Logger, // cmd/chima's logger already names the adapter
		seen:  newRecent(4096),
		slash: newSlashStore(1024, 30*time.Minute),
		names: newNameCache(10000, time.Hour),
	}
	return a, nil
}

// Config is the adapter's entry in chima.yaml's adapters: list.
type Config struct {
	BotTokenEnv      string `yaml:"bot_token_env"`
	AppTokenEnv      string `yaml:"app_token_env"`
	SigningSecretEnv string `yaml:"signing_secret_env"`
	APIURL           string `yaml:"api_url"`
	SlashCommand     string `yaml:"slash_command"`
}

// Factory builds a Slack adapter from its config entry; cmd/chima registers
// it as type "slack". It reads the tokens from the environment and touches
// no network.
func Factory(s chat.Setup) (chat.Adapter, error) {
	var c Config
	if err := s.Decode(&c); err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	if c.BotTokenEnv == "" {
		return nil, errors.New("slack: bot_token_env is required (the variable holding the xoxb- bot token)")
	}
	if c.AppTokenEnv == "" && c.SigningSecretEnv == "" {
		return nil, errors.New("slack: set app_token_env (Socket Mode) or signing_secret_env (Events API over HTTP)")
	}
	o := Options{Name: s.Name, APIURL: c.APIURL, SlashCommand: c.SlashCommand, Logger: s.Logger}
	var err error
	if o.BotToken, err = s.Secret(c.BotTokenEnv); err != nil {
		return nil, fmt.Errorf("slack: bot_token_env: %w", err)
	}
	if c.AppTokenEnv != "" {
		if o.AppToken, err = s.Secret(c.AppTokenEnv); err != nil {
			return nil, fmt.Errorf("slack: app_token_env: %w", err)
		}
	}
	if c.SigningSecretEnv != "" {
		if o.SigningSecret, err = s.Secret(c.SigningSecretEnv); err != nil {
			return nil, fmt.Errorf("slack: signing_secret_env: %w", err)
		}
	}
	return New(o)
}

// Name returns the adapter's configured name.
func (a *Adapter) Name() string { return a.opts.Name }

// Self returns the bot user, known once Run has called auth.test.
func (a *Adapter) Self() chat.User {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.self
}

// SupportsThreads reports true: replies go into threads (thread_ts).
func (a *Adapter) SupportsThreads() bool { return true }

// SupportsButtons reports true: buttons are Block Kit buttons whose clicks
// come back as block_actions.
func (a *Adapter) SupportsButtons() bool { return true }

// MaxTextLen is Slack's limit on a message's text.
func (a *Adapter) MaxTextLen() int { return MaxText }

// Run connects: auth.test for the bot's identity, then Socket Mode when an
// app token is set (reconnecting with backoff), or waits for the Events API
// routes to deliver. It returns nil when ctx ends and an error only for bad
// credentials.
func (a *Adapter) Run(ctx context.Context, h chat.Handler) error {
	if err := a.authenticate(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	a.dmu.Lock()
	if a.handler != nil {
		a.dmu.Unlock()
		return errors.New("slack: Run is already running")
	}
	a.handler, a.runCtx = h, ctx
	for _, deliver := range a.pending {
		deliver(ctx, h)
	}
	a.pending = nil
	a.dmu.Unlock()
	defer func() {
		a.dmu.Lock()
		a.handler, a.runCtx = nil, nil
		a.dmu.Unlock()
	}()

	if a.opts.AppToken != "" {
		return a.runSocketMode(ctx)
	}
	<-ctx.Done()
	return nil
}

// authenticate calls auth.test until it answers, retrying transient failures
// with backoff; bad credentials end it.
func (a *Adapter) authenticate(ctx context.Context) error {
	wait := a.opts.Backoff
	for {
		res, err := a.api.AuthTestContext(ctx)
		if err == nil {
			a.mu.Lock()
			a.self = chat.User{ID: res.UserID, Name: res.User}
			a.botID = res.BotID
			a.mu.Unlock()
			a.names.putUser(res.UserID, res.User)
			a.log.Info("slack: connected", "user", res.User, "user_id", res.UserID, "team", res.Team)
			return nil
		}
		if permanent(err) {
			return fmt.Errorf("slack: auth.test: %w", err)
		}
		a.log.Warn("slack: auth.test failed, retrying", "err", err, "in", wait)
		if !sleep(ctx, wait) {
			return ctx.Err()
		}
		wait = min(2*wait, a.opts.MaxBackoff)
	}
}

// permanent reports whether err means the credentials will never work.
func permanent(err error) bool {
	var se slackgo.SlackErrorResponse
	if errors.As(err, &se) {
		switch se.Err {
		case "invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "not_allowed_token_type", "missing_scope":
			return true
		}
	}
	switch err.Error() { // socketmode returns these as plain errors
	case "invalid_auth", "not_authed", "account_inactive", "token_revoked":
		return true
	}
	var sc slackgo.StatusCodeError
	return errors.As(err, &sc) && (sc.Code == http.StatusUnauthorized || sc.Code == http.StatusForbidden || sc.Code == http.StatusNotFound)
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// deliver hands something received to the running handler, or keeps it
// (bounded) until Run is ready: Slack may POST an event while Run is still
// calling auth.test. It reports false when it had to drop it.
func (a *Adapter) deliver(f func(ctx context.Context, h chat.Handler)) bool {
	a.dmu.Lock()
	h, ctx := a.handler, a.runCtx
	if h == nil {
		defer a.dmu.Unlock()
		if len(a.pending) >= maxPending {
			return false
		}
		a.pending = append(a.pending, f)
		return true
	}
	a.dmu.Unlock()
	f(ctx, h)
	return true
}

// identity returns the bot's user id and bot id.
func (a *Adapter) identity() (userID, botID string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.self.ID, a.botID
}

package ghclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/google/go-github/v57/github"
)

// ErrNotConfigured is New's error for an Auth that authenticates not at all.
var ErrNotConfigured = errors.New("no GitHub token or GitHub App is configured")

// Options tune New. The zero value is ready to use.
type Options struct {
	// Wrap, when set, wraps the transport that carries the app's
	// installation token, or the bare transport under a token (go-github
	// adds the token above it): ci-status puts its ETag cache there, so
	// that a renewed installation token keeps the cached answers.
	Wrap func(http.RoundTripper) http.RoundTripper
	// Timeout bounds each request, its token exchange included; 30 s
	// when zero.
	Timeout time.Duration
}

// Client is a client of one GitHub REST API, and the way to the token its
// requests carry, for the tools that need it too (git, cloning a private
// repository).
type Client struct {
	*github.Client
	token func(context.Context) (string, error)
}

// Token is the token the client's requests carry now: the configured token,
// or the app installation's, exchanged first when there is none yet or it
// expires within a minute. A refused exchange is an error InstallationError
// explains.
func (c *Client) Token(ctx context.Context) (string, error) { return c.token(ctx) }

// New is a client of the REST API at api (GitHub's own when ""), taken
// exactly as given (go-github's WithEnterpriseURLs would add /api/v3/),
// authenticated by auth. An app's installation tokens are exchanged at the
// same API (ghinstallation's BaseURL), so that a GitHub Enterprise Server,
// and a fake, issue them too.
func New(auth Auth, api string, opts Options) (*Client, error) {
	if !auth.Configured() {
		return nil, ErrNotConfigured
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	var base http.RoundTripper = http.DefaultTransport
	c := &Client{token: func(context.Context) (string, error) { return auth.Token, nil }}
	if auth.App() {
		itr, err := ghinstallation.New(bufferRefusals{http.DefaultTransport}, auth.AppID, auth.InstallationID, auth.PrivateKey)
		if err != nil {
			return nil, fmt.Errorf("the secret %s: %w", SecretPrivateKey, err)
		}
		if api != "" {
			itr.BaseURL = strings.TrimSuffix(api, "/")
		}
		base, c.token = itr, itr.Token
	}
	if opts.Wrap != nil {
		base = opts.Wrap(base)
	}
	// An http.Client of its own: WithAuthToken changes the one it is given.
	gh := github.NewClient(&http.Client{Timeout: opts.Timeout, Transport: base})
	if !auth.App() {
		gh = gh.WithAuthToken(auth.Token)
	}
	if api != "" {
		var err error
		if gh, err = gh.WithEnterpriseURLs(api, api); err != nil {
			return nil, fmt.Errorf("GitHub API URL %q: %w", api, err)
		}
		if gh.BaseURL, err = gh.BaseURL.Parse(strings.TrimSuffix(api, "/") + "/"); err != nil {
			return nil, fmt.Errorf("GitHub API URL %q: %w", api, err)
		}
	}
	c.Client = gh
	return c, nil
}

package main

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/sdk/sdktest"
)

// exchange is the call that turns the app's JWT into an installation token.
var exchange = "POST /app/installations/" + strconv.Itoa(testInstallationID) + "/access_tokens"

// apiCalls are the calls other than token exchanges.
func apiCalls(calls []string) []string {
	var out []string
	for _, c := range calls {
		if !strings.HasPrefix(c, "POST /app/installations/") {
			out = append(out, c)
		}
	}
	return out
}

func TestCIThroughAGitHubAppExchangesOneTokenForManyCalls(t *testing.T) {
	b := newAppBed(t, nil, nil)
	seedOctoRepo(b)
	for _, target := range []sdktest.Args{{"target": "project-x"}, {"target": "octo-org/octo-repo", "pr": "12"}, {"target": "project-x"}} {
		res := b.h.Command("ci", target)
		if len(res.Errors) > 0 || len(res.Replies) != 1 {
			t.Fatalf("ci %v: errors %v, replies %d", target, res.Errors, len(res.Replies))
		}
		if got := shown(res.Replies[0]); !strings.Contains(got, "octo-org/octo-repo") || !strings.Contains(got, "@ aaaaaaa: failing") {
			t.Errorf("ci %v through the app answered:\n%s", target, got)
		}
	}
	calls, _ := b.gh.Calls()
	if n := b.gh.TokenExchanges(); n != 1 {
		t.Errorf("%d installation tokens were exchanged for %d API calls; the first should be kept until near its expiry", n, len(apiCalls(calls)))
	}
	if len(calls) == 0 || calls[0] != exchange {
		t.Errorf("the first call was not the token exchange: %v", calls)
	}
	if len(apiCalls(calls)) < 10 {
		t.Errorf("only %d API calls for three rollups: %v", len(apiCalls(calls)), calls)
	}
}

func TestAnInstallationTokenNearItsExpiryIsRenewed(t *testing.T) {
	b := newAppBed(t, nil, nil)
	seedOctoRepo(b)
	// A token that lasts 30 s is within ghinstallation's minute of grace
	// from the start: every request must come with a new one, and the
	// fake refuses any token past its expires_at.
	b.gh.SetTokenTTL(30 * time.Second)
	for i := range 2 {
		res := b.h.Command("ci", sdktest.Args{"target": "project-x"})
		if len(res.Errors) > 0 || len(res.Replies) != 1 {
			t.Fatalf("ci #%d: errors %v, replies %d", i+1, res.Errors, len(res.Replies))
		}
	}
	calls, notModified := b.gh.Calls()
	api := apiCalls(calls)
	if n := b.gh.TokenExchanges(); n != len(api) {
		t.Errorf("%d token exchanges for %d API calls with tokens that expire at once; each call needs a fresh one:\n%s", n, len(api), strings.Join(calls, "\n"))
	}
	// The ETag cache sits above the app's transport: a renewed token
	// keeps the cached answers, and the second rollup is free.
	if notModified == 0 {
		t.Errorf("no call was answered 304 after the token changed: the cache was lost with the token")
	}
}

func TestAnInstallationTokenGitHubRevokedEarlyIsAClearChatError(t *testing.T) {
	b := newAppBed(t, nil, nil)
	seedOctoRepo(b)
	if res := b.h.Command("ci", sdktest.Args{"target": "project-x"}); len(res.Errors) > 0 {
		t.Fatalf("ci: %v", res.Errors)
	}
	// GitHub ends the token early (the app's key was rotated, the
	// installation suspended): the plugin hears a 401, not a panic.
	b.gh.ExpireTokens()
	res := b.h.Command("ci", sdktest.Args{"target": "project-x"})
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Summary, "GitHub answered 401") || !strings.Contains(res.Errors[0].Summary, "Bad credentials") {
		t.Fatalf("ci with a token GitHub expired said %v / %q", res.Errors, res.Text())
	}
}

func TestAWrongAppIsAClearChatErrorNamingWhatToCheck(t *testing.T) {
	tests := []struct {
		name string
		key  func(real []byte) []byte
		ids  map[string]string
		want []string // in the error
	}{
		{"a private key of another app", func([]byte) []byte { return rsaKeyPEM(t) }, nil,
			[]string{"GitHub gave the GitHub App no installation token for the CI of octo-org/octo-repo (401 A JSON web token could not be decoded)", "GITHUB_APP_PRIVATE_KEY"}},
		{"an app id GitHub does not know", nil, map[string]string{"github_app_id": "99"},
			[]string{"(401 Integration not found)", "check github_app_id"}},
		{"an installation of another app", nil, map[string]string{"github_installation_id": "78"},
			[]string{"(404 Not Found)", "check github_installation_id: the app is not installed there"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newAppBed(t, tt.key, tt.ids)
			seedOctoRepo(b)
			res := b.h.Command("ci", sdktest.Args{"target": "project-x"})
			if len(res.Errors) != 1 {
				t.Fatalf("ci said %v / %q, want one error", res.Errors, res.Text())
			}
			got := res.Errors[0].Summary + " " + res.Errors[0].Detail
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("the error %q lacks %q", got, w)
				}
			}
			if strings.Contains(got, "PRIVATE KEY-----") {
				t.Errorf("the error quotes the key: %q", got)
			}
			if calls, _ := b.gh.Calls(); len(apiCalls(calls)) != 0 {
				t.Errorf("API calls were made without a token: %v", calls)
			}
		})
	}
}

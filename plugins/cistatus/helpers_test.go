package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v57/github"

	"github.com/chimaops/chima/plugins/cistatus/ghfake"
	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/pluginv1"
	"github.com/chimaops/chima/sdk/sdktest"
)

// webhooks holds GitHub's real example payloads (octokit/webhooks), as
// the core's webhook tests keep them.
const webhooks = "../../core/webhook/testdata/github/"

// payload reads one of GitHub's example payloads unchanged.
func payload(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(webhooks, name))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// edited reads one of GitHub's example payloads into v (a go-github event
// type), lets edit change it and returns its JSON.
func edited[T any](t testing.TB, name string, edit func(*T)) []byte {
	t.Helper()
	var v T
	if err := json.Unmarshal(payload(t, name), &v); err != nil {
		t.Fatal(err)
	}
	edit(&v)
	raw, err := json.Marshal(&v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// bed is a plugin under test with a fake GitHub.
type bed struct {
	t  *testing.T
	h  *sdktest.Harness
	gh *ghfake.Server
}

// appsJSON is the apps file of the tests: project-x is octo-org/octo-repo
// (the workflow_run payloads' repository) and hello is
// Codertocat/Hello-World (the check and status payloads').
const appsJSON = `{
  "project-x": {"provider": "shell", "repository": "octo-org/octo-repo", "environments": ["staging"], "notify_rooms": ["deployment"]},
  "hello": {"provider": "shell", "repository": "Codertocat/Hello-World", "environments": ["staging"], "allowed_rooms": ["ops"]},
  "local": {"provider": "shell", "repository": "./repo", "environments": ["staging"]}
}`

// newBed starts the plugin with the apps file, a GitHub token (unless
// noToken) and extra settings.
func newBed(t *testing.T, noToken bool, settings map[string]string) *bed {
	t.Helper()
	return newBedApps(t, appsJSON, noToken, settings)
}

func newBedApps(t *testing.T, apps string, noToken bool, settings map[string]string) *bed {
	t.Helper()
	return startBed(t, apps, settings, func(*ghfake.Server) map[string]string {
		t.Setenv(secretPrivateKey, "")
		if noToken {
			t.Setenv(secretToken, "")
		} else {
			t.Setenv(secretToken, "gh-token")
		}
		return nil
	})
}

// The GitHub App of the tests and its installation.
const (
	testAppID          = 4242
	testInstallationID = 77
)

// newAppBed starts the plugin authenticated as the test app's
// installation, which the fake knows; key turns the private key the fake
// generated into the one the plugin is given (nil: that one), and ids
// changes the settings' app and installation ids.
func newAppBed(t *testing.T, key func(real []byte) []byte, ids map[string]string) *bed {
	t.Helper()
	return startBed(t, appsJSON, nil, func(gh *ghfake.Server) map[string]string {
		pem := gh.InstallApp(testAppID, testInstallationID)
		if key != nil {
			pem = key(pem)
		}
		t.Setenv(secretToken, "")
		t.Setenv(secretPrivateKey, string(pem))
		s := map[string]string{"github_app_id": strconv.Itoa(testAppID), "github_installation_id": strconv.Itoa(testInstallationID)}
		for k, v := range ids {
			s[k] = v
		}
		return s
	})
}

// startBed starts the plugin with the apps file, a fake GitHub, the
// settings, and what auth sets up (the secrets in the environment) and
// adds to the settings.
func startBed(t *testing.T, apps string, settings map[string]string, auth func(*ghfake.Server) map[string]string) *bed {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "apps.json"), []byte(apps), 0o644); err != nil {
		t.Fatal(err)
	}
	gh := ghfake.New(t.Cleanup, "gh-token")
	s := map[string]string{
		"apps_file": "apps.json", "chima_config_dir": dir, "github_api_url": gh.URL(),
		"chima_default_adapter": "test",
	}
	for k, v := range settings {
		s[k] = v
	}
	for k, v := range auth(gh) {
		s[k] = v
	}
	p := &ci{now: func() time.Time { return time.Date(2020, 10, 5, 16, 40, 0, 0, time.UTC) }}
	return &bed{t: t, h: sdktest.New(t, newPlugin(p).spec(), s), gh: gh}
}

// event delivers a webhook event and fails the test when the plugin
// refused it.
func (b *bed) event(name string, body []byte) sdktest.Result {
	b.t.Helper()
	res := b.h.Event("github:"+name, body)
	if res.Done.Outcome != "success" && res.Done.Outcome != "" {
		b.t.Fatalf("event %s: %s %v", name, res.Done.Outcome, res.Done.Detail)
	}
	return res
}

// posts are the plugin's posts, as their rooms and threads and texts.
func (b *bed) posts() []sdktest.Post { return b.h.Host.Posts() }

// shown is everything a message shows, for assertions.
func shown(o *sdk.Output) string {
	var parts []string
	parts = append(parts, o.Title, o.Text)
	for _, f := range o.Fields {
		parts = append(parts, f.Title+": "+f.Value)
	}
	if o.Code != "" {
		parts = append(parts, "```\n"+o.Code+"\n```")
	}
	for _, btn := range o.Buttons {
		parts = append(parts, "["+btn.Label+"]")
	}
	return strings.Join(parts, "\n")
}

// ts is a go-github timestamp.
func ts(s string) *github.Timestamp {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return &github.Timestamp{Time: t}
}

func sha(c byte) string { return strings.Repeat(string(c), 40) }

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// validate checks settings as `chima config validate` does, through the
// SDK's server (which decodes them into the plugin's settings type first),
// and returns the problems found.
func validate(t *testing.T, settings map[string]string) []sdk.Problem {
	t.Helper()
	resp, err := sdk.NewServer(newPlugin(&ci{}).spec(), nil, nil).Validate(context.Background(), &pluginv1.ValidateRequest{Settings: settings})
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	var out []sdk.Problem
	for _, p := range resp.GetProblems() {
		out = append(out, sdk.Problem{File: p.GetFile(), Line: int(p.GetLine()), Key: p.GetKey(), Message: p.GetMessage()})
	}
	return out
}

// rsaKeyPEM is a new RSA private key in PEM, as GitHub gives an app.
func rsaKeyPEM(t testing.TB) []byte {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
}

package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-github/v57/github"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/sdktest"
)

func TestSubscribeUnsubscribeAndListFromChat(t *testing.T) {
	b := newBed(t, true, map[string]string{"subscriptions": `[{"repo": "hello", "room": "test:test", "only": "failures"}]`})
	steps := []struct {
		cmd  string
		args sdktest.Args
		want string // in the reply or error
	}{
		{"ci:subscribe", sdktest.Args{"target": "project-x", "filters": "branches main,release/*,!docs/* workflows test events push,schedule only transitions ignore bots"},
			"This room now hears of the CI of octo-org/octo-repo branches main,release/*,!docs/* workflows test events push,schedule only transitions ignore bots."},
		{"ci:subscriptions", nil, "• Codertocat/Hello-World only failures (from the settings)\n• octo-org/octo-repo branches main,release/*,!docs/*"},
		{"ci:subscribe", sdktest.Args{"target": "project-x", "filters": "branches"}, "branches needs a comma-separated list after it"},
		{"ci:subscribe", sdktest.Args{"target": "project-x", "filters": "only some"}, "only needs failures or transitions after it"},
		{"ci:subscribe", sdktest.Args{"target": "project-x", "filters": "events nightly"}, `event "nightly": want push, pull_request, schedule`},
		{"ci:subscribe", sdktest.Args{"target": "project-x", "filters": "colours red"}, `I don't understand "colours"`},
		{"ci:subscribe", sdktest.Args{"target": "project-x/main"}, "subscribe to a repository, and choose branches with: branches main"},
		{"ci:subscribe", sdktest.Args{"target": "local"}, "is not on GitHub"},
		{"ci:unsubscribe", sdktest.Args{"target": "hello"}, "declared in the plugin's settings (chima.yaml); remove it there"},
		{"ci:unsubscribe", sdktest.Args{"target": "project-x"}, "This room no longer hears of the CI of octo-org/octo-repo."},
		{"ci:unsubscribe", sdktest.Args{"target": "project-x"}, "this room is not subscribed to octo-org/octo-repo"},
	}
	for i, s := range steps {
		res := b.h.Command(s.cmd, s.args)
		got := res.Text()
		for _, e := range res.Errors {
			got += e.Summary
		}
		if !strings.Contains(got, s.want) {
			t.Fatalf("step %d: %s %v said %q, want %q", i+1, s.cmd, s.args, got, s.want)
		}
	}
	b.h.Room = "elsewhere"
	if got := b.h.Command("ci:subscriptions", nil).Text(); !strings.Contains(got, "no CI subscriptions") {
		t.Errorf("another room lists %q", got)
	}
}

func TestASubscriptionMadeInChatHearsTheRepository(t *testing.T) {
	b := newBed(t, true, nil)
	b.h.Room = "builds"
	b.h.Command("ci:subscribe", sdktest.Args{"target": "octo-org/octo-repo", "filters": "branches master"})
	b.event("workflow_run", runEvent(t, 'a', "completed", "failure"))
	posts := b.posts()
	if len(posts) != 1 || posts[0].Target.Room != "builds" || posts[0].Target.Adapter != "test" {
		t.Fatalf("posts %v, want one in test:builds", posts)
	}
}

func TestRerunRerunFailedAndCancelFromChat(t *testing.T) {
	tests := []struct {
		name, cmd, run string
		want           string // in the reply, or error
		action         string // what GitHub was asked, "" for nothing
	}{
		{"rerun by owner/repo#id", "ci:rerun", "octo-org/octo-repo#900", "Rerunning every job of run 900 of octo-org/octo-repo for Tester", "rerun 900"},
		{"rerun the failed jobs of an app's run", "ci:rerun-failed", "project-x#900", "Rerunning the failed jobs of run 900 of octo-org/octo-repo", "rerun-failed-jobs 900"},
		{"cancel by the run's URL", "ci:cancel", "https://github.com/octo-org/octo-repo/actions/runs/900/attempts/1", "Cancelling run 900 of octo-org/octo-repo", "cancel 900"},
		{"an unknown run", "ci:rerun", "octo-org/octo-repo#4", "GitHub answered 404 for a rerun of run 4 of octo-org/octo-repo", ""},
		{"no run at all", "ci:cancel", "octo-org/octo-repo", "names no workflow run: write owner/repo#<run id>", ""},
		{"an unknown app", "ci:cancel", "nope#3", `I know no app "nope"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBed(t, false, nil)
			seedOctoRepo(b)
			res := b.h.Command(tt.cmd, sdktest.Args{"run": tt.run})
			got := res.Text()
			for _, e := range res.Errors {
				got += e.Summary
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("%s %s said %q, want %q", tt.cmd, tt.run, got, tt.want)
			}
			var want []string
			if tt.action != "" {
				want = []string{tt.action}
			}
			if acts := b.gh.Actions(); !reflect.DeepEqual(acts, want) {
				t.Errorf("GitHub was asked %v, want %v", acts, want)
			}
		})
	}
}

func TestTheButtonsOfARollupActOnItsRuns(t *testing.T) {
	b := newBed(t, false, nil)
	seedOctoRepo(b)
	res := b.h.Command("ci", sdktest.Args{"target": "project-x"})
	btn := res.Button("Cancel test")
	if btn == nil {
		t.Fatalf("no Cancel button on %s", shown(res.Replies[0]))
	}
	if a := b.h.Manifest.GetActions(); len(a) != 3 || a[2].GetCommand() != "ci:cancel" {
		t.Fatalf("actions %v: a click must be checked as the command it stands for", a)
	}
	click := b.h.Click(btn, nil)
	if !strings.Contains(click.Text(), "Cancelling run 900 of octo-org/octo-repo") {
		t.Errorf("the click said %q %v", click.Text(), click.Errors)
	}
	if acts := b.gh.Actions(); !reflect.DeepEqual(acts, []string{"cancel 900"}) {
		t.Errorf("GitHub was asked %v", acts)
	}
}

func TestARunThatCompletedWithoutFailingHasARerunButton(t *testing.T) {
	tests := []struct {
		name, conclusion string
		button           string // "" for none
	}{
		{"success", "success", "Rerun test"},
		{"cancelled", "cancelled", "Rerun test"},
		{"failure: its failed jobs instead", "failure", "Rerun failed jobs of test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBed(t, false, nil)
			seedOctoRepo(b)
			r := b.gh.Repo("octo-org/octo-repo")
			b.gh.Lock(func() {
				r.Runs[0].Status, r.Runs[0].Conclusion = github.String("completed"), github.String(tt.conclusion)
				for _, j := range r.Jobs[900] {
					j.Status, j.Conclusion = github.String("completed"), github.String(tt.conclusion)
				}
			})
			res := b.h.Command("ci", sdktest.Args{"target": "project-x"})
			btn := res.Button(tt.button)
			if btn == nil {
				t.Fatalf("no %q button on %s", tt.button, shown(res.Replies[0]))
			}
			if other := res.Button("Rerun test"); tt.conclusion == "failure" && other != nil {
				t.Errorf("a failed run offers both Rerun and Rerun failed jobs")
			}
			click := b.h.Click(btn, nil)
			verb, call, command := "Rerunning every job of run 900", "rerun 900", "ci:rerun"
			if tt.conclusion == "failure" {
				verb, call, command = "failed jobs of run 900", "rerun-failed-jobs 900", "ci:rerun-failed"
			}
			// The host checks and audits a click as the command its
			// action stands for.
			for _, a := range b.h.Manifest.GetActions() {
				if a.GetName() == btn.Action && a.GetCommand() != command {
					t.Errorf("the button's action %q stands for %q, want %q", btn.Action, a.GetCommand(), command)
				}
			}
			if btn.Value != "octo-org/octo-repo#900" {
				t.Errorf("the button's value is %q, want the run octo-org/octo-repo#900", btn.Value)
			}
			if !strings.Contains(click.Text(), verb) || !strings.Contains(click.Text(), "octo-org/octo-repo") {
				t.Errorf("the click said %q %v", click.Text(), click.Errors)
			}
			if acts := b.gh.Actions(); !reflect.DeepEqual(acts, []string{call}) {
				t.Errorf("GitHub was asked %v, want %q", acts, call)
			}
		})
	}
}

func TestCommandsDeclareTheirPermissions(t *testing.T) {
	b := newBed(t, true, nil)
	want := map[string]string{
		"ci": "", "ci:subscriptions": "", "ci:subscribe": permissionSubscribe, "ci:unsubscribe": permissionSubscribe,
		"ci:rerun": permissionRerun, "ci:rerun-failed": permissionRerun, "ci:cancel": permissionCancel,
	}
	for _, c := range b.h.Manifest.GetCommands() {
		if p, ok := want[c.GetName()]; !ok || p != c.GetPermission() {
			t.Errorf("%s needs %q, want %q", c.GetName(), c.GetPermission(), p)
		}
		delete(want, c.GetName())
	}
	if len(want) > 0 {
		t.Errorf("commands not declared: %v", want)
	}
}

func TestValidateNamesTheKeyOfEachBadSetting(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "apps.json"), []byte(`{"x": {"repository": "o/x", "auto_deploy": {"branch": "main"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "good.json"), []byte(appsJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "good.json")
	key := string(rsaKeyPEM(t))
	app := map[string]string{"github_app_id": "4242", "github_installation_id": "77"}
	noAuth := map[string]string{}
	tests := []struct {
		name     string
		settings map[string]string
		env      map[string]string // the secrets
		want     []sdk.Problem
	}{
		{"valid YAML subscriptions", map[string]string{"apps_file": good, "subscriptions": helloSubs}, noAuth, nil},
		{"valid JSON auto_deploy", map[string]string{"apps_file": good, "auto_deploy": `[{"app": "project-x", "branch": "main", "environment": "staging"}]`, "auto_deploy_as": "alice"}, noAuth, nil},
		{"subscriptions that are neither JSON nor YAML", map[string]string{"subscriptions": "[{repo: x"}, noAuth,
			[]sdk.Problem{{Key: "subscriptions", Message: "want a list, got a string that is not YAML or JSON: line 1: did not find expected ',' or '}'"}}},
		{"a subscription with a misspelt key", map[string]string{"subscriptions": `[{"repo": "o/r", "room": "x", "ignore_bot": true}]`}, noAuth,
			[]sdk.Problem{{Key: "subscriptions[0].ignore_bot", Message: `unknown key (did you mean "ignore_bots"?)`}}},
		{"a subscription without a room", map[string]string{"apps_file": good, "subscriptions": `[{"repo": "octo-org/octo-repo"}]`}, noAuth,
			[]sdk.Problem{{Key: "subscriptions[0]", Message: "room is required"}}},
		{"a subscription of an unknown repository", map[string]string{"subscriptions": `[{"repo": "nope", "room": "x"}]`}, noAuth,
			[]sdk.Problem{{Key: "subscriptions[0]", Message: `repo "nope" is neither owner/repo nor an app of the apps file`}}},
		{"a bad only", map[string]string{"subscriptions": `[{"repo": "o/r", "room": "x", "only": "sometimes"}]`}, noAuth,
			[]sdk.Problem{{Key: "subscriptions[0]", Message: `only "sometimes": want failures or transitions`}}},
		{"auto_deploy of an unknown app, without auto_deploy_as", map[string]string{"auto_deploy": "- {app: nope, branch: main, environment: staging}"}, noAuth,
			[]sdk.Problem{{Key: "auto_deploy[0].app", Message: `"nope" is not an app of the apps file`}}},
		{"the apps file's auto_deploy lacks an environment", map[string]string{"apps_file": filepath.Join(dir, "apps.json")}, noAuth,
			[]sdk.Problem{{File: filepath.Join(dir, "apps.json"), Key: "x.auto_deploy", Message: "needs a branch and an environment"}}},
		{"auto_deploy without a person to run as", map[string]string{"apps_file": good, "auto_deploy": `[{"app": "project-x", "branch": "main", "environment": "staging"}]`}, noAuth,
			[]sdk.Problem{{Key: "auto_deploy_as", Message: "is required with auto_deploy: the person of chima.yaml's people the deploys run as (chima.yaml must let the plugin run as them)"}}},
		{"people that are a list, and an unknown key", map[string]string{"people": "[1, 2]", "auto_deploy_ass": "alice"}, noAuth,
			[]sdk.Problem{{Key: "auto_deploy_ass", Message: `unknown key (did you mean "auto_deploy_as"?)`}, {Key: "people", Message: "want a mapping, got a list"}}},
		{"a bad API URL", map[string]string{"github_api_url": "ghe.example"}, noAuth,
			[]sdk.Problem{{Key: "github_api_url", Message: `"ghe.example" is not an http(s) URL`}}},
		{"a missing apps file", map[string]string{"apps_file": filepath.Join(dir, "nope.json")}, noAuth,
			[]sdk.Problem{{Key: "apps_file", Message: "apps file: open " + filepath.Join(dir, "nope.json") + ": no such file or directory"}}},
		{"a GitHub App", app, map[string]string{secretPrivateKey: key}, nil},
		{"a GitHub App whose key's line breaks are written \\n", app, map[string]string{secretPrivateKey: strings.ReplaceAll(key, "\n", `\n`)}, nil},
		{"a GitHub App and a token", app, map[string]string{secretPrivateKey: key, secretToken: "ghp_x"},
			[]sdk.Problem{{Key: "github_app_id", Message: "a GitHub App and the secret GITHUB_TOKEN are both configured: authenticate with one, the app (github_app_id, github_installation_id and the secret GITHUB_APP_PRIVATE_KEY) or the token"}}},
		{"an app id without its installation", map[string]string{"github_app_id": "4242"}, map[string]string{secretPrivateKey: key},
			[]sdk.Problem{{Key: "github_installation_id", Message: "is required for a GitHub App: the id of its installation on the organisation or account (the number that ends the installation's settings URL)"}}},
		{"an app without its private key", app, noAuth,
			[]sdk.Problem{{Key: "github_app_id", Message: "the GitHub App needs its private key: give the plugin the secret GITHUB_APP_PRIVATE_KEY (plugins[].secrets: {GITHUB_APP_PRIVATE_KEY: CHIMA_GITHUB_APP_PRIVATE_KEY}), the PEM file GitHub generated for the app"}}},
		{"a private key without an app", noAuth, map[string]string{secretPrivateKey: key},
			[]sdk.Problem{
				{Key: "github_app_id", Message: "is required for a GitHub App: the App ID of the app's settings page on GitHub"},
				{Key: "github_installation_id", Message: "is required for a GitHub App: the id of its installation on the organisation or account (the number that ends the installation's settings URL)"},
			}},
		{"a private key that is not PEM", app, map[string]string{secretPrivateKey: "not-a-key-s3cr3t"},
			[]sdk.Problem{{Key: "github_app_id", Message: "the secret GITHUB_APP_PRIVATE_KEY is not the app's RSA private key in PEM (-----BEGIN RSA PRIVATE KEY-----…): invalid key: Key must be a PEM encoded PKCS1 or PKCS8 key"}}},
		{"an app id that is not a number", map[string]string{"github_app_id": "my-app", "github_installation_id": "77"}, map[string]string{secretPrivateKey: key},
			[]sdk.Problem{{Key: "github_app_id", Message: `want an integer, got "my-app"`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(secretToken, "")
			t.Setenv(secretPrivateKey, "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			if got := validate(t, tt.settings); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n  %+v\nwant:\n  %+v", got, tt.want)
			}
		})
	}
}

func TestRedactAndTheLogTail(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"a GitHub token", "push with ghp_0123456789abcdefghijklmnop done", "push with [redacted] done"},
		{"a fine-grained token", "github_pat_11ABCDEFG0123456789_abcdefghijkl", "[redacted]"},
		{"a Slack token", "SLACK=xoxb-1234-5678-abcdefgh", "SLACK=[redacted]"},
		{"an AWS key", "key AKIAIOSFODNN7EXAMPLE used", "key [redacted] used"},
		{"a password pair", `DB_PASSWORD="hunter2" next`, `DB_PASSWORD="[redacted]" next`},
		{"an api key pair", "api_key: abc123", "api_key: [redacted]"},
		{"a bearer header", "Authorization: Bearer abcdefghijklmnop", "Authorization: Bearer [redacted]"},
		{"a URL with a password", "git clone https://bob:s3cret@example.com/x.git", "git clone https://bob:[redacted]@example.com/x.git"},
		{"the plugin's own token", "token-of-the-plugin-1234 leaked", "[redacted] leaked"},
		{"a private key", "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", "[redacted private key]"},
		{"nothing secret", "ok 12 tests passed", "ok 12 tests passed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := redact(tt.in, "token-of-the-plugin-1234"); got != tt.want {
				t.Errorf("redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	long := make([]string, 0, 100)
	for i := range 100 {
		long = append(long, strings.Repeat("x", 100)+" "+string(rune('a'+i%26)))
	}
	long = append(long, "##[error]boom", "after")
	tail := tailOfFailure(long)
	if len(tail) > digestLogBytes+len("…") || !strings.HasSuffix(tail, "##[error]boom") || strings.Contains(tail, "after") {
		t.Errorf("the tail is %d bytes, ends %q", len(tail), tail[max(0, len(tail)-40):])
	}
	if n := strings.Count(tail, "\n") + 1; n > digestLogLines {
		t.Errorf("the tail has %d lines", n)
	}
}

func TestTheRerunButtonOfAFailureMessageRerunsTheFailedJobs(t *testing.T) {
	b := newBed(t, false, map[string]string{"subscriptions": helloSubs})
	seedRequired(b, 'a', nil, "failure")
	b.event("workflow_run", runEvent(t, 'a', "completed", "failure"))
	posts := b.posts()
	if len(posts) != 1 {
		t.Fatalf("posts %v", posts)
	}
	btn := sdktest.ButtonOf(posts[0].Output, "Rerun failed jobs of test")
	if btn == nil {
		t.Fatalf("no rerun button on:\n%s", shown(posts[0].Output))
	}
	res := b.h.Click(btn, &sdk.MessageRef{Adapter: "test", Room: "builds", MessageID: "p1"})
	if !strings.Contains(res.Text(), "Rerunning the failed jobs of run 1097 of octo-org/octo-repo") {
		t.Errorf("the click said %q %v", res.Text(), res.Errors)
	}
	if acts := b.gh.Actions(); !reflect.DeepEqual(acts, []string{"rerun-failed-jobs 1097"}) {
		t.Errorf("GitHub was asked %v", acts)
	}
}

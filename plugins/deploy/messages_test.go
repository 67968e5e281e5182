package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/plugins/deploy/internal/apps"
	"github.com/chimaops/chima/sdk/sdktest"
)

// migrateArgs are the arguments the host's router gives for
// `deploy:migrate demo/main to staging`: the grammar's task group is
// "migrate".
func migrateArgs() sdktest.Args {
	args := deployArgs("demo", "main", "staging")
	args["task"] = "migrate"
	return args
}

func TestDeployMigrateCarriesTaskDeployMigrateToGitHub(t *testing.T) {
	f, gh, h := githubFixture(t)
	res := h.Command("deploy", migrateArgs())
	if len(gh.created) != 1 {
		t.Fatalf("no GitHub deployment: %q %v", res.Text(), res.Errors)
	}
	if got := gh.created[0].GetTask(); got != "deploy:migrate" {
		t.Errorf("GitHub deployment task = %q, want deploy:migrate as hubot-deploy sends it", got)
	}
	h.Event("github:deployment", gh.deploymentEvent(t, 0))
	if runs := h.RunEnqueued(); len(runs) != 1 || runs[0].Done.Outcome != "success" {
		t.Fatalf("job = %+v", runs)
	}
	if mark := f.mark(t, 1); !strings.Contains(mark, "DEPLOY_TASK=deploy:migrate\n") {
		t.Errorf("the script was not given the task deploy:migrate:\n%s", mark)
	}
}

func TestGitHubTaskNames(t *testing.T) {
	tests := []struct{ chat, want string }{
		{"", "deploy"},
		{"deploy", "deploy"},
		{"migrate", "deploy:migrate"},
		{"deploy:migrate", "deploy:migrate"},
		{"assets:precompile", "deploy:assets:precompile"},
	}
	for _, tt := range tests {
		if got := githubTask(tt.chat); got != tt.want {
			t.Errorf("githubTask(%q) = %q, want %q", tt.chat, got, tt.want)
		}
	}
}

const notifyApp = `{"demo": {"provider": "shell", "repository": %q, "environments": ["staging"],
	"notify_rooms": ["releases"]}}`

func TestDeployOfAnUnknownBranchIsRefusedBeforeAnythingIsAnnounced(t *testing.T) {
	f := newFixture(t, notifyApp)
	h := f.harness(t)
	res := h.Command("deploy", deployArgs("demo", "no-such-branch", "staging"))
	if got := userError(res); got != `demo has no branch, tag or commit "no-such-branch". Say `+"`deploys demo`"+` to see what was deployed, or name another ref.` {
		t.Errorf("refusal = %q (replies %q)", got, res.Text())
	}
	if n := len(h.Host.Enqueued()); n != 0 {
		t.Errorf("%d jobs queued for an unknown branch", n)
	}
	if posts := h.Host.Posts(); len(posts) != 0 {
		t.Errorf("an unknown branch was announced: %s", posted(h))
	}
	if got := h.Command("deploys", sdktest.Args{"app": "demo"}).Text(); !strings.Contains(got, "No deployments of demo yet") {
		t.Errorf("an unknown branch left a deployment record: %q", got)
	}
	// A branch pushed after the mirror was made is found.
	git(t, f.repo, "branch", "pushed-later")
	if res := h.Command("deploy", deployArgs("demo", "pushed-later", "staging")); len(res.Errors) != 0 {
		t.Errorf("a branch pushed after the first fetch was refused: %v", res.Errors)
	}
}

var fullSHA = regexp.MustCompile(`\b[0-9a-f]{40}\b`)

func TestRollbackMessagesShowTheShortSHA(t *testing.T) {
	f := newFixture(t, notifyApp)
	h := f.harness(t)
	h.Command("deploy", deployArgs("demo", "main", "staging"))
	h.Command("deploy", deployArgs("demo", "feature-1", "staging"))
	h.RunEnqueued()
	before := len(h.Host.Posts())
	res := h.Command("rollback", sdktest.Args{"app": "demo", "env": "staging"})
	h.RunEnqueued()
	var texts []string
	texts = append(texts, res.Text())
	for _, p := range h.Host.Posts()[before:] {
		texts = append(texts, p.Output.Text)
	}
	texts = append(texts, h.Command("deploys", sdktest.Args{"app": "demo"}).Text())
	all := strings.Join(texts, "\n")
	if fullSHA.MatchString(all) {
		t.Errorf("rollback messages show a full SHA:\n%s", all)
	}
	for _, want := range []string{
		"Deployment #3: demo/" + f.main[:7] + " to staging queued",
		"Tester is deploying demo/" + f.main[:7] + " to staging (#3).",
		"Deployed demo/" + f.main[:7] + " to staging in",
		"#3 deploy " + f.main[:7] + " to staging by Tester",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("messages lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "()") {
		t.Errorf("a message has empty parentheses:\n%s", all)
	}
}

func TestDescribeSaysHowLongADeploymentRuns(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	d := &deployer{now: func() time.Time { return now }}
	tests := []struct {
		state string
		want  string
	}{
		{StateRunning, ": running for 2.5s"},
		{StateSuccess, ": success in 2.5s"},
		{StateFailure, ": failure after 2.5s"},
	}
	for _, tt := range tests {
		dep := &Deployment{ID: 8, App: "demo", Ref: "main", Env: "staging", Task: "deploy", User: "tester", State: tt.state,
			CreatedAt: now.Add(-3 * time.Second), StartedAt: now.Add(-2500 * time.Millisecond)}
		if tt.state != StateRunning {
			dep.FinishedAt = now
		}
		if got := d.describe(dep); !strings.Contains(got, tt.want) {
			t.Errorf("describe(%s) = %q, want it to contain %q", tt.state, got, tt.want)
		}
	}
}

func TestAnAppsGitHubAPIIsWhereItsDeploymentsAreMade(t *testing.T) {
	f, dotcom := githubFake(t, "")
	ghe := newFakeGitHub(t, map[string]string{"main": f.main})
	write(t, f.appsFile, `{"demo": {"provider": "shell", "repository": "oursky/demo", "environments": ["staging"],
		"github_api": "`+ghe.srv.URL+`/"}}`, 0o644)
	h := f.harness(t, f.githubSettings(dotcom)...)
	res := h.Command("deploy", deployArgs("demo", "main", "staging"))
	if !strings.Contains(res.Text(), "created GitHub deployment 1001 of demo/main to staging") {
		t.Fatalf("reply = %q %v", res.Text(), res.Errors)
	}
	if len(ghe.created) != 1 || len(dotcom.created) != 0 {
		t.Errorf("deployments made on the app's GitHub: %d, on the plugin's: %d; want 1 and 0", len(ghe.created), len(dotcom.created))
	}
	d := &deployer{cloneURL: "https://github.com/{owner}/{name}.git"}
	a := &apps.App{Name: "x", Repository: "acme/x", GitHubAPI: "https://ghe.acme.example/api/v3"}
	if got := d.repoURL(a); got != "https://ghe.acme.example/acme/x.git" {
		t.Errorf("clone URL of an Enterprise app = %q", got)
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v57/github"

	"github.com/chimaops/chima/plugins/cistatus/ghfake"
)

// checkRunDelivery is the body of GitHub's check_run webhook for a completed
// check run named name of sha on branch of repo.
func checkRunDelivery(t *testing.T, repo, branch, sha, name, conclusion string) []byte {
	t.Helper()
	ev := github.CheckRunEvent{
		Action: github.String("completed"),
		CheckRun: &github.CheckRun{
			ID: github.Int64(int64(len(sha) + len(conclusion))), Name: github.String(name), HeadSHA: github.String(sha),
			Status: github.String("completed"), Conclusion: github.String(conclusion),
			App:        &github.App{Slug: github.String("github-actions"), Name: github.String("GitHub Actions")},
			CheckSuite: &github.CheckSuite{HeadBranch: github.String(branch), HeadSHA: github.String(sha)},
		},
		Repo:   &github.Repository{FullName: github.String(repo)},
		Sender: &github.User{Login: github.String("octocat"), Type: github.String("User")},
	}
	body, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// deliveryHandled waits until the cistatus plugin has handled the webhook
// delivery id, as `chima events --json` (read beside the running bot) says.
func deliveryHandled(t *testing.T, cfg, id string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, stderr, code := chima(t, "events", "--config", cfg, "--plugin", "cistatus", "--json")
		if code != 0 {
			t.Fatalf("chima events: exit %d\n%s", code, stderr)
		}
		var events []struct {
			DeliveryID string `json:"delivery_id"`
			State      string `json:"state"`
			LastError  string `json:"last_error"`
		}
		if err := json.Unmarshal([]byte(out), &events); err != nil {
			t.Fatalf("chima events --json: %v\n%s", err, out)
		}
		for _, e := range events {
			if e.DeliveryID != id {
				continue
			}
			switch e.State {
			case "handled":
				return
			case "failed":
				t.Fatalf("delivery %s failed: %s", id, e.LastError)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery %s was never handled:\n%s", id, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestCIStatusAutoDeploysAGreenMainCommitOnceAsAliceAndSaysWhyNotWhenRedOrLocked(t *testing.T) {
	repo, marks, sha := gitRepo(t)
	git := gitIn(t, repo, t.TempDir())
	other := git("rev-parse", "v2")
	// Two more commits of main's history, v3 then v4, for the lock.
	git("checkout", "-q", "-b", "v4", "v2")
	git("commit", "-q", "--allow-empty", "-m", "v3")
	locked := git("rev-parse", "HEAD")
	git("commit", "-q", "--allow-empty", "-m", "v4")
	unlocked := git("rev-parse", "HEAD")
	git("checkout", "-q", "main")
	const ghRepo = "octo-org/demo"

	// GitHub: main's head is the repository's main, and branch protection
	// of main requires one check, build.
	gh := ghfake.New(t.Cleanup, "gh-token")
	fake := gh.Repo(ghRepo)
	gh.Lock(func() {
		fake.DefaultBranch = "main"
		fake.Branches["main"] = sha
		fake.CheckRuns[sha] = []*github.CheckRun{{ID: github.Int64(1), Name: github.String("build"), Status: github.String("completed"),
			Conclusion: github.String("success"), App: &github.App{Slug: github.String("github-actions")}}}
		fake.Required["main"] = &github.RequiredStatusChecks{Contexts: []string{"build"}}
	})

	// The deploy plugin in local mode (no token), cloning "octo-org/demo"
	// from the real repository; cistatus reads the same apps file.
	addr := freePort(t)
	const secret = "autodeploy e2e secret"
	apps := fmt.Sprintf(`{"demo": {"provider": "shell", "repository": %q, "environments": ["staging"],
		"allowed_rooms": ["general"], "auto_deploy": {"branch": "main", "environment": "staging"}}}`, ghRepo)
	cfg, appsFile, _ := deployConfig(t,
		fmt.Sprintf("http:\n  addr: %s\nwebhooks:\n  github: {secret_env: CHIMA_TEST_HOOK_SECRET}\npeople:\n  alice: [shell:alice]\n", addr),
		apps, nil, "github_clone_url: "+repo)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	entry := fmt.Sprintf(`  - name: cistatus
    path: %s
    secrets: {GITHUB_TOKEN: CHIMA_TEST_CI_TOKEN}
    run_as: [alice]
    settings:
      github_api_url: %s
      apps_file: %s
      auto_deploy_as: alice
roles:
  qa: {users: ["shell:bob"], permissions: ["deploy:lock"]}`, ciStatusPlugin(t), gh.URL(), appsFile)
	// bob, of QA, may lock an environment (and not deploy).
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), "roles:", entry, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CHIMA_TEST_HOOK_SECRET", secret)
	t.Setenv("CHIMA_TEST_CI_TOKEN", "gh-token")
	c := startConsole(t, cfg)
	waitForHealthz(t, addr)
	deliver := githubDeliverer(t, "http://"+addr+"/webhooks/github", secret)

	// 1. The required check of main's head is green: it is deployed, once,
	// as alice, by cistatus.
	green := checkRunDelivery(t, ghRepo, "main", sha, "build", "success")
	deliver("check_run", "autodeploy-green-1", green)
	lines := c.readLinesUntil(t, "Deployed demo/"+sha[:7])
	text := strings.Join(lines, "\n")
	if !strings.Contains(text, "Auto-deploying demo "+sha[:7]+" to staging: every required check of "+sha[:7]+" on main is green") {
		t.Errorf("the room was not told why it deploys:\n%s", text)
	}
	if !strings.Contains(lines[len(lines)-1], "to staging") {
		t.Errorf("the deploy did not go to staging: %s", lines[len(lines)-1])
	}
	mark, err := os.ReadFile(filepath.Join(marks, "1"))
	if err != nil || !strings.Contains(string(mark), "DEPLOY_SHA="+sha) || !strings.Contains(string(mark), "DEPLOY_ENV=staging") {
		t.Fatalf("the deploy script's environment = %q, %v", mark, err)
	}

	// 2. The same event again, as a new delivery: handled, deploys nothing.
	deliver("check_run", "autodeploy-green-2", green)
	deliveryHandled(t, cfg, "autodeploy-green-2")

	// 3. Another commit on main whose required check is red: no deploy,
	// and the room hears why.
	gh.Lock(func() {
		fake.Branches["main"] = other
		fake.CheckRuns[other] = []*github.CheckRun{{ID: github.Int64(2), Name: github.String("build"), Status: github.String("completed"),
			Conclusion: github.String("failure"), App: &github.App{Slug: github.String("github-actions")}}}
	})
	deliver("check_run", "autodeploy-red-1", checkRunDelivery(t, ghRepo, "main", other, "build", "failure"))
	lines = c.readLinesUntil(t, "Not auto-deploying demo "+other[:7]+" to staging")
	if last := lines[len(lines)-1]; !strings.Contains(last, "[general]") || !strings.Contains(last, "not green: build (failure)") {
		t.Errorf("the room was not told why the red commit is not deployed: %s", last)
	}
	deliveryHandled(t, cfg, "autodeploy-red-1")
	for _, l := range lines {
		if strings.Contains(l, "Auto-deploying") || strings.Contains(l, "Deployment #") {
			t.Errorf("a second deploy after the redelivery or the red check: %s", l)
		}
	}

	// 4. bob locks staging through the deploy plugin; main's next commit
	// goes green: the deploy is refused by the lock, and the room hears
	// the lock's reason.
	c.say(t, "/user bob")
	c.say(t, "chima deploy:lock demo in staging testing the migration")
	c.expect(t, "Locked demo in staging")
	c.say(t, "/user alice")
	greenOn := func(sha string, id int64) {
		gh.Lock(func() {
			fake.Branches["main"] = sha
			fake.CheckRuns[sha] = []*github.CheckRun{{ID: github.Int64(id), Name: github.String("build"), Status: github.String("completed"),
				Conclusion: github.String("success"), App: &github.App{Slug: github.String("github-actions")}}}
		})
	}
	greenOn(locked, 3)
	deliver("check_run", "autodeploy-locked-1", checkRunDelivery(t, ghRepo, "main", locked, "build", "success"))
	lines = c.readLinesUntil(t, "The auto-deploy of demo "+locked[:7]+" to staging was")
	if last := lines[len(lines)-1]; !strings.Contains(last, "[general]") || !strings.Contains(last, "locked by") || !strings.Contains(last, "testing the migration") {
		t.Errorf("the room was not told the lock's reason: %s", last)
	}
	deliveryHandled(t, cfg, "autodeploy-locked-1")
	for _, l := range lines {
		if strings.Contains(l, "Deployment #") || strings.Contains(l, "Deployed demo/") {
			t.Errorf("a deploy ran through bob's lock: %s", l)
		}
	}

	// 5. bob unlocks; the next green commit of main deploys.
	c.say(t, "/user bob")
	c.say(t, "chima deploy:unlock demo in staging")
	c.expect(t, "Unlocked demo in staging")
	c.say(t, "/user alice")
	greenOn(unlocked, 4)
	deliver("check_run", "autodeploy-unlocked-1", checkRunDelivery(t, ghRepo, "main", unlocked, "build", "success"))
	c.readLinesUntil(t, "Deployed demo/"+unlocked[:7])

	// The audit: one deploy of each green commit but the locked one, run
	// by cistatus as alice; the locked one refused.
	c.in.Close()
	_ = c.cmd.Wait()
	out, stderr, code := chima(t, "audit", "--config", cfg, "--json")
	if code != 0 {
		t.Fatalf("chima audit: exit %d\n%s", code, stderr)
	}
	var entries []auditJSON
	if err := json.Unmarshal([]byte(out), &entries); err != nil {
		t.Fatalf("chima audit --json: %v\n%s", err, out)
	}
	var deploys []auditJSON
	for _, e := range entries {
		if e.Plugin == "deploy" && e.Command == "deploy" {
			deploys = append(deploys, e)
		}
	}
	if len(deploys) != 3 {
		t.Fatalf("%d deploy entries in the audit, want 3:\n%s", len(deploys), out)
	}
	outcomes := map[string]string{}
	for _, d := range deploys {
		if d.TriggeredBy != "cistatus" || d.Person != "alice" {
			t.Errorf("the deploy's audit entry: triggered_by %q, person %q; want cistatus, alice", d.TriggeredBy, d.Person)
		}
		for _, c := range []string{sha, locked, unlocked} {
			if strings.Contains(d.Text, "demo/"+c+" to staging") {
				outcomes[c] = d.Outcome
			}
		}
	}
	if outcomes[sha] != "ok" || outcomes[unlocked] != "ok" || outcomes[locked] == "ok" || outcomes[locked] == "" {
		t.Errorf("the deploys' outcomes: first %q, under the lock %q, after it %q; want ok, not ok, ok", outcomes[sha], outcomes[locked], outcomes[unlocked])
	}
	if entries, _ := os.ReadDir(marks); len(entries) != 2 {
		t.Errorf("the deploy script ran %d times, want 2", len(entries))
	}
}

// waitForHealthz waits until the bot's HTTP server at addr answers.
func waitForHealthz(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bot's HTTP server never answered: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// githubDeliverer returns a func that delivers a webhook to hook as GitHub
// does, signed with secret, and fails t unless the bot accepts it.
func githubDeliverer(t *testing.T, hook, secret string) func(event, id string, body []byte) {
	return func(event, id string, body []byte) {
		t.Helper()
		req, err := signedDelivery(hook, secret, event, id, body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
		if err != nil {
			t.Fatalf("deliver %s: %v", id, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("delivery %s answered %d", id, resp.StatusCode)
		}
	}
}

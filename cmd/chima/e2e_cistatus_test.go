package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-github/v57/github"

	"github.com/chimaops/chima/plugins/cistatus/ghfake"
)

var (
	buildCIStatusOnce sync.Once
	buildCIStatusErr  error
)

// ciStatusPlugin builds the ci-status plugin beside the other test
// binaries, once.
func ciStatusPlugin(t *testing.T) string {
	t.Helper()
	path := filepath.Join(binDir, "plugins/cistatus")
	buildCIStatusOnce.Do(func() {
		out, err := exec.Command("go", "build", "-o", path, "../../plugins/cistatus").CombinedOutput()
		if err != nil {
			buildCIStatusErr = fmt.Errorf("build the ci-status plugin: %v\n%s", err, out)
		}
	})
	if buildCIStatusErr != nil {
		t.Fatal(buildCIStatusErr)
	}
	return path
}

// ciGitHub is a fake GitHub with what the ci-status plugin reads: the
// Actions job behind check_run.failure.json's check run (its steps,
// annotations and log), and a head commit of octo-org/octo-repo's main.
func ciGitHub(t *testing.T) *ghfake.Server {
	gh := ghfake.New(t.Cleanup, "gh-token")
	hello := gh.Repo("Codertocat/Hello-World")
	octo := gh.Repo("octo-org/octo-repo")
	ts := func(s string) *github.Timestamp {
		v, _ := time.Parse(time.RFC3339, s)
		return &github.Timestamp{Time: v}
	}
	head := strings.Repeat("a", 40)
	gh.Lock(func() {
		hello.Jobs[555] = []*github.WorkflowJob{{
			ID: github.Int64(128620228), RunID: github.Int64(555), Name: github.String("Octocoders-linter"), WorkflowName: github.String("CI"),
			Status: github.String("completed"), Conclusion: github.String("failure"),
			HTMLURL: github.String("https://github.com/Codertocat/Hello-World/actions/runs/555/job/128620228"),
			Steps: []*github.TaskStep{
				{Name: github.String("Set up job"), Number: github.Int64(1), Conclusion: github.String("success")},
				{Name: github.String("Run linter"), Number: github.Int64(2), Conclusion: github.String("failure")},
			},
		}}
		hello.Annotations[128620228] = []*github.CheckRunAnnotation{
			{Path: github.String(".github"), AnnotationLevel: github.String("failure"), Message: github.String("Process completed with exit code 1.")},
			{Path: github.String("README.md"), StartLine: github.Int(3), AnnotationLevel: github.String("failure"), Message: github.String("line too long")},
		}
		hello.Logs[128620228] = "2019-05-15T15:21:10.0000000Z linting README.md with LINT_TOKEN=s3cr3t-value\n" +
			"2019-05-15T15:21:11.0000000Z README.md:3: line too long (120 > 80)\n" +
			"2019-05-15T15:21:12.0000000Z ##[error]Process completed with exit code 1.\n"
		octo.Branches["main"] = head
		octo.Statuses[head] = []*github.RepoStatus{{Context: github.String("ci/jenkins"), State: github.String("success"),
			CreatedAt: ts("2020-10-05T16:30:00Z"), UpdatedAt: ts("2020-10-05T16:32:00Z")}}
		octo.CheckRuns[head] = []*github.CheckRun{{ID: github.Int64(11), Name: github.String("Octocoders-linter"), Status: github.String("completed"),
			Conclusion: github.String("failure"), App: &github.App{Slug: github.String("octocoders")}}}
		octo.Runs = []*github.WorkflowRun{{ID: github.Int64(900), WorkflowID: github.Int64(1), Name: github.String("test"), HeadSHA: github.String(head),
			HeadBranch: github.String("main"), Status: github.String("in_progress"), Event: github.String("push")}}
		octo.Jobs[900] = []*github.WorkflowJob{{ID: github.Int64(101), RunID: github.Int64(900), Name: github.String("build"), Status: github.String("queued")}}
		octo.Required["main"] = &github.RequiredStatusChecks{Contexts: []string{"ci/jenkins", "build"}}
	})
	return gh
}

// startCIBot runs the bot with the console, the GitHub webhook and the
// ci-status plugin pointed at gh with its token, whose room ci hears of
// Hello-World.
func startCIBot(t *testing.T, gh *ghfake.Server) (*console, func(event, id string, body []byte), func(*console) *console) {
	t.Helper()
	t.Setenv("CHIMA_TEST_CI_TOKEN", "gh-token")
	c, deliver, kill9, _ := startCIBotAuth(t, gh, "{GITHUB_TOKEN: CHIMA_TEST_CI_TOKEN}", "")
	return c, deliver, kill9
}

// ciBotConfig writes the chima.yaml of startCIBotAuth, and returns it and
// the HTTP address.
func ciBotConfig(t *testing.T, gh *ghfake.Server, secrets, settings string) (cfg, addr string) {
	t.Helper()
	plugin := ciStatusPlugin(t)
	addr = freePort(t)
	cfg = writeConfig(t, fmt.Sprintf("http:\n  addr: %s\nwebhooks:\n  github: {secret_env: CHIMA_TEST_HOOK_SECRET}\n", addr))
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	entry := fmt.Sprintf(`  - name: cistatus
    path: %s
    secrets: %s
    settings:
      github_api_url: %s
%s      subscriptions:
        - {repo: Codertocat/Hello-World, room: ci}
roles:`, plugin, secrets, gh.URL(), settings)
	if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), "roles:", entry, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, addr
}

// startCIBotAuth is startCIBot with the plugin's secrets (a YAML map) and
// more settings (lines indented six spaces); it returns the config too.
func startCIBotAuth(t *testing.T, gh *ghfake.Server, secrets, settings string) (*console, func(event, id string, body []byte), func(*console) *console, string) {
	t.Helper()
	cfg, addr := ciBotConfig(t, gh, secrets, settings)
	deliver := ciDeliverer(t, cfg, addr)
	c := startConsole(t, cfg)
	waitForHealthz(t, addr)
	// kill9 kills the bot with -9 and starts it again on the same store.
	kill9 := func(c *console) *console {
		_ = c.cmd.Process.Kill()
		_ = c.cmd.Wait()
		c = startConsole(t, cfg)
		waitForHealthz(t, addr)
		return c
	}
	return c, deliver, kill9, cfg
}

// ciDeliverer sets the GitHub webhook secret of ciBotConfig's bot and
// returns what delivers a signed event to it and waits until it is handled.
func ciDeliverer(t *testing.T, cfg, addr string) func(event, id string, body []byte) {
	t.Helper()
	const secret = "ci e2e secret"
	t.Setenv("CHIMA_TEST_HOOK_SECRET", secret)
	send := githubDeliverer(t, "http://"+addr+"/webhooks/github", secret)
	return func(event, id string, body []byte) {
		t.Helper()
		send(event, id, body)
		// Deliveries are answered before plugins take them, and the
		// queue hands them in no promised order: wait for this one, as
		// GitHub's would arrive one after the other.
		deliveryHandled(t, cfg, id)
	}
}

func TestCIStatusTurnsSignedWebhooksIntoOneEditedMessageWithThreadRepliesOnTransitions(t *testing.T) {
	gh := ciGitHub(t)
	c, deliver, _ := startCIBot(t, gh)
	failure, err := os.ReadFile("../../core/webhook/testdata/github/check_run.failure.json")
	if err != nil {
		t.Fatal(err)
	}
	success, err := os.ReadFile("../../core/webhook/testdata/github/check_run.json")
	if err != nil {
		t.Fatal(err)
	}

	// GitHub's own failed check run: one message, with the digest.
	deliver("check_run", "ci-e2e-1", failure)
	lines := c.readLinesUntil(t, "line too long (120 > 80)")
	first := lineIndex(lines, "[ci] chima: Codertocat/Hello-World #2 @ ec26c3e: failing")
	if first < 0 {
		t.Fatalf("no failure message in the ci room:\n%s", strings.Join(lines, "\n"))
	}
	text := strings.Join(lines[first:], "\n")
	for _, want := range []string{
		"✗ Octocoders-linter: failure",
		"Failed: CI / Octocoders-linter, at step “Run linter”",
		"README.md:3: line too long",
		"LINT_TOKEN=[redacted]",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the message lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "s3cr3t-value") {
		t.Errorf("the digest shows a secret:\n%s", text)
	}
	if strings.Count(text, "Process completed with exit code") > 1 {
		t.Errorf("the generic annotation is shown:\n%s", text)
	}

	// The same failure again (another delivery of it), then green: one
	// edit of the message for the fix, and one thread reply.
	deliver("check_run", "ci-e2e-2", failure)
	deliver("check_run", "ci-e2e-3", success)
	lines = c.readLinesUntilAll(t, "Fixed: Codertocat/Hello-World #2 at ec26c3e", "chima (edit b1): Codertocat/Hello-World #2 @ ec26c3e: green")
	edits, posts, replies := countCIOutput(lines)
	if edits != 1 || posts != 0 || replies != 1 {
		t.Fatalf("after a repeated failure and the fix: %d edits, %d posts, %d thread replies (want 1, 0, 1):\n%s", edits, posts, replies, strings.Join(lines, "\n"))
	}

	// Red again: the message is edited and the thread hears it broke.
	deliver("check_run", "ci-e2e-4", failure)
	lines = c.readLinesUntilAll(t, "Broken: Codertocat/Hello-World #2 at ec26c3e, pushed by Codertocat", "chima (edit b1): Codertocat/Hello-World #2 @ ec26c3e: failing")
	if edits, posts, replies := countCIOutput(lines); edits != 1 || posts != 0 || replies != 1 {
		t.Fatalf("the break made %d edits, %d posts, %d thread replies (want 1, 0, 1):\n%s", edits, posts, replies, strings.Join(lines, "\n"))
	}

	// And `ci` answers the rollup from GitHub.
	c.say(t, "chima ci octo-org/octo-repo")
	lines = c.readLinesUntil(t, "Still going:")
	text = strings.Join(lines, "\n")
	for _, want := range []string{
		"octo-org/octo-repo main @ aaaaaaa: failing",
		"✓ ci/jenkins: success in 2m00s (required)",
		"○ test / build: queued (required)",
		"✗ Octocoders-linter: failure",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("the rollup lacks %q:\n%s", want, text)
		}
	}
}

// readLinesUntilAll reads the console's output lines until each of wants
// has been seen on some line, and returns them.
func (c *console) readLinesUntilAll(t *testing.T, wants ...string) []string {
	t.Helper()
	var lines []string
	seen := map[string]bool{}
	for len(seen) < len(wants) {
		var missing string
		for _, w := range wants {
			if !seen[w] {
				missing = w
				break
			}
		}
		lines = append(lines, c.readLinesUntil(t, missing)...)
		for _, w := range wants {
			if lineIndex(lines, w) >= 0 {
				seen[w] = true
			}
		}
	}
	return lines
}

// countCIOutput counts the bot's edits, new top-level posts and thread
// replies in the ci room among lines.
func countCIOutput(lines []string) (edits, posts, replies int) {
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "[ci] chima (edit "):
			edits++
		case strings.HasPrefix(l, "[ci] chima:"):
			posts++
		case strings.HasPrefix(l, "[ci ↳ ") && strings.Contains(l, "] chima:"):
			replies++
		}
	}
	return edits, posts, replies
}

// A commit's CI state lives in the store, not the plugin's memory: a bot
// killed with -9 after a failure and started again still knows the commit
// was failing, so the fix is a transition ("Fixed") in the failure's thread.
func TestCIStatusRemembersACommitsStateAcrossAKill9OfTheBot(t *testing.T) {
	gh := ciGitHub(t)
	c, deliver, kill9 := startCIBot(t, gh)
	failure, err := os.ReadFile("../../core/webhook/testdata/github/check_run.failure.json")
	if err != nil {
		t.Fatal(err)
	}
	success, err := os.ReadFile("../../core/webhook/testdata/github/check_run.json")
	if err != nil {
		t.Fatal(err)
	}
	deliver("check_run", "ci-kill-1", failure)
	c.readLinesUntil(t, "line too long (120 > 80)")

	c = kill9(c)
	deliver("check_run", "ci-kill-2", success)
	c.readLinesUntil(t, "Fixed: Codertocat/Hello-World #2 at ec26c3e")
}

// TestCIStatusAsAGitHubAppValidatesItsSettingsAndAnswersWithOneInstallationToken
// runs the built bot with the ci-status plugin authenticated as a GitHub
// App of the fake: chima config validate names the key a half-configured
// app lacks, and then `ci`, twice, exchanges the app's JWT for one
// installation token, which the fake checks on every call.
func TestCIStatusAsAGitHubAppValidatesItsSettingsAndAnswersWithOneInstallationToken(t *testing.T) {
	gh := ciGitHub(t)
	key := gh.InstallApp(4242, 77)
	t.Setenv("CHIMA_TEST_CI_APP_KEY", string(key))
	t.Setenv("CHIMA_TEST_HOOK_SECRET", "ci e2e secret")
	const secrets = "{GITHUB_APP_PRIVATE_KEY: CHIMA_TEST_CI_APP_KEY}"

	half, _ := ciBotConfig(t, gh, secrets, "      github_app_id: 4242\n")
	_, stderr, code := chima(t, "config", "validate", "--config", half)
	// A missing key is placed at the settings it belongs in.
	if want := fmt.Sprintf("plugin cistatus: %s:%d: settings.github_installation_id: is required for a GitHub App", half, lineOf(t, half, "settings:")); code != 1 || !strings.Contains(stderr, want) {
		t.Fatalf("config validate of an app without its installation: exit %d\n%s", code, stderr)
	}
	if strings.Contains(stderr, "PRIVATE KEY") {
		t.Fatalf("config validate shows the private key:\n%s", stderr)
	}

	c, _, kill9, _ := startCIBotAuth(t, gh, secrets, "      github_app_id: 4242\n      github_installation_id: 77\n")
	for i := range 2 {
		c.say(t, "chima ci octo-org/octo-repo")
		lines := c.readLinesUntil(t, "Still going:")
		text := strings.Join(lines, "\n")
		for _, want := range []string{"octo-org/octo-repo main @ aaaaaaa: failing", "✓ ci/jenkins: success in 2m00s (required)"} {
			if !strings.Contains(text, want) {
				t.Errorf("ci #%d through the app lacks %q:\n%s", i+1, want, text)
			}
		}
		if strings.Contains(text, "PRIVATE KEY") || strings.Contains(text, "ghs_") {
			t.Errorf("the chat shows a credential:\n%s", text)
		}
	}
	calls, _ := gh.Calls()
	if n := gh.TokenExchanges(); n != 1 {
		t.Errorf("%d installation tokens for %d calls; want one, kept:\n%s", n, len(calls), strings.Join(calls, "\n"))
	}

	// A kill -9 loses the token with the plugin's memory (it is never
	// stored): the restarted bot signs in again and answers as before.
	c = kill9(c)
	c.say(t, "chima ci octo-org/octo-repo")
	if text := strings.Join(c.readLinesUntil(t, "Still going:"), "\n"); !strings.Contains(text, "octo-org/octo-repo main @ aaaaaaa: failing") {
		t.Errorf("ci after a kill -9 of the bot:\n%s", text)
	}
	if n := gh.TokenExchanges(); n != 2 {
		t.Errorf("%d installation tokens after the restart; want a second one", n)
	}
}

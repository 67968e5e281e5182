package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v57/github"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
	"github.com/chimaops/chima/plugins/cistatus/ghfake"
)

// The buttons of a deployment, end to end: chima's own wiring of config,
// store, policy and plugin host (newApp), the built deploy plugin in its own
// process over the real protocol, and an in-memory chat service that renders
// buttons and clicks them as a person would. The shipped binary has no chat
// service with buttons yet (the Slack and Mattermost adapters bring them,
// with their own click tests through bin/chima); the adapter is the one
// thing here that is not what an operator runs.
func TestDeployButtonsEndToEnd(t *testing.T) {
	repo, marks, _ := gitRepo(t)
	apps := fmt.Sprintf(`{"demo": {"provider": "shell", "repository": %q, "environments": ["staging"], "allowed_rooms": ["deployment"]}}`, repo)
	// alice is admin (writeConfig); bob holds nothing.
	cfg, _, _ := deployConfig(t, "", apps, nil)
	a, mem := runWithButtons(t, cfg)

	say := func(user, text string) {
		mem.Inject(chat.Message{Ref: chat.MessageRef{Room: "deployment"}, User: chat.User{ID: user, Name: user}, Text: text})
	}
	// waitFor waits for a message (or edit) whose text contains every want.
	waitFor := func(want ...string) chattest.Sent {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
		next:
			for _, s := range mem.Sent() {
				for _, w := range want {
					if !strings.Contains(s.Out.PlainText(), w) {
						continue next
					}
				}
				return s
			}
			time.Sleep(50 * time.Millisecond)
		}
		var said []string
		for _, s := range mem.Sent() {
			said = append(said, s.Out.PlainText())
		}
		t.Fatalf("the bot never said all of %q; it said:\n%s", want, strings.Join(said, "\n---\n"))
		return chattest.Sent{}
	}
	click := func(s chattest.Sent, label, user string) {
		t.Helper()
		for _, b := range s.Out.Buttons {
			if b.Label == label {
				mem.Click(chat.Interaction{Ref: s.Ref, User: chat.User{ID: user, Name: user}, ActionID: b.ActionID, Value: b.Value})
				return
			}
		}
		t.Fatalf("no %q button on %q (buttons %+v)", label, s.Out.PlainText(), s.Out.Buttons)
	}

	// A slow deployment shows its progress with a Cancel button.
	say("alice", "chima deploy demo/slow to staging")
	progress := waitFor("Deploying…")
	if b := progress.Out.Buttons; len(b) != 1 || b[0].ActionID != "chima.act:deploy:cancel" || b[0].Value != "1" {
		t.Fatalf("progress buttons = %+v, want Cancel of #1", b)
	}
	// bob may not cancel: he is told so alone, and it goes on.
	click(progress, "Cancel", "bob")
	if s := waitFor("you need the deploy permission"); s.EphemeralTo != "bob" {
		t.Errorf("refusal %+v, want it shown to bob alone", s)
	}
	// alice may.
	click(progress, "Cancel", "alice")
	waitFor("Cancelling deployment #1")
	waitFor("Deployment #1 of demo/slow")
	waitFor("was cancelled after")

	// Two successes; the second offers to roll back to the first.
	say("alice", "chima deploy demo/main to staging")
	waitFor("Deployed demo/main")
	say("alice", "chima deploy demo/v2 to staging")
	success := waitFor("Deployed demo/v2")
	click(success, "Rollback", "alice")
	waitFor("Rolling demo in staging back from v2@")
	if s := waitFor("Deployed demo/", "(#4)"); len(s.Out.Buttons) != 0 {
		t.Errorf("a rollback's success offers %+v, want no buttons", s.Out.Buttons)
	}
	if mark, err := os.ReadFile(filepath.Join(marks, "4")); err != nil || !strings.Contains(string(mark), "DEPLOY_ENV=staging") {
		t.Errorf("the rollback did not run: %q %v", mark, err)
	}

	// The audit log says which requests were clicks, and on what.
	stopCtx, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	// An entry is written at the decision and its outcome filled after the
	// command: wait, bounded, until the three have ended as expected.
	want := []string{"alice rollback ok action", "alice cancel ok action", "bob cancel denied action"}
	var vias []string
	for stopCtx.Err() == nil {
		entries, err := a.store.Audit(stopCtx, 50)
		if err != nil {
			t.Fatal(err)
		}
		vias = vias[:0]
		for _, e := range entries {
			// Clicks only: the jobs they started are audited too.
			if strings.HasPrefix(e.Via, "button ") || strings.HasPrefix(e.Via, "action ") {
				vias = append(vias, e.UserID+" "+e.Command+" "+e.Outcome+" "+strings.Fields(e.Via)[0])
			}
		}
		if strings.Join(vias, ",") == strings.Join(want, ",") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Join(vias, ",") != strings.Join(want, ",") {
		t.Errorf("clicks audited = %q, want %q", vias, want)
	}
}

// The Rerun button of a ci rollup, end to end as TestDeployButtonsEndToEnd:
// the built ci-status plugin against a fake GitHub, clicked in an in-memory
// chat service. The click is checked and audited as ci:rerun, the command
// its action stands for: bob, who holds nothing, is refused and GitHub
// hears nothing; alice reruns the run.
func TestCIStatusRerunButtonEndToEnd(t *testing.T) {
	gh := ghfake.New(t.Cleanup, "gh-token")
	octo := gh.Repo("octo-org/octo-repo")
	head := strings.Repeat("a", 40)
	gh.Lock(func() {
		octo.Branches["main"] = head
		octo.Runs = []*github.WorkflowRun{{ID: github.Int64(900), WorkflowID: github.Int64(1), Name: github.String("test"), HeadSHA: github.String(head),
			HeadBranch: github.String("main"), Status: github.String("completed"), Conclusion: github.String("success"), Event: github.String("push")}}
		octo.Jobs[900] = []*github.WorkflowJob{{ID: github.Int64(101), RunID: github.Int64(900), Name: github.String("build"),
			Status: github.String("completed"), Conclusion: github.String("success")}}
	})
	t.Setenv("CHIMA_TEST_CI_TOKEN", "gh-token")
	t.Setenv("CHIMA_TEST_HOOK_SECRET", "buttons e2e secret")
	// alice is admin (writeConfig); bob holds nothing.
	cfg, _ := ciBotConfig(t, gh, "{GITHUB_TOKEN: CHIMA_TEST_CI_TOKEN}", "")
	a, mem := runWithButtons(t, cfg)

	waitFor := func(want string) chattest.Sent {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for time.Now().Before(deadline) {
			for _, s := range mem.Sent() {
				if strings.Contains(s.Out.PlainText(), want) {
					return s
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
		var said []string
		for _, s := range mem.Sent() {
			said = append(said, s.Out.PlainText())
		}
		t.Fatalf("the bot never said %q; it said:\n%s", want, strings.Join(said, "\n---\n"))
		return chattest.Sent{}
	}
	mem.Inject(chat.Message{Ref: chat.MessageRef{Room: "general"}, User: chat.User{ID: "alice", Name: "alice"}, Text: "chima ci octo-org/octo-repo"})
	rollup := waitFor("octo-org/octo-repo")
	var rerun *chat.Button
	for i, b := range rollup.Out.Buttons {
		if b.Label == "Rerun test" {
			rerun = &rollup.Out.Buttons[i]
		}
	}
	if rerun == nil || rerun.ActionID != "chima.act:cistatus:rerun" || rerun.Value != "octo-org/octo-repo#900" {
		t.Fatalf("the green run's buttons are %+v, want Rerun test of octo-org/octo-repo#900", rollup.Out.Buttons)
	}
	click := func(user string) {
		mem.Click(chat.Interaction{Ref: rollup.Ref, User: chat.User{ID: user, Name: user}, ActionID: rerun.ActionID, Value: rerun.Value})
	}

	click("bob")
	if s := waitFor("you need the ci:rerun permission"); s.EphemeralTo != "bob" {
		t.Errorf("refusal %+v, want it shown to bob alone", s)
	}
	if acts := gh.Actions(); len(acts) != 0 {
		t.Errorf("bob's refused click asked GitHub %v", acts)
	}
	click("alice")
	waitFor("Rerunning every job of run 900 of octo-org/octo-repo")
	if acts := gh.Actions(); strings.Join(acts, ",") != "rerun 900" {
		t.Errorf("alice's click asked GitHub %v, want rerun 900", acts)
	}

	// The audit: both clicks, as the rerun action, bob's denied.
	want := "alice rerun ok action,bob rerun denied action"
	var got []string
	deniedFor := ""
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		entries, err := a.store.Audit(context.Background(), 50)
		if err != nil {
			t.Fatal(err)
		}
		got = got[:0]
		for _, e := range entries {
			if strings.HasPrefix(e.Via, "action ") {
				got = append(got, e.UserID+" "+e.Command+" "+e.Outcome+" "+strings.Fields(e.Via)[0])
				if e.Outcome == "denied" {
					deniedFor = e.Detail
				}
			}
		}
		if strings.Join(got, ",") == want {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Join(got, ",") != want {
		t.Errorf("clicks audited = %q, want %q", got, want)
	}
	if !strings.Contains(deniedFor, "ci:rerun") {
		t.Errorf("bob's refusal is audited with %q, want the ci:rerun permission named", deniedFor)
	}
}

// runWithButtons runs the app of cfg, which it returns, with an in-memory chat that shows
// buttons, until the test ends. The adapter is named like the config's
// console ("shell"), so its roles and rooms apply.
func runWithButtons(t *testing.T, cfg string) (*app, *chattest.Memory) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := newApp(ctx, cfg, appOptions{withBot: true, logLevel: "error"})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	mem := chattest.NewMemory("shell")
	mem.SetButtons(true)
	a.bot.AddAdapter(mem)
	done := make(chan error, 1)
	go func() { done <- a.bot.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; a.close() })
	return a, mem
}

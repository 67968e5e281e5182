package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chimaops/chima/core/chat"
	"github.com/chimaops/chima/core/chat/chattest"
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
	ctx, cancel := context.WithCancel(context.Background())
	a, err := newApp(ctx, cfg, appOptions{withBot: true, logLevel: "error"})
	if err != nil {
		t.Fatal(err)
	}
	// The adapter is named like the config's, so roles and rooms apply.
	mem := chattest.NewMemory("shell")
	mem.SetButtons(true)
	a.bot.AddAdapter(mem)
	done := make(chan error, 1)
	go func() { done <- a.bot.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done; a.close() })

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

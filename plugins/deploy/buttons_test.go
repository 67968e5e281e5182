package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/sdktest"
)

// postedButton returns the button labelled label of the first post whose
// text contains text, and that post's output.
func postedButton(t *testing.T, h *sdktest.Harness, text, label string) (*sdk.Button, sdktest.Post) {
	t.Helper()
	for _, p := range h.Host.Posts() {
		if strings.Contains(p.Output.Text, text) {
			return sdktest.ButtonOf(p.Output, label), p
		}
	}
	t.Fatalf("no post contains %q:\n%s", text, posted(h))
	return nil, sdktest.Post{}
}

func TestButtonsAreCheckedAsTheCommandsTheyStandFor(t *testing.T) {
	h := newFixture(t, "").harness(t)
	commands := map[string]string{}
	for _, c := range h.Manifest.GetCommands() {
		commands[c.GetName()] = c.GetPermission()
	}
	tests := []struct{ action, command, permission string }{
		{actionCancel, "deploy:cancel", permissionDeploy},
		{actionRollback, "rollback", permissionRollback},
	}
	for _, tt := range tests {
		t.Run(tt.action, func(t *testing.T) {
			for _, a := range h.Manifest.GetActions() {
				if a.GetName() != tt.action {
					continue
				}
				if a.GetCommand() != tt.command || commands[a.GetCommand()] != tt.permission {
					t.Errorf("action %s stands for %q (permission %q), want %q needing %q", tt.action, a.GetCommand(), commands[a.GetCommand()], tt.command, tt.permission)
				}
				return
			}
			t.Errorf("the manifest declares no action %s", tt.action)
		})
	}
}

func TestDeployingProgressOffersCancelUntilTheDeploymentEnds(t *testing.T) {
	f := newFixture(t, "")
	git(t, f.repo, "checkout", "-q", "-b", "slowish", "main")
	write(t, filepath.Join(f.repo, "script/deploy"), "#!/bin/sh\necho first step\nsleep 3\necho last step\n", 0o755)
	git(t, f.repo, "commit", "-q", "-am", "slowish")
	git(t, f.repo, "checkout", "-q", "main")
	h := f.harness(t)
	h.Command("deploy", deployArgs("demo", "slowish", "staging"))
	res := h.RunEnqueued()
	if len(res) != 1 || len(res[0].Progress) < 2 {
		t.Fatalf("the deployment showed too little progress: %+v", res)
	}
	first, final := res[0].Progress[0].Output, res[0].Progress[len(res[0].Progress)-1].Output
	cancel := sdktest.ButtonOf(first, "Cancel")
	if first.Title != "Deploying…" || cancel.Action != actionCancel || cancel.Value != "1" {
		t.Fatalf("progress %q has buttons %v, want Cancel for #1", first.Title, first.Buttons)
	}
	if len(final.Buttons) != 0 {
		t.Errorf("the final progress still offers %v", final.Buttons)
	}
	// The button outlives the deployment: a late click says so.
	if msg := userError(h.Click(cancel, nil)); msg != "Deployment #1 already ended: success." {
		t.Errorf("late click on Cancel = %q", msg)
	}
}

func TestCancelButtonStopsAQueuedDeployment(t *testing.T) {
	f := newFixture(t, "")
	h := f.harness(t)
	h.Command("deploy", deployArgs("demo", "main", "staging"))
	h.User = &sdk.User{ID: "bob", Name: "Bob"}
	res := h.Click(sdk.ActionButton("Cancel", actionCancel, "1", "danger"), &sdk.MessageRef{Adapter: "test", Room: "deployment", MessageID: "p7"})
	if !strings.Contains(res.Text(), "Deployment #1 of demo/main to staging cancelled before it started") {
		t.Fatalf("click = %q %v", res.Text(), res.Errors)
	}
	h.RunEnqueued()
	if _, err := os.Stat(filepath.Join(f.marks, "1")); err == nil {
		t.Fatal("a cancelled deployment ran")
	}
	if st := h.Command("deploy:status", sdktest.Args{"id": "1"}); !strings.Contains(st.Text(), "bob") {
		t.Errorf("status does not say bob cancelled it: %q", st.Text())
	}
}

func TestDeployButtonsRefuseWhatTheirCommandsRefuse(t *testing.T) {
	f := newFixture(t, "")
	h := f.harness(t)
	h.Command("deploy", deployArgs("demo", "main", "staging"))
	tests := []struct {
		name   string
		button *sdk.Button
		room   string
		want   string
	}{
		{"cancel from a room the app may not be deployed from", sdk.ActionButton("Cancel", actionCancel, "1", ""), "general", "can't be deployed from general"},
		{"rollback from a room the app may not be deployed from", sdk.ActionButton("Rollback", actionRollback, "1", ""), "general", "can't be deployed from general"},
		{"a deployment that does not exist", sdk.ActionButton("Cancel", actionCancel, "99", ""), "test", "There is no deployment #99"},
		{"a value that is no deployment id", sdk.ActionButton("Cancel", actionCancel, "x", ""), "test", "That button no longer works."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := h.Click(tt.button, &sdk.MessageRef{Adapter: "test", Room: tt.room, MessageID: "p1"})
			if msg := userError(res); !strings.Contains(msg, tt.want) {
				t.Errorf("click = %q (replies %q), want %q", msg, res.Text(), tt.want)
			}
		})
	}
	if len(h.Host.Enqueued()) != 1 {
		t.Errorf("a refused click enqueued a job: %v", h.Host.Enqueued())
	}
}

func TestSuccessOffersRollbackWhileItIsWhatRuns(t *testing.T) {
	f := newFixture(t, "")
	h := f.harness(t)
	h.Command("deploy", deployArgs("demo", "main", "staging"))
	h.RunEnqueued()
	if b, _ := postedButton(t, h, "Deployed demo/main", "Rollback"); b != nil {
		t.Errorf("the first deployment offers a rollback to nothing: %v", b)
	}
	h.Command("deploy", deployArgs("demo", "feature-1", "staging"))
	h.RunEnqueued()
	rollback, post := postedButton(t, h, "Deployed demo/feature-1", "Rollback")
	if rollback.Action != actionRollback || rollback.Value != "2" {
		t.Fatalf("success of #2 offers %v, want Rollback of #2", rollback)
	}
	res := h.Click(rollback, &sdk.MessageRef{Adapter: "test", Room: "test", MessageID: "p9", ThreadID: post.Target.ThreadID})
	if !strings.Contains(res.Text(), "back from feature-1@"+f.feature[:7]+" (#2) to main@"+f.main[:7]+" (#1)") {
		t.Fatalf("click on Rollback = %q %v", res.Text(), res.Errors)
	}
	h.RunEnqueued()
	if !strings.Contains(f.mark(t, 3), "DEPLOY_SHA="+f.main) {
		t.Fatal("the Rollback button did not deploy the previous commit")
	}
	if b, _ := postedButton(t, h, "(#3)", "Rollback"); b != nil {
		t.Errorf("a rollback's success offers to roll it back: %v", b)
	}
	// #2 no longer runs: its button says so instead of rolling back #3.
	if msg := userError(h.Click(rollback, nil)); !strings.Contains(msg, "Deployment #2 is no longer what runs in staging: #3") {
		t.Errorf("second click = %q", msg)
	}
	if n := len(h.Host.Enqueued()); n != 3 {
		t.Errorf("%d jobs enqueued, want 3 (the stale click enqueues none)", n)
	}
}

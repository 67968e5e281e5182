package main

import (
	"strings"
	"testing"

	"github.com/google/go-github/v57/github"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/sdktest"
)

// autoApps is the apps file with auto-deploy of project-x's master to
// staging.
const autoApps = `{
  "project-x": {"provider": "shell", "repository": "octo-org/octo-repo", "environments": ["staging"], "notify_rooms": ["deployment"],
    "auto_deploy": {"branch": "master", "environment": "staging"}}
}`

// seedGreen gives commit c of master a required check ("test") in the
// state given, and the workflow run of runEvent.
func seedRequired(b *bed, c byte, required []string, conclusion string) {
	r := b.gh.Repo("octo-org/octo-repo")
	b.gh.Lock(func() {
		r.Required["master"] = &github.RequiredStatusChecks{Contexts: required}
		r.Runs = append(r.Runs, &github.WorkflowRun{ID: github.Int64(1000 + int64(c)), WorkflowID: github.Int64(2823525), Name: github.String("test"),
			HeadSHA: github.String(sha(c)), HeadBranch: github.String("master"), Status: github.String("completed"), Conclusion: github.String(conclusion)})
		r.Jobs[1000+int64(c)] = []*github.WorkflowJob{{ID: github.Int64(7000 + int64(c)), RunID: github.Int64(1000 + int64(c)), Name: github.String("test"),
			Status: github.String("completed"), Conclusion: github.String(conclusion)}}
	})
}

func TestAutoDeployFiresOnceWhenEveryRequiredCheckOfTheCommitIsGreen(t *testing.T) {
	tests := []struct {
		name     string
		required []string
		events   []string // conclusions of the commit's run, in delivery order
		runs     int
		told     string // what the room hears, "" for nothing but the deploy
	}{
		{"green: deploys once", []string{"test"}, []string{"success"}, 1, "Auto-deploying project-x aaaaaaa to staging: every required check of aaaaaaa on master is green, pushed by Codertocat."},
		{"the same green twice: once", []string{"test"}, []string{"success", "success"}, 1, "Auto-deploying"},
		{"out of order, green last: once", []string{"test"}, []string{"in_progress", "success", "queued"}, 1, "Auto-deploying"},
		{"red: refused", []string{"test"}, []string{"failure"}, 0, "Not auto-deploying project-x aaaaaaa to staging: not green: test / test (failure)."},
		{"a required check never reported: refused", []string{"test", "security-scan"}, []string{"success"}, 0, "required but not reported: security-scan"},
		{"no branch protection: every check must pass", nil, []string{"success"}, 1, "Auto-deploying"},
		{"no branch protection, a check red: refused", nil, []string{"failure"}, 0, "Not auto-deploying project-x aaaaaaa to staging: not green:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBedApps(t, autoApps, false, map[string]string{"auto_deploy_as": "alice"})
			final := tt.events[len(tt.events)-1]
			for _, e := range tt.events {
				if e == "success" || e == "failure" {
					final = e
				}
			}
			seedRequired(b, 'a', tt.required, final)
			for _, e := range tt.events {
				status, conclusion := "completed", e
				if e == "in_progress" || e == "queued" {
					status, conclusion = e, ""
				}
				b.event("workflow_run", runEvent(t, 'a', status, conclusion))
			}
			runs := b.h.Host.Runs()
			if len(runs) != tt.runs {
				t.Fatalf("%d deploys run, want %d: %v", len(runs), tt.runs, runs)
			}
			if tt.runs > 0 {
				r := runs[0]
				if r.Text != "deploy project-x/"+sha('a')+" to staging" || r.As != "alice" || r.Room.Room != "deployment" || r.Room.Adapter != "test" {
					t.Errorf("ran %q as %q in %v", r.Text, r.As, r.Room)
				}
				if !strings.Contains(r.Reason, "every required check of aaaaaaa on master is green") {
					t.Errorf("the audit's reason is %q", r.Reason)
				}
			}
			var said []string
			for _, p := range b.posts() {
				if p.Target.Room == "deployment" {
					said = append(said, p.Output.Text)
				}
			}
			if len(said) != 1 || !strings.Contains(said[0], tt.told) {
				t.Errorf("the room heard %q, want once %q", said, tt.told)
			}
		})
	}
}

func TestAutoDeployRefusedByTheDeployCommandTellsTheRoomWhy(t *testing.T) {
	b := newBedApps(t, autoApps, false, map[string]string{"auto_deploy_as": "alice"})
	seedRequired(b, 'a', []string{"test"}, "success")
	b.h.Host.RunResult = func(sdktest.CommandRun) sdk.RunResult {
		return sdk.RunResult{RequestID: "r1", Outcome: sdk.CommandDenied, Detail: "staging is locked by bob: testing the migration"}
	}
	b.event("workflow_run", runEvent(t, 'a', "completed", "success"))
	b.event("workflow_run", runEvent(t, 'a', "completed", "success"))
	if n := len(b.h.Host.Runs()); n != 1 {
		t.Fatalf("%d deploys asked, want 1: a refused deploy is not retried on every event", n)
	}
	posts := b.posts()
	last := posts[len(posts)-1].Output.Text
	if !strings.Contains(last, "The auto-deploy of project-x aaaaaaa to staging was refused: staging is locked by bob: testing the migration") {
		t.Errorf("the room last heard %q", last)
	}
}

func TestAutoDeployIsOffUnlessConfiguredAndNeverForPullRequests(t *testing.T) {
	b := newBed(t, false, nil)
	seedRequired(b, 'a', nil, "success")
	b.event("workflow_run", runEvent(t, 'a', "completed", "success"))
	if n := len(b.h.Host.Runs()); n != 0 {
		t.Fatalf("an app without auto_deploy was deployed %d times", n)
	}
	b = newBedApps(t, autoApps, false, map[string]string{"auto_deploy_as": "alice"})
	seedRequired(b, 'a', nil, "success")
	b.event("workflow_run", edited(t, "workflow_run.with-pull-requests.json", func(ev *github.WorkflowRunEvent) {
		ev.WorkflowRun.HeadSHA = github.String(sha('a'))
	}))
	if n := len(b.h.Host.Runs()); n != 0 {
		t.Fatalf("a pull request's green run was deployed %d times", n)
	}
}

func TestAutoDeployRefusesWhenTheRequiredChecksAreUnknown(t *testing.T) {
	tests := []struct {
		name    string
		noToken bool
		refusal int  // how GitHub answers reading master's protection
		bare    bool // master is protected but requires no status checks
		runs    int
		told    string
	}{
		{"a token without admin rights (404 Not Found): refused", false, 404, false, 0,
			"Not auto-deploying project-x aaaaaaa to staging: the required checks of master are unknown: GitHub answered 404 (Not Found) to reading the protection of master: the token needs admin rights"},
		{"an app without the Administration permission (403): refused", false, 403, false, 0,
			"Not auto-deploying project-x aaaaaaa to staging: the required checks of master are unknown: GitHub answered 403 (Resource not accessible by integration)"},
		{"GitHub not configured: refused", true, 0, false, 0,
			"Not auto-deploying project-x aaaaaaa to staging: the required checks of master are unknown: GitHub is not configured"},
		{"protected without required status checks: every check must pass", false, 0, true, 1, "Auto-deploying project-x aaaaaaa to staging"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBedApps(t, autoApps, tt.noToken, map[string]string{"auto_deploy_as": "alice"})
			seedRequired(b, 'a', nil, "success")
			r := b.gh.Repo("octo-org/octo-repo")
			b.gh.Lock(func() {
				delete(r.Required, "master")
				r.ProtectionRefusal = tt.refusal
				r.ProtectedWithoutChecks["master"] = tt.bare
			})
			b.event("workflow_run", runEvent(t, 'a', "completed", "success"))
			b.event("workflow_run", runEvent(t, 'a', "completed", "success"))
			if runs := b.h.Host.Runs(); len(runs) != tt.runs {
				t.Fatalf("%d deploys run, want %d: %v", len(runs), tt.runs, runs)
			}
			var said []string
			for _, p := range b.posts() {
				if p.Target.Room == "deployment" {
					said = append(said, p.Output.Text)
				}
			}
			if len(said) != 1 || !strings.Contains(said[0], tt.told) {
				t.Errorf("the room heard %q, want once %q", said, tt.told)
			}
		})
	}
}

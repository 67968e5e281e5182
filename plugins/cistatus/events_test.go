package main

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/google/go-github/v57/github"
)

// The workflow_run event is decoded without its repositories; what the
// plugin takes from it must be what go-github's whole event gives.
func TestAWorkflowRunDecodedLeanSaysWhatTheWholeEventSays(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
	}{
		{"GitHub's example", payload(t, "workflow_run.json")},
		{"with pull requests", payload(t, "workflow_run.with-pull-requests.json")},
		{"a bot's completed run", edited(t, "workflow_run.json", func(ev *github.WorkflowRunEvent) {
			ev.WorkflowRun.Status, ev.WorkflowRun.Conclusion = github.String("completed"), github.String("failure")
			ev.WorkflowRun.Actor = &github.User{Login: github.String("dependabot[bot]"), Type: github.String("Bot")}
		})},
		{"a run that names no actor: its sender", edited(t, "workflow_run.json", func(ev *github.WorkflowRunEvent) {
			ev.WorkflowRun.Actor, ev.WorkflowRun.TriggeringActor = nil, nil
			ev.Sender = &github.User{Login: github.String("renovate[bot]"), Type: github.String("Bot")}
		})},
		{"a run started by another than its actor", edited(t, "workflow_run.json", func(ev *github.WorkflowRunEvent) {
			ev.WorkflowRun.TriggeringActor = &github.User{Login: github.String("octo-bot[bot]")}
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var whole github.WorkflowRunEvent
			if err := json.Unmarshal(tt.payload, &whole); err != nil {
				t.Fatal(err)
			}
			run := whole.GetWorkflowRun()
			var prs []int
			for _, pr := range run.PullRequests {
				prs = append(prs, pr.GetNumber())
			}
			want := &delta{Repo: whole.GetRepo().GetFullName(), SHA: run.GetHeadSHA(), Branch: run.GetHeadBranch(),
				Event: run.GetEvent(), PRs: prs, Author: run.GetHeadCommit().GetAuthor().GetName(),
				Actor:  firstNonEmpty(run.GetTriggeringActor().GetLogin(), run.GetActor().GetLogin(), whole.GetSender().GetLogin()),
				Bot:    isBot(run.GetActor()) || isBot(run.GetTriggeringActor()),
				Checks: []check{fromWorkflowRun(run, whole.GetWorkflow().GetName())}}
			if want.Repo == "" || want.SHA == "" {
				t.Fatalf("the fixture names no repository or commit: %+v", want)
			}
			got, err := decodeEvent("github:workflow_run", tt.payload)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("decoded\n%+v\nwant\n%+v", got, want)
			}
		})
	}
}

// BenchmarkDecodeWorkflowRun decodes GitHub's example workflow_run event,
// the plugin's share of the CPU for each such delivery before the KV.
func BenchmarkDecodeWorkflowRun(b *testing.B) {
	raw := payload(b, "workflow_run.json")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeEvent("github:workflow_run", raw); err != nil {
			b.Fatal(err)
		}
	}
}

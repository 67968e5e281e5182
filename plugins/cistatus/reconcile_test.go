package main

import (
	"strings"
	"testing"

	"github.com/google/go-github/v57/github"
)

func TestThePollReconcilesAMissedWebhook(t *testing.T) {
	b := newBed(t, false, map[string]string{"subscriptions": helloSubs})
	if s := b.h.Manifest.GetSchedules(); len(s) != 1 || s[0].GetJobKind() != jobReconcile {
		t.Fatalf("schedules %v, want the reconcile poll", s)
	}
	b.event("workflow_run", runEvent(t, 'a', "in_progress", ""))
	if _, open := b.h.Host.KVValue("open/octo-org/octo-repo@" + sha('a')); !open {
		t.Fatalf("a running commit is not kept for the poll")
	}
	// The run ends, and its webhook never arrives.
	r := b.gh.Repo("octo-org/octo-repo")
	b.gh.Lock(func() {
		r.Runs = []*github.WorkflowRun{{ID: github.Int64(1000 + 'a'), WorkflowID: github.Int64(2823525), Name: github.String("test"),
			HeadSHA: github.String(sha('a')), HeadBranch: github.String("master"), Status: github.String("completed"), Conclusion: github.String("failure")}}
		r.Jobs[1000+'a'] = []*github.WorkflowJob{{ID: github.Int64(77), RunID: github.Int64(1000 + 'a'), Name: github.String("unit"),
			Status: github.String("completed"), Conclusion: github.String("failure"),
			Steps: []*github.TaskStep{{Name: github.String("go test"), Number: github.Int64(2), Conclusion: github.String("failure")}}}}
	})
	res := b.h.Job(jobReconcile, nil)
	if res.Done.Outcome != "success" && res.Done.Outcome != "" {
		t.Fatalf("the poll ended %s: %s", res.Done.Outcome, res.Done.Detail)
	}
	updates := b.h.Host.Updates()
	if len(updates) == 0 {
		t.Fatalf("the poll did not edit the message")
	}
	got := shown(updates[len(updates)-1].Output)
	for _, want := range []string{"octo-org/octo-repo master @ aaaaaaa: failing", "✗ test / unit: failure", "Failed: test / unit, at step “go test”"} {
		if !strings.Contains(got, want) {
			t.Errorf("after the poll the message lacks %q:\n%s", want, got)
		}
	}
	if _, open := b.h.Host.KVValue("open/octo-org/octo-repo@" + sha('a')); open {
		t.Errorf("an ended commit is still polled")
	}
}

package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-github/v57/github"

	"github.com/chimaops/chima/sdk/pluginv1"
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

func TestEveryOpenCommitIsPolledInTurnWhenThereAreMoreThanOnePollTakes(t *testing.T) {
	const open = 45 // more than two polls' worth
	b := newBed(t, false, map[string]string{"subscriptions": helloSubs})
	for n := range open {
		b.event("workflow_run", runEventN(t, n, "in_progress", 1))
	}
	if res, err := b.h.Host.KVList(context.Background(), &pluginv1.KVListRequest{Prefix: "open/"}); err != nil || len(res.GetKeys()) != open {
		t.Fatalf("%d open commits (%v), want %d", len(res.GetKeys()), err, open)
	}
	// polled runs one poll and returns the commits it read the statuses of.
	polled := func() map[string]bool {
		t.Helper()
		b.gh.ResetCalls()
		if res := b.h.Job(jobReconcile, nil); res.Done.Outcome != "success" && res.Done.Outcome != "" {
			t.Fatalf("the poll ended %s: %s", res.Done.Outcome, res.Done.Detail)
		}
		calls, _ := b.gh.Calls()
		got := map[string]bool{}
		for _, c := range calls {
			if sha, ok := strings.CutSuffix(strings.TrimPrefix(c, "GET /repos/octo-org/octo-repo/commits/"), "/status"); ok && len(sha) == 40 {
				got[sha] = true
			}
		}
		return got
	}
	seen := map[string]int{}
	for run := 1; run <= 3; run++ {
		got := polled()
		if len(got) != reconcilePerRun {
			t.Fatalf("poll %d read %d commits, want %d", run, len(got), reconcilePerRun)
		}
		for sha := range got {
			seen[sha]++
		}
		// Until each has had its turn, none is polled twice.
		if taken := run * reconcilePerRun; taken <= open {
			for sha, n := range seen {
				if n > 1 {
					t.Fatalf("after %d polls %s was polled %d times while others waited", run, short(sha), n)
				}
			}
		}
	}
	for n := range open {
		if sha := fmt.Sprintf("%040x", n); seen[sha] == 0 {
			t.Errorf("the open commit %s was never polled in 3 polls", short(sha))
		}
	}
}

func TestNextBatchGoesOnAfterTheCursorAndWrapsAround(t *testing.T) {
	keys := []string{"a", "b", "c", "d", "e"}
	tests := []struct {
		name, cursor string
		want         string
	}{
		{"no cursor yet: from the first", "", "a,b"},
		{"after the cursor", "b", "c,d"},
		{"wraps around", "d", "e,a"},
		{"the cursor's commit ended: from the next", "bb", "c,d"},
		{"past the last: from the first", "z", "a,b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(nextBatch(keys, tt.cursor, 2), ","); got != tt.want {
				t.Errorf("nextBatch after %q = %s, want %s", tt.cursor, got, tt.want)
			}
		})
	}
	if got := strings.Join(nextBatch(keys[:2], "a", 2), ","); got != "a,b" {
		t.Errorf("fewer keys than a batch: %s, want all", got)
	}
}

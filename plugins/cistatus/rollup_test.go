package main

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-github/v57/github"

	"github.com/chimaops/chima/sdk/sdktest"
)

// seedOctoRepo gives octo-org/octo-repo a head commit on main whose CI is
// in all three systems, and an older green commit.
func seedOctoRepo(b *bed) {
	a, old := sha('a'), sha('b')
	r := b.gh.Repo("octo-org/octo-repo")
	b.gh.Lock(func() {
		r.Branches["main"] = a
		r.Statuses[a] = []*github.RepoStatus{
			{Context: github.String("ci/jenkins"), State: github.String("success"), TargetURL: github.String("https://jenkins.example/job/1"),
				CreatedAt: ts("2020-10-05T16:30:00Z"), UpdatedAt: ts("2020-10-05T16:35:00Z")},
			{Context: github.String("ci/jenkins"), State: github.String("pending"), CreatedAt: ts("2020-10-05T16:30:00Z"), UpdatedAt: ts("2020-10-05T16:30:00Z")},
		}
		r.CheckRuns[a] = []*github.CheckRun{
			{ID: github.Int64(11), Name: github.String("Octocoders-linter"), Status: github.String("completed"), Conclusion: github.String("failure"),
				StartedAt: ts("2020-10-05T16:30:00Z"), CompletedAt: ts("2020-10-05T16:31:00Z"), HTMLURL: github.String("https://github.com/octo-org/octo-repo/runs/11"),
				App: &github.App{Slug: github.String("octocoders")}},
			// The Actions job "build" is a check run too, of the same id.
			{ID: github.Int64(101), Name: github.String("build"), Status: github.String("completed"), Conclusion: github.String("success"),
				App: &github.App{Slug: github.String("github-actions")}},
		}
		r.Runs = []*github.WorkflowRun{
			{ID: github.Int64(900), WorkflowID: github.Int64(1), Name: github.String("test"), HeadSHA: github.String(a), HeadBranch: github.String("main"),
				Status: github.String("in_progress"), Event: github.String("push"), RunStartedAt: ts("2020-10-05T16:33:00Z"), RunAttempt: github.Int(1),
				HTMLURL: github.String("https://github.com/octo-org/octo-repo/actions/runs/900")},
			{ID: github.Int64(800), WorkflowID: github.Int64(1), Name: github.String("test"), HeadSHA: github.String(old), HeadBranch: github.String("main"),
				Status: github.String("completed"), Conclusion: github.String("success")},
			{ID: github.Int64(801), WorkflowID: github.Int64(2), Name: github.String("docs"), HeadSHA: github.String(old), HeadBranch: github.String("main"),
				Status: github.String("completed"), Conclusion: github.String("skipped")},
		}
		r.Jobs[900] = []*github.WorkflowJob{
			{ID: github.Int64(101), RunID: github.Int64(900), Name: github.String("build"), Status: github.String("completed"), Conclusion: github.String("success"),
				StartedAt: ts("2020-10-05T16:33:00Z"), CompletedAt: ts("2020-10-05T16:34:02Z"), HTMLURL: github.String("https://github.com/octo-org/octo-repo/actions/runs/900/job/101")},
			{ID: github.Int64(102), RunID: github.Int64(900), Name: github.String("lint"), Status: github.String("in_progress"), StartedAt: ts("2020-10-05T16:35:00Z")},
		}
		r.Required["main"] = &github.RequiredStatusChecks{Contexts: []string{"ci/jenkins", "build", "deploy-preview"}}
		r.Pulls[12] = &github.PullRequest{Number: github.Int(12), Title: github.String("Faster builds"),
			Head: &github.PullRequestBranch{Ref: github.String("feature-1"), SHA: github.String(a)}, Base: &github.PullRequestBranch{Ref: github.String("main")}}
	})
}

func TestCIMergesStatusesCheckRunsAndWorkflowJobsIntoOneRollup(t *testing.T) {
	b := newBed(t, false, nil)
	seedOctoRepo(b)
	res := b.h.Command("ci", sdktest.Args{"target": "octo-org/octo-repo"})
	if len(res.Errors) > 0 || len(res.Replies) != 1 {
		t.Fatalf("ci: errors %v, replies %d", res.Errors, len(res.Replies))
	}
	got := shown(res.Replies[0])
	for _, want := range []string{
		"octo-org/octo-repo main @ aaaaaaa: failing",
		"✓ ci/jenkins: success in 5m00s (required) · [details](https://jenkins.example/job/1)",
		"✗ Octocoders-linter: failure in 1m00s · [details](https://github.com/octo-org/octo-repo/runs/11)",
		"● test: running for 7m00s · [details](https://github.com/octo-org/octo-repo/actions/runs/900)",
		"    ✓ test / build: success in 1m02s (required)",
		"    ● test / lint: running for 5m00s",
		"○ deploy-preview: expected, not reported yet (required)",
		"Still going: test (running), deploy-preview (queued)",
		"Last green commit of main: [bbbbbbb](" + strings.TrimSuffix(b.gh.URL(), "/"),
		"Required: ci/jenkins, build, deploy-preview",
		"[Cancel test]",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("the rollup lacks %q:\n%s", want, got)
		}
	}
	if strings.Count(got, "build:") != 1 {
		t.Errorf("the Actions job build is shown more than once (as its check run too):\n%s", got)
	}
	if strings.Contains(got, "pending") {
		t.Errorf("the older pending status of ci/jenkins is shown; the newest per context wins:\n%s", got)
	}
}

func TestCIAnswersForEveryKindOfTarget(t *testing.T) {
	tests := []struct {
		name    string
		noToken bool
		args    sdktest.Args
		want    string // in the reply or the error
	}{
		{"an app of the apps file", false, sdktest.Args{"target": "project-x"}, "octo-org/octo-repo main @ aaaaaaa: failing"},
		{"an app and a branch", false, sdktest.Args{"target": "project-x/main"}, "octo-org/octo-repo main @ aaaaaaa"},
		{"owner/repo and a SHA", false, sdktest.Args{"target": "octo-org/octo-repo/" + sha('a')}, "octo-org/octo-repo aaaaaaa @ aaaaaaa"},
		{"a pull request", false, sdktest.Args{"target": "project-x", "pr": "12"}, "octo-org/octo-repo #12 Faster builds @ aaaaaaa: failing"},
		{"an unknown pull request", false, sdktest.Args{"target": "project-x", "pr": "99"}, "GitHub answered 404 for the CI of octo-org/octo-repo #99"},
		{"an unknown app", false, sdktest.Args{"target": "nope"}, `I know no app "nope" (known apps: hello, local, project-x)`},
		{"an app not on GitHub", false, sdktest.Args{"target": "local"}, "local's repository (./repo) is not on GitHub"},
		{"an unknown branch", false, sdktest.Args{"target": "project-x/nope"}, "GitHub refused the CI of octo-org/octo-repo/nope"},
		{"no token", true, sdktest.Args{"target": "project-x"}, "GitHub is not configured for the CI plugin: give the cistatus plugin a token in chima.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBed(t, tt.noToken, nil)
			seedOctoRepo(b)
			res := b.h.Command("ci", tt.args)
			got := res.Text()
			for _, e := range res.Errors {
				got += "\n" + e.Summary + ": " + e.Detail
			}
			if len(res.Replies) > 0 {
				got += "\n" + res.Replies[0].Title
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("ci %v said:\n%s\nwant %q", tt.args, got, tt.want)
			}
		})
	}
}

func TestCIColdCostsAHandfulOfCallsAndWarmCostsNoQuota(t *testing.T) {
	b := newBed(t, false, nil)
	seedOctoRepo(b)
	b.h.Command("ci", sdktest.Args{"target": "project-x"})
	cold, _ := b.gh.Calls()
	// repo, ref, status, check runs, workflow runs, one run's jobs,
	// protection, the branch's runs for the last green commit.
	if len(cold) > 8 {
		t.Errorf("a cold ci made %d calls, more than 8:\n%s", len(cold), strings.Join(cold, "\n"))
	}
	b.gh.ResetCalls()
	b.h.Command("ci", sdktest.Args{"target": "project-x"})
	warm, notModified := b.gh.Calls()
	if notModified != len(warm) {
		t.Errorf("a warm ci made %d calls of which %d were answered 304 (free); every one should be:\n%s", len(warm), notModified, strings.Join(warm, "\n"))
	}
	// A change is seen at once: the ETag changes with the content.
	r := b.gh.Repo("octo-org/octo-repo")
	b.gh.Lock(func() {
		r.Jobs[900][1].Status, r.Jobs[900][1].Conclusion = github.String("completed"), github.String("success")
	})
	b.gh.ResetCalls()
	res := b.h.Command("ci", sdktest.Args{"target": "project-x"})
	if got := shown(res.Replies[0]); !strings.Contains(got, "✓ test / lint: success") {
		t.Errorf("after the job ended the rollup still shows:\n%s", got)
	}
	if _, nm := b.gh.Calls(); nm == 0 {
		t.Errorf("no call was answered from the cache after one resource changed")
	}
}

func TestCIReportsARateLimitWithItsResetTime(t *testing.T) {
	b := newBed(t, false, nil)
	seedOctoRepo(b)
	b.gh.RateLimit(time.Date(2030, 1, 2, 15, 4, 0, 0, time.UTC))
	res := b.h.Command("ci", sdktest.Args{"target": "project-x"})
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0].Summary, "GitHub's rate limit is used up (5000 requests an hour) until 15:04 UTC") {
		t.Fatalf("ci under a used-up rate limit said %v / %q", res.Errors, res.Text())
	}
}

func TestTheRollupSaysWhyTheRequiredChecksAreUnknown(t *testing.T) {
	tests := []struct {
		name    string
		refusal int
		want    string // "" for no word on protection
	}{
		{"a token without admin rights", 404, "GitHub answered 404 (Not Found) to reading the protection of main: the token needs admin rights on the repository"},
		{"an app without the Administration permission", 403, "GitHub answered 403 (Resource not accessible by integration) to reading the protection of main"},
		{"protection read", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBed(t, false, nil)
			seedOctoRepo(b)
			r := b.gh.Repo("octo-org/octo-repo")
			b.gh.Lock(func() { r.ProtectionRefusal = tt.refusal })
			res := b.h.Command("ci", sdktest.Args{"target": "project-x"})
			got := shown(res.Replies[0])
			if unknown := strings.Contains(got, "the required checks are unknown"); unknown != (tt.want != "") || !strings.Contains(got, tt.want) {
				t.Errorf("the rollup says:\n%s\nwant %q", got, tt.want)
			}
			if tt.want != "" && strings.Contains(got, "(required)") {
				t.Errorf("a check is marked required though protection could not be read:\n%s", got)
			}
		})
	}
}

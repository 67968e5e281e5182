package main

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-github/v57/github"

	"github.com/chimaops/chima/sdk"
)

// helloSubs subscribes room "ci" to Hello-World and room "builds" to
// octo-repo, in YAML, as an operator writes them in chima.yaml.
const helloSubs = `
- repo: hello
  room: ci
- repo: octo-org/octo-repo
  room: test:builds
`

// seedHelloJob gives the Actions job behind check_run.failure.json's check
// run (128620228, an Actions check run: the job has the same id) its steps,
// annotations and log.
func seedHelloJob(b *bed) {
	r := b.gh.Repo("Codertocat/Hello-World")
	var log strings.Builder
	for i := 1; i <= 30; i++ {
		fmt.Fprintf(&log, "2019-05-15T15:21:%02d.0000000Z line %d of the tests\n", i, i)
	}
	log.WriteString("2019-05-15T15:21:40.0000000Z deploy with token ghp_abcdefghijklmnopqrstuvwxyz0123456789 and DB_PASSWORD=hunter2\n")
	log.WriteString("2019-05-15T15:21:41.0000000Z --- FAIL: TestApp (0.01s)\n")
	log.WriteString("2019-05-15T15:21:42.0000000Z ##[error]Process completed with exit code 1.\n")
	log.WriteString("2019-05-15T15:21:43.0000000Z Post job cleanup.\n")
	b.gh.Lock(func() {
		r.Jobs[555] = []*github.WorkflowJob{{
			ID: github.Int64(128620228), RunID: github.Int64(555), Name: github.String("Octocoders-linter"), WorkflowName: github.String("CI"),
			Status: github.String("completed"), Conclusion: github.String("failure"),
			HTMLURL: github.String("https://github.com/Codertocat/Hello-World/actions/runs/555/job/128620228"),
			Steps: []*github.TaskStep{
				{Name: github.String("Set up job"), Number: github.Int64(1), Status: github.String("completed"), Conclusion: github.String("success")},
				{Name: github.String("Run tests"), Number: github.Int64(3), Status: github.String("completed"), Conclusion: github.String("failure")},
				{Name: github.String("Upload"), Number: github.Int64(4), Status: github.String("completed"), Conclusion: github.String("skipped")},
			},
		}}
		r.Annotations[128620228] = []*github.CheckRunAnnotation{
			{Path: github.String(".github"), AnnotationLevel: github.String("failure"), Message: github.String("Process completed with exit code 1.")},
			{Path: github.String("src/app.go"), StartLine: github.Int(12), AnnotationLevel: github.String("failure"), Message: github.String("expected 1, got 2")},
			{Path: github.String("src/app.go"), StartLine: github.Int(3), AnnotationLevel: github.String("warning"), Message: github.String("unused import")},
		}
		r.Logs[128620228] = log.String()
	})
}

func TestAFailedCheckRunPostsOneMessageWithItsDigestThenEditsItAndRepliesOnlyWhenFixed(t *testing.T) {
	b := newBed(t, false, map[string]string{"subscriptions": helloSubs})
	seedHelloJob(b)

	b.event("check_run", payload(t, "check_run.failure.json"))
	posts := b.posts()
	if len(posts) != 1 || posts[0].Target.Room != "ci" {
		t.Fatalf("a failed check run made %d posts (%v), want one in ci", len(posts), posts)
	}
	msg := shown(posts[0].Output)
	for _, want := range []string{
		"Codertocat/Hello-World #2 @ ec26c3e: failing",
		"✗ Octocoders-linter: failure",
		"Failed: CI / Octocoders-linter, at step “Run tests” · [log](https://github.com/Codertocat/Hello-World/actions/runs/555/job/128620228#step:3:1)",
		"src/app.go:12: expected 1, got 2",
		"--- FAIL: TestApp (0.01s)\n##[error]Process completed with exit code 1.\n```",
		"deploy with token [redacted] and DB_PASSWORD=[redacted]",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("the failure message lacks %q:\n%s", want, msg)
		}
	}
	for _, never := range []string{"hunter2", "ghp_abcdef", "unused import", "Post job cleanup", "line 12 of the tests"} {
		if strings.Contains(msg, never) {
			t.Errorf("the failure message shows %q:\n%s", never, msg)
		}
	}
	if lines := strings.Count(posts[0].Output.Code, "\n") + 1; lines > digestLogLines {
		t.Errorf("the log tail has %d lines, more than %d", lines, digestLogLines)
	}
	if strings.Count(msg, "Process completed with exit code") != 1 {
		t.Errorf("the generic annotation is shown besides the log's own line:\n%s", msg)
	}

	// The same delivery again (GitHub's redelivery, a retry): nothing new.
	b.event("check_run", payload(t, "check_run.failure.json"))
	if len(b.posts()) != 1 || len(b.h.Host.Updates()) != 0 {
		t.Fatalf("a repeated event made %d posts and %d edits, want 1 and 0", len(b.posts()), len(b.h.Host.Updates()))
	}

	// Green now: the message is edited, and the thread hears it is fixed.
	b.event("check_run", payload(t, "check_run.json"))
	updates := b.h.Host.Updates()
	if len(updates) != 1 || updates[0].Message.MessageID != "p1" && updates[0].Message.MessageID == "" {
		t.Fatalf("the success made %d edits (%v), want one of the first message", len(updates), updates)
	}
	if got := shown(updates[0].Output); !strings.Contains(got, "Codertocat/Hello-World #2 @ ec26c3e: green") || strings.Contains(got, "Failed:") {
		t.Errorf("the edited message shows:\n%s", got)
	}
	posts = b.posts()
	if len(posts) != 2 {
		t.Fatalf("after the fix %d posts, want the message and one thread reply", len(posts))
	}
	reply := posts[1]
	if reply.Target.ThreadID == "" || reply.Target.Room != "ci" {
		t.Errorf("the transition was not posted in the message's thread: %v", reply.Target)
	}
	if got := reply.Output.Text; !strings.HasPrefix(got, "Fixed: Codertocat/Hello-World #2 at ec26c3e, pushed by Codertocat") {
		t.Errorf("the thread reply says %q", got)
	}
}

// runEvent is workflow_run.json for another commit of master with the
// given conclusion (its run id follows the commit).
func runEvent(t *testing.T, commit byte, status, conclusion string, edit ...func(*github.WorkflowRunEvent)) []byte {
	return edited(t, "workflow_run.json", func(ev *github.WorkflowRunEvent) {
		ev.WorkflowRun.HeadSHA = github.String(sha(commit))
		ev.WorkflowRun.ID = github.Int64(1000 + int64(commit))
		ev.WorkflowRun.Status = github.String(status)
		ev.WorkflowRun.Conclusion = github.String(conclusion)
		if conclusion == "" {
			ev.WorkflowRun.Conclusion = nil
		}
		for _, e := range edit {
			e(ev)
		}
	})
}

func TestThreadRepliesComeOnlyOnTransitionsWhateverTheEventsOrder(t *testing.T) {
	type step struct {
		commit     byte
		conclusion string
		reply      string // the thread reply's start, "" for none
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"green, then red: broken", []step{{'a', "success", ""}, {'b', "failure", "Broken: octo-org/octo-repo master at bbbbbbb, pushed by Codertocat, authored by Matthias Fax. Failing: test."}}},
		{"red on red: still failing", []step{{'a', "success", ""}, {'b', "failure", "Broken"}, {'c', "failure", "Still failing: octo-org/octo-repo master at ccccccc"}}},
		{"red, then green: fixed", []step{{'a', "failure", ""}, {'b', "success", "Fixed: octo-org/octo-repo master at bbbbbbb"}}},
		{"green on green: quiet", []step{{'a', "success", ""}, {'b', "success", ""}, {'c', "success", ""}}},
		{"a repeated failure: one reply", []step{{'a', "success", ""}, {'b', "failure", "Broken"}, {'b', "failure", ""}}},
		{"an older commit's late result: quiet", []step{{'a', "success", ""}, {'b', "failure", "Broken"}, {'c', "success", "Fixed"}, {'b', "failure", ""}}},
		{"the first result ever: quiet", []step{{'a', "failure", ""}}},
		{"cancelled is no transition", []step{{'a', "success", ""}, {'b', "cancelled", ""}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBed(t, true, map[string]string{"subscriptions": helloSubs})
			replies := 0
			for i, s := range tt.steps {
				b.event("workflow_run", runEvent(t, s.commit, "completed", s.conclusion))
				var got []string
				for _, p := range b.posts() {
					if p.Target.ThreadID != "" {
						got = append(got, p.Output.Text)
					}
				}
				if s.reply == "" {
					if len(got) != replies {
						t.Fatalf("step %d (%c %s): an unexpected reply %q", i+1, s.commit, s.conclusion, got[len(got)-1])
					}
					continue
				}
				replies++
				if len(got) != replies || !strings.HasPrefix(got[len(got)-1], s.reply) {
					t.Fatalf("step %d (%c %s): replies %q, want the last to start %q", i+1, s.commit, s.conclusion, got, s.reply)
				}
			}
			// One message per commit, in the builds room.
			top := map[string]bool{}
			for _, p := range b.posts() {
				if p.Target.ThreadID == "" {
					if p.Target.Room != "builds" {
						t.Errorf("posted to %s", p.Target.Room)
					}
					top[p.Output.Title] = true
				}
			}
			commits := map[byte]bool{}
			for _, s := range tt.steps {
				commits[s.commit] = true
			}
			if len(top) != len(commits) {
				t.Errorf("%d messages for %d commits: %v", len(top), len(commits), top)
			}
		})
	}
}

func TestARunNamedByRunNameStillUpdatesItsMessage(t *testing.T) {
	b := newBed(t, true, map[string]string{"subscriptions": helloSubs})
	// run-name: the run's name and title are its own, not the workflow's.
	named := func(title string) func(*github.WorkflowRunEvent) {
		return func(ev *github.WorkflowRunEvent) {
			ev.WorkflowRun.Name, ev.WorkflowRun.DisplayTitle = github.String(title), github.String(title)
		}
	}
	b.event("workflow_run", runEvent(t, 'a', "queued", "", named("Deploy by @Codertocat")))
	b.event("workflow_run", runEvent(t, 'a', "in_progress", "", named("Deploy by @Codertocat")))
	b.event("workflow_run", runEvent(t, 'a', "completed", "success", named("Deploy by @Codertocat (done)")))
	if len(b.posts()) != 1 {
		t.Fatalf("%d posts, want one message", len(b.posts()))
	}
	updates := b.h.Host.Updates()
	if len(updates) != 2 {
		t.Fatalf("%d edits, want 2 (running, success)", len(updates))
	}
	last := shown(updates[len(updates)-1].Output)
	if !strings.Contains(last, "✓ test: success") || strings.Contains(last, "queued") || strings.Contains(last, "running") {
		t.Errorf("the run's message ended as:\n%s", last)
	}
}

func TestARunWhoseJobsWereAllSkippedIsNotAFailure(t *testing.T) {
	tests := []struct {
		name   string
		events func(t *testing.T, b *bed)
	}{
		{"the run's conclusion is skipped", func(t *testing.T, b *bed) {
			b.event("workflow_run", runEvent(t, 'b', "completed", "skipped"))
		}},
		{"the run failed, yet every job was skipped", func(t *testing.T, b *bed) {
			for i, name := range []string{"build", "deploy"} {
				b.event("workflow_job", jobEvent(t, 'b', int64(i+1), name, "completed", "skipped"))
			}
			b.event("workflow_run", runEvent(t, 'b', "completed", "failure"))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBed(t, true, map[string]string{"subscriptions": helloSubs})
			b.event("workflow_run", runEvent(t, 'a', "completed", "success"))
			tt.events(t, b)
			for _, p := range b.posts() {
				if s := shown(p.Output); strings.Contains(s, "failing") || strings.Contains(s, "Broken") {
					t.Errorf("a skipped run is shown as a failure:\n%s", s)
				}
			}
			for _, u := range b.h.Host.Updates() {
				if s := shown(u.Output); strings.Contains(s, "failing") {
					t.Errorf("a skipped run is shown as a failure:\n%s", s)
				}
			}
		})
	}
}

// jobEvent is a workflow_job event of the run of commit (see runEvent).
func jobEvent(t *testing.T, commit byte, id int64, name, status, conclusion string) []byte {
	t.Helper()
	ev := &github.WorkflowJobEvent{
		Action: github.String(status),
		WorkflowJob: &github.WorkflowJob{
			ID: github.Int64(id), RunID: github.Int64(1000 + int64(commit)), Name: github.String(name), WorkflowName: github.String("test"),
			HeadSHA: github.String(sha(commit)), HeadBranch: github.String("master"), Status: github.String(status), Conclusion: github.String(conclusion),
		},
		Repo:   &github.Repository{FullName: github.String("octo-org/octo-repo")},
		Sender: &github.User{Login: github.String("Codertocat"), Type: github.String("User")},
	}
	return mustJSON(t, ev)
}

func TestSubscriptionFiltersDecideWhoHears(t *testing.T) {
	bot := func(ev *github.WorkflowRunEvent) {
		ev.WorkflowRun.Actor = &github.User{Login: github.String("dependabot[bot]"), Type: github.String("Bot")}
		ev.WorkflowRun.TriggeringActor = ev.WorkflowRun.Actor
	}
	branch := func(name string) func(*github.WorkflowRunEvent) {
		return func(ev *github.WorkflowRunEvent) { ev.WorkflowRun.HeadBranch = github.String(name) }
	}
	event := func(name string) func(*github.WorkflowRunEvent) {
		return func(ev *github.WorkflowRunEvent) { ev.WorkflowRun.Event = github.String(name) }
	}
	tests := []struct {
		name       string
		sub        string // the subscription's filters, as JSON fields
		conclusion string
		edit       []func(*github.WorkflowRunEvent)
		heard      bool
	}{
		{"no filter", ``, "success", nil, true},
		{"a matching branch", `"branches": ["master"]`, "success", nil, true},
		{"another branch", `"branches": ["release/*"]`, "success", nil, false},
		{"a deeper branch of a glob", `"branches": ["release/*"]`, "success", []func(*github.WorkflowRunEvent){branch("release/1.2/hotfix")}, true},
		{"an excluded branch", `"branches": ["*", "!docs/*"]`, "success", []func(*github.WorkflowRunEvent){branch("docs/readme")}, false},
		{"an exclude alone lets the rest in", `"branches": ["!docs/*"]`, "success", nil, true},
		{"another workflow", `"workflows": ["lint"]`, "success", nil, false},
		{"the workflow", `"workflows": ["TEST"]`, "success", nil, true},
		{"another event", `"events": ["push"]`, "success", []func(*github.WorkflowRunEvent){event("schedule")}, false},
		{"the event", `"events": ["push", "schedule"]`, "success", []func(*github.WorkflowRunEvent){event("schedule")}, true},
		{"only failures, a success", `"only": "failures"`, "success", nil, false},
		{"only failures, a failure", `"only": "failures"`, "failure", nil, true},
		{"only transitions, the first result", `"only": "transitions"`, "failure", nil, false},
		{"a bot's run, bots ignored", `"ignore_bots": true`, "failure", []func(*github.WorkflowRunEvent){bot}, false},
		{"a bot's run, bots heard", ``, "failure", []func(*github.WorkflowRunEvent){bot}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := `{"repo": "project-x", "room": "builds"`
			if tt.sub != "" {
				sub += ", " + tt.sub
			}
			b := newBed(t, true, map[string]string{"subscriptions": "[" + sub + "}]"})
			b.event("workflow_run", runEvent(t, 'a', "completed", tt.conclusion, tt.edit...))
			if heard := len(b.posts()) > 0; heard != tt.heard {
				t.Errorf("heard %v, want %v (posts %v)", heard, tt.heard, b.posts())
			}
		})
	}
}

func TestOnlyTransitionsPostsTheBreakAloneInTheRoom(t *testing.T) {
	b := newBed(t, true, map[string]string{"subscriptions": `[{"repo": "project-x", "room": "builds", "only": "transitions"}]`})
	b.event("workflow_run", runEvent(t, 'a', "completed", "success"))
	b.event("workflow_run", runEvent(t, 'b', "completed", "failure"))
	posts := b.posts()
	if len(posts) != 1 || posts[0].Target.ThreadID != "" || !strings.HasPrefix(posts[0].Output.Text, "Broken:") {
		t.Fatalf("posts %v, want one top-level Broken", posts)
	}
}

func TestAForkPullRequestsSuiteIsMappedThroughItsPullRequestEvent(t *testing.T) {
	b := newBed(t, true, map[string]string{"subscriptions": helloSubs})
	head := sha('f')
	b.event("pull_request", mustJSON(t, &github.PullRequestEvent{
		Action: github.String("opened"), Number: github.Int(7),
		PullRequest: &github.PullRequest{Number: github.Int(7), Title: github.String("Fix typo"),
			Head: &github.PullRequestBranch{Ref: github.String("patch-1"), SHA: github.String(head)}, User: &github.User{Login: github.String("forker")}},
		Repo:   &github.Repository{FullName: github.String("Codertocat/Hello-World")},
		Sender: &github.User{Login: github.String("forker"), Type: github.String("User")},
	}))
	if len(b.posts()) != 0 {
		t.Fatalf("a pull request event alone posted %v", b.posts())
	}
	// A fork's suite carries no pull_requests.
	b.event("check_suite", edited(t, "check_suite.json", func(ev *github.CheckSuiteEvent) {
		ev.CheckSuite.HeadSHA, ev.CheckSuite.PullRequests = github.String(head), nil
		ev.CheckSuite.HeadBranch = github.String("patch-1")
	}))
	posts := b.posts()
	if len(posts) != 1 || !strings.Contains(posts[0].Output.Title, "Codertocat/Hello-World #7 Fix typo @ fffffff: green") {
		t.Fatalf("posts %v, want the message of pull request #7", posts)
	}
	if got := posts[0].Output.Text; !strings.Contains(got, "Pushed by forker") {
		t.Errorf("the message does not say who pushed: %s", got)
	}
}

func TestALateStartOfACheckNeverUndoesItsEnd(t *testing.T) {
	b := newBed(t, true, map[string]string{"subscriptions": helloSubs})
	b.event("check_run", payload(t, "check_run.failure.json"))
	b.event("check_run", edited(t, "check_run.failure.json", func(ev *github.CheckRunEvent) {
		ev.Action, ev.CheckRun.Status, ev.CheckRun.Conclusion = github.String("created"), github.String("in_progress"), nil
	}))
	if n := len(b.h.Host.Updates()); n != 0 {
		t.Fatalf("a late in_progress edited the failed check's message %d times: %v", n, b.h.Host.Updates())
	}
}

func TestStatusAndSuitePayloadsPostTheirCommit(t *testing.T) {
	tests := []struct{ event, file, want string }{
		{"status", "status.json", "Codertocat/Hello-World 6113728 @ 6113728: green"},
		{"status", "status.with-author-committer-null.json", "@ 6113728: green"},
		{"check_suite", "check_suite.json", "Codertocat/Hello-World #2 @ ec26c3e: green"},
		{"workflow_run", "workflow_run.with-pull-requests.json", "octo-org/octo-repo #2 @ 3484a3f: green"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b := newBed(t, true, map[string]string{"subscriptions": helloSubs})
			b.event(tt.event, payload(t, tt.file))
			posts := b.posts()
			if len(posts) != 1 || !strings.Contains(posts[0].Output.Title, tt.want) {
				t.Fatalf("posts %v, want one titled %q", posts, tt.want)
			}
		})
	}
	// A push of a tag deletion says nothing.
	b := newBed(t, true, map[string]string{"subscriptions": helloSubs})
	b.event("push", payload(t, "push.json"))
	b.event("push", payload(t, "push.with-new-branch.json"))
	if len(b.posts()) != 0 {
		t.Fatalf("pushes posted %v", b.posts())
	}
}

func TestAPullRequestsMessageFollowsItsNewHeadAndIgnoresTheOldOnesLateEvents(t *testing.T) {
	b := newBed(t, true, map[string]string{"subscriptions": helloSubs})
	opened := func(action string, head byte) []byte {
		return mustJSON(t, &github.PullRequestEvent{
			Action: github.String(action), Number: github.Int(2),
			PullRequest: &github.PullRequest{Number: github.Int(2), Title: github.String("Update README"),
				Head: &github.PullRequestBranch{Ref: github.String("changes"), SHA: github.String(sha(head))}},
			Repo:   &github.Repository{FullName: github.String("Codertocat/Hello-World")},
			Sender: &github.User{Login: github.String("Codertocat"), Type: github.String("User")},
		})
	}
	check := func(head byte, id int64, conclusion string) []byte {
		return edited(t, "check_run.json", func(ev *github.CheckRunEvent) {
			ev.CheckRun.HeadSHA, ev.CheckRun.ID, ev.CheckRun.Conclusion = github.String(sha(head)), github.Int64(id), github.String(conclusion)
		})
	}
	b.event("pull_request", opened("opened", '1'))
	b.event("check_run", check('1', 1, "failure"))
	b.event("pull_request", opened("synchronize", '2'))
	b.event("check_run", check('2', 2, "success"))
	before := len(b.h.Host.Updates())
	b.event("check_run", check('1', 1, "failure")) // the old head's late redelivery
	if len(b.posts()) != 2 {
		t.Fatalf("posts %d, want the PR's one message and one Fixed reply", len(b.posts()))
	}
	updates := b.h.Host.Updates()
	if len(updates) != before {
		t.Fatalf("the old head's late event edited the message: %s", shown(updates[len(updates)-1].Output))
	}
	if got := updates[len(updates)-1].Output.Title; !strings.Contains(got, "#2 Update README @ 2222222: green") {
		t.Errorf("the PR's message ends as %q", got)
	}
}

func TestAStatusOfAPullRequestsCommitJoinsThePullRequestsMessage(t *testing.T) {
	b := newBed(t, true, map[string]string{"subscriptions": helloSubs})
	b.event("check_run", payload(t, "check_run.json"))
	// Statuses never name a pull request.
	b.event("status", edited(t, "status.json", func(ev *github.StatusEvent) {
		ev.SHA, ev.State = github.String("ec26c3e57ca3a959ca5aad62de7213c562f8c821"), github.String("failure")
		ev.Context = github.String("ci/travis")
	}))
	posts := b.posts()
	if len(posts) != 2 || posts[1].Target.ThreadID == "" || !strings.HasPrefix(posts[1].Output.Text, "Broken: Codertocat/Hello-World #2") {
		t.Fatalf("posts %v, want the pull request's one message and a Broken reply in its thread", posts)
	}
	updates := b.h.Host.Updates()
	if len(updates) != 1 || !strings.Contains(shown(updates[0].Output), "#2 @ ec26c3e: failing\n") || !strings.Contains(shown(updates[0].Output), "✗ ci/travis: failure") {
		t.Fatalf("updates %v, want the PR's message failing on ci/travis", updates)
	}
}

func TestTheCommitAuthorIsMentionedThroughThePeopleMap(t *testing.T) {
	b := newBed(t, true, map[string]string{"subscriptions": helloSubs, "people": "Codertocat: alice\n"})
	b.event("workflow_run", runEvent(t, 'a', "completed", "success"))
	b.event("push", edited(t, "push.with-new-branch.json", func(ev *github.PushEvent) {
		ev.After, ev.Ref = github.String(sha('b')), github.String("refs/heads/master")
		ev.Repo.FullName = github.String("octo-org/octo-repo")
		ev.HeadCommit.Author.Login = github.String("matfax")
	}))
	b.event("workflow_run", runEvent(t, 'b', "completed", "failure"))
	posts := b.posts()
	reply := posts[len(posts)-1].Output
	if want := "Broken: octo-org/octo-repo master at bbbbbbb, pushed by " + sdk.MentionPerson("alice") + ", authored by matfax."; !strings.HasPrefix(reply.Text, want) {
		t.Errorf("the reply says %q, want it to start %q", reply.Text, want)
	}
	if got := reply.Mentions(); !slices.Equal(got, []string{"alice"}) {
		t.Errorf("the reply mentions %q, want [alice], pinged", got)
	}
	// The room's message, edited as runs go, names the pusher without a
	// ping: the thread reply is the one that notifies.
	notice := posts[len(posts)-2].Output
	if !strings.Contains(shown(notice), "Pushed by alice ·") || len(notice.Mentions()) > 0 {
		t.Errorf("the room's message is %q with mentions %q, want the pusher named without a ping", shown(notice), notice.Mentions())
	}
}

func TestNextLineageNamesTheTransition(t *testing.T) {
	tests := []struct {
		name    string
		l       lineage
		sha, st string
		word    string
		changed bool
	}{
		{"nothing before", lineage{}, "a", stateFailure, "", true},
		{"green to red", lineage{State: stateSuccess, SHA: "a", History: []string{"a"}}, "b", stateFailure, "Broken", true},
		{"red to red on another commit", lineage{State: stateFailure, SHA: "a", History: []string{"a"}}, "b", stateFailure, "Still failing", true},
		{"red to red on the same commit", lineage{State: stateFailure, SHA: "a", History: []string{"a"}}, "a", stateFailure, "", false},
		{"red to green", lineage{State: stateFailure, SHA: "a", History: []string{"a"}}, "b", stateSuccess, "Fixed", true},
		{"a rerun fixes the same commit", lineage{State: stateFailure, SHA: "a", History: []string{"a"}}, "a", stateSuccess, "Fixed", true},
		{"an older commit's late result", lineage{State: stateSuccess, SHA: "b", History: []string{"a", "b"}}, "a", stateFailure, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			word, next, changed := nextLineage(tt.l, tt.sha, tt.st)
			if word != tt.word || changed != tt.changed {
				t.Errorf("nextLineage = %q, %v; want %q, %v", word, changed, tt.word, tt.changed)
			}
			if changed && (next.SHA != tt.sha || next.State != tt.st || next.History[len(next.History)-1] != tt.sha) {
				t.Errorf("next lineage %+v", next)
			}
		})
	}
}

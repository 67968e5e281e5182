package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/google/go-github/v57/github"
)

// delta is what one webhook event says about one commit.
type delta struct {
	Repo, SHA, Branch string
	PRs               []int
	PRTitle           string
	Checks            []check
	// Pusher is who pushed (a push event), Actor who started the runs.
	Pusher, Actor string
	// Author is the commit author's GitHub login when known, else name.
	Author string
	// Event is what started the runs: push, pull_request, schedule, …
	Event string
	// Bot is set when a bot pushed or started the runs.
	Bot bool
	// Steps are the steps of a workflow_job event's job, by check key.
	Steps map[string][]*github.TaskStep
	// Output is a check run's output (title, summary), by check key.
	Output map[string]string
	// Push and PullRequest mark those events: they record who pushed and
	// which pull request a commit belongs to, and set a PR's head.
	Push, PullRequest bool
}

// decodeEvent reads a webhook event of type typ ("github:check_run") into
// a delta; nil for an event that says nothing about CI (a deleted branch, a
// closed pull request).
func decodeEvent(typ string, payload []byte) (*delta, error) {
	name := strings.TrimPrefix(typ, "github:")
	unmarshal := func(v any) error {
		if err := json.Unmarshal(payload, v); err != nil {
			return fmt.Errorf("decode %s event: %w", name, err)
		}
		return nil
	}
	switch name {
	case "status":
		var ev github.StatusEvent
		if err := unmarshal(&ev); err != nil {
			return nil, err
		}
		d := &delta{Repo: ev.GetRepo().GetFullName(), SHA: ev.GetSHA(), Actor: ev.GetSender().GetLogin(), Bot: isBot(ev.GetSender())}
		for _, b := range ev.Branches {
			if b.GetCommit().GetSHA() == d.SHA {
				d.Branch = b.GetName()
				break
			}
		}
		d.Author = firstNonEmpty(ev.GetCommit().GetAuthor().GetLogin(), ev.GetCommit().GetCommit().GetAuthor().GetName())
		d.Checks = []check{fromStatus(ev.GetContext(), ev.GetState(), ev.GetTargetURL(), ev.GetCreatedAt().Time, ev.GetUpdatedAt().Time)}
		return d, nil
	case "check_run":
		var ev github.CheckRunEvent
		if err := unmarshal(&ev); err != nil {
			return nil, err
		}
		cr := ev.GetCheckRun()
		d := &delta{Repo: ev.GetRepo().GetFullName(), SHA: cr.GetHeadSHA(), Branch: cr.GetCheckSuite().GetHeadBranch(),
			Actor: ev.GetSender().GetLogin(), Bot: isBot(ev.GetSender())}
		for _, pr := range cr.PullRequests {
			d.PRs = append(d.PRs, pr.GetNumber())
		}
		c := fromCheckRun(cr)
		d.Checks = []check{c}
		if out := strings.TrimSpace(firstNonEmpty(cr.GetOutput().GetTitle()) + "\n" + cr.GetOutput().GetSummary()); out != "" {
			d.Output = map[string]string{c.Key: out}
		}
		return d, nil
	case "check_suite":
		var ev github.CheckSuiteEvent
		if err := unmarshal(&ev); err != nil {
			return nil, err
		}
		cs := ev.GetCheckSuite()
		d := &delta{Repo: ev.GetRepo().GetFullName(), SHA: cs.GetHeadSHA(), Branch: cs.GetHeadBranch(),
			Actor: ev.GetSender().GetLogin(), Bot: isBot(ev.GetSender())}
		for _, pr := range cs.PullRequests {
			d.PRs = append(d.PRs, pr.GetNumber())
		}
		d.Author = cs.GetHeadCommit().GetAuthor().GetName()
		app := cs.GetApp()
		slug := firstNonEmpty(app.GetSlug(), app.GetName())
		d.Checks = []check{{Key: "suite:" + slug, Kind: kindSuite, Name: firstNonEmpty(app.GetName(), slug),
			State: normState(cs.GetStatus(), cs.GetConclusion()), ID: cs.GetID(), App: slug,
			Started: cs.GetCreatedAt().Time, Ended: endedAt(cs.GetStatus(), cs.GetUpdatedAt().Time)}}
		return d, nil
	case "workflow_run":
		var ev leanWorkflowRunEvent
		if err := unmarshal(&ev); err != nil {
			return nil, err
		}
		run := ev.run()
		actor, triggering := ev.WorkflowRun.actors()
		d := &delta{Repo: ev.Repo.FullName, SHA: run.GetHeadSHA(), Branch: run.GetHeadBranch(), Event: run.GetEvent(),
			Actor: firstNonEmpty(triggering.GetLogin(), actor.GetLogin(), ev.Sender.user().GetLogin()),
			Bot:   isBot(actor) || isBot(triggering)}
		for _, pr := range run.PullRequests {
			d.PRs = append(d.PRs, pr.GetNumber())
		}
		d.Author = run.GetHeadCommit().GetAuthor().GetName()
		d.Checks = []check{fromWorkflowRun(run, ev.Workflow.Name)}
		return d, nil
	case "workflow_job":
		var ev github.WorkflowJobEvent
		if err := unmarshal(&ev); err != nil {
			return nil, err
		}
		j := ev.GetWorkflowJob()
		d := &delta{Repo: ev.GetRepo().GetFullName(), SHA: j.GetHeadSHA(), Branch: j.GetHeadBranch(),
			Actor: ev.GetSender().GetLogin(), Bot: isBot(ev.GetSender())}
		c := fromJob(j, j.GetWorkflowName())
		d.Checks = []check{c}
		if len(j.Steps) > 0 {
			d.Steps = map[string][]*github.TaskStep{c.Key: j.Steps}
		}
		return d, nil
	case "push":
		var ev github.PushEvent
		if err := unmarshal(&ev); err != nil {
			return nil, err
		}
		branch, ok := strings.CutPrefix(ev.GetRef(), "refs/heads/")
		if !ok || ev.GetDeleted() || ev.GetAfter() == "" {
			return nil, nil // a tag, or a deleted branch: no CI to follow
		}
		hc := ev.GetHeadCommit()
		return &delta{Repo: ev.GetRepo().GetFullName(), SHA: ev.GetAfter(), Branch: branch, Push: true, Event: "push",
			Pusher: firstNonEmpty(ev.GetSender().GetLogin(), ev.GetPusher().GetName()), Bot: isBot(ev.GetSender()),
			Author: firstNonEmpty(hc.GetAuthor().GetLogin(), hc.GetAuthor().GetName())}, nil
	case "pull_request":
		var ev github.PullRequestEvent
		if err := unmarshal(&ev); err != nil {
			return nil, err
		}
		switch ev.GetAction() {
		case "opened", "synchronize", "reopened", "edited", "ready_for_review":
		default:
			return nil, nil
		}
		pr := ev.GetPullRequest()
		return &delta{Repo: ev.GetRepo().GetFullName(), SHA: pr.GetHead().GetSHA(), Branch: pr.GetHead().GetRef(),
			PRs: []int{ev.GetNumber()}, PRTitle: pr.GetTitle(), PullRequest: true, Event: "pull_request",
			Pusher: ev.GetSender().GetLogin(), Bot: isBot(ev.GetSender()), Author: pr.GetUser().GetLogin()}, nil
	}
	return nil, nil
}

// isBot reports whether a GitHub account is a bot (dependabot[bot], an
// App's account).
func isBot(u *github.User) bool {
	return u != nil && (u.GetType() == "Bot" || strings.HasSuffix(u.GetLogin(), "[bot]"))
}

// skipped is a part of a payload that the plugin never reads: decoding
// into it walks the JSON without building anything.
type skipped struct{}

// repoName is the one field of a payload's repository that the plugin reads.
type repoName struct {
	FullName string `json:"full_name"`
}

// account is the part of a payload's user that the plugin reads: who, and
// whether a bot.
type account struct {
	Login string `json:"login"`
	Type  string `json:"type"`
}

// user is the account as go-github's type; nil when the payload had none.
func (a *account) user() *github.User {
	if a == nil {
		return nil
	}
	return &github.User{Login: &a.Login, Type: &a.Type}
}

// leanWorkflowRunEvent is a workflow_run event without its three copies of
// the repository (the event's, the run's and its head's), two thirds of
// the payload that decoding into go-github's types would build field by
// field for every event, and with only the login and type of its users
// (the sender, the run's actor and triggering actor, a tenth more) and
// only the name of its workflow. Its fields shadow the embedded ones of
// the same JSON names; read them, not the embedded event's getters.
type leanWorkflowRunEvent struct {
	github.WorkflowRunEvent
	Repo         repoName         `json:"repository"`
	Organization skipped          `json:"organization"`
	Sender       *account         `json:"sender"`
	Workflow     workflowRef      `json:"workflow"`
	WorkflowRun  *leanWorkflowRun `json:"workflow_run"`
}

// workflowRef is the one field of a payload's workflow that the plugin
// reads.
type workflowRef struct {
	Name string `json:"name"`
}

// leanWorkflowRun is a workflow run without its repositories, and with
// only the login and type of its users.
type leanWorkflowRun struct {
	github.WorkflowRun
	Repository      skipped  `json:"repository"`
	HeadRepository  skipped  `json:"head_repository"`
	Actor           *account `json:"actor"`
	TriggeringActor *account `json:"triggering_actor"`
}

// run is the event's workflow run; nil when it has none.
func (ev *leanWorkflowRunEvent) run() *github.WorkflowRun {
	if ev.WorkflowRun == nil {
		return nil
	}
	return &ev.WorkflowRun.WorkflowRun
}

// actors are who the run is of and who started it; nil for one the
// payload does not name (or for no run).
func (r *leanWorkflowRun) actors() (actor, triggering *github.User) {
	if r == nil {
		return nil, nil
	}
	return r.Actor.user(), r.TriggeringActor.user()
}

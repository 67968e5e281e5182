package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v57/github"

	"github.com/chimaops/chima/sdk"
)

// Grammar: a target is an app of the apps file or owner/repo, optionally
// followed by /<ref>; a pull request is "#<n>" after it.
const (
	ciPattern = `ci\s+(?P<target>[^\s#]+)(?:\s*#(?P<pr>[0-9]+))?`
	runRE     = `[^\s]+`
)

// Permissions, actions and events.
const (
	permissionRerun     = "ci:rerun"
	permissionCancel    = "ci:cancel"
	permissionSubscribe = "ci:subscribe"
	actionRerun         = "rerun"
	actionRerunFailed   = "rerun-failed"
	actionCancel        = "cancel"
)

// webhookEvents are the GitHub events the plugin handles.
var webhookEvents = []string{"status", "check_run", "check_suite", "workflow_run", "workflow_job", "push", "pull_request"}

// ci is the plugin: its configuration and the GitHub client.
type ci struct {
	mu  sync.RWMutex
	cfg *config
	// gh is nil without a GITHUB_TOKEN or a GitHub App.
	gh  *github.Client
	web string
	// now is the clock, replaced in tests.
	now       func() time.Time
	locks     keyedMutex
	subsCache subsCache
	// records spares reading a commit's record under its lease when this
	// process wrote it last (lease.go).
	records recordCache
}

type pluginSpec struct{ p *ci }

func newPlugin(p *ci) pluginSpec { return pluginSpec{p} }

// spec declares the plugin.
func (s pluginSpec) spec() *sdk.Plugin {
	p := s.p
	// The SDK decodes chima.yaml's settings into st before it calls
	// Configure or Validate.
	st := &settings{}
	events := make([]sdk.EventHandler, 0, len(webhookEvents))
	for _, e := range webhookEvents {
		events = append(events, sdk.EventHandler{Type: "github:" + e, Run: p.onEvent})
	}
	return &sdk.Plugin{
		Name:        "cistatus",
		Version:     "1.0.0",
		Description: "CI status of GitHub commits and pull requests: rollups, notifications, failure digests, reruns and auto-deploy on green.",
		Settings:    st,
		Configure:   func(map[string]string) error { return p.configure(st) },
		Validate:    func(map[string]string) error { _, err := checkSettings(st, os.Getenv); return err },
		Commands: []sdk.Command{
			{
				Name:    "ci",
				Usage:   "ci <app|owner/repo>[/<ref>] [#<pr>]",
				Help:    "Shows the CI of a branch's, tag's, commit's or pull request's head: statuses, check runs and workflow jobs merged, with durations, required checks, what is still running, links and the last green commit.",
				Pattern: ciPattern,
				Args: []sdk.Arg{
					{Name: "target", Required: true, Help: "an app of the apps file, or owner/repo, with /<ref> after it"},
					{Name: "pr", Type: sdk.Int, Help: "a pull request number"},
				},
				Examples: []string{"ci project-x", "ci project-x/feature-1", "ci octo-org/octo-repo #12"},
				Run:      p.cmdCI,
			},
			{
				Name:       "ci:subscribe",
				Usage:      "ci:subscribe <owner/repo|app> [branches <glob,…>] [workflows <name,…>] [events push,pull_request,schedule] [only failures|transitions] [ignore bots]",
				Help:       "Posts this repository's CI to this room: one message per commit or pull request, edited as runs progress, with a thread reply when the build breaks, keeps failing or is fixed. A branch glob starting with ! excludes.",
				Args:       []sdk.Arg{{Name: "target", Required: true}, {Name: "filters", Rest: true}},
				Permission: permissionSubscribe,
				Examples:   []string{"ci:subscribe project-x branches main,release/*,!release/old only transitions", "ci:subscribe octo-org/octo-repo workflows test events push ignore bots"},
				Run:        p.cmdSubscribe,
			},
			{
				Name:       "ci:unsubscribe",
				Usage:      "ci:unsubscribe <owner/repo|app>",
				Help:       "Stops posting a repository's CI to this room.",
				Args:       []sdk.Arg{{Name: "target", Required: true}},
				Permission: permissionSubscribe,
				Run:        p.cmdUnsubscribe,
			},
			{
				Name: "ci:subscriptions",
				Help: "Lists the CI subscriptions of this room, those of the settings included.",
				Run:  p.cmdSubscriptions,
			},
			{
				Name:       "ci:rerun",
				Usage:      "ci:rerun <owner/repo#run|app#run|run URL>",
				Help:       "Reruns every job of a workflow run.",
				Args:       []sdk.Arg{{Name: "run", Required: true, Pattern: runRE}},
				Permission: permissionRerun,
				Run:        p.cmdRerun,
			},
			{
				Name:       "ci:rerun-failed",
				Usage:      "ci:rerun-failed <owner/repo#run|app#run|run URL>",
				Help:       "Reruns the failed jobs of a workflow run.",
				Args:       []sdk.Arg{{Name: "run", Required: true, Pattern: runRE}},
				Permission: permissionRerun,
				Run:        p.cmdRerunFailed,
			},
			{
				Name:       "ci:cancel",
				Usage:      "ci:cancel <owner/repo#run|app#run|run URL>",
				Help:       "Cancels a queued or running workflow run.",
				Args:       []sdk.Arg{{Name: "run", Required: true, Pattern: runRE}},
				Permission: permissionCancel,
				Run:        p.cmdCancel,
			},
		},
		Events: events,
		Jobs:   []sdk.JobHandler{{Kind: jobReconcile, Run: p.runReconcile}},
		Schedules: []sdk.Schedule{{
			Name: jobReconcile, Cron: reconcileEvery, JobKind: jobReconcile, QueueKey: "cistatus/reconcile",
			Title: "poll the CI of commits still running", Help: "Polls the CI of commits whose checks are still running, for the webhooks GitHub never redelivers.",
		}},
		// The buttons on CI messages: each is checked as the command it
		// stands for, typed by whoever clicks.
		Actions: []sdk.Action{
			{Name: actionRerun, Help: "The Rerun button of a finished workflow run.", Command: "ci:rerun", Run: p.actRun(rerunAll)},
			{Name: actionRerunFailed, Help: "The Rerun failed jobs button of a failed workflow run.", Command: "ci:rerun-failed", Run: p.actRun(rerunFailed)},
			{Name: actionCancel, Help: "The Cancel button of a running workflow run.", Command: "ci:cancel", Run: p.actRun(cancelRun)},
		},
	}
}

// configure checks the decoded settings and sets up the GitHub client.
func (p *ci) configure(st *settings) error {
	cfg, err := checkSettings(st, os.Getenv)
	if err != nil {
		return err
	}
	var gh *github.Client
	if cfg.auth.Configured() {
		if gh, err = newGitHubClient(cfg.auth, cfg.apiURL); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cfg, p.gh, p.web = cfg, gh, webBase(cfg.apiURL)
	if p.now == nil {
		p.now = time.Now
	}
	return nil
}

// state returns the configuration and client.
func (p *ci) state() (*config, *github.Client) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.cfg, p.gh
}

// errNoGitHub is the answer to a command that needs the API without a token
// or an app.
func errNoGitHub() error {
	return &sdk.UserError{
		Summary: "GitHub is not configured for the CI plugin",
		Detail: "give the cistatus plugin a token in chima.yaml (plugins[].secrets: {GITHUB_TOKEN: CHIMA_GITHUB_TOKEN}, " +
			"and export CHIMA_GITHUB_TOKEN), or a GitHub App (settings github_app_id and github_installation_id, " +
			"secrets: {GITHUB_APP_PRIVATE_KEY: CHIMA_GITHUB_APP_PRIVATE_KEY}), set github_api_url for a GitHub Enterprise Server, and point GitHub's webhooks at /webhooks/github",
	}
}

// resolveTarget reads "app[/ref]" or "owner/repo[/ref]".
func (cfg *config) resolveTarget(target string) (repo, ref string, a *app, err error) {
	parts := strings.Split(strings.Trim(target, "/"), "/")
	if a = cfg.apps[strings.ToLower(parts[0])]; a != nil {
		repo = a.githubRepo()
		if repo == "" {
			return "", "", a, sdk.Errorf("%s's repository (%s) is not on GitHub, so GitHub has no CI of it", a.Name, a.Repository)
		}
		return repo, strings.Join(parts[1:], "/"), a, nil
	}
	if len(parts) < 2 || parts[0] == "" || parts[1] == "" {
		known := make([]string, 0, len(cfg.apps))
		for n := range cfg.apps {
			known = append(known, n)
		}
		sort.Strings(known)
		hint := "no apps file is configured"
		if len(known) > 0 {
			hint = "known apps: " + strings.Join(known, ", ")
		}
		return "", "", nil, sdk.Errorf("I know no app %q (%s); name a GitHub repository as owner/repo", parts[0], hint)
	}
	repo = parts[0] + "/" + parts[1]
	return repo, strings.Join(parts[2:], "/"), cfg.appForRepo(repo), nil
}

// cmdCI answers `ci <target>[/<ref>] [#<pr>]` with the rollup.
func (p *ci) cmdCI(c *sdk.Context) error {
	cfg, gh := p.state()
	if gh == nil {
		return errNoGitHub()
	}
	repo, ref, _, err := cfg.resolveTarget(c.Arg("target"))
	if err != nil {
		return err
	}
	pr := int(c.Int("pr"))
	r, err := fetchRollup(c, gh, repo, ref, pr)
	if err != nil {
		what := repo
		if ref != "" {
			what += "/" + ref
		}
		if pr > 0 {
			what += fmt.Sprintf(" #%d", pr)
		}
		return sdk.Errorf("%v", apiError("the CI of "+what, err))
	}
	return c.ReplyOutput(p.renderRollup(r))
}

// renderRollup is the answer to `ci`.
func (p *ci) renderRollup(r *rollupResult) *sdk.Output {
	now := p.now()
	st := overall(r.Checks)
	where := r.Branch
	if r.PR > 0 {
		where = fmt.Sprintf("#%d", r.PR)
		if r.PRTitle != "" {
			where += " " + r.PRTitle
		}
	}
	if where == "" {
		where = short(r.SHA)
	}
	o := &sdk.Output{
		Title:  fmt.Sprintf("%s %s @ %s: %s", r.Repo, where, short(r.SHA), stateWord(st)),
		Status: outputStatus(st),
	}
	var lines []string
	var inProgress []string
	for _, ch := range r.Checks {
		lines = append(lines, ch.line(now))
		if pending(ch.State) && ch.Kind != kindJob {
			inProgress = append(inProgress, ch.label()+" ("+ch.State+")")
		}
	}
	if len(lines) == 0 {
		lines = append(lines, "No statuses, check runs or workflow runs on this commit.")
	}
	if len(inProgress) > 0 {
		lines = append(lines, "", "Still going: "+strings.Join(inProgress, ", "))
	}
	if r.LastGreen != "" {
		lines = append(lines, fmt.Sprintf("Last green commit of %s: [%s](%s/%s/commit/%s)", r.Branch, short(r.LastGreen), p.web, r.Repo, r.LastGreen))
	} else if st != stateSuccess && r.Branch != "" && st != "" {
		lines = append(lines, fmt.Sprintf("No green commit of %s among its recent runs.", r.Branch))
	}
	if !r.RequiredKnown && (r.Branch != "" || r.PR > 0) {
		why := "Branch protection could not be read"
		if r.RequiredErr != nil {
			why = r.RequiredErr.Error()
		}
		lines = append(lines, why+": the required checks are unknown.")
	}
	o.Text = strings.Join(lines, "\n")
	o.Fields = []*sdk.Field{
		{Title: "Commit", Value: fmt.Sprintf("[%s](%s/%s/commit/%s)", short(r.SHA), p.web, r.Repo, r.SHA), Short: true},
		{Title: "Checks", Value: summary(r.Checks), Short: true},
	}
	if len(r.Required) > 0 {
		o.Fields = append(o.Fields, &sdk.Field{Title: "Required", Value: strings.Join(r.Required, ", ")})
	}
	o.Buttons = runButtons(r.Repo, r.Checks)
	return o
}

// stateWord says a commit's state in a title.
func stateWord(st string) string {
	switch st {
	case stateFailure:
		return "failing"
	case stateSuccess:
		return "green"
	case stateRunning:
		return "running"
	case stateCancelled:
		return "cancelled"
	}
	return "no CI"
}

// runButtons offers to rerun the failed jobs of failed workflow runs, cancel
// running ones and rerun those that completed without failing,
// three at most.
func runButtons(repo string, checks []check) []*sdk.Button {
	var out []*sdk.Button
	for _, ch := range checks {
		if ch.Kind != kindWorkflow || ch.RunID == 0 || len(out) >= 3 {
			continue
		}
		value := fmt.Sprintf("%s#%d", repo, ch.RunID)
		switch {
		case ch.State == stateFailure:
			out = append(out, sdk.ActionButton("Rerun failed jobs of "+ch.Name, actionRerunFailed, value, sdk.ButtonPrimary))
		case pending(ch.State):
			out = append(out, sdk.ActionButton("Cancel "+ch.Name, actionCancel, value, sdk.ButtonDanger))
		case ch.State == stateSuccess || ch.State == stateCancelled || ch.State == stateNeutral:
			// Completed without failing: all its jobs again (a flaky
			// deploy step, a cancelled run wanted after all).
			out = append(out, sdk.ActionButton("Rerun "+ch.Name, actionRerun, value, sdk.ButtonDefault))
		}
	}
	return out
}

// runOp is what a run command does.
type runOp int

const (
	rerunAll runOp = iota
	rerunFailed
	cancelRun
)

func (p *ci) cmdRerun(c *sdk.Context) error       { return p.runCommand(c, rerunAll, c.Arg("run")) }
func (p *ci) cmdRerunFailed(c *sdk.Context) error { return p.runCommand(c, rerunFailed, c.Arg("run")) }
func (p *ci) cmdCancel(c *sdk.Context) error      { return p.runCommand(c, cancelRun, c.Arg("run")) }

// actRun handles a click on a run's button: its value is "owner/repo#id".
func (p *ci) actRun(op runOp) func(c *sdk.Context) error {
	return func(c *sdk.Context) error { return p.runCommand(c, op, c.Interaction.Value) }
}

// parseRun reads "owner/repo#123", "app#123" or a run's URL
// (…/owner/repo/actions/runs/123[/attempts/2]).
func (cfg *config) parseRun(s string) (repo string, id int64, err error) {
	if i := strings.Index(s, "/actions/runs/"); i >= 0 {
		head, tail := s[:i], s[i+len("/actions/runs/"):]
		segs := strings.Split(strings.TrimRight(head, "/"), "/")
		n, _, _ := strings.Cut(tail, "/")
		id, err := strconv.ParseInt(n, 10, 64)
		if err != nil || len(segs) < 2 {
			return "", 0, sdk.Errorf("%q is not a workflow run's URL", s)
		}
		return segs[len(segs)-2] + "/" + segs[len(segs)-1], id, nil
	}
	target, n, ok := strings.Cut(s, "#")
	id, perr := strconv.ParseInt(n, 10, 64)
	if !ok || perr != nil || id <= 0 {
		return "", 0, sdk.Errorf("%q names no workflow run: write owner/repo#<run id>, <app>#<run id> or the run's URL", s)
	}
	repo, _, _, err = cfg.resolveTarget(target)
	return repo, id, err
}

// runCommand reruns or cancels a workflow run.
func (p *ci) runCommand(c *sdk.Context, op runOp, arg string) error {
	cfg, gh := p.state()
	if gh == nil {
		return errNoGitHub()
	}
	repo, id, err := cfg.parseRun(arg)
	if err != nil {
		return err
	}
	owner, name := splitRepo(repo)
	var what, done string
	switch op {
	case rerunAll:
		what, done = fmt.Sprintf("a rerun of run %d of %s", id, repo), "Rerunning every job of"
		_, err = gh.Actions.RerunWorkflowByID(c, owner, name, id)
	case rerunFailed:
		what, done = fmt.Sprintf("a rerun of the failed jobs of run %d of %s", id, repo), "Rerunning the failed jobs of"
		_, err = gh.Actions.RerunFailedJobsByID(c, owner, name, id)
	case cancelRun:
		what, done = fmt.Sprintf("the cancel of run %d of %s", id, repo), "Cancelling"
		_, err = gh.Actions.CancelWorkflowRunByID(c, owner, name, id)
	}
	var accepted *github.AcceptedError
	if err != nil && !(op == cancelRun && errors.As(err, &accepted)) {
		return sdk.Errorf("%v", apiError(what, err))
	}
	who := ""
	if u := c.User(); u != nil {
		who = " for " + firstNonEmpty(u.Person, u.Name, u.ID)
	}
	return c.Reply("%s run %d of %s%s: %s/%s/actions/runs/%d", done, id, repo, who, p.web, repo, id)
}

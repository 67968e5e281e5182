package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/chimaops/chima/sdk"
)

// Check kinds: which of GitHub's three CI systems a check comes from.
const (
	kindStatus   = "status"   // a commit status (Travis, Jenkins, …)
	kindCheck    = "check"    // a check run of a GitHub App
	kindSuite    = "suite"    // a check suite, when none of its runs is known
	kindWorkflow = "workflow" // an Actions workflow run
	kindJob      = "job"      // a job of a workflow run
)

// Normalised states of a check.
const (
	stateQueued    = "queued"
	stateRunning   = "running"
	stateSuccess   = "success"
	stateFailure   = "failure"
	stateNeutral   = "neutral"
	stateSkipped   = "skipped"
	stateCancelled = "cancelled"
)

// check is one check of a commit in any of the three systems.
type check struct {
	// Key identifies the check within its commit: the newest of one key
	// wins.
	Key  string `json:"key"`
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Workflow is the workflow of a job.
	Workflow string    `json:"workflow,omitempty"`
	State    string    `json:"state"`
	Started  time.Time `json:"started,omitzero"`
	Ended    time.Time `json:"ended,omitzero"`
	// Updated orders events of one check (statuses have no ids).
	Updated time.Time `json:"updated,omitzero"`
	URL     string    `json:"url,omitempty"`
	// ID is the check run's, job's (the same number as its check run) or
	// workflow run's id.
	ID int64 `json:"id,omitempty"`
	// RunID is the workflow run of a job or workflow.
	RunID   int64  `json:"run_id,omitempty"`
	Attempt int64  `json:"attempt,omitempty"`
	App     string `json:"app,omitempty"`
	// Event is what started a workflow run: push, pull_request, schedule…
	Event    string `json:"event,omitempty"`
	Required bool   `json:"required,omitempty"`
}

// normState maps GitHub's status and conclusion to a normalised state.
func normState(status, conclusion string) string {
	switch status {
	case "queued", "waiting", "requested", "pending":
		return stateQueued
	case "in_progress":
		return stateRunning
	}
	switch conclusion {
	case "success":
		return stateSuccess
	case "neutral", "stale":
		return stateNeutral
	case "skipped":
		return stateSkipped
	case "cancelled":
		return stateCancelled
	case "":
		return stateQueued
	}
	return stateFailure // failure, timed_out, startup_failure, action_required
}

// statusState maps a commit status's state.
func statusState(s string) string {
	switch s {
	case "success":
		return stateSuccess
	case "pending":
		return stateRunning
	}
	return stateFailure // failure, error
}

func passing(state string) bool {
	return state == stateSuccess || state == stateNeutral || state == stateSkipped
}

func pending(state string) bool { return state == stateQueued || state == stateRunning }

// rank orders the states one check goes through: a late "in progress"
// never undoes "completed".
func rank(state string) int {
	switch state {
	case stateQueued:
		return 0
	case stateRunning:
		return 1
	}
	return 2
}

// newer reports whether b replaces a, both being the same check (one Key).
func newer(a, b check) bool {
	attempts := a.Attempt != 0 && b.Attempt != 0 && a.Attempt != b.Attempt
	if a.ID != b.ID && a.ID != 0 && b.ID != 0 {
		if attempts {
			return b.Attempt > a.Attempt
		}
		return b.ID > a.ID // a rerun is a new check run
	}
	if attempts {
		return b.Attempt > a.Attempt
	}
	if a.Kind == kindStatus && !a.Updated.IsZero() && !b.Updated.IsZero() && !a.Updated.Equal(b.Updated) {
		return b.Updated.After(a.Updated)
	}
	if rank(a.State) != rank(b.State) {
		return rank(b.State) > rank(a.State)
	}
	return true // the same stage again: the later delivery wins
}

// merge adds c to checks, keeping the newest per key.
func merge(checks map[string]check, c check) bool {
	old, ok := checks[c.Key]
	if ok && !newer(old, c) {
		return false
	}
	if ok && c.Started.IsZero() && old.ID == c.ID {
		c.Started = old.Started
	}
	if ok && old.Required {
		c.Required = true
	}
	checks[c.Key] = c
	return true
}

// visible lists the checks to show, sorted: the check runs and suites that
// stand for Actions jobs and workflows known as such are left out (each
// job is also a check run of the same id), and "all jobs skipped" makes a
// workflow skipped, not failed.
func visible(checks map[string]check) []check {
	jobIDs := map[int64]bool{}
	jobsOf := map[int64][]check{}
	apps := map[string]bool{}
	workflows := false
	for _, c := range checks {
		switch c.Kind {
		case kindJob:
			jobIDs[c.ID] = true
			jobsOf[c.RunID] = append(jobsOf[c.RunID], c)
		case kindWorkflow:
			workflows = true
		case kindCheck:
			apps[c.App] = true
		}
	}
	var out []check
	for _, c := range checks {
		switch c.Kind {
		case kindCheck:
			if jobIDs[c.ID] {
				continue
			}
		case kindSuite:
			if apps[c.App] || (c.App == "github-actions" && workflows) {
				continue
			}
		case kindWorkflow:
			if jobs := jobsOf[c.ID]; len(jobs) > 0 && !pending(c.State) && allSkipped(jobs) {
				c.State = stateSkipped
			}
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].sortName() != out[j].sortName() {
			return out[i].sortName() < out[j].sortName()
		}
		return out[i].Key < out[j].Key
	})
	return out
}

func allSkipped(jobs []check) bool {
	for _, j := range jobs {
		if j.State != stateSkipped {
			return false
		}
	}
	return true
}

// sortName groups a workflow's jobs under it.
func (c check) sortName() string {
	switch c.Kind {
	case kindWorkflow:
		return strings.ToLower(c.Name)
	case kindJob:
		return strings.ToLower(c.Workflow) + "\x00" + strings.ToLower(c.Name)
	}
	return "\xff" + strings.ToLower(c.Name)
}

// label names the check for people: "test / build" for a job.
func (c check) label() string {
	if c.Kind == kindJob && c.Workflow != "" {
		return c.Workflow + " / " + c.Name
	}
	return c.Name
}

// overall is the state of a commit: failure when any check failed, else
// running while one is queued or running, cancelled when one was, success
// when every check passed, "" with no checks at all.
func overall(cs []check) string {
	var failed, running, cancelled, any bool
	for _, c := range cs {
		if c.Kind == kindJob {
			continue // its workflow speaks for it
		}
		any = true
		switch {
		case c.State == stateFailure:
			failed = true
		case pending(c.State):
			running = true
		case c.State == stateCancelled:
			cancelled = true
		}
	}
	switch {
	case !any:
		return ""
	case failed:
		return stateFailure
	case running:
		return stateRunning
	case cancelled:
		return stateCancelled
	}
	return stateSuccess
}

// icon is a state's mark in a line of text.
func icon(state string) string {
	switch state {
	case stateSuccess:
		return "✓"
	case stateFailure:
		return "✗"
	case stateRunning:
		return "●"
	case stateQueued:
		return "○"
	case stateCancelled:
		return "⊘"
	}
	return "–" // neutral, skipped
}

// outputStatus is the colour hint of a state.
func outputStatus(state string) sdk.Status {
	switch state {
	case stateSuccess:
		return sdk.StatusGood
	case stateFailure:
		return sdk.StatusDanger
	case stateRunning, stateQueued:
		return sdk.StatusInfo
	}
	return sdk.StatusWarning
}

// duration says how long a check ran, or has been running at now.
func (c check) duration(now time.Time) string {
	switch {
	case c.Started.IsZero():
		return ""
	case !c.Ended.IsZero():
		return " in " + human(c.Ended.Sub(c.Started))
	case pending(c.State):
		return " for " + human(now.Sub(c.Started))
	}
	return ""
}

// human rounds d for people: 42s, 3m05s, 1h02m.
func human(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Round(time.Second)/time.Second))
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	}
	d = d.Round(time.Minute)
	return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
}

// line renders one check: "✗ test / lint: failure in 12s (required) · [details](url)".
func (c check) line(now time.Time) string {
	s := icon(c.State) + " " + c.label() + ": " + c.State + c.duration(now)
	if strings.HasPrefix(c.Key, "expected:") {
		s = icon(c.State) + " " + c.label() + ": expected, not reported yet"
	}
	if c.Required {
		s += " (required)"
	}
	if c.URL != "" {
		s += " · [details](" + c.URL + ")"
	}
	if c.Kind == kindJob {
		s = "    " + s
	}
	return s
}

// summary counts the checks of a commit: "2 failed, 1 running, 5 passed".
func summary(cs []check) string {
	var failed, running, queued, passed, other int
	for _, c := range cs {
		switch {
		case c.State == stateFailure:
			failed++
		case c.State == stateRunning:
			running++
		case c.State == stateQueued:
			queued++
		case passing(c.State):
			passed++
		default:
			other++
		}
	}
	var parts []string
	for _, p := range []struct {
		n    int
		what string
	}{{failed, "failed"}, {running, "running"}, {queued, "queued"}, {passed, "passed"}, {other, "cancelled"}} {
		if p.n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", p.n, p.what))
		}
	}
	if len(parts) == 0 {
		return "no checks"
	}
	return strings.Join(parts, ", ")
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

package main

import (
	"fmt"
	"strings"

	"github.com/chimaops/chima/sdk"
)

// autoDeploy deploys t's commit to each environment its branch auto-deploys
// to, once every required check of that exact commit is green: once per
// (commit, environment), whatever the events' order or repetition. The
// room is told when it deploys, and once why it did not when a check is
// red, a required one is missing, or which are required is unknown
// (branch protection unreadable, or GitHub not configured).
func (p *ci) autoDeploy(c *sdk.Context, t *tracked) error {
	cfg, gh := p.state()
	a := cfg.appForRepo(t.Repo)
	if a == nil || t.PR > 0 || t.Branch == "" {
		return nil
	}
	for _, ad := range cfg.autoDeploy {
		if ad.App != a.Name || ad.Branch != t.Branch {
			continue
		}
		if err := p.autoDeployOne(c, cfg, gh != nil, a, ad, t); err != nil {
			return err
		}
	}
	return nil
}

func (p *ci) autoDeployOne(c *sdk.Context, cfg *config, api bool, a *app, ad autoDeploy, t *tracked) error {
	doneKey := fmt.Sprintf("autodeploy/%s/%s/%s", a.Name, ad.Environment, t.SHA)
	unlock := p.locks.lock(doneKey)
	defer unlock()
	if _, done, err := c.KV().Get(doneKey); err != nil || done {
		return err
	}
	checks := visible(t.Checks)
	st := overall(checks)
	if st == stateRunning || st == "" || st == stateCancelled {
		return nil // not decided yet
	}
	var missing, red []string
	room := appRoom(a, cfg.defaultAdptr)
	// Which checks are required only branch protection says: unknown, no
	// check can stand for them, and nothing is deployed.
	unknown := "GitHub is not configured (no token or GitHub App), so branch protection cannot be read"
	if api {
		// The exact commit's checks, with what branch protection requires.
		_, gh := p.state()
		r, err := fetchRollupOf(c, gh, t.Repo, t.SHA, 0, t.Branch)
		if err != nil {
			return fmt.Errorf("read the checks of %s before auto-deploying: %w", short(t.SHA), err)
		}
		checks, unknown = r.Checks, ""
		if !r.RequiredKnown {
			unknown = "branch protection could not be read"
			if r.RequiredErr != nil {
				unknown = r.RequiredErr.Error()
			}
		}
	}
	if unknown != "" {
		return p.refuseAutoDeploy(c, doneKey, room, a, ad, t, fmt.Sprintf("the required checks of %s are unknown: %s", t.Branch, unknown))
	}
	// A branch that requires no check (unprotected, or protected without
	// required status checks) auto-deploys only when every check of the
	// commit passed.
	required := anyRequired(checks)
	for _, ch := range checks {
		if required && !ch.Required {
			continue
		}
		switch {
		case strings.HasPrefix(ch.Key, "expected:"):
			missing = append(missing, ch.Name)
		case pending(ch.State):
			return nil // a required check is still running
		case !passing(ch.State):
			red = append(red, ch.label()+" ("+ch.State+")")
		}
	}
	if len(red) > 0 || len(missing) > 0 {
		why := ""
		if len(red) > 0 {
			why = "not green: " + strings.Join(red, ", ")
		}
		if len(missing) > 0 {
			if why != "" {
				why += "; "
			}
			why += "required but not reported: " + strings.Join(missing, ", ")
		}
		return p.refuseAutoDeploy(c, doneKey, room, a, ad, t, why)
	}
	if room == nil {
		c.Logger().Warn("auto-deploy of an app without a room skipped", "app", a.Name)
		return nil
	}
	// Recorded first, atomically: a redelivery while the deploy runs, or
	// the same event at another replica of the bot, must not start another.
	if created, _, err := c.KV().Create(doneKey, []byte("started")); err != nil || !created {
		return err
	}
	cmd := fmt.Sprintf("deploy %s/%s to %s", a.Name, t.SHA, ad.Environment)
	reason := fmt.Sprintf("every required check of %s on %s is green", short(t.SHA), t.Branch)
	if who := firstNonEmpty(t.Pusher, t.Actor); who != "" {
		reason += ", pushed by " + who
	}
	if _, err := c.Post(room, &sdk.Output{Text: fmt.Sprintf("Auto-deploying %s %s to %s: %s.", a.Name, short(t.SHA), ad.Environment, reason), Status: sdk.StatusInfo}); err != nil {
		return err
	}
	res, err := c.RunCommand(cmd, sdk.RunOptions{As: cfg.deployAs, Room: room, Reason: "auto-deploy: " + reason})
	if err != nil {
		_ = c.KV().Set(doneKey, []byte("failed: "+err.Error()))
		_, perr := c.Post(room, &sdk.Output{Text: fmt.Sprintf("The auto-deploy of %s %s to %s could not run: %v", a.Name, short(t.SHA), ad.Environment, err), Status: sdk.StatusDanger})
		return perr
	}
	_ = c.KV().Set(doneKey, []byte(res.Outcome.String()+" "+res.RequestID))
	if res.Outcome != sdk.CommandOK && res.Outcome != sdk.CommandApproval {
		_, err := c.Post(room, &sdk.Output{Text: fmt.Sprintf("The auto-deploy of %s %s to %s was %s: %s", a.Name, short(t.SHA), ad.Environment, outcomeWord(res.Outcome), firstNonEmpty(res.Detail, "no detail")), Status: sdk.StatusDanger})
		return err
	}
	return nil
}

// refuseAutoDeploy tells room, once for the commit and environment (by
// one replica of the bot), why t is not auto-deployed. The commit is not
// marked done: a later event that finds it deployable still deploys it.
func (p *ci) refuseAutoDeploy(c *sdk.Context, doneKey string, room *sdk.MessageRef, a *app, ad autoDeploy, t *tracked, why string) error {
	if created, _, err := c.KV().Create(doneKey+"/refused", []byte(why)); err != nil || !created {
		return err
	}
	if room == nil {
		return nil
	}
	_, err := c.Post(room, &sdk.Output{Text: fmt.Sprintf("Not auto-deploying %s %s to %s: %s.", a.Name, short(t.SHA), ad.Environment, why), Status: sdk.StatusWarning})
	return err
}

func outcomeWord(o sdk.CommandOutcome) string {
	switch o {
	case sdk.CommandDenied:
		return "refused"
	case sdk.CommandError:
		return "failed"
	}
	return o.String()
}

func anyRequired(cs []check) bool {
	for _, c := range cs {
		if c.Required {
			return true
		}
	}
	return false
}

// appRoom is the room an app's CI messages and auto-deploys go to.
func appRoom(a *app, defaultAdapter string) *sdk.MessageRef {
	if len(a.Rooms) == 0 {
		return nil
	}
	room, adapter := a.Rooms[0], defaultAdapter
	if ad, r, ok := strings.Cut(room, ":"); ok {
		adapter, room = ad, r
	}
	return &sdk.MessageRef{Adapter: adapter, Room: room}
}

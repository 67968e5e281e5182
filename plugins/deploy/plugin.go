package main

import (
	"github.com/chimaops/chima/sdk"
)

// Grammar pieces, hubot-deploy's: app and env names are [-_.0-9a-z]; refs
// and hosts are any non-space text (validated before any use).
const (
	nameRE = `[-_.0-9a-z]+`
	refRE  = `[^\s]+`

	deployPattern = `deploy(?::(?P<task>` + nameRE + `(?::` + nameRE + `)*))?(?P<force>!)?\s+(?P<app>` + nameRE + `)(?:/(?P<ref>` + refRE + `))?` +
		`(?:\s+(?:to|in|on)\s+(?P<env>` + nameRE + `)(?:/(?P<hosts>` + refRE + `))?)?`
	deploysPattern  = `deploys\s+(?P<app>` + nameRE + `)(?:/(?P<ref>` + refRE + `))?(?:\s+(?:in|on|to)\s+(?P<env>` + nameRE + `))?`
	wherePattern    = `where\s+can\s+i\s+deploy\s+(?P<app>` + nameRE + `)\??`
	lockPattern     = `deploy:lock\s+(?P<app>` + nameRE + `)\s+(?:in|on|to)\s+(?P<env>` + nameRE + `)(?:\s+(?P<reason>.+))?`
	unlockPattern   = `deploy:unlock\s+(?P<app>` + nameRE + `)\s+(?:in|on|to)\s+(?P<env>` + nameRE + `)`
	rollbackPattern = `rollback\s+(?P<app>` + nameRE + `)\s+(?:in|on|to)\s+(?P<env>` + nameRE + `)`
)

// Job kinds and events.
const (
	jobDeploy          = "deploy"
	eventGitHubDeploy  = "github:deployment"
	permissionDeploy   = "deploy"
	permissionLock     = "deploy:lock"
	permissionRollback = "deploy"
)

type pluginSpec struct{ d *deployer }

func newPlugin(d *deployer) pluginSpec { return pluginSpec{d} }

// spec declares the plugin: commands with their typed arguments, the deploy
// job, the events it listens to and its log pages.
func (p pluginSpec) spec() *sdk.Plugin {
	d := p.d
	// The SDK decodes chima.yaml's settings into st before it calls
	// Configure or Validate.
	st := &settings{}
	return &sdk.Plugin{
		Name:        "deploy",
		Version:     "1.0.0",
		Description: "Deploys apps to their environments, with locks, queues and rollbacks.",
		Settings:    st,
		Configure:   func(map[string]string) error { return d.configure(st) },
		Validate:    func(map[string]string) error { return d.validate(st) },
		Commands: []sdk.Command{
			{
				Name:    "deploy",
				Usage:   "deploy[:task][!] <app>[/<ref>] [to <env>[/<hosts>]]",
				Help:    "Deploys a branch, tag or commit of an app. `!` forces it past auto-merge and required status checks.",
				Pattern: deployPattern,
				Args: []sdk.Arg{
					{Name: "task", Default: "deploy", Help: "provider task, e.g. deploy:migrate"},
					{Name: "force", Type: sdk.Bool, Default: "false", Help: "skip auto-merge and required status checks"},
					{Name: "app", Required: true, Help: "app name from the apps file"},
					{Name: "ref", Help: "branch, tag or SHA; the app's default branch when absent"},
					{Name: "env", Help: "environment; the app's default when absent"},
					{Name: "hosts", Help: "comma-separated hosts to limit the deploy to"},
				},
				Permission: permissionDeploy,
				Examples:   []string{"deploy project-x/feature-1 to edge", "deploy! project-x to live", "deploy:migrate project-x/main to edge"},
				Run:        d.cmdDeploy,
			},
			{
				Name:    "deploys",
				Usage:   "deploys <app>[/<ref>] [in <env>]",
				Help:    "Lists recent deployments of an app: who, what, when, state and duration, queued ones included.",
				Pattern: deploysPattern,
				Args: []sdk.Arg{
					{Name: "app", Required: true}, {Name: "ref"}, {Name: "env"},
				},
				Examples: []string{"deploys project-x", "deploys project-x in edge"},
				Run:      d.cmdDeploys,
			},
			{
				Name:     "where",
				Usage:    "where can I deploy <app>",
				Help:     "Lists an app's environments, with their locks and what is deployed there now.",
				Pattern:  wherePattern,
				Args:     []sdk.Arg{{Name: "app", Required: true}},
				Examples: []string{"where can I deploy project-x"},
				Run:      d.cmdWhere,
			},
			{
				Name:       "deploy:lock",
				Usage:      "deploy:lock <app> in <env> [reason…]",
				Help:       "Locks an environment: others' deploys to it are refused until it is unlocked.",
				Pattern:    lockPattern,
				Args:       []sdk.Arg{{Name: "app", Required: true}, {Name: "env", Required: true}, {Name: "reason"}},
				Permission: permissionLock,
				Examples:   []string{"deploy:lock project-x in live testing the migration"},
				Run:        d.cmdLock,
			},
			{
				Name:       "deploy:unlock",
				Usage:      "deploy:unlock <app> in <env>",
				Help:       "Unlocks an environment you locked.",
				Pattern:    unlockPattern,
				Args:       []sdk.Arg{{Name: "app", Required: true}, {Name: "env", Required: true}},
				Permission: permissionLock,
				Run:        d.cmdUnlock,
			},
			{
				Name:       "deploy:cancel",
				Usage:      "deploy:cancel <id>",
				Help:       "Stops a running or queued deployment.",
				Args:       []sdk.Arg{{Name: "id", Type: sdk.Int, Required: true}},
				Permission: permissionDeploy,
				Run:        d.cmdCancel,
			},
			{
				Name:       "rollback",
				Usage:      "rollback <app> in <env>",
				Help:       "Redeploys the previous successful commit of an environment.",
				Pattern:    rollbackPattern,
				Args:       []sdk.Arg{{Name: "app", Required: true}, {Name: "env", Required: true}},
				Permission: permissionRollback,
				Run:        d.cmdRollback,
			},
			{
				Name:  "deploy:status",
				Usage: "deploy:status <id>",
				Help:  "Shows a deployment's state, the end of its log and a link to the whole log.",
				Args:  []sdk.Arg{{Name: "id", Type: sdk.Int, Required: true}},
				Run:   d.cmdStatus,
			},
		},
		Jobs: []sdk.JobHandler{{Kind: jobDeploy, Run: d.runDeploy}},
		Events: []sdk.EventHandler{
			{Type: eventGitHubDeploy, Run: d.onGitHubDeployment},
		},
		OnJobInterrupted: d.onInterrupted,
		Pages:            []sdk.Page{{Prefix: "/deployments/", Handler: d.pages()}},
		// The buttons on a deployment's messages: each is checked as the
		// command it stands for, typed by whoever clicks.
		Actions: []sdk.Action{
			{Name: actionCancel, Help: "The Cancel button of a running deployment's progress.", Command: "deploy:cancel", Run: d.actCancel},
			{Name: actionRollback, Help: "The Rollback button of a successful deployment.", Command: "rollback", Run: d.actRollback},
		},
	}
}

package router

import (
	"maps"
	"testing"

	"github.com/chimaops/chima/sdk/pluginv1"
)

const (
	tString   = pluginv1.ArgType_ARG_TYPE_STRING
	tInt      = pluginv1.ArgType_ARG_TYPE_INT
	tBool     = pluginv1.ArgType_ARG_TYPE_BOOL
	tEnum     = pluginv1.ArgType_ARG_TYPE_ENUM
	tDuration = pluginv1.ArgType_ARG_TYPE_DURATION
)

// deployPattern is hubot-deploy's grammar:
// deploy[:task][!] app[/ref] [to|in|on env[/hosts]].
const deployPattern = `deploy(?::(?P<task>[-_.0-9a-z]+))?(?P<force>!)?\s+(?P<app>[-_.0-9a-z]+)(?:/(?P<ref>[^\s]+))?(?:\s+(?:to|in|on)\s+(?P<env>[-_.0-9a-z]+)(?:/(?P<hosts>[^\s]+))?)?`

func deployManifest() *pluginv1.Manifest {
	prep := &pluginv1.ArgSpec{Name: "in", Type: tEnum, Enum: []string{"in", "on", "to"}, Required: true}
	return &pluginv1.Manifest{
		Name:        "deploy",
		Version:     "1.0.0",
		Description: "Deploys apps to their environments.",
		Commands: []*pluginv1.CommandSpec{
			{
				Name:       "deploy",
				Usage:      "deploy[:task][!] <app>[/<ref>] [to <env>[/<hosts>]]",
				Help:       "Deploys an app.\nThe ref defaults to the app's default branch.",
				Pattern:    deployPattern,
				Permission: "deploy",
				Args: []*pluginv1.ArgSpec{
					{Name: "task", Default: "deploy", Help: "the task to run"},
					{Name: "force", Type: tBool, Default: "false", Help: "skip the safety checks"},
					{Name: "app", Required: true, Help: "the app, as named in apps.json"},
					{Name: "ref", Help: "branch, tag or sha"},
					{Name: "env", Help: "the environment"},
					{Name: "hosts", Help: "comma-separated hosts"},
				},
				Examples: []string{"deploy project-x/my-branch to edge", "deploy! project-x to live"},
			},
			{
				Name:       "deploy:lock",
				Usage:      "deploy:lock <app> in <env> [reason]",
				Help:       "Locks an environment so nobody else deploys to it.",
				Permission: "deploy",
				Args: []*pluginv1.ArgSpec{
					{Name: "app", Required: true},
					prep,
					{Name: "env", Required: true},
					{Name: "reason", Rest: true},
				},
			},
			{
				Name:  "deploy:unlock",
				Usage: "deploy:unlock <app> in <env>",
				Help:  "Unlocks an environment.",
				Args: []*pluginv1.ArgSpec{
					{Name: "app", Required: true},
					prep,
					{Name: "env", Required: true},
				},
			},
		},
	}
}

func toolsManifest() *pluginv1.Manifest {
	return &pluginv1.Manifest{
		Name:        "tools",
		Description: "Small things.",
		Commands: []*pluginv1.CommandSpec{
			{
				Name:    "hello",
				Aliases: []string{"hi"},
				Help:    "Says hello.",
				Args:    []*pluginv1.ArgSpec{{Name: "name", Default: "world"}},
			},
			{
				Name: "echo",
				Help: "Repeats what you say.",
				Args: []*pluginv1.ArgSpec{{Name: "msg", Required: true, Rest: true}},
			},
			{
				Name:  "scale",
				Usage: "scale <app> <replicas> [wait] [force] [tier]",
				Help:  "Scales an app.",
				Args: []*pluginv1.ArgSpec{
					{Name: "app", Required: true},
					{Name: "replicas", Type: tInt, Required: true},
					{Name: "wait", Type: tDuration, Default: "5m"},
					{Name: "force", Type: tBool},
					{Name: "tier", Type: tEnum, Enum: []string{"small", "Large"}, Default: "small"},
				},
			},
			{
				Name: "note",
				Help: "Writes a note.",
				Args: []*pluginv1.ArgSpec{
					{Name: "title", Required: true},
					{Name: "body", Rest: true},
				},
			},
			{
				Name: "login",
				Help: "Stores your token.",
				Args: []*pluginv1.ArgSpec{
					{Name: "user", Required: true, Pattern: `[a-z]+`},
					{Name: "token", Required: true, Secret: true, Pattern: `[0-9a-f]{8}`},
				},
			},
		},
	}
}

func ciManifest() *pluginv1.Manifest {
	return &pluginv1.Manifest{
		Name: "ci",
		Commands: []*pluginv1.CommandSpec{
			{
				Name:    "ci-status",
				Aliases: []string{"ci"},
				Help:    "Shows the CI status of a ref.",
				Args: []*pluginv1.ArgSpec{
					{Name: "app", Required: true},
					{Name: "ref", Default: "main"},
				},
			},
			{
				Name:    "ping",
				Help:    "Answers pong, in any words.",
				Pattern: `(?:ping|are you there\??)`,
			},
		},
	}
}

// newTestRouter returns a router with the deploy, tools and ci plugins.
func newTestRouter(t testing.TB) *Router {
	t.Helper()
	r := New(Options{Name: "chima", Prefix: "!", MaxMessageBytes: 200})
	for _, m := range []*pluginv1.Manifest{deployManifest(), toolsManifest(), ciManifest()} {
		if err := r.SetPlugin(m.GetName(), m); err != nil {
			t.Fatalf("SetPlugin(%q): %v", m.GetName(), err)
		}
	}
	return r
}

// want is the part of a Result a test cares about. Args are compared only
// when non-nil; use map[string]string{} to require no arguments.
type want struct {
	kind       Kind
	plugin     string
	command    string
	args       map[string]string
	topic      string
	suggestion string
	usage      string
	problem    string
	argument   string
}

func checkResult(t *testing.T, text string, got Result, w want) {
	t.Helper()
	if got.Kind != w.kind {
		t.Fatalf("Parse(%q).Kind = %v, want %v (result %+v)", text, got.Kind, w.kind, got)
	}
	if got.Plugin != w.plugin {
		t.Errorf("Parse(%q).Plugin = %q, want %q", text, got.Plugin, w.plugin)
	}
	if name := got.Command.GetName(); name != w.command {
		t.Errorf("Parse(%q).Command = %q, want %q", text, name, w.command)
	}
	if w.args != nil && !maps.Equal(got.Args, w.args) {
		t.Errorf("Parse(%q).Args = %v, want %v", text, got.Args, w.args)
	}
	if got.Kind == Matched && got.Args == nil {
		t.Errorf("Parse(%q).Args is nil for a match", text)
	}
	for _, f := range []struct{ name, got, want string }{
		{"Topic", got.Topic, w.topic},
		{"Suggestion", got.Suggestion, w.suggestion},
		{"Usage", got.Usage, w.usage},
		{"Problem", got.Problem, w.problem},
		{"Argument", got.Argument, w.argument},
	} {
		if f.got != f.want {
			t.Errorf("Parse(%q).%s = %q, want %q", text, f.name, f.got, f.want)
		}
	}
}

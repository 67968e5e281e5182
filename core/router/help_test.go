package router

import (
	"strings"
	"testing"
)

func TestHelp(t *testing.T) {
	r := newTestRouter(t)
	state := func(plugin string) string {
		if plugin == "ci" {
			return "failed"
		}
		return "running"
	}
	tests := []struct {
		name     string
		topic    string
		stateOf  func(string) string
		title    string
		contains []string
		excludes []string
		status   string
	}{
		{
			name: "everything, grouped by plugin", topic: "", stateOf: state, title: "What I can do",
			contains: []string{
				"ci (not running: failed)\n  ci-status <app> [ref] — Shows the CI status of a ref.\n  ping — Answers pong, in any words.\n",
				"deploy — Deploys apps to their environments.\n  deploy[:task][!] <app>[/<ref>] [to <env>[/<hosts>]] — Deploys an app.\n  deploy:lock <app> in <env> [reason] — Locks",
				"tools — Small things.\n  hello [name] — Says hello.\n",
				"  help [topic] — Shows what I can do",
			},
			excludes: []string{"The ref defaults", "deploy (not running", "tools (not running"},
		},
		{
			name: "everything without knowing plugin states", topic: "", stateOf: nil, title: "What I can do",
			contains: []string{"ci\n  ci-status"},
			excludes: []string{"not running"},
		},
		{
			name: "one command", topic: "deploy", stateOf: state, title: "deploy[:task][!] <app>[/<ref>] [to <env>[/<hosts>]]",
			contains: []string{
				"Deploys an app.\nThe ref defaults to the app's default branch.",
				"  task — text, default deploy. The task to run.",
				"  force — yes or no, default false. Skip the safety checks.",
				"  app — text, required. The app, as named in apps.json.",
				"Examples:\n  deploy project-x/my-branch to edge\n  deploy! project-x to live",
				"Plugin: deploy (also deploy:lock, deploy:unlock)",
				"Permission: deploy",
			},
			excludes: []string{"not running"},
		},
		{
			name: "one command by alias, with types and enum values", topic: "SCALE", stateOf: state, title: "scale <app> <replicas> [wait] [force] [tier]",
			contains: []string{
				"  replicas — a whole number, required",
				"  wait — a duration such as 90s or 5m, default 5m0s",
				"  tier — one of small, Large, default small",
				"Permission: none, anyone may run it",
			},
		},
		{
			name: "a command of a failed plugin", topic: "ci", stateOf: state, title: "ci-status <app> [ref]",
			contains: []string{"Plugin ci is not running right now (failed).", "Aliases: ci"},
		},
		{
			name: "secret arguments", topic: "login", title: "login <user> <token>",
			contains: []string{"token — text, matching [0-9a-f]{8}, required, secret"},
		},
		{
			name: "one plugin", topic: "tools", stateOf: state, title: "The tools plugin",
			contains: []string{"Small things.\n  hello [name] — Says hello.\n  echo <msg...> — Repeats what you say."},
			excludes: []string{"deploy", "not running"},
		},
		{
			name: "a command with a suffix", topic: "deploy:lock", title: "deploy:lock <app> in <env> [reason]",
			contains: []string{"Locks an environment"},
		},
		{
			name: "help about help", topic: "help", title: "help [topic]",
			contains: []string{"Shows what I can do"},
		},
		{
			name: "an unknown topic close to a command", topic: "dploy", status: "warning",
			contains: []string{`I have no help about "dploy". Did you mean "deploy"?`, "Usage: deploy[:task]"},
		},
		{
			name: "an unknown topic close to a plugin", topic: "toolz", status: "warning",
			contains: []string{`Did you mean the "tools" plugin?`},
		},
		{
			name: "a mistyped suffix suggests the suffixed command", topic: "deploy:lokc", status: "warning",
			contains: []string{`Did you mean "deploy:lock"?`},
		},
		{
			name: "an unknown topic close to nothing", topic: "xyzzy", status: "warning",
			contains: []string{`I have no help about "xyzzy".`, `Say "help" to list everything`},
			excludes: []string{"Did you mean"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := r.Help(tt.topic, tt.stateOf)
			if out.Title != tt.title {
				t.Errorf("Help(%q).Title = %q, want %q", tt.topic, out.Title, tt.title)
			}
			if out.Status != tt.status {
				t.Errorf("Help(%q).Status = %q, want %q", tt.topic, out.Status, tt.status)
			}
			text := out.PlainText()
			for _, s := range tt.contains {
				if !strings.Contains(text, s) {
					t.Errorf("Help(%q) lacks %q:\n%s", tt.topic, s, text)
				}
			}
			for _, s := range tt.excludes {
				if strings.Contains(text, s) {
					t.Errorf("Help(%q) should not contain %q:\n%s", tt.topic, s, text)
				}
			}
		})
	}
}

func TestHelpOfPluginWithVersionAndNoCommands(t *testing.T) {
	r := newTestRouter(t)
	out := r.Help("deploy", nil)
	if !strings.HasPrefix(out.Title, "deploy[") {
		t.Fatalf("a command should win over its plugin of the same name, got %q", out.Title)
	}
	m := deployManifest()
	m.Commands = nil
	if err := r.SetPlugin("deploy", m); err != nil {
		t.Fatal(err)
	}
	out = r.Help("deploy", func(string) string { return "starting" })
	if out.Title != "The deploy plugin (1.0.0)" {
		t.Errorf("Title = %q", out.Title)
	}
	for _, s := range []string{"It is not running right now (starting).", "(no commands)"} {
		if !strings.Contains(out.Text, s) {
			t.Errorf("plugin help lacks %q:\n%s", s, out.Text)
		}
	}
}

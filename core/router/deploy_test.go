package router

import (
	"testing"

	"github.com/chimaops/chima/sdk/pluginv1"
)

// TestParseDeployGrammar checks hubot-deploy's grammar as a pattern command
// living next to positional "deploy:*" commands of the same plugin.
func TestParseDeployGrammar(t *testing.T) {
	r := newTestRouter(t)
	const usage = "deploy[:task][!] <app>[/<ref>] [to <env>[/<hosts>]]"
	deployed := func(args map[string]string) want {
		return want{kind: Matched, plugin: "deploy", command: "deploy", args: args}
	}
	tests := []struct {
		name string
		text string
		want want
	}{
		{"app alone takes the defaults", "deploy project-x",
			deployed(map[string]string{"task": "deploy", "force": "false", "app": "project-x"})},
		{"app, branch and environment", "deploy project-x/feature-1 to edge",
			deployed(map[string]string{"task": "deploy", "force": "false", "app": "project-x", "ref": "feature-1", "env": "edge"})},
		{"bang forces", "deploy! x to live",
			deployed(map[string]string{"task": "deploy", "force": "true", "app": "x", "env": "live"})},
		{"task, force, ref, env and hosts", "deploy:migrate! api/v1.2.3 in production/web-1,web-2",
			deployed(map[string]string{"task": "migrate", "force": "true", "app": "api", "ref": "v1.2.3", "env": "production", "hosts": "web-1,web-2"})},
		{"keyword case is ignored, ref case is kept", "Deploy project-x/Feature-ABC on edge",
			deployed(map[string]string{"task": "deploy", "force": "false", "app": "project-x", "ref": "Feature-ABC", "env": "edge"})},
		{"extra spaces between words", "deploy   x   to   edge",
			deployed(map[string]string{"task": "deploy", "force": "false", "app": "x", "env": "edge"})},

		{"deploy:lock is found by keyword before the pattern sees it", "deploy:lock app in env",
			want{kind: Matched, plugin: "deploy", command: "deploy:lock", args: map[string]string{"app": "app", "in": "in", "env": "env"}}},
		{"deploy:lock takes a reason", "deploy:lock app on live Big launch, hands off!",
			want{kind: Matched, plugin: "deploy", command: "deploy:lock", args: map[string]string{"app": "app", "in": "on", "env": "live", "reason": "Big launch, hands off!"}}},
		{"deploy:unlock with a wrong preposition", "deploy:unlock app at live",
			want{kind: Malformed, plugin: "deploy", command: "deploy:unlock", usage: "deploy:unlock <app> in <env>",
				problem: `in must be one of in, on, to, got "at"`, argument: "in"}},

		{"extra words after the environment", "deploy x to edge extra words",
			want{kind: Malformed, plugin: "deploy", command: "deploy", usage: usage, problem: `I didn't understand "deploy x to edge extra words"`}},
		{"deploy alone", "deploy",
			want{kind: Malformed, plugin: "deploy", command: "deploy", usage: usage, problem: `I didn't understand "deploy"`}},
		{"forced deploy without an app", "deploy!",
			want{kind: Malformed, plugin: "deploy", command: "deploy", usage: usage, problem: `I didn't understand "deploy!"`}},
		{"typo suggests deploy", "deplyo x",
			want{kind: Unknown, problem: `I don't know the command "deplyo"`, suggestion: "deploy", usage: usage}},
		{"typo with a task suggests deploy", "deplyo:migrate x",
			want{kind: Unknown, problem: `I don't know the command "deplyo:migrate"`, suggestion: "deploy", usage: usage}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkResult(t, tt.text, r.Parse(tt.text), tt.want)
		})
	}
}

func TestKeywordOfAPatternCommandWinsOverAnotherPatternThatMatches(t *testing.T) {
	r := New(Options{Name: "chima"})
	err := r.SetPlugin("deploy", &pluginv1.Manifest{Commands: []*pluginv1.CommandSpec{
		{Name: "deploy", Pattern: deployPattern, Args: []*pluginv1.ArgSpec{
			{Name: "task", Default: "deploy"}, {Name: "force", Type: tBool, Default: "false"},
			{Name: "app", Required: true}, {Name: "ref"}, {Name: "env"}, {Name: "hosts"},
		}},
		{Name: "deploy:unlock", Pattern: `deploy:unlock\s+(?P<app>[-_.0-9a-z]+)\s+in\s+(?P<env>[-_.0-9a-z]+)`, Args: []*pluginv1.ArgSpec{
			{Name: "app", Required: true}, {Name: "env", Required: true},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	res := r.Parse("deploy:unlock project-x in live")
	if res.Kind != Matched || res.Command.GetName() != "deploy:unlock" {
		t.Fatalf("deploy:unlock parsed as %v %q %v", res.Kind, res.Command.GetName(), res.Args)
	}
	// Its keyword still owns a text its pattern refuses: never a deploy
	// with task "unlock".
	res = r.Parse("deploy:unlock project-x")
	if res.Kind != Malformed || res.Command.GetName() != "deploy:unlock" {
		t.Fatalf("deploy:unlock project-x parsed as %v %q %v", res.Kind, res.Command.GetName(), res.Args)
	}
}

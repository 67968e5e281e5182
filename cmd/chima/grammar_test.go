package main

import (
	"encoding/json"
	"testing"
)

// TestDeployGrammarAsTheRouterParsesIt runs `chima explain` against the real
// deploy plugin, so the grammar tested is the plugin's own patterns in the
// core's router: every hubot-deploy form, and inputs that must not match.
func TestDeployGrammarAsTheRouterParsesIt(t *testing.T) {
	cfg, _, _ := deployConfig(t, "", `{"project-x": {"provider": "shell", "repository": "./x", "environments": ["edge", "live"]}}`, nil)
	type args = map[string]string
	deploy := func(task, force, app, ref, env, hosts string) args {
		return args{"task": task, "force": force, "app": app, "ref": ref, "env": env, "hosts": hosts}
	}
	cases := []struct {
		text    string
		kind    string
		command string
		args    args
	}{
		{"chima deploy project-x/feature-1 to edge", "Matched", "deploy", deploy("deploy", "false", "project-x", "feature-1", "edge", "")},
		{"chima deploy! project-x to live", "Matched", "deploy", deploy("deploy", "true", "project-x", "", "live", "")},
		{"chima deploy:migrate project-x/main to edge", "Matched", "deploy", deploy("migrate", "false", "project-x", "main", "edge", "")},
		{"chima deploy:migrate! project-x in edge/web1,web2", "Matched", "deploy", deploy("migrate", "true", "project-x", "", "edge", "web1,web2")},
		{"chima deploy project-x on prod", "Matched", "deploy", deploy("deploy", "false", "project-x", "", "prod", "")},
		{"chima deploy project-x", "Matched", "deploy", deploy("deploy", "false", "project-x", "", "", "")},
		{"chima DEPLOY Project-X/Feature-1 TO Edge", "Matched", "deploy", deploy("deploy", "false", "Project-X", "Feature-1", "Edge", "")},
		{"chima deploy project-x/a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2 to edge", "Matched", "deploy", deploy("deploy", "false", "project-x", "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2", "edge", "")},
		{"chima deploys project-x/main in edge", "Matched", "deploys", args{"app": "project-x", "ref": "main", "env": "edge"}},
		{"chima deploys project-x", "Matched", "deploys", args{"app": "project-x", "ref": "", "env": ""}},
		{"chima where can I deploy project-x", "Matched", "where", args{"app": "project-x"}},
		{"chima where can i deploy project-x?", "Matched", "where", args{"app": "project-x"}},
		{"chima deploy:lock project-x in live db migration, back at 3", "Matched", "deploy:lock", args{"app": "project-x", "env": "live", "reason": "db migration, back at 3"}},
		{"chima deploy:unlock project-x in live", "Matched", "deploy:unlock", args{"app": "project-x", "env": "live"}},
		{"chima deploy:cancel 42", "Matched", "deploy:cancel", args{"id": "42"}},
		{"chima deploy:status 42", "Matched", "deploy:status", args{"id": "42"}},
		{"chima rollback project-x in live", "Matched", "rollback", args{"app": "project-x", "env": "live"}},
		// Inputs that must not match.
		{"chima deploy project-x to edge please now", "Malformed", "", nil},
		{"chima deploy project-x to edge; rm -rf /", "Malformed", "", nil},
		{"chima deploy", "Malformed", "", nil},
		{"chima deploy Project X to edge", "Malformed", "", nil},
		{"chima deploy:cancel forty-two", "Malformed", "", nil},
		{"chima deploy:lock project-x", "Malformed", "", nil},
		{"chima rollback project-x", "Malformed", "", nil},
		{"chima deplyo project-x to edge", "Unknown", "", nil},
		{"deploy project-x to edge", "", "", nil}, // not addressed to the bot
	}
	for _, c := range cases {
		t.Run(c.text, func(t *testing.T) {
			out, stderr, code := chima(t, "explain", "--config", cfg, c.text)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			var ex explanation
			if err := json.Unmarshal([]byte(out), &ex); err != nil {
				t.Fatalf("%v: %s", err, out)
			}
			if ex.Kind != c.kind || (c.command != "" && ex.Name != c.command) {
				t.Fatalf("kind %q command %q, want %q %q\n%s", ex.Kind, ex.Name, c.kind, c.command, out)
			}
			for k, v := range c.args {
				if ex.Args[k] != v {
					t.Errorf("%s = %q, want %q", k, ex.Args[k], v)
				}
			}
			if c.kind == "Malformed" && ex.Usage == "" {
				t.Errorf("malformed input got no usage: %s", out)
			}
		})
	}
}

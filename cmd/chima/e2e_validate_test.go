package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// configWithDeploy writes a chima.yaml (writeConfig's, plus the deploy
// plugin) and, beside it, apps.json holding appsJSON; it returns the
// config's path and the apps file's.
func configWithDeploy(t *testing.T, appsJSON string) (cfg, appsFile string) {
	t.Helper()
	cfg = writeConfig(t, "")
	dir := filepath.Dir(cfg)
	appsFile = filepath.Join(dir, "apps.json")
	if err := os.WriteFile(appsFile, []byte(appsJSON), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	deploy := fmt.Sprintf("  - name: deploy\n    path: %s\n    settings:\n      apps_file: apps.json\n      workspace_dir: %s\nroles:",
		filepath.Join(binDir, "plugins/deploy"), filepath.Join(dir, "ws"))
	text := strings.Replace(string(b), "roles:", deploy, 1)
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, appsFile
}

func TestConfigValidateShowsTheAppsFilesProblemsWithFileLineAndKey(t *testing.T) {
	cfg, appsFile := configWithDeploy(t, `{
  "demo": {
    "provider": "shell",
    "repository": "acme/demo",
    "environments": ["staging"],
    "deploy_scrpt": "script/ship"
  }
}
`)
	out, stderr, code := chima(t, "config", "validate", "--config", cfg)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	want := "plugin deploy: " + appsFile + `:6: demo.deploy_scrpt: unknown key "deploy_scrpt" (did you mean "deploy_script"?)`
	if !strings.Contains(stderr, want+"\n") {
		t.Errorf("stderr lacks\n  %s\ngot:\n%s", want, stderr)
	}
	// Plugins built without Validate are said to be unchecked, not wrong.
	for _, name := range []string{"crashy"} {
		if !strings.Contains(stderr, "plugin "+name+": not validated") {
			t.Errorf("stderr does not say %s was not validated:\n%s", name, stderr)
		}
	}
	if strings.Contains(out, "is valid") {
		t.Errorf("an invalid apps file was called valid:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), "ws")); !os.IsNotExist(err) {
		t.Errorf("validating configured the deploy plugin: its workspace exists (%v)", err)
	}
}

func TestConfigValidateAcceptsAHeavenAppsFile(t *testing.T) {
	cfg, _ := configWithDeploy(t, `{
  "api": {
    "provider": "heroku",
    "repository": "acme/api",
    "environments": ["production", "staging"],
    "heroku_name": "acme-api",
    "heroku_staging_name": "acme-api-staging",
    "production_url": "https://api.acme.example",
    "staging_url": "https://api-staging.acme.example"
  },
  "shop": {
    "provider": "shell",
    "repository": "acme/shop",
    "environments": ["production"],
    "deploy_script": "script/ship",
    "github_api": "https://ghe.acme.example/api/v3"
  }
}
`)
	out, stderr, code := chima(t, "config", "validate", "--config", cfg)
	if code != 0 {
		t.Fatalf("exit %d, want 0; stdout:\n%s\nstderr:\n%s", code, out, stderr)
	}
	if !strings.Contains(out, "is valid") || !strings.Contains(out, "settings valid: hello, deploy") || !strings.Contains(out, "not validated: crashy") {
		t.Errorf("stdout does not say which plugins checked their settings:\n%s", out)
	}
}

func TestConfigValidateBuildsEveryAdapter(t *testing.T) {
	tests := []struct {
		name, old, new, want string
	}{
		{"the old mapping form says what to write",
			"  - {name: shell, type: shell, room: general, user: alice}\n", "  shell: {enabled: true, room: general, user: alice}\n",
			`:5: adapters: is a list now, one entry per adapter with a name and a type (the old form adapters: {shell: {enabled: true}} is gone); write instead: adapters: [{name: shell, type: shell, room: general, user: alice}]`},
		{"an unknown type lists the known ones",
			"  - {name: shell, type: shell, room: general, user: alice}\n", "  - {name: shell, type: shell, room: general, user: alice}\n  - {name: irc, type: irc}\n",
			`:6: adapters[1].type: "irc" is not an adapter type of this Chima; types: mattermost, shell, slack, webhook`},
		{"a misspelt key of the console",
			"  - {name: shell, type: shell, room: general, user: alice}\n", "  - {name: shell, type: shell, romo: general, user: alice}\n",
			`:5: adapters[0].romo: unknown key (did you mean "room"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := writeConfig(t, "")
			b, err := os.ReadFile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			text := strings.Replace(string(b), tt.old, tt.new, 1)
			if text == string(b) {
				t.Fatal("writeConfig's adapters changed; update this test")
			}
			if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			out, stderr, code := chima(t, "config", "validate", "--config", cfg)
			if code != 1 || !strings.Contains(stderr, cfg+tt.want+"\n") {
				t.Fatalf("exit %d; stderr lacks\n  %s%s\nstdout:\n%s\nstderr:\n%s", code, cfg, tt.want, out, stderr)
			}
		})
	}
}

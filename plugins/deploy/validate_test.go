package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/chimaops/chima/sdk"
	"github.com/chimaops/chima/sdk/pluginv1"
)

func TestValidateReportsTheAppsFilesProblemsWithFileLineAndKey(t *testing.T) {
	dir := t.TempDir()
	appsFile := filepath.Join(dir, "apps.json")
	write(t, appsFile, `{
  "demo": {
    "provider": "shell",
    "repository": "acme/demo",
    "environments": ["staging"],
    "deploy_scrpt": "script/ship",
    "qa_url": "https://qa.example"
  }
}
`, 0o644)
	ws := filepath.Join(dir, "ws")
	tests := []struct {
		name     string
		settings map[string]string
		want     []sdk.Problem
	}{
		{"a bad key and an unknown environment's URL, each at its line",
			map[string]string{"apps_file": "apps.json", "chima_config_dir": dir, "workspace_dir": ws},
			[]sdk.Problem{
				{File: appsFile, Line: 6, Key: "demo.deploy_scrpt", Message: `unknown key "deploy_scrpt" (did you mean "deploy_script"?)`},
				{File: appsFile, Line: 7, Key: "demo.qa_url", Message: `"qa" is not one of the environments (staging)`},
			}},
		{"a misspelt key, named with the key it may mean",
			map[string]string{"apps_file": "apps.json", "chima_config_dir": dir, "workspace_dir": ws, "checkout_dri": ws},
			[]sdk.Problem{{Key: "checkout_dri", Message: `unknown key (did you mean "checkout_dir"?)`}}},
		{"no apps file", map[string]string{"workspace_dir": ws},
			[]sdk.Problem{{Key: "apps_file", Message: "is required"}}},
		{"a missing apps file and a bad GitHub API URL",
			map[string]string{"apps_file": filepath.Join(dir, "nope.json"), "github_api_url": "ghe.example", "workspace_dir": ws},
			[]sdk.Problem{
				{Key: "apps_file", Message: "apps file: open " + filepath.Join(dir, "nope.json") + ": no such file or directory"},
				{Key: "github_api_url", Message: `"ghe.example" is not an http(s) URL`},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateSettings(t, tt.settings)
			var se *sdk.SettingsError
			if !errors.As(err, &se) {
				t.Fatalf("Validate = %v, want a *sdk.SettingsError", err)
			}
			if !reflect.DeepEqual(se.Problems, tt.want) {
				t.Errorf("problems:\n  %+v\nwant:\n  %+v", se.Problems, tt.want)
			}
		})
	}
	if _, err := os.Stat(ws); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Validate made the workspace %s (%v); it must act on nothing", ws, err)
	}
}

func TestValidateAcceptsAHeavenAppsFile(t *testing.T) {
	dir := t.TempDir()
	write(t, filepath.Join(dir, "apps.json"), `{"api": {"provider": "heroku", "repository": "acme/api",
		"environments": ["production", "staging"], "heroku_name": "acme-api", "production_url": "https://api.example"}}`, 0o644)
	ws := filepath.Join(dir, "ws")
	if err := validateSettings(t, map[string]string{"apps_file": "apps.json", "chima_config_dir": dir, "workspace_dir": ws}); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if _, err := os.Stat(ws); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Validate made the workspace %s (%v)", ws, err)
	}
}

func TestValidateReportsNotifyRoomsThatNoAdapterOfTheBotCanReach(t *testing.T) {
	dir := t.TempDir()
	appsFile := filepath.Join(dir, "apps.json")
	write(t, appsFile, `{"demo": {"provider": "shell", "repository": "acme/demo", "environments": ["staging"],
		"notify_rooms": ["shell:deployment", "slack:ops"]}}`, 0o644)
	err := validateSettings(t, map[string]string{
		"apps_file": "apps.json", "chima_config_dir": dir, "workspace_dir": filepath.Join(dir, "ws"),
		"chima_adapters": "shell", "chima_default_adapter": "shell",
	})
	var se *sdk.SettingsError
	if !errors.As(err, &se) {
		t.Fatalf("Validate = %v, want a *sdk.SettingsError: the plugin would refuse to start", err)
	}
	want := []sdk.Problem{{File: appsFile, Key: "demo.notify_rooms[1]", Message: `"slack:ops": the bot runs no slack adapter (it runs shell)`}}
	if !reflect.DeepEqual(se.Problems, want) {
		t.Errorf("problems:\n  %+v\nwant:\n  %+v", se.Problems, want)
	}
}

// validateSettings checks settings as `chima config validate` does, through the
// SDK's server, which decodes them into the plugin's settings type first.
func validateSettings(t *testing.T, settings map[string]string) error {
	t.Helper()
	resp, err := sdk.NewServer(newPlugin(&deployer{}).spec(), nil, nil).Validate(context.Background(), &pluginv1.ValidateRequest{Settings: settings})
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if len(resp.GetProblems()) == 0 {
		return nil
	}
	se := &sdk.SettingsError{}
	for _, p := range resp.GetProblems() {
		se.Problems = append(se.Problems, sdk.Problem{File: p.GetFile(), Line: int(p.GetLine()), Key: p.GetKey(), Message: p.GetMessage()})
	}
	return se
}

// configured configures d as the SDK does: the settings decoded into its
// settings type first.
func configured(d *deployer, s map[string]string) error {
	spec := newPlugin(d).spec()
	if err := sdk.DecodeSettings("", s, spec.Settings); err != nil {
		return err
	}
	return spec.Configure(s)
}

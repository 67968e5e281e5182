package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"

	"github.com/chimaops/chima/sdk"
)

// app is what the plugin reads of one app of the deploy plugin's apps file;
// the deploy plugin checks the rest.
type app struct {
	Name       string
	Repository string
	// Rooms are where the app's messages go: notify_rooms, else
	// allowed_rooms; each "room" or "adapter:room".
	Rooms []string
	// AutoDeploy lists the branches deployed to an environment when green.
	AutoDeploy []autoDeploy
}

// autoDeploy says that green commits of Branch of App are deployed to
// Environment.
type autoDeploy struct {
	App         string `json:"app" yaml:"app"`
	Branch      string `json:"branch" yaml:"branch"`
	Environment string `json:"environment" yaml:"environment"`
}

// appEntry is an app's JSON as the plugin reads it.
type appEntry struct {
	Repository   string          `json:"repository"`
	AllowedRooms []string        `json:"allowed_rooms"`
	NotifyRooms  []string        `json:"notify_rooms"`
	AutoDeploy   json.RawMessage `json:"auto_deploy"`
}

// config is the plugin's configuration, read from its settings.
type config struct {
	apps          map[string]*app
	apiURL        string
	token         string
	subscriptions []subscription
	autoDeploy    []autoDeploy
	deployAs      string
	people        map[string]string
	defaultAdptr  string
}

// resolver makes the paths of settings relative to chima.yaml's directory.
func resolver(s map[string]string) func(string) string {
	dir := s["chima_config_dir"]
	return func(p string) string {
		if p == "" || filepath.IsAbs(p) || dir == "" {
			return p
		}
		return filepath.Join(dir, p)
	}
}

// decodeStructured reads a setting's value as JSON, or else YAML (a JSON
// document is YAML too, but JSON's errors are clearer for JSON).
func decodeStructured(value string, into any) error {
	v := strings.TrimSpace(value)
	if strings.HasPrefix(v, "{") || strings.HasPrefix(v, "[") {
		if err := json.Unmarshal([]byte(v), into); err == nil {
			return nil
		}
	}
	if err := yaml.Unmarshal([]byte(v), into); err != nil {
		return fmt.Errorf("is neither JSON nor YAML of the expected shape: %w", err)
	}
	return nil
}

// checkSettings reads the settings and the apps file without acting on
// them, returning the configuration or a *sdk.SettingsError naming every
// problem with its key.
func checkSettings(s map[string]string) (*config, error) {
	var problems []sdk.Problem
	add := func(file, key, format string, args ...any) {
		problems = append(problems, sdk.Problem{File: file, Key: key, Message: fmt.Sprintf(format, args...)})
	}
	cfg := &config{apps: map[string]*app{}, people: map[string]string{}, defaultAdptr: s["chima_default_adapter"]}
	if f := s["apps_file"]; f != "" {
		path := resolver(s)(f)
		apps, err := loadApps(path)
		var fp fileProblems
		switch {
		case errors.As(err, &fp):
			problems = append(problems, fp...)
		case err != nil:
			add("", "apps_file", "%v", err)
		default:
			cfg.apps = apps
		}
	}
	if v := s["github_api_url"]; v != "" {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("", "github_api_url", "%q is not an http(s) URL", v)
		}
		cfg.apiURL = v
	}
	if v := s["subscriptions"]; strings.TrimSpace(v) != "" {
		var subs []subscription
		if err := decodeStructured(v, &subs); err != nil {
			add("", "subscriptions", "%v", err)
		}
		for i := range subs {
			sub := &subs[i]
			if err := sub.normalise(cfg.apps, cfg.defaultAdptr); err != nil {
				add("", fmt.Sprintf("subscriptions[%d]", i), "%v", err)
				continue
			}
			sub.Declared = true
			cfg.subscriptions = append(cfg.subscriptions, *sub)
		}
	}
	if v := s["auto_deploy"]; strings.TrimSpace(v) != "" {
		var ads []autoDeploy
		if err := decodeStructured(v, &ads); err != nil {
			add("", "auto_deploy", "%v", err)
		}
		for i, ad := range ads {
			switch {
			case cfg.apps[ad.App] == nil:
				add("", fmt.Sprintf("auto_deploy[%d].app", i), "%q is not an app of the apps file", ad.App)
			case ad.Branch == "" || ad.Environment == "":
				add("", fmt.Sprintf("auto_deploy[%d]", i), "needs a branch and an environment")
			default:
				cfg.autoDeploy = append(cfg.autoDeploy, ad)
			}
		}
	}
	for _, a := range cfg.apps {
		cfg.autoDeploy = append(cfg.autoDeploy, a.AutoDeploy...)
	}
	sort.Slice(cfg.autoDeploy, func(i, j int) bool { return cfg.autoDeploy[i].App < cfg.autoDeploy[j].App })
	cfg.deployAs = s["auto_deploy_as"]
	if len(cfg.autoDeploy) > 0 && cfg.deployAs == "" {
		add("", "auto_deploy_as", "is required with auto_deploy: the person of chima.yaml's people the deploys run as (chima.yaml must let the plugin run as them)")
	}
	if v := s["people"]; strings.TrimSpace(v) != "" {
		if err := decodeStructured(v, &cfg.people); err != nil {
			add("", "people", "%v", err)
		}
	}
	if len(problems) > 0 {
		return nil, &sdk.SettingsError{Problems: problems}
	}
	cfg.token = os.Getenv("GITHUB_TOKEN")
	return cfg, nil
}

// fileProblems are the problems of the apps file.
type fileProblems []sdk.Problem

func (f fileProblems) Error() string { return (&sdk.SettingsError{Problems: f}).Error() }

// loadApps reads the apps file: each app's repository, rooms and
// auto_deploy.
func loadApps(path string) (map[string]*app, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("apps file: %w", err)
	}
	var entries map[string]appEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fileProblems{{File: path, Message: "is not a JSON object of apps: " + err.Error()}}
	}
	var problems fileProblems
	out := map[string]*app{}
	for name, e := range entries {
		a := &app{Name: name, Repository: e.Repository, Rooms: e.NotifyRooms}
		if len(a.Rooms) == 0 {
			a.Rooms = e.AllowedRooms
		}
		if len(e.AutoDeploy) > 0 && string(e.AutoDeploy) != "null" {
			var one autoDeploy
			var many []autoDeploy
			if json.Unmarshal(e.AutoDeploy, &one) == nil {
				many = []autoDeploy{one}
			} else if err := json.Unmarshal(e.AutoDeploy, &many); err != nil {
				problems = append(problems, sdk.Problem{File: path, Key: name + ".auto_deploy",
					Message: `is neither {"branch": …, "environment": …} nor a list of them`})
				continue
			}
			for _, ad := range many {
				if ad.Branch == "" || ad.Environment == "" {
					problems = append(problems, sdk.Problem{File: path, Key: name + ".auto_deploy", Message: "needs a branch and an environment"})
					continue
				}
				ad.App = name
				a.AutoDeploy = append(a.AutoDeploy, ad)
			}
		}
		out[name] = a
	}
	if len(problems) > 0 {
		sort.Slice(problems, func(i, j int) bool { return problems[i].Key < problems[j].Key })
		return nil, problems
	}
	return out, nil
}

// githubRepo is the app's GitHub repository, "owner/name", or "" for a
// repository elsewhere (a local path, another git host).
func (a *app) githubRepo() string {
	r := strings.TrimSuffix(a.Repository, ".git")
	if strings.Count(r, "/") == 1 && !strings.HasPrefix(r, ".") && !strings.HasPrefix(r, "/") && !strings.Contains(r, ":") {
		return r
	}
	return ""
}

// appForRepo is the app of a GitHub repository, or nil.
func (cfg *config) appForRepo(repo string) *app {
	names := make([]string, 0, len(cfg.apps))
	for n := range cfg.apps {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.EqualFold(cfg.apps[n].githubRepo(), repo) {
			return cfg.apps[n]
		}
	}
	return nil
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"

	"github.com/chimaops/chima/plugins/internal/configpath"
	"github.com/chimaops/chima/plugins/internal/ghclient"
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

// settings are the plugin's settings (chima.yaml plugins[].settings), which
// the SDK decodes strictly (Plugin.Settings): an unknown key or a value of
// the wrong shape is a Problem naming its key path. A list or map is
// written nested in YAML or, as before settings could nest, as a string of
// YAML or JSON.
type settings struct {
	// AppsFile is the deploy plugin's apps file, relative to chima.yaml.
	AppsFile string `settings:"apps_file"`
	// APIURL is GitHub's REST API; GitHub's own when empty.
	APIURL string `settings:"github_api_url"`
	// AppID and InstallationID name the GitHub App installation the plugin
	// acts as, with the secret GITHUB_APP_PRIVATE_KEY; without them the
	// secret GITHUB_TOKEN authenticates.
	AppID          int64 `settings:"github_app_id"`
	InstallationID int64 `settings:"github_installation_id"`
	// Subscriptions are the rooms that hear of CI, declared.
	Subscriptions []subscription `settings:"subscriptions"`
	// AutoDeploy lists branches deployed when green, besides the apps
	// file's auto_deploy.
	AutoDeploy []autoDeploy `settings:"auto_deploy"`
	// AutoDeployAs is the person auto-deploys run as.
	AutoDeployAs string `settings:"auto_deploy_as"`
	// People maps a GitHub login to a chat name.
	People map[string]string `settings:"people"`
	// ConfigDir is chima.yaml's folder, which relative paths are against.
	ConfigDir string `settings:"chima_config_dir"`
	// DefaultAdapter is the adapter a bare room means.
	DefaultAdapter string `settings:"chima_default_adapter"`
}

// The secrets the plugin reads from its environment (chima.yaml
// plugins[].secrets).
const (
	secretToken      = ghclient.SecretToken
	secretPrivateKey = ghclient.SecretPrivateKey
)

// config is the plugin's configuration, read from its settings.
type config struct {
	apps          map[string]*app
	apiURL        string
	auth          ghclient.Auth
	subscriptions []subscription
	autoDeploy    []autoDeploy
	deployAs      string
	people        map[string]string
	defaultAdptr  string
}

// checkSettings checks the decoded settings, the secrets (read with env)
// and the apps file without acting on them, returning the configuration or
// a *sdk.SettingsError naming every problem with its key.
func checkSettings(s *settings, env func(string) string) (*config, error) {
	var problems []sdk.Problem
	add := func(file, key, format string, args ...any) {
		problems = append(problems, sdk.Problem{File: file, Key: key, Message: fmt.Sprintf(format, args...)})
	}
	cfg := &config{apps: map[string]*app{}, people: map[string]string{}, defaultAdptr: s.DefaultAdapter}
	if s.AppsFile != "" {
		apps, err := loadApps(configpath.Resolve(s.ConfigDir, s.AppsFile))
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
	if v := s.APIURL; v != "" {
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("", "github_api_url", "%q is not an http(s) URL", v)
		}
		cfg.apiURL = v
	}
	auth, authProblems := ghclient.ReadAuth(s.AppID, s.InstallationID, env)
	problems = append(problems, authProblems...)
	for i := range s.Subscriptions {
		sub := s.Subscriptions[i]
		if err := sub.normalise(cfg.apps, cfg.defaultAdptr); err != nil {
			add("", fmt.Sprintf("subscriptions[%d]", i), "%v", err)
			continue
		}
		sub.Declared = true
		cfg.subscriptions = append(cfg.subscriptions, sub)
	}
	for i, ad := range s.AutoDeploy {
		switch {
		case cfg.apps[ad.App] == nil:
			add("", fmt.Sprintf("auto_deploy[%d].app", i), "%q is not an app of the apps file", ad.App)
		case ad.Branch == "" || ad.Environment == "":
			add("", fmt.Sprintf("auto_deploy[%d]", i), "needs a branch and an environment")
		default:
			cfg.autoDeploy = append(cfg.autoDeploy, ad)
		}
	}
	for _, a := range cfg.apps {
		cfg.autoDeploy = append(cfg.autoDeploy, a.AutoDeploy...)
	}
	sort.Slice(cfg.autoDeploy, func(i, j int) bool { return cfg.autoDeploy[i].App < cfg.autoDeploy[j].App })
	cfg.deployAs = s.AutoDeployAs
	if len(cfg.autoDeploy) > 0 && cfg.deployAs == "" {
		add("", "auto_deploy_as", "is required with auto_deploy: the person of chima.yaml's people the deploys run as (chima.yaml must let the plugin run as them)")
	}
	for login, name := range s.People {
		cfg.people[login] = name
	}
	if len(problems) > 0 {
		return nil, &sdk.SettingsError{Problems: problems}
	}
	cfg.auth = auth
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

package apps

import (
	"encoding/json"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/chimaops/chima/plugins/deploy/internal/validate"
)

// Defaults applied by Load (and ApplyDefaults) to keys that are absent.
const (
	// FallbackRef is the ref deployed when neither the command, the app's
	// default_ref nor the repository's default branch gives one.
	FallbackRef = "main"
	// DefaultTimeout is how long a deployment may run.
	DefaultTimeout = 30 * time.Minute
	// DefaultScript is the shell provider's script, relative to the checkout.
	DefaultScript = "script/deploy"
	// DefaultTask is the Fabric and Capistrano task of a plain deploy.
	DefaultTask = "deploy"
	// DefaultPlaybook is the Ansible playbook, relative to the checkout.
	DefaultPlaybook = "deploy.yml"
	// DefaultHerokuAPI is the Heroku Platform API's base URL.
	DefaultHerokuAPI = "https://api.heroku.com"
	// DefaultHerokuTokenEnv names the environment variable holding the
	// Heroku API token.
	DefaultHerokuTokenEnv = "HEROKU_API_KEY"
)

// Providers lists the provider names an app may use.
var Providers = []string{"shell", "fabric", "capistrano", "ansible", "heroku"}

// App is one app of the apps file, with defaults applied.
type App struct {
	// Name is the app's key in the file: "project-x".
	Name string
	// Provider is how the app is deployed: one of Providers.
	Provider string
	// Repository is where the code lives, as written in the file:
	// "owner/name" on GitHub, a local path (absolute, or relative to the
	// apps file), or any git URL. See Kind, GitHubRepo and CloneURL.
	Repository string
	// AutoMerge asks GitHub to merge the default branch into the ref first.
	AutoMerge bool
	// Environments the app can be deployed to; never empty after Load.
	Environments []string
	// AllowedRooms are the rooms deploys may come from, each "room" or
	// "adapter:room"; empty allows every room.
	AllowedRooms []string
	// RequiredContexts are the commit statuses GitHub must see green. Nil
	// means GitHub's default (all of them); an empty list means none.
	RequiredContexts []string
	// DefaultEnvironment is used when a command names no environment.
	DefaultEnvironment string
	// DefaultRef is the configured default_ref, or "" when unset; see
	// ResolveRef.
	DefaultRef string
	// EnvironmentURLs maps an environment to the URL where it can be seen.
	EnvironmentURLs map[string]string
	// Timeout bounds one deployment; DefaultTimeout when unset.
	Timeout time.Duration
	// NotifyRooms also hear about every deployment; "room" or "adapter:room".
	NotifyRooms []string
	// ProtectedEnvironments need an approval before a deploy: the plugin
	// asks the host for one (sdk.NeedApproval) and deploys once approved.
	ProtectedEnvironments []string
	// Approvers are the roles or people of chima.yaml who approve deploys
	// to the protected environments; empty: those of the chima.yaml policy
	// that has an approval for deploy.
	Approvers []string
	// GitHubAPI is the GitHub REST API this app's deployments are made on
	// (hubot-deploy's github_api, for a GitHub Enterprise Server), or "" for
	// the plugin's github_api_url.
	GitHubAPI string

	// Script is the shell provider's script path inside the checkout.
	Script string
	// Fabric holds the fabric provider's settings.
	Fabric FabricSettings
	// Capistrano holds the capistrano provider's settings.
	Capistrano CapistranoSettings
	// Ansible holds the ansible provider's settings.
	Ansible AnsibleSettings
	// Heroku holds the heroku provider's settings.
	Heroku HerokuSettings

	// baseDir is the apps file's directory, for relative repository paths.
	baseDir string
}

// FabricSettings configures the fabric provider.
type FabricSettings struct {
	// Task is the fabfile task of a plain deploy; DefaultTask when unset.
	Task string `json:"task,omitempty"`
}

// CapistranoSettings configures the capistrano provider.
type CapistranoSettings struct {
	// Task is the cap task of a plain deploy; DefaultTask when unset.
	Task string `json:"task,omitempty"`
	// Script is the executable inside the checkout that runs Capistrano, such
	// as a "bin/cap" binstub (Heaven's deploy_script); "" runs cap from PATH.
	Script string `json:"script,omitempty"`
}

// AnsibleSettings configures the ansible provider.
type AnsibleSettings struct {
	// Playbook is the playbook path inside the checkout; DefaultPlaybook
	// when unset.
	Playbook string `json:"playbook,omitempty"`
	// Inventory is an inventory path inside the checkout or an absolute
	// path on the bot's machine; when empty no -i is given and Ansible uses
	// its own default (an ansible.cfg in the repository, for example).
	Inventory string `json:"inventory,omitempty"`
	// ExtraVars are passed to the playbook along with the deploy variables.
	// Their names may not be those of ReservedAnsibleVars.
	ExtraVars map[string]any `json:"extra_vars,omitempty"`
}

// ReservedAnsibleVars are the extra vars the ansible provider sets for every
// deployment; extra_vars may not set them.
var ReservedAnsibleVars = []string{
	"deploy_app", "deploy_env", "deploy_ref", "deploy_sha", "deploy_task",
	"deploy_hosts", "deploy_user", "deployment_id",
}

// HerokuSettings configures the heroku provider.
type HerokuSettings struct {
	// Apps maps each environment to its Heroku app name.
	Apps map[string]string `json:"apps,omitempty"`
	// APIURL is the Platform API's base URL; DefaultHerokuAPI when unset.
	APIURL string `json:"api_url,omitempty"`
	// TokenEnv names the environment variable holding the API token;
	// DefaultHerokuTokenEnv when unset. The token itself is never in the
	// file.
	TokenEnv string `json:"token_env,omitempty"`
}

// ApplyDefaults fills the unset settings with their defaults. Load calls
// it; call it on an App built by hand.
func (a *App) ApplyDefaults() {
	if a.Timeout <= 0 {
		a.Timeout = DefaultTimeout
	}
	if a.Script == "" {
		a.Script = DefaultScript
	}
	if a.Fabric.Task == "" {
		a.Fabric.Task = DefaultTask
	}
	if a.Capistrano.Task == "" {
		a.Capistrano.Task = DefaultTask
	}
	if a.Ansible.Playbook == "" {
		a.Ansible.Playbook = DefaultPlaybook
	}
	if a.Heroku.APIURL == "" {
		a.Heroku.APIURL = DefaultHerokuAPI
	}
	if a.Heroku.TokenEnv == "" {
		a.Heroku.TokenEnv = DefaultHerokuTokenEnv
	}
}

var envAliases = map[string]string{"prod": "production", "stg": "staging"}

// CanonicalEnv lower-cases an environment name and expands the aliases
// "prod" (production) and "stg" (staging).
func CanonicalEnv(name string) string {
	name = strings.ToLower(strings.TrimSpace(name))
	if full, ok := envAliases[name]; ok {
		return full
	}
	return name
}

// ResolveEnv picks the environment a command meant. An empty request means
// the app's default_environment, else its only environment; with several and
// no default it returns an *AmbiguousEnvError asking which one (it never
// falls back to production). A named environment matches case-insensitively
// and through the aliases of CanonicalEnv in both directions ("prod" finds
// "production" and "production" finds "prod"); one the app doesn't have is
// an *UnknownEnvError listing the app's environments.
func (a *App) ResolveEnv(requested string) (string, error) {
	req := strings.ToLower(strings.TrimSpace(requested))
	if req == "" {
		switch {
		case a.DefaultEnvironment != "":
			return a.DefaultEnvironment, nil
		case len(a.Environments) == 1:
			return a.Environments[0], nil
		}
		return "", &AmbiguousEnvError{App: a.Name, Environments: slices.Clone(a.Environments)}
	}
	if slices.Contains(a.Environments, req) {
		return req, nil
	}
	canon := CanonicalEnv(req)
	for _, env := range a.Environments {
		if CanonicalEnv(env) == canon {
			return env, nil
		}
	}
	return "", &UnknownEnvError{App: a.Name, Env: requested, Environments: slices.Clone(a.Environments)}
}

// HasEnv reports whether env is one of the app's environments, exactly.
func (a *App) HasEnv(env string) bool { return slices.Contains(a.Environments, env) }

// ResolveRef picks the ref to deploy: the requested one, else the app's
// default_ref, else repoDefault (the repository's default branch, which the
// caller may look up with workspace.Cache.DefaultBranch, or pass ""), else
// FallbackRef. The result is checked with validate.Ref.
func (a *App) ResolveRef(requested, repoDefault string) (string, error) {
	ref := requested
	for _, r := range []string{a.DefaultRef, repoDefault, FallbackRef} {
		if ref != "" {
			break
		}
		ref = r
	}
	if err := validate.Ref(ref); err != nil {
		return "", err
	}
	return ref, nil
}

// EnvURL returns the URL configured for env, or "".
func (a *App) EnvURL(env string) string { return a.EnvironmentURLs[env] }

// Protected reports whether env needs an approval before a deploy.
func (a *App) Protected(env string) bool { return slices.Contains(a.ProtectedEnvironments, env) }

// HerokuApp returns the Heroku app name for env, or "".
func (a *App) HerokuApp(env string) string { return a.Heroku.Apps[env] }

// Room is a parsed room reference from allowed_rooms or notify_rooms.
type Room struct {
	// Adapter is the chat adapter ("slack", "mattermost"), or "" for any.
	Adapter string
	// Name is the room, without a leading "#".
	Name string
}

// String formats the room as it is written in the file.
func (r Room) String() string {
	if r.Adapter == "" {
		return r.Name
	}
	return r.Adapter + ":" + r.Name
}

var adapterRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// ParseRoom parses "room", "#room" or "adapter:room".
func ParseRoom(s string) Room {
	s = strings.TrimSpace(s)
	if adapter, name, ok := strings.Cut(s, ":"); ok && adapterRE.MatchString(adapter) {
		return Room{Adapter: adapter, Name: strings.TrimPrefix(name, "#")}
	}
	return Room{Name: strings.TrimPrefix(s, "#")}
}

// Matches reports whether a message from room on adapter is this room. Names
// compare case-insensitively, ignoring a leading "#".
func (r Room) Matches(adapter, room string) bool {
	if r.Adapter != "" && r.Adapter != adapter {
		return false
	}
	return strings.EqualFold(r.Name, strings.TrimPrefix(room, "#"))
}

// RoomAllowed reports whether deploys of the app may come from room on
// adapter. room is what the service calls it, an id on Slack
// ("C024BE91L"); names are its other names, its name ("deployment") when
// the host knows it, so that allowed_rooms may give either. An app without
// allowed_rooms may be deployed from any room.
func (a *App) RoomAllowed(adapter, room string, names ...string) bool {
	if len(a.AllowedRooms) == 0 {
		return true
	}
	for _, s := range a.AllowedRooms {
		r := ParseRoom(s)
		if r.Matches(adapter, room) {
			return true
		}
		for _, n := range names {
			if n != "" && r.Matches(adapter, n) {
				return true
			}
		}
	}
	return false
}

// CheckRoom returns a *RoomError when deploys of the app may not come from
// room (or its other names, see RoomAllowed) on adapter, and nil when they
// may. The error names the room by its name when it has one.
func (a *App) CheckRoom(adapter, room string, names ...string) error {
	if a.RoomAllowed(adapter, room, names...) {
		return nil
	}
	shown := room
	for _, n := range names {
		if n != "" {
			shown = n
			break
		}
	}
	return &RoomError{App: a.Name, Adapter: adapter, Room: shown, Allowed: slices.Clone(a.AllowedRooms)}
}

// NotifyTargets returns the parsed notify_rooms.
func (a *App) NotifyTargets() []Room {
	rooms := make([]Room, 0, len(a.NotifyRooms))
	for _, s := range a.NotifyRooms {
		rooms = append(rooms, ParseRoom(s))
	}
	return rooms
}

// RepoKind says what kind of place a repository setting names.
type RepoKind int

// Repository kinds.
const (
	// GitHub is an "owner/name" repository on GitHub.
	GitHub RepoKind = iota + 1
	// LocalPath is a repository on the bot's file system.
	LocalPath
	// GitURL is any other git URL: https://, ssh://, git://, file:// or
	// scp-like user@host:path.
	GitURL
)

// String names the kind.
func (k RepoKind) String() string {
	switch k {
	case GitHub:
		return "github"
	case LocalPath:
		return "local path"
	case GitURL:
		return "git url"
	}
	return "unknown"
}

var (
	githubRE = regexp.MustCompile(`^([A-Za-z0-9][A-Za-z0-9-]{0,38})/([A-Za-z0-9._-]+)$`)
	scpRE    = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:`)
)

// classify splits a repository setting into its kind and, for GitHub, the
// owner and name. A path with exactly one slash that could be a GitHub
// repository is one; write "./dir/repo" for such a local path.
func classify(repo string) (kind RepoKind, owner, name string) {
	switch {
	case strings.Contains(repo, "://") || scpRE.MatchString(repo):
		return GitURL, "", ""
	case filepath.IsAbs(repo) || strings.HasPrefix(repo, "."):
		return LocalPath, "", ""
	}
	if m := githubRE.FindStringSubmatch(repo); m != nil && m[2] != "." && m[2] != ".." {
		return GitHub, m[1], strings.TrimSuffix(m[2], ".git")
	}
	return LocalPath, "", ""
}

// Kind says whether Repository is on GitHub, a local path or a git URL.
func (a *App) Kind() RepoKind {
	k, _, _ := classify(a.Repository)
	return k
}

// GitHubRepo returns the owner and name of a GitHub repository; ok is false
// for local paths and other URLs.
func (a *App) GitHubRepo() (owner, name string, ok bool) {
	k, owner, name := classify(a.Repository)
	return owner, name, k == GitHub
}

// CloneURL returns what git clones: https://github.com/owner/name.git for
// GitHub, an absolute path for a local path (relative ones are taken from
// the apps file's directory, or the working directory for an App built by
// hand), and the URL itself otherwise.
func (a *App) CloneURL() string {
	k, owner, name := classify(a.Repository)
	switch k {
	case GitHub:
		return "https://github.com/" + owner + "/" + name + ".git"
	case LocalPath:
		p := a.Repository
		if !filepath.IsAbs(p) {
			p = filepath.Join(a.baseDir, p)
			if abs, err := filepath.Abs(p); err == nil {
				p = abs
			}
		}
		return filepath.Clean(p)
	}
	return a.Repository
}

// fileApp is the file's shape, for MarshalJSON.
type fileApp struct {
	Provider              string              `json:"provider"`
	AutoMerge             bool                `json:"auto_merge"`
	Repository            string              `json:"repository"`
	Environments          []string            `json:"environments"`
	AllowedRooms          []string            `json:"allowed_rooms,omitempty"`
	RequiredContexts      *[]string           `json:"required_contexts,omitempty"`
	DefaultEnvironment    string              `json:"default_environment,omitempty"`
	DefaultRef            string              `json:"default_ref,omitempty"`
	EnvironmentURLs       map[string]string   `json:"environment_urls,omitempty"`
	Timeout               string              `json:"timeout,omitempty"`
	NotifyRooms           []string            `json:"notify_rooms,omitempty"`
	ProtectedEnvironments []string            `json:"protected_environments,omitempty"`
	Approvers             []string            `json:"approvers,omitempty"`
	GitHubAPI             string              `json:"github_api,omitempty"`
	Script                string              `json:"script,omitempty"`
	Fabric                *FabricSettings     `json:"fabric,omitempty"`
	Capistrano            *CapistranoSettings `json:"capistrano,omitempty"`
	Ansible               *AnsibleSettings    `json:"ansible,omitempty"`
	Heroku                *HerokuSettings     `json:"heroku,omitempty"`
}

// MarshalJSON writes the app in the apps file's shape (without its name),
// with defaults applied and only the active provider's settings. It holds no
// secrets, so it can go into a GitHub deployment payload.
func (a App) MarshalJSON() ([]byte, error) {
	f := fileApp{
		Provider: a.Provider, AutoMerge: a.AutoMerge, Repository: a.Repository,
		Environments: a.Environments, AllowedRooms: a.AllowedRooms,
		DefaultEnvironment: a.DefaultEnvironment, DefaultRef: a.DefaultRef,
		EnvironmentURLs: a.EnvironmentURLs, NotifyRooms: a.NotifyRooms,
		ProtectedEnvironments: a.ProtectedEnvironments, Approvers: a.Approvers, GitHubAPI: a.GitHubAPI,
	}
	if a.RequiredContexts != nil {
		rc := a.RequiredContexts
		f.RequiredContexts = &rc
	}
	fabric, capistrano, ansible, heroku := a.Fabric, a.Capistrano, a.Ansible, a.Heroku
	if a.Timeout > 0 {
		f.Timeout = a.Timeout.String()
	}
	switch a.Provider {
	case "shell":
		f.Script = a.Script
	case "fabric":
		f.Fabric = &fabric
	case "capistrano":
		f.Capistrano = &capistrano
	case "ansible":
		f.Ansible = &ansible
	case "heroku":
		f.Heroku = &heroku
	}
	return json.Marshal(f)
}

// UnmarshalJSON reads one app in the apps file's shape (as MarshalJSON
// writes it, e.g. from a deployment payload) with the checks of Load. The
// app keeps its Name; a relative local repository is taken from the
// working directory. An invalid app is a *LoadError.
func (a *App) UnmarshalJSON(data []byte) error {
	name := a.Name
	if name == "" {
		name = "app"
	}
	p := &parser{data: data}
	got := p.app(name, data, 0)
	if len(p.problems) > 0 {
		return &LoadError{File: "JSON", Problems: p.problems}
	}
	got.Name = a.Name
	*a = *got
	return nil
}

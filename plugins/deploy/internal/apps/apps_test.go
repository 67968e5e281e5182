package apps

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

const seedFile = `{"project-x": {"provider": "fabric", "auto_merge": false, "repository": "oursky/project-x",
 "environments": ["live","edge"], "allowed_rooms": ["deployment"]}}`

const fullFile = `{
  "project-x": {
    "provider": "ansible",
    "auto_merge": true,
    "repository": "oursky/project-x",
    "environments": ["production", "staging", "edge"],
    "allowed_rooms": ["deployment", "slack:ops"],
    "required_contexts": ["ci/build", "ci/test"],
    "default_environment": "staging",
    "default_ref": "develop",
    "environment_urls": {"production": "https://x.example.com", "staging": "https://staging.x.example.com"},
    "timeout": "45m",
    "notify_rooms": ["releases", "mattermost:town-square"],
    "protected_environments": ["production"],
    "approvers": ["release-managers", "alice"],
    "script": "bin/ship",
    "fabric": {"task": "ship"},
    "capistrano": {"task": "deploy:full"},
    "ansible": {"playbook": "ops/site.yml", "inventory": "ops/hosts", "extra_vars": {"k": "v", "n": 3}},
    "heroku": {"apps": {"production": "x-prod"}, "api_url": "http://127.0.0.1:5000", "token_env": "X_HEROKU_TOKEN"}
  },
  "demo": {"provider": "shell", "repository": "../repos/demo", "environments": ["staging"], "required_contexts": []}
}`

func writeFile(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "apps.json")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustParse(t *testing.T, content string) *Set {
	t.Helper()
	s, err := Parse("apps.json", []byte(content), "/etc/chima")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}

func mustApp(t *testing.T, s *Set, name string) *App {
	t.Helper()
	a, err := s.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestLoadReadsTheSeedShape(t *testing.T) {
	path := writeFile(t, seedFile)
	s, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if s.Path() != path || s.Len() != 1 {
		t.Errorf("Path=%q Len=%d", s.Path(), s.Len())
	}
	a := mustApp(t, s, "project-x")
	want := &App{
		Name: "project-x", Provider: "fabric", Repository: "oursky/project-x",
		Environments: []string{"live", "edge"}, AllowedRooms: []string{"deployment"},
		Timeout: DefaultTimeout, Script: DefaultScript,
		Fabric: FabricSettings{Task: "deploy"}, Capistrano: CapistranoSettings{Task: "deploy"},
		Ansible: AnsibleSettings{Playbook: "deploy.yml"},
		Heroku:  HerokuSettings{APIURL: DefaultHerokuAPI, TokenEnv: DefaultHerokuTokenEnv},
		baseDir: filepath.Dir(path),
	}
	if !reflect.DeepEqual(a, want) {
		t.Errorf("got  %+v\nwant %+v", a, want)
	}
	if a.RequiredContexts != nil {
		t.Errorf("absent required_contexts should stay nil (GitHub's default), got %#v", a.RequiredContexts)
	}
}

func TestLoadReadsEverySupportedKey(t *testing.T) {
	s := mustParse(t, fullFile)
	if got := s.Names(); !reflect.DeepEqual(got, []string{"demo", "project-x"}) {
		t.Errorf("Names = %q", got)
	}
	a := mustApp(t, s, "project-x")
	checks := []struct {
		name      string
		got, want any
	}{
		{"provider", a.Provider, "ansible"},
		{"auto_merge", a.AutoMerge, true},
		{"environments", a.Environments, []string{"production", "staging", "edge"}},
		{"allowed_rooms", a.AllowedRooms, []string{"deployment", "slack:ops"}},
		{"required_contexts", a.RequiredContexts, []string{"ci/build", "ci/test"}},
		{"default_environment", a.DefaultEnvironment, "staging"},
		{"default_ref", a.DefaultRef, "develop"},
		{"environment_urls", a.EnvURL("staging"), "https://staging.x.example.com"},
		{"timeout", a.Timeout, 45 * time.Minute},
		{"notify_rooms", a.NotifyTargets(), []Room{{Name: "releases"}, {Adapter: "mattermost", Name: "town-square"}}},
		{"protected_environments", a.Protected("production"), true},
		{"approvers", slices.Equal(a.Approvers, []string{"release-managers", "alice"}), true},
		{"unprotected env", a.Protected("staging"), false},
		{"script", a.Script, "bin/ship"},
		{"fabric.task", a.Fabric.Task, "ship"},
		{"capistrano.task", a.Capistrano.Task, "deploy:full"},
		{"ansible.playbook", a.Ansible.Playbook, "ops/site.yml"},
		{"ansible.inventory", a.Ansible.Inventory, "ops/hosts"},
		{"ansible.extra_vars", a.Ansible.ExtraVars, map[string]any{"k": "v", "n": 3.0}},
		{"heroku.apps", a.HerokuApp("production"), "x-prod"},
		{"heroku.api_url", a.Heroku.APIURL, "http://127.0.0.1:5000"},
		{"heroku.token_env", a.Heroku.TokenEnv, "X_HEROKU_TOKEN"},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	demo := mustApp(t, s, "demo")
	if demo.RequiredContexts == nil || len(demo.RequiredContexts) != 0 {
		t.Errorf("required_contexts [] must stay an empty, non-nil list (no checks), got %#v", demo.RequiredContexts)
	}
}

func TestLoadReportsAMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.json"))
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("want a not-exist error, got %v", err)
	}
}

func TestLoadNamesTheFileInEveryProblem(t *testing.T) {
	path := writeFile(t, `{"project-x": {"provider": "fabric", "repository": "o/r", "enironments": ["live"]}}`)
	_, err := Load(path)
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("want *LoadError, got %v", err)
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		if !strings.HasPrefix(line, path+":1: project-x: ") {
			t.Errorf("line %q does not start with the file and app", line)
		}
	}
}

func TestParseProblems(t *testing.T) {
	base := `"provider": "shell", "repository": "o/r", "environments": ["staging", "production"]`
	tests := []struct {
		name string
		file string
		want []string // the complete list of problems, in order
	}{
		{
			"a typo in a key is named with a suggestion",
			`{"project-x": {"provider": "fabric", "auto_merge": false, "repository": "oursky/project-x", "enironments": ["live","edge"], "allowed_rooms": ["deployment"]}}`,
			[]string{
				`apps.json: project-x: unknown key "enironments" (did you mean "environments"?)`,
				`apps.json: project-x: environments is missing; list at least one, e.g. ["staging", "production"]`,
			},
		},
		{
			"an unknown key without a near match gets no suggestion",
			`{"a": {` + base + `, "colour": "blue"}}`,
			[]string{`apps.json: a: unknown key "colour"`},
		},
		{
			"every problem of every app is listed",
			`{"a": {` + base + `, "enviroments": [], "timout": "5m"},
			  "b": {"provider": "capistano", "repository": "o/r", "environments": ["live"], "default_environment": "prod"}}`,
			[]string{
				`apps.json: a: unknown key "enviroments" (did you mean "environments"?)`,
				`apps.json: a: unknown key "timout" (did you mean "timeout"?)`,
				`apps.json: b: provider: "capistano" is not a provider (did you mean "capistrano"?); use one of shell, fabric, capistrano, ansible, heroku`,
				`apps.json: b: default_environment: "prod" is not one of the environments (live)`,
			},
		},
		{
			"unknown keys inside provider settings are named",
			`{"a": {` + base + `, "fabric": {"tsk": "x"}, "heroku": {"app": {}}}}`,
			[]string{
				`apps.json: a: fabric: unknown key "tsk" (did you mean "task"?)`,
				`apps.json: a: heroku: unknown key "app" (did you mean "apps"?)`,
			},
		},
		{
			"wrong types say what was expected",
			`{"a": {"provider": 1, "repository": "o/r", "environments": "staging", "auto_merge": "yes", "timeout": 30, "fabric": "deploy"}}`,
			[]string{
				`apps.json: a: provider: want a string, got a number`,
				`apps.json: a: environments: want a list of strings, got a string`,
				`apps.json: a: auto_merge: want true or false, got a string`,
				`apps.json: a: timeout: want a duration such as "30m" or "1h30m", got a number`,
				`apps.json: a: fabric: want an object, got a string`,
			},
		},
		{
			"required keys that are missing are named",
			`{"a": {}}`,
			[]string{
				`apps.json: a: provider is missing; use one of shell, fabric, capistrano, ansible, heroku`,
				`apps.json: a: repository is missing; give "owner/name" on GitHub, a local path or a git URL`,
				`apps.json: a: environments is missing; list at least one, e.g. ["staging", "production"]`,
			},
		},
		{
			"null counts as missing",
			`{"a": {"provider": null, "repository": "o/r", "environments": ["x"]}}`,
			[]string{`apps.json: a: provider is missing; use one of shell, fabric, capistrano, ansible, heroku`},
		},
		{
			"an empty environment list is refused",
			`{"a": {"provider": "shell", "repository": "o/r", "environments": []}}`,
			[]string{`apps.json: a: environments: list at least one environment`},
		},
		{
			"app and environment names must match the grammar",
			`{"Project-X": {"provider": "shell", "repository": "o/r", "environments": ["Live", "edge", "edge", "prod", "production"]}}`,
			[]string{
				`apps.json: Project-X: invalid app name: it must be lowercase letters, digits, "-", "_" or "."`,
				`apps.json: Project-X: environments: "Live" is not a valid name: it must be lowercase letters, digits, "-", "_" or "."`,
				`apps.json: Project-X: environments: "edge" is listed twice`,
				`apps.json: Project-X: environments: "prod" and "production" are the same environment`,
			},
		},
		{
			"keys naming environments must name the app's environments",
			`{"a": {` + base + `, "environment_urls": {"prod": "https://x", "staging": "ftp://x"}, "protected_environments": ["live"], "default_environment": "edge"}}`,
			[]string{
				`apps.json: a: default_environment: "edge" is not one of the environments (staging, production)`,
				`apps.json: a: environment_urls: "prod" is not one of the environments (staging, production)`,
				`apps.json: a: environment_urls: staging: "ftp://x" is not an http(s) URL`,
				`apps.json: a: protected_environments: "live" is not one of the environments (staging, production)`,
			},
		},
		{
			"approvers approve the deploys of protected environments",
			`{"a": {` + base + `, "approvers": ["ops"]}, "b": {` + base + `, "protected_environments": ["staging"], "approvers": ["release managers"]}}`,
			[]string{
				`apps.json: a: approvers: a has no protected_environments, whose deploys they would approve`,
				`apps.json: b: approvers: "release managers": name a role or a person of chima.yaml, like release-managers`,
			},
		},
		{
			"bad timeouts are refused",
			`{"a": {` + base + `, "timeout": "soon"}, "b": {` + base + `, "timeout": "-5m"}, "c": {` + base + `, "timeout": "48h"}}`,
			[]string{
				`apps.json: a: timeout: "soon" is not a duration such as "30m" or "1h30m"`,
				`apps.json: b: timeout: "-5m" must be positive`,
				`apps.json: c: timeout: "48h" is longer than the maximum of 24h0m0s`,
			},
		},
		{
			"paths and tasks from the file are checked like chat input",
			`{"a": {` + base + `, "script": "../../bin/sh", "default_ref": "main;id", "fabric": {"task": "-h"}, "capistrano": {"task": "Deploy"},
			  "ansible": {"playbook": "/etc/site.yml", "inventory": "../hosts", "extra_vars": {"deploy_env": "x", "bad-name": 1}}}}`,
			[]string{
				`apps.json: a: default_ref: ref "main;id" is not allowed: it contains ";"`,
				`apps.json: a: script: "../../bin/sh" must be a relative path inside the repository`,
				`apps.json: a: fabric.task: task "-h" is not allowed: it starts with "-"`,
				`apps.json: a: capistrano.task: task "Deploy" is not allowed: it must be lowercase letters, digits, "-", "_", "." or ":", starting with a letter or digit`,
				`apps.json: a: ansible.playbook: "/etc/site.yml" must be a relative path inside the repository`,
				`apps.json: a: ansible.inventory: "../hosts" must be a relative path inside the repository or a clean absolute path`,
				`apps.json: a: ansible.extra_vars: "bad-name" is not a valid variable name`,
				`apps.json: a: ansible.extra_vars: "deploy_env" is set by the deploy itself`,
			},
		},
		{
			"the heroku provider needs an app for every environment",
			`{"a": {"provider": "heroku", "repository": "o/r", "environments": ["staging", "production"],
			  "heroku": {"apps": {"staging": "Bad_Name"}, "api_url": "https://user:pw@api.example.com", "token_env": "lower"}}}`,
			[]string{
				`apps.json: a: heroku.apps: "Bad_Name" is not a Heroku app name (lowercase letters, digits and dashes)`,
				`apps.json: a: heroku.api_url: "https://user:xxxxx@api.example.com" holds credentials; URLs in the apps file must not`,
				`apps.json: a: heroku.token_env: "lower" is not an environment variable name (A-Z, 0-9, _)`,
				`apps.json: a: heroku.apps: no Heroku app for environment "production"`,
			},
		},
		{
			"rooms with spaces are refused",
			`{"a": {` + base + `, "allowed_rooms": ["ops room"], "notify_rooms": ["slack:"]}}`,
			[]string{
				`apps.json: a: allowed_rooms: "ops room" contains whitespace or control characters`,
				`apps.json: a: notify_rooms: "slack:" names no room`,
			},
		},
		{
			"repositories that can't be cloned are refused",
			`{"a": {"provider": "shell", "repository": "~/src/a", "environments": ["x"]}, "b": {"provider": "shell", "repository": "--upload-pack=x", "environments": ["x"]}}`,
			[]string{
				`apps.json: a: repository: "~/src/a" starts with "~", which is not expanded; use an absolute path`,
				`apps.json: b: repository: "--upload-pack=x" starts with "-"`,
			},
		},
		{
			"duplicate keys and apps are reported",
			`{"a": {` + base + `, "provider": "fabric"}, "a": {}}`,
			[]string{
				`apps.json: a: key "provider" appears twice`,
				`apps.json: a: the app is defined twice`,
			},
		},
		{
			"an app that is not an object is reported",
			`{"a": ["x"]}`,
			[]string{`apps.json: a: the app's settings must be an object, not a list`},
		},
		{
			"a file that is not an object is reported",
			`["a"]`,
			[]string{`apps.json: the file must be a JSON object of apps, like {"my-app": {...}}, not a list`},
		},
		{
			"an empty file is reported",
			"  \n",
			[]string{`apps.json: the file is empty; it should be a JSON object of apps`},
		},
		{
			"a syntax error gives its line and column",
			"{\n  \"a\": {\"provider\": \"shell\",}\n}",
			[]string{`apps.json: column 29: invalid character '}' looking for beginning of object key string`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("apps.json", []byte(tt.file), "/etc/chima")
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("want *LoadError, got %v", err)
			}
			// Lines are tested in TestProblemsGiveTheirLine.
			var got []string
			for _, p := range le.Problems {
				got = append(got, "apps.json: "+p.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			if len(le.Problems) != len(tt.want) {
				t.Errorf("got %d Problems, want %d", len(le.Problems), len(tt.want))
			}
		})
	}
}

func TestProblemsNameTheirKey(t *testing.T) {
	_, err := Parse("apps.json", []byte(`{"a": {"provider": "shell", "repository": "o/r", "environments": ["x"], "fabric": {"tsk": 1}, "enironments": 1}}`), "")
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatal(err)
	}
	var keys []string
	for _, p := range le.Problems {
		keys = append(keys, p.App+"/"+p.Key)
	}
	if want := []string{"a/fabric.tsk", "a/enironments"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("keys = %q, want %q", keys, want)
	}
}

func TestHubotHerokuNameKeysFillHerokuApps(t *testing.T) {
	s := mustParse(t, `{"hubot": {"provider": "heroku", "repository": "atmos/hubot", "environments": ["production", "staging"],
		"heroku_production_name": "hubot-production", "heroku_staging_name": "hubot-staging"}}`)
	a := mustApp(t, s, "hubot")
	want := map[string]string{"production": "hubot-production", "staging": "hubot-staging"}
	if !reflect.DeepEqual(a.Heroku.Apps, want) {
		t.Errorf("Heroku.Apps = %v, want %v", a.Heroku.Apps, want)
	}
	_, err := Parse("apps.json", []byte(`{"a": {"provider": "heroku", "repository": "o/r", "environments": ["edge"], "heroku_live_name": "x-live", "heroku_edge_name": "x-edge"}}`), "")
	if err == nil || !strings.Contains(err.Error(), `a: heroku_live_name: "live" is not one of the environments (edge)`) {
		t.Errorf("an env-named key for an unknown environment must be refused, got %v", err)
	}
}

func TestLookup(t *testing.T) {
	s := mustParse(t, `{"b": {"provider": "shell", "repository": "o/b", "environments": ["x"]},
		"a": {"provider": "shell", "repository": "o/a", "environments": ["x"]}}`)
	tests := []struct {
		name    string
		app     string
		wantErr string
	}{
		{"finds an app", "a", ""},
		{"matches case-insensitively", "B", ""},
		{"an unknown app lists the known ones", "project-y", "never heard of project-y; known apps: a, b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := s.Lookup(tt.app)
			if tt.wantErr == "" {
				if err != nil || a.Name != strings.ToLower(tt.app) {
					t.Fatalf("Lookup(%q) = %v, %v", tt.app, a, err)
				}
				return
			}
			var ue *UnknownAppError
			if !errors.As(err, &ue) || err.Error() != tt.wantErr {
				t.Fatalf("Lookup(%q) error = %v, want %q", tt.app, err, tt.wantErr)
			}
		})
	}
	empty := mustParse(t, `{}`)
	if _, err := empty.Lookup("x"); err == nil || err.Error() != "never heard of x; known apps: none" {
		t.Errorf("empty set: %v", err)
	}
}

func TestCanonicalEnv(t *testing.T) {
	for in, want := range map[string]string{
		"prod": "production", "PROD": "production", "stg": "staging", " stg ": "staging",
		"production": "production", "edge": "edge", "Live": "live",
	} {
		if got := CanonicalEnv(in); got != want {
			t.Errorf("CanonicalEnv(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResolveEnv(t *testing.T) {
	tests := []struct {
		name      string
		envs      []string
		def       string
		requested string
		want      string
		wantErr   string
	}{
		{"a named environment is used", []string{"live", "edge"}, "", "edge", "edge", ""},
		{"names match case-insensitively", []string{"live", "edge"}, "", "EDGE", "edge", ""},
		{"prod means production", []string{"staging", "production"}, "", "prod", "production", ""},
		{"stg means staging", []string{"staging", "production"}, "", "stg", "staging", ""},
		{"production finds an app's prod", []string{"prod", "stg"}, "", "production", "prod", ""},
		{"prod finds an app's prod", []string{"prod", "stg"}, "", "prod", "prod", ""},
		{"missing env uses default_environment", []string{"live", "edge"}, "edge", "", "edge", ""},
		{"missing env uses the only environment", []string{"staging"}, "", "", "staging", ""},
		{"missing env with several asks which one",
			[]string{"production", "staging", "edge"}, "", "",
			"", `which environment of app: production, staging or edge? Say e.g. "deploy app to production".`},
		{"missing env with two asks which one",
			[]string{"live", "edge"}, "", "",
			"", `which environment of app: live or edge? Say e.g. "deploy app to live".`},
		{"an environment the app lacks lists the app's environments",
			[]string{"live", "edge"}, "", "staging",
			"", `app has no environment "staging"; its environments: live, edge`},
		{"an alias the app lacks shows what it means",
			[]string{"live", "edge"}, "", "prod",
			"", `app has no environment "prod" (production); its environments: live, edge`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &App{Name: "app", Environments: tt.envs, DefaultEnvironment: tt.def}
			got, err := a.ResolveEnv(tt.requested)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ResolveEnv(%q) = %q, %v; want error %q", tt.requested, got, err, tt.wantErr)
				}
				var ae *AmbiguousEnvError
				var ue *UnknownEnvError
				if !errors.As(err, &ae) && !errors.As(err, &ue) {
					t.Errorf("error type %T", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ResolveEnv(%q) = %q, %v; want %q", tt.requested, got, err, tt.want)
			}
		})
	}
}

func TestResolveEnvNeverDefaultsToProduction(t *testing.T) {
	a := &App{Name: "app", Environments: []string{"production", "staging"}}
	if env, err := a.ResolveEnv(""); err == nil {
		t.Fatalf("ResolveEnv(\"\") = %q; an app with several environments and no default must ask", env)
	}
}

func TestResolveRef(t *testing.T) {
	tests := []struct {
		name                        string
		defRef, requested, repoHead string
		want, wantErr               string
	}{
		{"the requested ref wins", "develop", "feature/x", "trunk", "feature/x", ""},
		{"default_ref comes next", "develop", "", "trunk", "develop", ""},
		{"then the repository's default branch", "", "", "trunk", "trunk", ""},
		{"then main", "", "", "", "main", ""},
		{"a bad requested ref is refused", "", "-x", "", "", `ref "-x" is not allowed`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &App{DefaultRef: tt.defRef}
			got, err := a.ResolveRef(tt.requested, tt.repoHead)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ResolveRef = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestRooms(t *testing.T) {
	a := &App{Name: "project-x", AllowedRooms: []string{"deployment", "slack:ops", "#releases", "slack:C0SHIP"}}
	tests := []struct {
		name          string
		adapter, room string
		roomName      string // the name the host resolved the room id to
		want          bool
	}{
		{"a listed room on any adapter", "mattermost", "deployment", "", true},
		{"a room with a leading hash", "slack", "#deployment", "", true},
		{"room names compare case-insensitively", "slack", "Deployment", "", true},
		{"an adapter-scoped room on its adapter", "slack", "ops", "", true},
		{"an adapter-scoped room on another adapter", "mattermost", "ops", "", false},
		{"a room listed with a hash", "shell", "releases", "", true},
		{"an unlisted room", "slack", "general", "", false},
		{"a room id whose name is listed", "slack", "C024BE91L", "deployment", true},
		{"a room id whose name is listed for its adapter", "slack", "C0OPS", "ops", true},
		{"a room id whose name is not listed", "slack", "C0GENERAL", "general", false},
		{"a room listed by its id", "slack", "C0SHIP", "shipping", true},
		{"a room id without a name is only its id", "slack", "C024BE91L", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := a.RoomAllowed(tt.adapter, tt.room, tt.roomName); got != tt.want {
				t.Errorf("RoomAllowed(%q, %q) = %v, want %v", tt.adapter, tt.room, got, tt.want)
			}
		})
	}
	err := a.CheckRoom("slack", "#general")
	var re *RoomError
	if !errors.As(err, &re) || err.Error() != "project-x can't be deployed from general; allowed rooms: deployment, slack:ops, #releases, slack:C0SHIP" {
		t.Errorf("CheckRoom = %v", err)
	}
	if err := a.CheckRoom("slack", "C0GENERAL", "general"); err == nil || !strings.Contains(err.Error(), "deployed from general;") {
		t.Errorf("CheckRoom names the room by its name: %v", err)
	}
	if err := (&App{Name: "open"}).CheckRoom("slack", "anywhere"); err != nil {
		t.Errorf("an app without allowed_rooms must allow every room, got %v", err)
	}
}

func TestRepository(t *testing.T) {
	tests := []struct {
		name      string
		repo      string
		kind      RepoKind
		cloneURL  string
		owner, gh string
	}{
		{"owner/name is GitHub", "oursky/project-x", GitHub, "https://github.com/oursky/project-x.git", "oursky", "project-x"},
		{"owner/name.git is GitHub", "oursky/project-x.git", GitHub, "https://github.com/oursky/project-x.git", "oursky", "project-x"},
		{"an absolute path is local", "/srv/git/demo", LocalPath, "/srv/git/demo", "", ""},
		{"a dot path is local and relative to the apps file", "./repos/demo", LocalPath, "/etc/chima/repos/demo", "", ""},
		{"a parent path is local", "../demo", LocalPath, "/etc/demo", "", ""},
		{"a bare name is a local path", "demo", LocalPath, "/etc/chima/demo", "", ""},
		{"a deeper path is local", "repos/x/demo", LocalPath, "/etc/chima/repos/x/demo", "", ""},
		{"an https URL is a URL", "https://gitlab.com/a/b.git", GitURL, "https://gitlab.com/a/b.git", "", ""},
		{"an scp-like address is a URL", "git@github.com:a/b.git", GitURL, "git@github.com:a/b.git", "", ""},
		{"a file URL is a URL", "file:///srv/git/demo", GitURL, "file:///srv/git/demo", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustParse(t, `{"a": {"provider": "shell", "environments": ["x"], "repository": `+jsonString(tt.repo)+`}}`)
			a := mustApp(t, s, "a")
			if a.Kind() != tt.kind {
				t.Errorf("Kind = %v, want %v", a.Kind(), tt.kind)
			}
			if got := a.CloneURL(); got != tt.cloneURL {
				t.Errorf("CloneURL = %q, want %q", got, tt.cloneURL)
			}
			owner, name, ok := a.GitHubRepo()
			if ok != (tt.kind == GitHub) || owner != tt.owner || name != tt.gh {
				t.Errorf("GitHubRepo = %q, %q, %v", owner, name, ok)
			}
		})
	}
}

func TestAppBuiltByHandUsesTheWorkingDirectory(t *testing.T) {
	wd, _ := os.Getwd()
	a := &App{Repository: "./r"}
	if got := a.CloneURL(); got != filepath.Join(wd, "r") {
		t.Errorf("CloneURL = %q", got)
	}
	a.ApplyDefaults()
	if a.Timeout != DefaultTimeout || a.Script != DefaultScript || a.Heroku.TokenEnv != DefaultHerokuTokenEnv {
		t.Errorf("ApplyDefaults left %+v", a)
	}
}

func TestMarshalJSONRoundTrips(t *testing.T) {
	s := mustParse(t, fullFile)
	for _, name := range s.Names() {
		a := mustApp(t, s, name)
		data, err := json.Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		again := mustParse(t, `{`+jsonString(name)+`: `+string(data)+`}`)
		b := mustApp(t, again, name)
		// Only the active provider's settings are written; compare those.
		if a.Provider != "ansible" || b.Provider != "ansible" {
			a.Ansible, b.Ansible = AnsibleSettings{}, AnsibleSettings{}
		}
		a.Script, b.Script = "", ""
		a.Fabric, b.Fabric, a.Capistrano, b.Capistrano, a.Heroku, b.Heroku = FabricSettings{}, FabricSettings{}, CapistranoSettings{}, CapistranoSettings{}, HerokuSettings{}, HerokuSettings{}
		if a.Provider == "ansible" {
			a.Ansible.ExtraVars, b.Ansible.ExtraVars = nil, nil
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s round trip:\n got %+v\nwant %+v\njson %s", name, b, a, data)
		}
	}
	a := mustApp(t, mustParse(t, seedFile), "project-x")
	data, _ := json.Marshal(a)
	if strings.Contains(string(data), "required_contexts") || strings.Contains(string(data), "heroku") {
		t.Errorf("JSON of a fabric app without required_contexts: %s", data)
	}
}

func TestUnmarshalJSONReadsWhatMarshalJSONWrites(t *testing.T) {
	a := mustApp(t, mustParse(t, fullFile), "project-x")
	data, err := json.Marshal(struct {
		Config *App   `json:"config"`
		Value  App    `json:"value"`
		Other  string `json:"other"`
	}{a, *a, "x"})
	if err != nil {
		t.Fatal(err)
	}
	var back struct {
		Config *App   `json:"config"`
		Value  App    `json:"value"`
		Other  string `json:"other"`
	}
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatalf("Unmarshal: %v\n%s", err, data)
	}
	if back.Config == nil || back.Config.Timeout != 45*time.Minute || back.Config.Ansible.Playbook != "ops/site.yml" ||
		!reflect.DeepEqual(back.Config.RequiredContexts, a.RequiredContexts) || back.Value.Provider != "ansible" || back.Other != "x" {
		t.Errorf("round trip: %+v", back)
	}
	var bad App
	err = json.Unmarshal([]byte(`{"provider": "shell", "repository": "o/r", "enironments": ["x"]}`), &bad)
	var le *LoadError
	if !errors.As(err, &le) || !strings.Contains(err.Error(), `unknown key "enironments"`) {
		t.Errorf("Unmarshal of a bad app = %v", err)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func TestTheCIPluginsAutoDeployKeyIsLetBe(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "apps.json")
	if err := os.WriteFile(path, []byte(`{"x": {"provider": "shell", "repository": "o/x", "environments": ["staging"],
		"auto_deploy": {"branch": "main", "environment": "staging"}}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Fatalf("an app with auto_deploy (the ci-status plugin's key) is refused: %v", err)
	}
}

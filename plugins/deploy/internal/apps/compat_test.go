package apps

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadReadsHubotDeployFiles(t *testing.T) {
	s, err := Load(filepath.Join("testdata", "hubot-deploy.json"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := []string{"billing", "hubot", "www"}; !reflect.DeepEqual(s.Names(), want) {
		t.Fatalf("Names = %v, want %v", s.Names(), want)
	}
	hubot, www, billing := mustApp(t, s, "hubot"), mustApp(t, s, "www"), mustApp(t, s, "billing")
	tests := []struct {
		name      string
		got, want any
	}{
		{"heroku_name is the Heroku app of the only environment", hubot.HerokuApp("production"), "acme-hubot"},
		{"heroku_production_name names production's Heroku app", www.HerokuApp("production"), "acme-www"},
		{"heroku_staging_name names staging's Heroku app", www.HerokuApp("staging"), "acme-www-staging"},
		{"required_contexts are kept", www.RequiredContexts, []string{"ci/janky", "security/brakeman"}},
		{"allowed_rooms are kept", www.AllowedRooms, []string{"ops", "deploys"}},
		{"github_api is the app's GitHub API", billing.GitHubAPI, "https://ghe.acme.example/api/v3"},
		{"an app without github_api uses the plugin's", www.GitHubAPI, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

func TestLoadReadsHeavenFiles(t *testing.T) {
	s, err := Load(filepath.Join("testdata", "heaven.json"))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	api, shop, backend := mustApp(t, s, "api"), mustApp(t, s, "shop"), mustApp(t, s, "backend")
	tests := []struct {
		name      string
		got, want any
	}{
		{"heroku_<env>_name wins over heroku_name", api.HerokuApp("staging"), "acme-api-staging"},
		{"heroku_name is the Heroku app of the other environments", api.Heroku.Apps,
			map[string]string{"production": "acme-api", "staging": "acme-api-staging", "qa": "acme-api"}},
		{"production_url is production's URL", api.EnvURL("production"), "https://api.acme.example"},
		{"staging_url is staging's URL", api.EnvURL("staging"), "https://api-staging.acme.example"},
		{"an environment without a URL has none", api.EnvURL("qa"), ""},
		{"deploy_script is the shell provider's script", shop.Script, "script/ship"},
		{"deploy_script is what runs Capistrano", backend.Capistrano.Script, "bin/cap"},
		{"a capistrano app keeps the default shell script", backend.Script, DefaultScript},
		{"the URL of a capistrano app", backend.EnvURL("production"), "https://backend.acme.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %v, want %v", tt.got, tt.want)
			}
		})
	}
}

// The compatible keys survive the trip through a GitHub deployment payload.
func TestCompatibleKeysRoundTripThroughJSON(t *testing.T) {
	s, err := Load(filepath.Join("testdata", "heaven.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"api", "shop", "backend"} {
		a := mustApp(t, s, name)
		data, err := a.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		b := &App{Name: name}
		if err := b.UnmarshalJSON(data); err != nil {
			t.Fatalf("%s: UnmarshalJSON(%s): %v", name, data, err)
		}
		if b.Script != a.Script || b.Capistrano.Script != a.Capistrano.Script ||
			!reflect.DeepEqual(b.EnvironmentURLs, a.EnvironmentURLs) || b.HerokuApp("qa") != a.HerokuApp("qa") {
			t.Errorf("%s: round trip changed the app: %s", name, data)
		}
	}
	b := mustApp(t, mustParse(t, `{"x": {"provider": "shell", "repository": "o/r", "environments": ["e"], "github_api": "https://ghe.example/api/v3"}}`), "x")
	data, _ := b.MarshalJSON()
	c := &App{Name: "x"}
	if err := c.UnmarshalJSON(data); err != nil || c.GitHubAPI != b.GitHubAPI {
		t.Errorf("github_api lost in %s (%v)", data, err)
	}
}

func TestCompatibleKeyProblems(t *testing.T) {
	base := `"repository": "o/r", "environments": ["staging", "production"]`
	tests := []struct {
		name string
		app  string
		want []string
	}{
		{"an <env>_url of an environment the app doesn't have",
			`"provider": "shell", ` + base + `, "qa_url": "https://qa.example"`,
			[]string{`a: qa_url: "qa" is not one of the environments (staging, production)`}},
		{"an <env>_url that is not an http URL",
			`"provider": "shell", ` + base + `, "staging_url": "staging.example"`,
			[]string{`a: staging_url: "staging.example" is not an http(s) URL`}},
		{"an <env>_url and environment_urls both giving one URL",
			`"provider": "shell", ` + base + `, "environment_urls": {"staging": "https://s.example"}, "staging_url": "https://t.example"`,
			[]string{`a: staging_url: environment_urls already gives the URL of "staging"`}},
		{"heroku_name that is not a Heroku app name is reported once",
			`"provider": "heroku", ` + base + `, "heroku_name": "Not An App"`,
			[]string{`a: heroku_name: "Not An App" is not a Heroku app name (lowercase letters, digits and dashes)`}},
		{"heroku_<env>_name twice for one environment",
			`"provider": "heroku", ` + base + `, "heroku": {"apps": {"staging": "s"}}, "heroku_staging_name": "t", "heroku_name": "p"`,
			[]string{`a: heroku_staging_name: heroku.apps already names the Heroku app of "staging"`}},
		{"deploy_script for a provider that runs no script",
			`"provider": "fabric", ` + base + `, "deploy_script": "script/deploy"`,
			[]string{`a: deploy_script: the fabric provider runs no deploy script; deploy_script is for the shell and capistrano providers`}},
		{"deploy_script beside script",
			`"provider": "shell", ` + base + `, "script": "a", "deploy_script": "b"`,
			[]string{`a: deploy_script: script already names the shell provider's script; keep one of them`}},
		{"deploy_script outside the repository",
			`"provider": "shell", ` + base + `, "deploy_script": "../x"`,
			[]string{`a: deploy_script: "../x" must be a relative path inside the repository`}},
		{"github_api that is not a URL",
			`"provider": "shell", ` + base + `, "github_api": "ghe.example"`,
			[]string{`a: github_api: "ghe.example" is not an http(s) URL`}},
		{"github_token is refused: secrets don't go in the file",
			`"provider": "shell", ` + base + `, "github_token": "ghp_x"`,
			[]string{`a: github_token: a token does not belong in the apps file; give the plugin a GITHUB_TOKEN secret in chima.yaml instead`}},
		{"a key no known tool defines is still refused",
			`"provider": "shell", ` + base + `, "hipchat_room": "ops"`,
			[]string{`a: unknown key "hipchat_room"`}},
		{"a typo of a compatible key gets a suggestion",
			`"provider": "shell", ` + base + `, "deploy_scrpt": "x"`,
			[]string{`a: unknown key "deploy_scrpt" (did you mean "deploy_script"?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("apps.json", []byte(`{"a": {`+tt.app+`}}`), "")
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("want *LoadError, got %v", err)
			}
			var got []string
			for _, p := range le.Problems {
				got = append(got, p.String())
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
		})
	}
}

func TestProblemsGiveTheirLine(t *testing.T) {
	file := `{
  "ok": {"provider": "shell", "repository": "o/r", "environments": ["staging"]},
  "demo": {
    "provider": "shell",
    "repository": "o/r",
    "environments": ["staging"],
    "deploy_scrpt": "x",
    "fabric": {
      "tsk": "t"
    },
    "qa_url": "https://qa.example"
  },
  "heroku-app": {
    "provider": "heroku",
    "repository": "o/r",
    "environments": ["staging"]
  }
}`
	_, err := Parse("apps.json", []byte(file), "")
	var le *LoadError
	if !errors.As(err, &le) {
		t.Fatalf("want *LoadError, got %v", err)
	}
	type at struct {
		App, Key string
		Line     int
	}
	var got []at
	for _, p := range le.Problems {
		got = append(got, at{p.App, p.Key, p.Line})
	}
	want := []at{
		{"demo", "deploy_scrpt", 7},
		{"demo", "fabric.tsk", 9},
		{"demo", "qa_url", 11},
		// heroku.apps is not in the file: the app's own line.
		{"heroku-app", "heroku.apps", 13},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("problems at %+v, want %+v", got, want)
	}
	if !strings.Contains(err.Error(), `apps.json:7: demo: unknown key "deploy_scrpt"`) {
		t.Errorf("Error() does not give file:line: app: message:\n%s", err)
	}
}

func TestASyntaxErrorGivesItsLine(t *testing.T) {
	_, err := Parse("apps.json", []byte("{\n  \"a\": {\"provider\": \"shell\",}\n}"), "")
	var le *LoadError
	if !errors.As(err, &le) || len(le.Problems) != 1 || le.Problems[0].Line != 2 {
		t.Fatalf("want one problem on line 2, got %#v", err)
	}
}
